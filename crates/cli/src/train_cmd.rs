//! `hlynr train`: resolves a training config, creates a run directory and
//! trains PPO in it (see docs/runs.md for what the run holds).
//!
//! Classic-control ids (`CartPole-v1`, ...) build their environments in
//! `hlynr-rl`; `env.id: intercept` builds interception environments from
//! `env.settings` (`scenario` and `set`, see
//! [`hlynr_rl::trainer::ScenarioSettings`]).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use hlynr_env::{BatchEnv, EpisodeStatistics, VecEnv};
use hlynr_intercept::{InterceptEnv, ScenarioConfig};
use hlynr_rl::progress::ProgressMode;
use hlynr_rl::signals::StopSignal;
use hlynr_rl::trainer::{
    ClassicEnvFactory, EnvFactory, RunConfig, RunLocation, ScenarioSettings, TrainError,
    TrainOutcome, TrainStatus, Trainer,
};

use crate::eval_cmd::INTERCEPT_ENV;

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

/// Interception environments from one resolved scenario.
#[derive(Debug)]
pub struct InterceptFactory {
    scenario: ScenarioConfig,
    /// The run's `env` section (frame stacking).
    env: hlynr_rl::env_config::EnvConfig,
}

impl EnvFactory for InterceptFactory {
    fn make_train(&self, n_envs: usize) -> hlynr_rl::trainer::Result<Box<dyn BatchEnv>> {
        if self.env.frame_stack.is_some() {
            let envs = (0..n_envs)
                .map(|_| self.make_eval().map(EpisodeStatistics::new))
                .collect::<hlynr_env::Result<Vec<_>>>()?;
            return Ok(Box::new(VecEnv::new(envs)?));
        }
        let envs = (0..n_envs)
            .map(|_| InterceptEnv::new(&self.scenario).map(EpisodeStatistics::new))
            .collect::<hlynr_env::Result<Vec<_>>>()?;
        Ok(Box::new(VecEnv::new(envs)?))
    }

    fn make_eval(&self) -> hlynr_env::Result<Box<dyn hlynr_env::Env>> {
        self.env.wrap(Box::new(InterceptEnv::new(&self.scenario)?))
    }
}

/// Resolves an interception run's `env.settings` into a scenario and its
/// resolved mapping.
pub fn resolve_scenario(
    settings: &ScenarioSettings,
) -> Result<(ScenarioConfig, hlynr_rl::trainer::Value)> {
    let resolved = match settings.scenario.as_str() {
        Some(name) => ScenarioConfig::load_resolved(name, &settings.set)
            .with_context(|| format!("loading scenario `{name}` (env.settings.scenario)"))?,
        // YAML is a superset of JSON, so the mapping's JSON text parses as YAML.
        None => ScenarioConfig::from_yaml(
            &settings.scenario.to_string(),
            "env.settings.scenario",
            &settings.set,
        )
        .context("env.settings.scenario")?,
    };
    Ok(resolved)
}

/// The environment factory of a run config.
pub fn factory_for(config: &RunConfig) -> hlynr_rl::trainer::Result<Box<dyn EnvFactory>> {
    if config.env.id == INTERCEPT_ENV {
        let settings = ScenarioSettings::parse(&config.env.settings)?;
        let (scenario, _) = resolve_scenario(&settings)
            .map_err(|e| TrainError::invalid("env.settings", format!("{e:#}")))?;
        // Potential-based shaping leaves the optimal policy unchanged only when
        // it discounts with the learner's own gamma.
        if scenario.reward.gamma != config.ppo.gamma {
            return Err(TrainError::invalid(
                "env.settings",
                format!(
                    "the scenario's reward.gamma = {} differs from ppo.gamma = {}; the \
                     reward shaping is only policy-invariant when they are equal (add \
                     \"reward.gamma={}\" to env.settings.set or change ppo.gamma)",
                    scenario.reward.gamma, config.ppo.gamma, config.ppo.gamma
                ),
            ));
        }
        return Ok(Box::new(InterceptFactory {
            scenario,
            env: config.env.clone(),
        }));
    }
    if hlynr_env::classic::spec(&config.env.id).is_err() {
        let ids: Vec<&str> = hlynr_env::classic::SPECS
            .iter()
            .map(|s| s.id)
            .chain([INTERCEPT_ENV])
            .collect();
        let hint = hlynr_env::config::suggest(&config.env.id, ids.iter().copied())
            .map_or(String::new(), |best| format!("did you mean `{best}`? "));
        return Err(TrainError::invalid(
            "env.id",
            format!(
                "unknown environment `{}`; {hint}(known: {})",
                config.env.id,
                ids.join(", ")
            ),
        ));
    }
    Ok(Box::new(ClassicEnvFactory::new(&config.env)?))
}

/// Loads `path` with `overrides`, strictly, and resolves the environment
/// part (an interception scenario is stored fully resolved).
pub fn load_config(
    path: &Path,
    overrides: &[String],
) -> Result<(RunConfig, hlynr_rl::trainer::Value)> {
    let (mut config, mut resolved): (RunConfig, _) =
        hlynr_env::config::resolve_file(path, overrides)?;
    if config.env.id == INTERCEPT_ENV {
        let settings = ScenarioSettings::parse(&config.env.settings)?;
        let (_, scenario) = resolve_scenario(&settings)?;
        ScenarioSettings::store_resolved(&mut config.env, &mut resolved, scenario)?;
    }
    Ok((config, resolved))
}

/// Runs `hlynr train`.
pub fn run(args: &TrainArgs) -> Result<()> {
    let (config, resolved) = load_config(&args.config, &args.overrides)?;
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
    let location = RunLocation {
        runs_dir: args.runs_dir.clone(),
        name,
        command_line: std::env::args().collect(),
    };
    let mut trainer =
        Trainer::create_staged(config, &resolved, factory_for, &location, args.progress)?;
    eprintln!("run directory: {}", trainer.run_dir().display());
    let outcome = trainer.train(args.steps, Some(&stop))?;
    report(trainer.run_dir(), &outcome);
    Ok(())
}

/// Prints how a training segment ended.
pub fn report(run_dir: &Path, outcome: &TrainOutcome) {
    let what = match outcome.status {
        TrainStatus::Completed => "completed",
        TrainStatus::Paused => "paused",
        TrainStatus::Interrupted => "interrupted",
        TrainStatus::DoctorStopped => "stopped by the training doctor",
    };
    eprintln!(
        "{what} at {} env steps in {:.1} s ({:.0} steps/s this segment)",
        outcome.env_steps,
        outcome.segment_s,
        outcome.env_steps as f64 / outcome.segment_s.max(1e-9)
    );
    if let Some(e) = &outcome.last_eval {
        let success = e
            .success_rate
            .map_or(String::new(), |s| format!(", success rate {:.3}", s));
        eprintln!(
            "last evaluation at {} steps: mean return {:.2} over {} episodes{success}",
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
    if outcome.status != TrainStatus::Completed {
        eprintln!("continue with: hlynr resume {}", run_dir.display());
    }
}
