//! The training doctor: rules that watch the metric stream of a run and
//! diagnose the failures that collapse RL training (value-loss explosions,
//! frozen or runaway policies, entropy collapse, success collapse, reward
//! farming, Q divergence, non-finite numbers, gradient spikes, saturated
//! LSTMs), each with a plain-language diagnosis and the config keys to turn.
//!
//! The [`Doctor`] is incremental: the trainer calls [`Doctor::observe`] once
//! per logged record, in order, and acts on the returned findings (see
//! [`DoctorAction`]). A rule that fired stays quiet until its condition has
//! cleared for `doctor.rearm_after` observations, so a long collapse gives one
//! finding, not one per update. The doctor's state is serialisable, so a
//! resumed run continues exactly where the interrupted one stood; [`analyze`]
//! replays a finished run's `metrics.jsonl` through a fresh doctor
//! (`hlynr doctor RUN_DIR`).
//!
//! Rules see only metrics that are present: a record without a rule's keys
//! (an evaluation record, an algorithm that does not log them) leaves that
//! rule's state untouched, so rules for other algorithms cost nothing.

mod config;
mod report;
mod rule_config;
mod rules;
mod stats;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use config::{
    DoctorAction, DoctorConfig, EntropyCollapseConfig, EntropyStuckConfig, ExplainedVarianceConfig,
    FrozenPolicyConfig, GradNormSpikeConfig, KlBlowupConfig, LstmSaturationConfig, NonfiniteConfig,
    QDivergenceConfig, RewardFarmingConfig, SuccessCollapseConfig, ValueLossDominatesConfig,
    ValueLossExplosionConfig,
};
pub use report::{render_markdown, to_json, verdict};
pub use rules::{RULE_NAMES, extra_keys};

use crate::metrics::{Metrics, MetricsLog, MetricsRecord};

/// How serious a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; training may well be fine.
    Info,
    /// Likely a problem; look at the run.
    Warn,
    /// The run is failing.
    Error,
}

impl Severity {
    /// The lowercase name used in events and reports.
    pub fn name(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warn => "warn",
            Severity::Error => "error",
        }
    }
}

/// One diagnosis raised by a rule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// The rule's stable snake_case name (one of [`RULE_NAMES`]).
    pub rule: String,
    /// How serious it is.
    pub severity: Severity,
    /// Total env steps of the record that raised it.
    pub step: u64,
    /// The values that triggered it, by metric key (plus counts such as
    /// `updates`). Non-finite values are serialised as the strings `"NaN"`,
    /// `"Infinity"`, `"-Infinity"`, as in `metrics.jsonl`.
    #[serde(with = "evidence_serde")]
    pub evidence: BTreeMap<String, f64>,
    /// What is wrong, in one or two sentences.
    pub diagnosis: String,
    /// Which config keys to change, and how.
    pub suggestion: String,
    /// What the trainer should do about it.
    pub action: DoctorAction,
}

/// (De)serialises evidence maps whose values may be non-finite (JSON has no
/// NaN), with the same string convention as `metrics.jsonl`.
mod evidence_serde {
    use std::collections::BTreeMap;

    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use serde_json::Value;

    pub fn serialize<S: Serializer>(m: &BTreeMap<String, f64>, s: S) -> Result<S::Ok, S::Error> {
        super::evidence_json(m).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, f64>, D::Error> {
        let raw = BTreeMap::<String, Value>::deserialize(d)?;
        raw.into_iter()
            .map(|(k, v)| match crate::metrics::json_number(&v) {
                Some(x) => Ok((k, x)),
                None => Err(D::Error::custom(format!(
                    "evidence `{k}` is not a number: {v}"
                ))),
            })
            .collect()
    }
}

/// Evidence as a JSON object, non-finite values as the strings `"NaN"`,
/// `"Infinity"`, `"-Infinity"` (the `metrics.jsonl` convention).
pub fn evidence_json(evidence: &BTreeMap<String, f64>) -> Value {
    Value::Object(
        evidence
            .iter()
            .map(|(k, &v)| (k.clone(), crate::metrics::number_json(v)))
            .collect(),
    )
}

/// Version of the serialised doctor state; bumped on incompatible changes.
const STATE_VERSION: u64 = 1;

/// Watches a run's metrics and raises [`Finding`]s.
#[derive(Clone, Debug)]
pub struct Doctor {
    config: DoctorConfig,
    state: rules::RulesState,
}

impl Doctor {
    /// A doctor with no history. The config should have passed
    /// [`DoctorConfig::validate`]; thresholds outside their ranges make rules
    /// fire never or always, but never panic.
    pub fn new(config: DoctorConfig) -> Self {
        Doctor {
            config,
            state: rules::RulesState::default(),
        }
    }

    /// The config the doctor applies.
    pub fn config(&self) -> &DoctorConfig {
        &self.config
    }

    /// Feeds one logged record (values at `step`, total env steps); call it
    /// for every record in the order logged. Returns the findings this record
    /// raised (usually none), in the fixed order of [`RULE_NAMES`]. With
    /// `doctor.enabled: false` nothing is observed and nothing is raised.
    pub fn observe(&mut self, step: u64, values: &Metrics) -> Vec<Finding> {
        if !self.config.enabled {
            return Vec::new();
        }
        self.state.observe(&self.config, step, values)
    }

    /// The doctor's state (histories, streaks, which rules are raised), for
    /// checkpoints.
    pub fn state(&self) -> Value {
        let mut v = serde_json::to_value(&self.state).unwrap_or(Value::Null);
        if let Value::Object(m) = &mut v {
            m.insert("version".into(), Value::from(STATE_VERSION));
        }
        v
    }

    /// Restores a state saved by [`Doctor::state`]; the error says what is
    /// wrong with it. On error the doctor is unchanged.
    pub fn set_state(&mut self, v: &Value) -> Result<(), String> {
        let version = v
            .get("version")
            .and_then(Value::as_u64)
            .ok_or("doctor state: missing or non-integer `version`")?;
        if version != STATE_VERSION {
            return Err(format!(
                "doctor state: version {version} is not the supported version {STATE_VERSION}"
            ));
        }
        let mut body = v.clone();
        if let Value::Object(m) = &mut body {
            m.remove("version");
        }
        let state: rules::RulesState =
            serde_json::from_value(body).map_err(|e| format!("doctor state: {e}"))?;
        self.state = state;
        Ok(())
    }
}

/// Replays the metric records of a run (events are skipped) through a fresh
/// doctor with `config`, and returns every finding in order.
pub fn analyze(log: &MetricsLog, config: &DoctorConfig) -> Vec<Finding> {
    let mut doctor = Doctor::new(config.clone());
    let mut out = Vec::new();
    for r in &log.records {
        if let MetricsRecord::Scalars { step, values, .. } = r {
            out.extend(doctor.observe(*step, values));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn findings_round_trip_with_non_finite_evidence() {
        let f = Finding {
            rule: "nonfinite".into(),
            severity: Severity::Error,
            step: 12,
            evidence: BTreeMap::from([
                ("train/value_loss".to_string(), f64::NAN),
                ("train/grad_norm".to_string(), f64::INFINITY),
                ("updates".to_string(), 3.0),
            ]),
            diagnosis: "d".into(),
            suggestion: "s".into(),
            action: DoctorAction::Rollback,
        };
        let v = serde_json::to_value(&f).unwrap();
        assert_eq!(v["severity"], "error");
        assert_eq!(v["action"], "rollback");
        assert_eq!(v["evidence"]["train/value_loss"], "NaN");
        let back: Finding = serde_json::from_value(v).unwrap();
        assert!(back.evidence["train/value_loss"].is_nan());
        assert_eq!(back.evidence["train/grad_norm"], f64::INFINITY);
        assert_eq!(back.evidence["updates"], 3.0);
        assert_eq!(back.rule, f.rule);
    }

    #[test]
    fn a_disabled_doctor_raises_nothing() {
        let config = DoctorConfig {
            enabled: false,
            ..DoctorConfig::default()
        };
        let mut d = Doctor::new(config);
        let m = Metrics::from([("train/value_loss".to_string(), f64::NAN)]);
        assert!(d.observe(1, &m).is_empty());
        let mut d = Doctor::new(DoctorConfig::default());
        assert_eq!(d.observe(1, &m).len(), 1);
    }

    #[test]
    fn bad_states_are_rejected_and_leave_the_doctor_unchanged() {
        let mut d = Doctor::new(DoctorConfig::default());
        let e = d
            .set_state(&serde_json::json!({"version": 99}))
            .unwrap_err();
        assert!(e.contains("version 99"), "{e}");
        let e = d.set_state(&serde_json::json!({})).unwrap_err();
        assert!(e.contains("version"), "{e}");
        let mut bad = d.state();
        bad["frozen_policy"] = serde_json::json!("nonsense");
        assert!(d.set_state(&bad).is_err());
        assert_eq!(d.state(), Doctor::new(DoctorConfig::default()).state());
    }
}
