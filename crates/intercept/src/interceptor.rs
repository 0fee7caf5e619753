//! Interceptor models: `aero` (trimmed point mass with lift, default) and
//! `thruster` (omnidirectional thrust vector with a propellant budget).
//!
//! # `aero`
//! The body axis is the air-relative velocity `x_b = unit(v - w)`. Thrust and
//! drag act along it; lift gives a lateral acceleration `a_L` perpendicular to
//! it, following the command through a first-order autopilot:
//! ```text
//! dv/dt   = ((T - D)/m) x_b + P_perp(x_b) a_L + g
//! da_L/dt = (sat(P_perp(x_b) a_cmd, a_max) - a_L) / tau_ap       (sat = norm clip)
//! dm/dt   = -T / (Isp g0)
//! a_max   = min(a_struct, q S CL_max / m + T sin(delta_tvc) / m)
//! D       = q S (CD0(Mach) + dCD_base(Mach) [coasting] + k CL^2),  CL = m a_lift / (q S)
//! ```
//! The induced-drag lift coefficient counts only the aerodynamic share of the
//! lateral acceleration (`a_lift = min(|a_L|, q S CL_max / m)`): thrust-vector
//! turning at launch, where `q` is tiny, produces no lift and no induced drag.
//!
//! # `thruster`
//! ```text
//! dF/dt = (sat(F_cmd, F_max) - F) / tau_F
//! dv/dt = F/m - (0.5 rho V_air CD S / m) v_air + g
//! dm/dt = -|F| / (Isp g0)          F := 0 and no new thrust once m <= m_dry
//! ```
//! The limit is a norm limit, never per axis, so the dynamics stay rotation
//! invariant.
//!
//! # Control effort
//! Both models integrate `control_effort_m2ps3 = integral |a_c|^2 dt`, where
//! `a_c` is the achieved control acceleration: `P_perp(x_b) a_L` for `aero`,
//! `F / m` for `thruster`. It is the "integral of |a|^2" of the evaluation
//! reports (units (m/s^2)^2 s = m^2/s^3). Propellant used is reported
//! separately in kg.

use serde::{Deserialize, Serialize};

use crate::atmosphere::AirState;
use crate::integrate::{EVENT_EPSILON_S, OdeState, World, rk4_step};
use crate::units::G0_MPS2;
use crate::vec3::Vec3;

/// Below this airspeed (m/s) the body axis falls back to the ground velocity
/// direction; launch always starts at rail-exit speed, so this only guards
/// against degenerate input.
const MIN_AIRSPEED_MPS: f64 = 1e-6;

/// One piecewise-constant motor stage.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct MotorStage {
    /// Time since launch at which the stage ends (s, cumulative).
    pub end_time_s: f64,
    /// Thrust during the stage (N).
    pub thrust_n: f64,
    /// Propellant mass flow during the stage (kg/s), `T / (Isp g0)`.
    pub mass_flow_kgps: f64,
}

/// Zero-lift drag coefficients versus Mach, linearly interpolated and held at
/// the end values outside the table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DragTable {
    /// Strictly increasing Mach numbers.
    pub mach: Vec<f64>,
    /// Zero-lift drag coefficient with the motor burning.
    pub cd0: Vec<f64>,
    /// Base-drag increment added while coasting.
    pub base_drag: Vec<f64>,
}

impl DragTable {
    /// The slender tail-controlled body of the model reference (section 2.1).
    pub fn slender_body() -> Self {
        Self {
            mach: vec![0.0, 0.5, 0.8, 1.05, 2.0, 3.0, 4.0, 5.0],
            cd0: vec![0.31, 0.31, 0.36, 1.04, 0.53, 0.42, 0.36, 0.33],
            base_drag: vec![0.070, 0.070, 0.080, 0.108, 0.075, 0.049, 0.033, 0.020],
        }
    }

    /// Zero-lift drag coefficient (including base drag when coasting) at `mach`.
    #[inline]
    pub fn zero_lift_cd(&self, mach: f64, thrusting: bool) -> f64 {
        let n = self.mach.len();
        if mach <= self.mach[0] {
            return self.cd0[0] + if thrusting { 0.0 } else { self.base_drag[0] };
        }
        if mach >= self.mach[n - 1] {
            return self.cd0[n - 1]
                + if thrusting {
                    0.0
                } else {
                    self.base_drag[n - 1]
                };
        }
        let mut i = 0;
        while self.mach[i + 1] < mach {
            i += 1;
        }
        let f = (mach - self.mach[i]) / (self.mach[i + 1] - self.mach[i]);
        let lerp = |v: &[f64]| v[i] + f * (v[i + 1] - v[i]);
        lerp(&self.cd0)
            + if thrusting {
                0.0
            } else {
                lerp(&self.base_drag)
            }
    }
}

/// Parameters of the `aero` model, SI, with any domain randomisation already
/// applied.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AeroParams {
    /// Mass at burnout (structure and payload), kg.
    pub burnout_mass_kg: f64,
    /// Aerodynamic reference area `pi d^2 / 4` (m^2).
    pub reference_area_m2: f64,
    /// Motor stages in time order; after the last one the vehicle coasts.
    pub stages: Vec<MotorStage>,
    pub drag: DragTable,
    pub cl_max: f64,
    /// Induced-drag factor `k` of the parabolic polar `CD_i = k CL^2`.
    pub k_induced: f64,
    /// Structural lateral acceleration cap (m/s^2).
    pub max_structural_accel_mps2: f64,
    /// `sin(delta_tvc_max)`; 0 without thrust-vector control.
    pub tvc_sin: f64,
    /// Autopilot time constant (s).
    pub autopilot_tau_s: f64,
}

impl AeroParams {
    /// Total propellant carried (kg).
    pub fn propellant_mass_kg(&self) -> f64 {
        let mut start = 0.0;
        let mut total = 0.0;
        for s in &self.stages {
            total += s.mass_flow_kgps * (s.end_time_s - start);
            start = s.end_time_s;
        }
        total
    }

    /// Mass at launch (kg).
    pub fn launch_mass_kg(&self) -> f64 {
        self.burnout_mass_kg + self.propellant_mass_kg()
    }

    /// Time of motor burnout (s after launch).
    pub fn burn_time_s(&self) -> f64 {
        self.stages.last().map_or(0.0, |s| s.end_time_s)
    }

    /// Thrust and mass flow at time `t_s` (the stage containing `t_s`, with
    /// boundaries within [`EVENT_EPSILON_S`] counting as already passed).
    #[inline]
    pub fn motor_at(&self, t_s: f64) -> (f64, f64) {
        for s in &self.stages {
            if t_s < s.end_time_s - EVENT_EPSILON_S {
                return (s.thrust_n, s.mass_flow_kgps);
            }
        }
        (0.0, 0.0)
    }

    /// Lateral acceleration limit `min(a_struct, a_aero + a_tvc)` (m/s^2) at
    /// dynamic pressure `q_pa`, mass `mass_kg` and thrust `thrust_n`.
    #[inline]
    pub fn max_lateral_accel_mps2(&self, q_pa: f64, mass_kg: f64, thrust_n: f64) -> f64 {
        let aero = q_pa * self.reference_area_m2 * self.cl_max / mass_kg;
        let tvc = thrust_n * self.tvc_sin / mass_kg;
        self.max_structural_accel_mps2.min(aero + tvc)
    }
}

/// Air-relative flight condition of a vehicle.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FlightCondition {
    /// Unit body axis (air-relative velocity direction).
    pub body_axis: Vec3,
    pub air_speed_mps: f64,
    pub dynamic_pressure_pa: f64,
    pub mach: f64,
    pub air: AirState,
}

/// Flight condition of a vehicle at `position_m` with velocity `velocity_mps`
/// in wind `wind_mps`: one atmosphere lookup, shared by every term.
/// Always inlined: it runs in every RK4 stage, and inlining lets the
/// compiler drop the fields a caller does not read.
#[inline(always)]
pub fn flight_condition(
    world: &World,
    position_m: Vec3,
    velocity_mps: Vec3,
    wind_mps: Vec3,
) -> FlightCondition {
    let air = world.atmosphere.at(position_m.z);
    let v_air = velocity_mps - wind_mps;
    let speed = v_air.norm();
    let body_axis = if speed > MIN_AIRSPEED_MPS {
        v_air * (1.0 / speed)
    } else {
        velocity_mps.unit_or_zero()
    };
    FlightCondition {
        body_axis,
        air_speed_mps: speed,
        dynamic_pressure_pa: 0.5 * air.density_kgpm3 * speed * speed,
        mach: speed / air.speed_of_sound_mps,
        air,
    }
}

/// State of the `aero` model (also used for its time derivatives).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AeroState {
    pub position_m: Vec3,
    pub velocity_mps: Vec3,
    pub mass_kg: f64,
    /// Achieved lateral acceleration, perpendicular to the body axis (m/s^2).
    pub lateral_accel_mps2: Vec3,
    /// Integral of the squared achieved lateral acceleration (m^2/s^3).
    pub control_effort_m2ps3: f64,
}

impl OdeState for AeroState {
    #[inline]
    fn add_scaled(&self, r: &Self, h: f64) -> Self {
        Self {
            position_m: self.position_m + r.position_m * h,
            velocity_mps: self.velocity_mps + r.velocity_mps * h,
            mass_kg: self.mass_kg + r.mass_kg * h,
            lateral_accel_mps2: self.lateral_accel_mps2 + r.lateral_accel_mps2 * h,
            control_effort_m2ps3: self.control_effort_m2ps3 + r.control_effort_m2ps3 * h,
        }
    }
}

/// An `aero` interceptor: parameters, state and the held command.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AeroInterceptor {
    pub params: AeroParams,
    pub state: AeroState,
    /// Commanded acceleration (world frame, m/s^2); only its component
    /// perpendicular to the body axis is flown.
    pub command_mps2: Vec3,
}

impl AeroInterceptor {
    /// Launch from `position_m` along `direction` (any non-zero vector) at the
    /// rail-exit speed `launch_speed_mps` (> 0, so the body axis is defined).
    pub fn launch(
        params: AeroParams,
        position_m: Vec3,
        direction: Vec3,
        launch_speed_mps: f64,
    ) -> Self {
        let mass_kg = params.launch_mass_kg();
        Self {
            params,
            state: AeroState {
                position_m,
                velocity_mps: direction.unit_or_zero() * launch_speed_mps,
                mass_kg,
                lateral_accel_mps2: Vec3::ZERO,
                control_effort_m2ps3: 0.0,
            },
            command_mps2: Vec3::ZERO,
        }
    }

    /// Time derivative of the state with held thrust, mass flow and wind.
    #[inline]
    pub fn derivative(
        &self,
        world: &World,
        s: &AeroState,
        thrust_n: f64,
        mass_flow_kgps: f64,
        wind_mps: Vec3,
    ) -> AeroState {
        let p = &self.params;
        let fc = flight_condition(world, s.position_m, s.velocity_mps, wind_mps);
        let x_b = fc.body_axis;
        let m = s.mass_kg;
        // One division per stage: every per-mass term uses the reciprocal.
        let inv_m = 1.0 / m;
        let q_s = fc.dynamic_pressure_pa * p.reference_area_m2;
        let aero_limit = q_s * p.cl_max * inv_m;
        let a_max = p
            .max_structural_accel_mps2
            .min(aero_limit + thrust_n * p.tvc_sin * inv_m);

        let a_lat = s.lateral_accel_mps2.perp_to(x_b);
        let a_lat_norm = a_lat.norm();
        let lift_accel = a_lat_norm.min(aero_limit);
        let induced_cd = if q_s > 0.0 {
            let cl = m * lift_accel / q_s;
            p.k_induced * cl * cl
        } else {
            0.0
        };
        let cd = p.drag.zero_lift_cd(fc.mach, thrust_n > 0.0) + induced_cd;
        let drag_n = q_s * cd;

        let target = self.command_mps2.perp_to(x_b).clamp_norm(a_max);
        AeroState {
            position_m: s.velocity_mps,
            velocity_mps: x_b * ((thrust_n - drag_n) * inv_m) + a_lat + world.gravity_mps2,
            mass_kg: -mass_flow_kgps,
            lateral_accel_mps2: (target - s.lateral_accel_mps2) * (1.0 / p.autopilot_tau_s),
            control_effort_m2ps3: a_lat_norm * a_lat_norm,
        }
    }

    /// Lateral acceleration limit now (m/s^2), at time `t_s` in wind `wind_mps`.
    pub fn max_lateral_accel_mps2(&self, world: &World, wind_mps: Vec3, t_s: f64) -> f64 {
        let fc = flight_condition(
            world,
            self.state.position_m,
            self.state.velocity_mps,
            wind_mps,
        );
        let (thrust, _) = self.params.motor_at(t_s);
        self.params
            .max_lateral_accel_mps2(fc.dynamic_pressure_pa, self.state.mass_kg, thrust)
    }

    /// Motor burn time left at `t_s` (s).
    pub fn remaining_burn_time_s(&self, t_s: f64) -> f64 {
        (self.params.burn_time_s() - t_s).max(0.0)
    }

    fn integrate(&mut self, world: &World, wind_mps: Vec3, t_s: f64, h_s: f64) {
        let (thrust, mdot) = self.params.motor_at(t_s);
        let y = self.state;
        self.state = rk4_step(t_s, &y, h_s, |_, s| {
            self.derivative(world, s, thrust, mdot, wind_mps)
        });
    }

    fn finish_step(&mut self, world: &World, wind_mps: Vec3, t_s: f64) {
        let burnout = self.params.burnout_mass_kg;
        self.state.mass_kg = self.state.mass_kg.max(burnout);
        let fc = flight_condition(
            world,
            self.state.position_m,
            self.state.velocity_mps,
            wind_mps,
        );
        let (thrust, _) = self.params.motor_at(t_s);
        let a_max =
            self.params
                .max_lateral_accel_mps2(fc.dynamic_pressure_pa, self.state.mass_kg, thrust);
        self.state.lateral_accel_mps2 = self
            .state
            .lateral_accel_mps2
            .perp_to(fc.body_axis)
            .clamp_norm(a_max);
    }
}

/// Parameters of the `thruster` model, SI, randomisation applied.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ThrusterParams {
    /// Mass with empty tanks (kg).
    pub dry_mass_kg: f64,
    /// Propellant at launch (kg); the fuel budget.
    pub propellant_mass_kg: f64,
    /// Norm limit of the thrust vector (N).
    pub max_thrust_n: f64,
    /// Thrust response time constant (s).
    pub thrust_tau_s: f64,
    /// Specific impulse (s).
    pub isp_s: f64,
    /// Drag coefficient on the reference area.
    pub drag_coefficient: f64,
    /// Reference area (m^2).
    pub reference_area_m2: f64,
}

/// State of the `thruster` model (also used for its time derivatives).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ThrusterState {
    pub position_m: Vec3,
    pub velocity_mps: Vec3,
    pub mass_kg: f64,
    /// Achieved thrust vector (N).
    pub thrust_n: Vec3,
    /// Integral of `|F/m|^2` (m^2/s^3).
    pub control_effort_m2ps3: f64,
}

impl OdeState for ThrusterState {
    #[inline]
    fn add_scaled(&self, r: &Self, h: f64) -> Self {
        Self {
            position_m: self.position_m + r.position_m * h,
            velocity_mps: self.velocity_mps + r.velocity_mps * h,
            mass_kg: self.mass_kg + r.mass_kg * h,
            thrust_n: self.thrust_n + r.thrust_n * h,
            control_effort_m2ps3: self.control_effort_m2ps3 + r.control_effort_m2ps3 * h,
        }
    }
}

/// A `thruster` interceptor: parameters, state and the held command.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ThrusterInterceptor {
    pub params: ThrusterParams,
    pub state: ThrusterState,
    /// Commanded thrust vector (world frame, N).
    pub command_n: Vec3,
}

impl ThrusterInterceptor {
    /// Start at `position_m` with `velocity_mps`, full tanks and no thrust.
    pub fn launch(params: ThrusterParams, position_m: Vec3, velocity_mps: Vec3) -> Self {
        Self {
            params,
            state: ThrusterState {
                position_m,
                velocity_mps,
                mass_kg: params.dry_mass_kg + params.propellant_mass_kg,
                thrust_n: Vec3::ZERO,
                control_effort_m2ps3: 0.0,
            },
            command_n: Vec3::ZERO,
        }
    }

    /// Propellant left (kg).
    pub fn propellant_left_kg(&self) -> f64 {
        (self.state.mass_kg - self.params.dry_mass_kg).max(0.0)
    }

    /// Remaining burn time at full thrust (s).
    pub fn remaining_burn_time_s(&self) -> f64 {
        self.propellant_left_kg() * self.params.isp_s * G0_MPS2 / self.params.max_thrust_n
    }

    /// Ideal velocity increment left, `Isp g0 ln(m / m_dry)` (m/s).
    pub fn remaining_delta_v_mps(&self) -> f64 {
        self.params.isp_s * G0_MPS2 * (self.state.mass_kg / self.params.dry_mass_kg).ln()
    }

    /// Time derivative with the held thrust target and wind.
    #[inline]
    pub fn derivative(
        &self,
        world: &World,
        s: &ThrusterState,
        target_n: Vec3,
        wind_mps: Vec3,
    ) -> ThrusterState {
        let p = &self.params;
        let air = world.atmosphere.at(s.position_m.z);
        let v_air = s.velocity_mps - wind_mps;
        let k = 0.5 * air.density_kgpm3 * p.drag_coefficient * p.reference_area_m2;
        let inv_m = 1.0 / s.mass_kg;
        let thrust_accel = s.thrust_n * inv_m;
        ThrusterState {
            position_m: s.velocity_mps,
            velocity_mps: thrust_accel - v_air * (k * v_air.norm() * inv_m) + world.gravity_mps2,
            mass_kg: -s.thrust_n.norm() / (p.isp_s * G0_MPS2),
            thrust_n: (target_n - s.thrust_n) / p.thrust_tau_s,
            control_effort_m2ps3: thrust_accel.norm_sq(),
        }
    }

    fn integrate(&mut self, world: &World, wind_mps: Vec3, t_s: f64, h_s: f64) {
        let target = if self.propellant_left_kg() > 0.0 {
            self.command_n.clamp_norm(self.params.max_thrust_n)
        } else {
            Vec3::ZERO
        };
        let y = self.state;
        self.state = rk4_step(t_s, &y, h_s, |_, s| {
            self.derivative(world, s, target, wind_mps)
        });
    }

    fn finish_step(&mut self) {
        if self.state.mass_kg <= self.params.dry_mass_kg {
            self.state.mass_kg = self.params.dry_mass_kg;
            self.state.thrust_n = Vec3::ZERO;
        }
    }
}

/// Either interceptor model, behind one interface for the engagement loop.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "model", rename_all = "snake_case")]
pub enum Interceptor {
    Aero(AeroInterceptor),
    Thruster(ThrusterInterceptor),
}

impl Interceptor {
    /// Position (m).
    #[inline]
    pub fn position_m(&self) -> Vec3 {
        match self {
            Interceptor::Aero(a) => a.state.position_m,
            Interceptor::Thruster(t) => t.state.position_m,
        }
    }

    /// Velocity over ground (m/s).
    #[inline]
    pub fn velocity_mps(&self) -> Vec3 {
        match self {
            Interceptor::Aero(a) => a.state.velocity_mps,
            Interceptor::Thruster(t) => t.state.velocity_mps,
        }
    }

    /// Mass (kg).
    #[inline]
    pub fn mass_kg(&self) -> f64 {
        match self {
            Interceptor::Aero(a) => a.state.mass_kg,
            Interceptor::Thruster(t) => t.state.mass_kg,
        }
    }

    /// Airspeed in wind `wind_mps` (m/s).
    #[inline]
    pub fn air_speed_mps(&self, wind_mps: Vec3) -> f64 {
        (self.velocity_mps() - wind_mps).norm()
    }

    /// Sets the held acceleration command (world frame, m/s^2). `aero` flies
    /// its component perpendicular to the body axis; `thruster` converts it to
    /// a thrust command `F = m a` (norm-limited when applied).
    #[inline]
    pub fn set_accel_command_mps2(&mut self, accel_mps2: Vec3) {
        match self {
            Interceptor::Aero(a) => a.command_mps2 = accel_mps2,
            Interceptor::Thruster(t) => t.command_n = accel_mps2 * t.state.mass_kg,
        }
    }

    /// Control acceleration available now (m/s^2): the lateral limit
    /// `a_max(q, m)` for `aero`; `F_max / m` (0 when the tanks are empty) for
    /// `thruster`.
    pub fn max_accel_mps2(&self, world: &World, wind_mps: Vec3, t_s: f64) -> f64 {
        match self {
            Interceptor::Aero(a) => a.max_lateral_accel_mps2(world, wind_mps, t_s),
            Interceptor::Thruster(t) => {
                if t.propellant_left_kg() > 0.0 {
                    t.params.max_thrust_n / t.state.mass_kg
                } else {
                    0.0
                }
            }
        }
    }

    /// Achieved control acceleration (m/s^2): `P_perp(x_b) a_L` for `aero`
    /// (as kept after each step), `F/m` for `thruster`.
    pub fn achieved_accel_mps2(&self) -> Vec3 {
        match self {
            Interceptor::Aero(a) => a.state.lateral_accel_mps2,
            Interceptor::Thruster(t) => t.state.thrust_n / t.state.mass_kg,
        }
    }

    /// Fraction of propulsion left in [0, 1]: remaining burn time over total
    /// burn time (`aero`), propellant fraction (`thruster`).
    pub fn propulsion_fraction(&self, t_s: f64) -> f64 {
        match self {
            Interceptor::Aero(a) => {
                let total = a.params.burn_time_s();
                if total > 0.0 {
                    a.remaining_burn_time_s(t_s) / total
                } else {
                    0.0
                }
            }
            Interceptor::Thruster(t) => {
                if t.params.propellant_mass_kg > 0.0 {
                    t.propellant_left_kg() / t.params.propellant_mass_kg
                } else {
                    0.0
                }
            }
        }
    }

    /// True while the motor can still produce thrust.
    pub fn has_propulsion(&self, t_s: f64) -> bool {
        self.propulsion_fraction(t_s) > 0.0
    }

    /// Propellant burnt so far (kg).
    pub fn propellant_used_kg(&self) -> f64 {
        match self {
            Interceptor::Aero(a) => a.params.launch_mass_kg() - a.state.mass_kg,
            Interceptor::Thruster(t) => t.params.propellant_mass_kg - t.propellant_left_kg(),
        }
    }

    /// Integral of the squared achieved control acceleration (m^2/s^3).
    pub fn control_effort_m2ps3(&self) -> f64 {
        match self {
            Interceptor::Aero(a) => a.state.control_effort_m2ps3,
            Interceptor::Thruster(t) => t.state.control_effort_m2ps3,
        }
    }

    /// The next motor event (stage end) strictly after `t_s`, if any.
    pub fn next_event_after_s(&self, t_s: f64) -> Option<f64> {
        match self {
            Interceptor::Aero(a) => a
                .params
                .stages
                .iter()
                .map(|s| s.end_time_s)
                .find(|&e| e > t_s + EVENT_EPSILON_S),
            Interceptor::Thruster(_) => None,
        }
    }

    /// One RK4 step of `h_s` from `t_s` with held inputs (the engagement loop
    /// splits steps at motor events before calling this).
    pub fn integrate(&mut self, world: &World, wind_mps: Vec3, t_s: f64, h_s: f64) {
        match self {
            Interceptor::Aero(a) => a.integrate(world, wind_mps, t_s, h_s),
            Interceptor::Thruster(t) => t.integrate(world, wind_mps, t_s, h_s),
        }
    }

    /// Post-step projections and clamps at the end time `t_s`: `a_L`
    /// re-projected and clipped to the current `a_max`; mass clamped at dry
    /// mass; thruster thrust zeroed once the tanks are empty.
    pub fn finish_step(&mut self, world: &World, wind_mps: Vec3, t_s: f64) {
        match self {
            Interceptor::Aero(a) => a.finish_step(world, wind_mps, t_s),
            Interceptor::Thruster(t) => t.finish_step(),
        }
    }
}
