//! `hlynr train`: resolves a training config, creates a run directory and
//! trains PPO in it (see docs/runs.md for what the run holds).
//!
//! Environments come from the registry in `hlynr-envs`: the classic-control
//! ids (`CartPole-v1`, ...) and `env.id: intercept`, built from
//! `env.settings` (`scenario` and `set`, see [`hlynr_envs::ScenarioSettings`]).

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;
use hlynr_envs::{Registry, load_config};
use hlynr_rl::progress::ProgressMode;
use hlynr_rl::signals::StopSignal;
use hlynr_rl::trainer::{RunConfig, RunLocation, TrainOutcome, TrainStatus, Trainer};

/// Arguments of `hlynr train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Training config (YAML): `env`, `ppo`, `seed`, `run`.
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Config override `key=value` (repeatable), e.g. `--set n_envs=4`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Run name (default: the config file's stem).
    #[arg(long)]
    pub name: Option<String>,
    /// Parent directory of run directories.
    #[arg(long, value_name = "DIR", default_value = "runs")]
    pub runs_dir: PathBuf,
    /// Progress display: bar, quiet or json (one JSON object per update on stdout).
    #[arg(long, default_value = "bar", value_parser = parse_progress)]
    pub progress: ProgressMode,
    /// Stop after N env steps (at most total_timesteps; the schedules
    /// keep total_timesteps as their horizon, so `hlynr resume` continues).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub steps: Option<u64>,
    /// Check the config and build its environments and networks, then exit
    /// without creating a run.
    #[arg(long)]
    pub check: bool,
}

/// Parses `--progress`.
pub fn parse_progress(s: &str) -> std::result::Result<ProgressMode, String> {
    s.parse()
}

/// Runs `hlynr train`.
pub fn run(args: &TrainArgs, registry: &Registry) -> Result<()> {
    let factory_for = |c: &RunConfig| registry.factory_for(c);
    let (config, resolved) = load_config(&args.config, &args.overrides)?;
    crate::python_env::ensure_hosted(&config, registry)?;
    if args.check {
        Trainer::check_staged(&config, factory_for)?;
        eprintln!(
            "{}: config OK (env {}, {} env steps); no run created",
            args.config.display(),
            config.env.id,
            config.total_timesteps
        );
        return Ok(());
    }
    let name = match &args.name {
        Some(n) => n.clone(),
        None => args
            .config
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("run")
            .to_string(),
    };
    let stop = StopSignal::install()?;
    let run = NewRun {
        config,
        resolved,
        name,
        runs_dir: args.runs_dir.clone(),
        command_line: std::env::args().collect(),
        progress: args.progress,
        steps: args.steps,
    };
    start_run(run, registry, &stop).map(drop)
}

/// A new training run, as `hlynr train` starts it.
#[derive(Debug)]
pub struct NewRun {
    /// The resolved config.
    pub config: RunConfig,
    /// What the run's `config.yaml` holds.
    pub resolved: serde_json::Value,
    /// Run name (the directory is `<name>-<time>`).
    pub name: String,
    /// Parent directory of run directories.
    pub runs_dir: PathBuf,
    /// What started it, for the manifest.
    pub command_line: Vec<String>,
    /// Progress display.
    pub progress: ProgressMode,
    /// Stop after this many env steps (`None`: `total_timesteps`).
    pub steps: Option<u64>,
}

/// Creates the run directory and trains until done, `run.steps` or a stop
/// request on `stop`, reporting on stderr as `hlynr train` does. Returns
/// the run directory and how the segment ended.
pub fn start_run(
    run: NewRun,
    registry: &Registry,
    stop: &StopSignal,
) -> Result<(PathBuf, TrainOutcome)> {
    let location = RunLocation {
        runs_dir: run.runs_dir,
        name: run.name,
        command_line: run.command_line,
    };
    let mut trainer = Trainer::create_staged(
        run.config,
        &run.resolved,
        |c: &RunConfig| registry.factory_for(c),
        &location,
        run.progress,
    )?;
    eprintln!("run directory: {}", trainer.run_dir().display());
    let outcome = trainer.train(run.steps, Some(stop))?;
    report(trainer.run_dir(), &outcome);
    final_evaluation(trainer.run_dir(), trainer.config(), &outcome, registry)?;
    Ok((trainer.run_dir().to_path_buf(), outcome))
}

/// `run.final_eval`: once a run has ended (completed or stopped early), its
/// best policy and the evaluation baselines on held-out episodes, tabled as
/// `hlynr eval` tables them, the report in `RUN_DIR/eval/final/`.
pub fn final_evaluation(
    run_dir: &Path,
    config: &RunConfig,
    outcome: &TrainOutcome,
    registry: &Registry,
) -> Result<()> {
    let (Some(final_eval), Some(seed)) = (&config.run.final_eval, config.final_eval_seed()) else {
        return Ok(());
    };
    if !matches!(
        outcome.status,
        TrainStatus::Completed | TrainStatus::EarlyStopped
    ) {
        return Ok(());
    }
    let policy =
        hlynr_rl::trainer::eval_baseline_names(config, registry.factory_for(config)?.as_ref());
    eprintln!(
        "final evaluation on {} held-out episodes (seed {seed}):",
        final_eval.episodes
    );
    let args = crate::eval_cmd::EvalArgs {
        env: config.env.id.clone(),
        scenario: None,
        overrides: Vec::new(),
        policy,
        model: Some(run_dir.to_path_buf()),
        episodes: final_eval.episodes,
        seed,
        out: Some(run_dir.join("eval").join("final")),
        plots: None,
        trajectories: 0,
        oracle: false,
        threads: None,
    };
    crate::eval_cmd::run(&args, registry)
}

/// Prints how a training segment ended.
pub fn report(run_dir: &Path, outcome: &TrainOutcome) {
    let what = match outcome.status {
        TrainStatus::Completed => "completed",
        TrainStatus::Paused => "paused",
        TrainStatus::Interrupted => "interrupted",
        TrainStatus::DoctorStopped => "stopped by the training doctor",
        TrainStatus::EarlyStopped => "stopped early (evaluations stopped improving; best/ kept)",
    };
    eprintln!(
        "{what} at {} env steps in {:.1} s ({:.0} steps/s this segment)",
        outcome.env_steps,
        outcome.segment_s,
        outcome.env_steps as f64 / outcome.segment_s.max(1e-9)
    );
    if let Some(e) = &outcome.last_eval {
        let laws: Vec<String> = outcome
            .baselines
            .iter()
            .map(|(name, b)| match b.success_rate {
                Some(s) => format!("{name} {s:.3}"),
                None => format!("{name} {:.2}", b.mean_reward),
            })
            .collect();
        let beside = if laws.is_empty() {
            String::new()
        } else {
            format!(" (same episodes: {})", laws.join(", "))
        };
        let success = e
            .success_rate
            .map_or(String::new(), |s| format!(", success rate {s:.3}"));
        eprintln!(
            "last evaluation at {} steps: mean return {:.2} over {} episodes{success}{beside}",
            e.env_steps, e.mean_reward, e.episodes
        );
    }
    // The doctor's verdict over the whole run (every segment), from its log.
    match hlynr_rl::metrics::read_metrics(&run_dir.join(hlynr_rl::run::METRICS_FILE)) {
        Ok(log) => {
            let line = hlynr_rl::doctor::verdict(&log.events());
            if line.ends_with("no problems found") {
                eprintln!("{line}");
            } else {
                eprintln!("{line}; details: hlynr doctor {}", run_dir.display());
            }
        }
        Err(e) => eprintln!("doctor: cannot read the run's metrics: {e}"),
    }
    if outcome.nonfinite_skips > 0 {
        eprintln!(
            "warning: {} updates were skipped by the non-finite guard",
            outcome.nonfinite_skips
        );
    }
    if !matches!(
        outcome.status,
        TrainStatus::Completed | TrainStatus::EarlyStopped
    ) {
        eprintln!("continue with: hlynr resume {}", run_dir.display());
    }
}
