//! Statistics for benchmark results: medians, means, variances, bootstrap confidence
//! intervals, geometric means of ratios, and the Wilcoxon signed-rank test for paired
//! comparisons (the paper compares modes with it). Small and dependency-free; every
//! function is checked against hand-computed values in the tests below.

/// The median (mean of the two middle values for even lengths); NaN when empty.
pub fn median(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    let mut v = xs.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

pub fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// The sample variance (n - 1 in the denominator); 0 for fewer than two values.
pub fn variance(xs: &[f64]) -> f64 {
    if xs.len() < 2 {
        return 0.0;
    }
    let m = mean(xs);
    xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (xs.len() - 1) as f64
}

/// The geometric mean of positive values.
pub fn geomean(xs: &[f64]) -> f64 {
    (xs.iter().map(|x| x.ln()).sum::<f64>() / xs.len() as f64).exp()
}

/// A small deterministic generator (xorshift64*), so reports and generated programs are
/// reproducible from their seed, whatever version of a random-number crate is around.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    /// A value in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n
    }
}

/// A percentile bootstrap confidence interval of the mean: `(low, high)` at `level`
/// (e.g. 0.95), from `resamples` resamples.
pub fn bootstrap_mean_ci(xs: &[f64], level: f64, resamples: usize) -> (f64, f64) {
    if xs.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let mut rng = Rng::new(0x9e37_79b9_7f4a_7c15);
    let mut means: Vec<f64> = (0..resamples)
        .map(|_| (0..xs.len()).map(|_| xs[rng.below(xs.len())]).sum::<f64>() / xs.len() as f64)
        .collect();
    means.sort_by(|a, b| a.total_cmp(b));
    let tail = (1.0 - level) / 2.0;
    let at = |q: f64| means[((q * resamples as f64) as usize).min(resamples - 1)];
    (at(tail), at(1.0 - tail))
}

/// A percentile bootstrap confidence interval of the geometric mean of per-benchmark
/// ratios `median(base) / median(vm)`: each resample draws every benchmark's
/// invocations again (with replacement, separately per VM), as the runs were made.
/// `pairs` holds, per benchmark, the baseline's and the VM's per-invocation values.
pub fn bootstrap_geomean_ratio_ci(
    pairs: &[(&[f64], &[f64])],
    level: f64,
    resamples: usize,
) -> (f64, f64) {
    if pairs.is_empty() || pairs.iter().any(|(a, b)| a.is_empty() || b.is_empty()) {
        return (f64::NAN, f64::NAN);
    }
    let mut rng = Rng::new(0x2545_f491_4f6c_dd1d);
    let mut draw = |xs: &[f64]| -> f64 {
        let sample: Vec<f64> = (0..xs.len()).map(|_| xs[rng.below(xs.len())]).collect();
        median(&sample)
    };
    let mut geomeans: Vec<f64> = (0..resamples)
        .map(|_| {
            let ratios: Vec<f64> = pairs.iter().map(|(a, b)| draw(a) / draw(b)).collect();
            geomean(&ratios)
        })
        .collect();
    geomeans.sort_by(|a, b| a.total_cmp(b));
    let tail = (1.0 - level) / 2.0;
    let at = |q: f64| geomeans[((q * resamples as f64) as usize).min(resamples - 1)];
    (at(tail), at(1.0 - tail))
}

/// A least-squares line `y = intercept + slope * x` and its coefficient of determination.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinearFit {
    pub slope: f64,
    pub intercept: f64,
    pub r2: f64,
}

/// The least-squares line through the points; R² is 1 minus the residual over the total
/// sum of squares (0 when all y are equal).
pub fn linear_fit(xs: &[f64], ys: &[f64]) -> LinearFit {
    let (mx, my) = (mean(xs), mean(ys));
    let sxy: f64 = xs.iter().zip(ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    let sxx: f64 = xs.iter().map(|x| (x - mx) * (x - mx)).sum();
    let syy: f64 = ys.iter().map(|y| (y - my) * (y - my)).sum();
    let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    let intercept = my - slope * mx;
    let residual: f64 = xs
        .iter()
        .zip(ys)
        .map(|(x, y)| {
            let e = y - (intercept + slope * x);
            e * e
        })
        .sum();
    let r2 = if syy > 0.0 { 1.0 - residual / syy } else { 0.0 };
    LinearFit {
        slope,
        intercept,
        r2,
    }
}

/// The paper's rank/count regression (Appendix A): counts sorted in descending order,
/// ln(count) against ln(rank), rank 1 being the most frequent.
pub fn rank_count_fit(counts: &[u64]) -> LinearFit {
    let mut sorted: Vec<u64> = counts.iter().copied().filter(|&c| c > 0).collect();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    let xs: Vec<f64> = (1..=sorted.len()).map(|r| (r as f64).ln()).collect();
    let ys: Vec<f64> = sorted.iter().map(|&c| (c as f64).ln()).collect();
    linear_fit(&xs, &ys)
}

/// The result of a Wilcoxon signed-rank test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Wilcoxon {
    /// Sum of the ranks of the positive differences.
    pub w_plus: f64,
    /// Number of non-zero differences.
    pub n: usize,
    /// Two-sided p-value (normal approximation with tie and continuity correction).
    pub p: f64,
}

/// The Wilcoxon signed-rank test for paired samples `a[i]`, `b[i]`.
pub fn wilcoxon(a: &[f64], b: &[f64]) -> Wilcoxon {
    let mut d: Vec<f64> = a
        .iter()
        .zip(b)
        .map(|(x, y)| x - y)
        .filter(|d| *d != 0.0)
        .collect();
    d.sort_by(|x, y| x.abs().total_cmp(&y.abs()));
    let n = d.len();
    // Average ranks over ties of |d|.
    let mut ranks = vec![0.0; n];
    let mut tie_term = 0.0;
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && d[j + 1].abs() == d[i].abs() {
            j += 1;
        }
        let r = (i + j) as f64 / 2.0 + 1.0;
        for rank in &mut ranks[i..=j] {
            *rank = r;
        }
        let t = (j - i + 1) as f64;
        tie_term += t * t * t - t;
        i = j + 1;
    }
    let w_plus: f64 = d
        .iter()
        .zip(&ranks)
        .filter(|(d, _)| **d > 0.0)
        .map(|(_, r)| r)
        .sum();
    if n == 0 {
        return Wilcoxon { w_plus, n, p: 1.0 };
    }
    let nf = n as f64;
    let mu = nf * (nf + 1.0) / 4.0;
    let sigma = (nf * (nf + 1.0) * (2.0 * nf + 1.0) / 24.0 - tie_term / 48.0).sqrt();
    let z = if sigma == 0.0 {
        0.0
    } else {
        ((w_plus - mu).abs() - 0.5).max(0.0) / sigma
    };
    Wilcoxon {
        w_plus,
        n,
        p: (2.0 * (1.0 - normal_cdf(z))).min(1.0),
    }
}

/// The standard normal distribution function (Abramowitz-Stegun 7.1.26 for erf,
/// absolute error below 1.5e-7: plenty for p-values).
pub fn normal_cdf(z: f64) -> f64 {
    let x = z / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs());
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erf = 1.0 - poly * (-x * x).exp();
    let erf = if x >= 0.0 { erf } else { -erf };
    0.5 * (1.0 + erf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn central_tendency_and_spread() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(mean(&[1.0, 2.0, 3.0, 4.0]), 2.5);
        assert!((variance(&[1.0, 2.0, 3.0, 4.0]) - 5.0 / 3.0).abs() < 1e-12);
        assert!((geomean(&[1.0, 4.0]) - 2.0).abs() < 1e-12);
    }

    #[test]
    fn geomean_ratio_interval_brackets_the_estimate() {
        let base = [10.0, 11.0, 9.0, 10.5, 9.5];
        let faster = [5.0, 5.5, 4.5, 5.2, 4.8];
        let (lo, hi) = bootstrap_geomean_ratio_ci(&[(&base, &faster)], 0.95, 2000);
        let estimate = median(&base) / median(&faster);
        assert!(lo <= estimate && estimate <= hi, "{lo} {estimate} {hi}");
        assert!(lo > 1.5 && hi < 2.6, "{lo} {hi}");
        // Identical runs: no spread at all.
        let same = [3.0; 4];
        assert_eq!(
            bootstrap_geomean_ratio_ci(&[(&same, &same)], 0.95, 100),
            (1.0, 1.0)
        );
    }

    #[test]
    fn bootstrap_interval_contains_the_mean() {
        let xs: Vec<f64> = (1..=50).map(|i| i as f64).collect();
        let (lo, hi) = bootstrap_mean_ci(&xs, 0.95, 2000);
        assert!(lo < 25.5 && 25.5 < hi, "{lo} {hi}");
        assert!(hi - lo < 15.0);
        assert_eq!(bootstrap_mean_ci(&[7.0; 10], 0.95, 100), (7.0, 7.0));
    }

    #[test]
    fn normal_distribution_function() {
        assert!((normal_cdf(0.0) - 0.5).abs() < 1e-7);
        assert!((normal_cdf(1.959964) - 0.975).abs() < 1e-6);
        assert!((normal_cdf(-1.0) - 0.158655).abs() < 1e-6);
    }

    #[test]
    fn wilcoxon_signed_rank() {
        // Differences 1..=10, all positive: W+ = 55, clearly significant.
        let a: Vec<f64> = (1..=10).map(|i| 10.0 + i as f64).collect();
        let b = vec![10.0; 10];
        let w = wilcoxon(&a, &b);
        assert_eq!((w.w_plus, w.n), (55.0, 10));
        assert!(w.p < 0.01, "{w:?}");
        // Symmetric differences: no evidence either way.
        let w = wilcoxon(&[1.0, 3.0, 2.0, 4.0], &[2.0, 2.0, 3.0, 3.0]);
        assert_eq!(w.n, 4);
        assert!(w.p > 0.5, "{w:?}");
        // Zero differences are dropped.
        assert_eq!(wilcoxon(&[1.0, 2.0], &[1.0, 2.0]).p, 1.0);
    }

    #[test]
    fn linear_fit_recovers_a_line_and_measures_scatter() {
        let xs = [1.0, 2.0, 3.0, 4.0];
        let f = linear_fit(&xs, &[3.0, 5.0, 7.0, 9.0]);
        assert!((f.slope - 2.0).abs() < 1e-12 && (f.intercept - 1.0).abs() < 1e-12);
        assert!((f.r2 - 1.0).abs() < 1e-12);
        // y = 1, 3, 2, 4: slope 0.8, intercept 0.5, residuals -0.3 0.9 -0.9 0.3, so
        // SSE 1.8 against SST 5: R² 0.64.
        let g = linear_fit(&xs, &[1.0, 3.0, 2.0, 4.0]);
        assert!((g.slope - 0.8).abs() < 1e-12 && (g.intercept - 0.5).abs() < 1e-12);
        assert!((g.r2 - 0.64).abs() < 1e-12);
    }

    #[test]
    fn a_power_law_has_a_perfect_rank_count_fit() {
        // count = 1000 / rank^2, in any order.
        let counts = [250u64, 1000, 40, 111, 62];
        let f = rank_count_fit(&[1000, 250, 111, 62, 40]);
        assert!(f.r2 > 0.999 && (f.slope + 2.0).abs() < 0.01);
        assert_eq!(rank_count_fit(&counts), f);
    }
}
