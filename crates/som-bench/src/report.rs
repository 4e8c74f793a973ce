//! Turning runs into a Markdown report: per benchmark and VM the steady-state time
//! (median over invocations of each invocation's median over its second half of
//! iterations), the mean, standard deviation and bootstrap confidence interval of the
//! per-invocation values, peak RSS, the ratio to the baseline VM, the geometric mean of
//! those ratios with its bootstrap confidence interval, and a Wilcoxon signed-rank test of each VM against the baseline over
//! the paired benchmark medians.

use crate::runner::Run;
use crate::stats;
use std::collections::BTreeMap;
use std::fmt::Write;

/// Steady-state value of one run: the median of the second half of its iterations.
pub fn steady_state_us(run: &Run) -> Option<f64> {
    let its = &run.iterations_us;
    if its.is_empty() || run.failure.is_some() {
        return None;
    }
    let tail: Vec<f64> = its[its.len() / 2..].iter().map(|&x| x as f64).collect();
    Some(stats::median(&tail))
}

/// Per (benchmark, vm): the steady-state values of its invocations.
fn by_cell(runs: &[Run]) -> BTreeMap<(String, String), Vec<f64>> {
    let mut cells: BTreeMap<(String, String), Vec<f64>> = BTreeMap::new();
    for r in runs {
        if let Some(v) = steady_state_us(r) {
            cells
                .entry((r.benchmark.clone(), r.vm.clone()))
                .or_default()
                .push(v);
        }
    }
    cells
}

pub fn markdown(runs: &[Run], vms: &[String], baseline: &str, title: &str) -> String {
    let cells = by_cell(runs);
    let benchmarks: Vec<String> = {
        let mut b: Vec<String> = runs.iter().map(|r| r.benchmark.clone()).collect();
        b.dedup();
        let mut seen = Vec::new();
        for x in b {
            if !seen.contains(&x) {
                seen.push(x);
            }
        }
        seen
    };
    let median_of = |b: &str, vm: &str| {
        cells
            .get(&(b.to_string(), vm.to_string()))
            .map(|v| stats::median(v))
    };
    let mut out = String::new();
    let _ = writeln!(out, "# {title}\n");
    let _ = writeln!(
        out,
        "Steady state per benchmark: the median over invocations of each invocation's median \
         over the second half of its iterations (µs; lower is better). Ratio: baseline \
         `{baseline}` time divided by this VM's time (higher is faster).\n"
    );
    let _ = write!(out, "| Benchmark |");
    for vm in vms {
        let _ = write!(out, " {vm} (µs) | mean | sd | ±95% CI | ratio |");
    }
    let _ = writeln!(out);
    let _ = write!(out, "|---|");
    for _ in vms {
        let _ = write!(out, "---:|---:|---:|---:|---:|");
    }
    let _ = writeln!(out);
    for b in &benchmarks {
        let _ = write!(out, "| {b} |");
        for vm in vms {
            match (cells.get(&(b.clone(), vm.clone())), median_of(b, baseline)) {
                (Some(vals), base) => {
                    let m = stats::median(vals);
                    let (lo, hi) = stats::bootstrap_mean_ci(vals, 0.95, 2000);
                    let ratio = base.map_or("–".to_string(), |bm| format!("{:.2}", bm / m));
                    let _ = write!(
                        out,
                        " {m:.0} | {:.0} | {:.0} | {:.0} | {ratio} |",
                        stats::mean(vals),
                        stats::variance(vals).sqrt(),
                        (hi - lo) / 2.0
                    );
                }
                (None, _) => {
                    let _ = write!(out, " failed | | | | |");
                }
            }
        }
        let _ = writeln!(out);
    }
    first_iterations(&mut out, runs, vms, baseline, &benchmarks);
    let _ = writeln!(out, "\n## Summary\n");
    let _ = writeln!(
        out,
        "| VM | geomean ratio to `{baseline}` | 95% CI (bootstrap) | Wilcoxon p (paired medians) | peak RSS median (MB) | tier-1 compile µs/bytecode (median) |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|");
    for vm in vms {
        let pairs: Vec<(f64, f64)> = benchmarks
            .iter()
            .filter_map(|b| Some((median_of(b, baseline)?, median_of(b, vm)?)))
            .collect();
        let ratios: Vec<f64> = pairs.iter().map(|(base, m)| base / m).collect();
        let samples: Vec<(&[f64], &[f64])> = benchmarks
            .iter()
            .filter_map(|b| {
                let base = cells.get(&(b.clone(), baseline.to_string()))?;
                let this = cells.get(&(b.clone(), vm.clone()))?;
                Some((base.as_slice(), this.as_slice()))
            })
            .collect();
        let ci = if vm == baseline {
            "–".to_string()
        } else {
            let (lo, hi) = stats::bootstrap_geomean_ratio_ci(&samples, 0.95, 2000);
            format!("{lo:.3}–{hi:.3}")
        };
        let (a, c): (Vec<f64>, Vec<f64>) = pairs.iter().cloned().unzip();
        let w = stats::wilcoxon(&a, &c);
        let rss: Vec<f64> = runs
            .iter()
            .filter(|r| &r.vm == vm && r.max_rss_kb > 0)
            .map(|r| r.max_rss_kb as f64 / 1024.0)
            .collect();
        let compile: Vec<f64> = runs
            .iter()
            .filter(|r| &r.vm == vm)
            .filter_map(|r| r.compile_us_per_bytecode)
            .collect();
        let p = if vm == baseline {
            "–".to_string()
        } else {
            format!("{:.4}", w.p)
        };
        let compile = if compile.is_empty() {
            "–".to_string()
        } else {
            format!("{:.2}", stats::median(&compile))
        };
        let _ = writeln!(
            out,
            "| {vm} | {:.3} | {ci} | {p} | {:.1} | {compile} |",
            stats::geomean(&ratios),
            stats::median(&rss),
        );
    }
    let failures: Vec<&Run> = runs.iter().filter(|r| r.failure.is_some()).collect();
    if !failures.is_empty() {
        let _ = writeln!(out, "\n## Failed runs\n");
        for r in failures {
            let _ = writeln!(
                out,
                "- {} on {} (invocation {}): exit {}\n\n```\n{}\n```",
                r.benchmark,
                r.vm,
                r.invocation,
                r.exit_status,
                r.failure.as_deref().unwrap_or("").trim()
            );
        }
    }
    out
}

/// The warm-up table (the paper's Q1 measure): each invocation's first in-process
/// iteration, as median, mean and standard deviation over invocations, and the ratio of
/// medians to the baseline with its geometric mean.
fn first_iterations(
    out: &mut String,
    runs: &[Run],
    vms: &[String],
    baseline: &str,
    benchmarks: &[String],
) {
    let firsts = |b: &str, vm: &str| -> Vec<f64> {
        runs.iter()
            .filter(|r| r.vm == vm && r.benchmark == b && r.failure.is_none())
            .filter_map(|r| r.iterations_us.first().map(|&t| t as f64))
            .collect()
    };
    let _ = writeln!(
        out,
        "\n## First iteration\n\nEach invocation's first iteration (µs): median, mean and \
         standard deviation over invocations; ratio of medians to `{baseline}`.\n"
    );
    let _ = write!(out, "| Benchmark |");
    for vm in vms {
        let _ = write!(out, " {vm} (µs) | mean | sd | ratio |");
    }
    let _ = write!(out, "\n|---|");
    for _ in vms {
        let _ = write!(out, "---:|---:|---:|---:|");
    }
    let _ = writeln!(out);
    let mut ratios: Vec<Vec<f64>> = vec![Vec::new(); vms.len()];
    for b in benchmarks {
        let base = firsts(b, baseline);
        let _ = write!(out, "| {b} |");
        for (i, vm) in vms.iter().enumerate() {
            let v = firsts(b, vm);
            if v.is_empty() {
                let _ = write!(out, " failed | | | |");
                continue;
            }
            let m = stats::median(&v);
            let ratio = if base.is_empty() {
                "–".to_string()
            } else {
                let r = stats::median(&base) / m;
                ratios[i].push(r);
                format!("{r:.2}")
            };
            let _ = write!(
                out,
                " {m:.0} | {:.0} | {:.0} | {ratio} |",
                stats::mean(&v),
                stats::variance(&v).sqrt()
            );
        }
        let _ = writeln!(out);
    }
    let _ = write!(out, "| geomean |");
    for r in &ratios {
        if r.is_empty() {
            let _ = write!(out, " | | | – |");
        } else {
            let _ = write!(out, " | | | {:.3} |", stats::geomean(r));
        }
    }
    let _ = writeln!(out);
}

/// Writes `ratios` and one `warmup-<benchmark>` plot per benchmark (SVG and PNG) into
/// `dir`, and answers the Markdown that shows them.
pub fn plots(
    dir: &std::path::Path,
    runs: &[Run],
    vms: &[String],
    baseline: &str,
) -> Result<String, String> {
    let cells = by_cell(runs);
    let mut benchmarks: Vec<String> = Vec::new();
    for r in runs {
        if !benchmarks.contains(&r.benchmark) {
            benchmarks.push(r.benchmark.clone());
        }
    }
    let ratio = |b: &str, vm: &str| -> Option<(f64, f64, f64)> {
        let base = stats::median(cells.get(&(b.to_string(), baseline.to_string()))?);
        let vals = cells.get(&(b.to_string(), vm.to_string()))?;
        let rs: Vec<f64> = vals.iter().map(|v| base / v).collect();
        let lo = rs.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = rs.iter().copied().fold(0.0, f64::max);
        Some((base / stats::median(vals), lo, hi))
    };
    let bars = crate::plot::RatioBars {
        benchmarks: &benchmarks,
        vms,
        ratio: &ratio,
    };
    crate::plot::save(&dir.join("ratios"), &bars)?;
    let mut md = String::from(
        "\n## Plots\n\nEach plot is also written as PNG next to its SVG.\n\n![ratios](ratios.svg)\n\n",
    );
    for b in &benchmarks {
        let series: Vec<(String, Vec<f64>)> = vms
            .iter()
            .map(|vm| {
                let its: Vec<&Vec<u64>> = runs
                    .iter()
                    .filter(|r| &r.vm == vm && &r.benchmark == b && r.failure.is_none())
                    .map(|r| &r.iterations_us)
                    .collect();
                let n = its.iter().map(|v| v.len()).min().unwrap_or(0);
                let curve = (0..n)
                    .map(|k| stats::median(&its.iter().map(|v| v[k] as f64).collect::<Vec<_>>()))
                    .collect();
                (vm.clone(), curve)
            })
            .collect();
        let stem = format!("warmup-{b}");
        let curves = crate::plot::WarmupCurves {
            benchmark: b,
            series: &series,
        };
        crate::plot::save(&dir.join(&stem), &curves)?;
        md.push_str(&format!("![{b} warm-up]({stem}.svg)\n"));
    }
    Ok(md)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(vm: &str, b: &str, its: &[u64]) -> Run {
        Run {
            vm: vm.into(),
            benchmark: b.into(),
            invocation: 0,
            iterations_us: its.to_vec(),
            wall_ms: 1.0,
            max_rss_kb: 2048,
            exit_status: 0,
            compile_us_per_bytecode: None,
            failure: None,
        }
    }

    #[test]
    fn steady_state_uses_the_second_half() {
        assert_eq!(
            steady_state_us(&run("a", "b", &[1000, 900, 10, 12])),
            Some(11.0)
        );
    }

    #[test]
    fn report_has_ratios_and_a_summary() {
        let runs = vec![
            run("interp", "Sieve", &[100, 100]),
            run("threaded", "Sieve", &[50, 50]),
            run("interp", "Sum", &[300, 300]),
            run("threaded", "Sum", &[100, 100]),
        ];
        let vms = vec!["interp".to_string(), "threaded".to_string()];
        let md = markdown(&runs, &vms, "interp", "Test");
        assert!(
            md.contains("| Sieve | 100 | 100 | 0 | 0 | 1.00 | 50 | 50 | 0 | 0 | 2.00 |"),
            "{md}"
        );
        assert!(md.contains("| threaded | 2.449 |"), "{md}");
        assert!(md.contains("| 2.0 | – |"), "{md}");
    }

    #[test]
    fn the_first_iteration_table_compares_warm_up() {
        let runs = vec![
            run("interp", "Sieve", &[400, 100]),
            run("interp", "Sieve", &[600, 100]),
            run("threaded", "Sieve", &[250, 50]),
            run("threaded", "Sieve", &[250, 50]),
        ];
        let vms = vec!["interp".to_string(), "threaded".to_string()];
        let md = markdown(&runs, &vms, "interp", "Test");
        // Medians 500 and 250, means alike, sd 141 and 0; ratio 2.
        assert!(md.contains("## First iteration"), "{md}");
        assert!(
            md.contains("| Sieve | 500 | 500 | 141 | 1.00 | 250 | 250 | 0 | 2.00 |"),
            "{md}"
        );
        assert!(
            md.contains("| geomean | | | | 1.000 | | | | 2.000 |"),
            "{md}"
        );
    }

    #[test]
    fn plots_are_written_as_svg_and_png() {
        let dir = std::env::temp_dir().join(format!("som-bench-plots-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let runs = vec![
            run("interp", "Sieve", &[100, 100]),
            run("threaded", "Sieve", &[50, 50]),
        ];
        let vms = vec!["interp".to_string(), "threaded".to_string()];
        let md = plots(&dir, &runs, &vms, "interp").unwrap();
        assert!(md.contains("![ratios](ratios.svg)"), "{md}");
        for file in [
            "ratios.svg",
            "ratios.png",
            "warmup-Sieve.svg",
            "warmup-Sieve.png",
        ] {
            let bytes = std::fs::read(dir.join(file)).unwrap();
            assert!(bytes.len() > 1000, "{file} is {} bytes", bytes.len());
        }
        let png = std::fs::read(dir.join("ratios.png")).unwrap();
        assert_eq!(&png[..4], b"\x89PNG");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
