//! The `Layer` trait every feed-forward building block implements.
//!
//! hlynr-nn has no autograd graph: each layer knows its own backward pass. A
//! layer keeps its output (and whatever else its backward needs) in buffers it
//! owns and reuses, so `forward` returns a borrow of that buffer instead of a new
//! tensor. `backward` receives the same input that `forward` saw — the caller
//! (usually [`crate::Sequential`]) still holds it — so layers never copy their
//! inputs.

use hlynr_rng::Rng;

use crate::error::Result;
use crate::param::{NamedParam, NamedParamMut};
use crate::tensor::Tensor;

/// A differentiable layer with explicit forward and backward passes.
pub trait Layer: Send + std::fmt::Debug {
    /// Short type name for messages (`"Linear"`, `"Tanh"`, ...).
    fn kind(&self) -> &'static str;

    /// Computes the output for `input`, keeping what `backward` needs.
    fn forward(&mut self, input: &Tensor) -> Result<&Tensor>;

    /// Given the `input` of the last `forward` and the gradient of the loss with
    /// respect to that forward's output, adds parameter gradients into each
    /// parameter's `grad` and returns the gradient with respect to `input`.
    ///
    /// When `need_input_grad` is false (the first layer of a network), the
    /// input gradient may be skipped and the returned tensor is unspecified.
    fn backward(
        &mut self,
        input: &Tensor,
        grad_output: &Tensor,
        need_input_grad: bool,
    ) -> Result<&Tensor>;

    /// The output of the last `forward`.
    fn output(&self) -> &Tensor;

    /// The input gradient computed by the last `backward` (the tensor it returned).
    fn input_grad(&self) -> &Tensor;

    /// Appends this layer's parameters and buffers, names prefixed by `prefix`
    /// (which is empty or ends with a dot), in PyTorch `state_dict` order.
    fn params<'a>(&'a self, _prefix: &str, _out: &mut Vec<NamedParam<'a>>) {}

    /// Mutable counterpart of [`Layer::params`], same order.
    fn params_mut<'a>(&'a mut self, _prefix: &str, _out: &mut Vec<NamedParamMut<'a>>) {}

    /// Switches between training and evaluation behaviour (BatchNorm, noise).
    fn set_training(&mut self, _training: bool) {}

    /// Draws fresh parameter noise from `rng` (noisy layers; others ignore it).
    fn resample_noise(&mut self, _rng: &mut Rng) {}
}
