//! The networks of this module as ONNX graphs (for `hlynr export`): each
//! part is rebuilt from the config and the `state_dict` names it was saved
//! under, so the graph computes what the network computes.

use std::collections::BTreeMap;

use hlynr_env::Space;
use hlynr_nn::onnx::{Attr, ElemType, OnnxGraph};
use hlynr_nn::{Conv2dSpec, LayerNorm, LeakyReLU, Tensor};

use super::PolicyError;
use super::config::{Activation, PolicyConfig, Squash};
use super::features::{FeaturesConfig, byte_image};
use super::heads::{Component, components};
use super::q_network::{QNetwork, QOutputs};
use crate::recurrent::ACTOR_LSTM_PREFIX;

/// Named weights of one network, read by name with a clear error.
pub(crate) struct Weights<'a>(pub &'a BTreeMap<String, Tensor>);

impl Weights<'_> {
    fn get(&self, name: &str) -> Result<&Tensor, PolicyError> {
        self.0
            .get(name)
            .ok_or_else(|| PolicyError::Weights(format!("missing `{name}`")))
    }
}

/// The graph's values for one observation batch: `values` (`float [N, D]`,
/// already normalised) and `bytes` (`uint8 [N, B]`, when the observation has
/// a byte lane).
#[derive(Clone, Copy, Debug)]
pub struct OnnxObs<'a> {
    pub values: Option<&'a str>,
    pub bytes: Option<&'a str>,
}

/// The features extractor of `config` on `obs` (see [`super::features`]).
pub(crate) fn features(
    g: &mut OnnxGraph,
    space: &Space,
    config: &FeaturesConfig,
    w: &Weights<'_>,
    obs: OnnxObs<'_>,
) -> Result<String, PolicyError> {
    let Some(bytes) = obs.bytes else {
        return obs.values.map(str::to_string).ok_or_else(|| {
            PolicyError::invalid("ONNX export", "an observation with no values and no bytes")
        });
    };
    let as_float = g.cast(bytes, ElemType::F32);
    let scale = g.const_f32("byte_scale", &[], &[255.0])?;
    let scaled = g.op("Div", &[&as_float, &scale], &[]);
    let byte_features = match config {
        FeaturesConfig::Flatten => scaled,
        FeaturesConfig::Cnn(cnn) => {
            let image = byte_image(&space.byte_shapes()).ok_or_else(|| {
                PolicyError::invalid("ONNX export", "the byte lane is not an image stack")
            })?;
            let shape = g.const_i64(
                "image_shape",
                &[4],
                &[-1, image[0] as i64, image[1] as i64, image[2] as i64],
            )?;
            let mut x = g.op("Reshape", &[&scaled, &shape], &[]);
            let mut channels = image[0];
            for (i, ((&out, &k), &s)) in cnn
                .channels
                .iter()
                .zip(&cnn.kernels)
                .zip(&cnn.strides)
                .enumerate()
            {
                let prefix = format!("features_extractor.cnn.{}.", 2 * i);
                let spec = Conv2dSpec::new(channels, out, k, s);
                let weight = w.get(&format!("{prefix}weight"))?;
                let bias = w.get(&format!("{prefix}bias"))?;
                let conv = g.conv2d(&prefix, &x, &spec, weight, Some(bias))?;
                x = g.op("Relu", &[&conv], &[]);
                channels = out;
            }
            let flat = g.op("Flatten", &[&x], &[("axis", Attr::Int(1))]);
            let prefix = "features_extractor.linear.0.";
            let lin = g.linear(
                prefix,
                &flat,
                w.get(&format!("{prefix}weight"))?,
                Some(w.get(&format!("{prefix}bias"))?),
            )?;
            g.op("Relu", &[&lin], &[])
        }
    };
    Ok(match obs.values {
        Some(values) => g.op(
            "Concat",
            &[&byte_features, values],
            &[("axis", Attr::Int(1))],
        ),
        None => byte_features,
    })
}

/// An MLP of `Linear (+ LayerNorm) + activation` blocks saved under
/// `prefix` (see [`super::mlp::mlp`]) on `x`.
pub(crate) fn mlp(
    g: &mut OnnxGraph,
    prefix: &str,
    widths: usize,
    activation: Activation,
    layer_norm: bool,
    w: &Weights<'_>,
    x: &str,
) -> Result<String, PolicyError> {
    let mut x = x.to_string();
    let stride = if layer_norm { 3 } else { 2 };
    for block in 0..widths {
        let i = block * stride;
        x = linear(g, &format!("{prefix}{i}."), w, &x)?;
        if layer_norm {
            let p = format!("{prefix}{}.", i + 1);
            x = g.layer_norm(
                &p,
                &x,
                w.get(&format!("{p}weight"))?,
                w.get(&format!("{p}bias"))?,
                LayerNorm::DEFAULT_EPS,
            )?;
        }
        x = match activation {
            Activation::Tanh => g.op("Tanh", &[&x], &[]),
            Activation::Relu => g.op("Relu", &[&x], &[]),
            Activation::LeakyRelu => g.op(
                "LeakyRelu",
                &[&x],
                &[("alpha", Attr::Float(LeakyReLU::DEFAULT_NEGATIVE_SLOPE))],
            ),
        };
    }
    Ok(x)
}

/// The `Linear` saved under `prefix` on `x`; a noisy layer acts on its
/// means, as in evaluation.
pub(crate) fn linear(
    g: &mut OnnxGraph,
    prefix: &str,
    w: &Weights<'_>,
    x: &str,
) -> Result<String, PolicyError> {
    if let Some(mu) = w.0.get(&format!("{prefix}weight_mu")) {
        let bias = w.get(&format!("{prefix}bias_mu"))?;
        return Ok(g.linear(prefix, x, mu, Some(bias))?);
    }
    let bias = w.0.get(&format!("{prefix}bias"));
    Ok(g.linear(prefix, x, w.get(&format!("{prefix}weight"))?, bias)?)
}

/// The state a recurrent actor reads and writes each step: `h` and `c` of
/// its LSTM, `[N, H]` each.
#[derive(Clone, Debug)]
pub struct OnnxLstmState {
    pub h: String,
    pub c: String,
}

/// The deterministic actor of an actor-critic: features, the LSTM step (from
/// `state`, for a recurrent policy), the shared and policy MLPs, the action
/// net and the mode of each action component, squashed as the environment
/// receives it. Returns the flat action `float [N, act_dim]` and, for a
/// recurrent policy, the next LSTM state.
pub fn actor_critic_actor(
    g: &mut OnnxGraph,
    observation_space: &Space,
    action_space: &Space,
    config: &PolicyConfig,
    weights: &BTreeMap<String, Tensor>,
    obs: OnnxObs<'_>,
    state: Option<&OnnxLstmState>,
) -> Result<(String, Option<OnnxLstmState>), PolicyError> {
    let w = Weights(weights);
    let feat = features(g, observation_space, &config.features, &w, obs)?;
    let (trunk_in, next_state) = match (config.recurrent_hidden_size(), state) {
        (Some(_), Some(s)) => {
            let p = ACTOR_LSTM_PREFIX;
            let (h, c) = g.lstm_step(
                p,
                &feat,
                &s.h,
                &s.c,
                w.get(&format!("{p}weight_ih_l0"))?,
                w.get(&format!("{p}weight_hh_l0"))?,
                w.get(&format!("{p}bias_ih_l0"))?,
                w.get(&format!("{p}bias_hh_l0"))?,
            )?;
            (h.clone(), Some(OnnxLstmState { h, c }))
        }
        (None, None) => (feat, None),
        _ => {
            return Err(PolicyError::invalid(
                "ONNX export",
                "the LSTM state inputs must be given exactly for a recurrent policy",
            ));
        }
    };
    let arch = &config.net_arch;
    let (act, ln) = (config.activation, config.layer_norm);
    let shared = mlp(g, "shared.", arch.shared.len(), act, ln, &w, &trunk_in)?;
    let latent = mlp(g, "pi.", arch.pi.len(), act, ln, &w, &shared)?;
    let out = linear(g, "action_net.", &w, &latent)?;
    let (comps, _, _) = components(action_space, config.squash)?;
    let mut parts = Vec::with_capacity(comps.len());
    for c in &comps {
        parts.push(match c {
            Component::Gaussian {
                out_offset,
                dim,
                low,
                high,
                ..
            } => {
                let mean = g.slice_cols(&out, *out_offset, out_offset + dim)?;
                squash(g, config.squash, &mean, low, high)?
            }
            Component::Categorical { out_offset, n, .. } => {
                let logits = g.slice_cols(&out, *out_offset, out_offset + n)?;
                // The first of equal maxima, as `Categorical::mode`.
                let index = g.op(
                    "ArgMax",
                    &[&logits],
                    &[("axis", Attr::Int(1)), ("keepdims", Attr::Int(1))],
                );
                g.cast(&index, ElemType::F32)
            }
        });
    }
    let action = if parts.len() == 1 {
        parts.remove(0)
    } else {
        let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
        g.op("Concat", &refs, &[("axis", Attr::Int(1))])
    };
    Ok((action, next_state))
}

/// The environment action of Gaussian means `u` (see [`super::heads::squash_row`]).
fn squash(
    g: &mut OnnxGraph,
    squash: Squash,
    u: &str,
    low: &[f32],
    high: &[f32],
) -> Result<String, PolicyError> {
    let dim = low.len();
    let clamp = |g: &mut OnnxGraph, x: &str| -> Result<String, PolicyError> {
        let lo = g.const_f32("action_low", &[dim], low)?;
        let hi = g.const_f32("action_high", &[dim], high)?;
        let upper = g.op("Min", &[x, &hi], &[]);
        Ok(g.op("Max", &[&upper, &lo], &[]))
    };
    match squash {
        Squash::None => Ok(u.to_string()),
        Squash::Clip => clamp(g, u),
        Squash::Tanh => {
            // low + (tanh(u) + 1) (high - low) / 2
            let half_range: Vec<f32> = low
                .iter()
                .zip(high)
                .map(|(&lo, &hi)| (0.5 * (f64::from(hi) - f64::from(lo))) as f32)
                .collect();
            let t = g.op("Tanh", &[u], &[]);
            let one = g.const_f32("one", &[], &[1.0])?;
            let t1 = g.op("Add", &[&t, &one], &[]);
            let hr = g.const_f32("action_half_range", &[dim], &half_range)?;
            let scaled = g.op("Mul", &[&t1, &hr], &[]);
            let lo = g.const_f32("action_low", &[dim], low)?;
            let a = g.op("Add", &[&scaled, &lo], &[]);
            clamp(g, &a)
        }
    }
}

/// The greedy action of a Q-network, and its Q-values `float [N, actions]`:
/// features, trunk, (an implicit network's product with its quantile
/// embedding at the policy fractions, and the layers past it), the heads
/// (dueling: `V + A - mean A` per atom), the mean over atoms, the argmax
/// (the first of equal maxima, as [`super::argmax_rows`]).
pub fn q_network_greedy(
    g: &mut OnnxGraph,
    observation_space: &Space,
    q: &mut QNetwork,
    outputs: &QOutputs,
    weights: &BTreeMap<String, Tensor>,
    obs: OnnxObs<'_>,
) -> Result<(String, String), PolicyError> {
    let w = Weights(weights);
    let config = q.config().clone();
    let (act, ln) = (config.activation, config.layer_norm);
    let feat = features(g, observation_space, &config.features, &w, obs)?;
    let psi = mlp(g, "q_net.", config.net_arch.len(), act, ln, &w, &feat)?;
    let n = q.n_actions() as i64;
    let (heads_in, atoms, prefix, blocks) = match (q.policy_embedding()?, outputs) {
        (Some(phi), QOutputs::Implicit(im)) => {
            let (k, width) = (phi.rows(), phi.cols());
            let phi = g.const_f32("policy_quantile_embedding", &[1, k, width], phi.data())?;
            let axis1 = g.const_i64("axis1", &[1], &[1])?;
            let psi3 = g.op("Unsqueeze", &[&psi, &axis1], &[]);
            let product = g.op("Mul", &[&psi3, &phi], &[]);
            let rows = g.const_i64("rows_shape", &[2], &[-1, width as i64])?;
            let flat = g.op("Reshape", &[&product, &rows], &[]);
            let h = mlp(g, "quantile_net.", im.head_arch.len(), act, ln, &w, &flat)?;
            (h, k, "quantile_net.", im.head_arch.len())
        }
        _ => (psi, outputs.atoms(), "q_net.", config.net_arch.len()),
    };
    let per_atom = |g: &mut OnnxGraph, x: &str, width: i64| -> Result<String, PolicyError> {
        let shape = g.const_i64("atoms_shape", &[3], &[-1, atoms as i64, width])?;
        Ok(g.op("Reshape", &[x, &shape], &[]))
    };
    let q3 = if config.dueling {
        let v = linear(g, "value_head.", &w, &heads_in)?;
        let a = linear(g, "advantage_head.", &w, &heads_in)?;
        let v3 = per_atom(g, &v, 1)?;
        let a3 = per_atom(g, &a, n)?;
        let mean = g.op(
            "ReduceMean",
            &[&a3],
            &[("axes", Attr::Ints(vec![2])), ("keepdims", Attr::Int(1))],
        );
        let sum = g.op("Add", &[&v3, &a3], &[]);
        g.op("Sub", &[&sum, &mean], &[])
    } else {
        let stride = if ln { 3 } else { 2 };
        let head = linear(g, &format!("{prefix}{}.", blocks * stride), &w, &heads_in)?;
        per_atom(g, &head, n)?
    };
    let q_values = g.op(
        "ReduceMean",
        &[&q3],
        &[("axes", Attr::Ints(vec![1])), ("keepdims", Attr::Int(0))],
    );
    let index = g.op(
        "ArgMax",
        &[&q_values],
        &[("axis", Attr::Int(1)), ("keepdims", Attr::Int(1))],
    );
    Ok((g.cast(&index, ElemType::F32), q_values))
}
