//! PPO as an [`Algorithm`] the trainer drives.

use hlynr_env::BatchEnv;
use hlynr_rng::Rng;

use super::{Ppo, PpoError, PpoMeta, PpoState};
use crate::algorithm::{Algorithm, AlgorithmState, Iteration, PolicySnapshot};
use crate::error::{Result, TrainError};
use crate::policy_net::ActorCritic;

impl From<PpoError> for TrainError {
    fn from(e: PpoError) -> Self {
        TrainError::Algorithm(Box::new(e))
    }
}

impl PpoState {
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

impl<B: BatchEnv> Ppo<B> {
    /// A copy of the current network and observation normaliser.
    pub fn policy_snapshot(&self) -> std::result::Result<PolicySnapshot, PpoError> {
        let env = self.env();
        // The initialisation draw is overwritten by the copied weights.
        let mut net = ActorCritic::new(
            env.obs_dim(),
            env.action_space(),
            &self.config.policy,
            &mut Rng::seed_from_u64(0),
        )?;
        net.load_state_dict(&self.net.state_dict())?;
        net.set_policy_rng(self.net.policy_rng().clone());
        Ok(PolicySnapshot {
            obs_dim: net.obs_dim(),
            net: Box::new(net),
            normalizer: env.obs_normalizer().cloned(),
        })
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
        let state = Ppo::export_state(self)?;
        let meta = serde_json::to_value(&state.meta)
            .map_err(|e| TrainError::invalid("PPO state", e.to_string()))?;
        Ok(AlgorithmState {
            weights: state.weights,
            optimizer: state.optimizer,
            meta,
        })
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
        Ok(self.policy_snapshot()?)
    }
}
