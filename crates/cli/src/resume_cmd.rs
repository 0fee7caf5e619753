//! `hlynr resume`: continues a run from its newest valid checkpoint, exactly
//! as if it had never stopped, or from step 0 when it stopped before writing
//! one.

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;
use hlynr_rl::progress::ProgressMode;
use hlynr_rl::signals::StopSignal;
use hlynr_rl::trainer::{TrainOutcome, Trainer};

use hlynr_envs::Registry;

use crate::train_cmd::{parse_progress, report};

/// Arguments of `hlynr resume`.
#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// The run directory (`runs/<name>-<time>`).
    pub run_dir: PathBuf,
    /// Stop after N env steps in total (default: total_timesteps).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub steps: Option<u64>,
    /// Progress display: bar, quiet or json.
    #[arg(long, default_value = "bar", value_parser = parse_progress)]
    pub progress: ProgressMode,
}

/// Runs `hlynr resume`.
pub fn run(args: &ResumeArgs, registry: &Registry) -> Result<()> {
    // A run over a Python env resumes under the Python package; a run
    // directory without a readable config fails below with the details.
    let config_path = args.run_dir.join(hlynr_rl::run::CONFIG_FILE);
    if let Ok(config) = hlynr_rl::run::read_config(&config_path)
        .map_err(anyhow::Error::from)
        .and_then(|v| Ok(hlynr_rl::trainer::RunConfig::from_resolved(&v)?))
    {
        crate::python_env::ensure_hosted(&config, registry)?;
    }
    let stop = StopSignal::install()?;
    let command_line = std::env::args().collect();
    resume_run(
        &args.run_dir,
        args.steps,
        args.progress,
        command_line,
        registry,
        &stop,
    )
    .map(drop)
}

/// Continues the run at `run_dir` until done, `steps` or a stop request on
/// `stop`, reporting on stderr as `hlynr resume` does. Returns how the
/// segment ended.
pub fn resume_run(
    run_dir: &Path,
    steps: Option<u64>,
    progress: ProgressMode,
    command_line: Vec<String>,
    registry: &Registry,
    stop: &StopSignal,
) -> Result<TrainOutcome> {
    let (mut trainer, found) =
        Trainer::resume(run_dir, |c| registry.factory_for(c), command_line, progress)?;
    for repair in &found.repairs {
        eprintln!("repaired: {repair}");
    }
    for (path, reason) in &found.rejected {
        eprintln!("skipping damaged checkpoint {}: {reason}", path.display());
    }
    match &found.checkpoint {
        Some(checkpoint) => eprintln!(
            "resuming {} from {} at {} env steps",
            trainer.run_dir().display(),
            checkpoint.display(),
            found.env_steps
        ),
        None => eprintln!(
            "{} stopped before its first checkpoint: starting over from step 0 with its config.yaml",
            trainer.run_dir().display()
        ),
    }
    let outcome = trainer.train(steps, Some(stop))?;
    report(trainer.run_dir(), &outcome);
    crate::train_cmd::final_evaluation(trainer.run_dir(), trainer.config(), &outcome, registry)?;
    Ok(outcome)
}
