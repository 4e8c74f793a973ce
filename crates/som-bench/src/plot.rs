//! Plots of a report, through `plotters`, each written as SVG and as PNG: per-benchmark
//! speed ratios of every VM to the baseline, per-benchmark warm-up curves (the median
//! over invocations of each in-process iteration's time), and the rank/count
//! distribution of a synthesized program's method invocations.
//!
//! Each figure draws onto any `plotters` backend (`Figure::draw`); [`save`] runs it on
//! the SVG backend and on the bitmap backend. The bitmap backend rasterises text itself,
//! so the DejaVu Sans font (from the `dejavu` crate) is registered for it: PNGs come out
//! the same on a machine without fonts installed.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

/// A figure that can be drawn on any backend.
pub trait Figure {
    fn size(&self) -> (u32, u32);
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String>;
}

/// Writes `fig` as `STEM.svg` and `STEM.png`.
pub fn save(stem: &Path, fig: &impl Figure) -> Result<(), String> {
    register_font()?;
    let svg = stem.with_extension("svg");
    let root = SVGBackend::new(&svg, fig.size()).into_drawing_area();
    fig.draw(&root)?;
    root.present().map_err(|e| e.to_string())?;
    drop(root);
    let png = stem.with_extension("png");
    let root = BitMapBackend::new(&png, fig.size()).into_drawing_area();
    fig.draw(&root)?;
    root.present().map_err(|e| e.to_string())
}

/// The legend every figure draws, top right.
fn legend<'a, DB: DrawingBackend + 'a, CT: plotters::coord::CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
) -> Result<(), String> {
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())
}

fn register_font() -> Result<(), String> {
    static REGISTERED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let ok = REGISTERED.get_or_init(|| {
        plotters::style::register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular())
            .is_ok()
    });
    if *ok {
        Ok(())
    } else {
        Err("cannot load the embedded DejaVu Sans font".into())
    }
}

const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// A benchmark's ratio for a VM: (median, lowest, highest) over invocations.
pub type RatioOf<'a> = &'a dyn Fn(&str, &str) -> Option<(f64, f64, f64)>;

/// Grouped bars: for each benchmark, one bar per VM with its ratio to the baseline
/// (higher is faster) and a whisker for the ratio's spread.
pub struct RatioBars<'a> {
    pub benchmarks: &'a [String],
    pub vms: &'a [String],
    pub ratio: RatioOf<'a>,
}

impl Figure for RatioBars<'_> {
    fn size(&self) -> (u32, u32) {
        let width = 120 + 60 * self.benchmarks.len() as u32 * self.vms.len().max(1) as u32 / 2;
        (width.max(640), 420)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let (benchmarks, vms, ratio) = (self.benchmarks, self.vms, self.ratio);
        ratio_bars(root, benchmarks, vms, ratio)
    }
}

fn ratio_bars<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    benchmarks: &[String],
    vms: &[String],
    ratio: RatioOf,
) -> Result<(), String> {
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let max = benchmarks
        .iter()
        .flat_map(|b| vms.iter().filter_map(move |v| ratio(b, v).map(|r| r.2)))
        .fold(1.0f64, f64::max)
        * 1.1;
    let groups = benchmarks.len() as f64;
    let mut chart = ChartBuilder::on(root)
        .caption(
            "Speed relative to the baseline (higher is faster)",
            ("sans-serif", 18),
        )
        .margin(10)
        .x_label_area_size(70)
        .y_label_area_size(50)
        .build_cartesian_2d(0f64..groups, 0f64..max)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_label_formatter(&|_| String::new())
        .y_desc("ratio")
        .draw()
        .map_err(|e| e.to_string())?;
    // Benchmark names under the middle of their groups.
    let label_style =
        TextStyle::from(("sans-serif", 12).into_font()).pos(Pos::new(HPos::Center, VPos::Top));
    for (i, b) in benchmarks.iter().enumerate() {
        let (x, y) = chart.backend_coord(&(i as f64 + 0.5, 0.0));
        root.draw(&Text::new(b.as_str(), (x, y + 6), label_style.clone()))
            .map_err(|e| e.to_string())?;
    }
    let bar = 0.8 / vms.len().max(1) as f64;
    for (vi, vm) in vms.iter().enumerate() {
        let color = COLORS[vi % COLORS.len()];
        let bars: Vec<Rectangle<(f64, f64)>> = benchmarks
            .iter()
            .enumerate()
            .filter_map(|(bi, b)| {
                let (r, _, _) = ratio(b, vm)?;
                let x0 = bi as f64 + 0.1 + vi as f64 * bar;
                Some(Rectangle::new(
                    [(x0, 0.0), (x0 + bar * 0.9, r)],
                    color.filled(),
                ))
            })
            .collect();
        chart
            .draw_series(bars)
            .map_err(|e| e.to_string())?
            .label(vm.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled()));
        let whiskers: Vec<PathElement<(f64, f64)>> = benchmarks
            .iter()
            .enumerate()
            .filter_map(|(bi, b)| {
                let (_, lo, hi) = ratio(b, vm)?;
                let x = bi as f64 + 0.1 + vi as f64 * bar + bar * 0.45;
                Some(PathElement::new(vec![(x, lo), (x, hi)], BLACK))
            })
            .collect();
        chart.draw_series(whiskers).map_err(|e| e.to_string())?;
    }
    chart
        .draw_series(std::iter::once(PathElement::new(
            vec![(0.0, 1.0), (groups, 1.0)],
            BLACK.mix(0.5),
        )))
        .map_err(|e| e.to_string())?;
    legend(&mut chart)
}

/// Warm-up curves of one benchmark: iteration number against time, one line per VM.
pub struct WarmupCurves<'a> {
    pub benchmark: &'a str,
    pub series: &'a [(String, Vec<f64>)],
}

impl Figure for WarmupCurves<'_> {
    fn size(&self) -> (u32, u32) {
        (640, 400)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        warmup_curves(root, self.benchmark, self.series)
    }
}

fn warmup_curves<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    benchmark: &str,
    series: &[(String, Vec<f64>)],
) -> Result<(), String> {
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let n = series
        .iter()
        .map(|(_, v)| v.len())
        .max()
        .unwrap_or(1)
        .max(2);
    let max = series
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .fold(1.0f64, f64::max)
        * 1.1;
    let mut chart = ChartBuilder::on(root)
        .caption(
            format!("{benchmark}: time per iteration"),
            ("sans-serif", 18),
        )
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(1f64..n as f64, 0f64..max)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("iteration")
        .y_desc("µs")
        .draw()
        .map_err(|e| e.to_string())?;
    for (i, (vm, values)) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        chart
            .draw_series(LineSeries::new(
                values.iter().enumerate().map(|(k, v)| (k as f64 + 1.0, *v)),
                color.stroke_width(2),
            ))
            .map_err(|e| e.to_string())?
            .label(vm.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 15, y)], color.stroke_width(2))
            });
    }
    legend(&mut chart)
}

/// A synthesized program's method invocations: count against rank on log-log axes, with
/// the least-squares line of the paper's Appendix A.
pub struct RankCounts<'a> {
    pub title: &'a str,
    /// Invocation counts, most frequent first.
    pub counts: &'a [u64],
    pub fit: crate::stats::LinearFit,
}

impl Figure for RankCounts<'_> {
    fn size(&self) -> (u32, u32) {
        (640, 480)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let n = self.counts.len().max(2) as f64;
        let top = self.counts.first().copied().unwrap_or(10).max(10) as f64;
        let mut chart = ChartBuilder::on(root)
            .caption(self.title, ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d((1f64..n * 1.2).log_scale(), (1f64..top * 2.0).log_scale())
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("method rank")
            .y_desc("invocations")
            .y_label_formatter(&|v| format!("{v:.0e}"))
            .draw()
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(
                self.counts.iter().enumerate().map(|(i, &c)| {
                    Circle::new(((i + 1) as f64, c.max(1) as f64), 2, BLACK.filled())
                }),
            )
            .map_err(|e| e.to_string())?
            .label("methods")
            .legend(|(x, y)| Circle::new((x + 5, y), 3, BLACK.filled()));
        let f = self.fit;
        let line = (0..=200)
            .map(|i| {
                let r = n.powf(i as f64 / 200.0);
                (r, (f.intercept + f.slope * r.ln()).exp())
            })
            .filter(|&(_, y)| (1.0..=top * 2.0).contains(&y));
        chart
            .draw_series(LineSeries::new(line, COLORS[0].stroke_width(2)))
            .map_err(|e| e.to_string())?
            .label(format!("least squares, R² = {:.3}", f.r2))
            .legend(|(x, y)| {
                PathElement::new(vec![(x, y), (x + 15, y)], COLORS[0].stroke_width(2))
            });
        legend(&mut chart)
    }
}
