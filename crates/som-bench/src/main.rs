//! `som-bench`: the evaluation harness (DESIGN section 9).
//!
//! `som-bench run` runs benchmarks × VMs × process invocations (each process runs the
//! standard harness for N in-process iterations), interleaved, with a progress bar, and
//! writes the raw data (`runs.json`, `iterations.csv`, `invocations.csv`) and a Markdown
//! report (`report.md`) into the output directory. `som-bench report DIR` rebuilds the
//! report from `runs.json`. VMs are command templates, so peer VMs and our modes are
//! compared in the same run.
//!
//! Plots (SVG and PNG) go next to the report. `som-bench synthesize` writes the paper's
//! synthesized programs (Appendix A, `synthesize`). `som-bench experiment NAME` runs the
//! paper's questions over our modes: `warmup` (Q1), `peak` (Q2), `ablation` (Q3), and
//! `peers` compares our interpreter with SOM++ and som-rs.

mod plot;
mod report;
mod runner;
mod stats;
mod synthesize;

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use runner::{Benchmark, Run, Vm};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Our benchmarks and their inner iterations at the sizes of the standard `All.som`.
const DEFAULT_SUITE: &[(&str, u64)] = &[
    ("Fibonacci", 10),
    ("Recurse", 12),
    ("Sum", 40),
    ("Sieve", 20),
    ("Towers", 2),
    ("Queens", 10),
    ("Permute", 10),
    ("List", 2),
    ("Storage", 8),
    ("Bounce", 10),
    ("BubbleSort", 15),
    ("QuickSort", 15),
    ("TreeSort", 7),
    ("Mandelbrot", 50),
    ("NBody", 1000),
    ("Fannkuch", 7),
    ("Richards", 1),
    ("Json", 1),
    ("DeltaBlue", 100),
    ("CD", 100),
    ("Havlak", 1),
    ("PageRank", 75),
    ("GraphSearch", 7),
];

#[derive(Parser)]
#[command(
    name = "som-bench",
    about = "Runs SOM benchmarks across VMs and reports statistics"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run benchmarks and write raw data and a report.
    Run(RunConfig),
    /// Rebuild report.md from a results directory.
    Report { dir: PathBuf },
    /// Generate the synthesized programs of the paper's Appendix A (Synth00..Synth20).
    Synthesize(synthesize::SynthConfig),
    /// A named experiment of the paper, run over the modes the VM has.
    Experiment(ExperimentConfig),
}

#[derive(clap::Args)]
struct ExperimentConfig {
    /// `warmup`: the first iteration of the synthesized programs in every mode
    /// (interp, threaded, tracing and tracing-high; the paper's Q1). `peak`: the steady state of the synthesized programs and the suite
    /// in every mode (Q2). `ablation`: tier 1 with all optimisations, without handler
    /// specialisation (ours, beyond the paper), without inline caches, and without
    /// inline caches and with stub handlers, normalised to the interpreter (Q3,
    /// Figure 13). `peers`: our interpreter against SOM++ and som-rs
    /// (give --sompp and/or --somrs, and --smalltalk).
    name: String,
    /// In-process iterations (default: 1 for warmup, 20 for the others).
    #[arg(long)]
    iterations: Option<usize>,
    /// Process invocations per benchmark and VM (default: 5 for warmup, else 3).
    #[arg(long)]
    invocations: Option<usize>,
    /// Benchmarks as NAME:INNER, comma-separated (default: the experiment's own).
    #[arg(long, value_delimiter = ',')]
    benchmarks: Vec<String>,
    #[arg(long, default_value_os_t = default_som())]
    som: PathBuf,
    #[arg(long, default_value = "benchmarks")]
    dir: PathBuf,
    #[arg(long)]
    out: Option<PathBuf>,
    /// `peers`: the SOM++ binary.
    #[arg(long)]
    sompp: Option<PathBuf>,
    /// `peers`: the som-rs bytecode interpreter binary (`som-interpreter-bc`).
    #[arg(long)]
    somrs: Option<PathBuf>,
    /// `peers`: the core library the peers run with (`Smalltalk` of a SOM checkout).
    #[arg(long)]
    smalltalk: Option<PathBuf>,
    /// `warmup`, `peak`: how many times higher `tracing-high`'s thresholds are than
    /// `tracing`'s (default 3, the paper's).
    #[arg(long)]
    high_scale: Option<u32>,
}

/// The harness command of our VM; `{mode}` is replaced by the mode's flags.
const HARNESS: &str = "{som} {mode} -cp {dir}:{dir}/synthesized {dir}/BenchmarkHarness.som {benchmark} {iterations} {inner}";

/// How many synthesized programs `synthesize` writes by default (suite order + 20).
const SYNTHESIZED: usize = 21;

/// The tier-1 threshold of the ablation (the paper's Q3 runs use 23).
const ABLATION_THRESHOLD: u32 = 23;

/// A named experiment: its VMs, benchmarks, iterations and invocations.
#[derive(Debug)]
struct Experiment {
    vms: Vec<String>,
    benchmarks: Vec<String>,
    iterations: usize,
    invocations: usize,
}

fn our_vm(label: &str, mode: &str) -> String {
    format!("{label}={}", HARNESS.replace("{mode}", mode))
}

/// How much higher `tracing-high`'s thresholds are than `tracing`'s: the paper's
/// "tracing with a threshold three times higher".
const TRACING_HIGH_SCALE: u32 = 3;

/// Our execution modes as the study names them: the interpreter, tier 1, tier 2, and
/// tier 2 with every threshold multiplied by `high_scale` (`tracing-high`).
fn our_modes(high_scale: u32) -> Vec<String> {
    vec![
        our_vm("interp", "--mode interp"),
        our_vm("threaded", "--mode threaded --jit-stats"),
        our_vm("tracing", "--mode tracing --jit-stats"),
        our_vm(
            "tracing-high",
            &format!("--mode tracing --jit-stats --jit threshold_scale={high_scale}"),
        ),
    ]
}

fn synthesized_benchmarks() -> Vec<String> {
    (0..SYNTHESIZED).map(|k| format!("Synth{k:02}:1")).collect()
}

fn experiment(c: &ExperimentConfig) -> Result<Experiment, String> {
    let t = ABLATION_THRESHOLD;
    let modes = || our_modes(c.high_scale.unwrap_or(TRACING_HIGH_SCALE));
    let e = match c.name.as_str() {
        "warmup" => Experiment {
            vms: modes(),
            benchmarks: synthesized_benchmarks(),
            iterations: 1,
            invocations: 5,
        },
        "peak" => Experiment {
            vms: modes(),
            benchmarks: synthesized_benchmarks()
                .into_iter()
                .take(3)
                .chain(DEFAULT_SUITE.iter().map(|(n, i)| format!("{n}:{i}")))
                .collect(),
            iterations: 20,
            invocations: 3,
        },
        "ablation" => Experiment {
            vms: vec![
                our_vm("interp", "--mode interp"),
                our_vm(
                    "threaded",
                    &format!("--mode threaded --jit tier1_threshold={t}"),
                ),
                our_vm(
                    "threaded-no-specialise",
                    &format!("--mode threaded --jit tier1_threshold={t},tier1_specialise=off"),
                ),
                our_vm(
                    "threaded-no-ic",
                    &format!("--mode threaded --jit tier1_threshold={t},tier1_ic=off"),
                ),
                our_vm(
                    "threaded-no-ic-stubs",
                    &format!(
                        "--mode threaded --jit tier1_threshold={t},tier1_ic=off,tier1_stub_handlers=on"
                    ),
                ),
            ],
            benchmarks: Vec::new(),
            iterations: 20,
            invocations: 3,
        },
        "peers" => {
            let lib = c
                .smalltalk
                .as_ref()
                .ok_or("peers needs --smalltalk DIR (the Smalltalk folder of a SOM checkout)")?
                .display()
                .to_string();
            let mut vms = vec![our_vm("interp", "--mode interp")];
            if let Some(p) = &c.sompp {
                vms.push(format!(
                    "SOM++={} -cp {lib}:{{dir}} {{dir}}/BenchmarkHarness.som {{benchmark}} {{iterations}} {{inner}}",
                    p.display()
                ));
            }
            if let Some(p) = &c.somrs {
                vms.push(format!(
                    "som-rs={} -c {lib} {{dir}} -- BenchmarkHarness {{benchmark}} {{iterations}} {{inner}}",
                    p.display()
                ));
            }
            if vms.len() == 1 {
                return Err("peers needs --sompp PATH and/or --somrs PATH".into());
            }
            Experiment {
                vms,
                benchmarks: Vec::new(),
                iterations: 20,
                invocations: 3,
            }
        }
        other => {
            return Err(format!(
                "unknown experiment '{other}' (known: warmup, peak, ablation, peers)"
            ))
        }
    };
    Ok(Experiment {
        benchmarks: if c.benchmarks.is_empty() {
            e.benchmarks
        } else {
            c.benchmarks.clone()
        },
        iterations: c.iterations.unwrap_or(e.iterations),
        invocations: c.invocations.unwrap_or(e.invocations),
        vms: e.vms,
    })
}

/// The `som` binary built alongside this one (same profile and target directory),
/// the default VM under test.
pub fn default_som() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.join("som")))
        .unwrap_or_else(|| PathBuf::from("som"))
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Run(config) => run(config),
        Cmd::Report { dir } => rebuild_report(&dir),
        Cmd::Synthesize(config) => synthesize::synthesize(&config, DEFAULT_SUITE),
        Cmd::Experiment(c) => experiment(&c).and_then(|e| {
            run(RunConfig {
                vms: e.vms,
                benchmarks: e.benchmarks,
                iterations: e.iterations,
                invocations: e.invocations,
                som: c.som,
                dir: c.dir,
                baseline: Some("interp".into()),
                out: c
                    .out
                    .unwrap_or_else(|| PathBuf::from(format!("bench-results/{}", c.name))),
            })
        }),
    };
    if let Err(e) = result {
        eprintln!("som-bench: {e}");
        std::process::exit(1);
    }
}

#[derive(clap::Args)]
struct RunConfig {
    /// A VM as NAME=TEMPLATE; the template may use {benchmark}, {iterations},
    /// {inner}, {som} and {dir}. Default: our interp and threaded modes.
    #[arg(long = "vm", value_name = "NAME=TEMPLATE")]
    vms: Vec<String>,
    /// Benchmarks as NAME:INNER, comma-separated. Default: the whole suite.
    #[arg(long, value_delimiter = ',')]
    benchmarks: Vec<String>,
    /// In-process iterations per invocation.
    #[arg(long, default_value_t = 20)]
    iterations: usize,
    /// Process invocations per benchmark and VM.
    #[arg(long, default_value_t = 3)]
    invocations: usize,
    /// The `som` binary that {som} stands for.
    #[arg(long, default_value_os_t = default_som())]
    som: PathBuf,
    /// The benchmark directory that {dir} stands for.
    #[arg(long, default_value = "benchmarks")]
    dir: PathBuf,
    /// The VM the ratios are relative to (default: the first).
    #[arg(long)]
    baseline: Option<String>,
    /// Where results go.
    #[arg(long, default_value = "bench-results")]
    out: PathBuf,
}

fn parse_vms(specs: &[String], som: &Path, dir: &Path) -> Result<Vec<Vm>, String> {
    let specs: Vec<String> = if specs.is_empty() {
        vec![
            our_vm("interp", "--mode interp"),
            our_vm("threaded", "--mode threaded --jit-stats"),
        ]
    } else {
        specs.to_vec()
    };
    specs
        .iter()
        .map(|s| {
            let (name, template) = s
                .split_once('=')
                .ok_or_else(|| format!("--vm expects NAME=TEMPLATE, got '{s}'"))?;
            Ok(Vm {
                name: name.to_string(),
                template: template
                    .replace("{som}", &som.display().to_string())
                    .replace("{dir}", &dir.display().to_string()),
            })
        })
        .collect()
}

fn parse_benchmarks(specs: &[String]) -> Result<Vec<Benchmark>, String> {
    if specs.is_empty() {
        return Ok(DEFAULT_SUITE
            .iter()
            .map(|(n, i)| Benchmark {
                name: n.to_string(),
                inner: *i,
            })
            .collect());
    }
    specs
        .iter()
        .map(|s| {
            let (name, inner) = s.split_once(':').unwrap_or((s, "1"));
            let inner = inner
                .parse()
                .map_err(|_| format!("bad inner iteration count in '{s}'"))?;
            Ok(Benchmark {
                name: name.to_string(),
                inner,
            })
        })
        .collect()
}

fn run(c: RunConfig) -> Result<(), String> {
    let vms = parse_vms(&c.vms, &c.som, &c.dir)?;
    let benchmarks = parse_benchmarks(&c.benchmarks)?;
    std::fs::create_dir_all(&c.out).map_err(|e| format!("{}: {e}", c.out.display()))?;
    let total = (c.invocations * benchmarks.len() * vms.len()) as u64;
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:40}] {pos}/{len} {msg}")
            .map_err(|e| e.to_string())?
            .progress_chars("=> "),
    );
    let mut runs: Vec<Run> = Vec::new();
    // Interleave: every invocation round visits every benchmark on every VM.
    for invocation in 0..c.invocations {
        for b in &benchmarks {
            for vm in &vms {
                bar.set_message(format!(
                    "{} on {} (invocation {})",
                    b.name,
                    vm.name,
                    invocation + 1
                ));
                let r = runner::run_once(vm, b, c.iterations, invocation);
                if r.failure.is_some() {
                    bar.println(format!(
                        "failed: {} on {} (exit {})",
                        b.name, vm.name, r.exit_status
                    ));
                }
                runs.push(r);
                bar.inc(1);
            }
        }
    }
    bar.finish_with_message("done");
    write_results(&c.out, &runs)?;
    let names: Vec<String> = vms.iter().map(|v| v.name.clone()).collect();
    let baseline = c.baseline.unwrap_or_else(|| names[0].clone());
    write_report(&c.out, &runs, &names, &baseline)
}

fn write_results(out: &Path, runs: &[Run]) -> Result<(), String> {
    let io = |e: std::io::Error| e.to_string();
    let json = serde_json::to_string_pretty(runs).map_err(|e| e.to_string())?;
    std::fs::write(out.join("runs.json"), json).map_err(io)?;
    let mut its = std::fs::File::create(out.join("iterations.csv")).map_err(io)?;
    writeln!(its, "vm,benchmark,invocation,iteration,runtime_us").map_err(io)?;
    let mut inv = std::fs::File::create(out.join("invocations.csv")).map_err(io)?;
    writeln!(
        inv,
        "vm,benchmark,invocation,wall_ms,max_rss_kb,exit_status"
    )
    .map_err(io)?;
    for r in runs {
        for (i, t) in r.iterations_us.iter().enumerate() {
            writeln!(
                its,
                "{},{},{},{},{}",
                r.vm,
                r.benchmark,
                r.invocation,
                i + 1,
                t
            )
            .map_err(io)?;
        }
        writeln!(
            inv,
            "{},{},{},{:.1},{},{}",
            r.vm, r.benchmark, r.invocation, r.wall_ms, r.max_rss_kb, r.exit_status
        )
        .map_err(io)?;
    }
    Ok(())
}

fn write_report(out: &Path, runs: &[Run], vms: &[String], baseline: &str) -> Result<(), String> {
    let mut md = report::markdown(runs, vms, baseline, "som-bench report");
    md.push_str(&report::plots(out, runs, vms, baseline)?);
    std::fs::write(out.join("report.md"), &md).map_err(|e| e.to_string())?;
    println!("{md}");
    Ok(())
}

fn rebuild_report(dir: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(dir.join("runs.json")).map_err(|e| e.to_string())?;
    let runs: Vec<Run> = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let mut vms: Vec<String> = Vec::new();
    for r in &runs {
        if !vms.contains(&r.vm) {
            vms.push(r.vm.clone());
        }
    }
    let baseline = vms.first().cloned().ok_or("no runs")?;
    write_report(dir, &runs, &vms, &baseline)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn experiment_of(args: &[&str]) -> Result<Experiment, String> {
        let mut argv = vec!["som-bench", "experiment"];
        argv.extend_from_slice(args);
        match Cli::try_parse_from(argv).unwrap().command {
            Cmd::Experiment(c) => experiment(&c),
            _ => unreachable!(),
        }
    }

    #[test]
    fn experiments_name_their_vms_and_benchmarks() {
        let w = experiment_of(&["warmup"]).unwrap();
        assert_eq!(w.benchmarks.len(), SYNTHESIZED);
        assert_eq!((w.iterations, w.invocations), (1, 5));
        let a = experiment_of(&["ablation", "--iterations", "7"]).unwrap();
        let names: Vec<&str> = a.vms.iter().map(|v| v.split('=').next().unwrap()).collect();
        assert_eq!(
            names,
            [
                "interp",
                "threaded",
                "threaded-no-specialise",
                "threaded-no-ic",
                "threaded-no-ic-stubs"
            ]
        );
        assert_eq!(a.iterations, 7);
        let p = experiment_of(&["peers", "--smalltalk", "/s", "--sompp", "/bin/sompp"]).unwrap();
        assert_eq!(p.vms.len(), 2);
        assert!(
            p.vms[1].starts_with("SOM++=/bin/sompp -cp /s:{dir} "),
            "{:?}",
            p.vms
        );
    }

    #[test]
    fn experiments_explain_what_they_miss() {
        assert!(experiment_of(&["peers"])
            .unwrap_err()
            .contains("--smalltalk"));
        assert!(experiment_of(&["peers", "--smalltalk", "/s"])
            .unwrap_err()
            .contains("--sompp"));
        assert!(experiment_of(&["speedy"])
            .unwrap_err()
            .contains("unknown experiment"));
    }
}
