//! Curriculum learning: an ordered list of environment stages, each a set of
//! overrides on top of the run's `env` section, with promotion gated on
//! deterministic evaluation performance (never on the step count alone).
//!
//! A stage's `set` entries are `key=value` overrides of the environment:
//! `settings.KEY=value` sets `env.settings.KEY` for any environment with
//! settings (the arena's `settings.special_cost=1000`; the environment's
//! own strict reading of its settings then checks the key); other entries,
//! for environments built from scenarios (`env.settings: {scenario, set}`,
//! the interception simulator), are appended to `env.settings.set`, so
//! they are scenario overrides such as `termination.kill_radius_m=20`; the
//! classic-control tasks have a single setting, `max_episode_steps`.
//!
//! Promotion from stage `k` to `k + 1` happens after a periodic evaluation on
//! stage `k` with at least `min_eval_episodes` episodes whose success rate
//! reaches `promote_at_success` (or, for environments that define no
//! success, whose mean return reaches `promote_at_return`). The final stage
//! is never left.

use hlynr_env::config::{ConfigError, Interval, Validate, ensure_range, join_path};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::env_config::EnvConfig;
use crate::eval::EvalSummary;

/// One curriculum stage.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CurriculumStage {
    /// Stage name, shown in logs and events.
    pub name: String,
    /// Environment overrides `key=value`, applied in order on top of `env`.
    #[serde(default)]
    pub set: Vec<String>,
}

/// The `curriculum` section of a run config.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CurriculumConfig {
    /// The stages, easiest first; training starts at the first.
    pub stages: Vec<CurriculumStage>,
    /// Promote when the evaluation success rate reaches this (0..1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promote_at_success: Option<f64>,
    /// Promote when the mean evaluation return reaches this, for
    /// environments that define no success (exclusive with
    /// `promote_at_success`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promote_at_return: Option<f64>,
    /// Fewest evaluation episodes a promotion may rest on; `run.eval_episodes`
    /// must be at least this.
    pub min_eval_episodes: u64,
}

impl Validate for CurriculumConfig {
    fn validate(&self, path: &str) -> Result<(), ConfigError> {
        let p = |k: &str| join_path(path, k);
        if self.stages.is_empty() {
            return Err(ConfigError::invalid(
                p("stages"),
                "needs at least one stage",
            ));
        }
        for (i, stage) in self.stages.iter().enumerate() {
            let at = format!("{}[{i}]", p("stages"));
            if stage.name.trim().is_empty() {
                return Err(ConfigError::invalid(join_path(&at, "name"), "is empty"));
            }
            if self.stages[..i].iter().any(|s| s.name == stage.name) {
                return Err(ConfigError::invalid(
                    join_path(&at, "name"),
                    format!("`{}` names two stages", stage.name),
                ));
            }
            for (j, entry) in stage.set.iter().enumerate() {
                if split_override(entry).is_none() {
                    return Err(ConfigError::invalid(
                        format!("{}[{j}]", join_path(&at, "set")),
                        format!("`{entry}` is not of the form key=value"),
                    ));
                }
            }
        }
        match (self.promote_at_success, self.promote_at_return) {
            (Some(s), None) => {
                ensure_range(&p("promote_at_success"), s, Interval::closed(0.0, 1.0))?;
            }
            (None, Some(r)) => {
                if !r.is_finite() {
                    return Err(ConfigError::invalid(
                        p("promote_at_return"),
                        format!("{r} is not finite"),
                    ));
                }
            }
            _ => {
                return Err(ConfigError::invalid(
                    path,
                    "set exactly one of promote_at_success and promote_at_return",
                ));
            }
        }
        ensure_range(
            &p("min_eval_episodes"),
            self.min_eval_episodes as f64,
            Interval::closed(1.0, 1e7),
        )?;
        Ok(())
    }
}

fn split_override(entry: &str) -> Option<(&str, &str)> {
    entry
        .split_once('=')
        .map(|(k, v)| (k.trim(), v.trim()))
        .filter(|(k, _)| !k.is_empty())
}

impl CurriculumConfig {
    /// Index of the final stage.
    pub fn final_stage(&self) -> usize {
        self.stages.len().saturating_sub(1)
    }

    /// Whether the evaluation `eval`, run on stage `stage`, promotes the
    /// run to the next stage. It depends only on the evaluation's
    /// performance and episode count, never on the step count.
    pub fn promotes(&self, stage: usize, eval: &EvalSummary) -> Result<bool, ConfigError> {
        if stage >= self.final_stage() || eval.episodes < self.min_eval_episodes {
            return Ok(false);
        }
        match (self.promote_at_success, self.promote_at_return) {
            (Some(threshold), _) => match eval.success_rate {
                Some(rate) => Ok(rate >= threshold),
                None => Err(ConfigError::invalid(
                    "curriculum.promote_at_success",
                    "the environment reports no success; use curriculum.promote_at_return",
                )),
            },
            (None, Some(threshold)) => Ok(eval.mean_reward >= threshold),
            (None, None) => Err(ConfigError::invalid(
                "curriculum",
                "set exactly one of promote_at_success and promote_at_return",
            )),
        }
    }

    /// `env` with the overrides of stage `stage` applied (see the module docs).
    pub fn apply(&self, env: &EnvConfig, stage: usize) -> Result<EnvConfig, ConfigError> {
        let at = format!("curriculum.stages[{stage}]");
        let s = self.stages.get(stage).ok_or_else(|| {
            ConfigError::invalid(
                &at,
                format!(
                    "does not exist: the curriculum has {} stages",
                    self.stages.len()
                ),
            )
        })?;
        let mut out = env.clone();
        let mut rest = Vec::new();
        for (j, entry) in s.set.iter().enumerate() {
            match entry.strip_prefix(SETTINGS_PREFIX) {
                Some(spec) => set_setting(&mut out.settings, spec, &format!("{at}.set[{j}]"))?,
                None => rest.push((j, entry)),
            }
        }
        if hlynr_env::classic::spec(&env.id).is_ok() {
            for (j, entry) in rest {
                let path = format!("{at}.set[{j}]");
                let Some((key, value)) = split_override(entry) else {
                    return Err(ConfigError::invalid(
                        path,
                        format!("`{entry}` is not key=value"),
                    ));
                };
                if key != "max_episode_steps" {
                    return Err(ConfigError::invalid(
                        path,
                        format!(
                            "`{key}` is not a setting of {}; the classic-control tasks accept only `max_episode_steps`",
                            env.id
                        ),
                    ));
                }
                let steps: u64 = value.parse().ok().filter(|&n| n > 0).ok_or_else(|| {
                    ConfigError::invalid(
                        &path,
                        format!("max_episode_steps `{value}` is not a positive integer"),
                    )
                })?;
                out.max_episode_steps = Some(steps);
            }
            return Ok(out);
        }
        if rest.is_empty() {
            return Ok(out);
        }
        if out.settings.is_null() {
            out.settings = Value::Object(serde_json::Map::new());
        }
        let settings = match &mut out.settings {
            Value::Object(map) => map,
            _ => {
                return Err(ConfigError::invalid(
                    "env.settings",
                    format!("must be a mapping for the overrides of {at}"),
                ));
            }
        };
        let set = settings
            .entry("set")
            .or_insert_with(|| Value::Array(Vec::new()));
        let Value::Array(list) = set else {
            return Err(ConfigError::invalid("env.settings.set", "must be a list"));
        };
        list.extend(rest.into_iter().map(|(_, e)| Value::String(e.clone())));
        Ok(out)
    }
}

/// The prefix of a stage entry that sets `env.settings` directly.
const SETTINGS_PREFIX: &str = "settings.";

/// A stage entry `settings.a.b=value`: sets `env.settings.a.b`, adding the
/// sections on the way (the environment's strict reading of its settings
/// checks the key when the stage's environment is built, at the start).
fn set_setting(settings: &mut Value, spec: &str, at: &str) -> Result<(), ConfigError> {
    let (path, raw) = split_override(spec)
        .ok_or_else(|| ConfigError::invalid(at, format!("`{spec}` is not key=value")))?;
    let value = hlynr_env::config::parse_yaml(raw, at)?;
    if settings.is_null() {
        *settings = Value::Object(serde_json::Map::new());
    }
    let keys: Vec<&str> = path.split('.').collect();
    let mut node = settings;
    for (i, key) in keys.iter().enumerate() {
        let Value::Object(map) = node else {
            return Err(ConfigError::invalid(
                at,
                format!(
                    "`settings.{}` is a value, not a section",
                    keys[..i].join(".")
                ),
            ));
        };
        if i + 1 == keys.len() {
            map.insert((*key).to_string(), value);
            return Ok(());
        }
        node = map
            .entry((*key).to_string())
            .or_insert_with(|| Value::Object(serde_json::Map::new()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn curriculum(text: &str) -> CurriculumConfig {
        hlynr_env::config::from_yaml_str(text, "t").unwrap()
    }

    fn eval(episodes: u64, success_rate: Option<f64>, mean_reward: f64) -> EvalSummary {
        EvalSummary {
            env_steps: 1_000_000,
            stage: 0,
            episodes,
            mean_reward,
            mean_ep_length: 10.0,
            success_rate,
        }
    }

    const TWO_STAGES: &str = "stages: [{name: easy, set: [max_episode_steps=20]}, {name: full}]\n";

    #[test]
    fn promotion_needs_the_success_threshold_over_enough_episodes() {
        let c = curriculum(&format!(
            "{TWO_STAGES}promote_at_success: 0.8\nmin_eval_episodes: 10\n"
        ));
        c.validate("curriculum").unwrap();
        assert!(!c.promotes(0, &eval(10, Some(0.7), 1e9)).unwrap());
        assert!(c.promotes(0, &eval(10, Some(0.8), -1e9)).unwrap());
        assert!(!c.promotes(0, &eval(9, Some(1.0), 0.0)).unwrap());
        // The final stage is never left, however good the evaluation.
        assert!(!c.promotes(1, &eval(10, Some(1.0), 0.0)).unwrap());
        let e = c.promotes(0, &eval(10, None, 0.0)).unwrap_err().to_string();
        assert!(e.contains("promote_at_return"), "{e}");
    }

    #[test]
    fn settings_entries_set_the_envs_settings_and_the_rest_go_to_its_scenario() {
        let c = curriculum(
            "stages: [{name: forage, set: [settings.special_cost=1000, settings.reward.death=-5, \
             kill_radius_m=40]}, {name: full}]\npromote_at_success: 0.5\nmin_eval_episodes: 1\n",
        );
        let env: EnvConfig = hlynr_env::config::from_value(&serde_json::json!({
            "id": "anything", "settings": {"reward_scale": 0.1}
        }))
        .unwrap();
        let first = c.apply(&env, 0).unwrap();
        assert_eq!(first.settings["special_cost"], 1000);
        assert_eq!(first.settings["reward"]["death"], -5);
        assert_eq!(first.settings["reward_scale"], 0.1);
        assert_eq!(
            first.settings["set"],
            serde_json::json!(["kill_radius_m=40"])
        );
        assert_eq!(c.apply(&env, 1).unwrap(), env);
        let bad = curriculum(
            "stages: [{name: a, set: [settings.reward_scale.x=1]}]\npromote_at_success: 0.5\n\
             min_eval_episodes: 1\n",
        );
        let e = bad.apply(&env, 0).unwrap_err().to_string();
        assert!(e.contains("is a value, not a section"), "{e}");
    }

    #[test]
    fn return_gated_promotion_ignores_success() {
        let c = curriculum(&format!(
            "{TWO_STAGES}promote_at_return: 15\nmin_eval_episodes: 2\n"
        ));
        c.validate("curriculum").unwrap();
        assert!(!c.promotes(0, &eval(2, None, 14.9)).unwrap());
        assert!(c.promotes(0, &eval(2, Some(0.0), 15.0)).unwrap());
    }

    #[test]
    fn validation_names_the_bad_key() {
        for (text, needle) in [
            (
                "stages: []\npromote_at_success: 0.5\nmin_eval_episodes: 1\n",
                "stages",
            ),
            (
                &format!("{TWO_STAGES}promote_at_success: 1.5\nmin_eval_episodes: 1\n"),
                "promote_at_success",
            ),
            (
                &format!("{TWO_STAGES}min_eval_episodes: 1\n"),
                "exactly one",
            ),
            (
                &format!(
                    "{TWO_STAGES}promote_at_success: 0.5\npromote_at_return: 1\nmin_eval_episodes: 1\n"
                ),
                "exactly one",
            ),
            (
                "stages: [{name: a, set: [oops]}]\npromote_at_success: 0.5\nmin_eval_episodes: 1\n",
                "stages[0].set[0]",
            ),
            (
                "stages: [{name: a}, {name: a}]\npromote_at_success: 0.5\nmin_eval_episodes: 1\n",
                "stages[1].name",
            ),
        ] {
            let e = hlynr_env::config::from_yaml_str::<CurriculumConfig>(text, "t")
                .unwrap_err()
                .to_string();
            assert!(e.contains(needle), "{text}: {e}");
        }
    }

    #[test]
    fn stage_overrides_apply_to_the_environment() {
        let c = curriculum(&format!(
            "{TWO_STAGES}promote_at_success: 0.5\nmin_eval_episodes: 1\n"
        ));
        let classic: EnvConfig =
            hlynr_env::config::from_yaml_str("id: CartPole-v1\n", "t").unwrap();
        assert_eq!(c.apply(&classic, 0).unwrap().max_episode_steps, Some(20));
        assert_eq!(c.apply(&classic, 1).unwrap(), classic);
        assert!(c.apply(&classic, 2).is_err());
        let bad = curriculum(
            "stages: [{name: a, set: [gravity=3]}]\npromote_at_success: 0.5\nmin_eval_episodes: 1\n",
        );
        let e = bad.apply(&classic, 0).unwrap_err().to_string();
        assert!(
            e.contains("gravity") && e.contains("curriculum.stages[0].set[0]"),
            "{e}"
        );

        let scenario: EnvConfig = hlynr_env::config::from_yaml_str(
            "id: intercept\nsettings: {scenario: easy, set: [a=1]}\n",
            "t",
        )
        .unwrap();
        let staged = curriculum(
            "stages: [{name: a, set: [termination.kill_radius_m=20]}]\npromote_at_success: 0.5\nmin_eval_episodes: 1\n",
        );
        let applied = staged.apply(&scenario, 0).unwrap();
        assert_eq!(
            applied.settings["set"],
            serde_json::json!(["a=1", "termination.kill_radius_m=20"])
        );
        assert_eq!(applied.settings["scenario"], "easy");
    }
}
