//! Threat motion models, the maneuver library and engagement geometry.
//!
//! Threats are kinematic point masses (model reference section 4):
//! - **ballistic**: `dv/dt = g - (rho V_air / (2 beta)) v_air + a_man`, with
//!   ballistic coefficient `beta = m / (CD S)`;
//! - **cruise** (powered, level): thrust balances drag and lift balances
//!   gravity, so `dv/dt = a_man + a_hold`, every term perpendicular to `v`; the
//!   speed is renormalised after each step. `a_hold` is an optional PD altitude
//!   hold `P_perp(v_hat) (0, 0, -k_p (h - h_c) - k_d hdot)`.
//!
//! Maneuver accelerations are perpendicular to the velocity and their norm is
//! limited by the aerodynamic capability `min(a_struct, a_ref q / q_ref)`.
//! Switches (onset/end, bang-bang sign, jink sign) are evaluated once per step
//! and held; smooth patterns (weave, spiral) follow the stage time.

use hlynr_rng::Rng;
use serde::{Deserialize, Serialize};

use crate::integrate::{OdeState, World, rk4_step};
use crate::vec3::Vec3;

const Z_UP: Vec3 = Vec3::new(0.0, 0.0, 1.0);
const Y_NORTH: Vec3 = Vec3::new(0.0, 1.0, 0.0);

/// Position and velocity of the threat (also used for derivatives).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ThreatState {
    pub position_m: Vec3,
    pub velocity_mps: Vec3,
}

impl OdeState for ThreatState {
    #[inline]
    fn add_scaled(&self, r: &Self, h: f64) -> Self {
        Self {
            position_m: self.position_m + r.position_m * h,
            velocity_mps: self.velocity_mps + r.velocity_mps * h,
        }
    }
}

/// PD altitude hold of a cruise threat. A terminal pop-up or dive is a
/// scheduled change of `commanded_altitude_m`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct AltitudeHold {
    pub commanded_altitude_m: f64,
    /// Proportional gain (1/s^2).
    pub kp_per_s2: f64,
    /// Derivative gain (1/s).
    pub kd_per_s: f64,
}

/// How the threat moves when it is not maneuvering.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ThreatMotion {
    Ballistic {
        /// `m / (CD S)` (kg/m^2).
        ballistic_coefficient_kgpm2: f64,
    },
    Cruise {
        /// Held speed (m/s).
        speed_mps: f64,
        altitude_hold: Option<AltitudeHold>,
    },
}

/// Aerodynamic maneuver capability `min(max, ref q / q_ref)` (m/s^2).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ManeuverCapability {
    /// Structural limit (m/s^2).
    pub max_accel_mps2: f64,
    /// Acceleration available at the reference dynamic pressure (m/s^2).
    pub reference_accel_mps2: f64,
    /// Reference dynamic pressure (Pa).
    pub reference_dynamic_pressure_pa: f64,
}

impl ManeuverCapability {
    /// No dynamic-pressure limit, only the structural one.
    pub const fn unlimited(max_accel_mps2: f64) -> Self {
        Self {
            max_accel_mps2,
            reference_accel_mps2: f64::INFINITY,
            reference_dynamic_pressure_pa: 1.0,
        }
    }

    /// The limit at dynamic pressure `q_pa`.
    #[inline]
    pub fn limit_mps2(&self, q_pa: f64) -> f64 {
        let aero = if self.reference_accel_mps2.is_infinite() {
            f64::INFINITY
        } else {
            self.reference_accel_mps2 * q_pa / self.reference_dynamic_pressure_pa
        };
        self.max_accel_mps2.min(aero)
    }
}

/// Maneuver patterns (model reference section 4.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ManeuverKind {
    /// No maneuver.
    None,
    /// `n e` from onset on.
    Step,
    /// `n sign(sin(omega t + phi)) e`.
    BangBang,
    /// `n sin(omega t + phi) e`.
    Weave,
    /// `n (cos(omega t + phi) e1 + sin(omega t + phi) e2)`.
    Spiral,
    /// `+/- n e`, sign flipping at Poisson rate `nu`.
    Jink,
}

/// One episode's maneuver, fully parameterised (SI).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Maneuver {
    pub kind: ManeuverKind,
    /// Acceleration level `n_T` (m/s^2).
    pub accel_mps2: f64,
    /// Angular frequency for bang-bang, weave and spiral (rad/s).
    pub omega_radps: f64,
    /// Phase `phi` (rad).
    pub phase_rad: f64,
    /// Sign-flip rate of the jink (1/s).
    pub jink_rate_hz: f64,
    /// Start time (s).
    pub onset_s: f64,
    /// End time (s); infinite for "until the end".
    pub end_s: f64,
    /// Direction `e = cos(a) e1 + sin(a) e2` in the velocity-normal plane
    /// (`e1` up-ish, `e2 = v_hat x e1` horizontal). Held as an angle so `e`
    /// stays perpendicular as the velocity turns.
    pub direction_rad: f64,
    /// Restrict to the horizontal (`e = +/- e2`; a spiral becomes a
    /// horizontal weave): used for low-altitude threats that would otherwise
    /// fly into the ground.
    pub horizontal_only: bool,
    /// Held switch state: maneuver active in this step.
    pub active: bool,
    /// Held switch state: sign for bang-bang and jink.
    pub sign: f64,
}

impl Maneuver {
    /// No maneuver.
    pub const fn none() -> Self {
        Self {
            kind: ManeuverKind::None,
            accel_mps2: 0.0,
            omega_radps: 0.0,
            phase_rad: 0.0,
            jink_rate_hz: 0.0,
            onset_s: 0.0,
            end_s: f64::INFINITY,
            direction_rad: 0.0,
            horizontal_only: false,
            active: false,
            sign: 1.0,
        }
    }

    /// Evaluates the switches for the step `[t_s, t_s + h_s)`. Only the jink
    /// draws from `rng` (one uniform per active step): the probability of an
    /// odd number of Poisson flips in `h` is `(1 - exp(-2 nu h)) / 2`, which
    /// gives exactly the autocorrelation `exp(-2 nu |tau|)`.
    pub fn begin_step(&mut self, t_s: f64, h_s: f64, rng: &mut Rng) {
        self.active = self.kind != ManeuverKind::None && t_s >= self.onset_s && t_s < self.end_s;
        if !self.active {
            return;
        }
        match self.kind {
            ManeuverKind::BangBang => {
                self.sign = if (self.omega_radps * t_s + self.phase_rad).sin() >= 0.0 {
                    1.0
                } else {
                    -1.0
                };
            }
            ManeuverKind::Jink => {
                let p_flip = 0.5 * (1.0 - (-2.0 * self.jink_rate_hz * h_s).exp());
                if rng.uniform() < p_flip {
                    self.sign = -self.sign;
                }
            }
            _ => {}
        }
    }

    /// Commanded maneuver acceleration at stage time `t_s` for velocity
    /// direction `v_hat` (unclipped; perpendicular to `v_hat`).
    #[inline]
    pub fn accel_mps2(&self, t_s: f64, v_hat: Vec3) -> Vec3 {
        self.accel_along_direction(t_s, v_hat, self.direction_weights())
    }

    /// Weights `(sin a, cos a)` of `e2` and `e1` in the maneuver direction
    /// `e`; `(+/-1, 0)` when restricted to the horizontal. Constant over an
    /// episode, so integrators evaluate it once per step rather than per stage.
    #[inline]
    pub fn direction_weights(&self) -> (f64, f64) {
        if self.horizontal_only {
            let s = if self.direction_rad.sin() >= 0.0 {
                1.0
            } else {
                -1.0
            };
            (s, 0.0)
        } else {
            self.direction_rad.sin_cos()
        }
    }

    /// [`Maneuver::accel_mps2`] with the direction weights from
    /// [`Maneuver::direction_weights`] already evaluated.
    #[inline]
    fn accel_along_direction(&self, t_s: f64, v_hat: Vec3, (ws, wc): (f64, f64)) -> Vec3 {
        if !self.active {
            return Vec3::ZERO;
        }
        let (e1, e2) = maneuver_basis(v_hat);
        let e = if self.horizontal_only {
            e2 * ws
        } else {
            e1 * wc + e2 * ws
        };
        let n = self.accel_mps2;
        match self.kind {
            ManeuverKind::None => Vec3::ZERO,
            ManeuverKind::Step => e * n,
            ManeuverKind::BangBang | ManeuverKind::Jink => e * (n * self.sign),
            ManeuverKind::Weave => e * (n * (self.omega_radps * t_s + self.phase_rad).sin()),
            ManeuverKind::Spiral => {
                let (s, c) = (self.omega_radps * t_s + self.phase_rad).sin_cos();
                if self.horizontal_only {
                    e * (n * s)
                } else {
                    (e1 * c + e2 * s) * n
                }
            }
        }
    }
}

/// The maneuver basis: `e1 = unit(P_perp(v_hat) z_up)` (up-ish) and
/// `e2 = v_hat x e1` (horizontal). Near-vertical flight falls back to north
/// for `e1`, so the basis is always orthonormal.
#[inline]
pub fn maneuver_basis(v_hat: Vec3) -> (Vec3, Vec3) {
    let up = Z_UP.perp_to(v_hat);
    let e1 = if up.norm_sq() > 1e-6 {
        up.unit_or_zero()
    } else {
        Y_NORTH.perp_to(v_hat).unit_or_zero()
    };
    (e1, v_hat.cross(e1))
}

/// A threat: motion model, maneuver, capability and state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Threat {
    pub motion: ThreatMotion,
    pub maneuver: Maneuver,
    pub capability: ManeuverCapability,
    pub state: ThreatState,
}

impl Threat {
    /// Airspeed in wind `wind_mps` (m/s).
    #[inline]
    pub fn air_speed_mps(&self, wind_mps: Vec3) -> f64 {
        (self.state.velocity_mps - wind_mps).norm()
    }

    /// Evaluates the held maneuver switches for the coming step.
    pub fn begin_step(&mut self, t_s: f64, h_s: f64, rng: &mut Rng) {
        self.maneuver.begin_step(t_s, h_s, rng);
    }

    /// Maneuver acceleration at `t_s` for state `s`, norm-limited by the
    /// capability at the current dynamic pressure (m/s^2).
    #[inline]
    pub fn maneuver_accel_mps2(
        &self,
        world: &World,
        t_s: f64,
        s: &ThreatState,
        wind_mps: Vec3,
    ) -> Vec3 {
        self.maneuver_accel_along(
            world,
            t_s,
            s,
            wind_mps,
            s.velocity_mps.unit_or_zero(),
            self.maneuver.direction_weights(),
        )
    }

    /// [`Threat::maneuver_accel_mps2`] with the velocity direction `v_hat`
    /// already computed.
    #[inline]
    fn maneuver_accel_along(
        &self,
        world: &World,
        t_s: f64,
        s: &ThreatState,
        wind_mps: Vec3,
        v_hat: Vec3,
        direction: (f64, f64),
    ) -> Vec3 {
        if !self.maneuver.active {
            return Vec3::ZERO;
        }
        let v_air = s.velocity_mps - wind_mps;
        let rho = world.atmosphere.density_at(s.position_m.z);
        let q = 0.5 * rho * v_air.norm_sq();
        self.maneuver
            .accel_along_direction(t_s, v_hat, direction)
            .clamp_norm(self.capability.limit_mps2(q))
    }

    /// Time derivative of the threat state at `t_s`.
    #[inline]
    pub fn derivative(
        &self,
        world: &World,
        t_s: f64,
        s: &ThreatState,
        wind_mps: Vec3,
    ) -> ThreatState {
        self.derivative_with(world, t_s, s, wind_mps, self.maneuver.direction_weights())
    }

    /// [`Threat::derivative`] with the maneuver direction weights evaluated.
    #[inline]
    pub fn derivative_with(
        &self,
        world: &World,
        t_s: f64,
        s: &ThreatState,
        wind_mps: Vec3,
        direction: (f64, f64),
    ) -> ThreatState {
        let v = s.velocity_mps;
        let accel = match self.motion {
            ThreatMotion::Ballistic {
                ballistic_coefficient_kgpm2,
            } => {
                let rho = world.atmosphere.density_at(s.position_m.z);
                let v_air = v - wind_mps;
                let drag = v_air * (rho * v_air.norm() / (2.0 * ballistic_coefficient_kgpm2));
                let man = if self.maneuver.active {
                    let q = 0.5 * rho * v_air.norm_sq();
                    self.maneuver
                        .accel_along_direction(t_s, v.unit_or_zero(), direction)
                        .clamp_norm(self.capability.limit_mps2(q))
                } else {
                    Vec3::ZERO
                };
                world.gravity_mps2 - drag + man
            }
            ThreatMotion::Cruise { altitude_hold, .. } => {
                let v_hat = v.unit_or_zero();
                let hold = match altitude_hold {
                    Some(h) => {
                        let err = s.position_m.z - h.commanded_altitude_m;
                        Vec3::new(0.0, 0.0, -h.kp_per_s2 * err - h.kd_per_s * v.z).perp_to(v_hat)
                    }
                    None => Vec3::ZERO,
                };
                hold + self.maneuver_accel_along(world, t_s, s, wind_mps, v_hat, direction)
            }
        };
        ThreatState {
            position_m: v,
            velocity_mps: accel,
        }
    }

    /// One RK4 step of `h_s` from `t_s` (may be negative for
    /// back-propagation) with held wind.
    pub fn integrate(&mut self, world: &World, wind_mps: Vec3, t_s: f64, h_s: f64) {
        // Unused while the maneuver is inactive: skip its sin_cos then.
        let direction = if self.maneuver.active {
            self.maneuver.direction_weights()
        } else {
            (0.0, 0.0)
        };
        self.integrate_with(world, wind_mps, t_s, h_s, direction);
    }

    /// [`Threat::integrate`] with [`Maneuver::direction_weights`] already
    /// evaluated (constant over an episode).
    pub fn integrate_with(
        &mut self,
        world: &World,
        wind_mps: Vec3,
        t_s: f64,
        h_s: f64,
        direction: (f64, f64),
    ) {
        let y = self.state;
        self.state = rk4_step(t_s, &y, h_s, |t, s| {
            self.derivative_with(world, t, s, wind_mps, direction)
        });
    }

    /// Post-step: a cruise threat's speed is renormalised (its accelerations
    /// are all perpendicular to the velocity, so only round-off changes it).
    pub fn finish_step(&mut self) {
        if let ThreatMotion::Cruise { speed_mps, .. } = self.motion {
            let v = self.state.velocity_mps;
            let n = v.norm();
            if n > 0.0 {
                self.state.velocity_mps = v * (speed_mps / n);
            }
        }
    }
}

/// Aim point drawn uniformly (by area) in the horizontal disc of radius
/// `offset_m` around `defended_m`. The offset creates crossing geometry; with
/// zero offset every engagement is head-on.
pub fn draw_aim_point(defended_m: Vec3, offset_m: f64, rng: &mut Rng) -> Vec3 {
    let r = offset_m * rng.uniform().sqrt();
    let (s, c) = (std::f64::consts::TAU * rng.uniform()).sin_cos();
    defended_m + Vec3::new(r * s, r * c, 0.0)
}

/// Horizontal unit vector pointing toward azimuth `azimuth_rad` (from north,
/// clockwise).
#[inline]
pub fn horizontal_direction(azimuth_rad: f64) -> Vec3 {
    let (s, c) = azimuth_rad.sin_cos();
    Vec3::new(s, c, 0.0)
}

/// Start state of a cruise threat: `range_m` from the aim point horizontally
/// at azimuth `approach_azimuth_rad` (seen from the aim point), at
/// `altitude_m`, flying level toward the aim point at `speed_mps`.
pub fn cruise_start(
    aim_m: Vec3,
    range_m: f64,
    approach_azimuth_rad: f64,
    altitude_m: f64,
    speed_mps: f64,
) -> ThreatState {
    let out = horizontal_direction(approach_azimuth_rad);
    let mut position_m = aim_m + out * range_m;
    position_m.z = altitude_m;
    ThreatState {
        position_m,
        velocity_mps: -out * speed_mps,
    }
}

/// Impact velocity of a threat arriving from azimuth `approach_azimuth_rad`
/// (seen from the aim point), descending at `descent_rad` below the horizon
/// with speed `impact_speed_mps`.
pub fn impact_velocity(impact_speed_mps: f64, descent_rad: f64, approach_azimuth_rad: f64) -> Vec3 {
    let (sd, cd) = descent_rad.sin_cos();
    -horizontal_direction(approach_azimuth_rad) * (impact_speed_mps * cd)
        + Vec3::new(0.0, 0.0, -impact_speed_mps * sd)
}

/// Drag-free ballistic start state that arrives at `aim_m` with velocity
/// `impact_velocity_mps` after `time_to_impact_s`:
/// `v0 = v_imp - g T`, `r0 = aim - v_imp T + g T^2 / 2`.
pub fn ballistic_start_drag_free(
    aim_m: Vec3,
    impact_velocity_mps: Vec3,
    time_to_impact_s: f64,
    gravity_mps2: Vec3,
) -> ThreatState {
    let t = time_to_impact_s;
    ThreatState {
        position_m: aim_m - impact_velocity_mps * t + gravity_mps2 * (0.5 * t * t),
        velocity_mps: impact_velocity_mps - gravity_mps2 * t,
    }
}

/// Start state of `threat` (its motion model and capability; the maneuver is
/// ignored) that arrives at `aim_m` with `impact_velocity_mps` after
/// `time_to_impact_s`, found by integrating the same dynamics backwards with
/// step `-h_s` in the mean wind. Start states drawn independently of the
/// aim point give threats that land far from anything.
pub fn back_propagate(
    threat: &Threat,
    world: &World,
    wind: &crate::wind::WindParams,
    aim_m: Vec3,
    impact_velocity_mps: Vec3,
    time_to_impact_s: f64,
    h_s: f64,
) -> ThreatState {
    let mut t = Threat {
        maneuver: Maneuver::none(),
        state: ThreatState {
            position_m: aim_m,
            velocity_mps: impact_velocity_mps,
        },
        ..threat.clone()
    };
    let steps = (time_to_impact_s / h_s).round().max(1.0) as usize;
    let h = time_to_impact_s / steps as f64;
    let mut time = time_to_impact_s;
    for _ in 0..steps {
        let w = wind.mean_at(t.state.position_m.z);
        t.integrate(world, w, time, -h);
        time -= h;
    }
    t.state
}

/// A predicted intercept point.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct InterceptPoint {
    /// Time from now to the intercept (s).
    pub time_s: f64,
    /// Threat position at that time (m).
    pub position_m: Vec3,
}

/// Predicted intercept point: the earliest root of
/// `f(t) = |r_T(t) - r_L| - V_bar t` on `[0, horizon_s]`, bracketed on a
/// `scan_step_s` grid and refined by bisection. `predict(t)` gives the
/// threat's predicted position. Bisection converges whatever the speeds
/// (fixed-point iteration diverges when the threat is faster than `V_bar`).
/// `None` when the threat cannot be reached within the horizon.
pub fn predicted_intercept_point(
    launcher_m: Vec3,
    mean_speed_mps: f64,
    horizon_s: f64,
    scan_step_s: f64,
    mut predict: impl FnMut(f64) -> Vec3,
) -> Option<InterceptPoint> {
    let mut f = |t: f64| (predict(t) - launcher_m).norm() - mean_speed_mps * t;
    let mut lo = 0.0;
    if f(lo) <= 0.0 {
        return Some(InterceptPoint {
            time_s: 0.0,
            position_m: predict(0.0),
        });
    }
    while lo < horizon_s {
        let hi = (lo + scan_step_s).min(horizon_s);
        let f_hi = f(hi);
        if f_hi <= 0.0 {
            let (mut a, mut b) = (lo, hi);
            for _ in 0..100 {
                let mid = 0.5 * (a + b);
                if f(mid) > 0.0 {
                    a = mid
                } else {
                    b = mid
                }
                if b - a < 1e-9 {
                    break;
                }
            }
            return Some(InterceptPoint {
                time_s: b,
                position_m: predict(b),
            });
        }
        lo = hi;
    }
    None
}

/// Launch direction: `nominal` (toward the PIP) rotated by a heading error
/// drawn uniformly in `[0, heading_error_max_rad]` about a random axis
/// perpendicular to it, then raised to at least `min_elevation_rad`.
pub fn launch_direction(
    nominal: Vec3,
    heading_error_max_rad: f64,
    min_elevation_rad: f64,
    rng: &mut Rng,
) -> Vec3 {
    let u = nominal.unit_or_zero();
    let he = heading_error_max_rad * rng.uniform();
    let roll = std::f64::consts::TAU * rng.uniform();
    let (e1, e2) = maneuver_basis(u);
    let (sr, cr) = roll.sin_cos();
    let (sh, ch) = he.sin_cos();
    let d = u * ch + (e1 * cr + e2 * sr) * sh;
    raise_to_min_elevation(d, min_elevation_rad)
}

/// Keeps the azimuth of `direction` and raises its elevation to at least
/// `min_elevation_rad`.
pub fn raise_to_min_elevation(direction: Vec3, min_elevation_rad: f64) -> Vec3 {
    let d = direction.unit_or_zero();
    let horizontal = d.x.hypot(d.y);
    let el = d.z.atan2(horizontal);
    if el >= min_elevation_rad {
        return d;
    }
    let az = if horizontal > 1e-12 {
        d.x.atan2(d.y)
    } else {
        0.0
    };
    let (se, ce) = min_elevation_rad.sin_cos();
    horizontal_direction(az) * ce + Vec3::new(0.0, 0.0, se)
}
