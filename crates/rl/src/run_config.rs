//! A training run's config: the environment, the run's length and env count,
//! the algorithm (chosen by name, with its own section), the seed,
//! checkpointing and evaluation, the curriculum and the training doctor.

use hlynr_env::config::{ConfigError, Interval, MovedKey, Validate, ensure_range, join_path};
use hlynr_rng::derive_seed;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::curriculum::CurriculumConfig;
use crate::doctor::DoctorConfig;
use crate::dqn::DqnConfig;
use crate::env_config::EnvConfig;
use crate::error::{Result, TrainError};
use crate::ppo::PpoConfig;

/// The `run` section: how often to checkpoint and evaluate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSettings {
    /// Env steps (all envs together) between checkpoints.
    #[serde(default = "d::checkpoint_every_steps")]
    pub checkpoint_every_steps: u64,
    /// Step checkpoints kept (`last/` and `best/` always are); `null` keeps all.
    #[serde(default = "d::keep_last_n")]
    pub keep_last_n: Option<usize>,
    /// Whether the run evaluates at all. `false` is for an env of which only
    /// one instance can exist (a game driven in real time): no evaluation
    /// env is built, `best/` is never written, and the training episodes'
    /// metrics are what shows progress.
    #[serde(default = "d::evaluate")]
    pub evaluate: bool,
    /// Env steps between evaluations; 0 evaluates only at the end.
    #[serde(default = "d::eval_every_steps")]
    pub eval_every_steps: u64,
    /// Episodes per evaluation.
    #[serde(default = "d::eval_episodes")]
    pub eval_episodes: u64,
    /// Base seed of the evaluation episodes (the same episodes every time);
    /// `null` derives one from the run seed.
    #[serde(default)]
    pub eval_seed: Option<u64>,
    /// End the run when evaluations stop improving; `null` (default) trains
    /// to `total_timesteps`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub early_stop: Option<EarlyStop>,
    /// Scripted baselines every evaluation tables beside the policy, on the
    /// same episodes (`eval/baseline/<name>/...`, and `eval/success_gap`
    /// to the best of them): `null` (default) takes the env's own choice
    /// (interception: `zem-pn` and `ogl`), `[]` none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_baselines: Option<Vec<String>>,
    /// After a run completes, its best policy and the baselines evaluated on
    /// held-out episodes (seeds the periodic evaluations never used), the
    /// table printed and written to `RUN_DIR/eval/final/`; `null` (default)
    /// skips it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_eval: Option<FinalEval>,
}

/// `run.final_eval` (see [`RunSettings::final_eval`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FinalEval {
    /// Episodes per policy.
    pub episodes: u64,
    /// Base seed of the held-out episodes; `null` derives one from the run
    /// seed (never the periodic evaluations' seed).
    #[serde(default)]
    pub seed: Option<u64>,
}

/// `run.early_stop`: the run ends, `best/` kept, once `patience`
/// evaluations in a row have not improved on the last improvement by at
/// least `min_delta` (see [`crate::eval::EvalScore::improves_on`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EarlyStop {
    /// Evaluations in a row without improvement that end the run.
    pub patience: u32,
    /// The least gain that counts as an improvement: in success rate (a
    /// fraction) when the env defines success, else in mean return; 0 counts
    /// any gain.
    #[serde(default)]
    pub min_delta: f64,
}

mod d {
    pub fn total_timesteps() -> u64 {
        1_000_000
    }
    pub fn n_envs() -> usize {
        1
    }
    pub fn checkpoint_every_steps() -> u64 {
        50_000
    }
    pub fn keep_last_n() -> Option<usize> {
        Some(5)
    }
    pub fn evaluate() -> bool {
        true
    }
    pub fn eval_every_steps() -> u64 {
        10_000
    }
    pub fn eval_episodes() -> u64 {
        10
    }
}

impl Default for RunSettings {
    fn default() -> Self {
        RunSettings {
            checkpoint_every_steps: d::checkpoint_every_steps(),
            keep_last_n: d::keep_last_n(),
            evaluate: d::evaluate(),
            eval_every_steps: d::eval_every_steps(),
            eval_episodes: d::eval_episodes(),
            eval_seed: None,
            early_stop: None,
            eval_baselines: None,
            final_eval: None,
        }
    }
}

impl Validate for RunSettings {
    fn validate(&self, path: &str) -> std::result::Result<(), ConfigError> {
        let p = |k: &str| join_path(path, k);
        ensure_range(
            &p("checkpoint_every_steps"),
            self.checkpoint_every_steps as f64,
            Interval::closed(1.0, 1e13),
        )?;
        if let Some(n) = self.keep_last_n {
            ensure_range(&p("keep_last_n"), n as f64, Interval::closed(0.0, 1e6))?;
        }
        ensure_range(
            &p("eval_every_steps"),
            self.eval_every_steps as f64,
            Interval::closed(0.0, 1e13),
        )?;
        ensure_range(
            &p("eval_episodes"),
            self.eval_episodes as f64,
            Interval::closed(1.0, crate::eval::MAX_EVAL_EPISODES as f64),
        )?;
        if let Some(e) = &self.early_stop {
            let q = |k: &str| join_path(&p("early_stop"), k);
            ensure_range(
                &q("patience"),
                f64::from(e.patience),
                Interval::closed(1.0, 1e6),
            )?;
            ensure_range(&q("min_delta"), e.min_delta, Interval::closed(0.0, 1e12))?;
            if !self.evaluate || self.eval_every_steps == 0 {
                return Err(ConfigError::invalid(
                    p("early_stop"),
                    "needs periodic evaluations (run.evaluate: true and run.eval_every_steps > 0)",
                ));
            }
        }
        if let Some(names) = &self.eval_baselines {
            for (i, name) in names.iter().enumerate() {
                if names[..i].contains(name) {
                    return Err(ConfigError::invalid(
                        p("eval_baselines"),
                        format!("`{name}` is listed twice"),
                    ));
                }
            }
        }
        if let Some(f) = &self.final_eval {
            ensure_range(
                &join_path(&p("final_eval"), "episodes"),
                f.episodes as f64,
                Interval::closed(1.0, crate::eval::MAX_EVAL_EPISODES as f64),
            )?;
            if !self.evaluate {
                return Err(ConfigError::invalid(
                    p("final_eval"),
                    "needs evaluations (run.evaluate: true)",
                ));
            }
        }
        Ok(())
    }
}

/// The algorithms a run can train with; the config section of the same name
/// holds the chosen one's hyperparameters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlgoName {
    /// Proximal Policy Optimisation (MLP or LSTM policies), section `ppo`.
    #[default]
    Ppo,
    /// Deep Q-learning with the Rainbow switches, section `dqn`.
    Dqn,
}

impl AlgoName {
    /// The name as configs spell it (also its section's key).
    pub fn as_str(self) -> &'static str {
        match self {
            AlgoName::Ppo => "ppo",
            AlgoName::Dqn => "dqn",
        }
    }
}

/// A complete training-run config. Exactly the chosen algorithm's section
/// is present (filled with defaults when the file leaves it out); a section
/// of another algorithm is an error, never silently ignored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawRunConfig")]
pub struct RunConfig {
    /// The environment.
    pub env: EnvConfig,
    /// The algorithm; its hyperparameters are the section of the same name.
    pub algo: AlgoName,
    /// Environment steps (summed over envs) the run trains for; the horizon
    /// of every schedule, so a run stopped early and resumed follows the same
    /// schedules.
    pub total_timesteps: u64,
    /// Training environments stepped together.
    pub n_envs: usize,
    /// PPO's hyperparameters (`algo: ppo`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ppo: Option<PpoConfig>,
    /// DQN's hyperparameters (`algo: dqn`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dqn: Option<DqnConfig>,
    /// Run seed (network initialisation, sampling, shuffling, environments).
    pub seed: u64,
    /// Checkpoints and evaluation.
    pub run: RunSettings,
    /// Optional curriculum of environment stages (absent: none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub curriculum: Option<CurriculumConfig>,
    /// The training doctor's rules, thresholds and actions.
    pub doctor: DoctorConfig,
}

/// A run config as written, before the algorithm's section is settled.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRunConfig {
    env: EnvConfig,
    #[serde(default)]
    algo: AlgoName,
    #[serde(default = "d::total_timesteps")]
    total_timesteps: u64,
    #[serde(default = "d::n_envs")]
    n_envs: usize,
    #[serde(default)]
    ppo: Option<PpoConfig>,
    #[serde(default)]
    dqn: Option<DqnConfig>,
    #[serde(default)]
    seed: u64,
    #[serde(default)]
    run: RunSettings,
    #[serde(default)]
    curriculum: Option<CurriculumConfig>,
    #[serde(default)]
    doctor: DoctorConfig,
}

impl TryFrom<RawRunConfig> for RunConfig {
    type Error = String;

    fn try_from(raw: RawRunConfig) -> std::result::Result<Self, String> {
        let stray = match raw.algo {
            AlgoName::Ppo => raw.dqn.is_some().then_some("dqn"),
            AlgoName::Dqn => raw.ppo.is_some().then_some("ppo"),
        };
        if let Some(section) = stray {
            return Err(format!(
                "the config has a `{section}` section but trains with `algo: {}`; set `algo: {section}` or remove the section",
                raw.algo.as_str()
            ));
        }
        Ok(RunConfig {
            ppo: (raw.algo == AlgoName::Ppo).then(|| raw.ppo.unwrap_or_default()),
            dqn: (raw.algo == AlgoName::Dqn).then(|| raw.dqn.unwrap_or_default()),
            env: raw.env,
            algo: raw.algo,
            total_timesteps: raw.total_timesteps,
            n_envs: raw.n_envs,
            seed: raw.seed,
            run: raw.run,
            curriculum: raw.curriculum,
            doctor: raw.doctor,
        })
    }
}

/// Keys that were PPO's and are now the run's (every algorithm has them).
const MOVED: &[MovedKey] = &[
    MovedKey {
        from: "ppo.total_timesteps",
        to: "total_timesteps",
        note: "a run-level key at the top of the config, beside `seed`",
    },
    MovedKey {
        from: "ppo.n_envs",
        to: "n_envs",
        note: "a run-level key at the top of the config, beside `seed`",
    },
];

impl Validate for RunConfig {
    fn validate(&self, path: &str) -> std::result::Result<(), ConfigError> {
        let p = |k: &str| join_path(path, k);
        self.env.validate(&p("env"))?;
        if self.final_eval_seed() == Some(self.eval_seed()) {
            return Err(ConfigError::invalid(
                p("run.final_eval.seed"),
                "is the periodic evaluations' seed; the final evaluation is on held-out episodes",
            ));
        }
        ensure_range(
            &p("total_timesteps"),
            self.total_timesteps as f64,
            Interval::closed(1.0, 1e13),
        )?;
        ensure_range(
            &p("n_envs"),
            self.n_envs as f64,
            Interval::closed(1.0, 65536.0),
        )?;
        if let Some(ppo) = &self.ppo {
            ppo.validate(&p("ppo"))?;
            ppo.validate_for_envs(&p("ppo"), self.n_envs)?;
        }
        if let Some(dqn) = &self.dqn {
            dqn.validate(&p("dqn"))?;
        }
        self.run.validate(&p("run"))?;
        Validate::validate(&self.doctor, &p("doctor"))?;
        if let Some(c) = &self.curriculum {
            c.validate(&p("curriculum"))?;
            if !self.run.evaluate {
                return Err(ConfigError::invalid(
                    p("run.evaluate"),
                    "a curriculum moves on by evaluations, so it needs `run.evaluate: true`",
                ));
            }
            if self.run.eval_episodes < c.min_eval_episodes {
                return Err(ConfigError::invalid(
                    p("run.eval_episodes"),
                    format!(
                        "{} is fewer than curriculum.min_eval_episodes = {}, so no evaluation could promote",
                        self.run.eval_episodes, c.min_eval_episodes
                    ),
                ));
            }
        }
        Ok(())
    }

    fn moved_keys() -> &'static [MovedKey] {
        MOVED
    }
}

/// Seed stream of the evaluation episodes when `run.eval_seed` is `null`.
const STREAM_EVAL: u64 = 0x6576_616c; // "eval"
/// Seed stream of the held-out episodes of `run.final_eval`.
const STREAM_FINAL_EVAL: u64 = 0x6669_6e61; // "fina"

impl RunConfig {
    /// The learner's discount factor and the key that sets it (`ppo.gamma`).
    pub fn discount(&self) -> (f64, &'static str) {
        match (&self.ppo, &self.dqn) {
            (Some(ppo), _) => (ppo.gamma, "ppo.gamma"),
            (None, Some(dqn)) => (dqn.gamma, "dqn.gamma"),
            (None, None) => (0.99, "ppo.gamma"),
        }
    }

    /// The PPO section of a run that trains with PPO.
    pub fn ppo_config(&self) -> Result<&PpoConfig> {
        self.ppo.as_ref().ok_or_else(|| {
            TrainError::invalid(
                "config",
                format!(
                    "the run trains with `algo: {}`, not ppo",
                    self.algo.as_str()
                ),
            )
        })
    }

    /// Base seed of evaluation episodes.
    pub fn eval_seed(&self) -> u64 {
        self.run
            .eval_seed
            .unwrap_or_else(|| derive_seed(self.seed, STREAM_EVAL))
    }

    /// Base seed of the held-out episodes of `run.final_eval` (never the
    /// periodic evaluations' seed: the config refuses that).
    pub fn final_eval_seed(&self) -> Option<u64> {
        let f = self.run.final_eval.as_ref()?;
        Some(
            f.seed
                .unwrap_or_else(|| derive_seed(self.seed, STREAM_FINAL_EVAL)),
        )
    }

    /// Number of environment stages: the curriculum's, or 1 without one.
    pub fn stage_count(&self) -> usize {
        self.curriculum.as_ref().map_or(1, |c| c.stages.len())
    }

    /// This config with the environment of stage `stage` (the config itself
    /// without a curriculum, where only stage 0 exists).
    pub fn stage_config(&self, stage: usize) -> Result<RunConfig> {
        let mut out = self.clone();
        match &self.curriculum {
            Some(c) => out.env = c.apply(&self.env, stage)?,
            None if stage == 0 => {}
            None => {
                return Err(TrainError::invalid(
                    "curriculum",
                    format!("stage {stage} asked of a run without a curriculum"),
                ));
            }
        }
        Ok(out)
    }

    /// Name of stage `stage`, if the run has a curriculum.
    pub fn stage_name(&self, stage: usize) -> Option<&str> {
        self.curriculum
            .as_ref()
            .and_then(|c| c.stages.get(stage))
            .map(|s| s.name.as_str())
    }

    /// Strictly parses a resolved config value (a run's `config.yaml`).
    pub fn from_resolved(value: &Value) -> Result<Self> {
        hlynr_env::config::check_moved(value, MOVED)?;
        let config: RunConfig = hlynr_env::config::from_value(value)?;
        config.validate("")?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_settings_validate_and_reject_unknown_keys() {
        let e = hlynr_env::config::from_yaml_str::<RunConfig>(
            "env: {id: CartPole-v1}\nrun: {checkpoint_every: 5}\n",
            "t",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("checkpoint_every") && e.contains("checkpoint_every_steps"),
            "{e}"
        );
        let e = hlynr_env::config::from_yaml_str::<RunConfig>(
            "env: {id: CartPole-v1}\nrun: {eval_episodes: 0}\n",
            "t",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("run.eval_episodes"), "{e}");
    }

    #[test]
    fn keys_that_moved_to_the_run_say_where_they_went() {
        use hlynr_env::config::{from_yaml_str, resolve};
        let e = from_yaml_str::<RunConfig>(
            "env: {id: CartPole-v1}\nppo: {n_envs: 8, n_steps: 32}\n",
            "t",
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "`ppo.n_envs` is now `n_envs`: rename it (a run-level key at the top of the config, beside `seed`)"
        );
        let e = resolve::<RunConfig, _>(
            "env: {id: CartPole-v1}\n",
            "t",
            &["ppo.total_timesteps=5000"],
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("`ppo.total_timesteps` is now `total_timesteps`"),
            "{e}"
        );
        // A resolved config from an older run is refused the same way.
        let old = serde_json::json!({"env": {"id": "CartPole-v1"}, "ppo": {"total_timesteps": 5}});
        let e = RunConfig::from_resolved(&old).unwrap_err().to_string();
        assert!(e.contains("is now `total_timesteps`"), "{e}");
    }

    #[test]
    fn a_minibatch_must_fit_in_the_rollout_of_the_run_env_count() {
        let text = |n: usize| {
            format!("env: {{id: CartPole-v1}}\nn_envs: {n}\nppo: {{n_steps: 16, batch_size: 64}}\n")
        };
        let e = hlynr_env::config::from_yaml_str::<RunConfig>(&text(2), "t")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("ppo.batch_size: 64 is larger than a rollout (n_steps 16 x n_envs 2"),
            "{e}"
        );
        hlynr_env::config::from_yaml_str::<RunConfig>(&text(4), "t").unwrap();
        let e = hlynr_env::config::from_yaml_str::<RunConfig>(
            "env: {id: CartPole-v1}\nn_envs: 0\n",
            "t",
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("n_envs = 0 is out of range"), "{e}");
    }

    #[test]
    fn overrides_reach_sections_the_resolved_config_leaves_out() {
        let base = "env: {id: CartPole-v1}\n";
        // `features` is not written out while it is the default.
        let (c, _): (RunConfig, Value) =
            hlynr_env::config::resolve(base, "t", &["ppo.policy.features={type: cnn}"]).unwrap();
        let features = &c.ppo_config().unwrap().policy.features;
        assert!(!features.is_flatten(), "{features:?}");
        // A key the config does not take is still refused as before.
        let e = hlynr_env::config::resolve::<RunConfig, _>(base, "t", &["ppo.policy.featurez=1"])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--set ppo.policy.featurez=1") && e.contains("no key"),
            "{e}"
        );
    }

    #[test]
    fn typed_sections_name_the_key_at_fault() {
        let error = |text: &str| {
            hlynr_env::config::resolve::<RunConfig, &str>(text, "t", &[])
                .unwrap_err()
                .to_string()
        };
        let e = error(
            "env: {id: CartPole-v1}\nalgo: dqn\ndqn: {distribution: {type: qr, n_quantiles: x}}\n",
        );
        assert!(e.contains("n_quantiles"), "{e}");
        let e = error("env: {id: CartPole-v1}\nalgo: dqn\ndqn: {distribution: {type: qrr}}\n");
        assert!(e.contains("did you mean `qr`"), "{e}");
        let e =
            error("env: {id: CartPole-v1}\nppo: {policy: {features: {type: cnn, chanels: [8]}}}\n");
        assert!(e.contains("chanels") && e.contains("channels"), "{e}");
    }

    #[test]
    fn shipped_train_configs_load() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
        let mut seen = 0;
        for entry in std::fs::read_dir(&root).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "yaml") {
                let (c, _): (RunConfig, _) =
                    hlynr_env::config::resolve_file(&path, &[] as &[&str]).unwrap();
                assert!(c.total_timesteps >= 50_000, "{}", path.display());
                seen += 1;
            }
        }
        assert!(seen >= 7, "only {seen} configs in {}", root.display());
    }
}
