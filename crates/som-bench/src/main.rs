//! `som-bench`: the evaluation harness (DESIGN section 9).
//!
//! `som-bench run` runs benchmarks × VMs × process invocations (each process runs the
//! standard harness for N in-process iterations), interleaved, with a progress bar, and
//! writes the raw data (`runs.json`, `iterations.csv`, `invocations.csv`) and a Markdown
//! report (`report.md`) into the output directory. `som-bench report DIR` rebuilds the
//! report from `runs.json`. VMs are command templates, so peer VMs and our modes are
//! compared in the same run.
//!
//! Plots (SVG) go next to the report. `som-bench experiment ablation` is the paper's Q3
//! over our modes. Still to come (issue 4): PNG plots, the synthesizer, and the warm-up
//! and peak experiments (with tier 2).

mod plot;
mod report;
mod runner;
mod stats;

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
    /// A named experiment of the paper, run over the modes the VM has.
    Experiment {
        /// `ablation`: tier 1 with all optimisations, without inline caches, and
        /// without inline caches and with stub handlers, normalised to the interpreter
        /// (the paper's Q3, Figure 13).
        name: String,
        #[arg(long, default_value_t = 20)]
        iterations: usize,
        #[arg(long, default_value_t = 3)]
        invocations: usize,
        #[arg(long, default_value = "target/release/som")]
        som: PathBuf,
        #[arg(long, default_value = "benchmarks")]
        dir: PathBuf,
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// The tier-1 threshold of the ablation (the paper's Q3 runs use 23).
const ABLATION_THRESHOLD: u32 = 23;

/// The VMs of a named experiment.
fn experiment_vms(name: &str) -> Result<Vec<String>, String> {
    let harness =
        "{som} {mode} -cp {dir} {dir}/BenchmarkHarness.som {benchmark} {iterations} {inner}";
    let vm = |label: &str, mode: &str| format!("{label}={}", harness.replace("{mode}", mode));
    let t = ABLATION_THRESHOLD;
    match name {
        "ablation" => Ok(vec![
            vm("interp", "--mode interp"),
            vm(
                "threaded",
                &format!("--mode threaded --jit tier1_threshold={t}"),
            ),
            vm(
                "threaded-no-ic",
                &format!("--mode threaded --jit tier1_threshold={t},tier1_ic=off"),
            ),
            vm(
                "threaded-no-ic-stubs",
                &format!(
                    "--mode threaded --jit tier1_threshold={t},tier1_ic=off,tier1_stub_handlers=on"
                ),
            ),
        ]),
        other => Err(format!(
            "unknown experiment '{other}' (known: ablation; warmup and peak arrive with tier 2)"
        )),
    }
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Run(config) => run(config),
        Cmd::Report { dir } => rebuild_report(&dir),
        Cmd::Experiment {
            name,
            iterations,
            invocations,
            som,
            dir,
            out,
        } => experiment_vms(&name).and_then(|vms| {
            run(RunConfig {
                vms,
                benchmarks: Vec::new(),
                iterations,
                invocations,
                som,
                dir,
                baseline: Some("interp".into()),
                out: out.unwrap_or_else(|| PathBuf::from(format!("bench-results/{name}"))),
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
    #[arg(long, default_value = "target/release/som")]
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
    let harness =
        "{som} {mode} -cp {dir} {dir}/BenchmarkHarness.som {benchmark} {iterations} {inner}";
    let specs: Vec<String> = if specs.is_empty() {
        vec![
            format!("interp={}", harness.replace("{mode}", "--mode interp")),
            format!(
                "threaded={}",
                harness.replace("{mode}", "--mode threaded --jit-stats")
            ),
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
