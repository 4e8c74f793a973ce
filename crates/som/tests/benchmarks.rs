//! Every benchmark program in `benchmarks/` runs through the standard harness and
//! verifies its result, in the interpreter, threaded code and traces (small sizes: this is a
//! correctness test; speed is measured by the benchmark harness, not by tests).

use std::path::Path;
use std::process::Command;

/// (benchmark, inner iterations): sizes that keep the test short.
const BENCHMARKS: &[(&str, &str)] = &[
    ("Fibonacci", "1"),
    ("Recurse", "1"),
    ("Sum", "1"),
    ("Sieve", "1"),
    ("Towers", "1"),
    ("Queens", "1"),
    ("Permute", "1"),
    ("List", "1"),
    ("Storage", "1"),
    ("Bounce", "1"),
    ("BubbleSort", "1"),
    ("QuickSort", "1"),
    ("TreeSort", "1"),
    ("Mandelbrot", "1"),
    ("NBody", "100"),
    ("Fannkuch", "6"),
    ("Richards", "1"),
    ("Json", "1"),
    ("DeltaBlue", "50"),
    ("CD", "10"),
    ("PageRank", "10"),
    ("GraphSearch", "2"),
];

const MODES: &[&[&str]] = &[
    &["--mode", "interp"],
    &["--mode", "threaded", "--jit", "tier1_threshold=1"],
    &["--mode", "tracing", "--jit", "threshold=1"],
    // Deoptimisation stress: every third guard check in compiled traces fails.
    &[
        "--mode",
        "tracing",
        "--jit",
        "threshold=1,function_threshold=1,deopt_every=3,bridge_threshold=2",
    ],
    // GC stress (a collection every 50 allocations), both tiers.
    &["--mode", "interp", "--gc-stress", "50"],
    &[
        "--mode",
        "threaded",
        "--jit",
        "tier1_threshold=1",
        "--gc-stress",
        "50",
    ],
];

/// Benchmarks whose one iteration allocates hundreds of megabytes even at their
/// smallest size: one iteration each, never under GC stress (`--gc-stress 0` overrides
/// `SOM_GC_STRESS`: Havlak's 600 MB with a 50 MB live graph would take hours).
const LONG_BENCHMARKS: &[(&str, &str)] = &[("Havlak", "1")];

/// Runs `name` through the harness; `Some(problem)` unless it verified.
fn run(name: &str, outer: &str, inner: &str, mode: &[&str]) -> Option<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../benchmarks");
    let out = Command::new(env!("CARGO_BIN_EXE_som"))
        .args(mode)
        .arg("-cp")
        .arg(&dir)
        .arg(dir.join("BenchmarkHarness.som"))
        .args([name, outer, inner])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    if out.status.success()
        && stdout.contains(&format!("Starting {name} benchmark."))
        && stdout.contains(&format!("{name}: iterations={outer} average:"))
        && stdout.contains("Total Runtime:")
    {
        return None;
    }
    Some(format!(
        "{name} {}: {:?}\n{stdout}{}",
        mode.join(" "),
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    ))
}

#[test]
fn every_benchmark_verifies_in_every_mode() {
    let mut failures = Vec::new();
    for (name, inner) in BENCHMARKS {
        for mode in MODES {
            failures.extend(run(name, "2", inner, mode));
        }
    }
    for (name, inner) in LONG_BENCHMARKS {
        for mode in &MODES[..3] {
            let mode: Vec<&str> = mode.iter().copied().chain(["--gc-stress", "0"]).collect();
            failures.extend(run(name, "1", inner, &mode));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_harness_reports_failures_and_unknown_benchmarks() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../benchmarks");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_som"))
            .arg("-cp")
            .arg(&dir)
            .arg(dir.join("BenchmarkHarness.som"))
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["NoSuchBenchmark"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout)
        .contains("ERROR: Failed loading benchmark: NoSuchBenchmark"));
    let out = run(&[]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("Usage"));
    // Fannkuch knows its answers for sizes 1..12 only: asking for 13 must fail.
    let out = run(&["Fannkuch", "1", "13"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// The committed synthesized programs (`som-bench synthesize`) load: they parse and
/// compile against the benchmarks. (Running them takes seconds each; `synthesize`
/// validates them by running and profiling each one.)
#[test]
fn the_synthesized_programs_load() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../benchmarks");
    let synth = dir.join("synthesized");
    let mut names: Vec<String> = std::fs::read_dir(&synth)
        .unwrap()
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            Some(name.strip_suffix(".som")?.to_string())
        })
        .collect();
    names.sort();
    assert_eq!(names.len(), 21, "{names:?}");
    let symbols: Vec<String> = names.iter().map(|n| format!("#{n}")).collect();
    let checker = std::env::temp_dir().join(format!("som-synth-{}", std::process::id()));
    std::fs::create_dir_all(&checker).unwrap();
    std::fs::write(
        checker.join("CheckSynth.som"),
        format!(
            "CheckSynth = ( run = ( #({}) do: [ :n | (system load: n) isNil ifTrue: [ \
             ('missing ' + n) println. system exit: 1 ] ]. 'ok' println ) )",
            symbols.join(" ")
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_som"))
        .arg("-cp")
        .arg(format!("{}:{}", dir.display(), synth.display()))
        .arg(checker.join("CheckSynth.som"))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "ok\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
