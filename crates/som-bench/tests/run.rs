//! `som-bench run` end to end, with a stand-in VM (a shell script that prints what the
//! standard harness prints), so the test needs no SOM build.

use std::process::Command;

#[test]
fn run_writes_raw_data_and_a_report() {
    let dir = std::env::temp_dir().join(format!("som-bench-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let vm = dir.join("fakevm.sh");
    std::fs::write(
        &vm,
        "#!/bin/sh\n# args: benchmark iterations inner speed\ni=0\nwhile [ $i -lt $2 ]; do echo \"$1: iterations=1 runtime: $4us\"; i=$((i+1)); done\n",
    )
    .unwrap();
    let out = dir.join("results");
    let status = Command::new(env!("CARGO_BIN_EXE_som-bench"))
        .args([
            "run",
            "--iterations",
            "4",
            "--invocations",
            "2",
            "--benchmarks",
            "A:1,B:2",
        ])
        .arg("--vm")
        .arg(format!(
            "slow=sh {} {{benchmark}} {{iterations}} {{inner}} 200",
            vm.display()
        ))
        .arg("--vm")
        .arg(format!(
            "fast=sh {} {{benchmark}} {{iterations}} {{inner}} 100",
            vm.display()
        ))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("| fast | 2.000 |"), "{report}");
    let iterations = std::fs::read_to_string(out.join("iterations.csv")).unwrap();
    assert_eq!(iterations.lines().count(), 1 + 2 * 2 * 2 * 4);
    assert!(out.join("runs.json").exists() && out.join("invocations.csv").exists());
    for plot in ["ratios.svg", "warmup-A.svg", "warmup-B.svg"] {
        let svg = std::fs::read_to_string(out.join(plot)).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("</svg>"), "{plot}");
    }
    assert!(report.contains("![ratios](ratios.svg)"));
    // The report can be rebuilt from the raw data.
    std::fs::remove_file(out.join("report.md")).unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_som-bench"))
        .arg("report")
        .arg(&out)
        .output()
        .unwrap();
    assert!(status.status.success());
    assert!(std::fs::read_to_string(out.join("report.md"))
        .unwrap()
        .contains("| fast | 2.000 |"));
}
