//! A trained policy loaded from a run directory, without building any
//! environment: the checkpoint declares the policy's spaces and
//! preprocessing ([`PolicyRecord`]) beside its weights.

use std::path::{Path, PathBuf};

use hlynr_env::{FrameStackPolicy, Policy};

use super::build::policy_from_record;
use super::state::saved_run;
use crate::algorithm::PolicyRecord;
use crate::checkpoint::BEST;
use crate::error::{Result, TrainError};
use crate::model_policy::ModelPolicy;
use crate::run::RunDir;
use crate::run_config::RunConfig;

/// A trained policy loaded from a run for evaluation.
#[derive(Debug)]
pub struct LoadedModel {
    /// The run's config.
    pub config: RunConfig,
    /// The checkpoint directory used.
    pub checkpoint: PathBuf,
    /// Env steps of that checkpoint.
    pub env_steps: u64,
    /// The policy (network + frozen observation normaliser), taking the
    /// observation the network was trained on (frames stacked, when the run
    /// stacked them).
    pub policy: ModelPolicy,
    /// The checkpoint's description of the policy: spaces and preprocessing.
    pub record: PolicyRecord,
    /// For a run with a curriculum: the stage whose environment `config`
    /// holds (the final stage), index and name.
    pub stage: Option<(usize, String)>,
    /// The algorithm that wrote the checkpoint, and the policy's weights:
    /// what [`LoadedModel::fresh_policy`] builds more instances from.
    pub algorithm: String,
    pub weights: std::collections::BTreeMap<String, hlynr_nn::Tensor>,
}

impl LoadedModel {
    /// Another instance of the policy, with state of its own, acting on the
    /// env's bare observations (see [`bare_policy`]): for servers that keep
    /// one per episode.
    pub fn fresh_policy(&self) -> Result<Box<dyn Policy>> {
        let snapshot = policy_from_record(&self.algorithm, &self.record, &self.weights)?;
        bare_policy(
            ModelPolicy::new(self.policy.name().to_string(), snapshot),
            &self.record,
        )
    }

    /// Whether the policy keeps state from one step of an episode to the
    /// next (a frame stack or a recurrent network), so that each episode
    /// needs its own instance.
    pub fn keeps_state(&self) -> bool {
        self.record.frame_stack.is_some()
            || (self.algorithm == "ppo" && crate::ppo::algorithm::record_is_recurrent(&self.record))
    }
}

/// Resolves `RUN_DIR` or `RUN_DIR/checkpoints/NAME` to the run directory and
/// the checkpoint directory (`best/` by default, `last/` when there is no
/// `best/`).
pub fn locate_model(path: &Path) -> Result<(PathBuf, PathBuf)> {
    if path.join(crate::run::MANIFEST_FILE).is_file() {
        let ckpts = path.join(crate::run::CHECKPOINTS_DIR);
        for name in [BEST, crate::checkpoint::LAST] {
            if ckpts.join(name).is_dir() {
                return Ok((path.to_path_buf(), ckpts.join(name)));
            }
        }
        return Err(TrainError::invalid(
            format!("model {}", path.display()),
            "the run has neither checkpoints/best nor checkpoints/last",
        ));
    }
    let parent = path.parent().filter(|p| {
        p.file_name()
            .is_some_and(|n| n == crate::run::CHECKPOINTS_DIR)
    });
    if let Some(run) = parent.and_then(Path::parent)
        && run.join(crate::run::MANIFEST_FILE).is_file()
    {
        return Ok((run.to_path_buf(), path.to_path_buf()));
    }
    Err(TrainError::invalid(
        format!("model {}", path.display()),
        "is neither a run directory (with manifest.json) nor RUN_DIR/checkpoints/NAME",
    ))
}

/// Loads the policy of checkpoint `checkpoint_dir` of the run at `run_dir`
/// from the checkpoint alone: no environment is built. For a run with a
/// curriculum the returned config holds the final stage's environment,
/// whatever stage the checkpoint was written at: a model is judged on the
/// task the curriculum leads to.
pub fn load_model(run_dir: &Path, checkpoint_dir: &Path) -> Result<LoadedModel> {
    let run = RunDir::open(run_dir)?;
    let config = RunConfig::from_resolved(&run.read_config()?)?;
    let checkpoint = crate::checkpoint::read_checkpoint(checkpoint_dir)?;
    let saved = saved_run(&checkpoint)?;
    let snapshot = policy_from_record(&saved.algorithm, &saved.policy, &saved.state.weights)
        .map_err(|e| {
            TrainError::invalid(
                format!("checkpoint {}", checkpoint.path.display()),
                e.to_string(),
            )
        })?;
    let name = run.manifest().name.clone();
    let (config, stage) = match &config.curriculum {
        Some(c) => {
            let last = c.final_stage();
            let stage = (
                last,
                config.stage_name(last).unwrap_or_default().to_string(),
            );
            (config.stage_config(last)?, Some(stage))
        }
        None => (config, None),
    };
    Ok(LoadedModel {
        algorithm: saved.algorithm.clone(),
        weights: saved.state.weights.clone(),
        policy: ModelPolicy::new(name, snapshot),
        record: saved.policy,
        stage,
        config,
        checkpoint: checkpoint.path,
        env_steps: checkpoint.env_steps,
    })
}

/// `policy` (a network taking the observation `record` declares) acting on
/// the env's bare observations: with a frame stack, each env row's last `k`
/// frames are stacked as the training env's wrapper stacked them.
pub fn bare_policy(policy: ModelPolicy, record: &PolicyRecord) -> Result<Box<dyn Policy>> {
    record.check()?;
    Ok(match record.frame_stack {
        Some(k) => Box::new(FrameStackPolicy::new(policy, k, &record.observation_space)?),
        None => Box::new(policy),
    })
}
