//! Hyperparameter schedules: a value as a function of training progress.
//!
//! Progress is measured as in Stable-Baselines3, by the fraction of training
//! *remaining*: `progress_remaining = 1 - num_timesteps / total_timesteps`,
//! which is 1 at the start and 0 at the end. A schedule therefore has no state
//! of its own; its position is fully determined by the trainer's step counter,
//! so resuming from a checkpoint resumes every schedule exactly.
//!
//! In a config a schedule is either a plain number (a constant) or a mapping
//! with a `type`:
//!
//! ```yaml
//! learning_rate: 3.0e-4                                  # constant
//! learning_rate: {type: linear, initial: 1.0e-3}         # to 0 (RL Zoo "lin_1e-3")
//! clip_range: {type: linear, initial: 0.2, final: 0.05}
//! ent_coef: {type: step, initial: 0.01, factor: 0.5, milestones: [0.5, 0.75]}
//! learning_rate: {type: cosine, initial: 1.0e-3, final: 1.0e-5}
//! ```

use hlynr_env::config::{ConfigError, Interval, Validate, ensure_range, join_path};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A hyperparameter value as a function of the fraction of training remaining.
#[derive(Clone, Debug, PartialEq)]
pub enum Schedule {
    /// The same value throughout.
    Constant(f64),
    /// `final + (initial - final) * progress_remaining`.
    Linear { initial: f64, r#final: f64 },
    /// `initial * factor^k` where `k` is the number of `milestones` (fractions of
    /// training *elapsed*, ascending in `(0, 1)`) already passed.
    Step {
        initial: f64,
        factor: f64,
        milestones: Vec<f64>,
    },
    /// Half-cosine from `initial` to `final`:
    /// `final + 0.5 (initial - final) (1 + cos(pi * elapsed))`.
    Cosine { initial: f64, r#final: f64 },
}

impl Schedule {
    /// The value at `progress_remaining` (clamped to `[0, 1]`).
    pub fn value(&self, progress_remaining: f64) -> f64 {
        let remaining = progress_remaining.clamp(0.0, 1.0);
        let elapsed = 1.0 - remaining;
        match self {
            Schedule::Constant(v) => *v,
            Schedule::Linear { initial, r#final } => r#final + (initial - r#final) * remaining,
            Schedule::Step {
                initial,
                factor,
                milestones,
            } => {
                let passed = milestones.iter().filter(|&&m| elapsed >= m).count();
                initial * factor.powi(passed as i32)
            }
            Schedule::Cosine { initial, r#final } => {
                r#final + 0.5 * (initial - r#final) * (1.0 + (std::f64::consts::PI * elapsed).cos())
            }
        }
    }

    /// The value at the start of training.
    pub fn initial(&self) -> f64 {
        self.value(1.0)
    }

    /// Checks that every value the schedule can take lies in `interval` (the
    /// extremes of each kind are its end points), and that step milestones are
    /// ascending fractions in `(0, 1)`.
    pub fn validate_in(&self, path: &str, interval: Interval) -> Result<(), ConfigError> {
        match self {
            Schedule::Constant(v) => {
                ensure_range(path, *v, interval)?;
            }
            Schedule::Linear { initial, r#final } | Schedule::Cosine { initial, r#final } => {
                ensure_range(&join_path(path, "initial"), *initial, interval)?;
                ensure_range(&join_path(path, "final"), *r#final, interval)?;
            }
            Schedule::Step {
                initial,
                factor,
                milestones,
            } => {
                ensure_range(&join_path(path, "initial"), *initial, interval)?;
                ensure_range(&join_path(path, "factor"), *factor, Interval::POSITIVE)?;
                for (i, &m) in milestones.iter().enumerate() {
                    ensure_range(
                        &format!("{}[{i}]", join_path(path, "milestones")),
                        m,
                        Interval::open(0.0, 1.0),
                    )?;
                }
                if milestones.windows(2).any(|w| w[0] >= w[1]) {
                    return Err(ConfigError::invalid(
                        join_path(path, "milestones"),
                        format!("must be strictly ascending, got {milestones:?}"),
                    ));
                }
                let last = initial * factor.powi(milestones.len() as i32);
                ensure_range(
                    &format!("{path} (value after the last milestone)"),
                    last,
                    interval,
                )?;
            }
        }
        Ok(())
    }
}

impl Validate for Schedule {
    /// Finite values only; callers with a narrower range use [`Schedule::validate_in`].
    fn validate(&self, path: &str) -> Result<(), ConfigError> {
        self.validate_in(path, Interval::open(f64::NEG_INFINITY, f64::INFINITY))
    }
}

/// The values of a schedule mapping's `type`.
const SCHEDULE_TYPES: [&str; 4] = ["constant", "linear", "step", "cosine"];

/// The mapping form of a schedule in a config file, keyed by its `type`.
/// Deserialised from `{type_value: {other keys}}` (an externally tagged
/// enum), so an error deep inside keeps its key path.
#[derive(Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum ScheduleSpec {
    Constant {
        value: f64,
    },
    Linear {
        initial: f64,
        #[serde(default, rename = "final")]
        final_value: f64,
    },
    Step {
        initial: f64,
        factor: f64,
        milestones: Vec<f64>,
    },
    Cosine {
        initial: f64,
        #[serde(default, rename = "final")]
        final_value: f64,
    },
}

impl Serialize for Schedule {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mapping = match self {
            Schedule::Constant(v) => return serializer.serialize_f64(*v),
            Schedule::Linear { initial, r#final } => {
                serde_json::json!({"type": "linear", "initial": initial, "final": r#final})
            }
            Schedule::Step {
                initial,
                factor,
                milestones,
            } => serde_json::json!({
                "type": "step", "initial": initial, "factor": factor, "milestones": milestones
            }),
            Schedule::Cosine { initial, r#final } => {
                serde_json::json!({"type": "cosine", "initial": initial, "final": r#final})
            }
        };
        mapping.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Schedule {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        // Buffer the value so a number and a mapping can both be accepted with
        // the mapping's own (strict, key-naming) error messages.
        let value = serde_json::Value::deserialize(deserializer)?;
        if let Some(v) = value.as_f64() {
            return Ok(Schedule::Constant(v));
        }
        let shape_error = || {
            D::Error::custom(format!(
                "a schedule is a number or a mapping with `type` (constant, linear, step, cosine), got {value}"
            ))
        };
        let mut fields = value.as_object().cloned().ok_or_else(shape_error)?;
        let kind = match fields.remove("type") {
            Some(serde_json::Value::String(kind)) => kind,
            _ => return Err(shape_error()),
        };
        if !SCHEDULE_TYPES.contains(&kind.as_str()) {
            let hint = hlynr_env::config::suggest(&kind, SCHEDULE_TYPES)
                .map_or(String::new(), |best| format!("; did you mean `{best}`?"));
            return Err(D::Error::custom(format!(
                "`type: {kind}` is not a schedule type{hint} (valid: {})",
                SCHEDULE_TYPES.join(", ")
            )));
        }
        let mut tagged = serde_json::Map::new();
        tagged.insert(kind, serde_json::Value::Object(fields));
        let spec: ScheduleSpec =
            hlynr_env::config::from_buffered(serde_json::Value::Object(tagged))?;
        Ok(match spec {
            ScheduleSpec::Constant { value } => Schedule::Constant(value),
            ScheduleSpec::Linear {
                initial,
                final_value,
            } => Schedule::Linear {
                initial,
                r#final: final_value,
            },
            ScheduleSpec::Step {
                initial,
                factor,
                milestones,
            } => Schedule::Step {
                initial,
                factor,
                milestones,
            },
            ScheduleSpec::Cosine {
                initial,
                final_value,
            } => Schedule::Cosine {
                initial,
                r#final: final_value,
            },
        })
    }
}

impl From<f64> for Schedule {
    fn from(v: f64) -> Self {
        Schedule::Constant(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn values_follow_their_formulas() {
        let lin = Schedule::Linear {
            initial: 1e-3,
            r#final: 0.0,
        };
        assert!(close(lin.value(1.0), 1e-3) && close(lin.value(0.25), 2.5e-4));
        assert!(close(lin.value(0.0), 0.0) && close(lin.value(-0.5), 0.0));
        let cos = Schedule::Cosine {
            initial: 1.0,
            r#final: 0.2,
        };
        assert!(close(cos.value(1.0), 1.0) && close(cos.value(0.5), 0.6));
        assert!(close(cos.value(0.0), 0.2));
        assert!(close(
            cos.value(0.75),
            0.2 + 0.4 * (1.0 + (0.25 * std::f64::consts::PI).cos())
        ));
        let step = Schedule::Step {
            initial: 0.01,
            factor: 0.5,
            milestones: vec![0.5, 0.75],
        };
        assert!(close(step.value(1.0), 0.01) && close(step.value(0.51), 0.01));
        assert!(close(step.value(0.5), 0.005) && close(step.value(0.2), 0.0025));
        assert!(close(Schedule::Constant(0.3).value(0.1), 0.3));
    }

    #[test]
    fn parses_numbers_and_mappings_strictly_and_round_trips() {
        let s: Schedule = serde_json::from_str("0.5").unwrap();
        assert_eq!(s, Schedule::Constant(0.5));
        let s: Schedule = serde_json::from_str(r#"{"type":"linear","initial":0.2}"#).unwrap();
        assert_eq!(
            s,
            Schedule::Linear {
                initial: 0.2,
                r#final: 0.0
            }
        );
        let back: Schedule = serde_json::from_value(serde_json::to_value(&s).unwrap()).unwrap();
        assert_eq!(back, s);
        let e = serde_json::from_str::<Schedule>(r#"{"type":"linear","inital":0.2}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("inital"), "{e}");
        let e = serde_json::from_str::<Schedule>(r#"{"type":"exp","initial":0.2}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("exp"), "{e}");
        assert!(serde_json::from_str::<Schedule>(r#""fast""#).is_err());
        // A wrong value inside the mapping is named by its key.
        let e = serde_json::from_str::<Schedule>(
            r#"{"type":"step","initial":0.2,"factor":0.5,"milestones":[0.5,"x"]}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("milestones[1]"), "{e}");
    }

    #[test]
    fn validation_checks_every_reachable_value() {
        let pos = Interval::POSITIVE;
        assert!(Schedule::Constant(1e-3).validate_in("lr", pos).is_ok());
        let e = Schedule::Linear {
            initial: 1e-3,
            r#final: 0.0,
        }
        .validate_in("lr", pos)
        .unwrap_err()
        .to_string();
        assert!(e.contains("lr.final"), "{e}");
        let bad = Schedule::Step {
            initial: 0.1,
            factor: 0.5,
            milestones: vec![0.6, 0.3],
        };
        assert!(
            bad.validate_in("x", pos)
                .unwrap_err()
                .to_string()
                .contains("ascending")
        );
        let bad = Schedule::Step {
            initial: 0.1,
            factor: 0.5,
            milestones: vec![1.5],
        };
        assert!(bad.validate_in("x", pos).is_err());
    }
}
