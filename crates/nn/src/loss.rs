//! Regression losses for value functions and distributional critics: MSE,
//! Huber, and the quantile Huber loss of QR-DQN/IQN.
//!
//! Every loss returns its scalar value and writes the gradient of that scalar
//! with respect to the prediction into a caller-owned tensor (resized to the
//! prediction's shape, so a reused buffer allocates nothing). Two optional
//! per-sample arguments serve prioritised replay:
//!
//! - `weights` (`[N]`): importance-sampling weights `w_n`. The loss becomes
//!   `(1/N) sum_n w_n L_n`; without weights every `w_n = 1`, which for MSE and
//!   Huber is exactly PyTorch's `reduction="mean"` over all elements.
//! - `per_sample` (`[N]`, output): the unweighted per-sample losses `L_n`, the
//!   usual source of new priorities.
//!
//! A "sample" is a row: dimension 0 of the prediction. Sums run in `f64`.

use crate::error::{NnError, Result};
use crate::tensor::Tensor;

/// Validates the optional per-sample arguments against `n` samples.
fn check_sample_args(
    context: &str,
    n: usize,
    weights: Option<&[f32]>,
    per_sample: &Option<&mut [f32]>,
) -> Result<()> {
    if n == 0 {
        return Err(NnError::invalid(context, "empty batch (0 samples)"));
    }
    if let Some(w) = weights {
        if w.len() != n {
            return Err(NnError::shape(
                format!("{context} weights"),
                &[n],
                &[w.len()],
            ));
        }
        if let Some(i) = w.iter().position(|v| !v.is_finite()) {
            return Err(NnError::NonFinite {
                context: format!("{context} weights"),
                index: i,
                value: w[i],
            });
        }
    }
    let out_len = per_sample.as_deref().map(<[f32]>::len);
    if let Some(len) = out_len.filter(|&len| len != n) {
        return Err(NnError::shape(
            format!("{context} per_sample output"),
            &[n],
            &[len],
        ));
    }
    Ok(())
}

/// Shared driver of the elementwise losses: `elem(error) -> (loss, dloss/derror)`
/// with `error = pred - target`, averaged over each row and then over rows.
fn elementwise_loss(
    context: &str,
    pred: &Tensor,
    target: &Tensor,
    weights: Option<&[f32]>,
    mut per_sample: Option<&mut [f32]>,
    grad: &mut Tensor,
    elem: impl Fn(f32) -> (f64, f32),
) -> Result<f32> {
    target.expect_shape(&format!("{context} target"), pred.shape())?;
    let n = pred.rows();
    check_sample_args(context, n, weights, &per_sample)?;
    let d = pred.len() / n;
    if d == 0 {
        return Err(NnError::invalid(
            context,
            format!("prediction {:?} has no elements per sample", pred.shape()),
        ));
    }
    grad.resize(pred.shape());
    let scale = 1.0 / (n as f64 * d as f64);
    let mut total = 0.0f64;
    for (i, ((p, t), g)) in pred
        .data()
        .chunks_exact(d)
        .zip(target.data().chunks_exact(d))
        .zip(grad.data_mut().chunks_exact_mut(d))
        .enumerate()
    {
        let w = weights.map_or(1.0, |w| w[i]);
        let gscale = (w as f64 * scale) as f32;
        let mut row = 0.0f64;
        for ((&pv, &tv), gv) in p.iter().zip(t).zip(g.iter_mut()) {
            let (l, dl) = elem(pv - tv);
            row += l;
            *gv = dl * gscale;
        }
        let row_mean = row / d as f64;
        if let Some(out) = per_sample.as_deref_mut() {
            out[i] = row_mean as f32;
        }
        total += w as f64 * row_mean;
    }
    Ok((total / n as f64) as f32)
}

/// Mean squared error `(1/N) sum_n w_n mean_j (pred - target)^2`.
pub fn mse_loss(
    pred: &Tensor,
    target: &Tensor,
    weights: Option<&[f32]>,
    per_sample: Option<&mut [f32]>,
    grad: &mut Tensor,
) -> Result<f32> {
    elementwise_loss("mse_loss", pred, target, weights, per_sample, grad, |e| {
        ((e as f64) * (e as f64), 2.0 * e)
    })
}

/// Huber loss with PyTorch `HuberLoss(delta)` semantics: per element
/// `0.5 e^2` for `|e| < delta`, `delta (|e| - 0.5 delta)` beyond, averaged as
/// [`mse_loss`]. (`SmoothL1Loss(beta)` equals this divided by `beta`.)
pub fn huber_loss(
    pred: &Tensor,
    target: &Tensor,
    delta: f32,
    weights: Option<&[f32]>,
    per_sample: Option<&mut [f32]>,
    grad: &mut Tensor,
) -> Result<f32> {
    if !(delta > 0.0 && delta.is_finite()) {
        return Err(NnError::invalid(
            "huber_loss",
            format!("delta must be positive and finite, got {delta}"),
        ));
    }
    elementwise_loss("huber_loss", pred, target, weights, per_sample, grad, |e| {
        let (l, g) = huber(e as f64, delta as f64);
        (l, g as f32)
    })
}

/// Huber function and its derivative.
#[inline]
fn huber(e: f64, delta: f64) -> (f64, f64) {
    let a = e.abs();
    if a < delta {
        (0.5 * e * e, e)
    } else {
        (delta * (a - 0.5 * delta), delta * e.signum())
    }
}

/// Quantile Huber loss of QR-DQN and IQN.
///
/// Shapes: `pred` `[N, Q]` predicted quantile values `theta_i` at fractions
/// `taus` (`[Q]` shared by every sample, as in QR-DQN, or `[N, Q]` sampled per
/// sample, as in IQN; each in `[0, 1]`); `target` `[N, M]` target samples
/// `T_j` (treated as constants).
///
/// With pairwise TD errors `u_ij = T_j - theta_i`:
///
/// ```text
/// rho_tau^kappa(u) = |tau - 1{u < 0}| * L_kappa(u) / kappa
/// L_kappa(u)       = 0.5 u^2             if |u| <= kappa
///                    kappa (|u| - 0.5 kappa) otherwise
/// L_n              = sum_i (1/M) sum_j rho_{tau_i}^kappa(u_ij)
/// loss             = (1/N) sum_n w_n L_n
/// ```
///
/// i.e. summed over predicted quantiles, averaged over target samples, then
/// averaged over the batch (the IQN paper's reduction). `kappa = 0` gives plain
/// quantile regression, `rho_tau(u) = |tau - 1{u < 0}| |u|`. The gradient
/// written to `grad` is with respect to `pred`.
#[allow(clippy::too_many_arguments)]
pub fn quantile_huber_loss(
    pred: &Tensor,
    taus: &Tensor,
    target: &Tensor,
    kappa: f32,
    weights: Option<&[f32]>,
    mut per_sample: Option<&mut [f32]>,
    grad: &mut Tensor,
) -> Result<f32> {
    const CONTEXT: &str = "quantile_huber_loss";
    if !(kappa >= 0.0 && kappa.is_finite()) {
        return Err(NnError::invalid(
            CONTEXT,
            format!("kappa must be finite and >= 0, got {kappa}"),
        ));
    }
    if pred.ndim() != 2 {
        return Err(NnError::invalid(
            CONTEXT,
            format!("pred must be [N, Q], got {:?}", pred.shape()),
        ));
    }
    let (n, q) = (pred.shape()[0], pred.shape()[1]);
    if q == 0 {
        return Err(NnError::invalid(CONTEXT, "pred has 0 quantiles"));
    }
    let shared_taus = match taus.shape() {
        [len] if *len == q => true,
        [rows, cols] if *rows == n && *cols == q => false,
        other => {
            return Err(NnError::shape(
                format!("{CONTEXT} taus ([Q] or [N, Q])"),
                &[n, q],
                other,
            ));
        }
    };
    if let Some(i) = taus.data().iter().position(|t| !(0.0..=1.0).contains(t)) {
        return Err(NnError::invalid(
            CONTEXT,
            format!("taus must lie in [0, 1]; index {i} is {}", taus.data()[i]),
        ));
    }
    if target.ndim() != 2 || target.shape()[0] != n || target.shape()[1] == 0 {
        let m = target.shape().get(1).copied().unwrap_or(0).max(1);
        return Err(NnError::shape(
            format!("{CONTEXT} target ([N, M])"),
            &[n, m],
            target.shape(),
        ));
    }
    let m = target.shape()[1];
    check_sample_args(CONTEXT, n, weights, &per_sample)?;
    grad.resize(pred.shape());

    let kappa = kappa as f64;
    let inv_m = 1.0 / m as f64;
    let inv_n = 1.0 / n as f64;
    let mut total = 0.0f64;
    for s in 0..n {
        let theta = pred.row(s);
        let tgt = target.row(s);
        let tau_row = if shared_taus {
            taus.data()
        } else {
            taus.row(s)
        };
        let w = weights.map_or(1.0, |w| w[s] as f64);
        let g_row = &mut grad.data_mut()[s * q..(s + 1) * q];
        let mut sample_loss = 0.0f64;
        for i in 0..q {
            let (th, tau) = (theta[i] as f64, tau_row[i] as f64);
            let mut li = 0.0f64;
            // d rho / d u, summed over targets.
            let mut dli = 0.0f64;
            for &t in tgt {
                let u = t as f64 - th;
                let weight = (tau - if u < 0.0 { 1.0 } else { 0.0 }).abs();
                let (l, dl) = if kappa == 0.0 {
                    (u.abs(), u.signum() * if u == 0.0 { 0.0 } else { 1.0 })
                } else {
                    let (h, dh) = huber(u, kappa);
                    (h / kappa, dh / kappa)
                };
                li += weight * l;
                dli += weight * dl;
            }
            sample_loss += li * inv_m;
            // u = T - theta, so d/dtheta = -d/du.
            g_row[i] = (-dli * inv_m * w * inv_n) as f32;
        }
        if let Some(out) = per_sample.as_deref_mut() {
            out[s] = sample_loss as f32;
        }
        total += w * sample_loss;
    }
    Ok((total * inv_n) as f32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::GradCheck;
    use hlynr_rng::Rng;

    fn random(shape: &[usize], lo: f32, hi: f32, rng: &mut Rng) -> Tensor {
        let mut t = Tensor::zeros(shape);
        for v in t.data_mut() {
            *v = rng.uniform_range_f32(lo, hi);
        }
        t
    }

    /// Moves every value of `a` at least `gap` away from every `b` + offsets in
    /// `kinks`, so central differences never straddle a kink of the loss.
    fn away_from_kinks(a: &mut Tensor, b: &Tensor, kinks: &[f32], gap: f32, rng: &mut Rng) {
        let n = a.rows();
        let (ca, cb) = (a.len() / n, b.len() / n);
        for s in 0..n {
            for i in 0..ca {
                loop {
                    let v = a.data()[s * ca + i];
                    let near = (0..cb).any(|j| {
                        let bv = b.data()[s * cb + j];
                        kinks.iter().any(|k| ((v - bv).abs() - k).abs() < gap)
                    });
                    if !near {
                        break;
                    }
                    a.data_mut()[s * ca + i] = rng.uniform_range_f32(-3.0, 3.0);
                }
            }
        }
    }

    #[test]
    fn mse_and_huber_match_hand_values() {
        let p = Tensor::from_vec(&[2, 2], vec![1.0, 2.0, 3.0, 0.0]).unwrap();
        let t = Tensor::from_vec(&[2, 2], vec![0.0, 2.0, 0.0, 0.5]).unwrap();
        let mut g = Tensor::default();
        let mut per = [0.0f32; 2];
        let l = mse_loss(&p, &t, None, Some(&mut per), &mut g).unwrap();
        assert_eq!(l, (1.0 + 0.0 + 9.0 + 0.25) / 4.0);
        assert_eq!(per, [0.5, (9.0 + 0.25) / 2.0]);
        assert_eq!(g.data(), &[0.5, 0.0, 1.5, -0.25]);
        // Huber, delta 1: errors 1, 0, 3, -0.5 -> 0.5, 0, 2.5, 0.125.
        let l = huber_loss(&p, &t, 1.0, Some(&[2.0, 0.0]), Some(&mut per), &mut g).unwrap();
        assert_eq!(per, [0.25, 1.3125]);
        assert_eq!(l, (2.0 * 0.25 + 0.0) / 2.0);
        assert_eq!(g.data(), &[0.5, 0.0, 0.0, 0.0]);
    }

    #[test]
    fn elementwise_losses_pass_finite_differences() {
        let mut rng = Rng::seed_from_u64(7);
        let cfg = GradCheck::default();
        let weights = [0.5f32, 2.0, 1.0];
        for w in [None, Some(&weights[..])] {
            let mut p = random(&[3, 4], -3.0, 3.0, &mut rng);
            let t = random(&[3, 4], -3.0, 3.0, &mut rng);
            away_from_kinks(&mut p, &t, &[1.5], 0.05, &mut rng);
            let mut g = Tensor::default();
            mse_loss(&p, &t, w, None, &mut g).unwrap();
            let mut x = p.data().to_vec();
            let mut scratch = Tensor::default();
            cfg.check_slice("mse", &mut x, g.data(), &mut rng, |v| {
                let pp = Tensor::from_slice(&[3, 4], v).unwrap();
                mse_loss(&pp, &t, w, None, &mut scratch).unwrap() as f64
            })
            .unwrap();
            huber_loss(&p, &t, 1.5, w, None, &mut g).unwrap();
            cfg.check_slice("huber", &mut x, g.data(), &mut rng, |v| {
                let pp = Tensor::from_slice(&[3, 4], v).unwrap();
                huber_loss(&pp, &t, 1.5, w, None, &mut scratch).unwrap() as f64
            })
            .unwrap();
        }
    }

    #[test]
    fn quantile_huber_matches_hand_value() {
        // One sample, one quantile at tau 0.25, two targets.
        let p = Tensor::from_vec(&[1, 1], vec![0.0]).unwrap();
        let taus = Tensor::from_vec(&[1], vec![0.25]).unwrap();
        let t = Tensor::from_vec(&[1, 2], vec![2.0, -0.5]).unwrap();
        let mut g = Tensor::default();
        // u = 2: weight 0.25, L_1 = 1.5; u = -0.5: weight 0.75, L_1 = 0.125.
        let l = quantile_huber_loss(&p, &taus, &t, 1.0, None, None, &mut g).unwrap();
        assert!((l - (0.25 * 1.5 + 0.75 * 0.125) / 2.0).abs() < 1e-7, "{l}");
        // d/dtheta: -(0.25 * 1 + 0.75 * (-0.5)) / 2.
        assert!((g.data()[0] - 0.0625).abs() < 1e-7, "{:?}", g.data());
        // kappa 0: plain quantile regression, 0.25 * 2 and 0.75 * 0.5.
        let l0 = quantile_huber_loss(&p, &taus, &t, 0.0, None, None, &mut g).unwrap();
        assert!((l0 - (0.5 + 0.375) / 2.0).abs() < 1e-7, "{l0}");
        assert!((g.data()[0] - (-(0.25 - 0.75) / 2.0)).abs() < 1e-7);
    }

    #[test]
    fn quantile_huber_passes_finite_differences() {
        let mut rng = Rng::seed_from_u64(8);
        let cfg = GradCheck {
            eps: 1e-3,
            ..GradCheck::default()
        };
        let (n, q, m) = (3, 4, 5);
        for kappa in [1.0f32, 0.0, 0.5] {
            for per_sample_taus in [false, true] {
                let taus = if per_sample_taus {
                    random(&[n, q], 0.0, 1.0, &mut rng)
                } else {
                    Tensor::from_vec(
                        &[q],
                        (0..q)
                            .map(|i| (2 * i + 1) as f32 / (2 * q) as f32)
                            .collect(),
                    )
                    .unwrap()
                };
                let t = random(&[n, m], -3.0, 3.0, &mut rng);
                let mut p = random(&[n, q], -3.0, 3.0, &mut rng);
                away_from_kinks(&mut p, &t, &[0.0, kappa], 0.02, &mut rng);
                let w = [1.0f32, 0.3, 2.0];
                let mut g = Tensor::default();
                let mut per = [0.0f32; 3];
                let l = quantile_huber_loss(&p, &taus, &t, kappa, Some(&w), Some(&mut per), &mut g)
                    .unwrap();
                let want: f64 =
                    per.iter().zip(&w).map(|(a, b)| (a * b) as f64).sum::<f64>() / n as f64;
                assert!((l as f64 - want).abs() < 1e-5);
                let mut x = p.data().to_vec();
                let mut scratch = Tensor::default();
                cfg.check_slice(
                    &format!("quantile huber kappa {kappa}"),
                    &mut x,
                    g.data(),
                    &mut rng,
                    |v| {
                        let pp = Tensor::from_slice(&[n, q], v).unwrap();
                        quantile_huber_loss(&pp, &taus, &t, kappa, Some(&w), None, &mut scratch)
                            .unwrap() as f64
                    },
                )
                .unwrap();
            }
        }
    }

    #[test]
    fn bad_arguments_are_named_errors() {
        let p = Tensor::zeros(&[2, 3]);
        let mut g = Tensor::default();
        let e = mse_loss(&p, &Tensor::zeros(&[3, 2]), None, None, &mut g)
            .unwrap_err()
            .to_string();
        assert!(e.contains("mse_loss target") && e.contains("[3, 2]"), "{e}");
        let e = mse_loss(&p, &p, Some(&[1.0]), None, &mut g)
            .unwrap_err()
            .to_string();
        assert!(e.contains("weights"), "{e}");
        assert!(huber_loss(&p, &p, 0.0, None, None, &mut g).is_err());
        let taus = Tensor::from_vec(&[3], vec![0.1, 0.5, 1.5]).unwrap();
        let e = quantile_huber_loss(&p, &taus, &p, 1.0, None, None, &mut g)
            .unwrap_err()
            .to_string();
        assert!(e.contains("taus"), "{e}");
        let e = quantile_huber_loss(&p, &Tensor::zeros(&[2]), &p, 1.0, None, None, &mut g)
            .unwrap_err()
            .to_string();
        assert!(e.contains("taus"), "{e}");
        assert!(
            mse_loss(
                &Tensor::zeros(&[0, 3]),
                &Tensor::zeros(&[0, 3]),
                None,
                None,
                &mut g
            )
            .is_err()
        );
    }
}
