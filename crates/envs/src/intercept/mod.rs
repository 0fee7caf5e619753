//! The interception simulator as a run's environment: `env.id: intercept`
//! with `env.settings: {scenario, set}`, and what it adds to evaluation
//! reports and plots.

pub mod plots;

use hlynr_env::{BatchEnv, EpisodeStatistics, VecEnv};
use hlynr_intercept::{InterceptEnv, ScenarioConfig};
use hlynr_rl::env_config::EnvConfig;
use hlynr_rl::eval::report::{ReportSpec, Stat, WithinSpec};
use hlynr_rl::trainer::{EnvFactory, Result, RunConfig, TrainError};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The id of the interception simulator.
pub const INTERCEPT: &str = "intercept";

/// `env.settings` of an environment built from named scenarios (the
/// interception simulator): `{scenario: NAME | PATH | mapping, set: [KEY=VALUE, ...]}`.
/// A new run stores the fully resolved scenario mapping (with `set` empty) in
/// its `config.yaml`, so resume and eval rebuild exactly the same environment
/// whatever happens to the shipped scenario files later.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioSettings {
    /// A shipped scenario name, a YAML file, or the scenario itself.
    #[serde(default = "default_scenario")]
    pub scenario: Value,
    /// Scenario overrides `key=value`, applied in order.
    #[serde(default)]
    pub set: Vec<String>,
}

fn default_scenario() -> Value {
    Value::String("medium".into())
}

impl ScenarioSettings {
    /// Strictly parses `env.settings`.
    pub fn parse(settings: &Value) -> Result<Self> {
        let s: ScenarioSettings = hlynr_env::config::from_value(settings)
            .map_err(|e| TrainError::invalid("env.settings", e.to_string()))?;
        if !(s.scenario.is_string() || s.scenario.is_object()) {
            return Err(TrainError::invalid(
                "env.settings.scenario",
                "must be a scenario name, a file path or a mapping",
            ));
        }
        Ok(s)
    }

    /// Replaces the settings of `env` and of the resolved config with the
    /// fully resolved scenario.
    pub fn store_resolved(
        env: &mut EnvConfig,
        resolved: &mut Value,
        scenario: Value,
    ) -> Result<()> {
        let settings = serde_json::to_value(ScenarioSettings {
            scenario,
            set: Vec::new(),
        })
        .map_err(|e| TrainError::invalid("env.settings", e.to_string()))?;
        env.settings = settings.clone();
        match resolved.get_mut("env") {
            Some(Value::Object(env)) => {
                env.insert("settings".into(), settings);
                Ok(())
            }
            _ => Err(TrainError::invalid("config", "has no `env` mapping")),
        }
    }
}

/// Resolves an interception run's `env.settings` into a scenario and its
/// resolved mapping.
pub fn resolve_scenario(settings: &ScenarioSettings) -> Result<(ScenarioConfig, Value)> {
    let resolved = match settings.scenario.as_str() {
        Some(name) => ScenarioConfig::load_resolved(name, &settings.set).map_err(|e| {
            TrainError::invalid(
                format!("loading scenario `{name}` (env.settings.scenario)"),
                e.to_string(),
            )
        })?,
        // YAML is a superset of JSON, so the mapping's JSON text parses as YAML.
        None => ScenarioConfig::from_yaml(
            &settings.scenario.to_string(),
            "env.settings.scenario",
            &settings.set,
        )
        .map_err(|e| TrainError::invalid("env.settings.scenario", e.to_string()))?,
    };
    Ok(resolved)
}

/// Interception environments from one resolved scenario.
#[derive(Debug)]
pub struct InterceptFactory {
    scenario: ScenarioConfig,
    /// The run's `env` section (frame stacking).
    env: EnvConfig,
}

impl InterceptFactory {
    /// The factory of `config`'s interception env. Potential-based reward
    /// shaping leaves the optimal policy unchanged only when it discounts
    /// with the learner's own gamma, so the two must agree.
    pub fn new(config: &RunConfig) -> Result<Self> {
        let settings = ScenarioSettings::parse(&config.env.settings)?;
        let (scenario, _) = resolve_scenario(&settings)
            .map_err(|e| TrainError::invalid("env.settings", e.to_string()))?;
        let (gamma, key) = config.discount();
        if scenario.reward.gamma != gamma {
            return Err(TrainError::invalid(
                "env.settings",
                format!(
                    "the scenario's reward.gamma = {} differs from {key} = {gamma}; the \
                     reward shaping is only policy-invariant when they are equal (add \
                     \"reward.gamma={gamma}\" to env.settings.set or change {key})",
                    scenario.reward.gamma
                ),
            ));
        }
        Ok(InterceptFactory {
            scenario,
            env: config.env.clone(),
        })
    }

    /// The resolved scenario.
    pub fn scenario(&self) -> &ScenarioConfig {
        &self.scenario
    }
}

impl EnvFactory for InterceptFactory {
    fn make_train(&self, n_envs: usize) -> Result<Box<dyn BatchEnv>> {
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

    /// The guidance laws, where they can fly this env's interceptor (not in
    /// `action.mode: residual`, whose policy corrects a law instead).
    fn baseline_names(&self) -> Vec<&'static str> {
        match hlynr_intercept::make_policy("zem-pn", &self.scenario) {
            Ok(_) => hlynr_intercept::policies::POLICY_NAMES.to_vec(),
            Err(_) => Vec::new(),
        }
    }

    /// The best classical laws on the harder tiers: what a learned
    /// interceptor is measured against.
    fn default_baselines(&self) -> Vec<&'static str> {
        match self.baseline_names().is_empty() {
            true => Vec::new(),
            false => vec!["zem-pn", "ogl"],
        }
    }

    fn make_baseline(&self, name: &str) -> hlynr_env::Result<Box<dyn hlynr_env::Policy>> {
        hlynr_intercept::make_policy(name, &self.scenario)
    }
}

/// What interception adds to evaluation reports: the fraction of episodes
/// whose miss is within 50, 20, 10, 5 and 2 m whatever the scenario's own kill
/// radius (`miss_within_m`), and terminal columns for the miss distance, the
/// time to intercept, the control energy and the time without a track.
pub fn report_spec() -> ReportSpec {
    let cells = |c: &[(&str, Stat)]| c.iter().map(|&(h, s)| (h.to_string(), s)).collect();
    ReportSpec {
        within: Some(WithinSpec {
            metric: "miss_distance_m".into(),
            field: "miss_within_m".into(),
            thresholds: vec![50.0, 20.0, 10.0, 5.0, 2.0],
            unit: "m".into(),
            title: "Miss within radius (fraction of episodes; not the success definition)".into(),
        }),
        columns: vec![
            (
                "miss_distance_m".into(),
                cells(&[
                    ("miss mean m", Stat::Mean),
                    ("median", Stat::Median),
                    ("p90", Stat::P90),
                    ("p99", Stat::P99),
                ]),
            ),
            (
                "time_to_intercept_s".into(),
                cells(&[("t_int s", Stat::Mean)]),
            ),
            ("energy_used".into(), cells(&[("energy", Stat::Mean)])),
            (
                "track_lost_s".into(),
                cells(&[("track lost s", Stat::Mean)]),
            ),
        ],
    }
}
