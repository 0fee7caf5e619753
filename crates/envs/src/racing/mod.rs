//! The racing simulator as a run's environment: `env.id: racing` with its
//! settings ([`RacingConfig`]) under `env.settings`, the time limit in
//! `env.max_episode_steps` (2400 decisions, 120 s, by default) and frame
//! stacking in `env.frame_stack`; its scripted driver as an evaluation
//! baseline; and its report columns.

pub mod plots;

use hlynr_env::{BatchEnv, EpisodeStatistics, Policy, VecEnv};
use hlynr_racing::{PURE_PURSUIT, PurePursuit, RacingConfig, RacingEnv};
use hlynr_rl::env_config::EnvConfig;
use hlynr_rl::eval::report::{ReportSpec, Stat};
use hlynr_rl::trainer::{EnvFactory, Result, RunConfig, TrainError};

/// The id of the racing simulator.
pub const RACING: &str = "racing";

/// The racing baselines.
pub const BASELINES: [&str; 1] = [PURE_PURSUIT];

/// Racing environments from one configuration.
#[derive(Debug)]
pub struct RacingFactory {
    racing: RacingConfig,
    env: EnvConfig,
}

impl RacingFactory {
    /// The factory of `config`'s racing env: its settings read strictly
    /// (unknown keys named, with the closest known one) and validated.
    pub fn new(config: &RunConfig) -> Result<Self> {
        let mut racing: RacingConfig = hlynr_env::config::from_value(&config.env.settings)
            .map_err(|e| TrainError::invalid("env.settings", e.to_string()))?;
        if let Some(limit) = config.env.max_episode_steps {
            racing.max_episode_steps = u32::try_from(limit).map_err(|_| {
                TrainError::invalid("env.max_episode_steps", format!("{limit} is too large"))
            })?;
        }
        racing
            .validate()
            .map_err(|e| TrainError::invalid("env.settings", e))?;
        Ok(Self {
            racing,
            env: config.env.clone(),
        })
    }

    /// The racing configuration.
    pub fn racing(&self) -> &RacingConfig {
        &self.racing
    }

    /// One episode of `policy` (acting on the bare env: one frame at a
    /// time) reset with `seed`, recorded for plots.
    pub fn record(
        &self,
        policy: &mut dyn Policy,
        seed: u64,
    ) -> hlynr_env::Result<hlynr_racing::recording::Recording> {
        hlynr_racing::recording::record(&self.racing, policy, seed)
    }

    /// The baseline `name` (one of [`BASELINES`]).
    pub fn baseline(&self, name: &str) -> Option<Box<dyn Policy>> {
        (name == PURE_PURSUIT).then(|| {
            Box::new(PurePursuit::new(&self.racing.car, self.racing.action)) as Box<dyn Policy>
        })
    }
}

impl EnvFactory for RacingFactory {
    fn make_train(&self, n_envs: usize) -> Result<Box<dyn BatchEnv>> {
        let envs = (0..n_envs)
            .map(|_| self.make_eval().map(EpisodeStatistics::new))
            .collect::<hlynr_env::Result<Vec<_>>>()?;
        Ok(Box::new(VecEnv::new(envs)?))
    }

    fn make_eval(&self) -> hlynr_env::Result<Box<dyn hlynr_env::Env>> {
        self.env.wrap(Box::new(RacingEnv::new(&self.racing)?))
    }

    fn baseline_names(&self) -> Vec<&'static str> {
        BASELINES.to_vec()
    }

    fn make_baseline(&self, name: &str) -> hlynr_env::Result<Box<dyn Policy>> {
        self.baseline(name)
            .ok_or_else(|| hlynr_env::EnvError::invalid("racing baseline", format!("`{name}`")))
    }
}

/// The racing settings with every key at its default, then `overrides`
/// (`key.path=value`, e.g. `track=oval` or `car.mu=1.2`) applied: a
/// misspelt key is an error naming the closest one.
pub fn settings_with(overrides: &[String]) -> Result<serde_json::Value> {
    let defaults: RunConfig =
        hlynr_env::config::from_value(&serde_json::json!({"env": {"id": RACING}}))?;
    settings_of(&defaults, overrides)
}

/// The complete racing settings of `config` with `overrides` applied (a
/// run evaluated on other tracks or with another car).
pub fn settings_of(config: &RunConfig, overrides: &[String]) -> Result<serde_json::Value> {
    let mut settings = serde_json::to_value(RacingFactory::new(config)?.racing())
        .map_err(|e| TrainError::invalid("racing settings", e.to_string()))?;
    for spec in overrides {
        hlynr_env::config::apply_override(&mut settings, spec)?;
    }
    Ok(settings)
}

/// What racing adds to evaluation reports: lap times (of the completed
/// laps), the share of the lap covered, wall hits and mean speed.
pub fn report_spec() -> ReportSpec {
    let cells = |c: &[(&str, Stat)]| c.iter().map(|&(h, s)| (h.to_string(), s)).collect();
    ReportSpec {
        within: None,
        columns: vec![
            (
                "lap_time_s".into(),
                cells(&[("lap s mean", Stat::Mean), ("median", Stat::Median)]),
            ),
            (
                "progress_fraction".into(),
                cells(&[("progress", Stat::Mean)]),
            ),
            ("wall_hits".into(), cells(&[("wall hits", Stat::Mean)])),
            ("mean_speed_mps".into(), cells(&[("speed m/s", Stat::Mean)])),
        ],
    }
}
