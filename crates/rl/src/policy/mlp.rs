//! Multi-layer perceptron trunks, shared by the actor-critics and the
//! Q-networks.

use hlynr_nn::{Layer, LayerNorm, LeakyReLU, Linear, NoisyLinear, ReLU, Sequential, Tanh, init};
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
    /// Factorised noisy layers of this `sigma0` instead of `Linear`s.
    pub noisy_sigma0: Option<f32>,
}

impl From<&PolicyConfig> for MlpStyle {
    fn from(c: &PolicyConfig) -> Self {
        Self {
            activation: c.activation,
            layer_norm: c.layer_norm,
            ortho_init: c.ortho_init,
            noisy_sigma0: None,
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
        seq.push_boxed(dense(width, w, std::f32::consts::SQRT_2, config, rng)?);
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

/// One dense layer of the style: noisy, or a `Linear` (orthogonal with
/// `gain` under `ortho_init`).
pub(crate) fn dense(
    input: usize,
    output: usize,
    gain: f32,
    style: MlpStyle,
    rng: &mut Rng,
) -> Result<Box<dyn Layer>, PolicyError> {
    if let Some(sigma0) = style.noisy_sigma0 {
        return Ok(Box::new(NoisyLinear::with_sigma0(
            input, output, sigma0, rng,
        )?));
    }
    let mut lin = Linear::new(input, output, rng);
    if style.ortho_init {
        orthogonal_linear(&mut lin, gain, rng)?;
    }
    Ok(Box::new(lin))
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
