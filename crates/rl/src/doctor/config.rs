//! The `doctor` section of a training config: which rules watch the run, their
//! thresholds, and what the trainer does when one fires.
//!
//! Every key has a default, so an absent or empty `doctor:` section gives the
//! standard watch. Unknown keys are errors (they are almost always typos that
//! would otherwise silently disable a threshold), and [`DoctorConfig::validate`]
//! rejects out-of-range values naming the full key path.
//!
//! Default actions: a rule whose condition is unambiguous and whose cure is
//! known asks for a `rollback` (non-finite metrics, success collapse); every
//! other rule only warns, because its condition is a heuristic that a healthy
//! run can meet now and then, and stopping or rewinding a healthy run costs
//! more than a message does.

use hlynr_env::config::{ConfigError, Interval, Validate, ensure_range, join_path};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use super::rule_config::{
    EntropyCollapseConfig, EntropyStuckConfig, ExplainedVarianceConfig, FrozenPolicyConfig,
    GradNormSpikeConfig, KlBlowupConfig, LstmSaturationConfig, NonfiniteConfig, QDivergenceConfig,
    RewardFarmingConfig, SuccessCollapseConfig, ValueLossDominatesConfig, ValueLossExplosionConfig,
};

/// What the trainer does when a rule fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DoctorAction {
    /// Log the finding and continue.
    Warn,
    /// Log the finding, write a checkpoint and stop the run.
    Stop,
    /// Log the finding, restore the last good checkpoint and continue with
    /// the learning rate multiplied by `doctor.rollback_lr_factor` (at most
    /// `doctor.max_rollbacks` times; after that the run stops).
    Rollback,
}

impl DoctorAction {
    /// The lowercase name used in configs, events and reports.
    pub fn name(self) -> &'static str {
        match self {
            DoctorAction::Warn => "warn",
            DoctorAction::Stop => "stop",
            DoctorAction::Rollback => "rollback",
        }
    }
}

/// The `doctor` section of a training config.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DoctorConfig {
    /// Watch the run while it trains (`hlynr doctor` analyses either way).
    pub enabled: bool,
    /// Observations without the condition needed before a fired rule can fire
    /// again, so a condition flickering at its threshold gives one finding.
    pub rearm_after: u32,
    /// Learning-rate multiplier applied on each rollback.
    pub rollback_lr_factor: f64,
    /// Rollbacks allowed per run; a further `rollback` stops the run.
    pub max_rollbacks: u32,
    /// See [`ValueLossExplosionConfig`].
    pub value_loss_explosion: ValueLossExplosionConfig,
    /// See [`ValueLossDominatesConfig`].
    pub value_loss_dominates: ValueLossDominatesConfig,
    /// See [`ExplainedVarianceConfig`].
    pub explained_variance_negative: ExplainedVarianceConfig,
    /// See [`FrozenPolicyConfig`].
    pub frozen_policy: FrozenPolicyConfig,
    /// See [`KlBlowupConfig`].
    pub kl_blowup: KlBlowupConfig,
    /// See [`EntropyCollapseConfig`].
    pub entropy_collapse: EntropyCollapseConfig,
    /// See [`EntropyStuckConfig`].
    pub entropy_stuck: EntropyStuckConfig,
    /// See [`SuccessCollapseConfig`].
    pub success_collapse: SuccessCollapseConfig,
    /// See [`RewardFarmingConfig`].
    pub reward_farming: RewardFarmingConfig,
    /// See [`QDivergenceConfig`].
    pub q_divergence: QDivergenceConfig,
    /// See [`NonfiniteConfig`].
    pub nonfinite: NonfiniteConfig,
    /// See [`GradNormSpikeConfig`].
    pub grad_norm_spike: GradNormSpikeConfig,
    /// See [`LstmSaturationConfig`].
    pub lstm_saturation: LstmSaturationConfig,
}

impl Default for DoctorConfig {
    fn default() -> Self {
        DoctorConfig {
            enabled: true,
            rearm_after: 3,
            rollback_lr_factor: 0.5,
            max_rollbacks: 3,
            value_loss_explosion: ValueLossExplosionConfig::default(),
            value_loss_dominates: ValueLossDominatesConfig::default(),
            explained_variance_negative: ExplainedVarianceConfig::default(),
            frozen_policy: FrozenPolicyConfig::default(),
            kl_blowup: KlBlowupConfig::default(),
            entropy_collapse: EntropyCollapseConfig::default(),
            entropy_stuck: EntropyStuckConfig::default(),
            success_collapse: SuccessCollapseConfig::default(),
            reward_farming: RewardFarmingConfig::default(),
            q_divergence: QDivergenceConfig::default(),
            nonfinite: NonfiniteConfig::default(),
            grad_norm_spike: GradNormSpikeConfig::default(),
            lstm_saturation: LstmSaturationConfig::default(),
        }
    }
}

/// The `doctor` key of a training config.
const SECTION: &str = "doctor";

/// Reads only the `doctor` section of a resolved config; other sections are
/// somebody else's business here.
#[derive(Deserialize)]
struct Section {
    #[serde(default)]
    doctor: Option<DoctorConfig>,
}

impl DoctorConfig {
    /// Checks every threshold; the error names the key path
    /// (`doctor.frozen_policy.kl_below = -1 is out of range (0, inf)`).
    /// Inside an enclosing config, call [`Validate::validate`] with the
    /// section's path instead.
    pub fn validate(&self) -> Result<(), String> {
        Validate::validate(self, SECTION).map_err(|e| e.to_string())
    }

    /// The `doctor` section of a run's resolved config (`config.yaml` read as
    /// a `Value`), strictly parsed and validated; defaults when the section is
    /// absent or null. Errors name the full key path (`doctor.kl_blowup.kl_abov`).
    pub fn from_run_config(resolved: &Value) -> Result<Self, ConfigError> {
        let section: Section = hlynr_env::config::from_value(resolved)?;
        let config = section.doctor.unwrap_or_default();
        Validate::validate(&config, SECTION)?;
        Ok(config)
    }
}

/// `window`-style counts: at least 1, and small enough to keep state bounded.
const WINDOW: Interval = Interval::closed(1.0, 100_000.0);
/// Fractions and rates.
const UNIT: Interval = Interval::closed(0.0, 1.0);

fn check_window(path: &str, key: &str, v: u32) -> Result<(), ConfigError> {
    ensure_range(&join_path(path, key), f64::from(v), WINDOW).map(|_| ())
}

fn check(path: &str, key: &str, v: f64, range: Interval) -> Result<(), ConfigError> {
    ensure_range(&join_path(path, key), v, range).map(|_| ())
}

impl Validate for DoctorConfig {
    fn validate(&self, path: &str) -> Result<(), ConfigError> {
        let p = |k: &str| join_path(path, k);
        check_window(path, "rearm_after", self.rearm_after)?;
        check(
            path,
            "rollback_lr_factor",
            self.rollback_lr_factor,
            Interval::open_closed(0.0, 1.0),
        )?;
        ensure_range(
            &p("max_rollbacks"),
            f64::from(self.max_rollbacks),
            Interval::closed(0.0, 1000.0),
        )?;

        let c = &self.value_loss_explosion;
        let q = p("value_loss_explosion");
        check_window(&q, "window", c.window)?;
        check_window(&q, "sustain", c.sustain)?;
        check(
            &q,
            "rise_factor",
            c.rise_factor,
            Interval::open(1.0, f64::INFINITY),
        )?;
        check(
            &q,
            "normalized_ratio_above",
            c.normalized_ratio_above,
            Interval::POSITIVE,
        )?;
        check(&q, "raw_ratio_above", c.raw_ratio_above, Interval::POSITIVE)?;
        check(
            &q,
            "min_relative_target_std",
            c.min_relative_target_std,
            Interval::closed(0.0, 1.0),
        )?;

        let c = &self.value_loss_dominates;
        let q = p("value_loss_dominates");
        check_window(&q, "window", c.window)?;
        check(&q, "ratio_above", c.ratio_above, Interval::POSITIVE)?;
        check(&q, "pg_loss_floor", c.pg_loss_floor, Interval::POSITIVE)?;
        check(
            &q,
            "min_value_loss",
            c.min_value_loss,
            Interval::NON_NEGATIVE,
        )?;

        let c = &self.explained_variance_negative;
        let q = p("explained_variance_negative");
        check_window(&q, "window", c.window)?;
        ensure_range(
            &join_path(&q, "warmup"),
            f64::from(c.warmup),
            Interval::closed(0.0, 100_000.0),
        )?;
        check(
            &q,
            "below",
            c.below,
            Interval::open_closed(f64::NEG_INFINITY, 1.0),
        )?;
        check(
            &q,
            "min_relative_target_std",
            c.min_relative_target_std,
            Interval::closed(0.0, 1.0),
        )?;

        let c = &self.frozen_policy;
        let q = p("frozen_policy");
        check_window(&q, "window", c.window)?;
        check(&q, "kl_below", c.kl_below, Interval::POSITIVE)?;
        check(&q, "clip_fraction_at_most", c.clip_fraction_at_most, UNIT)?;
        check(&q, "annealed_lr_fraction", c.annealed_lr_fraction, UNIT)?;

        let c = &self.kl_blowup;
        let q = p("kl_blowup");
        check_window(&q, "window", c.window)?;
        check(&q, "kl_above", c.kl_above, Interval::POSITIVE)?;
        check(&q, "clip_fraction_above", c.clip_fraction_above, UNIT)?;

        let c = &self.entropy_collapse;
        let q = p("entropy_collapse");
        check_window(&q, "window", c.window)?;
        check(&q, "drop_nats", c.drop_nats, Interval::POSITIVE)?;
        if let Some(f) = c.floor {
            check(
                &q,
                "floor",
                f,
                Interval::open(f64::NEG_INFINITY, f64::INFINITY),
            )?;
        }

        let c = &self.entropy_stuck;
        let q = p("entropy_stuck");
        ensure_range(
            &join_path(&q, "window"),
            f64::from(c.window),
            Interval::closed(3.0, 100_000.0),
        )?;
        check(&q, "min_decrease", c.min_decrease, Interval::NON_NEGATIVE)?;
        check(
            &q,
            "min_return_gain",
            c.min_return_gain,
            Interval::NON_NEGATIVE,
        )?;
        check(&q, "min_success_gain", c.min_success_gain, UNIT)?;

        let c = &self.success_collapse;
        let q = p("success_collapse");
        check_window(&q, "window", c.window)?;
        check(&q, "fraction", c.fraction, Interval::open(0.0, 1.0))?;
        check(&q, "min_best", c.min_best, Interval::open_closed(0.0, 1.0))?;

        let c = &self.reward_farming;
        let q = p("reward_farming");
        ensure_range(
            &join_path(&q, "window"),
            f64::from(c.window),
            Interval::closed(3.0, 100_000.0),
        )?;
        check(&q, "min_return_rise", c.min_return_rise, Interval::POSITIVE)?;
        check(
            &q,
            "min_success_drop",
            c.min_success_drop,
            Interval::open_closed(0.0, 1.0),
        )?;
        check(&q, "min_correlation", c.min_correlation, UNIT)?;

        let c = &self.q_divergence;
        let q = p("q_divergence");
        check_window(&q, "window", c.window)?;
        if let Some(r) = c.max_abs_reward {
            check(&q, "max_abs_reward", r, Interval::POSITIVE)?;
        }
        if let Some(g) = c.gamma {
            check(&q, "gamma", g, Interval::closed_open(0.0, 1.0))?;
        }
        check(&q, "drift_factor", c.drift_factor, Interval::POSITIVE)?;
        check(&q, "q_scale_floor", c.q_scale_floor, Interval::POSITIVE)?;
        check(
            &q,
            "monotone_fraction",
            c.monotone_fraction,
            Interval::open_closed(0.5, 1.0),
        )?;

        check_window(
            &p("nonfinite"),
            "skips_in_a_row",
            self.nonfinite.skips_in_a_row,
        )?;

        let c = &self.grad_norm_spike;
        let q = p("grad_norm_spike");
        check_window(&q, "window", c.window)?;
        check_window(&q, "min_history", c.min_history)?;
        if c.min_history > c.window {
            return Err(ConfigError::invalid(
                join_path(&q, "min_history"),
                format!(
                    "{} is more than {} = {}, so the rule could never fire",
                    c.min_history,
                    join_path(&q, "window"),
                    c.window
                ),
            ));
        }
        check(&q, "factor", c.factor, Interval::open(1.0, f64::INFINITY))?;

        let c = &self.lstm_saturation;
        let q = p("lstm_saturation");
        check_window(&q, "window", c.window)?;
        check(&q, "above", c.above, Interval::open(0.0, 1.0))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hlynr_env::config::from_yaml_str;
    use serde_json::json;

    #[test]
    fn defaults_are_valid_and_an_empty_section_gives_them() {
        DoctorConfig::default().validate().unwrap();
        let c: DoctorConfig = from_yaml_str("", "t").unwrap();
        assert_eq!(c, DoctorConfig::default());
        let c = DoctorConfig::from_run_config(&json!({"env": {"id": "CartPole-v1"}})).unwrap();
        assert_eq!(c, DoctorConfig::default());
        let c = DoctorConfig::from_run_config(&json!({"doctor": null})).unwrap();
        assert_eq!(c, DoctorConfig::default());
    }

    #[test]
    fn a_partial_section_keeps_the_other_defaults() {
        let c = DoctorConfig::from_run_config(&json!({
            "doctor": {"frozen_policy": {"kl_below": 1e-6, "action": "stop"}}
        }))
        .unwrap();
        assert_eq!(c.frozen_policy.kl_below, 1e-6);
        assert_eq!(c.frozen_policy.action, DoctorAction::Stop);
        assert_eq!(c.frozen_policy.window, FrozenPolicyConfig::default().window);
        assert_eq!(c.kl_blowup, KlBlowupConfig::default());
    }

    #[test]
    fn an_unknown_key_is_named_with_its_path() {
        let e = DoctorConfig::from_run_config(&json!({
            "doctor": {"kl_blowup": {"kl_abov": 0.2}}
        }))
        .unwrap_err()
        .to_string();
        assert!(e.contains("doctor.kl_blowup.kl_abov"), "{e}");
        assert!(e.contains("kl_above"), "{e}");
        let e = from_yaml_str::<DoctorConfig>("enable: true\n", "t")
            .unwrap_err()
            .to_string();
        assert!(e.contains("enable") && e.contains("enabled"), "{e}");
        let e = from_yaml_str::<DoctorConfig>("nonfinite: {action: explode}\n", "t")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("nonfinite.action") && e.contains("rollback"),
            "{e}"
        );
    }

    #[test]
    fn out_of_range_values_name_the_key_and_value() {
        let mut c = DoctorConfig::default();
        c.frozen_policy.kl_below = -1.0;
        let e = c.validate().unwrap_err();
        assert!(
            e.contains("doctor.frozen_policy.kl_below") && e.contains("-1"),
            "{e}"
        );

        let c = DoctorConfig {
            rollback_lr_factor: 1.5,
            ..DoctorConfig::default()
        };
        let e = c.validate().unwrap_err();
        assert!(
            e.contains("doctor.rollback_lr_factor") && e.contains("1.5"),
            "{e}"
        );

        let mut c = DoctorConfig::default();
        c.success_collapse.window = 0;
        let e = c.validate().unwrap_err();
        assert!(e.contains("doctor.success_collapse.window"), "{e}");

        let mut c = DoctorConfig::default();
        c.q_divergence.gamma = Some(1.0);
        let e = c.validate().unwrap_err();
        assert!(e.contains("doctor.q_divergence.gamma"), "{e}");

        let mut c = DoctorConfig::default();
        c.grad_norm_spike.min_history = 50;
        let e = c.validate().unwrap_err();
        assert!(e.contains("doctor.grad_norm_spike.min_history"), "{e}");

        let e = DoctorConfig::from_run_config(&json!({
            "doctor": {"success_collapse": {"fraction": 2.0}}
        }))
        .unwrap_err()
        .to_string();
        assert!(e.contains("doctor.success_collapse.fraction"), "{e}");
    }

    #[test]
    fn round_trips_through_json() {
        let mut c = DoctorConfig::default();
        c.q_divergence.max_abs_reward = Some(1.0);
        c.q_divergence.gamma = Some(0.99);
        c.success_collapse.action = DoctorAction::Stop;
        let back: DoctorConfig = serde_json::from_value(serde_json::to_value(&c).unwrap()).unwrap();
        assert_eq!(back, c);
    }
}
