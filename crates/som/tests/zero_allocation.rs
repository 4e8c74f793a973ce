//! The optimiser issue's allocation check: the inner loops of Sieve, Sum,
//! Mandelbrot's orbit and NBody's `advance:` allocate nothing per iteration, in every
//! execution mode (`tests/alloc/InnerLoops.som` measures the bytes a run of 100000
//! more iterations allocates through `System gcStats`; a control loop that
//! allocates shows that the measure sees allocation). Two more loops make a block,
//! and a context and a block, per iteration, which do not escape: tier 2's
//! allocation removal makes them allocate nothing, the other modes allocate them.

use std::path::Path;
use std::process::Command;

fn run(mode: &str, jit: &[&str]) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_som"));
    cmd.current_dir(&root).args(["--mode", mode]);
    for j in jit {
        cmd.args(["--jit", j]);
    }
    let out = cmd
        .args([
            "-cp",
            "benchmarks:tests/alloc",
            "tests/alloc/InnerLoops.som",
        ])
        .output()
        .expect("som runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{mode} {jit:?}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn check(mode: &str, jit: &[&str]) {
    let out = run(mode, jit);
    let mut lines = 0;
    for line in out.lines() {
        let (name, bytes) = line.split_once(' ').expect("name and bytes");
        let bytes: i64 = bytes.parse().expect("a byte count");
        if name == "Control" {
            assert!(bytes >= 100_000 * 16, "{mode} {jit:?}: {out}");
        } else if name.starts_with("Virtual") && mode != "tracing" {
            assert!(
                bytes >= 100_000 * 16,
                "{mode} {jit:?}: {name} allocates\n{out}"
            );
        } else {
            assert_eq!(bytes, 0, "{mode} {jit:?}: {name} allocates\n{out}");
        }
        lines += 1;
    }
    assert_eq!(lines, 7, "{out}");
}

#[test]
fn inner_loops_allocate_nothing_when_traced() {
    check("tracing", &[]);
    check("tracing", &["threshold=1,bridge_threshold=1"]);
}

#[test]
fn inner_loops_allocate_nothing_in_the_other_modes() {
    check("interp", &[]);
    check("threaded", &[]);
}
