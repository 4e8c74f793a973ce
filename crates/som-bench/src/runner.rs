//! Running benchmarks: every (invocation, benchmark, VM) combination, interleaved so
//! that drift of the machine spreads over all VMs alike. Each run is one process of a
//! VM command template; the harness's `iterations=1 runtime: <n>us` lines give the
//! per-iteration times, `wait4` gives wall time, peak RSS and the exit status.

use serde::{Deserialize, Serialize};
use std::process::{Command, Stdio};
use std::time::Instant;

/// A VM under test: a name and a command template. `{benchmark}`, `{iterations}` and
/// `{inner}` are replaced per run; the template is split on whitespace.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Vm {
    pub name: String,
    pub template: String,
}

/// A benchmark and its inner-iteration count (work per iteration).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Benchmark {
    pub name: String,
    pub inner: u64,
}

/// What one process run produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Run {
    pub vm: String,
    pub benchmark: String,
    pub invocation: usize,
    /// Per-iteration times from the harness, in microseconds.
    pub iterations_us: Vec<u64>,
    pub wall_ms: f64,
    pub max_rss_kb: i64,
    pub exit_status: i32,
    /// Tier-1 compile speed when the VM printed `--jit-stats` (µs per bytecode).
    #[serde(default)]
    pub compile_us_per_bytecode: Option<f64>,
    /// The end of stdout and stderr when the run failed.
    pub failure: Option<String>,
}

impl Vm {
    pub fn command(&self, b: &Benchmark, iterations: usize) -> Vec<String> {
        self.template
            .split_whitespace()
            .map(|w| {
                w.replace("{benchmark}", &b.name)
                    .replace("{iterations}", &iterations.to_string())
                    .replace("{inner}", &b.inner.to_string())
            })
            .collect()
    }
}

/// The per-iteration runtimes the standard harness prints.
pub fn parse_iterations(stdout: &str) -> Vec<u64> {
    stdout
        .lines()
        .filter_map(|l| {
            let rest = l.split("iterations=1 runtime: ").nth(1)?;
            let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
            let n: u64 = digits.parse().ok()?;
            Some(if rest[digits.len()..].starts_with("ms") {
                n * 1000
            } else {
                n
            })
        })
        .collect()
}

/// The `us per bytecode` figure of a `--jit-stats` report, if there is one.
pub fn parse_compile_speed(stderr: &str) -> Option<f64> {
    let line = stderr.lines().find(|l| l.contains("us per bytecode"))?;
    let before = line.split(" us per bytecode").next()?;
    before.rsplit(' ').next()?.parse().ok()
}

/// Runs one process and measures it.
pub fn run_once(vm: &Vm, b: &Benchmark, iterations: usize, invocation: usize) -> Run {
    let argv = vm.command(b, iterations);
    let start = Instant::now();
    let child = Command::new(&argv[0])
        .args(&argv[1..])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut run = Run {
        vm: vm.name.clone(),
        benchmark: b.name.clone(),
        invocation,
        iterations_us: Vec::new(),
        wall_ms: 0.0,
        max_rss_kb: 0,
        exit_status: -1,
        compile_us_per_bytecode: None,
        failure: None,
    };
    let child = match child {
        Ok(c) => c,
        Err(e) => {
            run.failure = Some(format!("cannot start {}: {e}", argv[0]));
            return run;
        }
    };
    let pid = child.id() as libc::pid_t;
    // Read the output on threads so a chatty child cannot block on a full pipe.
    let mut stdout_pipe = child.stdout.expect("piped");
    let mut stderr_pipe = child.stderr.expect("piped");
    let out_thread = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout_pipe, &mut s);
        s
    });
    let err_thread = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr_pipe, &mut s);
        s
    });
    let mut status: libc::c_int = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our child, not yet waited for; the pointers are valid.
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    run.wall_ms = start.elapsed().as_secs_f64() * 1000.0;
    let stdout = out_thread.join().unwrap_or_default();
    let stderr = err_thread.join().unwrap_or_default();
    if waited == pid {
        run.max_rss_kb = usage.ru_maxrss;
        run.exit_status = if libc::WIFEXITED(status) {
            libc::WEXITSTATUS(status)
        } else {
            -libc::WTERMSIG(status)
        };
    }
    run.iterations_us = parse_iterations(&stdout);
    run.compile_us_per_bytecode = parse_compile_speed(&stderr);
    if run.exit_status != 0 || run.iterations_us.len() != iterations {
        let tail = |s: &str| {
            s.chars()
                .rev()
                .take(400)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<String>()
        };
        run.failure = Some(format!("{}{}", tail(&stdout), tail(&stderr)));
    }
    run
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn harness_lines_are_parsed_in_microseconds() {
        let out = "Starting X benchmark.\nX: iterations=1 runtime: 120us\nX: iterations=1 runtime: 3ms\nX: iterations=2 average: 1560us total: 3120us\n";
        assert_eq!(parse_iterations(out), vec![120, 3000]);
    }

    #[test]
    fn compile_speed_is_read_from_jit_stats() {
        let err = "jit: tier 1: compile time 5038 us total, 12.50 us per bytecode\n";
        assert_eq!(parse_compile_speed(err), Some(12.5));
        assert_eq!(parse_compile_speed("nothing"), None);
    }

    #[test]
    fn templates_are_filled_in() {
        let vm = Vm {
            name: "interp".into(),
            template: "som --mode interp H.som {benchmark} {iterations} {inner}".into(),
        };
        let b = Benchmark {
            name: "Sieve".into(),
            inner: 20,
        };
        assert_eq!(
            vm.command(&b, 5),
            ["som", "--mode", "interp", "H.som", "Sieve", "5", "20"]
        );
    }
}
