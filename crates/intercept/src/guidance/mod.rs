//! Guidance (model section 7): classical laws and the common command pipeline.
//!
//! A law reads the engagement through a [`GuidanceInput`]: the interceptor's own
//! state and a [`TargetKinematics`]. In normal use the target comes from the
//! tracker's [`Estimate`] (`TargetKinematics::from(&estimate)`); the
//! "perfect-information" (`--oracle`) baseline passes the true target state through
//! the same type and the same functions, so the two differ only in their input.
//!
//! The pipeline ([`Guidance::command`]) applies, in order:
//! 1. launch/boost phase: PIP steering while `boost_phase` and a PIP is given (7.5);
//! 2. turn-around mode with hysteresis for negative closing or large look angles (7.4);
//! 3. the blind time: below `blind_time_s` of time-to-go the last command is held (7.1);
//! 4. the law, plus gravity compensation `-P_perp(x_b) g` unless the law already
//!    carries gravity in its ZEM (never both);
//! 5. `aero` vehicles: projection perpendicular to the body axis (fins cannot push
//!    along the velocity);
//! 6. `thruster` vehicles, law mode: the thrust authority the lateral command
//!    leaves unused is spent along the line of sight, toward the target
//!    ([`add_closing_thrust`]);
//! 7. ground-avoidance pull-up below `ground_avoid_altitude_m` while descending;
//! 8. a norm clip to `a_max` (never per axis).
//!
//! Why step 6: a thrust-vectored vehicle, unlike a finned one, can accelerate
//! along its velocity, and the laws command only the acceleration across the
//! line of sight (or the velocity). A slow thruster vehicle flown by them alone
//! never speeds up and arrives too late against all but the slowest targets;
//! pursuit-style thruster controllers instead put their full thrust on the
//! target. Spending the remainder along the line of sight keeps the law's
//! lateral command intact (it is never reduced) and adds closing speed, which
//! also shortens the time-to-go over which target motion must be predicted.

pub mod laws;

use hlynr_env::EnvError;
use serde::{Deserialize, Serialize};

use crate::Vec3;
use crate::tracker::Estimate;
pub use laws::{Apn, Ogl, Ppn, PurePursuit, Tpn, ZemPn, Zero, ogl_gain};

/// Floor of every time-to-go (s).
pub const T_GO_MIN_S: f64 = 0.05;

/// Unit up vector.
const Z_UP: Vec3 = Vec3::new(0.0, 0.0, 1.0);

/// What guidance knows about the target: position, velocity, acceleration.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TargetKinematics {
    /// Position (m).
    pub position_m: Vec3,
    /// Velocity (m/s).
    pub velocity_mps: Vec3,
    /// Total acceleration estimate (m/s^2).
    pub acceleration_mps2: Vec3,
    /// Known part of the acceleration (gravity for a ballistic target, else zero);
    /// ZEM-PN extrapolates only this part.
    pub known_acceleration_mps2: Vec3,
}

impl From<&Estimate> for TargetKinematics {
    fn from(e: &Estimate) -> Self {
        Self {
            position_m: e.position_m(),
            velocity_mps: e.velocity_mps(),
            acceleration_mps2: e.acceleration_mps2(),
            known_acceleration_mps2: e.known_acceleration_mps2(),
        }
    }
}

/// Interceptor airframe kind, which decides how commands are projected.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VehicleKind {
    /// Fin-steered: lateral acceleration only (perpendicular to the body axis).
    #[default]
    Aero,
    /// Omnidirectional thrust vector.
    Thruster,
}

/// The interceptor's own state as guidance sees it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct InterceptorKinematics {
    /// Position (m).
    pub position_m: Vec3,
    /// Inertial velocity (m/s).
    pub velocity_mps: Vec3,
    /// Body axis (unit air-relative velocity in the 3-DOF model); zero means "use
    /// the direction of `velocity_mps`".
    pub body_axis: Vec3,
    /// Achieved lateral acceleration `a_L` (m/s^2), used by OGL.
    pub lateral_accel_mps2: Vec3,
    /// Current acceleration limit (m/s^2).
    pub a_max_mps2: f64,
    /// Autopilot time constant (s); 0 for no lag.
    pub autopilot_tau_s: f64,
    /// Airframe kind.
    pub kind: VehicleKind,
}

/// Everything a guidance law may read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GuidanceInput {
    /// Simulation time (s).
    pub time_s: f64,
    /// Own state.
    pub interceptor: InterceptorKinematics,
    /// Target (estimate, or truth for the oracle baseline).
    pub target: TargetKinematics,
    /// Gravity vector (m/s^2), `(0, 0, -g0)`.
    pub gravity_mps2: Vec3,
    /// True from launch to burnout (enables PIP steering when `pip_m` is given).
    pub boost_phase: bool,
    /// Predicted intercept point (m), if the caller computes one.
    pub pip_m: Option<Vec3>,
}

/// Relative engagement geometry (model section 1).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Geometry {
    /// `r = r_T - r_M` (m).
    pub r: Vec3,
    /// `v = v_T - v_M` (m/s).
    pub v: Vec3,
    /// `R = |r|` (m).
    pub range_m: f64,
    /// LOS unit vector.
    pub los: Vec3,
    /// `V_c = -(r.v)/R` (m/s).
    pub closing_speed_mps: f64,
    /// `Omega = (r x v)/R^2` (rad/s).
    pub los_rate: Vec3,
    /// `t_go = R/V_c` (infinite when not closing), floored at [`T_GO_MIN_S`].
    pub t_go_range_s: f64,
    /// `t_go = -(r.v)/(v.v)` (exact CPA time), with the `R/max(V_c, 1)` fallback,
    /// floored at [`T_GO_MIN_S`].
    pub t_go_cpa_s: f64,
    /// The time-to-go selected by the configured form.
    pub t_go_s: f64,
    /// Interceptor speed (m/s).
    pub speed_mps: f64,
    /// Unit interceptor velocity.
    pub velocity_dir: Vec3,
    /// Body axis used for projections.
    pub body_axis: Vec3,
    /// Look angle between `v_M` and the LOS (rad).
    pub look_angle_rad: f64,
}

/// Which time-to-go the ZEM-type laws use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TGoForm {
    /// `-(r.v)/(v.v)`: exact closest-approach time (default; robust in crossing geometry).
    #[default]
    Cpa,
    /// `R/V_c`: the classical PN form.
    Range,
}

/// Computes the engagement geometry.
pub fn geometry(input: &GuidanceInput, form: TGoForm) -> Geometry {
    let m = &input.interceptor;
    let r = input.target.position_m - m.position_m;
    let v = input.target.velocity_mps - m.velocity_mps;
    let range = r.norm();
    let los = r.unit_or_zero();
    let closing = if range > 0.0 { -r.dot(v) / range } else { 0.0 };
    let los_rate = if range > 0.0 {
        r.cross(v) / (range * range)
    } else {
        Vec3::ZERO
    };
    let t_go_range = if closing > 0.0 {
        (range / closing).max(T_GO_MIN_S)
    } else {
        f64::INFINITY
    };
    let vv = v.norm_sq();
    let t_go_cpa = if vv < 1e-6 {
        range / closing.max(1.0)
    } else {
        -r.dot(v) / vv
    }
    .max(T_GO_MIN_S);
    let speed = m.velocity_mps.norm();
    let velocity_dir = m.velocity_mps.unit_or_zero();
    let body_axis = if m.body_axis == Vec3::ZERO {
        velocity_dir
    } else {
        m.body_axis.unit_or_zero()
    };
    let look = velocity_dir.dot(los).clamp(-1.0, 1.0).acos();
    Geometry {
        r,
        v,
        range_m: range,
        los,
        closing_speed_mps: closing,
        los_rate,
        t_go_range_s: t_go_range,
        t_go_cpa_s: t_go_cpa,
        t_go_s: match form {
            TGoForm::Cpa => t_go_cpa,
            TGoForm::Range => t_go_range.min(t_go_cpa.max(range / closing.max(1.0))),
        },
        speed_mps: speed,
        velocity_dir,
        body_axis,
        look_angle_rad: look,
    }
}

/// A guidance law: maps geometry to a raw world-frame acceleration command.
pub trait GuidanceLaw: std::fmt::Debug + Send + Sync {
    /// The law's name as used in configs and on the command line.
    fn name(&self) -> &'static str;
    /// True when the law handles gravity itself (through `a_rel` in its ZEM), so
    /// the pipeline must not add compensation.
    fn gravity_in_law(&self) -> bool {
        false
    }
    /// True for a law that does not steer (no turn-around, boost steering, pull-up
    /// or blind-time hold is applied to it).
    fn is_passive(&self) -> bool {
        false
    }
    /// The raw command.
    fn accel(&self, g: &Geometry, input: &GuidanceInput) -> Vec3;
}

/// Names accepted by [`law_from_name`].
pub const LAW_NAMES: [&str; 7] = ["zero", "pursuit", "ppn", "tpn", "zem-pn", "apn", "ogl"];

/// Guidance configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GuidanceConfig {
    /// Law name (one of [`LAW_NAMES`]). Default `zem-pn`.
    pub law: String,
    /// Navigation constant `N`; absent means 3 for `apn`, 4 otherwise.
    pub nav_gain: Option<f64>,
    /// Pure-pursuit gain `K_p` (1/s). Default 3.
    pub pursuit_gain_per_s: f64,
    /// APN augmentation only below this time-to-go (s). Default 2.
    pub apn_gate_t_go_s: f64,
    /// Cap of the OGL gain `N'`. Default 10.
    pub ogl_gain_cap: f64,
    /// Time-to-go form of the ZEM-type laws. Default `cpa`.
    pub t_go_form: TGoForm,
    /// Add `-P_perp(x_b) g` for laws that do not carry gravity. Default true.
    pub gravity_compensation: bool,
    /// Hold the last command below this time-to-go (s). Default 0.1.
    pub blind_time_s: f64,
    /// Enter turn-around below this closing speed (m/s). Default 50.
    pub turnaround_enter_closing_mps: f64,
    /// Leave turn-around above this closing speed (m/s). Default 100.
    pub turnaround_exit_closing_mps: f64,
    /// Enter turn-around above this look angle (deg). Default 90.
    pub turnaround_enter_look_deg: f64,
    /// Leave turn-around below this look angle (deg). Default 60.
    pub turnaround_exit_look_deg: f64,
    /// Full pull-up below this altitude while descending (m); 0 disables. Default 50.
    pub ground_avoid_altitude_m: f64,
}

impl Default for GuidanceConfig {
    fn default() -> Self {
        Self {
            law: "zem-pn".to_string(),
            nav_gain: None,
            pursuit_gain_per_s: 3.0,
            apn_gate_t_go_s: 2.0,
            ogl_gain_cap: 10.0,
            t_go_form: TGoForm::Cpa,
            gravity_compensation: true,
            blind_time_s: 0.1,
            turnaround_enter_closing_mps: 50.0,
            turnaround_exit_closing_mps: 100.0,
            turnaround_enter_look_deg: 90.0,
            turnaround_exit_look_deg: 60.0,
            ground_avoid_altitude_m: 50.0,
        }
    }
}

fn check(key: &str, v: f64, lo: f64, hi: f64) -> Result<(), EnvError> {
    if v.is_finite() && v >= lo && v <= hi {
        Ok(())
    } else {
        Err(EnvError::invalid(
            key,
            format!("must be in [{lo}, {hi}], got {v}"),
        ))
    }
}

impl GuidanceConfig {
    /// Checks every key; the error names the key.
    pub fn validate(&self) -> Result<(), EnvError> {
        if let Some(n) = self.nav_gain {
            check("guidance.nav_gain", n, 0.5, 20.0)?;
        }
        check(
            "guidance.pursuit_gain_per_s",
            self.pursuit_gain_per_s,
            0.0,
            100.0,
        )?;
        if self.apn_gate_t_go_s.is_nan() || self.apn_gate_t_go_s < 0.0 {
            return Err(EnvError::invalid(
                "guidance.apn_gate_t_go_s",
                format!("must be >= 0 (inf: always), got {}", self.apn_gate_t_go_s),
            ));
        }
        check("guidance.ogl_gain_cap", self.ogl_gain_cap, 3.0, 1000.0)?;
        check("guidance.blind_time_s", self.blind_time_s, 0.0, 10.0)?;
        check(
            "guidance.turnaround_enter_closing_mps",
            self.turnaround_enter_closing_mps,
            -1e4,
            1e4,
        )?;
        check(
            "guidance.turnaround_exit_closing_mps",
            self.turnaround_exit_closing_mps,
            self.turnaround_enter_closing_mps,
            1e4,
        )?;
        check(
            "guidance.turnaround_enter_look_deg",
            self.turnaround_enter_look_deg,
            0.0,
            180.0,
        )?;
        check(
            "guidance.turnaround_exit_look_deg",
            self.turnaround_exit_look_deg,
            0.0,
            self.turnaround_enter_look_deg,
        )?;
        check(
            "guidance.ground_avoid_altitude_m",
            self.ground_avoid_altitude_m,
            0.0,
            1e4,
        )
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Builds the law named `name` with the parameters of `config`. An unknown name
/// is an error that lists the valid names and suggests the closest one.
pub fn law_from_name(
    name: &str,
    config: &GuidanceConfig,
) -> Result<Box<dyn GuidanceLaw>, EnvError> {
    let key = name.trim().to_ascii_lowercase();
    let n = |default: f64| config.nav_gain.unwrap_or(default);
    let law: Box<dyn GuidanceLaw> = match key.as_str() {
        "zero" => Box::new(Zero),
        "pursuit" => Box::new(PurePursuit {
            gain_per_s: config.pursuit_gain_per_s,
        }),
        "ppn" => Box::new(Ppn { nav_gain: n(4.0) }),
        "tpn" => Box::new(Tpn { nav_gain: n(4.0) }),
        "zem-pn" => Box::new(ZemPn { nav_gain: n(4.0) }),
        "apn" => Box::new(Apn {
            nav_gain: n(3.0),
            gate_t_go_s: config.apn_gate_t_go_s,
        }),
        "ogl" => Box::new(Ogl {
            gain_cap: config.ogl_gain_cap,
        }),
        _ => {
            let closest = LAW_NAMES
                .iter()
                .min_by_key(|c| edit_distance(&key, c))
                .copied()
                .unwrap_or("zem-pn");
            return Err(EnvError::invalid(
                "guidance.law",
                format!(
                    "unknown law '{name}'; did you mean '{closest}'? (valid: {})",
                    LAW_NAMES.join(", ")
                ),
            ));
        }
    };
    Ok(law)
}

/// Which branch of the pipeline produced a command.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum GuidanceMode {
    /// The configured law.
    #[default]
    Law,
    /// PIP steering during boost.
    Boost,
    /// Turn-around (negative closing or large look angle).
    TurnAround,
    /// The last command, held inside the blind time.
    BlindHold,
    /// Ground-avoidance pull-up.
    PullUp,
}

/// The pipeline's state between calls (for checkpoints).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GuidanceState {
    /// Last command issued (held inside the blind time).
    pub last_command_mps2: Option<Vec3>,
    /// Whether turn-around mode is active.
    pub turnaround: bool,
}

/// One guidance output.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct GuidanceCommand {
    /// World-frame acceleration command after the whole pipeline (m/s^2).
    pub accel_mps2: Vec3,
    /// The branch that produced it.
    pub mode: GuidanceMode,
    /// Whether the norm clip bound.
    pub saturated: bool,
}

/// A guidance law with the common pipeline and its state.
#[derive(Debug)]
pub struct Guidance {
    config: GuidanceConfig,
    law: Box<dyn GuidanceLaw>,
    state: GuidanceState,
}

impl Guidance {
    /// Validates `config` and builds its law.
    pub fn new(config: &GuidanceConfig) -> Result<Self, EnvError> {
        config.validate()?;
        Ok(Self {
            law: law_from_name(&config.law, config)?,
            config: config.clone(),
            state: GuidanceState::default(),
        })
    }

    /// The law's name.
    pub fn law_name(&self) -> &'static str {
        self.law.name()
    }

    /// The law itself.
    pub fn law(&self) -> &dyn GuidanceLaw {
        self.law.as_ref()
    }

    /// Clears the pipeline state (new episode).
    pub fn reset(&mut self) {
        self.state = GuidanceState::default();
    }

    /// The pipeline state.
    pub fn state(&self) -> GuidanceState {
        self.state
    }

    /// Restores a saved pipeline state.
    pub fn set_state(&mut self, state: GuidanceState) {
        self.state = state;
    }

    /// Runs the pipeline for one guidance update.
    pub fn command(&mut self, input: &GuidanceInput) -> GuidanceCommand {
        let c = &self.config;
        let g = geometry(input, c.t_go_form);
        let m = &input.interceptor;
        let a_max = m.a_max_mps2.max(0.0);
        let passive = self.law.is_passive();
        let gravity_perp = match m.kind {
            VehicleKind::Aero => input.gravity_mps2.perp_to(g.body_axis),
            VehicleKind::Thruster => input.gravity_mps2,
        };

        let look_deg = g.look_angle_rad.to_degrees();
        if !passive {
            if self.state.turnaround {
                if g.closing_speed_mps > c.turnaround_exit_closing_mps
                    && look_deg < c.turnaround_exit_look_deg
                {
                    self.state.turnaround = false;
                }
            } else if g.closing_speed_mps < c.turnaround_enter_closing_mps
                || look_deg > c.turnaround_enter_look_deg
            {
                self.state.turnaround = true;
            }
        }

        let (mut a, mut mode) = if !passive && input.boost_phase && input.pip_m.is_some() {
            let pip = input.pip_m.unwrap_or(m.position_m);
            let dir = (pip - m.position_m).unit_or_zero();
            (
                3.0 * g.speed_mps.max(100.0) * dir.perp_to(g.velocity_dir) - gravity_perp,
                GuidanceMode::Boost,
            )
        } else if !passive && self.state.turnaround {
            (
                a_max * turn_direction(g.velocity_dir, g.los),
                GuidanceMode::TurnAround,
            )
        } else if !passive
            && g.t_go_cpa_s < c.blind_time_s
            && self.state.last_command_mps2.is_some()
        {
            let held = self.state.last_command_mps2.unwrap_or(Vec3::ZERO);
            return GuidanceCommand {
                accel_mps2: held,
                mode: GuidanceMode::BlindHold,
                saturated: false,
            };
        } else {
            let mut a = self.law.accel(&g, input);
            if c.gravity_compensation && !self.law.gravity_in_law() {
                a -= gravity_perp;
            }
            (a, GuidanceMode::Law)
        };
        match m.kind {
            VehicleKind::Aero => a = a.perp_to(g.body_axis),
            VehicleKind::Thruster if mode == GuidanceMode::Law && !passive => {
                a = add_closing_thrust(a, g.los, a_max);
            }
            VehicleKind::Thruster => {}
        }
        let climb = m.velocity_mps.z;
        if !passive
            && c.ground_avoid_altitude_m > 0.0
            && m.position_m.z < c.ground_avoid_altitude_m
            && climb < 0.0
        {
            a = a_max * perpendicular_up(g.body_axis);
            mode = GuidanceMode::PullUp;
        }
        if !a.is_finite() {
            a = Vec3::ZERO;
        }
        let saturated = a.norm() > a_max;
        let a = a.clamp_norm(a_max);
        self.state.last_command_mps2 = Some(a);
        GuidanceCommand {
            accel_mps2: a,
            mode,
            saturated,
        }
    }
}

/// `a + s lam` with the largest `s >= 0` such that `|a + s lam| <= a_max`:
/// the thrust left after the command `a` (m/s^2), spent along the unit line of
/// sight `lam` toward the target. `a` is returned unchanged when it already
/// uses the whole authority (the final norm clip then applies as usual).
/// `s` solves `|a|^2 + 2 s (a . lam) + s^2 = a_max^2`.
pub fn add_closing_thrust(a: Vec3, lam: Vec3, a_max: f64) -> Vec3 {
    let a_sq = a.norm_sq();
    let a_max_sq = a_max * a_max;
    if a_sq >= a_max_sq || lam.norm_sq() == 0.0 {
        return a;
    }
    let b = a.dot(lam);
    let s = -b + (b * b + a_max_sq - a_sq).sqrt();
    a + lam * s
}

/// Unit vector perpendicular to `u`, as close to straight up as possible
/// (east when `u` is vertical).
fn perpendicular_up(u: Vec3) -> Vec3 {
    let p = Z_UP.perp_to(u);
    if p.norm_sq() > 1e-12 {
        p.unit_or_zero()
    } else {
        Vec3::new(1.0, 0.0, 0.0).perp_to(u).unit_or_zero()
    }
}

/// Turn-around direction: `unit(P_perp(v_hat) lam)`, or any perpendicular
/// (preferring up) when the LOS is (anti)parallel to the velocity.
fn turn_direction(velocity_dir: Vec3, los: Vec3) -> Vec3 {
    let p = los.perp_to(velocity_dir);
    if p.norm_sq() > 1e-8 {
        p.unit_or_zero()
    } else {
        perpendicular_up(velocity_dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_names_and_suggest_on_typo() {
        let cfg = GuidanceConfig::default();
        for name in LAW_NAMES {
            assert_eq!(law_from_name(name, &cfg).unwrap().name(), name);
        }
        let e = law_from_name("zem-pm", &cfg).unwrap_err().to_string();
        assert!(e.contains("did you mean 'zem-pn'"), "{e}");
        let e = law_from_name("pursiut", &cfg).unwrap_err().to_string();
        assert!(e.contains("'pursuit'"), "{e}");
        let bad = GuidanceConfig {
            nav_gain: Some(-1.0),
            ..Default::default()
        };
        assert!(
            Guidance::new(&bad)
                .unwrap_err()
                .to_string()
                .contains("guidance.nav_gain")
        );
        assert!(serde_json::from_str::<GuidanceConfig>(r#"{"nav": 3}"#).is_err());
    }

    #[test]
    fn closing_thrust_fills_the_authority_along_the_los_without_touching_the_lateral_part() {
        let lam = Vec3::new(0.6, 0.8, 0.0);
        let lateral = Vec3::new(-8.0, 6.0, 3.0); // perpendicular to lam
        let a_max = 35.0;
        let a = add_closing_thrust(lateral, lam, a_max);
        assert!((a.norm() - a_max).abs() < 1e-9, "{a:?}");
        assert!((a.perp_to(lam) - lateral).norm() < 1e-9, "{a:?}");
        assert!(a.dot(lam) > 0.0, "thrust must close: {a:?}");
        // A command with an along-LOS part: the added thrust is still along lam
        // and the result sits on the authority sphere.
        let opening = lateral - lam * 10.0;
        let b = add_closing_thrust(opening, lam, a_max);
        assert!((b.norm() - a_max).abs() < 1e-9);
        assert!((b - opening).cross(lam).norm() < 1e-9);
        assert!((b - opening).dot(lam) > 0.0);
        // A saturated command is left alone; no LOS, nothing added.
        let big = Vec3::new(0.0, 0.0, 50.0);
        assert_eq!(add_closing_thrust(big, lam, a_max), big);
        assert_eq!(add_closing_thrust(lateral, Vec3::ZERO, a_max), lateral);
    }
}
