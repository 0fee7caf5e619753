//! Action distributions of policy-gradient methods: the diagonal Gaussian of
//! continuous control and the categorical of discrete actions.
//!
//! Besides log-probabilities, entropies and sampling, each distribution gives
//! the gradients of a weighted combination of its per-sample log-probabilities
//! and entropies with respect to its parameters. A PPO loss
//! `-(1/N) sum_n A_n r_n - c H_n` becomes, after the caller computes
//! `d loss / d log_prob_n` and `d loss / d entropy_n`, one `backward` call that
//! fills the gradients of the network heads. Gradients are *added* into the
//! caller's buffers (like parameter gradients), so contributions from several
//! terms accumulate.

use hlynr_rng::Rng;

use crate::error::{NnError, Result};
use crate::simd::exp_f32;
use crate::tensor::Tensor;

/// `0.5 * ln(2 pi)`.
const HALF_LN_2PI: f64 = 0.918_938_533_204_672_8;

fn check_len(context: &str, what: &str, expected: usize, actual: usize) -> Result<()> {
    if expected == actual {
        Ok(())
    } else {
        Err(NnError::shape(
            format!("{context} {what}"),
            &[expected],
            &[actual],
        ))
    }
}

/// A diagonal Gaussian over `A`-dimensional actions for a batch of `N` states:
/// mean `[N, A]`, and `log_std` either `[A]` (state-independent, one learned
/// vector as in PPO) or `[N, A]` (a network output).
#[derive(Clone, Copy, Debug)]
pub struct DiagGaussian<'a> {
    mean: &'a Tensor,
    log_std: &'a Tensor,
    shared_std: bool,
}

impl<'a> DiagGaussian<'a> {
    /// Validates the shapes.
    pub fn new(mean: &'a Tensor, log_std: &'a Tensor) -> Result<Self> {
        if mean.ndim() != 2 {
            return Err(NnError::invalid(
                "DiagGaussian mean",
                format!("expected [N, A], got {:?}", mean.shape()),
            ));
        }
        let (n, a) = (mean.shape()[0], mean.shape()[1]);
        let shared_std = match log_std.shape() {
            [len] if *len == a => true,
            [rows, cols] if *rows == n && *cols == a => false,
            other => {
                return Err(NnError::shape(
                    "DiagGaussian log_std ([A] or [N, A])",
                    &[n, a],
                    other,
                ));
            }
        };
        Ok(Self {
            mean,
            log_std,
            shared_std,
        })
    }

    /// Batch size `N`.
    pub fn batch(&self) -> usize {
        self.mean.shape()[0]
    }

    /// Action dimension `A`.
    pub fn action_dim(&self) -> usize {
        self.mean.shape()[1]
    }

    #[inline]
    fn log_std_row(&self, n: usize) -> &[f32] {
        if self.shared_std {
            self.log_std.data()
        } else {
            self.log_std.row(n)
        }
    }

    fn check_actions(&self, actions: &Tensor) -> Result<()> {
        actions.expect_shape("DiagGaussian actions", self.mean.shape())
    }

    /// `out[n] = sum_a ln N(actions[n, a]; mean[n, a], exp(log_std[.., a]))`.
    pub fn log_prob(&self, actions: &Tensor, out: &mut [f32]) -> Result<()> {
        self.check_actions(actions)?;
        check_len("DiagGaussian log_prob", "output", self.batch(), out.len())?;
        let a = self.action_dim();
        for (n, o) in out.iter_mut().enumerate() {
            let mut s = 0.0f64;
            for ((&x, &mu), &ls) in actions
                .row(n)
                .iter()
                .zip(self.mean.row(n))
                .zip(self.log_std_row(n))
            {
                let ls = ls as f64;
                let z = (x as f64 - mu as f64) * (-ls).exp();
                s += -0.5 * z * z - ls;
            }
            *o = (s - a as f64 * HALF_LN_2PI) as f32;
        }
        Ok(())
    }

    /// `out[n] = sum_a (0.5 + 0.5 ln(2 pi) + log_std[.., a])`.
    pub fn entropy(&self, out: &mut [f32]) -> Result<()> {
        check_len("DiagGaussian entropy", "output", self.batch(), out.len())?;
        let a = self.action_dim() as f64;
        for (n, o) in out.iter_mut().enumerate() {
            let s: f64 = self.log_std_row(n).iter().map(|&v| v as f64).sum();
            *o = (s + a * (0.5 + HALF_LN_2PI)) as f32;
        }
        Ok(())
    }

    /// Adds the gradients of `sum_n (d_log_prob[n] log_prob[n] + d_entropy[n]
    /// entropy[n])` with respect to the mean (`[N, A]`) and `log_std` (its own
    /// shape; summed over the batch when it is shared) into `grad_mean` and
    /// `grad_log_std`. Either weight vector may be absent (zero).
    pub fn backward(
        &self,
        actions: &Tensor,
        d_log_prob: Option<&[f32]>,
        d_entropy: Option<&[f32]>,
        grad_mean: &mut Tensor,
        grad_log_std: &mut Tensor,
    ) -> Result<()> {
        const CONTEXT: &str = "DiagGaussian backward";
        self.check_actions(actions)?;
        let n_batch = self.batch();
        if let Some(w) = d_log_prob {
            check_len(CONTEXT, "d_log_prob", n_batch, w.len())?;
        }
        if let Some(w) = d_entropy {
            check_len(CONTEXT, "d_entropy", n_batch, w.len())?;
        }
        grad_mean.expect_shape(&format!("{CONTEXT} grad_mean"), self.mean.shape())?;
        grad_log_std.expect_shape(&format!("{CONTEXT} grad_log_std"), self.log_std.shape())?;
        let a = self.action_dim();
        for n in 0..n_batch {
            let wl = d_log_prob.map_or(0.0, |w| w[n]);
            let we = d_entropy.map_or(0.0, |w| w[n]);
            let gm = &mut grad_mean.data_mut()[n * a..(n + 1) * a];
            let off = if self.shared_std { 0 } else { n * a };
            let gs = &mut grad_log_std.data_mut()[off..off + a];
            for j in 0..a {
                let (x, mu) = (actions.row(n)[j], self.mean.row(n)[j]);
                let ls = self.log_std_row(n)[j];
                // d/dmu = (x - mu) / sigma^2; d/dlog_std = z^2 - 1; entropy: 1.
                let inv_sigma = exp_f32(-ls);
                let z = (x - mu) * inv_sigma;
                gm[j] += wl * z * inv_sigma;
                gs[j] += wl * (z * z - 1.0) + we;
            }
        }
        Ok(())
    }

    /// Draws `mean + exp(log_std) * eps`, `eps ~ N(0, 1)` in row-major order.
    pub fn sample(&self, rng: &mut Rng, out: &mut Tensor) {
        out.resize(self.mean.shape());
        let a = self.action_dim();
        for (n, row) in out
            .data_mut()
            .chunks_exact_mut(a.max(1))
            .enumerate()
            .take(self.batch())
        {
            for ((o, &mu), &ls) in row
                .iter_mut()
                .zip(self.mean.row(n))
                .zip(self.log_std_row(n))
            {
                *o = mu + exp_f32(ls) * rng.normal_f32();
            }
        }
    }

    /// The most likely action: the mean.
    pub fn mode(&self) -> &Tensor {
        self.mean
    }
}

/// A batch of categorical distributions given by logits `[N, K]`.
///
/// Holds the log-softmax and the probabilities of the last logits it was given,
/// in buffers reused across calls. Logits may be `-inf` (masked actions) as long
/// as every row has a finite one; NaN and `+inf` are errors.
#[derive(Clone, Debug, Default)]
pub struct Categorical {
    log_probs: Tensor,
    probs: Tensor,
}

impl Categorical {
    /// An empty distribution; call [`Categorical::set_logits`].
    pub fn new() -> Self {
        Self::default()
    }

    /// The distribution of `logits` `[N, K]`.
    pub fn from_logits(logits: &Tensor) -> Result<Self> {
        let mut c = Self::new();
        c.set_logits(logits)?;
        Ok(c)
    }

    /// Recomputes the log-softmax and probabilities for new logits, with the
    /// max subtracted first (log-sum-exp) so no logit overflows.
    pub fn set_logits(&mut self, logits: &Tensor) -> Result<()> {
        const CONTEXT: &str = "Categorical logits";
        if logits.ndim() != 2 || logits.shape()[1] == 0 {
            return Err(NnError::invalid(
                CONTEXT,
                format!("expected [N, K] with K >= 1, got {:?}", logits.shape()),
            ));
        }
        if let Some(i) = logits
            .data()
            .iter()
            .position(|v| v.is_nan() || *v == f32::INFINITY)
        {
            return Err(NnError::NonFinite {
                context: CONTEXT.into(),
                index: i,
                value: logits.data()[i],
            });
        }
        let k = logits.shape()[1];
        self.log_probs.resize(logits.shape());
        self.probs.resize(logits.shape());
        for (n, ((z, lp), p)) in logits
            .data()
            .chunks_exact(k)
            .zip(self.log_probs.data_mut().chunks_exact_mut(k))
            .zip(self.probs.data_mut().chunks_exact_mut(k))
            .enumerate()
        {
            let max = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            if max == f32::NEG_INFINITY {
                return Err(NnError::invalid(
                    CONTEXT,
                    format!("row {n} has every logit -inf (no action allowed)"),
                ));
            }
            for ((l, e), &zv) in lp.iter_mut().zip(p.iter_mut()).zip(z) {
                *l = zv - max;
                *e = exp_f32(*l);
            }
            let sum: f64 = p.iter().map(|&v| v as f64).sum();
            let lse = sum.ln() as f32;
            let inv = (1.0 / sum) as f32;
            for (l, e) in lp.iter_mut().zip(p.iter_mut()) {
                *l -= lse;
                *e *= inv;
            }
        }
        Ok(())
    }

    /// Batch size `N`.
    pub fn batch(&self) -> usize {
        self.log_probs.rows()
    }

    /// Number of categories `K`.
    pub fn categories(&self) -> usize {
        self.log_probs.shape().get(1).copied().unwrap_or(0)
    }

    /// `log_softmax(logits)`, `[N, K]`.
    pub fn log_softmax(&self) -> &Tensor {
        &self.log_probs
    }

    /// `softmax(logits)`, `[N, K]`.
    pub fn probs(&self) -> &Tensor {
        &self.probs
    }

    fn check_actions(&self, context: &str, actions: &[usize]) -> Result<()> {
        check_len(context, "actions", self.batch(), actions.len())?;
        let k = self.categories();
        if let Some(n) = actions.iter().position(|&a| a >= k) {
            return Err(NnError::invalid(
                context,
                format!(
                    "action {} at row {n} is out of range for {k} categories",
                    actions[n]
                ),
            ));
        }
        Ok(())
    }

    /// `out[n] = log_softmax(logits)[n, actions[n]]`.
    pub fn log_prob(&self, actions: &[usize], out: &mut [f32]) -> Result<()> {
        self.check_actions("Categorical log_prob", actions)?;
        check_len("Categorical log_prob", "output", self.batch(), out.len())?;
        for (n, (o, &a)) in out.iter_mut().zip(actions).enumerate() {
            *o = self.log_probs.row(n)[a];
        }
        Ok(())
    }

    /// `out[n] = -sum_k p_k ln p_k` (terms with `p_k = 0` contribute 0).
    pub fn entropy(&self, out: &mut [f32]) -> Result<()> {
        check_len("Categorical entropy", "output", self.batch(), out.len())?;
        for (n, o) in out.iter_mut().enumerate() {
            *o = self.row_entropy(n) as f32;
        }
        Ok(())
    }

    fn row_entropy(&self, n: usize) -> f64 {
        self.probs
            .row(n)
            .iter()
            .zip(self.log_probs.row(n))
            .filter(|(p, _)| **p > 0.0)
            .map(|(&p, &l)| -(p as f64) * l as f64)
            .sum()
    }

    /// Adds the gradient of `sum_n (d_log_prob[n] log_prob[n] + d_entropy[n]
    /// entropy[n])` with respect to the logits into `grad_logits` (`[N, K]`):
    /// `d log p_a / d z_k = 1{k = a} - p_k` and `d H / d z_k = -p_k (ln p_k + H)`.
    /// `actions` is needed only with `d_log_prob`.
    pub fn backward(
        &self,
        actions: Option<&[usize]>,
        d_log_prob: Option<&[f32]>,
        d_entropy: Option<&[f32]>,
        grad_logits: &mut Tensor,
    ) -> Result<()> {
        const CONTEXT: &str = "Categorical backward";
        let n_batch = self.batch();
        let lp_terms = match (d_log_prob, actions) {
            (Some(w), Some(a)) => {
                check_len(CONTEXT, "d_log_prob", n_batch, w.len())?;
                self.check_actions(CONTEXT, a)?;
                Some((w, a))
            }
            (Some(_), None) => {
                return Err(NnError::invalid(
                    CONTEXT,
                    "d_log_prob given without actions",
                ));
            }
            (None, _) => None,
        };
        if let Some(w) = d_entropy {
            check_len(CONTEXT, "d_entropy", n_batch, w.len())?;
        }
        grad_logits.expect_shape(&format!("{CONTEXT} grad_logits"), self.log_probs.shape())?;
        let k = self.categories();
        for n in 0..n_batch {
            let g = &mut grad_logits.data_mut()[n * k..(n + 1) * k];
            let p = self.probs.row(n);
            if let Some((w, a)) = lp_terms {
                let wl = w[n];
                for (gk, &pk) in g.iter_mut().zip(p) {
                    *gk -= wl * pk;
                }
                g[a[n]] += wl;
            }
            if let Some(w) = d_entropy {
                let we = w[n];
                let h = self.row_entropy(n) as f32;
                for ((gk, &pk), &lk) in g.iter_mut().zip(p).zip(self.log_probs.row(n)) {
                    if pk > 0.0 {
                        *gk -= we * pk * (lk + h);
                    }
                }
            }
        }
        Ok(())
    }

    /// Draws one category per row by inverting the cumulative distribution with
    /// one uniform number per row.
    pub fn sample(&self, rng: &mut Rng, out: &mut [usize]) -> Result<()> {
        check_len("Categorical sample", "output", self.batch(), out.len())?;
        for (n, o) in out.iter_mut().enumerate() {
            let u = rng.uniform();
            let p = self.probs.row(n);
            let mut cum = 0.0f64;
            // Falls back to the last category with positive probability when
            // rounding leaves the cumulative sum just below u.
            let mut choice = p.iter().rposition(|&v| v > 0.0).unwrap_or(0);
            for (k, &pk) in p.iter().enumerate() {
                cum += pk as f64;
                if u < cum && pk > 0.0 {
                    choice = k;
                    break;
                }
            }
            *o = choice;
        }
        Ok(())
    }

    /// The most likely category of each row (the first on ties).
    pub fn mode(&self, out: &mut [usize]) -> Result<()> {
        check_len("Categorical mode", "output", self.batch(), out.len())?;
        for (n, o) in out.iter_mut().enumerate() {
            let row = self.log_probs.row(n);
            let mut best = 0;
            for (k, &v) in row.iter().enumerate() {
                if v > row[best] {
                    best = k;
                }
            }
            *o = best;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::GradCheck;

    fn random(shape: &[usize], lo: f32, hi: f32, rng: &mut Rng) -> Tensor {
        let mut t = Tensor::zeros(shape);
        for v in t.data_mut() {
            *v = rng.uniform_range_f32(lo, hi);
        }
        t
    }

    /// `sum_n wl[n] log_prob[n] + we[n] entropy[n]` of a Gaussian.
    fn gaussian_objective(
        mean: &Tensor,
        log_std: &Tensor,
        x: &Tensor,
        wl: &[f32],
        we: &[f32],
    ) -> f64 {
        let d = DiagGaussian::new(mean, log_std).unwrap();
        let n = d.batch();
        let (mut lp, mut h) = (vec![0.0; n], vec![0.0; n]);
        d.log_prob(x, &mut lp).unwrap();
        d.entropy(&mut h).unwrap();
        (0..n).map(|i| (wl[i] * lp[i] + we[i] * h[i]) as f64).sum()
    }

    #[test]
    fn gaussian_matches_closed_form() {
        let mean = Tensor::from_vec(&[1, 2], vec![0.5, -1.0]).unwrap();
        let log_std = Tensor::from_vec(&[2], vec![0.0, (2.0f32).ln()]).unwrap();
        let x = Tensor::from_vec(&[1, 2], vec![1.5, 1.0]).unwrap();
        let d = DiagGaussian::new(&mean, &log_std).unwrap();
        let mut lp = [0.0];
        d.log_prob(&x, &mut lp).unwrap();
        let ln2pi = (2.0 * std::f64::consts::PI).ln();
        let want = -0.5 * 1.0 - 0.5 * ln2pi + (-0.5 * 1.0 - 2f64.ln() - 0.5 * ln2pi);
        assert!((lp[0] as f64 - want).abs() < 1e-6, "{} vs {want}", lp[0]);
        let mut h = [0.0];
        d.entropy(&mut h).unwrap();
        let want_h = 2.0 * (0.5 + 0.5 * ln2pi) + 2f64.ln();
        assert!((h[0] as f64 - want_h).abs() < 1e-6);
    }

    #[test]
    fn gaussian_gradients_pass_finite_differences() {
        let mut rng = Rng::seed_from_u64(11);
        let cfg = GradCheck::default();
        let (n, a) = (4, 3);
        for shared in [true, false] {
            let mean = random(&[n, a], -1.0, 1.0, &mut rng);
            let log_std = if shared {
                random(&[a], -0.7, 0.3, &mut rng)
            } else {
                random(&[n, a], -0.7, 0.3, &mut rng)
            };
            let x = random(&[n, a], -2.0, 2.0, &mut rng);
            let wl: Vec<f32> = (0..n).map(|_| rng.uniform_range_f32(-1.0, 1.0)).collect();
            let we: Vec<f32> = (0..n).map(|_| rng.uniform_range_f32(-1.0, 1.0)).collect();
            let d = DiagGaussian::new(&mean, &log_std).unwrap();
            let mut gm = Tensor::zeros(mean.shape());
            let mut gs = Tensor::zeros(log_std.shape());
            d.backward(&x, Some(&wl), Some(&we), &mut gm, &mut gs)
                .unwrap();
            let mut mv = mean.data().to_vec();
            cfg.check_slice("gaussian mean", &mut mv, gm.data(), &mut rng, |v| {
                let m2 = Tensor::from_slice(mean.shape(), v).unwrap();
                gaussian_objective(&m2, &log_std, &x, &wl, &we)
            })
            .unwrap();
            let mut sv = log_std.data().to_vec();
            cfg.check_slice("gaussian log_std", &mut sv, gs.data(), &mut rng, |v| {
                let s2 = Tensor::from_slice(log_std.shape(), v).unwrap();
                gaussian_objective(&mean, &s2, &x, &wl, &we)
            })
            .unwrap();
        }
    }

    #[test]
    fn gaussian_samples_have_the_right_moments_and_are_reproducible() {
        let n = 20_000;
        let mean = Tensor::from_vec(&[n, 1], vec![2.0; n]).unwrap();
        let log_std = Tensor::from_vec(&[1], vec![(0.5f32).ln()]).unwrap();
        let d = DiagGaussian::new(&mean, &log_std).unwrap();
        let mut s = Tensor::default();
        d.sample(&mut Rng::seed_from_u64(1), &mut s);
        let m = s.data().iter().map(|&v| v as f64).sum::<f64>() / n as f64;
        let var = s
            .data()
            .iter()
            .map(|&v| (v as f64 - m).powi(2))
            .sum::<f64>()
            / n as f64;
        assert!(
            (m - 2.0).abs() < 0.02 && (var.sqrt() - 0.5).abs() < 0.02,
            "{m} {var}"
        );
        let mut s2 = Tensor::default();
        d.sample(&mut Rng::seed_from_u64(1), &mut s2);
        assert_eq!(s, s2);
        assert!(DiagGaussian::new(&mean, &Tensor::zeros(&[2])).is_err());
    }

    fn categorical_objective(logits: &Tensor, acts: &[usize], wl: &[f32], we: &[f32]) -> f64 {
        let c = Categorical::from_logits(logits).unwrap();
        let n = c.batch();
        let (mut lp, mut h) = (vec![0.0; n], vec![0.0; n]);
        c.log_prob(acts, &mut lp).unwrap();
        c.entropy(&mut h).unwrap();
        (0..n).map(|i| (wl[i] * lp[i] + we[i] * h[i]) as f64).sum()
    }

    #[test]
    fn categorical_gradients_pass_finite_differences() {
        let mut rng = Rng::seed_from_u64(12);
        let (n, k) = (5, 4);
        let logits = random(&[n, k], -2.0, 2.0, &mut rng);
        let acts: Vec<usize> = (0..n).map(|_| rng.below(k as u64) as usize).collect();
        let wl: Vec<f32> = (0..n).map(|_| rng.uniform_range_f32(-1.0, 1.0)).collect();
        let we: Vec<f32> = (0..n).map(|_| rng.uniform_range_f32(-1.0, 1.0)).collect();
        let c = Categorical::from_logits(&logits).unwrap();
        let mut g = Tensor::zeros(&[n, k]);
        c.backward(Some(&acts), Some(&wl), Some(&we), &mut g)
            .unwrap();
        let mut x = logits.data().to_vec();
        GradCheck::default()
            .check_slice("categorical logits", &mut x, g.data(), &mut rng, |v| {
                let l2 = Tensor::from_slice(&[n, k], v).unwrap();
                categorical_objective(&l2, &acts, &wl, &we)
            })
            .unwrap();
    }

    #[test]
    fn categorical_is_stable_and_handles_masks() {
        let logits = Tensor::from_vec(
            &[2, 3],
            vec![1000.0, 0.0, -1000.0, f32::NEG_INFINITY, 0.0, 0.0],
        )
        .unwrap();
        let c = Categorical::from_logits(&logits).unwrap();
        assert_eq!(c.log_softmax().row(0), &[0.0, -1000.0, -2000.0]);
        assert_eq!(c.probs().row(1), &[0.0, 0.5, 0.5]);
        let mut h = [0.0; 2];
        c.entropy(&mut h).unwrap();
        assert_eq!(h[0], 0.0);
        assert!((h[1] - std::f32::consts::LN_2).abs() < 1e-7);
        let mut g = Tensor::zeros(&[2, 3]);
        c.backward(Some(&[0, 1]), Some(&[1.0, 1.0]), Some(&[1.0, 1.0]), &mut g)
            .unwrap();
        assert!(g.data().iter().all(|v| v.is_finite()), "{:?}", g.data());
        let mut m = [9; 2];
        c.mode(&mut m).unwrap();
        assert_eq!(m, [0, 1]);
        let mut s = [9; 2];
        for seed in 0..50 {
            c.sample(&mut Rng::seed_from_u64(seed), &mut s).unwrap();
            assert!(s[0] == 0 && s[1] != 0, "{s:?}");
        }
        let bad = Tensor::from_vec(&[1, 2], vec![f32::NAN, 0.0]).unwrap();
        assert!(Categorical::from_logits(&bad).is_err());
        let all_masked = Tensor::from_vec(&[1, 2], vec![f32::NEG_INFINITY; 2]).unwrap();
        assert!(
            Categorical::from_logits(&all_masked)
                .unwrap_err()
                .to_string()
                .contains("row 0")
        );
        assert!(
            c.log_prob(&[0, 3], &mut [0.0; 2])
                .unwrap_err()
                .to_string()
                .contains("out of range")
        );
    }

    #[test]
    fn categorical_sampling_frequencies_match_probabilities() {
        let logits = Tensor::from_vec(&[1, 3], vec![0.0, (2.0f32).ln(), (5.0f32).ln()]).unwrap();
        let c = Categorical::from_logits(&logits).unwrap();
        let mut rng = Rng::seed_from_u64(3);
        let mut counts = [0usize; 3];
        let mut s = [0usize];
        let trials = 40_000;
        for _ in 0..trials {
            c.sample(&mut rng, &mut s).unwrap();
            counts[s[0]] += 1;
        }
        for (k, want) in [0.125, 0.25, 0.625].into_iter().enumerate() {
            let f = counts[k] as f64 / trials as f64;
            assert!((f - want).abs() < 0.01, "category {k}: {f} vs {want}");
        }
    }
}
