//! Parses every class file of the public SOM repository when a checkout of it is
//! available (set `SOM_REFERENCE=/path/to/SOM`); CI machines do not have one, so the
//! test then does nothing. The IntegrationTests directory holds deliberately broken
//! files and `Self.som` two deliberate errors, so both are skipped.

use std::path::{Path, PathBuf};

fn som_files(d: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(d) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            som_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "som") {
            out.push(p);
        }
    }
}

#[test]
fn every_reference_class_file_parses() {
    let Ok(root) = std::env::var("SOM_REFERENCE") else {
        return;
    };
    let mut files = Vec::new();
    som_files(Path::new(&root), &mut files);
    let mut failures = Vec::new();
    for f in &files {
        let name = f.to_string_lossy();
        if name.contains("IntegrationTests") || name.ends_with("/Self.som") {
            continue;
        }
        let text = std::fs::read_to_string(f).unwrap();
        if let Err(e) = som_syntax::parse_class(&text, &name) {
            failures.push(e.to_string());
        }
    }
    assert!(!files.is_empty(), "no .som files under {root}");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
