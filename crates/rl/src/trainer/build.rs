//! What the trainer builds from a run's config: the algorithm it names and
//! the environments of every curriculum stage.

use std::collections::BTreeMap;

use hlynr_env::BatchEnv;
use hlynr_nn::Tensor;

use crate::algorithm::{Algorithm, PolicyRecord, PolicySnapshot};
use crate::dqn::Dqn;
use crate::env_factory::EnvFactory;
use crate::error::{Result, TrainError};
use crate::ppo::Ppo;
use crate::run_config::{AlgoName, RunConfig};

/// Builds a run's algorithm over its training batch (`config.n_envs` envs,
/// episode metrics recorded).
pub type AlgorithmBuilder = fn(&RunConfig, Box<dyn BatchEnv>) -> Result<Box<dyn Algorithm>>;

/// The algorithm `config.algo` names, with its section's hyperparameters.
pub fn build_algorithm(config: &RunConfig, batch: Box<dyn BatchEnv>) -> Result<Box<dyn Algorithm>> {
    match config.algo {
        AlgoName::Ppo => Ok(Box::new(Ppo::new(
            config.ppo_config()?.clone(),
            batch,
            config.seed,
            config.total_timesteps,
        )?)),
        AlgoName::Dqn => Ok(Box::new(Dqn::new(
            config.dqn.clone().unwrap_or_default(),
            batch,
            config.seed,
            config.total_timesteps,
        )?)),
    }
}

/// The policy a checkpoint of algorithm `algorithm` describes, from its
/// record and weights alone (no environment).
pub fn policy_from_record(
    algorithm: &str,
    record: &PolicyRecord,
    weights: &BTreeMap<String, Tensor>,
) -> Result<PolicySnapshot> {
    match algorithm {
        "ppo" => crate::ppo::algorithm::policy_from_record(record, weights),
        "dqn" => crate::dqn::policy_from_record(record, weights),
        other => Err(TrainError::invalid(
            "policy",
            format!(
                "the checkpoint holds a policy of algorithm `{other}`, which this hlynr cannot load (known: ppo, dqn)"
            ),
        )),
    }
}

/// Builds the environment factory of every stage of `config` with
/// `factory_for` and
/// one evaluation environment of each, so a bad stage override fails
/// before training, naming the stage.
pub fn stage_factories<F>(config: &RunConfig, factory_for: F) -> Result<Vec<Box<dyn EnvFactory>>>
where
    F: Fn(&RunConfig) -> Result<Box<dyn EnvFactory>>,
{
    (0..config.stage_count())
        .map(|i| {
            let context = |e: &dyn std::fmt::Display| {
                TrainError::invalid(
                    format!(
                        "curriculum.stages[{i}] (`{}`)",
                        config.stage_name(i).unwrap_or_default()
                    ),
                    e.to_string(),
                )
            };
            let stage = config.stage_config(i)?;
            let factory = factory_for(&stage);
            if config.curriculum.is_none() {
                return factory;
            }
            let factory = factory.map_err(|e| context(&e))?;
            factory.make_eval().map_err(|e| context(&e))?;
            Ok(factory)
        })
        .collect()
}
