//! Command-line parsing (clap). SOM VMs spell the classpath option `-cp`, which is not a
//! valid clap short option, so it is rewritten to `--classpath` first; everything from
//! the program name on belongs to the program.

use clap::{Parser, ValueEnum};
use std::path::PathBuf;

/// Execution modes (the two-level mode arrives with the switch between tiers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// Tier 0 only: the bytecode interpreter.
    Interp,
    /// Tier 0, then tier 1: hot methods become threaded code.
    Threaded,
    /// Tier 0, then tier 2: hot loops are traced and compiled.
    Tracing,
}

#[derive(Debug, Parser)]
#[command(
    name = "som",
    version,
    about = "A Simple Object Machine (SOM Smalltalk) VM",
    long_about = "Runs a SOM program: `som [options] [-cp dir:dir] MainClass|path/File.som [args...]`.\n\
                  The core library is built in; a Smalltalk directory on the classpath overrides it.\n\
                  Without a program, starts a read-eval-print loop."
)]
pub struct Cli {
    /// Directories to search for classes, separated by ':' (also spelled -cp).
    #[arg(long = "classpath", value_name = "DIRS")]
    pub classpath: Option<String>,

    /// Execution mode.
    #[arg(long, value_enum, default_value = "interp")]
    pub mode: Mode,

    /// JIT settings, PyPy-style: `--jit tier1_threshold=N` (repeatable, or comma-separated).
    #[arg(long, value_name = "KEY=VALUE", value_parser = parse_jit_setting)]
    pub jit: Vec<Vec<(String, u32)>>,

    /// Print JIT statistics on stderr when the program ends.
    #[arg(long)]
    pub jit_stats: bool,

    /// Write every compiled trace to FILE: as recorded, after each optimisation pass
    /// (with op counts), and as compiled, with its guards' snapshots, machine-code
    /// size and compile time.
    #[arg(long, value_name = "FILE")]
    pub jit_log: Option<PathBuf>,

    /// Tier 2's optimisation passes, `+`-separated, run in pipeline order: peel, fold,
    /// guards, cse, heap, dce; or `all` (the default) or `none`.
    #[arg(long, value_name = "PASSES", default_value = "all", value_parser = parse_passes)]
    pub jit_passes: PassList,

    /// Write how often each method and block was invoked to FILE when the program
    /// ends (`count<TAB>Class>>#selector` lines, most-called first).
    #[arg(long, value_name = "FILE")]
    pub profile_calls: Option<PathBuf>,

    /// Deepest nesting of activations before a SOM-level stack overflow error.
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    pub max_stack_depth: usize,

    /// Largest heap the collector may grow to, in bytes with an optional K/M/G suffix
    /// (it starts at --heap-min and grows as the live data needs). Default: 1G.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub heap_size: Option<usize>,

    /// Starting heap size (the heap never shrinks below it), e.g. 64M. Default: 4M.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub heap_min: Option<usize>,

    /// GC-stress mode: collect every N allocations (testing the collector and the
    /// VM's roots). Default: the SOM_GC_STRESS environment variable, else off.
    #[arg(long, value_name = "N")]
    pub gc_stress: Option<u64>,

    /// Collector threads. Default: 2.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    pub gc_threads: Option<u16>,

    /// The main class (or its file) followed by the program's arguments.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "PROGRAM"
    )]
    pub program: Vec<String>,
}

/// The JIT settings `--jit` accepts, with what they mean.
pub const JIT_SETTINGS: &[(&str, &str)] = &[
    (
        "tier1_threshold",
        "invocations of a method before tier 1 compiles it (default 1000)",
    ),
    (
        "tier1_ic",
        "on/off: inline-cached direct calls in tier-1 code (default on)",
    ),
    (
        "tier1_specialise",
        "on/off: compile handlers into tier-1 code, fast paths native and slow paths \
         calls (default on; off calls every handler that decides)",
    ),
    (
        "tier1_stub_handlers",
        "on/off: call handlers through stubs testing a dummy flag, as the unoptimised \
         original did (default off)",
    ),
    (
        "threshold",
        "back-edges of a loop before tier 2 traces it (default 1039)",
    ),
    (
        "function_threshold",
        "invocations of a loop-less method before tier 2 traces it (default 1619)",
    ),
    (
        "trace_limit",
        "most IR operations in one trace (default 6000)",
    ),
    (
        "bridge_threshold",
        "failures of a guard before a bridge is traced from it (default 200)",
    ),
    (
        "inline_depth",
        "most activations one trace inlines (default 16)",
    ),
    (
        "deopt_every",
        "testing: every Nth guard check in compiled traces fails (default 0, off)",
    ),
    (
        "threshold_scale",
        "multiplies threshold, function_threshold and bridge_threshold, applied after them, at least 1 (the paper's 'tracing with a high threshold' is 3; default 1)",
    ),
];

/// Parses a byte size such as `64M`, `2G` or `1048576`.
fn parse_size(s: &str) -> Result<usize, String> {
    let (digits, unit) = match s.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => s.split_at(i),
        None => (s, ""),
    };
    let shift = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" => 10,
        "M" | "MB" => 20,
        "G" | "GB" => 30,
        _ => return Err(format!("unknown size unit '{unit}' (use K, M or G)")),
    };
    let n: usize = digits
        .parse()
        .map_err(|_| format!("expected a size such as 512M, got '{s}'"))?;
    n.checked_shl(shift)
        .filter(|b| b >> shift == n && *b >= 1 << 20)
        .ok_or_else(|| format!("heap size '{s}' must be between 1M and the address space"))
}

/// Tier 2's optimisation passes, as `--jit-passes` names them.
#[derive(Debug, Clone)]
pub struct PassList(pub Vec<som_vm::tier2::Pass>);

fn parse_passes(s: &str) -> Result<PassList, String> {
    som_vm::tier2::passes_named(s).map(PassList)
}

/// Parses `key=value[,key=value...]` for `--jit`.
fn parse_jit_setting(s: &str) -> Result<Vec<(String, u32)>, String> {
    s.split(',')
        .map(|kv| {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| format!("expected key=value, got '{kv}'"))?;
            if !JIT_SETTINGS.iter().any(|(name, _)| *name == k) {
                let known: Vec<_> = JIT_SETTINGS
                    .iter()
                    .map(|(n, d)| format!("{n}: {d}"))
                    .collect();
                return Err(format!(
                    "unknown JIT setting '{k}'; known: {}",
                    known.join("; ")
                ));
            }
            let v = match v {
                "on" | "true" => 1,
                "off" | "false" => 0,
                n => n
                    .parse::<u32>()
                    .map_err(|_| format!("{k} expects a number or on/off, got '{n}'"))?,
            };
            Ok((k.to_string(), v))
        })
        .collect()
}

impl Cli {
    /// The `--jit` settings as tier-1 options.
    pub fn tier1_options(&self) -> som_vm::tier1::Tier1Options {
        let mut o = som_vm::tier1::Tier1Options::default();
        for (k, v) in self.jit.iter().flatten() {
            match k.as_str() {
                "tier1_threshold" => o.threshold = *v,
                "tier1_ic" => o.inline_caches = *v != 0,
                "tier1_stub_handlers" => o.stub_handlers = *v != 0,
                "tier1_specialise" => o.specialise = *v != 0,
                _ => {}
            }
        }
        o
    }

    /// The `--jit` settings as tier-2 options.
    pub fn tier2_options(&self) -> som_vm::tier2::TraceOptions {
        let mut o = som_vm::tier2::trace_options();
        let mut scale = 1;
        for (k, v) in self.jit.iter().flatten() {
            match k.as_str() {
                "threshold_scale" => scale = (*v).max(1),
                "threshold" => o.threshold = *v,
                "function_threshold" => o.function_threshold = *v,
                "trace_limit" => o.trace_limit = *v,
                "bridge_threshold" => o.bridge_threshold = *v,
                "inline_depth" => o.inline_depth = (*v).max(1),
                "deopt_every" => o.deopt_every = *v,
                _ => {}
            }
        }
        o.threshold = o.threshold.saturating_mul(scale);
        o.function_threshold = o.function_threshold.saturating_mul(scale);
        o.bridge_threshold = o.bridge_threshold.saturating_mul(scale);
        o
    }

    /// The collector settings: the flags given, `GcOptions`' defaults for the rest.
    pub fn gc_options(&self) -> som_vm::gc::GcOptions {
        let d = som_vm::gc::GcOptions::default();
        som_vm::gc::GcOptions {
            max_heap_bytes: self.heap_size.unwrap_or(d.max_heap_bytes),
            min_heap_bytes: self.heap_min.unwrap_or(d.min_heap_bytes),
            stress_every: self.gc_stress.unwrap_or(d.stress_every),
            threads: self.gc_threads.map_or(d.threads, usize::from),
        }
    }

    pub fn classpath_dirs(&self) -> Vec<PathBuf> {
        self.classpath
            .iter()
            .flat_map(|cp| cp.split(':'))
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .collect()
    }
}

/// True if `arg` is one of our long options that takes a value and is written
/// without `=value` (so the next argument is that value, not the program). Asks clap,
/// so every new option is covered.
fn takes_separate_value(arg: &str) -> bool {
    use clap::CommandFactory;
    let Some(name) = arg.strip_prefix("--") else {
        return false;
    };
    Cli::command()
        .get_arguments()
        .any(|a| a.get_long() == Some(name) && a.get_action().takes_values())
}

/// Rewrites `-cp` (before the program) to `--classpath`.
fn normalise(args: impl Iterator<Item = String>) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_options = true;
    let mut expect_value = false;
    for (i, a) in args.enumerate() {
        if i == 0 || !in_options {
            out.push(a);
            continue;
        }
        if expect_value {
            expect_value = false;
            out.push(a);
            continue;
        }
        if a == "-cp" {
            out.push("--classpath".into());
            expect_value = true;
        } else if takes_separate_value(&a) {
            out.push(a);
            expect_value = true;
        } else {
            if !a.starts_with('-') {
                in_options = false;
            }
            out.push(a);
        }
    }
    out
}

pub fn parse() -> Cli {
    Cli::parse_from(normalise(std::env::args()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_vec(v: &[&str]) -> Cli {
        Cli::try_parse_from(normalise(v.iter().map(|s| s.to_string()))).unwrap()
    }

    #[test]
    fn classpath_and_program_arguments() {
        let c = parse_vec(&["som", "-cp", "a:b", "Main", "-cp", "x"]);
        assert_eq!(
            c.classpath_dirs(),
            vec![PathBuf::from("a"), PathBuf::from("b")]
        );
        assert_eq!(c.program, vec!["Main", "-cp", "x"]);
        let c = parse_vec(&[
            "som",
            "--gc-stress",
            "7",
            "-cp",
            "a",
            "--heap-size",
            "64M",
            "M",
        ]);
        assert_eq!(c.gc_stress, Some(7));
        assert_eq!(c.classpath.as_deref(), Some("a"));
        assert_eq!(c.heap_size, Some(64 << 20));
        assert_eq!(c.program, vec!["M"]);
    }

    #[test]
    fn jit_settings() {
        let c = parse_vec(&[
            "som",
            "--mode",
            "threaded",
            "--jit",
            "tier1_threshold=1",
            "Main",
        ]);
        assert_eq!(c.mode, Mode::Threaded);
        assert_eq!(c.tier1_options().threshold, 1);
        let c = parse_vec(&[
            "som",
            "--jit",
            "tier1_ic=off,tier1_stub_handlers=on",
            "Main",
        ]);
        assert!(!c.tier1_options().inline_caches);
        assert!(c.tier1_options().stub_handlers);
        assert!(parse_vec(&["som", "Main"]).tier1_options().specialise);
        let c = parse_vec(&["som", "--jit", "tier1_specialise=off", "Main"]);
        assert!(!c.tier1_options().specialise);
        assert!(Cli::try_parse_from(["som", "--jit", "warp=1", "Main"]).is_err());
        assert!(Cli::try_parse_from(["som", "--jit", "tier1_threshold=x", "Main"]).is_err());
    }

    #[test]
    fn unknown_mode_is_rejected() {
        let r = Cli::try_parse_from(["som", "--mode", "two-level", "Main"]);
        assert!(r.is_err());
    }
}
