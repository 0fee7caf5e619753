//! The environments hlynr knows by id, built from a run config: the
//! classic-control tasks (`CartPole-v1`, ...) and the interception simulator
//! (`intercept`). The command, the Python package and the servers all build
//! environments here, so an id means the same environment everywhere.

pub mod intercept;

use std::path::Path;

use hlynr_rl::trainer::{ClassicEnvFactory, EnvFactory, Result, RunConfig, TrainError};
use serde_json::Value;

pub use intercept::{INTERCEPT, InterceptFactory, ScenarioSettings, resolve_scenario};

/// What environment `id` adds to its evaluation reports (nothing for the
/// classic-control tasks).
pub fn report_spec(id: &str) -> hlynr_rl::eval::report::ReportSpec {
    if id == INTERCEPT {
        intercept::report_spec()
    } else {
        Default::default()
    }
}

/// Every registered id: the classic-control tasks, then the simulators.
pub fn known_ids() -> Vec<&'static str> {
    hlynr_env::classic::SPECS
        .iter()
        .map(|s| s.id)
        .chain([INTERCEPT])
        .collect()
}

/// The environment factory of a run config (or of one curriculum stage's).
pub fn factory_for(config: &RunConfig) -> Result<Box<dyn EnvFactory>> {
    if config.env.id == INTERCEPT {
        return Ok(Box::new(InterceptFactory::new(config)?));
    }
    if hlynr_env::classic::spec(&config.env.id).is_err() {
        let ids = known_ids();
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

/// Loads the training config at `path` with `--set` style `overrides`,
/// strictly, and resolves the environment part: an interception scenario is
/// stored fully resolved, so the run rebuilds the same environment whatever
/// happens to the scenario files later. Returns the typed config and what
/// the run's `config.yaml` holds.
pub fn load_config<S: AsRef<str>>(path: &Path, overrides: &[S]) -> Result<(RunConfig, Value)> {
    let (mut config, mut resolved): (RunConfig, Value) =
        hlynr_env::config::resolve_file(path, overrides)?;
    if config.env.id == INTERCEPT {
        let settings = ScenarioSettings::parse(&config.env.settings)?;
        let (_, scenario) = resolve_scenario(&settings)?;
        ScenarioSettings::store_resolved(&mut config.env, &mut resolved, scenario)?;
    }
    Ok((config, resolved))
}
