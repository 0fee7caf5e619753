//! The car: a dynamic bicycle model on a flat track with an engine, an
//! automatic gearbox, rear-wheel drive and tyres whose grip saturates, so
//! that a car driven too fast slides.
//!
//! State: position and heading in the track plane, velocity in the body
//! frame (`vx` forward, `vy` left) and yaw rate. Tyre lateral forces follow
//! `F = F_max tanh(C alpha / F_max)`: linear in the slip angle `alpha` for
//! small slips (cornering stiffness `C`), saturating at the grip left over
//! by the longitudinal force on the friction circle, `F_max =
//! sqrt((mu F_z)^2 - F_x^2)` (the rear tyres grip `rear_grip_factor` times
//! more). The drive force is the engine torque at the
//! current rpm through the gear and final drive, limited by the rear tyres'
//! grip; brakes and drag and rolling resistance slow the car. Below
//! [`KINEMATIC_BELOW_MPS`] the slip angles are ill-defined and the car moves
//! as a kinematic bicycle (no side slip).

use serde::{Deserialize, Serialize};

/// Gravity (m/s^2).
pub const G: f64 = 9.81;
/// Air density (kg/m^3).
const RHO: f64 = 1.2;
/// Speed below which the car moves kinematically (m/s).
pub const KINEMATIC_BELOW_MPS: f64 = 2.0;

/// The car's parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CarParams {
    pub mass_kg: f64,
    /// Yaw moment of inertia (kg m^2).
    pub yaw_inertia_kgm2: f64,
    /// Centre of mass to front and rear axle (m).
    pub front_axle_m: f64,
    pub rear_axle_m: f64,
    /// Half the car's width (m): how close its centre comes to a wall.
    pub half_width_m: f64,
    /// Cornering stiffness per axle (N/rad).
    pub cornering_stiffness_front: f64,
    pub cornering_stiffness_rear: f64,
    /// Tyre friction coefficient (front).
    pub mu: f64,
    /// The rear tyres' friction over the front's (wider rear tyres): above
    /// 1 the car understeers at the limit rather than spinning under power.
    pub rear_grip_factor: f64,
    /// Largest road-wheel angle at full steer (rad).
    pub max_steer_rad: f64,
    /// How fast the wheels turn towards the commanded angle (rad/s): the
    /// steering rack, which also smooths a discrete policy's full-lock taps.
    pub steer_rate_rps: f64,
    /// Peak engine torque (N m) at `peak_torque_rpm`; torque falls
    /// quadratically away from it to half at `idle_rpm` and `redline_rpm`.
    pub peak_torque_nm: f64,
    pub peak_torque_rpm: f64,
    pub idle_rpm: f64,
    pub redline_rpm: f64,
    /// Gear ratios, first to top.
    pub gear_ratios: Vec<f64>,
    pub final_drive: f64,
    pub wheel_radius_m: f64,
    /// The gearbox shifts up above this rpm and down below `downshift_rpm`.
    pub upshift_rpm: f64,
    pub downshift_rpm: f64,
    /// Total braking force at full brake, as a multiple of the weight
    /// (the tyres' grip still limits it).
    pub brake_g: f64,
    /// Drag area `C_d A` (m^2).
    pub drag_area_m2: f64,
    /// Rolling-resistance coefficient.
    pub rolling_resistance: f64,
    /// Fraction of the speed along a wall kept after hitting it.
    pub wall_speed_kept: f64,
    /// Traction control: the drive force may use at most this fraction of
    /// the rear tyres' grip, leaving the rest for cornering (1: none).
    pub traction_control: f64,
}

impl Default for CarParams {
    fn default() -> Self {
        Self {
            mass_kg: 1000.0,
            yaw_inertia_kgm2: 1400.0,
            front_axle_m: 1.2,
            rear_axle_m: 1.4,
            half_width_m: 1.0,
            cornering_stiffness_front: 90_000.0,
            cornering_stiffness_rear: 110_000.0,
            mu: 1.4,
            rear_grip_factor: 1.25,
            max_steer_rad: 0.4,
            steer_rate_rps: 1.5,
            peak_torque_nm: 420.0,
            peak_torque_rpm: 6000.0,
            idle_rpm: 1500.0,
            redline_rpm: 9000.0,
            gear_ratios: vec![3.0, 2.1, 1.6, 1.28, 1.05],
            final_drive: 3.4,
            wheel_radius_m: 0.33,
            upshift_rpm: 8500.0,
            downshift_rpm: 4500.0,
            brake_g: 1.3,
            drag_area_m2: 0.75,
            rolling_resistance: 0.015,
            wall_speed_kept: 0.6,
            traction_control: 0.6,
        }
    }
}

impl CarParams {
    /// Checks the parameters, naming the first bad one.
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("mass_kg", self.mass_kg),
            ("yaw_inertia_kgm2", self.yaw_inertia_kgm2),
            ("front_axle_m", self.front_axle_m),
            ("rear_axle_m", self.rear_axle_m),
            ("half_width_m", self.half_width_m),
            ("cornering_stiffness_front", self.cornering_stiffness_front),
            ("cornering_stiffness_rear", self.cornering_stiffness_rear),
            ("mu", self.mu),
            ("rear_grip_factor", self.rear_grip_factor),
            ("max_steer_rad", self.max_steer_rad),
            ("steer_rate_rps", self.steer_rate_rps),
            ("peak_torque_nm", self.peak_torque_nm),
            ("peak_torque_rpm", self.peak_torque_rpm),
            ("idle_rpm", self.idle_rpm),
            ("final_drive", self.final_drive),
            ("wheel_radius_m", self.wheel_radius_m),
            ("brake_g", self.brake_g),
        ];
        for (k, v) in positive {
            if !(v > 0.0 && v.is_finite()) {
                return Err(format!("car.{k} must be finite and > 0, got {v}"));
            }
        }
        for (k, v) in [
            ("drag_area_m2", self.drag_area_m2),
            ("rolling_resistance", self.rolling_resistance),
        ] {
            if !(v >= 0.0 && v.is_finite()) {
                return Err(format!("car.{k} must be finite and >= 0, got {v}"));
            }
        }
        for (k, v) in [
            ("wall_speed_kept", self.wall_speed_kept),
            ("traction_control", self.traction_control),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(format!("car.{k} must lie in [0, 1], got {v}"));
            }
        }
        if self.gear_ratios.is_empty() || self.gear_ratios.iter().any(|r| r.is_nan() || *r <= 0.0) {
            return Err("car.gear_ratios must be a non-empty list of positive ratios".into());
        }
        if !(self.idle_rpm < self.downshift_rpm
            && self.downshift_rpm < self.upshift_rpm
            && self.upshift_rpm <= self.redline_rpm)
        {
            return Err(
                "car rpm thresholds must satisfy idle < downshift < upshift <= redline".into(),
            );
        }
        Ok(())
    }

    fn wheelbase_m(&self) -> f64 {
        self.front_axle_m + self.rear_axle_m
    }

    /// Engine torque at `rpm` (N m), 0 past the redline.
    pub fn torque_nm(&self, rpm: f64) -> f64 {
        if rpm > self.redline_rpm {
            return 0.0;
        }
        let rpm = rpm.max(self.idle_rpm);
        let span = if rpm < self.peak_torque_rpm {
            self.peak_torque_rpm - self.idle_rpm
        } else {
            self.redline_rpm - self.peak_torque_rpm
        };
        let x = (rpm - self.peak_torque_rpm) / span.max(1.0);
        self.peak_torque_nm * (1.0 - 0.5 * x * x)
    }

    /// Engine rpm at forward speed `vx` in gear `gear` (0-based), at least idle.
    pub fn rpm(&self, vx: f64, gear: usize) -> f64 {
        let wheel_rad_s = vx.max(0.0) / self.wheel_radius_m;
        (wheel_rad_s * self.gear_ratios[gear] * self.final_drive * 60.0 / std::f64::consts::TAU)
            .max(self.idle_rpm)
    }
}

/// The driver's controls.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Controls {
    /// Throttle in `[0, 1]`.
    pub gas: f64,
    /// Brake in `[0, 1]`.
    pub brake: f64,
    /// Steering in `[-1, 1]`, positive to the left.
    pub steer: f64,
}

/// The car's dynamic state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CarState {
    pub x_m: f64,
    pub y_m: f64,
    /// Heading (rad, counter-clockwise from +x).
    pub heading_rad: f64,
    /// Body-frame velocity: forward and to the left (m/s).
    pub vx_mps: f64,
    pub vy_mps: f64,
    pub yaw_rate_rps: f64,
    /// Road-wheel angle (rad, positive to the left).
    pub steer_rad: f64,
    /// Current gear, 0-based.
    pub gear: usize,
}

impl CarState {
    /// Speed over ground (m/s).
    pub fn speed_mps(&self) -> f64 {
        self.vx_mps.hypot(self.vy_mps)
    }

    /// World-frame velocity (m/s).
    pub fn velocity(&self) -> [f64; 2] {
        let (s, c) = self.heading_rad.sin_cos();
        [
            self.vx_mps * c - self.vy_mps * s,
            self.vx_mps * s + self.vy_mps * c,
        ]
    }

    /// Sets the body-frame velocity from a world-frame one.
    pub fn set_velocity(&mut self, v: [f64; 2]) {
        let (s, c) = self.heading_rad.sin_cos();
        self.vx_mps = v[0] * c + v[1] * s;
        self.vy_mps = -v[0] * s + v[1] * c;
    }
}

/// Forces of one instant, for inspection and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Forces {
    pub drive_n: f64,
    pub brake_n: f64,
    pub front_lateral_n: f64,
    pub rear_lateral_n: f64,
    pub resistance_n: f64,
}

/// Advances `state` by `dt` (s) under `controls` (semi-implicit Euler),
/// shifting gears at the thresholds; returns the forces used.
pub fn advance(p: &CarParams, state: &mut CarState, controls: Controls, dt: f64) -> Forces {
    let gas = controls.gas.clamp(0.0, 1.0);
    let brake = controls.brake.clamp(0.0, 1.0);
    let command = controls.steer.clamp(-1.0, 1.0) * p.max_steer_rad;
    let turn = p.steer_rate_rps * dt;
    state.steer_rad += (command - state.steer_rad).clamp(-turn, turn);
    let delta = state.steer_rad;
    let l = p.wheelbase_m();
    let weight = p.mass_kg * G;
    let fz_front = weight * p.rear_axle_m / l;
    let fz_rear = weight * p.front_axle_m / l;

    // Gearbox: one shift per step at most.
    let rpm = p.rpm(state.vx_mps, state.gear);
    if rpm > p.upshift_rpm && state.gear + 1 < p.gear_ratios.len() {
        state.gear += 1;
    } else if rpm < p.downshift_rpm && state.gear > 0 {
        state.gear -= 1;
    }
    let rpm = p.rpm(state.vx_mps, state.gear);
    let ratio = p.gear_ratios[state.gear] * p.final_drive;
    let vx = state.vx_mps;
    let moving = vx > 0.0;

    // Longitudinal forces, each axle limited by its grip.
    let (grip_front, grip_rear) = (p.mu * fz_front, p.mu * p.rear_grip_factor * fz_rear);
    let drive =
        (gas * p.torque_nm(rpm) * ratio / p.wheel_radius_m).min(p.traction_control * grip_rear);
    let brake_total = brake * p.brake_g * weight;
    let brake_front = (brake_total * p.rear_axle_m / l).min(grip_front);
    let brake_rear = (brake_total * p.front_axle_m / l).min(grip_rear);
    let fx_rear = drive - if moving { brake_rear } else { 0.0 };
    let fx_front = if moving { -brake_front } else { 0.0 };
    let resistance = if moving {
        0.5 * RHO * p.drag_area_m2 * vx * vx + p.rolling_resistance * weight
    } else {
        0.0
    };

    let mut forces = Forces {
        drive_n: drive,
        brake_n: brake_total,
        resistance_n: resistance,
        ..Forces::default()
    };
    if vx < KINEMATIC_BELOW_MPS {
        // Kinematic bicycle: no side slip, yaw rate from the geometry.
        let ax = (fx_rear + fx_front - resistance) / p.mass_kg;
        state.vx_mps = (vx + ax * dt).max(0.0);
        state.vy_mps = 0.0;
        state.yaw_rate_rps = state.vx_mps * delta.tan() / l;
    } else {
        let (vy, r) = (state.vy_mps, state.yaw_rate_rps);
        let alpha_f = delta - ((vy + p.front_axle_m * r) / vx).atan();
        let alpha_r = -((vy - p.rear_axle_m * r) / vx).atan();
        let saturate = |c: f64, alpha: f64, grip: f64, fx: f64| {
            let max = (grip * grip - fx * fx).max(0.0).sqrt().max(1.0);
            max * (c * alpha / max).tanh()
        };
        let fy_f = saturate(p.cornering_stiffness_front, alpha_f, grip_front, fx_front);
        let fy_r = saturate(p.cornering_stiffness_rear, alpha_r, grip_rear, fx_rear);
        forces.front_lateral_n = fy_f;
        forces.rear_lateral_n = fy_r;
        let (sd, cd) = delta.sin_cos();
        let ax = (fx_rear + fx_front * cd - fy_f * sd - resistance) / p.mass_kg + vy * r;
        let ay = (fy_r + fy_f * cd + fx_front * sd) / p.mass_kg - vx * r;
        let yaw_acc = (p.front_axle_m * (fy_f * cd + fx_front * sd) - p.rear_axle_m * fy_r)
            / p.yaw_inertia_kgm2;
        state.vx_mps = (vx + ax * dt).max(0.0);
        state.vy_mps = vy + ay * dt;
        state.yaw_rate_rps = r + yaw_acc * dt;
    }
    state.heading_rad += state.yaw_rate_rps * dt;
    state.heading_rad = (state.heading_rad + std::f64::consts::PI)
        .rem_euclid(std::f64::consts::TAU)
        - std::f64::consts::PI;
    let v = state.velocity();
    state.x_m += v[0] * dt;
    state.y_m += v[1] * dt;
    forces
}
