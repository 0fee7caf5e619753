//! The actor-critic network: trunks, action heads, value head and the
//! optional LSTM core (see the [module docs](super)).

use std::collections::BTreeMap;

use hlynr_env::{ObsRef, Policy, PolicyInput, Space};
use hlynr_nn::{DiagGaussian, Layer, Linear, NamedParam, NamedParamMut, Param, Sequential, Tensor};
use hlynr_rng::Rng;

use super::{PolicyError, load_state_dict_into, state_dict_of, zero_grads};
use hlynr_env::config::Validate;

use super::config::{PolicyConfig, Squash};
use super::features::FeaturesExtractor;
use super::heads::{
    Component, HeadScratch, component_out_offset, components, squash_row, tanh_log_det,
};
use super::mlp::{mlp, orthogonal_linear};
use crate::recurrent::{CRITIC_LSTM_PREFIX, RecurrentCore, SequenceBatch};

/// Actor-critic network with its action distribution (see the module docs).
#[derive(Debug)]
pub struct ActorCritic {
    config: PolicyConfig,
    obs_dim: usize,
    act_dim: usize,
    /// Observation lanes to the features the trunks read.
    features: FeaturesExtractor,
    components: Vec<Component>,
    /// The LSTM front end of a recurrent policy.
    recurrent: Option<RecurrentCore>,
    shared: Sequential,
    pi: Sequential,
    vf: Sequential,
    action_net: Linear,
    value_net: Linear,
    /// State-independent log standard deviation of every Gaussian dimension;
    /// `None` when the action space has no `Box`.
    log_std: Option<Param>,
    heads: Vec<HeadScratch>,
    obs_buf: Tensor,
    grad_out: Tensor,
    grad_feat: Tensor,
    /// Generator of the [`Policy`] implementation's stochastic actions (the
    /// trainer passes its own generator to [`ActorCritic::act`]).
    policy_rng: Rng,
}

impl ActorCritic {
    /// Builds the network for observations of `observation_space` and actions
    /// of `action_space`, with weights drawn from `rng`.
    pub fn new(
        observation_space: &Space,
        action_space: &Space,
        config: &PolicyConfig,
        rng: &mut Rng,
    ) -> Result<Self, PolicyError> {
        config.validate("policy")?;
        let obs_dim = observation_space.flat_dim();
        if obs_dim + observation_space.byte_dim() == 0 {
            return Err(PolicyError::invalid(
                "ActorCritic",
                "observation dimension is 0",
            ));
        }
        let (components, out_dim, n_gauss) = components(action_space, config.squash)?;
        let features =
            FeaturesExtractor::new(observation_space, &config.features, config.ortho_init, rng)?;
        let feat_dim = features.out_dim();
        let recurrent = config
            .recurrent_hidden_size()
            .map(|h| RecurrentCore::new(feat_dim, h, config.shared_lstm, rng));
        let trunk_in = recurrent
            .as_ref()
            .map_or(feat_dim, RecurrentCore::hidden_size);
        let (shared, feat) = mlp(trunk_in, &config.net_arch.shared, config, rng)?;
        let (pi, pi_w) = mlp(feat, &config.net_arch.pi, config, rng)?;
        let (vf, vf_w) = mlp(feat, &config.net_arch.vf, config, rng)?;
        let mut action_net = Linear::new(pi_w, out_dim, rng);
        let mut value_net = Linear::new(vf_w, 1, rng);
        if config.ortho_init {
            orthogonal_linear(&mut action_net, 0.01, rng)?;
            orthogonal_linear(&mut value_net, 1.0, rng)?;
        }
        let log_std = (n_gauss > 0)
            .then(|| Param::trainable(Tensor::full(&[n_gauss], config.log_std_init as f32)));
        let heads = vec![HeadScratch::default(); components.len()];
        Ok(Self {
            config: config.clone(),
            obs_dim,
            act_dim: action_space.flat_dim(),
            features,
            components,
            recurrent,
            shared,
            pi,
            vf,
            action_net,
            value_net,
            log_std,
            heads,
            obs_buf: Tensor::default(),
            grad_out: Tensor::default(),
            grad_feat: Tensor::default(),
            policy_rng: Rng::seed_from_u64(0),
        })
    }

    /// The configuration the network was built from.
    pub fn config(&self) -> &PolicyConfig {
        &self.config
    }

    /// Observation width (the value lane).
    pub fn obs_dim(&self) -> usize {
        self.obs_dim
    }

    /// Observation bytes (the byte lane).
    pub fn obs_bytes(&self) -> usize {
        self.features.bytes_dim()
    }

    /// Flat action width (raw and environment actions have the same layout).
    pub fn act_dim(&self) -> usize {
        self.act_dim
    }

    /// Number of action components (Gaussians and categoricals), each of which
    /// has its own entropy and entropy weight.
    pub fn num_components(&self) -> usize {
        self.components.len()
    }

    /// True when the action distribution has a Gaussian part.
    pub fn has_gaussian(&self) -> bool {
        self.log_std.is_some()
    }

    /// Mean of `exp(log_std)` over Gaussian dimensions (`train/std`), if any.
    pub fn mean_std(&self) -> Option<f64> {
        self.log_std.as_ref().map(|p| {
            let d = p.value.data();
            d.iter().map(|&v| (v as f64).exp()).sum::<f64>() / d.len() as f64
        })
    }

    /// The generator the [`Policy`] implementation samples with.
    pub fn policy_rng(&self) -> &Rng {
        &self.policy_rng
    }

    /// Reseeds the generator the [`Policy`] implementation samples with.
    pub fn set_policy_rng(&mut self, rng: Rng) {
        self.policy_rng = rng;
    }

    /// Every parameter with its PyTorch name, in `state_dict` order.
    pub fn named_params(&self) -> Vec<NamedParam<'_>> {
        let mut out = Vec::new();
        self.features.params(&mut out);
        if let Some(r) = &self.recurrent {
            r.params(&mut out);
        }
        self.shared.params("shared.", &mut out);
        self.pi.params("pi.", &mut out);
        self.vf.params("vf.", &mut out);
        self.action_net.params("action_net.", &mut out);
        self.value_net.params("value_net.", &mut out);
        if let Some(p) = &self.log_std {
            out.push(("log_std".to_string(), p));
        }
        out
    }

    /// Mutable counterpart of [`ActorCritic::named_params`].
    pub fn named_params_mut(&mut self) -> Vec<NamedParamMut<'_>> {
        let mut out = Vec::new();
        self.features.params_mut(&mut out);
        if let Some(r) = &mut self.recurrent {
            r.params_mut(&mut out);
        }
        self.shared.params_mut("shared.", &mut out);
        self.pi.params_mut("pi.", &mut out);
        self.vf.params_mut("vf.", &mut out);
        self.action_net.params_mut("action_net.", &mut out);
        self.value_net.params_mut("value_net.", &mut out);
        if let Some(p) = &mut self.log_std {
            out.push(("log_std".to_string(), p));
        }
        out
    }

    /// Names of the parameters trained with the critic's learning rate (the
    /// value MLP and head, and the critic's own LSTM) and of all others (trunk, policy MLP and head,
    /// `log_std`: trained with the actor's rate).
    pub fn param_groups(&self) -> (Vec<String>, Vec<String>) {
        let (mut actor, mut critic) = (Vec::new(), Vec::new());
        for (name, p) in self.named_params() {
            if !p.is_trainable() {
                continue;
            }
            if name.starts_with("vf.")
                || name.starts_with("value_net.")
                || name.starts_with(CRITIC_LSTM_PREFIX)
            {
                critic.push(name);
            } else {
                actor.push(name);
            }
        }
        (actor, critic)
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

    fn check_obs(&self, context: &str, obs: &Tensor) -> Result<usize, PolicyError> {
        Ok(obs.expect_matrix(context, self.obs_dim)?)
    }

    /// The LSTM front end, for a recurrent policy.
    pub fn recurrent(&self) -> Option<&RecurrentCore> {
        self.recurrent.as_ref()
    }

    /// Mutable access to the LSTM front end (its carried state).
    pub fn recurrent_mut(&mut self) -> Option<&mut RecurrentCore> {
        self.recurrent.as_mut()
    }

    /// Full forward pass on `[B, obs_dim]`: fills the head parameters and the
    /// value output (read with [`ActorCritic::values`]).
    ///
    /// A recurrent network needs to know what the rows are: with `seq`, they
    /// are the time-major training sequences it describes (cached for
    /// [`ActorCritic::backward`]); without, they are one step of the envs
    /// whose state it carries, and that state advances. An MLP takes no `seq`.
    pub fn forward(
        &mut self,
        obs: &Tensor,
        bytes: &[u8],
        seq: Option<&SequenceBatch>,
    ) -> Result<(), PolicyError> {
        self.check_obs("ActorCritic observations", obs)?;
        let obs = self.features.extract(obs, bytes)?;
        let (feat_pi, feat_vf): (&Tensor, &Tensor) = match (&mut self.recurrent, seq) {
            (Some(r), Some(seq)) => r.forward_sequence(obs, seq)?,
            (Some(r), None) => r.step(obs)?,
            (None, Some(_)) => {
                return Err(PolicyError::invalid(
                    "ActorCritic::forward",
                    "training sequences given to a feed-forward network",
                ));
            }
            (None, None) if self.shared.is_empty() => (obs, obs),
            (None, None) => {
                let f = self.shared.forward(obs)?;
                (f, f)
            }
        };
        let latent_pi = self.pi.forward(feat_pi)?;
        let out = self.action_net.forward(latent_pi)?;
        let latent_vf = self.vf.forward(feat_vf)?;
        self.value_net.forward(latent_vf)?;
        // Split the action-net output into the components' parameter tensors.
        let b = out.rows();
        let width = out.cols();
        for (c, h) in self.components.iter().zip(&mut self.heads) {
            let (off, w) = match c {
                Component::Gaussian {
                    out_offset, dim, ..
                } => (*out_offset, *dim),
                Component::Categorical { out_offset, n, .. } => (*out_offset, *n),
            };
            h.params.resize(&[b, w]);
            for (dst, src) in h
                .params
                .data_mut()
                .chunks_exact_mut(w)
                .zip(out.data().chunks_exact(width))
            {
                dst.copy_from_slice(&src[off..off + w]);
            }
            match c {
                Component::Gaussian {
                    std_offset, dim, ..
                } => {
                    h.log_std.resize(&[*dim]);
                    if let Some(ls) = &self.log_std {
                        h.log_std
                            .data_mut()
                            .copy_from_slice(&ls.value.data()[*std_offset..std_offset + dim]);
                    }
                }
                Component::Categorical { .. } => h.categorical.set_logits(&h.params)?,
            }
        }
        Ok(())
    }

    /// Values `[k]` of observations `[k, obs_dim]` of the env rows `rows`
    /// that no action follows (a truncated episode's final observation, the
    /// observation after a rollout): a recurrent network steps its critic from
    /// those rows' carried state without advancing it; an MLP ignores `rows`.
    pub fn forward_values_of_rows(
        &mut self,
        obs: &Tensor,
        bytes: &[u8],
        rows: &[usize],
    ) -> Result<&[f32], PolicyError> {
        self.check_obs("ActorCritic observations", obs)?;
        match &mut self.recurrent {
            Some(r) => {
                let obs = self.features.extract(obs, bytes)?;
                let feat = r.peek_critic(obs, rows)?;
                let latent_vf = self.vf.forward(feat)?;
                Ok(self.value_net.forward(latent_vf)?.data())
            }
            None => self.forward_values(obs, bytes),
        }
    }

    /// Value-only forward pass (trunk, value MLP and head); returns `[B]`
    /// values. Feed-forward networks only (see
    /// [`ActorCritic::forward_values_of_rows`]).
    pub fn forward_values(&mut self, obs: &Tensor, bytes: &[u8]) -> Result<&[f32], PolicyError> {
        self.check_obs("ActorCritic observations", obs)?;
        if self.recurrent.is_some() {
            return Err(PolicyError::invalid(
                "ActorCritic::forward_values",
                "a recurrent network needs the env rows (forward_values_of_rows)",
            ));
        }
        let obs = self.features.extract(obs, bytes)?;
        let feat: &Tensor = if self.shared.is_empty() {
            obs
        } else {
            self.shared.forward(obs)?
        };
        let latent_vf = self.vf.forward(feat)?;
        Ok(self.value_net.forward(latent_vf)?.data())
    }

    /// Values `[B]` of the last [`ActorCritic::forward`].
    pub fn values(&self) -> &[f32] {
        self.value_net.output().data()
    }

    /// Log-probabilities of the raw actions `[B, act_dim]` under the last
    /// [`ActorCritic::forward`] (summed over components, squash correction
    /// included) into `log_prob`, and each component's entropy into the
    /// per-component buffers read by [`ActorCritic::entropy`].
    pub fn evaluate(
        &mut self,
        raw_actions: &Tensor,
        log_prob: &mut [f32],
    ) -> Result<(), PolicyError> {
        let b = self.heads.first().map_or(0, |h| h.params.rows());
        raw_actions.expect_shape("ActorCritic raw actions", &[b, self.act_dim])?;
        if log_prob.len() != b {
            return Err(PolicyError::invalid(
                "ActorCritic::evaluate",
                format!(
                    "log_prob buffer has {} slots for a batch of {b}",
                    log_prob.len()
                ),
            ));
        }
        log_prob.fill(0.0);
        let squash = self.config.squash;
        let act_dim = self.act_dim;
        for (c, h) in self.components.iter().zip(&mut self.heads) {
            h.log_prob.resize(b, 0.0);
            h.entropy.resize(b, 0.0);
            match c {
                Component::Gaussian {
                    act_offset,
                    dim,
                    low,
                    high,
                    ..
                } => {
                    h.actions.resize(&[b, *dim]);
                    for (dst, src) in h
                        .actions
                        .data_mut()
                        .chunks_exact_mut(*dim)
                        .zip(raw_actions.data().chunks_exact(act_dim))
                    {
                        dst.copy_from_slice(&src[*act_offset..act_offset + dim]);
                    }
                    let dist = DiagGaussian::new(&h.params, &h.log_std)?;
                    dist.log_prob(&h.actions, &mut h.log_prob)?;
                    dist.entropy(&mut h.entropy)?;
                    if squash == Squash::Tanh {
                        for (lp, row) in h
                            .log_prob
                            .iter_mut()
                            .zip(h.actions.data().chunks_exact(*dim))
                        {
                            *lp -= tanh_log_det(row, low, high) as f32;
                        }
                    }
                }
                Component::Categorical { act_offset, n, .. } => {
                    h.indices.resize(b, 0);
                    for (idx, row) in h
                        .indices
                        .iter_mut()
                        .zip(raw_actions.data().chunks_exact(act_dim))
                    {
                        let v = row[*act_offset];
                        if !(v >= 0.0 && v < *n as f32 && v.fract() == 0.0) {
                            return Err(PolicyError::invalid(
                                "ActorCritic raw actions",
                                format!("category {v} is not an index in 0..{n}"),
                            ));
                        }
                        *idx = v as usize;
                    }
                    h.categorical.log_prob(&h.indices, &mut h.log_prob)?;
                    h.categorical.entropy(&mut h.entropy)?;
                }
            }
            for (o, &l) in log_prob.iter_mut().zip(&h.log_prob) {
                *o += l;
            }
        }
        Ok(())
    }

    /// Per-sample entropy of component `c` from the last [`ActorCritic::evaluate`].
    pub fn entropy(&self, c: usize) -> &[f32] {
        &self.heads[c].entropy
    }

    /// Backward pass of the last `forward` + `evaluate`: adds into the
    /// parameter gradients the gradient of
    /// `sum_n d_log_prob[n] log_prob[n] + sum_c sum_n d_entropy[c][n] H_c[n]
    ///  + sum_n d_value[n] V[n]`.
    pub fn backward(
        &mut self,
        obs: &Tensor,
        d_log_prob: &[f32],
        d_entropy: &[&[f32]],
        d_value: &Tensor,
        seq: Option<&SequenceBatch>,
    ) -> Result<(), PolicyError> {
        if self.recurrent.is_some() != seq.is_some() {
            return Err(PolicyError::invalid(
                "ActorCritic::backward",
                "a recurrent network trains on sequences, a feed-forward one on single steps",
            ));
        }
        let b = self.check_obs("ActorCritic backward observations", obs)?;
        if d_entropy.len() != self.components.len() {
            return Err(PolicyError::invalid(
                "ActorCritic::backward",
                format!(
                    "{} entropy weight vectors for {} components",
                    d_entropy.len(),
                    self.components.len()
                ),
            ));
        }
        d_value.expect_shape("ActorCritic d_value", &[b, 1])?;
        let out_width = self.action_net.out_features();
        self.grad_out.resize_zeroed(&[b, out_width]);
        for ((c, h), d_ent) in self.components.iter().zip(&mut self.heads).zip(d_entropy) {
            h.grad_params.resize_zeroed(h.params.shape());
            match c {
                Component::Gaussian {
                    std_offset, dim, ..
                } => {
                    h.grad_log_std.resize_zeroed(&[*dim]);
                    let dist = DiagGaussian::new(&h.params, &h.log_std)?;
                    dist.backward(
                        &h.actions,
                        Some(d_log_prob),
                        Some(d_ent),
                        &mut h.grad_params,
                        &mut h.grad_log_std,
                    )?;
                    if let Some(ls) = &mut self.log_std {
                        for (g, &d) in ls.grad.data_mut()[*std_offset..std_offset + dim]
                            .iter_mut()
                            .zip(h.grad_log_std.data())
                        {
                            *g += d;
                        }
                    }
                }
                Component::Categorical { .. } => {
                    h.categorical.backward(
                        Some(&h.indices),
                        Some(d_log_prob),
                        Some(d_ent),
                        &mut h.grad_params,
                    )?;
                }
            }
            let (off, w) = (component_out_offset(c), h.params.cols());
            for (dst, src) in self
                .grad_out
                .data_mut()
                .chunks_exact_mut(out_width)
                .zip(h.grad_params.data().chunks_exact(w))
            {
                dst[off..off + w].copy_from_slice(src);
            }
        }
        if let Some(r) = &mut self.recurrent {
            let [feat_pi, feat_vf] = r.features();
            let g_latent_pi = self
                .action_net
                .backward(self.pi.output(), &self.grad_out, true)?;
            self.pi.backward(feat_pi, g_latent_pi, true)?;
            let g_latent_vf = self.value_net.backward(self.vf.output(), d_value, true)?;
            self.vf.backward(feat_vf, g_latent_vf, true)?;
            let trains_features = self.features.has_params();
            if let Some(g) =
                r.backward_sequence(self.pi.input_grad(), self.vf.input_grad(), trains_features)?
            {
                self.features.backward(g)?;
            }
            return Ok(());
        }
        let trains_features = self.features.has_params();
        let input = self.features.extracted(obs);
        let need_feat_grad = !self.shared.is_empty() || trains_features;
        let feat: &Tensor = if self.shared.is_empty() {
            input
        } else {
            self.shared.output()
        };
        let g_latent_pi = self
            .action_net
            .backward(self.pi.output(), &self.grad_out, true)?;
        self.pi.backward(feat, g_latent_pi, need_feat_grad)?;
        let g_latent_vf = self.value_net.backward(self.vf.output(), d_value, true)?;
        self.vf.backward(feat, g_latent_vf, need_feat_grad)?;
        if need_feat_grad {
            self.grad_feat.copy_from(self.pi.input_grad());
            for (g, &v) in self
                .grad_feat
                .data_mut()
                .iter_mut()
                .zip(self.vf.input_grad().data())
            {
                *g += v;
            }
            let grad_features = if self.shared.is_empty() {
                &self.grad_feat
            } else {
                self.shared
                    .backward(input, &self.grad_feat, trains_features)?
            };
            if trains_features {
                self.features.backward(grad_features)?;
            }
        }
        Ok(())
    }

    /// Batched action selection for `n` environments from observations
    /// (`[n, obs_dim]` values, `[n, obs_bytes]` bytes): writes the raw
    /// actions (stored for training), the environment actions (squashed /
    /// clipped), the joint log-probabilities and the values. Stochastic actions draw from `rng`; `deterministic`
    /// takes the mode. Allocates nothing once the buffers have their size.
    #[allow(clippy::too_many_arguments)]
    pub fn act(
        &mut self,
        obs: ObsRef<'_>,
        n: usize,
        deterministic: bool,
        rng: &mut Rng,
        raw_actions: &mut [f32],
        env_actions: &mut [f32],
        log_prob: &mut [f32],
        values: &mut [f32],
    ) -> Result<(), PolicyError> {
        let ad = self.act_dim;
        if obs.values.len() != n * self.obs_dim
            || obs.bytes.len() != n * self.obs_bytes()
            || raw_actions.len() != n * ad
            || env_actions.len() != n * ad
            || log_prob.len() != n
            || values.len() != n
        {
            return Err(PolicyError::invalid(
                "ActorCritic::act",
                format!(
                    "buffers for {n} rows: obs {} values and {} bytes (want {} and {}), raw actions {} and env actions {} (want {}), log_prob {} and values {} (want {n})",
                    obs.values.len(),
                    obs.bytes.len(),
                    n * self.obs_dim,
                    n * self.obs_bytes(),
                    raw_actions.len(),
                    env_actions.len(),
                    n * ad,
                    log_prob.len(),
                    values.len()
                ),
            ));
        }
        let mut obs_buf = std::mem::take(&mut self.obs_buf);
        obs_buf.resize(&[n, self.obs_dim]);
        obs_buf.data_mut().copy_from_slice(obs.values);
        let result = self.forward(&obs_buf, obs.bytes, None);
        self.obs_buf = obs_buf;
        result?;
        values.copy_from_slice(self.values());
        let squash = self.config.squash;
        for (c, h) in self.components.iter().zip(&mut self.heads) {
            match c {
                Component::Gaussian {
                    act_offset, dim, ..
                } => {
                    if deterministic {
                        h.actions.copy_from(&h.params);
                    } else {
                        DiagGaussian::new(&h.params, &h.log_std)?.sample(rng, &mut h.actions);
                    }
                    for (dst, src) in raw_actions
                        .chunks_exact_mut(ad)
                        .zip(h.actions.data().chunks_exact(*dim))
                    {
                        dst[*act_offset..act_offset + dim].copy_from_slice(src);
                    }
                }
                Component::Categorical { act_offset, .. } => {
                    h.indices.resize(n, 0);
                    if deterministic {
                        h.categorical.mode(&mut h.indices)?;
                    } else {
                        h.categorical.sample(rng, &mut h.indices)?;
                    }
                    for (dst, &i) in raw_actions.chunks_exact_mut(ad).zip(&h.indices) {
                        dst[*act_offset] = i as f32;
                    }
                }
            }
        }
        let mut raw = std::mem::take(&mut self.grad_out);
        raw.resize(&[n, ad]);
        raw.data_mut().copy_from_slice(raw_actions);
        let result = self.evaluate(&raw, log_prob);
        self.grad_out = raw;
        result?;
        env_actions.copy_from_slice(raw_actions);
        for c in &self.components {
            if let Component::Gaussian {
                act_offset,
                dim,
                low,
                high,
                ..
            } = c
            {
                for row in env_actions.chunks_exact_mut(ad) {
                    squash_row(squash, &mut row[*act_offset..act_offset + dim], low, high);
                }
            }
        }
        Ok(())
    }
}

/// A trained network used as an evaluation [`Policy`]: batched inference on
/// the observations it is given (already normalised by the caller's frozen
/// normaliser, if the run used one).
impl Policy for ActorCritic {
    fn name(&self) -> &str {
        "ppo"
    }

    fn act(
        &mut self,
        input: &PolicyInput<'_>,
        deterministic: bool,
        actions: &mut [f32],
    ) -> Result<(), String> {
        let n = input.n;
        // Scratch for the outputs the evaluator does not need.
        let mut raw = vec![0.0f32; n * self.act_dim];
        let mut log_prob = vec![0.0f32; n];
        let mut values = vec![0.0f32; n];
        let mut rng = std::mem::replace(&mut self.policy_rng, Rng::seed_from_u64(0));
        let result = ActorCritic::act(
            self,
            input.observations(),
            n,
            deterministic,
            &mut rng,
            &mut raw,
            actions,
            &mut log_prob,
            &mut values,
        );
        self.policy_rng = rng;
        result.map_err(|e| e.to_string())
    }

    /// Starts the episodes of `rows`: a recurrent network forgets their memory.
    fn reset_rows(&mut self, rows: &[usize]) {
        if let Some(r) = &mut self.recurrent {
            r.reset_rows(rows);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::config::NetArch;
    use super::super::heads::log_one_minus_tanh_sq;
    use super::*;

    fn obs3() -> Space {
        Space::uniform_box(-1.0, 1.0, &[3])
    }

    fn net(space: &Space, config: &PolicyConfig) -> ActorCritic {
        ActorCritic::new(&obs3(), space, config, &mut Rng::seed_from_u64(1)).unwrap()
    }

    #[test]
    fn names_follow_pytorch_and_groups_split_actor_and_critic() {
        let cfg = PolicyConfig {
            net_arch: NetArch {
                shared: vec![8],
                pi: vec![4],
                vf: vec![5],
            },
            layer_norm: true,
            ..PolicyConfig::default()
        };
        let n = net(&Space::uniform_box(-1.0, 1.0, &[2]), &cfg);
        let names: Vec<String> = n.named_params().into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            names,
            [
                "shared.0.weight",
                "shared.0.bias",
                "shared.1.weight",
                "shared.1.bias",
                "pi.0.weight",
                "pi.0.bias",
                "pi.1.weight",
                "pi.1.bias",
                "vf.0.weight",
                "vf.0.bias",
                "vf.1.weight",
                "vf.1.bias",
                "action_net.weight",
                "action_net.bias",
                "value_net.weight",
                "value_net.bias",
                "log_std"
            ]
        );
        let (actor, critic) = n.param_groups();
        assert!(
            critic
                .iter()
                .all(|c| c.starts_with("vf.") || c.starts_with("value_net."))
        );
        assert!(
            actor.contains(&"log_std".to_string())
                && actor.contains(&"shared.0.weight".to_string())
        );
        assert_eq!(actor.len() + critic.len(), names.len());
    }

    #[test]
    fn orthogonal_init_uses_sb3_gains() {
        let n = net(&Space::Discrete { n: 2 }, &PolicyConfig::default());
        let sd = n.state_dict();
        // Rows of a wide orthogonal matrix have norm `gain`.
        let w = &sd["action_net.weight"];
        for r in 0..2 {
            let norm: f32 = w.row(r).iter().map(|v| v * v).sum::<f32>().sqrt();
            assert!((norm - 0.01).abs() < 1e-5, "{norm}");
        }
        let w = &sd["value_net.weight"];
        let norm: f32 = w.row(0).iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "{norm}");
        // pi.0 is 64 x 3 (tall): columns have norm sqrt(2).
        let w = &sd["pi.0.weight"];
        let col0: f32 = (0..64).map(|r| w.row(r)[0].powi(2)).sum::<f32>().sqrt();
        assert!((col0 - std::f32::consts::SQRT_2).abs() < 1e-4, "{col0}");
        assert!(sd["pi.0.bias"].data().iter().all(|&b| b == 0.0));
    }

    #[test]
    fn squash_modes_map_samples_to_bounds_and_reject_bad_spaces() {
        let space = Space::box_1d(vec![-2.0, 0.0], vec![2.0, 1.0]);
        let bad = PolicyConfig {
            squash: Squash::None,
            ..PolicyConfig::default()
        };
        assert!(
            ActorCritic::new(&obs3(), &space, &bad, &mut Rng::seed_from_u64(0))
                .unwrap_err()
                .to_string()
                .contains("clip")
        );
        let unbounded = Space::uniform_box(f32::NEG_INFINITY, f32::INFINITY, &[1]);
        let tanh = PolicyConfig {
            squash: Squash::Tanh,
            ..PolicyConfig::default()
        };
        assert!(ActorCritic::new(&obs3(), &unbounded, &tanh, &mut Rng::seed_from_u64(0)).is_err());
        let mut row = [5.0f32, -3.0];
        squash_row(Squash::Clip, &mut row, &[-2.0, 0.0], &[2.0, 1.0]);
        assert_eq!(row, [2.0, 0.0]);
        let mut row = [0.0f32, 100.0];
        squash_row(Squash::Tanh, &mut row, &[-2.0, 0.0], &[2.0, 1.0]);
        assert_eq!(row, [0.0, 1.0]);
        assert!((log_one_minus_tanh_sq(0.3) - (1.0 - 0.3f64.tanh().powi(2)).ln()).abs() < 1e-12);
        assert!(log_one_minus_tanh_sq(50.0).is_finite());
    }

    #[test]
    fn hybrid_act_writes_valid_actions_and_consistent_log_probs() {
        let space = Space::Tuple {
            spaces: vec![
                Space::uniform_box(-1.0, 1.0, &[2]),
                Space::Discrete { n: 3 },
            ],
        };
        let mut n = net(&space, &PolicyConfig::default());
        assert_eq!(n.num_components(), 2);
        // Head outputs fixed by the parameters: Gaussian means `mu`, standard
        // deviations `exp(log_std)` and logits `l`, whatever the observation.
        let (mu, log_std, logits) = ([0.3f32, -0.4], [-0.5f32, 0.2], [0.0f32, 1.0, -2.0]);
        for (name, p) in n.named_params_mut() {
            match name.as_str() {
                "action_net.weight" => p.value.fill_zero(),
                "action_net.bias" => {
                    p.value.data_mut()[..2].copy_from_slice(&mu);
                    p.value.data_mut()[2..].copy_from_slice(&logits);
                }
                "log_std" => p.value.data_mut().copy_from_slice(&log_std),
                _ => {}
            }
        }
        let obs = [0.1f32, -0.2, 0.3, 1.0, 0.5, -1.0];
        let (mut raw, mut env, mut lp, mut v) =
            ([0.0f32; 6], [0.0f32; 6], [0.0f32; 2], [0.0f32; 2]);
        let mut rng = Rng::seed_from_u64(3);
        n.act(
            ObsRef::values(&obs),
            2,
            false,
            &mut rng,
            &mut raw,
            &mut env,
            &mut lp,
            &mut v,
        )
        .unwrap();
        for r in 0..2 {
            space.check(&env[r * 3..r * 3 + 3]).unwrap();
        }
        // The joint log-prob recomputed from the closed forms: the unclipped
        // Gaussian sample's density plus the chosen category's log-softmax.
        let log_z = logits.iter().map(|&l| (l as f64).exp()).sum::<f64>().ln();
        for r in 0..2 {
            let row = &raw[r * 3..r * 3 + 3];
            let gaussian: f64 = (0..2)
                .map(|j| {
                    let z = (row[j] as f64 - mu[j] as f64) / (log_std[j] as f64).exp();
                    -0.5 * z * z - log_std[j] as f64 - 0.5 * (2.0 * std::f64::consts::PI).ln()
                })
                .sum();
            let category = row[2] as usize;
            assert_eq!(row[2], category as f32, "category index {}", row[2]);
            let expected = gaussian + logits[category] as f64 - log_z;
            assert!(
                (lp[r] as f64 - expected).abs() < 1e-5,
                "row {r}: log-prob {} vs {expected}",
                lp[r]
            );
            // Sent actions: the clipped Gaussian sample and the category.
            for j in 0..2 {
                assert_eq!(env[r * 3 + j], row[j].clamp(-1.0, 1.0));
            }
            assert_eq!(env[r * 3 + 2], row[2]);
        }
        // Deterministic actions are repeatable and do not touch the generator.
        let before = rng.clone();
        let mut env2 = [0.0f32; 6];
        n.act(
            ObsRef::values(&obs),
            2,
            true,
            &mut rng,
            &mut raw,
            &mut env,
            &mut lp,
            &mut v,
        )
        .unwrap();
        n.act(
            ObsRef::values(&obs),
            2,
            true,
            &mut rng,
            &mut raw,
            &mut env2,
            &mut lp,
            &mut v,
        )
        .unwrap();
        assert_eq!(env, env2);
        assert_eq!(rng, before);
    }

    #[test]
    fn state_dict_round_trips_and_rejects_mismatches() {
        let space = Space::Discrete { n: 2 };
        let a = net(&space, &PolicyConfig::default());
        let mut b = ActorCritic::new(
            &obs3(),
            &space,
            &PolicyConfig::default(),
            &mut Rng::seed_from_u64(9),
        )
        .unwrap();
        assert_ne!(a.state_dict(), b.state_dict());
        b.load_state_dict(&a.state_dict()).unwrap();
        assert_eq!(a.state_dict(), b.state_dict());
        let mut bad = a.state_dict();
        bad.insert("extra".into(), Tensor::zeros(&[1]));
        bad.remove("pi.0.bias");
        let e = b.load_state_dict(&bad).unwrap_err().to_string();
        assert!(e.contains("extra") && e.contains("pi.0.bias"), "{e}");
    }

    #[test]
    fn net_arch_accepts_list_or_mapping_strictly() {
        let a: NetArch = serde_json::from_str("[32, 16]").unwrap();
        assert_eq!(a.pi, vec![32, 16]);
        assert_eq!(a.vf, vec![32, 16]);
        let b: NetArch = serde_json::from_str(r#"{"shared":[8],"vf":[4]}"#).unwrap();
        assert_eq!((b.shared, b.pi, b.vf), (vec![8], vec![], vec![4]));
        assert!(serde_json::from_str::<NetArch>(r#"{"policy":[8]}"#).is_err());
    }
}
