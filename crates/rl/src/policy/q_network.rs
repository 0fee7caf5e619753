//! Q-networks for discrete actions: the features extractor, an MLP trunk and
//! either one linear head (`Q(s, .)`) or dueling heads (Wang et al., 2016):
//! `Q(s, a) = V(s) + A(s, a) - mean_a' A(s, a')`.
//!
//! A distributional network (QR-DQN, Dabney et al., 2018) outputs `atoms`
//! quantiles of the return per action instead of one value, laid out
//! `[B, atoms, n_actions]` (dueling per quantile); its Q-value is their mean.
//! One atom is the expectation network.
//!
//! Parameters carry PyTorch names: `features_extractor.*` (see
//! [`super::features`]), `q_net.0.weight`, ... for the trunk, whose last
//! `Linear` is the Q head when the network is not dueling (the layout of
//! Stable-Baselines3's `QNetwork.q_net`), and `value_head.*` and
//! `advantage_head.*` when it is.

use std::collections::BTreeMap;

use hlynr_env::config::{ConfigError, Interval, Validate, ensure_range, join_path};
use hlynr_env::{Policy, PolicyInput, Space};
use hlynr_nn::{Layer, NamedParam, NamedParamMut, Sequential, Tensor};
use hlynr_rng::Rng;
use serde::{Deserialize, Serialize};

use super::config::Activation;
use super::features::{FeaturesConfig, FeaturesExtractor};
use super::mlp::{MlpStyle, dense, mlp};
use super::{PolicyError, load_state_dict_into, state_dict_of, zero_grads};

fn default_net_arch() -> Vec<usize> {
    vec![64, 64]
}
fn default_activation() -> Activation {
    Activation::Relu
}

/// The network section of a value-based algorithm (`dqn.policy`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QNetConfig {
    /// Hidden widths of the trunk; default `[64, 64]` (SB3's DQN).
    #[serde(default = "default_net_arch")]
    pub net_arch: Vec<usize>,
    /// Hidden nonlinearity; default `relu`.
    #[serde(default = "default_activation")]
    pub activation: Activation,
    /// A `LayerNorm` after every hidden `Linear`; default off.
    #[serde(default)]
    pub layer_norm: bool,
    /// Orthogonal initialisation; default off (PyTorch's default, as SB3's DQN).
    #[serde(default)]
    pub ortho_init: bool,
    /// Dueling value and advantage heads; default off.
    #[serde(default)]
    pub dueling: bool,
    /// Factorised noisy layers (Fortunato et al., 2018) in the trunk and
    /// heads, for exploration by learned parameter noise; `null` (default)
    /// uses plain `Linear` layers.
    #[serde(default)]
    pub noisy: Option<NoisyConfig>,
    /// How observations become features; default `flatten`.
    #[serde(default)]
    pub features: FeaturesConfig,
}

/// The noisy layers' initial noise scale.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoisyConfig {
    /// `sigma = sigma0 / sqrt(fan_in)` at initialisation; default 0.5.
    #[serde(default = "default_sigma0")]
    pub sigma0: f64,
}

fn default_sigma0() -> f64 {
    0.5
}

impl Default for QNetConfig {
    fn default() -> Self {
        Self {
            net_arch: default_net_arch(),
            activation: default_activation(),
            layer_norm: false,
            ortho_init: false,
            dueling: false,
            noisy: None,
            features: FeaturesConfig::Flatten,
        }
    }
}

impl Validate for QNetConfig {
    fn validate(&self, path: &str) -> Result<(), ConfigError> {
        for (i, &w) in self.net_arch.iter().enumerate() {
            ensure_range(
                &format!("{}[{i}]", join_path(path, "net_arch")),
                w as f64,
                Interval::closed(1.0, 65536.0),
            )?;
        }
        if let Some(n) = &self.noisy {
            ensure_range(
                &join_path(&join_path(path, "noisy"), "sigma0"),
                n.sigma0,
                Interval::closed(0.0, 100.0),
            )?;
        }
        self.features.validate(&join_path(path, "features"))
    }
}

/// The dueling heads.
#[derive(Debug)]
struct Dueling {
    value: Box<dyn Layer>,
    advantage: Box<dyn Layer>,
    grad_value: Tensor,
    grad_advantage: Tensor,
    grad_trunk: Tensor,
}

/// A Q-network (see the module docs).
#[derive(Debug)]
pub struct QNetwork {
    config: QNetConfig,
    obs_dim: usize,
    n_actions: usize,
    /// Outputs per action (1: the expected return; N: its quantiles).
    atoms: usize,
    /// Mean over atoms, `[B, n_actions]` (the quantile networks' Q-values).
    expected: Tensor,
    features: FeaturesExtractor,
    trunk: Sequential,
    dueling: Option<Dueling>,
    q: Tensor,
    obs_buf: Tensor,
}

impl QNetwork {
    /// Builds the network for observations of `observation_space` and
    /// `Discrete(n)` actions, `atoms` outputs per action (1 for expected
    /// returns), with weights drawn from `rng`.
    pub fn new(
        observation_space: &Space,
        action_space: &Space,
        config: &QNetConfig,
        atoms: usize,
        rng: &mut Rng,
    ) -> Result<Self, PolicyError> {
        if atoms == 0 {
            return Err(PolicyError::invalid("Q-network", "0 atoms per action"));
        }
        config.validate("policy")?;
        let Space::Discrete { n: n_actions } = *action_space else {
            return Err(PolicyError::invalid(
                "Q-network",
                format!(
                    "value-based algorithms choose among discrete actions; this env's action space is {action_space:?}"
                ),
            ));
        };
        if n_actions == 0 {
            return Err(PolicyError::invalid(
                "Q-network",
                "Discrete(0) has no action",
            ));
        }
        let features =
            FeaturesExtractor::new(observation_space, &config.features, config.ortho_init, rng)?;
        let style = MlpStyle {
            activation: config.activation,
            layer_norm: config.layer_norm,
            ortho_init: config.ortho_init,
            noisy_sigma0: config.noisy.as_ref().map(|n| n.sigma0 as f32),
        };
        let (mut trunk, width) = mlp(features.out_dim(), &config.net_arch, style, rng)?;
        let head = |out: usize, gain: f32, rng: &mut Rng| dense(width, out, gain, style, rng);
        let dueling = if config.dueling {
            Some(Dueling {
                value: head(atoms, 1.0, rng)?,
                advantage: head(n_actions * atoms, 1.0, rng)?,
                grad_value: Tensor::default(),
                grad_advantage: Tensor::default(),
                grad_trunk: Tensor::default(),
            })
        } else {
            trunk.push_boxed(head(n_actions * atoms, 1.0, rng)?);
            None
        };
        Ok(Self {
            config: config.clone(),
            obs_dim: observation_space.flat_dim(),
            n_actions,
            atoms,
            expected: Tensor::default(),
            features,
            trunk,
            dueling,
            q: Tensor::default(),
            obs_buf: Tensor::default(),
        })
    }

    /// The configuration the network was built from.
    pub fn config(&self) -> &QNetConfig {
        &self.config
    }

    /// Number of actions.
    pub fn n_actions(&self) -> usize {
        self.n_actions
    }

    /// Outputs per action.
    pub fn atoms(&self) -> usize {
        self.atoms
    }

    /// Observation values per row.
    pub fn obs_dim(&self) -> usize {
        self.obs_dim
    }

    /// Observation bytes per row.
    pub fn obs_bytes(&self) -> usize {
        self.features.bytes_dim()
    }

    /// Outputs `[B, atoms * n_actions]` (atom-major per row) of `B`
    /// observations (values `[B, obs_dim]`, bytes `[B * obs_bytes]`); kept
    /// for [`QNetwork::backward`].
    pub fn forward(&mut self, values: &Tensor, bytes: &[u8]) -> Result<&Tensor, PolicyError> {
        values.expect_matrix("Q-network observations", self.obs_dim)?;
        let x = self.features.extract(values, bytes)?;
        let h = self.trunk.forward(x)?;
        let Some(d) = &mut self.dueling else {
            return Ok(h);
        };
        let v = d.value.forward(h)?;
        let a = d.advantage.forward(h)?;
        let (b, n) = (a.rows(), self.n_actions);
        self.q.resize(&[b, self.atoms * n]);
        for ((q, a), &v) in self
            .q
            .data_mut()
            .chunks_exact_mut(n)
            .zip(a.data().chunks_exact(n))
            .zip(v.data())
        {
            let mean = a.iter().sum::<f32>() / n as f32;
            for (q, &a) in q.iter_mut().zip(a) {
                *q = v + a - mean;
            }
        }
        Ok(&self.q)
    }

    /// The outputs of the last [`QNetwork::forward`].
    pub fn outputs(&self) -> &Tensor {
        match &self.dueling {
            Some(_) => &self.q,
            None => self.trunk.output(),
        }
    }

    /// Q-values `[B, n_actions]` of `B` observations: the outputs
    /// themselves with one atom, else their mean over atoms.
    pub fn q_values(&mut self, values: &Tensor, bytes: &[u8]) -> Result<&Tensor, PolicyError> {
        self.forward(values, bytes)?;
        if self.atoms == 1 {
            return Ok(self.outputs());
        }
        let (atoms, n) = (self.atoms, self.n_actions);
        let out = match &self.dueling {
            Some(_) => &self.q,
            None => self.trunk.output(),
        };
        mean_over_atoms(out, atoms, n, &mut self.expected);
        Ok(&self.expected)
    }

    /// Adds into the parameter gradients the gradient of a loss whose
    /// gradient with respect to the last forward's outputs
    /// (`[B, atoms * n_actions]`) is `grad_q`.
    pub fn backward(&mut self, values: &Tensor, grad_q: &Tensor) -> Result<(), PolicyError> {
        let n = self.n_actions;
        let b = grad_q.expect_matrix("Q-network gradient", self.atoms * n)?;
        let trains_features = self.features.has_params();
        let x = self.features.extracted(values);
        let grad_trunk_out: &Tensor = match &mut self.dueling {
            None => grad_q,
            Some(d) => {
                // dQ/dV = 1; dQ_j/dA_k = [j = k] - 1/n.
                d.grad_value.resize(&[b, self.atoms]);
                d.grad_advantage.resize(&[b, self.atoms * n]);
                for ((gv, ga), gq) in d
                    .grad_value
                    .data_mut()
                    .iter_mut()
                    .zip(d.grad_advantage.data_mut().chunks_exact_mut(n))
                    .zip(grad_q.data().chunks_exact(n))
                {
                    let sum: f32 = gq.iter().sum();
                    *gv = sum;
                    for (ga, &g) in ga.iter_mut().zip(gq) {
                        *ga = g - sum / n as f32;
                    }
                }
                let h = self.trunk.output();
                let gv = d.value.backward(h, &d.grad_value, true)?;
                d.grad_trunk.copy_from(gv);
                let ga = d.advantage.backward(h, &d.grad_advantage, true)?;
                for (g, &v) in d.grad_trunk.data_mut().iter_mut().zip(ga.data()) {
                    *g += v;
                }
                &d.grad_trunk
            }
        };
        let g = self.trunk.backward(x, grad_trunk_out, trains_features)?;
        if trains_features {
            self.features.backward(g)?;
        }
        Ok(())
    }

    /// The greedy action of each of `n` observations (the first of equal
    /// Q-values).
    pub fn greedy(
        &mut self,
        values: &[f32],
        bytes: &[u8],
        n: usize,
        actions: &mut [usize],
    ) -> Result<(), PolicyError> {
        let mut obs = std::mem::take(&mut self.obs_buf);
        obs.resize(&[n, self.obs_dim]);
        obs.data_mut().copy_from_slice(values);
        let result = self.q_values(&obs, bytes).map(|q| argmax_rows(q, actions));
        self.obs_buf = obs;
        result
    }

    /// Every parameter with its PyTorch name, in `state_dict` order.
    pub fn named_params(&self) -> Vec<NamedParam<'_>> {
        let mut out = Vec::new();
        self.features.params(&mut out);
        self.trunk.params("q_net.", &mut out);
        if let Some(d) = &self.dueling {
            d.value.params("value_head.", &mut out);
            d.advantage.params("advantage_head.", &mut out);
        }
        out
    }

    /// Mutable counterpart of [`QNetwork::named_params`].
    pub fn named_params_mut(&mut self) -> Vec<NamedParamMut<'_>> {
        let mut out = Vec::new();
        self.features.params_mut(&mut out);
        self.trunk.params_mut("q_net.", &mut out);
        if let Some(d) = &mut self.dueling {
            d.value.params_mut("value_head.", &mut out);
            d.advantage.params_mut("advantage_head.", &mut out);
        }
        out
    }

    /// Copies of every parameter and buffer by name (the `state_dict`).
    pub fn state_dict(&self) -> BTreeMap<String, Tensor> {
        state_dict_of(self.named_params())
    }

    /// Loads a `state_dict` strictly: every name must be present with its
    /// shape, and no extra names are allowed. Nothing changes on error.
    pub fn load_state_dict(&mut self, state: &BTreeMap<String, Tensor>) -> Result<(), PolicyError> {
        load_state_dict_into(self.named_params_mut(), state)
    }

    /// Clears every gradient.
    pub fn zero_grad(&mut self) {
        zero_grads(self.named_params_mut());
    }

    /// True when the network has noisy layers.
    pub fn is_noisy(&self) -> bool {
        self.config.noisy.is_some()
    }

    /// Draws fresh noise for every noisy layer.
    pub fn resample_noise(&mut self, rng: &mut Rng) {
        self.trunk.resample_noise(rng);
        if let Some(d) = &mut self.dueling {
            d.value.resample_noise(rng);
            d.advantage.resample_noise(rng);
        }
    }

    /// Training mode (noisy weights) or evaluation mode (their means).
    pub fn set_training(&mut self, training: bool) {
        self.trunk.set_training(training);
        if let Some(d) = &mut self.dueling {
            d.value.set_training(training);
            d.advantage.set_training(training);
        }
    }
}

/// `out[b, a] = mean_i x[b, i, a]` for `x` laid out `[B, atoms * n]`.
fn mean_over_atoms(x: &Tensor, atoms: usize, n: usize, out: &mut Tensor) {
    let b = x.rows();
    out.resize_zeroed(&[b, n]);
    for (o, row) in out
        .data_mut()
        .chunks_exact_mut(n)
        .zip(x.data().chunks_exact(atoms * n))
    {
        for atom in row.chunks_exact(n) {
            for (o, &v) in o.iter_mut().zip(atom) {
                *o += v;
            }
        }
        for o in o.iter_mut() {
            *o /= atoms as f32;
        }
    }
}

/// The index of the largest entry of each row of `q` (the first of ties).
pub fn argmax_rows(q: &Tensor, out: &mut [usize]) {
    let n = q.cols();
    for (o, row) in out.iter_mut().zip(q.data().chunks_exact(n.max(1))) {
        let mut best = 0;
        for (j, &v) in row.iter().enumerate() {
            if v > row[best] {
                best = j;
            }
        }
        *o = best;
    }
}

/// A trained Q-network as an evaluation [`Policy`]: the greedy action
/// (exploration is a training matter).
impl Policy for QNetwork {
    fn name(&self) -> &str {
        "dqn"
    }

    fn act(
        &mut self,
        input: &PolicyInput<'_>,
        _deterministic: bool,
        actions: &mut [f32],
    ) -> Result<(), String> {
        let mut greedy = vec![0usize; input.n];
        self.greedy(input.obs, input.obs_bytes, input.n, &mut greedy)
            .map_err(|e| e.to_string())?;
        for (a, &g) in actions.iter_mut().zip(&greedy) {
            *a = g as f32;
        }
        Ok(())
    }
}
