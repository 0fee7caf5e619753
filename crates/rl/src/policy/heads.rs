//! Action heads: an action space split into independent Gaussian and
//! categorical components, and the squashing of Gaussian samples into bounded
//! actions.

use hlynr_env::Space;
use hlynr_nn::{Categorical, Tensor};

use super::PolicyError;
use super::config::Squash;

/// One independent part of the action distribution.
#[derive(Clone, Debug)]
pub(super) enum Component {
    /// Diagonal Gaussian over `dim` box dimensions.
    Gaussian {
        /// First column in the `action_net` output.
        out_offset: usize,
        /// First slot in the flat action.
        act_offset: usize,
        /// First entry of `log_std`.
        std_offset: usize,
        dim: usize,
        low: Vec<f32>,
        high: Vec<f32>,
    },
    /// Categorical over `n` choices, one action slot.
    Categorical {
        out_offset: usize,
        act_offset: usize,
        n: usize,
    },
}

/// Reusable per-component buffers (no allocation after the first batch).
#[derive(Clone, Debug, Default)]
pub(super) struct HeadScratch {
    /// Gaussian mean or categorical logits, `[B, width]`.
    pub(super) params: Tensor,
    /// Gaussian `log_std` slice, `[dim]`.
    pub(super) log_std: Tensor,
    /// Gradient w.r.t. `params`.
    pub(super) grad_params: Tensor,
    /// Gradient w.r.t. `log_std`.
    pub(super) grad_log_std: Tensor,
    /// Raw actions of this component, `[B, dim]` (Gaussian) or indices.
    pub(super) actions: Tensor,
    pub(super) indices: Vec<usize>,
    pub(super) categorical: Categorical,
    pub(super) log_prob: Vec<f32>,
    /// Per-sample entropy of this component.
    pub(super) entropy: Vec<f32>,
}

/// Splits an action space into components, checking the squash mode against the bounds.
pub(super) fn components(
    space: &Space,
    squash: Squash,
) -> Result<(Vec<Component>, usize, usize), PolicyError> {
    fn walk(
        space: &Space,
        squash: Squash,
        out: &mut Vec<Component>,
        offs: &mut (usize, usize, usize),
    ) -> Result<(), PolicyError> {
        match space {
            Space::Box { low, high, .. } => {
                let dim = low.len();
                if dim == 0 {
                    return Err(PolicyError::invalid("action space", "empty Box"));
                }
                let bounded = low.iter().chain(high).any(|v| v.is_finite());
                let all_finite = low.iter().chain(high).all(|v| v.is_finite());
                match squash {
                    Squash::None if bounded => {
                        return Err(PolicyError::invalid(
                            "policy.squash",
                            format!(
                                "`none` sends unbounded Gaussian samples, but the action box has bounds low={low:?} high={high:?}; use `clip` or `tanh`"
                            ),
                        ));
                    }
                    Squash::Tanh if !all_finite => {
                        return Err(PolicyError::invalid(
                            "policy.squash",
                            format!(
                                "`tanh` needs finite bounds, the action box has low={low:?} high={high:?}"
                            ),
                        ));
                    }
                    _ => {}
                }
                out.push(Component::Gaussian {
                    out_offset: offs.0,
                    act_offset: offs.1,
                    std_offset: offs.2,
                    dim,
                    low: low.clone(),
                    high: high.clone(),
                });
                offs.0 += dim;
                offs.1 += dim;
                offs.2 += dim;
            }
            Space::Discrete { n } => {
                push_categorical(*n, out, offs)?;
            }
            Space::MultiDiscrete { nvec } => {
                for &n in nvec {
                    push_categorical(n, out, offs)?;
                }
            }
            Space::Tuple { spaces } => {
                for s in spaces {
                    walk(s, squash, out, offs)?;
                }
            }
        }
        Ok(())
    }
    fn push_categorical(
        n: usize,
        out: &mut Vec<Component>,
        offs: &mut (usize, usize, usize),
    ) -> Result<(), PolicyError> {
        if n == 0 {
            return Err(PolicyError::invalid(
                "action space",
                "a discrete space with 0 choices",
            ));
        }
        out.push(Component::Categorical {
            out_offset: offs.0,
            act_offset: offs.1,
            n,
        });
        offs.0 += n;
        offs.1 += 1;
        Ok(())
    }
    let mut out = Vec::new();
    let mut offs = (0, 0, 0);
    walk(space, squash, &mut out, &mut offs)?;
    if out.is_empty() {
        return Err(PolicyError::invalid("action space", "has no components"));
    }
    Ok((out, offs.0, offs.2))
}

/// `log(1 - tanh(u)^2)` computed stably as `2 (ln 2 - u - softplus(-2u))`.
#[inline]
pub(super) fn log_one_minus_tanh_sq(u: f64) -> f64 {
    let x = -2.0 * u;
    let softplus = if x > 30.0 { x } else { x.exp().ln_1p() };
    2.0 * (std::f64::consts::LN_2 - u - softplus)
}

pub(super) fn component_out_offset(c: &Component) -> usize {
    match c {
        Component::Gaussian { out_offset, .. } | Component::Categorical { out_offset, .. } => {
            *out_offset
        }
    }
}

/// `sum_j log((high_j - low_j) / 2 * (1 - tanh(u_j)^2))`: the log-determinant
/// of the Jacobian of the tanh squashing at `u`.
pub(super) fn tanh_log_det(u: &[f32], low: &[f32], high: &[f32]) -> f64 {
    u.iter()
        .zip(low.iter().zip(high))
        .map(|(&u, (&lo, &hi))| {
            (0.5 * (hi as f64 - lo as f64)).ln() + log_one_minus_tanh_sq(u as f64)
        })
        .sum()
}

/// Maps raw Gaussian samples to environment actions in place.
pub(super) fn squash_row(squash: Squash, row: &mut [f32], low: &[f32], high: &[f32]) {
    match squash {
        Squash::None => {}
        Squash::Clip => {
            for ((v, &lo), &hi) in row.iter_mut().zip(low).zip(high) {
                *v = v.clamp(lo, hi);
            }
        }
        Squash::Tanh => {
            for ((v, &lo), &hi) in row.iter_mut().zip(low).zip(high) {
                let t = (*v as f64).tanh();
                let a = lo as f64 + 0.5 * (t + 1.0) * (hi as f64 - lo as f64);
                *v = (a as f32).clamp(lo, hi);
            }
        }
    }
}
