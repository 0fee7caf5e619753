//! Classical guidance baselines as [`Policy`] implementations.
//!
//! Each baseline reads only the controller view ([`ControllerView`]): the
//! tracker estimate and the interceptor's own state, or, when the env is built
//! as an oracle, the true threat state in the same layout. The same code
//! therefore acts on estimates normally and on truth for perfect-information
//! upper bounds. The law runs through the common guidance pipeline
//! ([`Guidance`]: PIP steering during the boost stage, turn-around, blind
//! time, gravity compensation, projection, saturation), once per decision,
//! and its command is encoded as the env's action:
//! - `aero`: `(a.yV, a.zV) / a_max` (velocity frame), norm-clipped to 1;
//! - `thruster`: `a / a_max`, norm-clipped to 1.
//!
//! A command beyond `a_max` therefore saturates to the unit norm. When the
//! env adds gravity compensation itself (`action.gravity_compensation`), the
//! pipeline's compensation is removed from the command so it is not applied
//! twice. Without a valid track a baseline holds course against gravity.
//!
//! Only `direct` action envs can be flown by these baselines; a `residual` env
//! already contains the law.

use hlynr_env::{EnvError, Policy, PolicyInput};

use crate::Vec3;
use crate::guidance::{
    Guidance, GuidanceConfig, GuidanceInput, InterceptorKinematics, LAW_NAMES, TargetKinematics,
    VehicleKind, law_from_name,
};
use crate::observation::{ControllerView, velocity_frame};
use crate::scenario::{ActionMode, ScenarioConfig};
use crate::threat::predicted_intercept_point;

/// PIP search horizon and bracketing step of the boost-phase steering (s).
const PIP_HORIZON_S: f64 = 60.0;
const PIP_SCAN_STEP_S: f64 = 0.5;

/// A guidance law flown through the env's action encoding.
#[derive(Debug)]
pub struct GuidancePolicy {
    name: String,
    config: GuidanceConfig,
    rows: Vec<Guidance>,
    env_gravity_compensation: bool,
    mean_flyout_speed_mps: f64,
}

impl GuidancePolicy {
    /// The law `name` with the guidance parameters of `scenario`.
    pub fn new(name: &str, scenario: &ScenarioConfig) -> Result<Self, EnvError> {
        if scenario.action.mode == ActionMode::Residual {
            return Err(EnvError::invalid(
                "policy",
                format!(
                    "baseline '{name}' needs `action.mode: direct`; scenario '{}' uses a residual action",
                    scenario.name
                ),
            ));
        }
        let law = law_from_name(name, &scenario.guidance)?;
        let config = GuidanceConfig {
            law: law.name().to_string(),
            ..scenario.guidance.clone()
        };
        Guidance::new(&config)?;
        Ok(Self {
            name: law.name().to_string(),
            config,
            rows: Vec::new(),
            env_gravity_compensation: scenario.action.gravity_compensation,
            mean_flyout_speed_mps: scenario.engagement.mean_flyout_speed_mps,
        })
    }

    /// The action for one controller view (`act_dim` values into `out`).
    fn act_row(
        guidance: &mut Guidance,
        view: &ControllerView,
        flyout: f64,
        env_gc: bool,
        out: &mut [f32],
    ) {
        let kind = if view.thruster {
            VehicleKind::Thruster
        } else {
            VehicleKind::Aero
        };
        let g = view.gravity_mps2;
        let gravity_comp = match kind {
            VehicleKind::Aero => -g.perp_to(view.body_axis),
            VehicleKind::Thruster => -g,
        };
        let a_max = view.a_max_mps2;
        let mut a = if guidance.law().is_passive() {
            Vec3::ZERO
        } else if view.track_valid {
            let boost_phase = view.boost_remaining_s > 0.0;
            let target = TargetKinematics {
                position_m: view.target_position_m,
                velocity_mps: view.target_velocity_mps,
                acceleration_mps2: view.target_acceleration_mps2,
                known_acceleration_mps2: view.target_known_acceleration_mps2,
            };
            let pip_m = if boost_phase {
                predicted_intercept_point(
                    view.position_m,
                    flyout.max(view.velocity_mps.norm()),
                    PIP_HORIZON_S,
                    PIP_SCAN_STEP_S,
                    |t| {
                        target.position_m
                            + target.velocity_mps * t
                            + target.known_acceleration_mps2 * (0.5 * t * t)
                    },
                )
                .map(|p| p.position_m)
            } else {
                None
            };
            let c = guidance.command(&GuidanceInput {
                time_s: view.time_s,
                interceptor: InterceptorKinematics {
                    position_m: view.position_m,
                    velocity_mps: view.velocity_mps,
                    body_axis: view.body_axis,
                    lateral_accel_mps2: view.control_accel_mps2,
                    a_max_mps2: a_max,
                    autopilot_tau_s: view.lag_tau_s,
                    kind,
                },
                target,
                gravity_mps2: g,
                boost_phase,
                pip_m,
            });
            c.accel_mps2
        } else {
            gravity_comp
        };
        if env_gc && !guidance.law().is_passive() {
            a -= gravity_comp;
        }
        let scale = a_max.max(1e-9);
        let u = if kind == VehicleKind::Aero {
            let (_, y, z) = velocity_frame(view.body_axis);
            Vec3::new(a.dot(y) / scale, a.dot(z) / scale, 0.0)
        } else {
            a / scale
        }
        .clamp_norm(1.0);
        let u = if u.is_finite() { u } else { Vec3::ZERO };
        out[0] = u.x as f32;
        out[1] = u.y as f32;
        if out.len() > 2 {
            out[2] = u.z as f32;
        }
    }
}

impl Policy for GuidancePolicy {
    fn name(&self) -> &str {
        &self.name
    }

    fn act(
        &mut self,
        input: &PolicyInput<'_>,
        _deterministic: bool,
        actions: &mut [f32],
    ) -> Result<(), String> {
        let n = input.n;
        if n == 0 {
            return Ok(());
        }
        if input.controller_view.len() != n * ControllerView::DIM {
            return Err(format!(
                "policy '{}' needs the interception controller view ({} values per env), got {} values for {n} envs",
                self.name,
                ControllerView::DIM,
                input.controller_view.len()
            ));
        }
        if !actions.len().is_multiple_of(n) {
            return Err(format!(
                "action buffer of {} values is not a multiple of {n} envs",
                actions.len()
            ));
        }
        let act_dim = actions.len() / n;
        while self.rows.len() < n {
            self.rows
                .push(Guidance::new(&self.config).map_err(|e| e.to_string())?);
        }
        for i in 0..n {
            let view = ControllerView::read(input.view_row(i))?;
            let expected = if view.thruster { 3 } else { 2 };
            if act_dim != expected {
                return Err(format!(
                    "policy '{}': the env expects {expected} action values per env, the buffer has {act_dim}",
                    self.name
                ));
            }
            Self::act_row(
                &mut self.rows[i],
                &view,
                self.mean_flyout_speed_mps,
                self.env_gravity_compensation,
                &mut actions[i * act_dim..(i + 1) * act_dim],
            );
        }
        Ok(())
    }

    fn reset_rows(&mut self, rows: &[usize]) {
        for &r in rows {
            if let Some(g) = self.rows.get_mut(r) {
                g.reset();
            }
        }
    }
}

/// Names accepted by [`make_policy`].
pub const POLICY_NAMES: [&str; 7] = LAW_NAMES;

/// Builds the baseline `name` (one of [`POLICY_NAMES`]) for `scenario`. An
/// unknown name is an error suggesting the closest valid one.
pub fn make_policy(name: &str, scenario: &ScenarioConfig) -> Result<Box<dyn Policy>, EnvError> {
    Ok(Box::new(GuidancePolicy::new(name, scenario)?))
}
