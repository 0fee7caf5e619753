//! Fully connected layer `y = x W^T + b` with PyTorch's parameter layout.

use hlynr_rng::Rng;

use crate::error::Result;
use crate::gemm::gemm;
use crate::init::uniform_fan_in;
use crate::layer::Layer;
use crate::param::{NamedParam, NamedParamMut, Param};
use crate::tensor::Tensor;

/// Dense layer; `weight` is `[out_features, in_features]`, `bias` is `[out_features]`.
#[derive(Clone, Debug)]
pub struct Linear {
    /// `[out_features, in_features]`, as in `torch.nn.Linear`.
    pub weight: Param,
    /// `[out_features]`, absent when built without bias.
    pub bias: Option<Param>,
    out: Tensor,
    grad_input: Tensor,
}

impl Linear {
    /// A layer with PyTorch's default initialisation.
    pub fn new(in_features: usize, out_features: usize, rng: &mut Rng) -> Self {
        Self::with_bias(in_features, out_features, true, rng)
    }

    /// A layer with or without bias, PyTorch default initialisation.
    pub fn with_bias(in_features: usize, out_features: usize, bias: bool, rng: &mut Rng) -> Self {
        let mut w = Tensor::zeros(&[out_features, in_features]);
        uniform_fan_in(&mut w, in_features, rng);
        let bias = bias.then(|| {
            let mut b = Tensor::zeros(&[out_features]);
            uniform_fan_in(&mut b, in_features, rng);
            Param::trainable(b)
        });
        Self {
            weight: Param::trainable(w),
            bias,
            out: Tensor::default(),
            grad_input: Tensor::default(),
        }
    }

    /// Input width.
    pub fn in_features(&self) -> usize {
        self.weight.value.shape()[1]
    }

    /// Output width.
    pub fn out_features(&self) -> usize {
        self.weight.value.shape()[0]
    }
}

impl Layer for Linear {
    fn kind(&self) -> &'static str {
        "Linear"
    }

    fn forward(&mut self, input: &Tensor) -> Result<&Tensor> {
        let (fi, fo) = (self.in_features(), self.out_features());
        let n = input.expect_matrix("Linear input", fi)?;
        self.out.resize(&[n, fo]);
        let out = self.out.data_mut();
        let beta = match &self.bias {
            Some(b) => {
                for row in out.chunks_exact_mut(fo) {
                    row.copy_from_slice(b.value.data());
                }
                1.0
            }
            None => 0.0,
        };
        gemm(
            n,
            fi,
            fo,
            1.0,
            input.data(),
            false,
            self.weight.value.data(),
            true,
            beta,
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
        let n = input.expect_matrix("Linear backward input", fi)?;
        grad_output.expect_shape("Linear grad_output", &[n, fo])?;
        let dy = grad_output.data();
        // dW += dy^T x
        gemm(
            fo,
            n,
            fi,
            1.0,
            dy,
            true,
            input.data(),
            false,
            1.0,
            self.weight.grad.data_mut(),
        );
        if let Some(b) = &mut self.bias {
            let db = b.grad.data_mut();
            for row in dy.chunks_exact(fo) {
                for (g, &d) in db.iter_mut().zip(row) {
                    *g += d;
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
                self.weight.value.data(),
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
        out.push((format!("{prefix}weight"), &self.weight));
        if let Some(b) = &self.bias {
            out.push((format!("{prefix}bias"), b));
        }
    }

    fn params_mut<'a>(&'a mut self, prefix: &str, out: &mut Vec<NamedParamMut<'a>>) {
        out.push((format!("{prefix}weight"), &mut self.weight));
        if let Some(b) = &mut self.bias {
            out.push((format!("{prefix}bias"), b));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::check_layer;

    #[test]
    fn forward_matches_hand_computation() {
        let mut rng = Rng::seed_from_u64(0);
        let mut l = Linear::new(2, 2, &mut rng);
        l.weight.value = Tensor::from_vec(&[2, 2], vec![1.0, 2.0, 3.0, 4.0]).unwrap();
        l.bias.as_mut().unwrap().value = Tensor::from_vec(&[2], vec![0.5, -0.5]).unwrap();
        let x = Tensor::from_vec(&[1, 2], vec![1.0, 1.0]).unwrap();
        assert_eq!(l.forward(&x).unwrap().data(), &[3.5, 6.5]);
    }

    #[test]
    fn wrong_input_width_is_a_shape_error() {
        let mut rng = Rng::seed_from_u64(0);
        let mut l = Linear::new(3, 2, &mut rng);
        let err = l.forward(&Tensor::zeros(&[4, 5])).unwrap_err().to_string();
        assert!(
            err.contains("Linear input") && err.contains("[4, 5]"),
            "{err}"
        );
    }

    #[test]
    fn gradients_match_finite_differences() {
        let mut rng = Rng::seed_from_u64(1);
        let mut l = Linear::new(5, 4, &mut rng);
        check_layer(&mut l, &[3, 5], &mut rng).unwrap();
        let mut nb = Linear::with_bias(4, 3, false, &mut rng);
        check_layer(&mut nb, &[2, 4], &mut rng).unwrap();
    }
}
