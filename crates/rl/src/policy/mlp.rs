//! Multi-layer perceptron trunks, shared by the actor-critics and the
//! Q-networks.

use hlynr_nn::{LayerNorm, LeakyReLU, Linear, ReLU, Sequential, Tanh, init};
use hlynr_rng::Rng;

use super::PolicyError;
use super::config::{Activation, PolicyConfig};

/// How the hidden blocks of an MLP are built.
#[derive(Clone, Copy, Debug)]
pub(crate) struct MlpStyle {
    pub activation: Activation,
    /// A `LayerNorm` after every hidden `Linear`.
    pub layer_norm: bool,
    /// Orthogonal weights of gain `sqrt(2)` and zero biases (else PyTorch's
    /// default initialisation).
    pub ortho_init: bool,
}

impl From<&PolicyConfig> for MlpStyle {
    fn from(c: &PolicyConfig) -> Self {
        Self {
            activation: c.activation,
            layer_norm: c.layer_norm,
            ortho_init: c.ortho_init,
        }
    }
}

/// `Linear (+ LayerNorm) + activation` blocks of `widths` on `input`
/// features; returns the trunk and its output width.
pub(crate) fn mlp(
    input: usize,
    widths: &[usize],
    config: impl Into<MlpStyle>,
    rng: &mut Rng,
) -> Result<(Sequential, usize), PolicyError> {
    let config: MlpStyle = config.into();
    let mut seq = Sequential::new();
    let mut width = input;
    for &w in widths {
        let mut lin = Linear::new(width, w, rng);
        if config.ortho_init {
            orthogonal_linear(&mut lin, std::f32::consts::SQRT_2, rng)?;
        }
        seq.push(lin);
        if config.layer_norm {
            seq.push(LayerNorm::new(w));
        }
        match config.activation {
            Activation::Tanh => seq.push(Tanh::new()),
            Activation::Relu => seq.push(ReLU::new()),
            Activation::LeakyRelu => seq.push(LeakyReLU::new()),
        };
        width = w;
    }
    Ok((seq, width))
}

pub(crate) fn orthogonal_linear(
    lin: &mut Linear,
    gain: f32,
    rng: &mut Rng,
) -> Result<(), PolicyError> {
    init::orthogonal(&mut lin.weight.value, gain, rng)?;
    if let Some(b) = &mut lin.bias {
        b.value.fill_zero();
    }
    Ok(())
}
