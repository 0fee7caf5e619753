//! PPO as an [`Algorithm`] the trainer drives.

use std::collections::BTreeMap;

use hlynr_env::BatchEnv;
use hlynr_nn::Tensor;
use hlynr_rng::Rng;
use serde::{Deserialize, Serialize};

use super::{Ppo, PpoError, PpoMeta, PpoState};
use crate::algorithm::{Algorithm, AlgorithmState, Iteration, PolicyRecord, PolicySnapshot};
use crate::error::{Result, TrainError};
use crate::policy::{ActorCritic, PolicyConfig};

/// PPO's [`PolicyRecord::network`]: how to rebuild the actor-critic.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct NetworkRecord {
    /// The `ppo.policy` config the network was built from.
    policy: PolicyConfig,
    /// The network's own sampling generator (stochastic actions).
    policy_rng: Rng,
}

impl From<PpoError> for TrainError {
    fn from(e: PpoError) -> Self {
        TrainError::Algorithm(Box::new(e))
    }
}

impl PpoState {
    /// The generic form a checkpoint stores.
    pub fn into_generic(self) -> std::result::Result<AlgorithmState, PpoError> {
        let meta = serde_json::to_value(&self.meta)
            .map_err(|e| PpoError::State(format!("PPO state: {e}")))?;
        Ok(AlgorithmState {
            weights: self.weights,
            optimizer: self.optimizer,
            meta,
        })
    }

    /// PPO's state from a checkpoint's generic one.
    pub fn from_generic(state: &AlgorithmState) -> std::result::Result<Self, PpoError> {
        let meta: PpoMeta = serde_json::from_value(state.meta.clone())
            .map_err(|e| PpoError::State(format!("PPO state: {e}")))?;
        Ok(PpoState {
            weights: state.weights.clone(),
            optimizer: state.optimizer.clone(),
            meta,
        })
    }
}

/// The `ppo.policy` config of the network `record` describes.
pub fn record_policy_config(record: &PolicyRecord) -> Result<PolicyConfig> {
    Ok(record.network_as::<NetworkRecord>("PPO")?.policy)
}

/// Whether the network `record` describes is recurrent (an unreadable
/// record counts as not: loading it fails with the reason).
pub fn record_is_recurrent(record: &PolicyRecord) -> bool {
    record
        .network_as::<NetworkRecord>("PPO")
        .is_ok_and(|n| n.policy.recurrent_hidden_size().is_some())
}

/// The network of `record` with `weights`, without any environment. Weights
/// that do not fit the declared spaces are an error naming the spaces and
/// each tensor's saved and expected shapes.
pub fn policy_from_record(
    record: &PolicyRecord,
    weights: &BTreeMap<String, Tensor>,
) -> Result<PolicySnapshot> {
    let network: NetworkRecord = record.network_as("PPO")?;
    // The initialisation draw is overwritten by the weights.
    let mut net = ActorCritic::new(
        &record.observation_space,
        &record.action_space,
        &network.policy,
        &mut Rng::seed_from_u64(0),
    )
    .map_err(PpoError::from)?;
    net.load_state_dict(weights)
        .map_err(|e| record.misfit("PPO", e))?;
    net.set_policy_rng(network.policy_rng);
    Ok(PolicySnapshot {
        net: Box::new(net),
        obs_dim: record.observation_space.flat_dim(),
        obs_bytes: record.observation_space.byte_dim(),
        normalizer: record.obs_normalizer.clone(),
    })
}

impl<B: BatchEnv> Ppo<B> {
    /// The description of the current network a checkpoint stores.
    pub fn policy_record(&self) -> std::result::Result<PolicyRecord, PpoError> {
        let network = serde_json::to_value(NetworkRecord {
            policy: self.config.policy.clone(),
            policy_rng: self.net.policy_rng().clone(),
        })
        .map_err(|e| PpoError::State(e.to_string()))?;
        Ok(PolicyRecord {
            observation_space: self.env.observation_space().clone(),
            action_space: self.env.action_space().clone(),
            frame_stack: None,
            obs_normalizer: self.env.obs_normalizer().cloned(),
            network,
        })
    }

    /// A copy of the current network and observation normaliser.
    pub fn policy_snapshot(&self) -> Result<PolicySnapshot> {
        policy_from_record(&self.policy_record()?, &self.net.state_dict())
    }
}

impl Algorithm for Ppo<Box<dyn BatchEnv>> {
    fn name(&self) -> &'static str {
        "ppo"
    }

    fn iterate(&mut self) -> Result<Iteration> {
        let m = Ppo::iterate(self)?;
        Ok(Iteration {
            scalars: m
                .scalars()
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            nonfinite_skip: m.nonfinite_skipped.then_some(m.nonfinite_skips),
        })
    }

    fn num_timesteps(&self) -> u64 {
        self.counters.num_timesteps
    }

    fn nonfinite_skips(&self) -> u64 {
        self.counters.nonfinite_skips
    }

    fn export_state(&self) -> Result<AlgorithmState> {
        Ok(Ppo::export_state(self)?.into_generic()?)
    }

    fn import_state(&mut self, state: &AlgorithmState) -> Result<()> {
        Ok(Ppo::import_state(self, &PpoState::from_generic(state)?)?)
    }

    fn roll_back_to(&mut self, state: &AlgorithmState, lr_factor: f64) -> Result<()> {
        Ok(Ppo::roll_back_to(
            self,
            &PpoState::from_generic(state)?,
            lr_factor,
        )?)
    }

    fn lr_scale(&self) -> f64 {
        self.lr_scale
    }

    fn replace_env_batch(&mut self, batch: Box<dyn BatchEnv>, seed: u64) -> Result<()> {
        Ok(Ppo::replace_env_batch(self, batch, seed)?)
    }

    fn policy(&self) -> Result<PolicySnapshot> {
        self.policy_snapshot()
    }

    fn policy_record(&self) -> Result<PolicyRecord> {
        Ok(Ppo::policy_record(self)?)
    }
}
