//! Reward (model section 8.3), per decision step, order 1:
//! ```text
//! Phi(s)   = -c_z ln(1 + |ZEM_perp_true| / R_kill)        frozen below the blind time
//! r_shape  = gamma Phi(s') - Phi(s)                        Phi(s') := 0 on a true termination
//! r_effort = -c_u (|a_cmd| / a_scale)^2 (decision_period / 0.1 s)
//! terminal = B [miss <= R_kill] + C exp(-miss^2 / R_kill^2) - c_m ln(1 + miss / R_kill)
//!            - B_fail [ground, leak or energy]
//! ```
//! `gamma` is the training algorithm's discount (from the config), so the
//! shaping leaves the optimal policy unchanged. On time-limit truncation
//! `Phi(s')` is kept and no terminal term is paid (the learner bootstraps).
//! The reward reads the truth; the observation never does.

use crate::Vec3;
use crate::scenario::RewardConfig;

/// Why an episode ended (`termination_reason` in `info`, as its code).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TerminationReason {
    /// Still running.
    #[default]
    None,
    /// Closest approach passed (closing turned to opening).
    Cpa,
    /// The interceptor hit the ground.
    Ground,
    /// The threat reached the ground or the defended point.
    Leak,
    /// The interceptor is out of energy (motor out, slow, not closing).
    Energy,
    /// Time limit (truncation).
    Timeout,
}

impl TerminationReason {
    /// Numeric code reported in `info` (`termination_reason`).
    pub fn code(self) -> f64 {
        match self {
            TerminationReason::None => 0.0,
            TerminationReason::Cpa => 1.0,
            TerminationReason::Ground => 2.0,
            TerminationReason::Leak => 3.0,
            TerminationReason::Energy => 4.0,
            TerminationReason::Timeout => 5.0,
        }
    }

    /// Name of the reason.
    pub fn name(self) -> &'static str {
        match self {
            TerminationReason::None => "none",
            TerminationReason::Cpa => "cpa",
            TerminationReason::Ground => "ground",
            TerminationReason::Leak => "leak",
            TerminationReason::Energy => "energy",
            TerminationReason::Timeout => "timeout",
        }
    }

    /// The reason with code `code`, if any.
    pub fn from_code(code: f64) -> Option<Self> {
        [
            TerminationReason::None,
            TerminationReason::Cpa,
            TerminationReason::Ground,
            TerminationReason::Leak,
            TerminationReason::Energy,
            TerminationReason::Timeout,
        ]
        .into_iter()
        .find(|r| r.code() == code)
    }

    /// True for the failures that cost `B_fail`.
    pub fn is_failure(self) -> bool {
        matches!(
            self,
            TerminationReason::Ground | TerminationReason::Leak | TerminationReason::Energy
        )
    }
}

/// True zero-effort miss perpendicular to the LOS and the true CPA time-to-go:
/// `t_go = max(-(r.v)/(v.v), 0)`, `ZEM = r + v t_go`, `|P_perp(lam) ZEM|`.
pub fn true_zem_perp(r: Vec3, v: Vec3) -> (f64, f64) {
    let vv = v.norm_sq();
    let t_go = if vv > 1e-12 {
        (-r.dot(v) / vv).max(0.0)
    } else {
        0.0
    };
    let zem = r + v * t_go;
    (zem.perp_to(r.unit_or_zero()).norm(), t_go)
}

/// The potential `Phi = -c_z ln(1 + |ZEM_perp| / R_kill)`.
pub fn potential(config: &RewardConfig, zem_perp_m: f64, kill_radius_m: f64) -> f64 {
    -config.zem_weight * (1.0 + zem_perp_m / kill_radius_m).ln()
}

/// The effort penalty of one decision.
pub fn effort_penalty(
    config: &RewardConfig,
    command_norm_mps2: f64,
    accel_scale_mps2: f64,
    decision_period_s: f64,
) -> f64 {
    let u = command_norm_mps2 / accel_scale_mps2.max(1e-9);
    -config.effort_weight * u * u * (decision_period_s / 0.1)
}

/// The terminal reward for an episode that ended with `reason` and `miss_m`.
pub fn terminal_reward(
    config: &RewardConfig,
    reason: TerminationReason,
    miss_m: f64,
    kill_radius_m: f64,
) -> f64 {
    if reason == TerminationReason::Timeout || reason == TerminationReason::None {
        return 0.0;
    }
    let hit = if miss_m <= kill_radius_m {
        config.hit_bonus
    } else {
        0.0
    };
    let x = miss_m / kill_radius_m;
    let fail = if reason.is_failure() {
        config.failure_penalty
    } else {
        0.0
    };
    let log_miss = if x.is_finite() {
        config.miss_log_weight * x.ln_1p()
    } else {
        0.0
    };
    hit + config.miss_weight * (-x * x).exp() - log_miss - fail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zem_of_a_straight_fly_by_is_the_miss() {
        // Target 1000 m ahead, 30 m to the side, closing at 500 m/s head on.
        let r = Vec3::new(1000.0, 30.0, 0.0);
        let v = Vec3::new(-500.0, 0.0, 0.0);
        let (zem, t_go) = true_zem_perp(r, v);
        assert!((t_go - 2.0).abs() < 1e-12);
        // The ZEM is (0, 30, 0); its part across the line of sight, which
        // is 1.718 deg off the x axis, is 30 cos(atan(30/1000)) = 30 * 1000 /
        // sqrt(1000^2 + 30^2).
        assert!((zem - 29.986_509_105_671).abs() < 1e-9, "{zem}");
        // Flying straight at the target: no miss, whatever the range.
        let (zem, t_go) = true_zem_perp(Vec3::new(0.0, 0.0, 800.0), Vec3::new(0.0, 0.0, -400.0));
        assert!(zem.abs() < 1e-12 && (t_go - 2.0).abs() < 1e-12);
        // Opening: t_go clamps to 0 and the ZEM is the current offset across
        // the line of sight, which is none.
        let (zem, t_go) = true_zem_perp(r, -v);
        assert_eq!((zem, t_go), (0.0, 0.0));
    }

    #[test]
    fn terminal_pays_hit_and_penalises_failures() {
        let c = RewardConfig::default();
        let hit = terminal_reward(&c, TerminationReason::Cpa, 0.0, 10.0);
        assert!((hit - (c.hit_bonus + c.miss_weight)).abs() < 1e-12);
        let near_miss = terminal_reward(&c, TerminationReason::Cpa, 10.5, 10.0);
        assert!(near_miss < c.miss_weight && near_miss > 0.0);
        let ground = terminal_reward(&c, TerminationReason::Ground, 1e4, 10.0);
        assert!((ground + c.failure_penalty).abs() < 1e-9);
        assert_eq!(
            terminal_reward(&c, TerminationReason::Timeout, 0.0, 10.0),
            0.0
        );
        for r in [
            TerminationReason::Cpa,
            TerminationReason::Ground,
            TerminationReason::Leak,
            TerminationReason::Energy,
            TerminationReason::Timeout,
        ] {
            assert_eq!(TerminationReason::from_code(r.code()), Some(r));
        }
    }

    #[test]
    fn log_miss_term_grades_every_miss() {
        // Without it, misses of 100 m and 1 km are paid the same (nothing);
        // with it, each doubling of `1 + miss / R_kill` costs `c_m ln 2`.
        let off = RewardConfig::default();
        let on = RewardConfig {
            miss_log_weight: 2.0,
            ..off.clone()
        };
        let pay =
            |c: &RewardConfig, miss: f64| terminal_reward(c, TerminationReason::Cpa, miss, 10.0);
        assert!((pay(&off, 100.0) - pay(&off, 1000.0)).abs() < 1e-12);
        assert!((pay(&on, 0.0) - pay(&off, 0.0)).abs() < 1e-12);
        let (near, far) = (pay(&on, 150.0), pay(&on, 310.0));
        assert!((near - far - 2.0 * 2f64.ln()).abs() < 1e-12, "{near} {far}");
        let ground = terminal_reward(&on, TerminationReason::Ground, 90.0, 10.0);
        assert!((ground + on.failure_penalty + 2.0 * 10f64.ln()).abs() < 1e-9);
        // A miss not yet measured adds nothing.
        assert_eq!(pay(&on, f64::INFINITY), pay(&off, f64::INFINITY));
    }

    #[test]
    fn effort_scales_with_command_and_period() {
        let c = RewardConfig::default();
        let a = effort_penalty(&c, 100.0, 400.0, 0.05);
        let b = effort_penalty(&c, 200.0, 400.0, 0.05);
        assert!((b / a - 4.0).abs() < 1e-12);
        let p = effort_penalty(&c, 100.0, 400.0, 0.1);
        assert!((p / a - 2.0).abs() < 1e-12);
    }
}
