//! Multi-layer perceptron trunks of the actor-critic networks.

use hlynr_nn::{LayerNorm, LeakyReLU, Linear, ReLU, Sequential, Tanh, init};
use hlynr_rng::Rng;

use super::PolicyError;
use super::config::{Activation, PolicyConfig};

pub(super) fn mlp(
    input: usize,
    widths: &[usize],
    config: &PolicyConfig,
    rng: &mut Rng,
) -> Result<(Sequential, usize), PolicyError> {
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

pub(super) fn orthogonal_linear(
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
