//! IQN quantile embedding: `phi(tau)_j = act(sum_i cos(pi * i * tau) w_ij + b_j)`.
//!
//! Implicit quantile networks (Dabney et al. 2018) embed each sampled quantile
//! fraction `tau` in `[0, 1]` through a cosine basis and one dense layer; the
//! result multiplies the state features element-wise. The frequencies are
//! `i = first_frequency .. first_frequency + n_cos`: the paper writes
//! `i = 0 .. n - 1` (the default here); Dopamine and Linesight use `1 ..= n`.
//!
//! Input is a column of taus `[M, 1]` (`M = batch * n_tau`), output `[M, D]`.
//! The inner dense layer is named `linear`, so the state-dict keys are
//! `linear.weight` `[D, n_cos]` and `linear.bias` `[D]`.
//!
//! The gradient with respect to `tau` is computed too (the basis is smooth),
//! although IQN never needs it since taus are sampled, not learned.

use std::f32::consts::PI;

use hlynr_rng::Rng;

use crate::error::{NnError, Result};
use crate::layer::Layer;
use crate::linear::Linear;
use crate::param::{NamedParam, NamedParamMut};
use crate::tensor::Tensor;

/// Nonlinearity applied to the embedding.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum EmbeddingActivation {
    /// `max(0, x)`, the IQN paper's choice.
    Relu,
    /// `x` for `x >= 0`, else `slope * x` (Linesight uses LeakyReLU, slope 0.01).
    LeakyRelu(f32),
    /// No activation; the caller applies its own.
    Identity,
}

impl EmbeddingActivation {
    /// `(activation(x), activation'(x))`.
    #[inline]
    fn apply(self, x: f32) -> (f32, f32) {
        match self {
            Self::Relu => {
                if x > 0.0 {
                    (x, 1.0)
                } else {
                    (0.0, 0.0)
                }
            }
            Self::LeakyRelu(slope) => {
                if x >= 0.0 {
                    (x, 1.0)
                } else {
                    (slope * x, slope)
                }
            }
            Self::Identity => (x, 1.0),
        }
    }
}

/// `out[r * n + i] = cos(pi * (first + i) * taus[r])` (`n = out.len() /
/// taus.len()`) by the recurrence `cos((k + 1) x) = 2 cos(x) cos(k x) -
/// cos((k - 1) x)`: three cosines per row instead of one per entry. Carried
/// in `f64`, its error stays far below `f32` rounding for any practical basis
/// size. Rows advance in lanes of eight, whose independent recurrences the
/// compiler vectorises (one row's recurrence alone is a chain of dependent
/// multiply-subtracts).
fn cosine_basis(taus: &[f32], first: usize, out: &mut [f32]) {
    const LANES: usize = 8;
    let n = out.len() / taus.len().max(1);
    for (taus, out) in taus.chunks(LANES).zip(out.chunks_mut(LANES * n)) {
        let (mut two_cos, mut prev, mut cur) = ([0.0f64; LANES], [0.0; LANES], [0.0; LANES]);
        for (l, &tau) in taus.iter().enumerate() {
            let x = std::f64::consts::PI * f64::from(tau);
            two_cos[l] = 2.0 * x.cos();
            prev[l] = ((first as f64 - 1.0) * x).cos();
            cur[l] = (first as f64 * x).cos();
        }
        for i in 0..n {
            for (l, &c) in cur.iter().enumerate().take(taus.len()) {
                out[l * n + i] = c as f32;
            }
            for l in 0..LANES {
                (prev[l], cur[l]) = (cur[l], two_cos[l] * cur[l] - prev[l]);
            }
        }
    }
}

/// Cosine features of `tau` followed by `Linear(n_cos -> D)` and an activation.
#[derive(Clone, Debug)]
pub struct CosineEmbedding {
    /// The dense layer, `n_cos -> embedding_dim`, PyTorch default init.
    pub linear: Linear,
    activation: EmbeddingActivation,
    first_frequency: usize,
    /// `cos(pi * i * tau)` for the last forward pass, `[M, n_cos]`.
    features: Tensor,
    /// `activation'(pre-activation)` of the last forward pass, `[M, D]`.
    slope: Tensor,
    out: Tensor,
    /// Scratch: gradient at the pre-activation, then at the features.
    grad_pre: Tensor,
    grad_input: Tensor,
}

impl CosineEmbedding {
    /// The paper's embedding: frequencies `0 .. n_cos`, ReLU.
    pub fn new(n_cos: usize, embedding_dim: usize, rng: &mut Rng) -> Result<Self> {
        Self::with_options(n_cos, embedding_dim, EmbeddingActivation::Relu, 0, rng)
    }

    /// Custom activation and first frequency (1 for Dopamine/Linesight).
    pub fn with_options(
        n_cos: usize,
        embedding_dim: usize,
        activation: EmbeddingActivation,
        first_frequency: usize,
        rng: &mut Rng,
    ) -> Result<Self> {
        if n_cos == 0 || embedding_dim == 0 {
            return Err(NnError::invalid(
                "CosineEmbedding",
                format!("needs n_cos > 0 and embedding_dim > 0, got {n_cos} and {embedding_dim}"),
            ));
        }
        if let EmbeddingActivation::LeakyRelu(s) = activation
            && !s.is_finite()
        {
            return Err(NnError::invalid(
                "CosineEmbedding",
                format!("LeakyReLU slope must be finite, got {s}"),
            ));
        }
        Ok(Self {
            linear: Linear::new(n_cos, embedding_dim, rng),
            activation,
            first_frequency,
            features: Tensor::default(),
            slope: Tensor::default(),
            out: Tensor::default(),
            grad_pre: Tensor::default(),
            grad_input: Tensor::default(),
        })
    }

    /// Number of cosine features.
    pub fn n_cos(&self) -> usize {
        self.linear.in_features()
    }

    /// Embedding width `D`.
    pub fn embedding_dim(&self) -> usize {
        self.linear.out_features()
    }

    /// The activation in use.
    pub fn activation(&self) -> EmbeddingActivation {
        self.activation
    }
}

impl Layer for CosineEmbedding {
    fn kind(&self) -> &'static str {
        "CosineEmbedding"
    }

    fn forward(&mut self, input: &Tensor) -> Result<&Tensor> {
        let m = input.expect_matrix("CosineEmbedding taus [M, 1]", 1)?;
        let n_cos = self.n_cos();
        self.features.resize(&[m, n_cos]);
        cosine_basis(input.data(), self.first_frequency, self.features.data_mut());
        let pre = self.linear.forward(&self.features)?;
        self.out.resize(pre.shape());
        self.slope.resize(pre.shape());
        let rows = self
            .out
            .data_mut()
            .iter_mut()
            .zip(self.slope.data_mut())
            .zip(pre.data());
        // One loop per activation, so that each compiles branch-free.
        match self.activation {
            EmbeddingActivation::Relu => {
                for ((o, s), &p) in rows {
                    (*o, *s) = EmbeddingActivation::Relu.apply(p);
                }
            }
            EmbeddingActivation::LeakyRelu(slope) => {
                for ((o, s), &p) in rows {
                    (*o, *s) = EmbeddingActivation::LeakyRelu(slope).apply(p);
                }
            }
            EmbeddingActivation::Identity => {
                for ((o, s), &p) in rows {
                    (*o, *s) = (p, 1.0);
                }
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
        let m = input.expect_matrix("CosineEmbedding backward taus [M, 1]", 1)?;
        grad_output.expect_shape("CosineEmbedding grad_output", &[m, self.embedding_dim()])?;
        if self.features.shape() != [m, self.n_cos()] {
            return Err(NnError::invalid(
                "CosineEmbedding backward",
                format!(
                    "taus shape {:?} is not the one of the last forward pass",
                    input.shape()
                ),
            ));
        }
        self.grad_pre.resize(grad_output.shape());
        for ((g, &d), &s) in self
            .grad_pre
            .data_mut()
            .iter_mut()
            .zip(grad_output.data())
            .zip(self.slope.data())
        {
            *g = d * s;
        }
        let n_cos = self.n_cos();
        let grad_features =
            self.linear
                .backward(&self.features, &self.grad_pre, need_input_grad)?;
        if need_input_grad {
            // d cos(w tau) / d tau = -w sin(w tau).
            self.grad_input.resize(&[m, 1]);
            for ((g, &tau), row) in self
                .grad_input
                .data_mut()
                .iter_mut()
                .zip(input.data())
                .zip(grad_features.data().chunks_exact(n_cos))
            {
                *g = row
                    .iter()
                    .enumerate()
                    .map(|(i, &d)| {
                        let w = PI * (self.first_frequency + i) as f32;
                        -d * w * (w * tau).sin()
                    })
                    .sum();
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
        self.linear.params(&format!("{prefix}linear."), out);
    }

    fn params_mut<'a>(&'a mut self, prefix: &str, out: &mut Vec<NamedParamMut<'a>>) {
        self.linear.params_mut(&format!("{prefix}linear."), out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{GradCheck, check_layer_at};

    fn taus(m: usize, rng: &mut Rng) -> Tensor {
        let mut t = Tensor::zeros(&[m, 1]);
        for v in t.data_mut() {
            *v = rng.uniform_f32();
        }
        t
    }

    #[test]
    fn forward_matches_the_formula() {
        let mut rng = Rng::seed_from_u64(1);
        for first in [0, 1] {
            let mut e = CosineEmbedding::with_options(
                4,
                3,
                EmbeddingActivation::LeakyRelu(0.01),
                first,
                &mut rng,
            )
            .unwrap();
            let t = taus(5, &mut rng);
            let y = e.forward(&t).unwrap().clone();
            let w = e.linear.weight.value.data();
            let b = e.linear.bias.as_ref().unwrap().value.data();
            for m in 0..5 {
                for j in 0..3 {
                    let mut pre = b[j] as f64;
                    for i in 0..4 {
                        let freq = std::f64::consts::PI * (first + i) as f64;
                        pre += (freq * t.data()[m] as f64).cos() * w[j * 4 + i] as f64;
                    }
                    let want = if pre >= 0.0 { pre } else { 0.01 * pre };
                    assert!((y.data()[m * 3 + j] as f64 - want).abs() < 1e-5);
                }
            }
        }
    }

    /// The recurrence against one `cos` per entry, over a basis far larger
    /// than any network uses.
    #[test]
    fn cosine_recurrence_matches_direct_cosines() {
        let mut rng = Rng::seed_from_u64(3);
        // 21 rows: two full lanes of eight and a partial one.
        let taus: Vec<f32> = (0..21)
            .map(|k| if k < 2 { k as f32 } else { rng.uniform_f32() })
            .collect();
        let n = 1024;
        let mut out = vec![0.0f32; taus.len() * n];
        let mut worst = 0.0f64;
        for first in [0, 1, 7] {
            cosine_basis(&taus, first, &mut out);
            for (r, &tau) in taus.iter().enumerate() {
                for i in 0..n {
                    let want = (std::f64::consts::PI * (first + i) as f64 * f64::from(tau)).cos();
                    worst = worst.max((f64::from(out[r * n + i]) - want).abs());
                }
            }
        }
        assert!(worst < 1e-6, "{worst}");
    }

    #[test]
    fn gradients_match_finite_differences() {
        let mut rng = Rng::seed_from_u64(2);
        let cfg = GradCheck {
            eps: 1e-3,
            ..GradCheck::default()
        };
        for act in [
            EmbeddingActivation::Identity,
            EmbeddingActivation::LeakyRelu(0.1),
            EmbeddingActivation::Relu,
        ] {
            let mut e = CosineEmbedding::with_options(6, 5, act, 0, &mut rng).unwrap();
            let mut t = taus(7, &mut rng);
            check_layer_at(&mut e, &mut t, cfg, &mut rng).unwrap();
        }
    }

    #[test]
    fn identical_runs_are_bitwise_equal() {
        let run = || {
            let mut rng = Rng::seed_from_u64(4);
            let mut e = CosineEmbedding::with_options(
                8,
                5,
                EmbeddingActivation::LeakyRelu(0.01),
                1,
                &mut rng,
            )
            .unwrap();
            let t = taus(6, &mut rng);
            let y = e.forward(&t).unwrap().clone();
            let mut r = Tensor::zeros(y.shape());
            r.data_mut()
                .iter_mut()
                .for_each(|v| *v = rng.uniform_range_f32(-1.0, 1.0));
            let dt = e.backward(&t, &r, true).unwrap().clone();
            (y, dt, e.linear.weight.grad.clone())
        };
        assert_eq!(run(), run());
    }

    #[test]
    fn names_and_errors() {
        let mut rng = Rng::seed_from_u64(3);
        let mut e = CosineEmbedding::new(8, 4, &mut rng).unwrap();
        let mut ps = Vec::new();
        e.params("iqn.", &mut ps);
        let names: Vec<&str> = ps.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["iqn.linear.weight", "iqn.linear.bias"]);
        let err = e.forward(&Tensor::zeros(&[5, 2])).unwrap_err().to_string();
        assert!(
            err.contains("CosineEmbedding taus") && err.contains("[5, 2]"),
            "{err}"
        );
        assert!(CosineEmbedding::new(0, 4, &mut rng).is_err());
        assert_eq!(e.activation(), EmbeddingActivation::Relu);
        // ReLU output is never negative.
        let y = e.forward(&taus(16, &mut rng)).unwrap();
        assert!(y.data().iter().all(|&v| v >= 0.0));
        assert!(y.data().iter().any(|&v| v > 0.0));
    }
}
