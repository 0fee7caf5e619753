//! Global-norm gradient clipping, as `torch.nn.utils.clip_grad_norm_`.
//!
//! The norm is taken over the gradients of *all* parameters given together, so
//! clipping rescales every gradient by the same factor and keeps the update's
//! direction. A non-finite norm (a NaN or infinite gradient somewhere) is
//! returned as is and nothing is scaled: the caller's non-finite guard decides
//! whether to skip the update, and no gradient is silently turned into NaN.

use crate::error::{NnError, Result};
use crate::param::Param;

/// The L2 norm of all trainable parameters' gradients together, accumulated in
/// `f64`.
pub fn grad_norm<'p>(params: impl IntoIterator<Item = &'p Param>) -> f32 {
    params
        .into_iter()
        .filter(|p| p.is_trainable())
        .map(|p| p.grad.sum_squares())
        .sum::<f64>()
        .sqrt() as f32
}

/// Scales all gradients by `max_norm / (total_norm + 1e-6)` when that factor
/// is below one and returns the pre-clip `total_norm`. Gradients are left
/// untouched when the norm is not finite (the NaN/infinite norm is returned).
/// Buffers and counters are ignored.
pub fn clip_grad_norm<'p>(
    params: impl IntoIterator<Item = &'p mut Param>,
    max_norm: f32,
) -> Result<f32> {
    if !(max_norm > 0.0 && max_norm.is_finite()) {
        return Err(NnError::invalid(
            "clip_grad_norm",
            format!("max_norm must be positive and finite, got {max_norm}"),
        ));
    }
    let mut params: Vec<&mut Param> = params.into_iter().filter(|p| p.is_trainable()).collect();
    let total = grad_norm(params.iter().map(|p| &**p));
    if !total.is_finite() {
        return Ok(total);
    }
    let coef = (max_norm as f64 / (total as f64 + 1e-6)) as f32;
    if coef < 1.0 {
        for p in &mut params {
            for g in p.grad.data_mut() {
                *g *= coef;
            }
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::Tensor;

    fn with_grad(g: &[f32]) -> Param {
        let mut p = Param::trainable(Tensor::zeros(&[g.len()]));
        p.grad.data_mut().copy_from_slice(g);
        p
    }

    #[test]
    fn clips_across_all_parameters_to_max_norm() {
        let mut a = with_grad(&[3.0, 0.0]);
        let mut b = with_grad(&[4.0]);
        let total = clip_grad_norm([&mut a, &mut b], 1.0).unwrap();
        assert_eq!(total, 5.0);
        let after = grad_norm([&a, &b]);
        assert!((after - 1.0).abs() < 1e-6, "{after}");
        // Directions are kept: both scaled by the same factor.
        assert!((a.grad.data()[0] / b.grad.data()[0] - 0.75).abs() < 1e-6);
    }

    #[test]
    fn small_norms_are_untouched_and_buffers_ignored() {
        let mut a = with_grad(&[0.3, 0.4]);
        let mut buf = Param::buffer(Tensor::full(&[1], 100.0));
        let total = clip_grad_norm([&mut a, &mut buf], 1.0).unwrap();
        assert!((total - 0.5).abs() < 1e-7);
        assert_eq!(a.grad.data(), &[0.3, 0.4]);
    }

    #[test]
    fn non_finite_norm_is_returned_and_grads_untouched() {
        let mut a = with_grad(&[f32::NAN, 1.0]);
        let mut b = with_grad(&[100.0]);
        let total = clip_grad_norm([&mut a, &mut b], 1.0).unwrap();
        assert!(total.is_nan());
        assert_eq!(b.grad.data(), &[100.0]);
        let mut c = with_grad(&[f32::INFINITY]);
        assert_eq!(clip_grad_norm([&mut c], 1.0).unwrap(), f32::INFINITY);
        assert!(clip_grad_norm([&mut c], 0.0).is_err());
    }
}
