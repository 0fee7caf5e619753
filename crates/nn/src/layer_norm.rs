//! Layer normalisation over the last dimension, as `torch.nn.LayerNorm(d)`.
//!
//! `y = (x - mean) / sqrt(var + eps) * weight + bias`, with the mean and the
//! biased variance taken over the last dimension of each row. Inputs of any rank
//! are accepted: leading dimensions are flattened into rows.

use crate::error::{NnError, Result};
use crate::layer::Layer;
use crate::param::{NamedParam, NamedParamMut, Param};
use crate::tensor::Tensor;

/// LayerNorm with an elementwise affine transform (`weight` starts at one,
/// `bias` at zero, as in PyTorch).
#[derive(Clone, Debug)]
pub struct LayerNorm {
    /// Scale, `[d]`.
    pub weight: Param,
    /// Shift, `[d]`.
    pub bias: Param,
    /// Added to the variance before the square root.
    pub eps: f32,
    out: Tensor,
    grad_input: Tensor,
    /// Per-row mean of the last forward.
    mean: Vec<f32>,
    /// Per-row `1 / sqrt(var + eps)` of the last forward.
    rstd: Vec<f32>,
}

impl LayerNorm {
    /// PyTorch's default epsilon.
    pub const DEFAULT_EPS: f32 = 1e-5;

    /// LayerNorm over a last dimension of size `d`, `eps = 1e-5`.
    pub fn new(d: usize) -> Self {
        Self {
            weight: Param::trainable(Tensor::full(&[d], 1.0)),
            bias: Param::trainable(Tensor::zeros(&[d])),
            eps: Self::DEFAULT_EPS,
            out: Tensor::default(),
            grad_input: Tensor::default(),
            mean: Vec::new(),
            rstd: Vec::new(),
        }
    }

    /// LayerNorm with a custom epsilon (positive and finite).
    pub fn with_eps(d: usize, eps: f32) -> Result<Self> {
        if !(eps > 0.0 && eps.is_finite()) {
            return Err(NnError::invalid(
                "LayerNorm",
                format!("eps must be positive and finite, got {eps}"),
            ));
        }
        Ok(Self {
            eps,
            ..Self::new(d)
        })
    }

    /// Size of the normalised dimension.
    pub fn dim(&self) -> usize {
        self.weight.value.len()
    }

    /// Number of rows of `input`, checking that its last dimension is `d`.
    fn rows_of(&self, context: &str, input: &Tensor) -> Result<usize> {
        let d = self.dim();
        match input.shape().last() {
            Some(&last) if last == d && d > 0 => Ok(input.len() / d),
            _ => {
                let mut expected = input.shape().to_vec();
                match expected.last_mut() {
                    Some(l) => *l = d,
                    None => expected.push(d),
                }
                Err(NnError::shape(context, &expected, input.shape()))
            }
        }
    }
}

impl Layer for LayerNorm {
    fn kind(&self) -> &'static str {
        "LayerNorm"
    }

    fn forward(&mut self, input: &Tensor) -> Result<&Tensor> {
        let n = self.rows_of("LayerNorm input (last dimension)", input)?;
        let d = self.dim();
        self.out.resize(input.shape());
        self.mean.resize(n, 0.0);
        self.rstd.resize(n, 0.0);
        let w = self.weight.value.data();
        let b = self.bias.value.data();
        let inv_d = 1.0 / d as f32;
        for (((x, y), mean), rstd) in input
            .data()
            .chunks_exact(d)
            .zip(self.out.data_mut().chunks_exact_mut(d))
            .zip(&mut self.mean)
            .zip(&mut self.rstd)
        {
            // Two passes (mean, then squared deviations) avoid the cancellation
            // of E[x^2] - E[x]^2 when the mean is large relative to the spread.
            let m = x.iter().sum::<f32>() * inv_d;
            let var = x.iter().map(|&v| (v - m) * (v - m)).sum::<f32>() * inv_d;
            let r = 1.0 / (var + self.eps).sqrt();
            *mean = m;
            *rstd = r;
            for ((yo, &xv), (&wv, &bv)) in y.iter_mut().zip(x).zip(w.iter().zip(b)) {
                *yo = (xv - m) * r * wv + bv;
            }
        }
        Ok(&self.out)
    }

    fn backward(
        &mut self,
        input: &Tensor,
        grad_output: &Tensor,
        need_input_grad: bool,
    ) -> Result<&Tensor> {
        let n = self.rows_of("LayerNorm backward input (last dimension)", input)?;
        grad_output.expect_shape("LayerNorm grad_output", input.shape())?;
        if self.mean.len() != n || self.out.shape() != input.shape() {
            return Err(NnError::shape(
                "LayerNorm backward: output of the last forward (call forward with this input first)",
                input.shape(),
                self.out.shape(),
            ));
        }
        let d = self.dim();
        let inv_d = 1.0 / d as f32;
        if need_input_grad {
            self.grad_input.resize(input.shape());
        }
        let w = self.weight.value.data();
        let dw = self.weight.grad.data_mut();
        let db = self.bias.grad.data_mut();
        let gi = self.grad_input.data_mut();
        for (row, (x, dy)) in input
            .data()
            .chunks_exact(d)
            .zip(grad_output.data().chunks_exact(d))
            .enumerate()
        {
            let (m, r) = (self.mean[row], self.rstd[row]);
            // dx = r * (g - mean(g) - xhat * mean(g * xhat)), g = dy * weight.
            let mut sum_g = 0.0f32;
            let mut sum_gx = 0.0f32;
            for j in 0..d {
                let xhat = (x[j] - m) * r;
                dw[j] += dy[j] * xhat;
                db[j] += dy[j];
                let g = dy[j] * w[j];
                sum_g += g;
                sum_gx += g * xhat;
            }
            if need_input_grad {
                let (mean_g, mean_gx) = (sum_g * inv_d, sum_gx * inv_d);
                let dx = &mut gi[row * d..(row + 1) * d];
                for j in 0..d {
                    let xhat = (x[j] - m) * r;
                    dx[j] = r * (dy[j] * w[j] - mean_g - xhat * mean_gx);
                }
            }
        }
        Ok(&self.grad_input)
    }

    fn output(&self) -> &Tensor {
        &self.out
    }

    fn input_grad(&self) -> &Tensor {
        &self.grad_input
    }

    fn params<'a>(&'a self, prefix: &str, out: &mut Vec<NamedParam<'a>>) {
        out.push((format!("{prefix}weight"), &self.weight));
        out.push((format!("{prefix}bias"), &self.bias));
    }

    fn params_mut<'a>(&'a mut self, prefix: &str, out: &mut Vec<NamedParamMut<'a>>) {
        out.push((format!("{prefix}weight"), &mut self.weight));
        out.push((format!("{prefix}bias"), &mut self.bias));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::check_layer;
    use hlynr_rng::Rng;

    fn randomise(ln: &mut LayerNorm, rng: &mut Rng) {
        for v in ln.weight.value.data_mut() {
            *v = rng.uniform_range_f32(0.5, 1.5);
        }
        for v in ln.bias.value.data_mut() {
            *v = rng.uniform_range_f32(-0.5, 0.5);
        }
    }

    #[test]
    fn output_rows_have_zero_mean_unit_variance_before_affine() {
        let mut ln = LayerNorm::new(4);
        let x =
            Tensor::from_vec(&[2, 4], vec![1.0, 2.0, 3.0, 4.0, 10.0, 10.0, 10.0, 14.0]).unwrap();
        let y = ln.forward(&x).unwrap().clone();
        for row in y.data().chunks(4) {
            let m: f32 = row.iter().sum::<f32>() / 4.0;
            let v: f32 = row.iter().map(|a| (a - m) * (a - m)).sum::<f32>() / 4.0;
            assert!(m.abs() < 1e-6 && (v - 1.0).abs() < 1e-4, "mean {m} var {v}");
        }
        // Row 1: mean 2.5, var 1.25.
        let want = (1.0 - 2.5) / (1.25f32 + 1e-5).sqrt();
        assert!((y.data()[0] - want).abs() < 1e-6);
    }

    #[test]
    fn gradients_match_finite_differences() {
        let mut rng = Rng::seed_from_u64(5);
        let mut ln = LayerNorm::new(6);
        randomise(&mut ln, &mut rng);
        check_layer(&mut ln, &[5, 6], &mut rng).unwrap();
        // Leading dimensions are flattened.
        let mut ln3 = LayerNorm::new(3);
        randomise(&mut ln3, &mut rng);
        check_layer(&mut ln3, &[2, 2, 3], &mut rng).unwrap();
    }

    #[test]
    fn wrong_last_dimension_is_a_shape_error() {
        let mut ln = LayerNorm::new(4);
        let err = ln.forward(&Tensor::zeros(&[3, 5])).unwrap_err().to_string();
        assert!(err.contains("[3, 4]") && err.contains("[3, 5]"), "{err}");
        assert!(LayerNorm::with_eps(4, 0.0).is_err());
    }
}
