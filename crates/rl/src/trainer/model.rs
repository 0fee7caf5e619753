//! A trained policy loaded from a run directory for evaluation.

use std::path::{Path, PathBuf};

use super::build::build_algorithm;
use super::state::saved_run;
use crate::checkpoint::BEST;
use crate::env_factory::EnvFactory;
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
    /// The policy (network + frozen observation normaliser).
    pub policy: ModelPolicy,
    /// For a run with a curriculum: the stage whose environment `config`
    /// holds (the final stage), index and name.
    pub stage: Option<(usize, String)>,
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

/// Loads the policy of checkpoint `checkpoint_dir` of the run at `run_dir`,
/// with the run's own config and normaliser statistics. `factory_for`
/// builds the environments from the run's config. For a run with a
/// curriculum the returned config holds the final stage's environment,
/// whatever stage the checkpoint was written at: a model is judged on the
/// task the curriculum leads to.
pub fn load_model<F>(run_dir: &Path, checkpoint_dir: &Path, factory_for: F) -> Result<LoadedModel>
where
    F: Fn(&RunConfig) -> Result<Box<dyn EnvFactory>>,
{
    let run = RunDir::open(run_dir)?;
    let config = RunConfig::from_resolved(&run.read_config()?)?;
    let checkpoint = crate::checkpoint::read_checkpoint(checkpoint_dir)?;
    let saved = saved_run(&checkpoint)?;
    // The checkpoint's environment state belongs to its own stage's batch.
    let factory = factory_for(&config.stage_config(saved.trainer.stage)?)?;
    let batch = factory.make_train(config.n_envs)?;
    let mut algorithm = build_algorithm(&config, batch)?;
    algorithm.import_state(&saved.state)?;
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
        policy: ModelPolicy::new(name, algorithm.policy()?),
        stage,
        config,
        checkpoint: checkpoint.path,
        env_steps: checkpoint.env_steps,
    })
}
