//! Actor-critic networks for policy-gradient methods, and Q-networks for
//! value-based ones ([`QNetwork`]), over one features extractor.
//!
//! # Layout and names
//!
//! ```text
//! obs -> shared (optional trunk) -+-> pi -> action_net -> action head(s)
//!                                 +-> vf -> value_net  -> V(s)
//! ```
//!
//! Each of `shared`, `pi` and `vf` is an MLP of `Linear` (+ optional
//! `LayerNorm`) + activation blocks whose widths come from [`NetArch`].
//! Parameters carry PyTorch `state_dict` names — `shared.0.weight`,
//! `pi.0.weight`, `pi.2.bias`, `vf.0.weight`, `action_net.weight`,
//! `value_net.bias`, `log_std` — so a `torch.nn.Module` with attributes of
//! those names (`nn.Sequential` children) loads the saved safetensors
//! strictly.
//!
//! Initialisation follows Stable-Baselines3's `ortho_init`: orthogonal weights
//! with gain `sqrt(2)` in hidden layers, `0.01` for the action head (an almost
//! uniform initial policy) and `1` for the value head; zero biases.
//!
//! # Action heads
//!
//! The action space is split into *components*, in the order of its flat
//! encoding: a `Box` is one diagonal Gaussian, a `Discrete` one categorical, a
//! `MultiDiscrete` one independent categorical per entry, and a `Tuple` the
//! concatenation of its members' components (e.g. `Tuple(Box(2), Discrete(3))`,
//! a Gaussian move plus a categorical choice). One `action_net` outputs every
//! component's parameters side by side (Gaussian means, then logits, in
//! component order); all Gaussian dimensions share one state-independent
//! `log_std` vector initialised to `log_std_init`. The joint log-probability is
//! the sum over components; entropies are kept per component so each can have
//! its own coefficient.
//!
//! What the trainer stores per step is the *raw* action: the Gaussian sample
//! `u` before any squashing, and category indices as `f32`. The action sent to
//! the environment is derived from it by [`Squash`]:
//!
//! - `none`: `u` as is (only for unbounded `Box` dimensions: a bounded box
//!   would reject out-of-range samples);
//! - `clip`: `clamp(u, low, high)` is sent, while the log-probability is that
//!   of the unclipped `u` (Stable-Baselines3 semantics: the clipping is part of
//!   the environment, not of the policy);
//! - `tanh`: `low + (tanh(u) + 1) (high - low) / 2` is sent, and the
//!   log-probability is that of the squashed action, `log N(u) - sum_j
//!   log((high_j - low_j) / 2 * (1 - tanh(u_j)^2))` (change of variables;
//!   needs finite bounds). The correction does not depend on the parameters,
//!   so it cancels in PPO's probability ratio. The entropy bonus of a tanh head
//!   is the entropy of the pre-squash Gaussian, which has a closed form.
//!
//! Deterministic actions are the mode: the squashed Gaussian mean, and the
//! most likely category.

mod actor_critic;
mod config;
mod features;
mod heads;
mod mlp;
pub mod onnx;
mod q_network;

use std::collections::BTreeMap;

use hlynr_env::config::ConfigError;
use hlynr_nn::{NamedParam, NamedParamMut, NnError, Tensor};
use thiserror::Error;

pub use actor_critic::ActorCritic;
pub use config::{Activation, DEFAULT_LSTM_HIDDEN_SIZE, NetArch, PolicyConfig, PolicyKind, Squash};
pub use features::{CnnConfig, FeaturesConfig, FeaturesExtractor};
pub use q_network::{ImplicitQuantiles, NoisyConfig, QNetConfig, QNetwork, QOutputs, argmax_rows};

/// Errors of building and running a policy network.
#[derive(Debug, Error)]
pub enum PolicyError {
    /// A configuration value is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A tensor operation failed (shapes, non-finite inputs).
    #[error(transparent)]
    Nn(#[from] NnError),
    /// An argument does not fit.
    #[error("{context}: {message}")]
    Invalid { context: String, message: String },
    /// Saved weights do not fit the network.
    #[error("network weights do not fit: {0}")]
    Weights(String),
}

impl PolicyError {
    /// Shorthand for [`PolicyError::Invalid`].
    pub fn invalid(context: impl Into<String>, message: impl Into<String>) -> Self {
        PolicyError::Invalid {
            context: context.into(),
            message: message.into(),
        }
    }
}

/// Copies of every parameter and buffer by name (a `state_dict`).
pub(crate) fn state_dict_of(params: Vec<NamedParam<'_>>) -> BTreeMap<String, Tensor> {
    params
        .into_iter()
        .map(|(n, p)| (n, p.value.clone()))
        .collect()
}

/// Loads `state` into `params` strictly: every name present with its shape,
/// no extra names. Nothing changes on error, which lists every misfit.
pub(crate) fn load_state_dict_into(
    mut params: Vec<NamedParamMut<'_>>,
    state: &BTreeMap<String, Tensor>,
) -> Result<(), PolicyError> {
    let mut problems = Vec::new();
    for (name, p) in &params {
        match state.get(name) {
            None => problems.push(format!("missing `{name}`")),
            Some(t) if t.shape() != p.value.shape() => problems.push(format!(
                "`{name}` has shape {:?}, the network expects {:?}",
                t.shape(),
                p.value.shape()
            )),
            Some(_) => {}
        }
    }
    for name in state.keys() {
        if !params.iter().any(|(n, _)| n == name) {
            problems.push(format!("unexpected `{name}`"));
        }
    }
    if !problems.is_empty() {
        return Err(PolicyError::Weights(problems.join("; ")));
    }
    for (name, p) in &mut params {
        if let Some(t) = state.get(name.as_str()) {
            p.value.copy_from(t);
        }
    }
    Ok(())
}

/// Clears the gradient of every trainable parameter.
pub(crate) fn zero_grads(params: Vec<NamedParamMut<'_>>) {
    for (_, p) in params {
        if p.is_trainable() {
            p.zero_grad();
        }
    }
}
