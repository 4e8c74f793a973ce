//! Runs every SOM test program under `tests/som/` (a `.som` file with a `.expected`
//! sibling) through the `som` binary in every execution mode, and compares stdout, the
//! exit status (`.status`, default 0) and, if given, stderr (`.stderr`). The modes must
//! agree with the expectation, which is how the tiers are tested against each other.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The execution modes every program runs in (command-line arguments): the
/// interpreter; threaded code for everything (threshold 1), also without inline caches,
/// without specialised handlers and with stub handlers (the ablations); threaded code at the default threshold
/// (methods change tiers while the program runs); tracing (tier 2) with every loop
/// traced at once, at the default threshold and under deoptimisation stress; and
/// every tier under GC stress.
const MODES: &[&[&str]] = &[
    &["--mode", "interp"],
    &["--mode", "threaded", "--jit", "tier1_threshold=1"],
    &[
        "--mode",
        "threaded",
        "--jit",
        "tier1_threshold=1,tier1_ic=off",
    ],
    &[
        "--mode",
        "threaded",
        "--jit",
        "tier1_threshold=1,tier1_specialise=off",
    ],
    &[
        "--mode",
        "threaded",
        "--jit",
        "tier1_threshold=1,tier1_stub_handlers=on",
    ],
    &["--mode", "threaded"],
    // Tier 2: every loop traced at once, at the default threshold, with a bridge
    // from every guard that fails, and with every third guard check failing
    // (deoptimisation stress, bridges from the second failure).
    &["--mode", "tracing", "--jit", "threshold=1"],
    &["--mode", "tracing"],
    &[
        "--mode",
        "tracing",
        "--jit",
        "threshold=1,function_threshold=1,bridge_threshold=1",
    ],
    &[
        "--mode",
        "tracing",
        "--jit",
        "threshold=1,function_threshold=1,deopt_every=3,bridge_threshold=2",
    ],
    // GC stress: a collection at every allocation (interpreter) and at every third
    // (everything compiled), so any object the VM forgot to root is freed and reused.
    &["--mode", "interp", "--gc-stress", "1"],
    &[
        "--mode",
        "threaded",
        "--jit",
        "tier1_threshold=1",
        "--gc-stress",
        "3",
    ],
    &[
        "--mode",
        "tracing",
        "--jit",
        "threshold=1",
        "--gc-stress",
        "3",
    ],
];

/// `tests/som` of the repository.
fn programs_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/som")
        .canonicalize()
        .expect("tests/som exists")
}

fn programs(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            programs(&p, out);
        } else if p.extension().is_some_and(|e| e == "som") && p.with_extension("expected").exists()
        {
            out.push(p);
        }
    }
}

fn check(program: &Path, mode: &[&str]) -> Result<(), String> {
    // Run from `tests/som` with a relative path, so backtraces name files the same
    // way on every machine.
    let root = programs_root();
    let relative = program.strip_prefix(&root).unwrap_or(program);
    let output = Command::new(env!("CARGO_BIN_EXE_som"))
        .args(mode)
        .arg(relative)
        .current_dir(&root)
        .output()
        .map_err(|e| format!("cannot run som: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let expected = std::fs::read_to_string(program.with_extension("expected")).unwrap();
    let status: i32 = std::fs::read_to_string(program.with_extension("status"))
        .map(|s| s.trim().parse().expect("a number in .status"))
        .unwrap_or(0);
    let mut problems = Vec::new();
    if stdout != expected {
        problems.push(format!(
            "stdout differs\n--- expected\n{expected}\n--- actual\n{stdout}\n---"
        ));
    }
    if output.status.code() != Some(status) {
        problems.push(format!(
            "exit status {:?}, expected {status}\nstderr:\n{stderr}",
            output.status.code()
        ));
    }
    if let Ok(exp_err) = std::fs::read_to_string(program.with_extension("stderr")) {
        if stderr != exp_err {
            problems.push(format!(
                "stderr differs\n--- expected\n{exp_err}\n--- actual\n{stderr}\n---"
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

#[test]
fn som_programs_give_their_expected_output_in_every_mode() {
    let root = programs_root();
    let mut all = Vec::new();
    programs(&root, &mut all);
    assert!(
        !all.is_empty(),
        "no test programs found under {}",
        root.display()
    );
    let jobs: Vec<(PathBuf, &[&str])> = all
        .iter()
        .flat_map(|p| MODES.iter().map(move |m| (p.clone(), *m)))
        .collect();
    let failures = std::sync::Mutex::new(Vec::new());
    let next = std::sync::atomic::AtomicUsize::new(0);
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some((p, mode)) = jobs.get(i) else { break };
                if let Err(e) = check(p, mode) {
                    failures.lock().unwrap().push(format!(
                        "{} [{}]: {e}",
                        p.display(),
                        mode.join(" ")
                    ));
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {} runs failed:\n\n{}",
        failures.len(),
        jobs.len(),
        failures.join("\n\n")
    );
}
