//! Summary statistics for evaluation reports: success rates with Wilson score
//! intervals, and distribution summaries (mean, standard deviation, percentiles).
//!
//! Definitions (documented in `docs/eval.md`, relied on by scripts):
//! - **Wilson 95% interval** for `k` successes in `n` trials, with `z = 1.959963984540054`
//!   and `p = k/n`:
//!   `(p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)`. Unlike the normal
//!   approximation it stays inside `[0, 1]` and is sensible at `p = 0` or `1`, which
//!   is where good guidance laws live.
//! - **Standard deviation** is the population value (divisor `n`), as NumPy's
//!   default `np.std`, so numbers match the users' Python tooling.
//! - **Percentiles** interpolate linearly between closest ranks (NumPy's default
//!   `"linear"` method, Hyndman–Fan type 7): for sorted `x[0..n]` and fraction `q`,
//!   `h = (n-1)q`, `P = x[⌊h⌋] + (h-⌊h⌋)(x[⌊h⌋+1] - x[⌊h⌋])`.

use serde::Serialize;

/// The standard-normal quantile for a two-sided 95% interval.
pub const Z_95: f64 = 1.959_963_984_540_054;

/// Wilson score interval `[lo, hi]` for `successes` out of `trials` at normal
/// quantile `z`. With no trials nothing is known, and the interval is `[0, 1]`.
pub fn wilson_interval(successes: u64, trials: u64, z: f64) -> [f64; 2] {
    if trials == 0 {
        return [0.0, 1.0];
    }
    let n = trials as f64;
    let p = successes as f64 / n;
    let z2 = z * z;
    let denominator = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denominator;
    let half = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denominator;
    [(centre - half).max(0.0), (centre + half).min(1.0)]
}

/// Percentile `q` (a fraction in `[0, 1]`) of already sorted, non-empty `sorted`
/// by linear interpolation between closest ranks (see the module docs).
pub fn percentile_sorted(sorted: &[f64], q: f64) -> f64 {
    debug_assert!(!sorted.is_empty(), "percentile of an empty sample");
    debug_assert!((0.0..=1.0).contains(&q), "percentile fraction {q}");
    let h = (sorted.len() - 1) as f64 * q;
    let lower = h.floor() as usize;
    let upper = (lower + 1).min(sorted.len() - 1);
    let fraction = h - lower as f64;
    sorted[lower] + fraction * (sorted[upper] - sorted[lower])
}

/// Distribution summary of one quantity over the episodes that reported it.
///
/// Every field except `count` is `None` when no episode reported a finite value
/// (serialised as JSON `null`, since JSON has no NaN).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    /// Number of episodes with a finite value.
    pub count: u64,
    /// Arithmetic mean.
    pub mean: Option<f64>,
    /// Population standard deviation (divisor `count`).
    pub std: Option<f64>,
    /// Smallest value.
    pub min: Option<f64>,
    /// 50th percentile.
    pub median: Option<f64>,
    /// 90th percentile.
    pub p90: Option<f64>,
    /// 99th percentile.
    pub p99: Option<f64>,
    /// Largest value.
    pub max: Option<f64>,
}

impl Summary {
    /// Summarises the finite values of `values`; non-finite entries are not
    /// counted (an env reports NaN for a quantity that does not apply to an
    /// episode, e.g. a time to intercept of a miss).
    pub fn of(values: impl IntoIterator<Item = f64>) -> Self {
        let mut sorted: Vec<f64> = values.into_iter().filter(|v| v.is_finite()).collect();
        if sorted.is_empty() {
            return Self {
                count: 0,
                mean: None,
                std: None,
                min: None,
                median: None,
                p90: None,
                p99: None,
                max: None,
            };
        }
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len() as f64;
        // Summing in sorted order makes the result independent of episode order.
        let mean = sorted.iter().sum::<f64>() / n;
        let variance = sorted.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
        Self {
            count: sorted.len() as u64,
            mean: Some(mean),
            std: Some(variance.sqrt()),
            min: sorted.first().copied(),
            median: Some(percentile_sorted(&sorted, 0.5)),
            p90: Some(percentile_sorted(&sorted, 0.9)),
            p99: Some(percentile_sorted(&sorted, 0.99)),
            max: sorted.last().copied(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn wilson_matches_hand_computed_values() {
        // 93 of 100: p = 0.93, z² = 3.841459; centre = (0.93 + 0.0192073)/1.0384146
        // = 0.914093; half = 0.051588 (numbers checked in Python).
        let [lo, hi] = wilson_interval(93, 100, Z_95);
        assert!(close(lo, 0.862_504_9, 1e-6), "lo = {lo}");
        assert!(close(hi, 0.965_680_7, 1e-6), "hi = {hi}");
        // 0 of 10: [0, z²/(n + z²)] = [0, 3.841459/13.841459].
        let [lo, hi] = wilson_interval(0, 10, Z_95);
        assert_eq!(lo, 0.0);
        assert!(close(hi, 0.277_532_8, 1e-6), "hi = {hi}");
        // 10 of 10 mirrors 0 of 10.
        let [lo, hi] = wilson_interval(10, 10, Z_95);
        assert!(close(lo, 1.0 - 0.277_532_8, 1e-6), "lo = {lo}");
        assert!(close(hi, 1.0, 1e-12), "hi = {hi}");
        // 5 of 10 is symmetric about 0.5: half = z·sqrt(0.025 + 0.0096037)/1.3841459.
        let [lo, hi] = wilson_interval(5, 10, Z_95);
        assert!(
            close(lo, 0.236_593_1, 1e-6) && close(hi, 0.763_406_9, 1e-6),
            "{lo} {hi}"
        );
        assert_eq!(wilson_interval(0, 0, Z_95), [0.0, 1.0]);
    }

    #[test]
    fn wilson_interval_narrows_with_more_trials() {
        let small = wilson_interval(9, 10, Z_95);
        let large = wilson_interval(900, 1000, Z_95);
        assert!(large[1] - large[0] < small[1] - small[0]);
        assert!(large[0] < 0.9 && 0.9 < large[1]);
    }

    #[test]
    fn percentiles_interpolate_between_ranks_like_numpy() {
        let x = [1.0, 2.0, 3.0, 4.0];
        // h = 3q: median h = 1.5 -> 2.5; p90 h = 2.7 -> 3.7; p99 h = 2.97 -> 3.97.
        assert!(close(percentile_sorted(&x, 0.5), 2.5, 1e-12));
        assert!(close(percentile_sorted(&x, 0.9), 3.7, 1e-12));
        assert!(close(percentile_sorted(&x, 0.99), 3.97, 1e-12));
        assert_eq!(percentile_sorted(&x, 0.0), 1.0);
        assert_eq!(percentile_sorted(&x, 1.0), 4.0);
        assert_eq!(percentile_sorted(&[7.0], 0.9), 7.0);
        // np.percentile(np.arange(1, 11), [50, 90, 99]) = [5.5, 9.1, 9.91]
        let y: Vec<f64> = (1..=10).map(f64::from).collect();
        assert!(close(percentile_sorted(&y, 0.5), 5.5, 1e-12));
        assert!(close(percentile_sorted(&y, 0.9), 9.1, 1e-12));
        assert!(close(percentile_sorted(&y, 0.99), 9.91, 1e-12));
    }

    #[test]
    fn summary_sorts_skips_non_finite_and_uses_population_std() {
        let s = Summary::of([4.0, f64::NAN, 1.0, 3.0, f64::INFINITY, 2.0]);
        assert_eq!(s.count, 4);
        assert_eq!(s.mean, Some(2.5));
        // population variance of 1..4 = 1.25
        assert!(close(s.std.unwrap(), 1.25f64.sqrt(), 1e-12));
        assert_eq!(s.min, Some(1.0));
        assert_eq!(s.max, Some(4.0));
        assert_eq!(s.median, Some(2.5));
        assert!(close(s.p90.unwrap(), 3.7, 1e-12));
    }

    #[test]
    fn summary_of_nothing_is_all_null() {
        let s = Summary::of([f64::NAN]);
        assert_eq!(s.count, 0);
        assert!(s.mean.is_none() && s.median.is_none() && s.p99.is_none());
        let json = serde_json::to_string(&s).unwrap();
        assert!(json.contains("\"mean\":null"), "{json}");
    }

    #[test]
    fn summary_is_independent_of_input_order() {
        let a = Summary::of([0.1, 0.7, 0.2, 1e6, 0.3]);
        let b = Summary::of([1e6, 0.3, 0.2, 0.1, 0.7]);
        assert_eq!(a, b);
    }
}
