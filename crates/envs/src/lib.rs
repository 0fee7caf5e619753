//! The environments hlynr knows by id, built from a run config: the
//! classic-control tasks (`CartPole-v1`, ...), the interception simulator
//! (`intercept`), the racing simulator (`racing`) and the predator-prey
//! arena (`arena`), and those a program
//! registers in its [`Registry`]. The
//! command, the Python package and the servers all build environments here,
//! so an id means the same environment everywhere.

pub mod arena;
pub mod intercept;
pub mod racing;
pub mod remote;

use std::path::Path;

use hlynr_rl::trainer::{ClassicEnvFactory, EnvFactory, Result, RunConfig, TrainError};
use serde_json::Value;

pub use arena::{ARENA, ArenaFactory};
pub use intercept::{INTERCEPT, InterceptFactory, ScenarioSettings, resolve_scenario};
pub use racing::{RACING, RacingFactory};
pub use remote::{REMOTE, RemoteFactory};

/// What environment `id` adds to its evaluation reports (nothing for the
/// classic-control tasks and registered envs).
pub fn report_spec(id: &str) -> hlynr_rl::eval::report::ReportSpec {
    match id {
        INTERCEPT => intercept::report_spec(),
        RACING => racing::report_spec(),
        ARENA => arena::report_spec(),
        _ => Default::default(),
    }
}

/// The scripted baselines an environment offers to `hlynr eval --policy`
/// beside `random` (interception's guidance laws are listed by
/// `hlynr_intercept`).
pub fn baselines(id: &str) -> &'static [&'static str] {
    match id {
        RACING => &racing::BASELINES,
        ARENA => &arena::BASELINES,
        _ => &[],
    }
}

/// `env.settings` for evaluating environment `id` without a run config:
/// its defaults with `overrides` (`key=value`) applied. Environments without
/// settings refuse overrides.
pub fn eval_settings(id: &str, overrides: &[String]) -> Result<serde_json::Value> {
    match id {
        RACING => racing::settings_with(overrides),
        ARENA => arena::settings_with(overrides),
        _ if overrides.is_empty() => Ok(serde_json::json!({})),
        _ => Err(TrainError::invalid(
            "--set",
            format!("{id} takes no settings to override"),
        )),
    }
}

/// The baseline `name` of the environment of `config` (see [`baselines`]).
pub fn make_baseline(config: &RunConfig, name: &str) -> Result<Option<Box<dyn hlynr_env::Policy>>> {
    Ok(match config.env.id.as_str() {
        RACING => RacingFactory::new(config)?.baseline(name),
        ARENA => ArenaFactory::new(config)?.baseline(name),
        _ => None,
    })
}

/// Builds the environment factory of a run config.
pub type MakeFactory = dyn Fn(&RunConfig) -> Result<Box<dyn EnvFactory>> + Send + Sync;

/// Env ids to factories: the built-in environments plus any registered by a
/// program that embeds hlynr (its own Rust environments, trained and
/// evaluated by the same command: see `hlynr_cli::run`).
pub struct Registry {
    registered: Vec<(String, Box<MakeFactory>)>,
    /// Builds configs whose `env.python` names a Gymnasium env; set by the
    /// Python package, which hosts the interpreter.
    python_host: Option<Box<MakeFactory>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("ids", &self.known_ids())
            .finish()
    }
}

impl Default for Registry {
    fn default() -> Self {
        Self::builtin()
    }
}

impl Registry {
    /// The classic-control tasks and the simulators.
    pub fn builtin() -> Self {
        Self {
            registered: Vec::new(),
            python_host: None,
        }
    }

    /// Hosts Python environments (`env.python`): `make` builds their
    /// factory from a run config. The Python package sets this; without
    /// it such a config is an error saying how to run it.
    pub fn host_python(
        &mut self,
        make: impl Fn(&RunConfig) -> Result<Box<dyn EnvFactory>> + Send + Sync + 'static,
    ) -> &mut Self {
        self.python_host = Some(Box::new(make));
        self
    }

    /// Whether this registry hosts Python environments (see
    /// [`Registry::host_python`]).
    pub fn hosts_python(&self) -> bool {
        self.python_host.is_some()
    }

    /// Adds environment `id`, built by `make` from a run config (its
    /// `env.settings` are the env's own to read). An id that is already
    /// known is refused.
    pub fn register(
        &mut self,
        id: impl Into<String>,
        make: impl Fn(&RunConfig) -> Result<Box<dyn EnvFactory>> + Send + Sync + 'static,
    ) -> Result<&mut Self> {
        let id = id.into();
        if self.known_ids().contains(&id.as_str()) {
            return Err(TrainError::invalid(
                "env registry",
                format!("`{id}` is already registered"),
            ));
        }
        self.registered.push((id, Box::new(make)));
        Ok(self)
    }

    /// Every known id: the classic-control tasks, the simulators, then the
    /// registered envs in registration order.
    pub fn known_ids(&self) -> Vec<&str> {
        hlynr_env::classic::SPECS
            .iter()
            .map(|s| s.id)
            .chain([INTERCEPT, RACING, ARENA])
            .chain(self.registered.iter().map(|(id, _)| id.as_str()))
            .collect()
    }

    /// The environment factory of a run config (or of one curriculum
    /// stage's). An unknown id is an error naming the closest known one.
    pub fn factory_for(&self, config: &RunConfig) -> Result<Box<dyn EnvFactory>> {
        if let Some(remote) = &config.env.remote {
            if config.env.frame_stack.is_some() {
                return Err(TrainError::invalid(
                    "env.frame_stack",
                    "remote envs train on agent slots, which frame stacking does not support",
                ));
            }
            let twin = match config.env.id.as_str() {
                REMOTE => None,
                _ => Some(self.local_factory(config)?),
            };
            let page = match config.env.id.as_str() {
                ARENA => Some(hlynr_arena::web::page(
                    ArenaFactory::new(config)?.arena(),
                    hlynr_arena::web::Driver::Learner,
                )),
                _ => None,
            };
            return Ok(Box::new(RemoteFactory::new(remote, twin, page)?));
        }
        self.local_factory(config)
    }

    /// The factory of a config's local (not remote) environment.
    fn local_factory(&self, config: &RunConfig) -> Result<Box<dyn EnvFactory>> {
        let id = config.env.id.as_str();
        if config.env.python.is_some() {
            return match &self.python_host {
                Some(make) => make(config),
                None => Err(TrainError::invalid(
                    "env.python",
                    "Python environments are hosted by the Python package: install it \
                     (pip install ./crates/py) and run the same command as `python -m hlynr ...`",
                )),
            };
        }
        if id == INTERCEPT {
            return Ok(Box::new(InterceptFactory::new(config)?));
        }
        if id == RACING {
            return Ok(Box::new(RacingFactory::new(config)?));
        }
        if id == ARENA {
            return Ok(Box::new(ArenaFactory::new(config)?));
        }
        if let Some((_, make)) = self.registered.iter().find(|(known, _)| known == id) {
            return make(config);
        }
        if hlynr_env::classic::spec(id).is_err() {
            let ids = self.known_ids();
            let hint = hlynr_env::config::suggest(id, ids.iter().copied())
                .map_or(String::new(), |best| format!("did you mean `{best}`? "));
            return Err(TrainError::invalid(
                "env.id",
                format!(
                    "unknown environment `{id}`; {hint}(known: {})",
                    ids.join(", ")
                ),
            ));
        }
        Ok(Box::new(ClassicEnvFactory::new(&config.env)?))
    }
}

/// Loads the training config at `path` with `--set` style `overrides`,
/// strictly, and resolves the environment part (see [`resolve_env`]).
/// Returns the typed config and what the run's `config.yaml` holds.
pub fn load_config<S: AsRef<str>>(path: &Path, overrides: &[S]) -> Result<(RunConfig, Value)> {
    let (config, resolved) = hlynr_env::config::resolve_file(path, overrides)?;
    resolve_env(config, resolved)
}

/// [`load_config`] for a config given as YAML (or JSON) text, named
/// `source_name` in errors: a config built in a program (the Python
/// package's dicts) rather than read from a file.
pub fn load_config_str<S: AsRef<str>>(
    text: &str,
    source_name: &str,
    overrides: &[S],
) -> Result<(RunConfig, Value)> {
    let (config, resolved) = hlynr_env::config::resolve(text, source_name, overrides)?;
    resolve_env(config, resolved)
}

/// The run config of an environment used on its own, outside a training
/// run (a Gymnasium env in Python): `env` is a config's `env` section, read
/// as strictly, and everything else is at its defaults, except the
/// learner's discount, which becomes the one the env's reward shaping uses
/// (the interception scenario's `reward.gamma`), since no learner is there
/// to disagree with it.
pub fn standalone_config(env: Value) -> Result<RunConfig> {
    let text = serde_json::json!({ "env": env }).to_string();
    let (mut config, _) = load_config_str(&text, "env", &[] as &[&str])?;
    if config.env.id == INTERCEPT {
        let gamma = config.env.settings["scenario"]["reward"]["gamma"].as_f64();
        if let (Some(gamma), Some(ppo)) = (gamma, config.ppo.as_mut()) {
            ppo.gamma = gamma;
        }
    }
    Ok(config)
}

/// Resolves the environment part of a parsed config: an interception
/// scenario is stored fully resolved, so the run rebuilds the same
/// environment whatever happens to the scenario files later.
fn resolve_env(mut config: RunConfig, mut resolved: Value) -> Result<(RunConfig, Value)> {
    if config.env.id == INTERCEPT {
        let settings = ScenarioSettings::parse(&config.env.settings)?;
        let (_, scenario) = resolve_scenario(&settings)?;
        ScenarioSettings::store_resolved(&mut config.env, &mut resolved, scenario)?;
    }
    Ok((config, resolved))
}
