//! Finite-difference gradient checks, used by every layer's and loss's tests.
//!
//! The engine computes in `f32`, so the checks use central differences with a
//! step of `1e-2`-ish and a mixed absolute/relative tolerance. A wrong backward
//! pass produces errors of order one; rounding stays two orders below that.

use hlynr_rng::Rng;

use crate::error::{NnError, Result};
use crate::layer::Layer;
use crate::tensor::Tensor;

/// Tolerances and step of a finite-difference check.
#[derive(Clone, Copy, Debug)]
pub struct GradCheck {
    /// Central-difference step.
    pub eps: f32,
    /// Absolute tolerance.
    pub atol: f64,
    /// Relative tolerance (to the larger magnitude of the two estimates).
    pub rtol: f64,
    /// At most this many coordinates per tensor are checked (chosen at random).
    pub max_checks: usize,
}

impl Default for GradCheck {
    fn default() -> Self {
        Self {
            eps: 1e-2,
            atol: 2e-3,
            rtol: 2e-2,
            max_checks: 48,
        }
    }
}

impl GradCheck {
    /// Compares `analytic` with central differences of `loss` over the
    /// coordinates of `x`. `loss` must read `x` through the slice it is given.
    pub fn check_slice(
        &self,
        what: &str,
        x: &mut [f32],
        analytic: &[f32],
        rng: &mut Rng,
        mut loss: impl FnMut(&[f32]) -> f64,
    ) -> Result<()> {
        if x.len() != analytic.len() {
            return Err(NnError::invalid(
                what,
                format!(
                    "gradient has {} values for {} inputs",
                    analytic.len(),
                    x.len()
                ),
            ));
        }
        for i in self.indices(x.len(), rng) {
            let orig = x[i];
            x[i] = orig + self.eps;
            let up = loss(x);
            x[i] = orig - self.eps;
            let down = loss(x);
            x[i] = orig;
            let numeric = (up - down) / (2.0 * self.eps as f64);
            let a = analytic[i] as f64;
            let tol = self.atol + self.rtol * a.abs().max(numeric.abs());
            // Written so that a NaN on either side fails the check.
            let agrees = (a - numeric).abs() <= tol;
            if !agrees {
                return Err(NnError::invalid(
                    what,
                    format!(
                        "gradient mismatch at index {i}: analytic {a:.6e}, numeric {numeric:.6e}"
                    ),
                ));
            }
        }
        Ok(())
    }

    fn indices(&self, n: usize, rng: &mut Rng) -> Vec<usize> {
        let mut idx: Vec<usize> = (0..n).collect();
        if n > self.max_checks {
            rng.shuffle(&mut idx);
            idx.truncate(self.max_checks);
        }
        idx
    }
}

/// Checks a layer's input and parameter gradients with default tolerances on a
/// random input of `input_shape` (uniform in `[-1, 1]`).
pub fn check_layer(layer: &mut dyn Layer, input_shape: &[usize], rng: &mut Rng) -> Result<()> {
    let mut input = Tensor::zeros(input_shape);
    for v in input.data_mut() {
        *v = rng.uniform_range_f32(-1.0, 1.0);
    }
    check_layer_at(layer, &mut input, GradCheck::default(), rng)
}

/// Checks a layer's gradients at a given input. The scalar loss is
/// `sum(output * R)` with a fixed random `R`, so every output coordinate matters.
pub fn check_layer_at(
    layer: &mut dyn Layer,
    input: &mut Tensor,
    cfg: GradCheck,
    rng: &mut Rng,
) -> Result<()> {
    let out_shape = layer.forward(input)?.shape().to_vec();
    let mut weights = Tensor::zeros(&out_shape);
    for v in weights.data_mut() {
        *v = rng.uniform_range_f32(-1.0, 1.0);
    }
    let kind = layer.kind();

    // Analytic gradients, from zeroed parameter gradients.
    {
        let mut ps = Vec::new();
        layer.params_mut("", &mut ps);
        for (_, p) in ps {
            p.zero_grad();
        }
    }
    layer.forward(input)?;
    let grad_input = layer.backward(input, &weights, true)?.clone();
    let shape = input.shape().to_vec();

    let weighted = |out: &Tensor| -> f64 {
        out.data()
            .iter()
            .zip(weights.data())
            .map(|(&o, &w)| o as f64 * w as f64)
            .sum()
    };

    // Input gradient.
    let mut xs = input.data().to_vec();
    cfg.check_slice(
        &format!("{kind} input gradient"),
        &mut xs,
        grad_input.data(),
        rng,
        |x| {
            let t = Tensor::from_slice(&shape, x).expect("same shape");
            weighted(layer.forward(&t).expect("forward succeeded before"))
        },
    )?;

    // Parameter gradients, one tensor at a time.
    let names: Vec<(String, bool)> = {
        let mut ps = Vec::new();
        layer.params("", &mut ps);
        ps.into_iter().map(|(n, p)| (n, p.is_trainable())).collect()
    };
    for (pi, (name, trainable)) in names.into_iter().enumerate() {
        if !trainable {
            continue;
        }
        let (mut values, analytic) = {
            let mut ps = Vec::new();
            layer.params_mut("", &mut ps);
            let p = &ps[pi].1;
            (p.value.data().to_vec(), p.grad.data().to_vec())
        };
        let what = format!("{kind} parameter `{name}` gradient");
        cfg.check_slice(&what, &mut values, &analytic, rng, |v| {
            {
                let mut ps = Vec::new();
                layer.params_mut("", &mut ps);
                ps[pi].1.value.data_mut().copy_from_slice(v);
            }
            weighted(layer.forward(input).expect("forward succeeded before"))
        })?;
        let mut ps = Vec::new();
        layer.params_mut("", &mut ps);
        ps[pi].1.value.data_mut().copy_from_slice(&values);
    }
    Ok(())
}
