//! Parses the class files of the public SOM repository (core library, test suite,
//! examples, SomSom). The repository is not part of ours, so these tests are ignored
//! unless asked for with a checkout:
//! `SOM_REFERENCE=/path/to/SOM cargo test -p som-syntax --test reference_sources -- --ignored`
//! (without `SOM_REFERENCE` they fail).
//!
//! `IntegrationTests` holds deliberately broken files, so it is not part of the "all
//! parse" sweep; a separate test checks that exactly the expected ones fail, at the
//! positions their headers give. `BasicInterpreterTests/Self.som` has two methods that
//! must fail to compile, and is checked for that.

use som_syntax::{parse_class, parse_repl_input};
use std::path::{Path, PathBuf};

const NEEDS_CHECKOUT: &str =
    "needs a checkout of github.com/SOM-st/SOM: SOM_REFERENCE=/path/to/SOM cargo test -p som-syntax --test reference_sources -- --ignored";

/// The checkout `SOM_REFERENCE` names.
fn reference_root() -> PathBuf {
    let root = PathBuf::from(std::env::var_os("SOM_REFERENCE").expect(NEEDS_CHECKOUT));
    assert!(
        root.is_dir(),
        "SOM_REFERENCE={} is not a directory",
        root.display()
    );
    root
}

fn som_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            som_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "som") {
            out.push(path);
        }
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
#[ignore = "needs a checkout of github.com/SOM-st/SOM in SOM_REFERENCE"]
fn every_reference_class_file_parses() {
    let root = reference_root();
    let mut files = Vec::new();
    for dir in ["Smalltalk", "TestSuite", "Examples", "SomSom"] {
        let before = files.len();
        som_files(&root.join(dir), &mut files);
        assert!(
            files.len() > before,
            "no .som files in {}",
            root.join(dir).display()
        );
    }
    let self_som = root.join("TestSuite/BasicInterpreterTests/Self.som");
    files.retain(|f| *f != self_som);

    let mut failures = Vec::new();
    for path in &files {
        let text = read(path);
        let name = path.display().to_string();
        match parse_class(&text, &name) {
            Ok(class) => {
                // Each file defines the class it is named after.
                let stem = path.file_stem().unwrap().to_string_lossy();
                if class.name != stem {
                    failures.push(format!("{name}: defines class {}", class.name));
                }
            }
            Err(e) => failures.push(e.to_string()),
        }
        // Truncated files must give errors, never panics.
        let step = text.len() / 30 + 1;
        let cuts: Vec<usize> = text.char_indices().map(|(i, _)| i).step_by(step).collect();
        for cut in cuts {
            let _ = parse_class(&text[..cut], &name);
            let _ = parse_repl_input(&text[..cut], &name);
        }
    }
    assert!(files.len() > 400, "only {} files", files.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
#[ignore = "needs a checkout of github.com/SOM-st/SOM in SOM_REFERENCE"]
fn self_som_fails_at_its_first_assignment_to_a_pseudo_variable() {
    let root = reference_root();
    let path = root.join("TestSuite/BasicInterpreterTests/Self.som");
    let e = parse_class(&read(&path), "Self.som").unwrap_err();
    assert_eq!(e.message, "cannot assign to 'super'");
    assert_eq!((e.span.line, e.span.col), (28, 7));
}

/// The `line N, column M` an integration test's header expects an error at.
fn expected_position(text: &str) -> Option<(u32, u32)> {
    let at = text.find(", line ")?;
    let rest = &text[at + ", line ".len()..];
    let (line, rest) = rest.split_once(", column ")?;
    let col: String = rest.chars().take_while(char::is_ascii_digit).collect();
    Some((line.parse().ok()?, col.parse().ok()?))
}

#[test]
#[ignore = "needs a checkout of github.com/SOM-st/SOM in SOM_REFERENCE"]
fn integration_tests_fail_to_parse_exactly_where_expected() {
    let root = reference_root();
    let mut files = Vec::new();
    som_files(&root.join("IntegrationTests"), &mut files);
    assert!(
        files.len() >= 200,
        "only {} IntegrationTests files",
        files.len()
    );
    // Files the parser must reject: a repeated argument, a repeated field, an unknown
    // escape, and statements without periods between them (its header expects the
    // literal limit, which another VM reports while still parsing).
    let must_fail = [
        "call2",
        "instance_fields_overlap2",
        "str_escape_unknown",
        "test_literals_limit_1",
    ];
    let mut problems = Vec::new();
    for path in &files {
        let stem = path.file_stem().unwrap().to_string_lossy().to_string();
        let text = read(path);
        let result = parse_class(&text, &stem);
        match (must_fail.contains(&stem.as_str()), result) {
            (false, Ok(_)) => {}
            (false, Err(e)) => problems.push(format!("unexpected error: {e}")),
            (true, Ok(_)) => problems.push(format!("{stem}: parsed, but must not")),
            (true, Err(e)) => {
                if let Some(want) = expected_position(&text) {
                    if want != (e.span.line, e.span.col) {
                        problems.push(format!("{e}: expected at {want:?}"));
                    }
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
