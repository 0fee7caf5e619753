//! Factorised Gaussian noisy linear layer (Fortunato et al. 2018, "Noisy
//! Networks for Exploration").
//!
//! The effective weights are `W = W_mu + W_sigma * eps_W` and
//! `b = b_mu + b_sigma * eps_b`, with factorised noise
//! `eps_W[i, j] = f(e_out[i]) f(e_in[j])`, `eps_b = f(e_out)`,
//! `f(x) = sign(x) sqrt(|x|)` and `e ~ N(0, 1)`. Exploration comes from
//! learning `sigma`; evaluation mode uses the means only.
//!
//! Names follow the common PyTorch implementations: parameters `weight_mu`,
//! `weight_sigma`, `bias_mu`, `bias_sigma` and buffers `weight_epsilon`,
//! `bias_epsilon`. PyTorch's `state_dict` lists parameters before buffers, so
//! that is the order here too.
//!
//! Initialisation follows the paper: `mu ~ U(-1/sqrt(in), 1/sqrt(in))` and
//! `sigma = sigma0 / sqrt(in)` for weights *and* biases (some implementations
//! use `sqrt(out)` for the bias sigma; the paper uses the fan-in throughout).

use hlynr_rng::Rng;

use crate::error::{NnError, Result};
use crate::gemm::gemm;
use crate::init::uniform_fan_in;
use crate::layer::Layer;
use crate::param::{NamedParam, NamedParamMut, Param};
use crate::tensor::Tensor;

/// The paper's default `sigma0` for factorised noise.
pub const NOISY_SIGMA0: f32 = 0.5;

/// Dense layer with learned, factorised Gaussian parameter noise.
#[derive(Clone, Debug)]
pub struct NoisyLinear {
    /// `[out, in]`.
    pub weight_mu: Param,
    /// `[out, in]`.
    pub weight_sigma: Param,
    /// `[out]`.
    pub bias_mu: Param,
    /// `[out]`.
    pub bias_sigma: Param,
    /// `[out, in]` buffer, the outer product of the factorised noise.
    pub weight_epsilon: Param,
    /// `[out]` buffer.
    pub bias_epsilon: Param,
    training: bool,
    /// Effective weight and bias of the last forward pass.
    weight: Tensor,
    bias: Tensor,
    /// Scratch for the effective-weight gradient `dy^T x`.
    grad_weight: Tensor,
    /// Scratch for the factorised noise draws.
    noise_in: Vec<f32>,
    noise_out: Vec<f32>,
    out: Tensor,
    grad_input: Tensor,
}

/// `f(x) = sign(x) sqrt(|x|)`, the paper's noise shaping.
fn shape_noise(x: f32) -> f32 {
    x.signum() * x.abs().sqrt()
}

impl NoisyLinear {
    /// A layer with the paper's initialisation and `sigma0 = 0.5`. The noise
    /// buffers start at zero: call [`NoisyLinear::resample_noise`] before use.
    pub fn new(in_features: usize, out_features: usize, rng: &mut Rng) -> Result<Self> {
        Self::with_sigma0(in_features, out_features, NOISY_SIGMA0, rng)
    }

    /// A layer with a custom `sigma0` (finite, non-negative).
    pub fn with_sigma0(
        in_features: usize,
        out_features: usize,
        sigma0: f32,
        rng: &mut Rng,
    ) -> Result<Self> {
        if in_features == 0 || out_features == 0 || !sigma0.is_finite() || sigma0 < 0.0 {
            return Err(NnError::invalid(
                "NoisyLinear",
                format!(
                    "needs positive sizes and a finite sigma0 >= 0, got in {in_features}, \
                     out {out_features}, sigma0 {sigma0}"
                ),
            ));
        }
        let sigma = sigma0 / (in_features as f32).sqrt();
        let mut weight_mu = Tensor::zeros(&[out_features, in_features]);
        uniform_fan_in(&mut weight_mu, in_features, rng);
        let mut bias_mu = Tensor::zeros(&[out_features]);
        uniform_fan_in(&mut bias_mu, in_features, rng);
        Ok(Self {
            weight_mu: Param::trainable(weight_mu),
            weight_sigma: Param::trainable(Tensor::full(&[out_features, in_features], sigma)),
            bias_mu: Param::trainable(bias_mu),
            bias_sigma: Param::trainable(Tensor::full(&[out_features], sigma)),
            weight_epsilon: Param::buffer(Tensor::zeros(&[out_features, in_features])),
            bias_epsilon: Param::buffer(Tensor::zeros(&[out_features])),
            training: true,
            weight: Tensor::default(),
            bias: Tensor::default(),
            grad_weight: Tensor::default(),
            noise_in: Vec::new(),
            noise_out: Vec::new(),
            out: Tensor::default(),
            grad_input: Tensor::default(),
        })
    }

    /// Input width.
    pub fn in_features(&self) -> usize {
        self.weight_mu.value.shape()[1]
    }

    /// Output width.
    pub fn out_features(&self) -> usize {
        self.weight_mu.value.shape()[0]
    }

    /// True in training mode (noisy weights).
    pub fn is_training(&self) -> bool {
        self.training
    }

    /// Draws fresh factorised noise into the epsilon buffers (`in + out`
    /// normal draws: inputs first, then outputs).
    pub fn resample_noise(&mut self, rng: &mut Rng) {
        let (fi, fo) = (self.in_features(), self.out_features());
        self.noise_in.clear();
        self.noise_in
            .extend((0..fi).map(|_| shape_noise(rng.normal_f32())));
        self.noise_out.clear();
        self.noise_out
            .extend((0..fo).map(|_| shape_noise(rng.normal_f32())));
        let we = self.weight_epsilon.value.data_mut();
        for (row, &eo) in we.chunks_exact_mut(fi).zip(&self.noise_out) {
            for (w, &ei) in row.iter_mut().zip(&self.noise_in) {
                *w = eo * ei;
            }
        }
        self.bias_epsilon
            .value
            .data_mut()
            .copy_from_slice(&self.noise_out);
    }

    /// Builds the effective weight and bias for the current mode.
    fn effective_parameters(&mut self) {
        self.weight.copy_from(&self.weight_mu.value);
        self.bias.copy_from(&self.bias_mu.value);
        if self.training {
            let pairs = [
                (&mut self.weight, &self.weight_sigma, &self.weight_epsilon),
                (&mut self.bias, &self.bias_sigma, &self.bias_epsilon),
            ];
            for (eff, sigma, eps) in pairs {
                for ((w, &s), &e) in eff
                    .data_mut()
                    .iter_mut()
                    .zip(sigma.value.data())
                    .zip(eps.value.data())
                {
                    *w += s * e;
                }
            }
        }
    }
}

impl Layer for NoisyLinear {
    fn kind(&self) -> &'static str {
        "NoisyLinear"
    }

    fn forward(&mut self, input: &Tensor) -> Result<&Tensor> {
        let (fi, fo) = (self.in_features(), self.out_features());
        let n = input.expect_matrix("NoisyLinear input", fi)?;
        self.effective_parameters();
        self.out.resize(&[n, fo]);
        let out = self.out.data_mut();
        for row in out.chunks_exact_mut(fo) {
            row.copy_from_slice(self.bias.data());
        }
        gemm(
            n,
            fi,
            fo,
            1.0,
            input.data(),
            false,
            self.weight.data(),
            true,
            1.0,
            out,
        );
        Ok(&self.out)
    }

    fn backward(
        &mut self,
        input: &Tensor,
        grad_output: &Tensor,
        need_input_grad: bool,
    ) -> Result<&Tensor> {
        let (fi, fo) = (self.in_features(), self.out_features());
        let n = input.expect_matrix("NoisyLinear backward input", fi)?;
        grad_output.expect_shape("NoisyLinear grad_output", &[n, fo])?;
        if self.weight.shape() != [fo, fi] {
            return Err(NnError::invalid(
                "NoisyLinear backward",
                "called before forward",
            ));
        }
        let dy = grad_output.data();
        // dW_eff = dy^T x; dW_mu += dW_eff; dW_sigma += dW_eff * eps (training).
        self.grad_weight.resize(&[fo, fi]);
        gemm(
            fo,
            n,
            fi,
            1.0,
            dy,
            true,
            input.data(),
            false,
            0.0,
            self.grad_weight.data_mut(),
        );
        let gw = self.grad_weight.data();
        for (g, &d) in self.weight_mu.grad.data_mut().iter_mut().zip(gw) {
            *g += d;
        }
        if self.training {
            for ((g, &d), &e) in self
                .weight_sigma
                .grad
                .data_mut()
                .iter_mut()
                .zip(gw)
                .zip(self.weight_epsilon.value.data())
            {
                *g += d * e;
            }
        }
        for row in dy.chunks_exact(fo) {
            for (g, &d) in self.bias_mu.grad.data_mut().iter_mut().zip(row) {
                *g += d;
            }
            if self.training {
                for ((g, &d), &e) in self
                    .bias_sigma
                    .grad
                    .data_mut()
                    .iter_mut()
                    .zip(row)
                    .zip(self.bias_epsilon.value.data())
                {
                    *g += d * e;
                }
            }
        }
        if need_input_grad {
            self.grad_input.resize(&[n, fi]);
            gemm(
                n,
                fo,
                fi,
                1.0,
                dy,
                false,
                self.weight.data(),
                false,
                0.0,
                self.grad_input.data_mut(),
            );
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
        out.push((format!("{prefix}weight_mu"), &self.weight_mu));
        out.push((format!("{prefix}weight_sigma"), &self.weight_sigma));
        out.push((format!("{prefix}bias_mu"), &self.bias_mu));
        out.push((format!("{prefix}bias_sigma"), &self.bias_sigma));
        out.push((format!("{prefix}weight_epsilon"), &self.weight_epsilon));
        out.push((format!("{prefix}bias_epsilon"), &self.bias_epsilon));
    }

    fn params_mut<'a>(&'a mut self, prefix: &str, out: &mut Vec<NamedParamMut<'a>>) {
        out.push((format!("{prefix}weight_mu"), &mut self.weight_mu));
        out.push((format!("{prefix}weight_sigma"), &mut self.weight_sigma));
        out.push((format!("{prefix}bias_mu"), &mut self.bias_mu));
        out.push((format!("{prefix}bias_sigma"), &mut self.bias_sigma));
        out.push((format!("{prefix}weight_epsilon"), &mut self.weight_epsilon));
        out.push((format!("{prefix}bias_epsilon"), &mut self.bias_epsilon));
    }

    fn set_training(&mut self, training: bool) {
        self.training = training;
    }

    fn resample_noise(&mut self, rng: &mut Rng) {
        NoisyLinear::resample_noise(self, rng);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::check_layer;

    fn random(shape: &[usize], rng: &mut Rng) -> Tensor {
        let mut t = Tensor::zeros(shape);
        for v in t.data_mut() {
            *v = rng.uniform_range_f32(-1.0, 1.0);
        }
        t
    }

    #[test]
    fn gradients_match_finite_differences_with_fixed_noise() {
        let mut rng = Rng::seed_from_u64(1);
        let mut l = NoisyLinear::new(5, 4, &mut rng).unwrap();
        l.resample_noise(&mut rng);
        // Larger sigmas so the sigma gradients are far from zero.
        l.weight_sigma.value = random(&[4, 5], &mut rng);
        l.bias_sigma.value = random(&[4], &mut rng);
        check_layer(&mut l, &[3, 5], &mut rng).unwrap();
        l.set_training(false);
        check_layer(&mut l, &[3, 5], &mut rng).unwrap();
    }

    #[test]
    fn training_forward_uses_noisy_weights() {
        let mut rng = Rng::seed_from_u64(2);
        let mut l = NoisyLinear::new(3, 2, &mut rng).unwrap();
        l.resample_noise(&mut rng);
        let x = random(&[2, 3], &mut rng);
        let y = l.forward(&x).unwrap().clone();
        for n in 0..2 {
            for o in 0..2 {
                let mut want = l.bias_mu.value.data()[o]
                    + l.bias_sigma.value.data()[o] * l.bias_epsilon.value.data()[o];
                for i in 0..3 {
                    let k = o * 3 + i;
                    want += x.data()[n * 3 + i]
                        * (l.weight_mu.value.data()[k]
                            + l.weight_sigma.value.data()[k] * l.weight_epsilon.value.data()[k]);
                }
                assert!((y.data()[n * 2 + o] - want).abs() < 1e-6);
            }
        }
    }

    #[test]
    fn eval_mode_ignores_sigma_and_noise() {
        let mut rng = Rng::seed_from_u64(3);
        let mut l = NoisyLinear::new(4, 3, &mut rng).unwrap();
        l.resample_noise(&mut rng);
        let x = random(&[2, 4], &mut rng);
        let noisy = l.forward(&x).unwrap().clone();
        l.set_training(false);
        let a = l.forward(&x).unwrap().clone();
        assert_ne!(noisy, a);
        l.weight_sigma.value.data_mut().fill(7.0);
        l.bias_sigma.value.data_mut().fill(-3.0);
        l.resample_noise(&mut rng);
        let b = l.forward(&x).unwrap().clone();
        assert_eq!(a, b);
        // No gradient reaches sigma in eval mode.
        l.backward(&x, &random(&[2, 3], &mut rng), false).unwrap();
        assert!(l.weight_sigma.grad.data().iter().all(|&g| g == 0.0));
        assert!(l.bias_sigma.grad.data().iter().all(|&g| g == 0.0));
        assert!(l.weight_mu.grad.data().iter().any(|&g| g != 0.0));
    }

    #[test]
    fn noise_is_factorised_and_init_follows_the_paper() {
        let mut rng = Rng::seed_from_u64(4);
        let mut l = NoisyLinear::new(16, 4, &mut rng).unwrap();
        assert!(l.weight_sigma.value.data().iter().all(|&s| s == 0.5 / 4.0));
        assert!(l.bias_sigma.value.data().iter().all(|&s| s == 0.5 / 4.0));
        assert!(l.weight_mu.value.data().iter().all(|w| w.abs() <= 0.25));
        l.resample_noise(&mut rng);
        let we = l.weight_epsilon.value.data();
        let be = l.bias_epsilon.value.data();
        // Rank one: eps_W[i, j] = eps_b[i] * e_in[j], so ratios of rows are constant.
        for o in 1..4 {
            let ratio = be[o] / be[0];
            for i in 0..16 {
                assert!((we[o * 16 + i] - ratio * we[i]).abs() < 1e-5);
            }
        }
        let mut names = Vec::new();
        l.params("", &mut names);
        let names: Vec<String> = names.into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            [
                "weight_mu",
                "weight_sigma",
                "bias_mu",
                "bias_sigma",
                "weight_epsilon",
                "bias_epsilon"
            ]
        );
    }

    #[test]
    fn resampling_is_deterministic_given_the_seed() {
        let run = |seed| {
            let mut rng = Rng::seed_from_u64(5);
            let mut l = NoisyLinear::new(6, 3, &mut rng).unwrap();
            l.resample_noise(&mut Rng::seed_from_u64(seed));
            let x = random(&[2, 6], &mut rng);
            l.forward(&x).unwrap().clone()
        };
        assert_eq!(run(9), run(9));
        assert_ne!(run(9), run(10));
    }

    #[test]
    fn bad_inputs_are_named_errors() {
        let mut rng = Rng::seed_from_u64(0);
        let mut l = NoisyLinear::new(3, 2, &mut rng).unwrap();
        let err = l.forward(&Tensor::zeros(&[4, 5])).unwrap_err().to_string();
        assert!(
            err.contains("NoisyLinear input") && err.contains("[4, 5]"),
            "{err}"
        );
        let err = l
            .backward(&Tensor::zeros(&[4, 3]), &Tensor::zeros(&[4, 2]), true)
            .unwrap_err()
            .to_string();
        assert!(err.contains("before forward"), "{err}");
        assert!(NoisyLinear::with_sigma0(3, 2, -1.0, &mut rng).is_err());
    }
}
