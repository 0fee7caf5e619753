//! Parameters: a value, its accumulated gradient, and what kind of state it is.

use crate::tensor::Tensor;

/// What a named tensor in a module's state is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamKind {
    /// Trained by the optimizer; has a gradient.
    Trainable,
    /// Saved and loaded, never trained (e.g. BatchNorm running statistics).
    Buffer,
    /// An integer counter stored as `f32` here and as `int64` on disk (e.g.
    /// BatchNorm `num_batches_tracked`), so PyTorch's strict loading finds it.
    Counter,
}

/// A named tensor of a module: its value and, for trainable ones, its gradient.
///
/// Gradients accumulate across `backward` calls until [`Param::zero_grad`], so a
/// trunk shared by two heads receives the sum of both heads' gradients.
#[derive(Clone, Debug, PartialEq)]
pub struct Param {
    /// Current value.
    pub value: Tensor,
    /// Accumulated gradient (same shape as `value`; empty for buffers).
    pub grad: Tensor,
    /// Trainable, buffer or counter.
    pub kind: ParamKind,
}

impl Param {
    /// A trainable parameter with a zero gradient.
    pub fn trainable(value: Tensor) -> Self {
        let grad = Tensor::zeros(value.shape());
        Self {
            value,
            grad,
            kind: ParamKind::Trainable,
        }
    }

    /// A non-trainable buffer.
    pub fn buffer(value: Tensor) -> Self {
        Self {
            value,
            grad: Tensor::default(),
            kind: ParamKind::Buffer,
        }
    }

    /// A counter stored as `int64` on disk.
    pub fn counter(value: f32) -> Self {
        Self {
            value: Tensor::full(&[], value),
            grad: Tensor::default(),
            kind: ParamKind::Counter,
        }
    }

    /// True for parameters the optimizer updates.
    #[inline]
    pub fn is_trainable(&self) -> bool {
        self.kind == ParamKind::Trainable
    }

    /// Clears the accumulated gradient.
    #[inline]
    pub fn zero_grad(&mut self) {
        self.grad.fill_zero();
    }
}

/// A parameter with its PyTorch-style dotted name (e.g. `0.weight`).
pub type NamedParam<'a> = (String, &'a Param);
/// A mutable parameter with its PyTorch-style dotted name.
pub type NamedParamMut<'a> = (String, &'a mut Param);
