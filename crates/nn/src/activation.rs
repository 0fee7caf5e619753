//! Activation layers: `Tanh`, `ReLU`, `LeakyReLU`, `Sigmoid`, `Softplus`.
//!
//! Each is a [`Layer`] without parameters, so a `Sequential` of
//! `Linear, Tanh, Linear` names its parameters `0.weight`, `2.weight` exactly as
//! PyTorch does. The math lives in [`crate::simd`] (vectorised, dispatched at run
//! time); its slice functions are re-exported here for layers that apply
//! activations inside their own kernels (gates of recurrent cells, heads).
//!
//! Inputs of any shape are accepted; the output has the input's shape.

use crate::error::{NnError, Result};
use crate::layer::Layer;
use crate::tensor::Tensor;

pub use crate::simd::{
    exp_inplace, exp_slice, leaky_relu_backward, leaky_relu_slice, relu_backward, relu_inplace,
    relu_slice, sigmoid_backward, sigmoid_inplace, sigmoid_slice, softplus_backward,
    softplus_slice, tanh_backward, tanh_inplace, tanh_slice,
};

/// Checks the backward arguments of an elementwise layer and sizes its
/// input-gradient buffer.
fn prepare_backward(
    kind: &str,
    input: &Tensor,
    output: &Tensor,
    grad_output: &Tensor,
    grad_input: &mut Tensor,
) -> Result<()> {
    grad_output.expect_shape(&format!("{kind} grad_output"), input.shape())?;
    if output.shape() != input.shape() {
        return Err(NnError::shape(
            format!(
                "{kind} backward: output of the last forward (call forward with this input first)"
            ),
            input.shape(),
            output.shape(),
        ));
    }
    grad_input.resize(input.shape());
    Ok(())
}

/// Defines an elementwise activation layer: its struct (buffers plus the given
/// hyperparameter fields), and the `Layer` impl from a forward expression and
/// a backward expression.
macro_rules! activation_layer {
    (
        $(#[$doc:meta])*
        $name:ident { $($field:ident : $fty:ty),* }
        forward($fself:ident, $x:ident, $out:ident) $fwd:block
        backward($bself:ident, $bx:ident, $y:ident, $dy:ident, $dx:ident) $bwd:block
    ) => {
        $(#[$doc])*
        #[derive(Clone, Debug, Default)]
        pub struct $name {
            $(pub $field: $fty,)*
            out: Tensor,
            grad_input: Tensor,
        }

        impl Layer for $name {
            fn kind(&self) -> &'static str {
                stringify!($name)
            }

            fn forward(&mut self, input: &Tensor) -> Result<&Tensor> {
                self.out.resize(input.shape());
                let $fself = ($(self.$field,)*);
                let _ = $fself;
                let $x = input.data();
                let $out = self.out.data_mut();
                $fwd
                Ok(&self.out)
            }

            fn backward(
                &mut self,
                input: &Tensor,
                grad_output: &Tensor,
                need_input_grad: bool,
            ) -> Result<&Tensor> {
                if need_input_grad {
                    prepare_backward(
                        stringify!($name),
                        input,
                        &self.out,
                        grad_output,
                        &mut self.grad_input,
                    )?;
                    let $bself = ($(self.$field,)*);
                    let _ = $bself;
                    let $bx = input.data();
                    let $y = self.out.data();
                    let $dy = grad_output.data();
                    let $dx = self.grad_input.data_mut();
                    $bwd
                }
                Ok(&self.grad_input)
            }

            fn output(&self) -> &Tensor {
                &self.out
            }

            fn input_grad(&self) -> &Tensor {
                &self.grad_input
            }
        }
    };
}

activation_layer!(
    /// `tanh(x)`; backward from the output, `1 - y^2`.
    Tanh {}
    forward(_h, x, out) { tanh_slice(x, out); }
    backward(_h, _x, y, dy, dx) { tanh_backward(y, dy, dx); }
);

activation_layer!(
    /// `max(x, 0)`; backward passes the gradient where the output is positive.
    ReLU {}
    forward(_h, x, out) { relu_slice(x, out); }
    backward(_h, _x, y, dy, dx) { relu_backward(y, dy, dx); }
);

activation_layer!(
    /// `1 / (1 + e^{-x})`; backward from the output, `y (1 - y)`.
    Sigmoid {}
    forward(_h, x, out) { sigmoid_slice(x, out); }
    backward(_h, _x, y, dy, dx) { sigmoid_backward(y, dy, dx); }
);

activation_layer!(
    /// `x` for `x > 0`, `negative_slope * x` otherwise (PyTorch default slope 0.01).
    LeakyReLU { negative_slope: f32 }
    forward(h, x, out) { leaky_relu_slice(x, h.0, out); }
    backward(h, x, _y, dy, dx) { leaky_relu_backward(x, h.0, dy, dx); }
);

activation_layer!(
    /// PyTorch `Softplus(beta, threshold)`: `ln(1 + e^{beta x}) / beta`, switching
    /// to the identity where `beta x > threshold`. Backward is `sigmoid(beta x)`.
    Softplus { beta: f32, threshold: f32 }
    forward(h, x, out) { softplus_slice(x, h.0, h.1, out); }
    backward(h, x, _y, dy, dx) { softplus_backward(x, h.0, h.1, dy, dx); }
);

impl Tanh {
    /// The tanh layer.
    pub fn new() -> Self {
        Self::default()
    }
}

impl ReLU {
    /// The ReLU layer.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Sigmoid {
    /// The sigmoid layer.
    pub fn new() -> Self {
        Self::default()
    }
}

impl LeakyReLU {
    /// PyTorch's default negative slope.
    pub const DEFAULT_NEGATIVE_SLOPE: f32 = 0.01;

    /// Leaky ReLU with PyTorch's default slope 0.01.
    pub fn new() -> Self {
        Self::with_slope(Self::DEFAULT_NEGATIVE_SLOPE)
    }

    /// Leaky ReLU with the given slope for negative inputs.
    pub fn with_slope(negative_slope: f32) -> Self {
        Self {
            negative_slope,
            out: Tensor::default(),
            grad_input: Tensor::default(),
        }
    }
}

impl Softplus {
    /// Softplus with PyTorch's defaults, `beta = 1`, `threshold = 20`.
    pub fn new() -> Self {
        Self {
            beta: 1.0,
            threshold: 20.0,
            out: Tensor::default(),
            grad_input: Tensor::default(),
        }
    }

    /// Softplus with the given sharpness and linear-region threshold. `beta`
    /// must be positive and finite.
    pub fn with_params(beta: f32, threshold: f32) -> Result<Self> {
        if !(beta > 0.0 && beta.is_finite()) || threshold.is_nan() {
            return Err(NnError::invalid(
                "Softplus",
                format!(
                    "beta must be positive and finite and threshold not NaN, got beta {beta}, threshold {threshold}"
                ),
            ));
        }
        Ok(Self {
            beta,
            threshold,
            ..Self::new()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{GradCheck, check_layer, check_layer_at};
    use crate::linear::Linear;
    use crate::sequential::Sequential;
    use hlynr_rng::Rng;

    fn wide_input(rng: &mut Rng, shape: &[usize]) -> Tensor {
        let mut t = Tensor::zeros(shape);
        for v in t.data_mut() {
            // Keep away from the kinks of ReLU-like functions at 0.
            let m = rng.uniform_range_f32(0.05, 3.0);
            *v = if rng.bernoulli(0.5) { m } else { -m };
        }
        t
    }

    #[test]
    fn every_activation_passes_finite_differences() {
        let mut rng = Rng::seed_from_u64(3);
        let mut layers: Vec<Box<dyn Layer>> = vec![
            Box::new(Tanh::new()),
            Box::new(ReLU::new()),
            Box::new(LeakyReLU::with_slope(0.2)),
            Box::new(Sigmoid::new()),
            Box::new(Softplus::new()),
            Box::new(Softplus::with_params(2.0, 3.0).unwrap()),
        ];
        for layer in &mut layers {
            let mut x = wide_input(&mut rng, &[4, 7]);
            check_layer_at(layer.as_mut(), &mut x, GradCheck::default(), &mut rng)
                .unwrap_or_else(|e| panic!("{}: {e}", layer.kind()));
        }
    }

    #[test]
    fn forward_values_match_definitions() {
        let x = Tensor::from_vec(&[1, 4], vec![-2.0, -0.5, 0.5, 30.0]).unwrap();
        let mut lr = LeakyReLU::new();
        assert_eq!(lr.forward(&x).unwrap().data(), &[-0.02, -0.005, 0.5, 30.0]);
        let mut sp = Softplus::new();
        let y = sp.forward(&x).unwrap().data().to_vec();
        for (&xi, &yi) in x.data().iter().zip(&y) {
            let want = if xi > 20.0 {
                xi as f64
            } else {
                (xi as f64).exp().ln_1p()
            };
            assert!(
                (yi as f64 - want).abs() < 1e-6 * want.max(1.0),
                "{xi}: {yi} vs {want}"
            );
        }
        let mut sp2 = Softplus::with_params(2.0, 0.5).unwrap();
        let y2 = sp2.forward(&x).unwrap().data().to_vec();
        // beta*x = 1.0 > 0.5: the linear region returns x itself.
        assert_eq!(y2[2], 0.5);
        assert!((y2[1] as f64 - (-1.0f64).exp().ln_1p() / 2.0).abs() < 1e-7);
    }

    #[test]
    fn sequential_with_activations_names_like_pytorch_and_checks() {
        let mut rng = Rng::seed_from_u64(4);
        let mut net = Sequential::new()
            .with(Linear::new(3, 5, &mut rng))
            .with(Tanh::new())
            .with(Linear::new(5, 2, &mut rng));
        let mut ps = Vec::new();
        net.params("", &mut ps);
        let names: Vec<&str> = ps.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["0.weight", "0.bias", "2.weight", "2.bias"]);
        check_layer(&mut net, &[4, 3], &mut rng).unwrap();
    }

    #[test]
    fn backward_rejects_mismatched_grad_and_missing_forward() {
        let mut t = Tanh::new();
        let x = Tensor::zeros(&[2, 3]);
        let err = t
            .backward(&x, &Tensor::zeros(&[2, 3]), true)
            .unwrap_err()
            .to_string();
        assert!(err.contains("Tanh backward"), "{err}");
        t.forward(&x).unwrap();
        let err = t
            .backward(&x, &Tensor::zeros(&[3, 2]), true)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("Tanh grad_output") && err.contains("[3, 2]"),
            "{err}"
        );
        assert!(Softplus::with_params(0.0, 20.0).is_err());
    }
}
