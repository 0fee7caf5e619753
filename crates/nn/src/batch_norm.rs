//! Batch normalisation with PyTorch's semantics, for dense (`BatchNorm1d`) and
//! image (`BatchNorm2d`) activations.
//!
//! In training mode each channel is normalised with the minibatch mean and the
//! *biased* variance, and the running statistics move towards the batch's with
//! momentum 0.1 using the *unbiased* variance, exactly as `torch.nn.BatchNorm*d`
//! does (the two variances differ by `M / (M - 1)` for `M` values per channel;
//! mixing them up is a silent train/eval mismatch). Evaluation mode normalises
//! with the running statistics. The affine weight and bias are always present
//! and the running statistics always tracked (PyTorch's defaults).

use crate::error::{NnError, Result};
use crate::layer::Layer;
use crate::param::{NamedParam, NamedParamMut, Param};
use crate::tensor::Tensor;

/// PyTorch's default `eps`.
pub const BATCH_NORM_EPS: f32 = 1e-5;
/// PyTorch's default `momentum`.
pub const BATCH_NORM_MOMENTUM: f32 = 0.1;

/// The shared implementation over activations viewed as `[N, C, S]`.
#[derive(Clone, Debug)]
struct BatchNorm {
    kind: &'static str,
    eps: f32,
    momentum: f32,
    training: bool,
    weight: Param,
    bias: Param,
    running_mean: Param,
    running_var: Param,
    num_batches_tracked: Param,
    /// Normalised input `x_hat` of the last forward pass.
    x_hat: Tensor,
    /// Per-channel mean and `1 / sqrt(var + eps)` used by the last forward pass.
    mean: Vec<f32>,
    inv_std: Vec<f32>,
    /// Per-channel backward sums (scratch).
    sum_dy: Vec<f32>,
    sum_dy_xhat: Vec<f32>,
    /// Whether the last forward pass used batch statistics.
    used_batch_stats: bool,
    out: Tensor,
    grad_input: Tensor,
}

impl BatchNorm {
    fn new(kind: &'static str, num_features: usize, eps: f32, momentum: f32) -> Result<Self> {
        if num_features == 0 || !eps.is_finite() || eps <= 0.0 || !(0.0..=1.0).contains(&momentum) {
            return Err(NnError::invalid(
                kind,
                format!(
                    "needs num_features > 0, eps > 0 and momentum in [0, 1], got \
                     {num_features}, {eps}, {momentum}"
                ),
            ));
        }
        Ok(Self {
            kind,
            eps,
            momentum,
            training: true,
            weight: Param::trainable(Tensor::full(&[num_features], 1.0)),
            bias: Param::trainable(Tensor::zeros(&[num_features])),
            running_mean: Param::buffer(Tensor::zeros(&[num_features])),
            running_var: Param::buffer(Tensor::full(&[num_features], 1.0)),
            num_batches_tracked: Param::counter(0.0),
            x_hat: Tensor::default(),
            mean: Vec::new(),
            inv_std: Vec::new(),
            sum_dy: Vec::new(),
            sum_dy_xhat: Vec::new(),
            used_batch_stats: false,
            out: Tensor::default(),
            grad_input: Tensor::default(),
        })
    }

    fn channels(&self) -> usize {
        self.weight.value.len()
    }

    /// `(N, S)` for an input whose channel axis is 1 and whose rank is allowed.
    fn dims(&self, input: &Tensor, ranks: &[usize], context: &str) -> Result<(usize, usize)> {
        let s = input.shape();
        let c = self.channels();
        if !ranks.contains(&s.len()) || s[1] != c {
            let mut expected = vec![s.first().copied().unwrap_or(0), c];
            let rank = if ranks.contains(&s.len()) {
                s.len()
            } else {
                ranks[0]
            };
            expected.extend((2..rank).map(|d| s.get(d).copied().unwrap_or(0)));
            return Err(NnError::shape(
                format!("{} {context}", self.kind),
                &expected,
                s,
            ));
        }
        Ok((s[0], s[2..].iter().product()))
    }

    fn forward(&mut self, input: &Tensor, ranks: &[usize]) -> Result<&Tensor> {
        let (n, s) = self.dims(input, ranks, "input")?;
        let c = self.channels();
        let m = n * s;
        let x = input.data();
        self.mean.resize(c, 0.0);
        self.inv_std.resize(c, 0.0);
        self.used_batch_stats = self.training;
        if self.training {
            if m < 2 {
                return Err(NnError::invalid(
                    self.kind,
                    format!(
                        "training needs more than one value per channel, got input shape {:?}",
                        input.shape()
                    ),
                ));
            }
            let momentum = self.momentum;
            for ci in 0..c {
                // Two passes in f64: stable for activations with a large mean.
                let channel = || (0..n).flat_map(|ni| &x[(ni * c + ci) * s..(ni * c + ci + 1) * s]);
                let mean = channel().map(|&v| v as f64).sum::<f64>() / m as f64;
                let sq = channel().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>();
                let var = sq / m as f64;
                let unbiased = sq / (m - 1) as f64;
                self.mean[ci] = mean as f32;
                self.inv_std[ci] = (1.0 / (var + self.eps as f64).sqrt()) as f32;
                let rm = &mut self.running_mean.value.data_mut()[ci];
                *rm = (1.0 - momentum) * *rm + momentum * mean as f32;
                let rv = &mut self.running_var.value.data_mut()[ci];
                *rv = (1.0 - momentum) * *rv + momentum * unbiased as f32;
            }
            self.num_batches_tracked.value.data_mut()[0] += 1.0;
        } else {
            for ci in 0..c {
                self.mean[ci] = self.running_mean.value.data()[ci];
                self.inv_std[ci] = 1.0 / (self.running_var.value.data()[ci] + self.eps).sqrt();
            }
        }
        self.x_hat.resize(input.shape());
        self.out.resize(input.shape());
        let (w, b) = (self.weight.value.data(), self.bias.value.data());
        let (xh, out) = (self.x_hat.data_mut(), self.out.data_mut());
        for ni in 0..n {
            for ci in 0..c {
                let span = (ni * c + ci) * s..(ni * c + ci + 1) * s;
                let (mean, inv, wc, bc) = (self.mean[ci], self.inv_std[ci], w[ci], b[ci]);
                for ((h, o), &v) in xh[span.clone()]
                    .iter_mut()
                    .zip(&mut out[span.clone()])
                    .zip(&x[span])
                {
                    *h = (v - mean) * inv;
                    *o = wc * *h + bc;
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
        ranks: &[usize],
    ) -> Result<&Tensor> {
        let (n, s) = self.dims(input, ranks, "backward input")?;
        if self.x_hat.shape() != input.shape() {
            return Err(NnError::invalid(
                self.kind,
                format!(
                    "backward input shape {:?} is not the one of the last forward pass {:?}",
                    input.shape(),
                    self.x_hat.shape()
                ),
            ));
        }
        grad_output.expect_shape(&format!("{} grad_output", self.kind), input.shape())?;
        let c = self.channels();
        let m = (n * s) as f32;
        let dy = grad_output.data();
        let xh = self.x_hat.data();
        // Per-channel sums of dy and dy * x_hat give both parameter gradients
        // and the batch-statistics terms of the input gradient.
        self.sum_dy.clear();
        self.sum_dy.resize(c, 0.0);
        self.sum_dy_xhat.clear();
        self.sum_dy_xhat.resize(c, 0.0);
        for ni in 0..n {
            for ci in 0..c {
                let span = (ni * c + ci) * s..(ni * c + ci + 1) * s;
                let (mut a, mut b) = (0.0f32, 0.0f32);
                for (&g, &h) in dy[span.clone()].iter().zip(&xh[span]) {
                    a += g;
                    b += g * h;
                }
                self.sum_dy[ci] += a;
                self.sum_dy_xhat[ci] += b;
            }
        }
        for ci in 0..c {
            self.weight.grad.data_mut()[ci] += self.sum_dy_xhat[ci];
            self.bias.grad.data_mut()[ci] += self.sum_dy[ci];
        }
        if need_input_grad {
            self.grad_input.resize(input.shape());
            let dx = self.grad_input.data_mut();
            let w = self.weight.value.data();
            for ni in 0..n {
                for (ci, (&wc, &inv)) in w.iter().zip(&self.inv_std).enumerate() {
                    let span = (ni * c + ci) * s..(ni * c + ci + 1) * s;
                    let scale = wc * inv;
                    if self.used_batch_stats {
                        // dx = w/sigma * (dy - mean(dy) - x_hat * mean(dy * x_hat))
                        let mdy = self.sum_dy[ci] / m;
                        let mdyx = self.sum_dy_xhat[ci] / m;
                        for ((d, &g), &h) in dx[span.clone()]
                            .iter_mut()
                            .zip(&dy[span.clone()])
                            .zip(&xh[span])
                        {
                            *d = scale * (g - mdy - h * mdyx);
                        }
                    } else {
                        for (d, &g) in dx[span.clone()].iter_mut().zip(&dy[span]) {
                            *d = scale * g;
                        }
                    }
                }
            }
        }
        Ok(&self.grad_input)
    }

    fn params<'a>(&'a self, prefix: &str, out: &mut Vec<NamedParam<'a>>) {
        out.push((format!("{prefix}weight"), &self.weight));
        out.push((format!("{prefix}bias"), &self.bias));
        out.push((format!("{prefix}running_mean"), &self.running_mean));
        out.push((format!("{prefix}running_var"), &self.running_var));
        out.push((
            format!("{prefix}num_batches_tracked"),
            &self.num_batches_tracked,
        ));
    }

    fn params_mut<'a>(&'a mut self, prefix: &str, out: &mut Vec<NamedParamMut<'a>>) {
        out.push((format!("{prefix}weight"), &mut self.weight));
        out.push((format!("{prefix}bias"), &mut self.bias));
        out.push((format!("{prefix}running_mean"), &mut self.running_mean));
        out.push((format!("{prefix}running_var"), &mut self.running_var));
        out.push((
            format!("{prefix}num_batches_tracked"),
            &mut self.num_batches_tracked,
        ));
    }
}

macro_rules! batch_norm_layer {
    ($name:ident, $ranks:expr, $shape_doc:literal, $torch:literal) => {
        #[doc = concat!("`torch.nn.", $torch, "` over ", $shape_doc, " activations (channel axis 1).")]
        ///
        /// Parameters `weight`, `bias` (affine, trainable), buffers
        /// `running_mean`, `running_var` and the counter `num_batches_tracked`,
        /// in PyTorch's `state_dict` order. Starts in training mode.
        #[derive(Clone, Debug)]
        pub struct $name {
            inner: BatchNorm,
        }

        impl $name {
            /// PyTorch's defaults: `eps = 1e-5`, `momentum = 0.1`, weight 1,
            /// bias 0, running mean 0 and variance 1.
            pub fn new(num_features: usize) -> Result<Self> {
                Self::with_options(num_features, BATCH_NORM_EPS, BATCH_NORM_MOMENTUM)
            }

            /// Custom `eps` (> 0) and running-statistics `momentum` (in `[0, 1]`).
            pub fn with_options(num_features: usize, eps: f32, momentum: f32) -> Result<Self> {
                Ok(Self {
                    inner: BatchNorm::new($torch, num_features, eps, momentum)?,
                })
            }

            /// Number of channels `C`.
            pub fn num_features(&self) -> usize {
                self.inner.channels()
            }

            /// True in training mode (batch statistics, running stats updated).
            pub fn is_training(&self) -> bool {
                self.inner.training
            }

            /// Affine scale `[C]`.
            pub fn weight(&self) -> &Param {
                &self.inner.weight
            }

            /// Affine shift `[C]`.
            pub fn bias(&self) -> &Param {
                &self.inner.bias
            }

            /// Running mean `[C]`.
            pub fn running_mean(&self) -> &Tensor {
                &self.inner.running_mean.value
            }

            /// Running (unbiased) variance `[C]`.
            pub fn running_var(&self) -> &Tensor {
                &self.inner.running_var.value
            }

            /// Training-mode forward passes seen.
            pub fn num_batches_tracked(&self) -> u64 {
                self.inner.num_batches_tracked.value.data()[0] as u64
            }
        }

        impl Layer for $name {
            fn kind(&self) -> &'static str {
                $torch
            }

            fn forward(&mut self, input: &Tensor) -> Result<&Tensor> {
                self.inner.forward(input, $ranks)
            }

            fn backward(
                &mut self,
                input: &Tensor,
                grad_output: &Tensor,
                need_input_grad: bool,
            ) -> Result<&Tensor> {
                self.inner
                    .backward(input, grad_output, need_input_grad, $ranks)
            }

            fn output(&self) -> &Tensor {
                &self.inner.out
            }

            fn input_grad(&self) -> &Tensor {
                &self.inner.grad_input
            }

            fn params<'a>(&'a self, prefix: &str, out: &mut Vec<NamedParam<'a>>) {
                self.inner.params(prefix, out);
            }

            fn params_mut<'a>(&'a mut self, prefix: &str, out: &mut Vec<NamedParamMut<'a>>) {
                self.inner.params_mut(prefix, out);
            }

            fn set_training(&mut self, training: bool) {
                self.inner.training = training;
            }
        }
    };
}

batch_norm_layer!(
    BatchNorm1d,
    &[2, 3],
    "`[N, C]` or `[N, C, L]`",
    "BatchNorm1d"
);
batch_norm_layer!(BatchNorm2d, &[4], "`[N, C, H, W]`", "BatchNorm2d");

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::check_layer;
    use crate::param::ParamKind;
    use hlynr_rng::Rng;

    fn random(shape: &[usize], lo: f32, hi: f32, rng: &mut Rng) -> Tensor {
        let mut t = Tensor::zeros(shape);
        for v in t.data_mut() {
            *v = rng.uniform_range_f32(lo, hi);
        }
        t
    }

    fn randomise_affine(layer: &mut dyn Layer, rng: &mut Rng) {
        let mut ps = Vec::new();
        layer.params_mut("", &mut ps);
        for (name, p) in ps {
            match name.as_str() {
                "weight" => p.value = random(p.value.shape(), 0.5, 1.5, rng),
                "bias" => p.value = random(p.value.shape(), -0.5, 0.5, rng),
                "running_mean" => p.value = random(p.value.shape(), -0.3, 0.3, rng),
                "running_var" => p.value = random(p.value.shape(), 0.5, 2.0, rng),
                _ => {}
            }
        }
    }

    #[test]
    fn training_forward_normalises_and_updates_running_stats() {
        let mut rng = Rng::seed_from_u64(1);
        let mut bn = BatchNorm2d::new(3).unwrap();
        let x = random(&[4, 3, 2, 5], -2.0, 3.0, &mut rng);
        let y = bn.forward(&x).unwrap().clone();
        for c in 0..3 {
            let vals: Vec<f64> = (0..4)
                .flat_map(|n| x.data()[(n * 3 + c) * 10..(n * 3 + c + 1) * 10].to_vec())
                .map(|v| v as f64)
                .collect();
            let outs: Vec<f64> = (0..4)
                .flat_map(|n| y.data()[(n * 3 + c) * 10..(n * 3 + c + 1) * 10].to_vec())
                .map(|v| v as f64)
                .collect();
            let m = vals.len() as f64;
            let mean = vals.iter().sum::<f64>() / m;
            let ss = vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>();
            let out_mean = outs.iter().sum::<f64>() / m;
            let out_var = outs.iter().map(|v| (v - out_mean).powi(2)).sum::<f64>() / m;
            assert!(out_mean.abs() < 1e-5, "{out_mean}");
            let want_var = (ss / m) / (ss / m + 1e-5);
            assert!((out_var - want_var).abs() < 1e-4, "{out_var} vs {want_var}");
            let rm = bn.running_mean().data()[c] as f64;
            let rv = bn.running_var().data()[c] as f64;
            assert!((rm - 0.1 * mean).abs() < 1e-6, "{rm}");
            assert!((rv - (0.9 + 0.1 * ss / (m - 1.0))).abs() < 1e-5, "{rv}");
        }
        assert_eq!(bn.num_batches_tracked(), 1);
    }

    #[test]
    fn eval_mode_uses_running_stats_and_leaves_them_alone() {
        let mut rng = Rng::seed_from_u64(2);
        let mut bn = BatchNorm1d::new(4).unwrap();
        randomise_affine(&mut bn, &mut rng);
        bn.set_training(false);
        assert!(!bn.is_training());
        let before = (bn.running_mean().clone(), bn.running_var().clone());
        let x = random(&[3, 4], -1.0, 1.0, &mut rng);
        let y = bn.forward(&x).unwrap().clone();
        for n in 0..3 {
            for c in 0..4 {
                let want = bn.weight().value.data()[c] * (x.data()[n * 4 + c] - before.0.data()[c])
                    / (before.1.data()[c] + 1e-5).sqrt()
                    + bn.bias().value.data()[c];
                assert!((y.data()[n * 4 + c] - want).abs() < 1e-6);
            }
        }
        assert_eq!(
            (bn.running_mean(), bn.running_var()),
            (&before.0, &before.1)
        );
        assert_eq!(bn.num_batches_tracked(), 0);
        // A single sample is fine in eval mode.
        bn.forward(&Tensor::zeros(&[1, 4])).unwrap();
    }

    #[test]
    fn gradients_match_finite_differences_in_both_modes() {
        let mut rng = Rng::seed_from_u64(3);
        for training in [true, false] {
            let mut a = BatchNorm1d::new(3).unwrap();
            randomise_affine(&mut a, &mut rng);
            a.set_training(training);
            check_layer(&mut a, &[5, 3], &mut rng).unwrap();
            let mut b = BatchNorm1d::new(2).unwrap();
            randomise_affine(&mut b, &mut rng);
            b.set_training(training);
            check_layer(&mut b, &[3, 2, 4], &mut rng).unwrap();
            let mut c = BatchNorm2d::new(2).unwrap();
            randomise_affine(&mut c, &mut rng);
            c.set_training(training);
            check_layer(&mut c, &[2, 2, 3, 3], &mut rng).unwrap();
        }
    }

    #[test]
    fn state_dict_names_and_kinds_follow_pytorch() {
        let bn = BatchNorm2d::new(2).unwrap();
        let mut ps = Vec::new();
        bn.params("1.", &mut ps);
        let got: Vec<(String, ParamKind)> = ps.into_iter().map(|(n, p)| (n, p.kind)).collect();
        let want = [
            ("1.weight", ParamKind::Trainable),
            ("1.bias", ParamKind::Trainable),
            ("1.running_mean", ParamKind::Buffer),
            ("1.running_var", ParamKind::Buffer),
            ("1.num_batches_tracked", ParamKind::Counter),
        ];
        assert_eq!(got.len(), want.len());
        for ((n, k), (wn, wk)) in got.iter().zip(want) {
            assert_eq!((n.as_str(), *k), (wn, wk));
        }
    }

    #[test]
    fn bad_inputs_are_named_errors() {
        let mut bn = BatchNorm2d::new(3).unwrap();
        let err = bn
            .forward(&Tensor::zeros(&[2, 4, 5, 5]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("BatchNorm2d input") && err.contains("[2, 4, 5, 5]"),
            "{err}"
        );
        let err = bn.forward(&Tensor::zeros(&[2, 3])).unwrap_err().to_string();
        assert!(
            err.contains("BatchNorm2d input") && err.contains("[2, 3]"),
            "{err}"
        );
        let err = bn
            .forward(&Tensor::zeros(&[1, 3, 1, 1]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("more than one value per channel"), "{err}");
        let mut b1 = BatchNorm1d::new(3).unwrap();
        let x = Tensor::zeros(&[4, 3]);
        b1.forward(&x).unwrap();
        let err = b1
            .backward(&x, &Tensor::zeros(&[4, 2]), true)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("BatchNorm1d grad_output") && err.contains("[4, 2]"),
            "{err}"
        );
        assert!(BatchNorm1d::with_options(3, 0.0, 0.1).is_err());
        assert!(BatchNorm1d::with_options(3, 1e-5, 1.5).is_err());
    }

    #[test]
    fn identical_runs_are_bitwise_equal() {
        let run = || {
            let mut rng = Rng::seed_from_u64(4);
            let mut bn = BatchNorm2d::new(2).unwrap();
            randomise_affine(&mut bn, &mut rng);
            let x = random(&[3, 2, 4, 4], -1.0, 1.0, &mut rng);
            let y = bn.forward(&x).unwrap().clone();
            let r = random(y.shape(), -1.0, 1.0, &mut rng);
            let dx = bn.backward(&x, &r, true).unwrap().clone();
            (y, dx, bn.weight().grad.clone(), bn.running_var().clone())
        };
        assert_eq!(run(), run());
    }
}
