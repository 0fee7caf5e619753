//! Q-networks for discrete actions: the features extractor, an MLP trunk and
//! either one linear head (`Q(s, .)`) or dueling heads (Wang et al., 2016):
//! `Q(s, a) = V(s) + A(s, a) - mean_a' A(s, a')`.
//!
//! A distributional network (QR-DQN, Dabney et al., 2018) outputs `atoms`
//! quantiles of the return per action instead of one value, laid out
//! `[B, atoms, n_actions]` (dueling per quantile); its Q-value is their mean.
//! One atom is the expectation network.
//!
//! An implicit quantile network (IQN, Dabney et al., 2018) instead takes
//! quantile fractions `tau` as input: the trunk's output `psi(s)` is
//! multiplied element-wise by a cosine embedding `phi(tau)`
//! (`quantile_embedding.*`), and the product passes through its own hidden
//! layers (`quantile_net.*`, which end in the Q head when the network is not
//! dueling) to the heads. Rows are laid out as the quantile network's,
//! `[B, n_taus, n_actions]`; its Q-values are the mean over the midpoints
//! `(2k + 1) / 2K` of `K` policy fractions, a deterministic quadrature of
//! the mean that the policy acts on.
//!
//! Parameters carry PyTorch names: `features_extractor.*` (see
//! [`super::features`]), `q_net.0.weight`, ... for the trunk, whose last
//! `Linear` is the Q head when the network is not dueling (the layout of
//! Stable-Baselines3's `QNetwork.q_net`), and `value_head.*` and
//! `advantage_head.*` when it is.

use std::collections::BTreeMap;

use hlynr_env::config::{ConfigError, Interval, Validate, ensure_range, join_path};
use hlynr_env::{Policy, PolicyInput, Space};
use hlynr_nn::{CosineEmbedding, Layer, NamedParam, NamedParamMut, Sequential, Tensor};
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

/// What a Q-network outputs per action.
#[derive(Clone, Debug, PartialEq)]
pub enum QOutputs {
    /// One expected return.
    Expected,
    /// This many fixed quantiles of the return (QR-DQN).
    Quantiles(usize),
    /// Quantiles at fractions given with each forward pass (IQN).
    Implicit(ImplicitQuantiles),
}

impl QOutputs {
    /// Outputs per action of [`QNetwork::forward`].
    pub fn atoms(&self) -> usize {
        match self {
            QOutputs::Expected => 1,
            QOutputs::Quantiles(n) => *n,
            QOutputs::Implicit(i) => i.policy_quantiles,
        }
    }
}

/// The shape of an implicit quantile network past its trunk.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImplicitQuantiles {
    /// Cosine basis functions of the quantile embedding.
    pub cosine_dim: usize,
    /// Hidden widths between the embedding product and the heads.
    pub head_arch: Vec<usize>,
    /// Fractions `K` whose mean is the Q-value the policy acts on.
    pub policy_quantiles: usize,
}

/// The layers of an implicit quantile network past its trunk, and the
/// buffers of its last pass.
#[derive(Debug)]
struct Implicit {
    embedding: CosineEmbedding,
    /// Hidden layers on the product (and the Q head when not dueling).
    net: Sequential,
    /// Fractions of the last forward pass, `[B * n, 1]`.
    taus: Tensor,
    /// Fractions per observation in the last forward pass.
    n: usize,
    /// `psi(s_b) * phi(tau_r)`, `[B * n, H]`.
    product: Tensor,
    /// The policy's midpoint fractions.
    policy_taus: Vec<f32>,
    /// Them repeated for a batch.
    repeated_taus: Vec<f32>,
    grad_phi: Tensor,
    grad_psi: Tensor,
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
    grad_in: Tensor,
}

/// A Q-network (see the module docs).
#[derive(Debug)]
pub struct QNetwork {
    config: QNetConfig,
    obs_dim: usize,
    n_actions: usize,
    /// Outputs per action of [`QNetwork::forward`] (1: the expected return;
    /// N: its quantiles; K policy fractions of an implicit network).
    atoms: usize,
    /// Outputs per action of the last forward pass.
    last_atoms: usize,
    /// Mean over atoms, `[B, n_actions]` (the quantile networks' Q-values).
    expected: Tensor,
    features: FeaturesExtractor,
    trunk: Sequential,
    implicit: Option<Implicit>,
    dueling: Option<Dueling>,
    q: Tensor,
    /// The gradient at an implicit network's rows, `[B * n, A]`.
    grad_rows: Tensor,
    obs_buf: Tensor,
}

impl QNetwork {
    /// Builds the network for observations of `observation_space` and
    /// `Discrete(n)` actions, with `outputs` per action, and weights drawn
    /// from `rng`.
    pub fn new(
        observation_space: &Space,
        action_space: &Space,
        config: &QNetConfig,
        outputs: &QOutputs,
        rng: &mut Rng,
    ) -> Result<Self, PolicyError> {
        let atoms = outputs.atoms();
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
        let (mut trunk, mut width) = mlp(features.out_dim(), &config.net_arch, style, rng)?;
        let mut implicit = match outputs {
            QOutputs::Implicit(i) => {
                if i.cosine_dim == 0 {
                    return Err(PolicyError::invalid(
                        "Q-network",
                        "an implicit quantile network needs cosine_dim >= 1",
                    ));
                }
                let embedding = CosineEmbedding::new(i.cosine_dim, width, rng)?;
                let (net, w) = mlp(width, &i.head_arch, style, rng)?;
                width = w;
                let k = i.policy_quantiles;
                Some(Implicit {
                    embedding,
                    net,
                    taus: Tensor::default(),
                    n: 0,
                    product: Tensor::default(),
                    policy_taus: (0..k)
                        .map(|j| (2 * j + 1) as f32 / (2 * k) as f32)
                        .collect(),
                    repeated_taus: Vec::new(),
                    grad_phi: Tensor::default(),
                    grad_psi: Tensor::default(),
                })
            }
            _ => None,
        };
        // An implicit network's rows are single fractions: one output per
        // action and row.
        let per_row = if implicit.is_some() { 1 } else { atoms };
        let head = |out: usize, gain: f32, rng: &mut Rng| dense(width, out, gain, style, rng);
        let dueling = if config.dueling {
            Some(Dueling {
                value: head(per_row, 1.0, rng)?,
                advantage: head(n_actions * per_row, 1.0, rng)?,
                grad_value: Tensor::default(),
                grad_advantage: Tensor::default(),
                grad_in: Tensor::default(),
            })
        } else {
            let layer = head(n_actions * per_row, 1.0, rng)?;
            match &mut implicit {
                Some(i) => i.net.push_boxed(layer),
                None => trunk.push_boxed(layer),
            };
            None
        };
        Ok(Self {
            config: config.clone(),
            obs_dim: observation_space.flat_dim(),
            n_actions,
            atoms,
            last_atoms: atoms,
            expected: Tensor::default(),
            features,
            trunk,
            implicit,
            dueling,
            q: Tensor::default(),
            grad_rows: Tensor::default(),
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

    /// Outputs per action of [`QNetwork::forward`].
    pub fn atoms(&self) -> usize {
        self.atoms
    }

    /// True for an implicit quantile network.
    pub fn is_implicit(&self) -> bool {
        self.implicit.is_some()
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
    /// for [`QNetwork::backward`]. An implicit network evaluates its policy
    /// fractions.
    pub fn forward(&mut self, values: &Tensor, bytes: &[u8]) -> Result<&Tensor, PolicyError> {
        let Some(im) = &mut self.implicit else {
            return self.run(values, bytes, None);
        };
        let k = im.policy_taus.len();
        let mut taus = std::mem::take(&mut im.repeated_taus);
        taus.clear();
        taus.extend(im.policy_taus.iter().cycle().take(values.rows() * k));
        let result = self.run(values, bytes, Some((&taus, k))).map(|_| ());
        if let Some(im) = &mut self.implicit {
            im.repeated_taus = taus;
        }
        result?;
        Ok(&self.q)
    }

    /// Outputs `[B, n * n_actions]` of an implicit network at the fractions
    /// `taus` (`[B * n]`, `n` per observation, each in `[0, 1]`).
    pub fn forward_at(
        &mut self,
        values: &Tensor,
        bytes: &[u8],
        taus: &[f32],
        n: usize,
    ) -> Result<&Tensor, PolicyError> {
        if self.implicit.is_none() {
            return Err(PolicyError::invalid(
                "Q-network",
                "quantile fractions are an input of implicit quantile networks only",
            ));
        }
        if n == 0 || taus.len() != values.rows() * n {
            return Err(PolicyError::invalid(
                "Q-network",
                format!(
                    "{} fractions for {} observations at {n} each",
                    taus.len(),
                    values.rows()
                ),
            ));
        }
        self.run(values, bytes, Some((taus, n)))
    }

    fn run(
        &mut self,
        values: &Tensor,
        bytes: &[u8],
        taus: Option<(&[f32], usize)>,
    ) -> Result<&Tensor, PolicyError> {
        values.expect_matrix("Q-network observations", self.obs_dim)?;
        let x = self.features.extract(values, bytes)?;
        let psi = self.trunk.forward(x)?;
        let implicit = self.implicit.is_some();
        let heads_in = match (&mut self.implicit, taus) {
            (Some(im), Some((taus, n))) => {
                let width = psi.cols();
                im.n = n;
                im.taus.resize(&[taus.len(), 1]);
                im.taus.data_mut().copy_from_slice(taus);
                let phi = im.embedding.forward(&im.taus)?;
                im.product.resize(&[taus.len(), width]);
                for (r, (z, phi)) in im
                    .product
                    .data_mut()
                    .chunks_exact_mut(width)
                    .zip(phi.data().chunks_exact(width))
                    .enumerate()
                {
                    let psi = &psi.data()[r / n * width..(r / n + 1) * width];
                    for ((z, &a), &b) in z.iter_mut().zip(psi).zip(phi) {
                        *z = a * b;
                    }
                }
                self.last_atoms = n;
                im.net.forward(&im.product)?
            }
            _ => {
                self.last_atoms = self.atoms;
                psi
            }
        };
        let b = values.rows();
        let (n, atoms) = (self.n_actions, self.last_atoms);
        match &mut self.dueling {
            None if !implicit => return Ok(self.trunk.output()),
            None => {
                // `[B * n, A]` rows are `[B, n * A]` in memory.
                self.q.resize(&[b, atoms * n]);
                self.q.data_mut().copy_from_slice(heads_in.data());
            }
            Some(d) => {
                let v = d.value.forward(heads_in)?;
                let a = d.advantage.forward(heads_in)?;
                self.q.resize(&[b, atoms * n]);
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
            }
        }
        Ok(&self.q)
    }

    /// The outputs of the last forward pass.
    pub fn outputs(&self) -> &Tensor {
        if self.dueling.is_none() && self.implicit.is_none() {
            self.trunk.output()
        } else {
            &self.q
        }
    }

    /// Q-values `[B, n_actions]` of `B` observations: the outputs
    /// themselves with one atom, else their mean over atoms.
    pub fn q_values(&mut self, values: &Tensor, bytes: &[u8]) -> Result<&Tensor, PolicyError> {
        self.forward(values, bytes)?;
        if self.atoms == 1 && self.implicit.is_none() {
            return Ok(self.outputs());
        }
        let mut expected = std::mem::take(&mut self.expected);
        mean_over_atoms(
            self.outputs(),
            self.last_atoms,
            self.n_actions,
            &mut expected,
        );
        self.expected = expected;
        Ok(&self.expected)
    }

    /// Adds into the parameter gradients the gradient of a loss whose
    /// gradient with respect to the last forward's outputs
    /// (`[B, atoms * n_actions]`) is `grad_q`.
    pub fn backward(&mut self, values: &Tensor, grad_q: &Tensor) -> Result<(), PolicyError> {
        let n = self.n_actions;
        grad_q.expect_matrix("Q-network gradient", self.last_atoms * n)?;
        let trains_features = self.features.has_params();
        let x = self.features.extracted(values);
        let heads_in = match &self.implicit {
            Some(im) => im.net.output(),
            None => self.trunk.output(),
        };
        // The gradient at the heads' input (the trunk's output, or the
        // implicit layers' output).
        let grad_heads_in: &Tensor = match &mut self.dueling {
            None if self.implicit.is_none() => grad_q,
            None => {
                // `[B, n * A]` as the `[B * n, A]` rows of the heads.
                self.grad_rows.resize(&[grad_q.len() / n, n]);
                self.grad_rows.data_mut().copy_from_slice(grad_q.data());
                &self.grad_rows
            }
            Some(d) => {
                // dQ/dV = 1; dQ_j/dA_k = [j = k] - 1/n.
                d.grad_value.resize(d.value.output().shape());
                d.grad_advantage.resize(d.advantage.output().shape());
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
                let gv = d.value.backward(heads_in, &d.grad_value, true)?;
                d.grad_in.copy_from(gv);
                let ga = d.advantage.backward(heads_in, &d.grad_advantage, true)?;
                for (g, &v) in d.grad_in.data_mut().iter_mut().zip(ga.data()) {
                    *g += v;
                }
                &d.grad_in
            }
        };
        let grad_psi = match &mut self.implicit {
            None => grad_heads_in,
            Some(im) => {
                let gz = im.net.backward(&im.product, grad_heads_in, true)?;
                let psi = self.trunk.output();
                let width = psi.cols();
                im.grad_phi.resize(gz.shape());
                im.grad_psi.resize_zeroed(psi.shape());
                let phi = im.embedding.output();
                for (r, ((gz, gphi), phi)) in gz
                    .data()
                    .chunks_exact(width)
                    .zip(im.grad_phi.data_mut().chunks_exact_mut(width))
                    .zip(phi.data().chunks_exact(width))
                    .enumerate()
                {
                    let b = r / im.n;
                    let psi = &psi.data()[b * width..(b + 1) * width];
                    let gpsi = &mut im.grad_psi.data_mut()[b * width..(b + 1) * width];
                    for j in 0..width {
                        gpsi[j] += gz[j] * phi[j];
                        gphi[j] = gz[j] * psi[j];
                    }
                }
                im.embedding.backward(&im.taus, &im.grad_phi, false)?;
                &im.grad_psi
            }
        };
        let g = self.trunk.backward(x, grad_psi, trains_features)?;
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
        if let Some(im) = &self.implicit {
            im.embedding.params("quantile_embedding.", &mut out);
            im.net.params("quantile_net.", &mut out);
        }
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
        if let Some(im) = &mut self.implicit {
            im.embedding.params_mut("quantile_embedding.", &mut out);
            im.net.params_mut("quantile_net.", &mut out);
        }
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
        if let Some(im) = &mut self.implicit {
            im.net.resample_noise(rng);
        }
        if let Some(d) = &mut self.dueling {
            d.value.resample_noise(rng);
            d.advantage.resample_noise(rng);
        }
    }

    /// An implicit network's quantile embedding at its policy fractions,
    /// `phi(tau_k)` `[K, width]`, as its forward pass computes it; `None`
    /// for other networks.
    pub fn policy_embedding(&mut self) -> Result<Option<Tensor>, PolicyError> {
        let Some(im) = &mut self.implicit else {
            return Ok(None);
        };
        let k = im.policy_taus.len();
        let taus = Tensor::from_vec(&[k, 1], im.policy_taus.clone())?;
        Ok(Some(im.embedding.forward(&taus)?.clone()))
    }

    /// Training mode (noisy weights) or evaluation mode (their means).
    pub fn set_training(&mut self, training: bool) {
        self.trunk.set_training(training);
        if let Some(im) = &mut self.implicit {
            im.net.set_training(training);
        }
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
