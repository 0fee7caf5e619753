//! The predator-prey arena as a run's environment: `env.id: arena` with its
//! settings ([`ArenaConfig`]) under `env.settings` and the game length in
//! ticks in `env.max_episode_steps` (18,000, the game's 300 s, by default).
//! Training batches are agent slots (`n_envs` must be a multiple of
//! `max_prey`: that many worlds); evaluation plays whole games turn by turn,
//! with the scripted prey as a baseline.

use hlynr_arena::{ArenaBatch, ArenaConfig, ArenaEnv, FLEE_AND_EAT, FleeAndEat};
use hlynr_env::{BatchEnv, Policy};
use hlynr_rl::eval::report::{ReportSpec, Stat};
use hlynr_rl::trainer::{EnvFactory, Result, RunConfig, TrainError};

/// The id of the arena.
pub const ARENA: &str = "arena";

/// The arena baselines.
pub const BASELINES: [&str; 1] = [FLEE_AND_EAT];

/// Arena environments from one configuration.
#[derive(Debug)]
pub struct ArenaFactory {
    arena: ArenaConfig,
}

impl ArenaFactory {
    /// The factory of `config`'s arena: settings read strictly and
    /// validated; wrappers that would treat agent slots as single envs
    /// (frame stacking) are refused.
    pub fn new(config: &RunConfig) -> Result<Self> {
        let mut arena: ArenaConfig = hlynr_env::config::from_value(&config.env.settings)
            .map_err(|e| TrainError::invalid("env.settings", e.to_string()))?;
        if let Some(limit) = config.env.max_episode_steps {
            arena.max_ticks = u32::try_from(limit).map_err(|_| {
                TrainError::invalid("env.max_episode_steps", format!("{limit} is too large"))
            })?;
        }
        arena
            .validate()
            .map_err(|e| TrainError::invalid("env.settings", e))?;
        if config.env.frame_stack.is_some() {
            return Err(TrainError::invalid(
                "env.frame_stack",
                "the arena's rows are agent slots, which frame stacking does not support",
            ));
        }
        Ok(Self { arena })
    }

    /// The arena configuration.
    pub fn arena(&self) -> &ArenaConfig {
        &self.arena
    }

    /// The baseline `name` (one of [`BASELINES`]).
    pub fn baseline(&self, name: &str) -> Option<Box<dyn Policy>> {
        (name == FLEE_AND_EAT).then(|| Box::new(FleeAndEat::new(&self.arena)) as Box<dyn Policy>)
    }
}

impl EnvFactory for ArenaFactory {
    fn make_train(&self, n_envs: usize) -> Result<Box<dyn BatchEnv>> {
        let k = self.arena.max_prey;
        if n_envs == 0 || !n_envs.is_multiple_of(k) {
            return Err(TrainError::invalid(
                "n_envs",
                format!(
                    "the arena trains on agent slots, max_prey = {k} per world: n_envs must be \
                     a multiple of {k} (e.g. {}), got {n_envs}",
                    k * n_envs.div_ceil(k).max(1)
                ),
            ));
        }
        Ok(Box::new(ArenaBatch::new(&self.arena, n_envs / k)?))
    }

    fn make_eval(&self) -> hlynr_env::Result<Box<dyn hlynr_env::Env>> {
        Ok(Box::new(ArenaEnv::new(&self.arena)?))
    }

    fn baseline_names(&self) -> Vec<&'static str> {
        BASELINES.to_vec()
    }

    fn make_baseline(&self, name: &str) -> hlynr_env::Result<Box<dyn Policy>> {
        self.baseline(name)
            .ok_or_else(|| hlynr_env::EnvError::invalid("arena baseline", format!("`{name}`")))
    }
}

/// The arena settings with every key at its default, then `overrides`
/// applied (a misspelt key is an error naming the closest one).
pub fn settings_with(overrides: &[String]) -> Result<serde_json::Value> {
    let mut settings = serde_json::to_value(ArenaConfig::default())
        .map_err(|e| TrainError::invalid("arena settings", e.to_string()))?;
    for spec in overrides {
        hlynr_env::config::apply_override(&mut settings, spec)?;
    }
    Ok(settings)
}

/// What the arena adds to evaluation reports: how long the game lasted and
/// what the prey did in it.
pub fn report_spec() -> ReportSpec {
    let mean = |key: &str, head: &str| (key.to_string(), vec![(head.to_string(), Stat::Mean)]);
    ReportSpec {
        within: None,
        columns: vec![
            (
                "game_s".into(),
                vec![
                    ("game s mean".into(), Stat::Mean),
                    ("median".into(), Stat::Median),
                ],
            ),
            mean("prey_lifetime_s", "prey life s"),
            mean("stars_eaten", "stars"),
            mean("births", "births"),
            mean("predators_killed", "kills"),
            mean("caught", "caught"),
            mean("starved", "starved"),
        ],
    }
}
