//! The scripted driver, the racing baseline: pure pursuit on the reference
//! line for steering, and a speed target from the curvature ahead for gas
//! and brake. It reads the controller view ([`RacingEnv::VIEW_DIM`]).
//!
//! Steering: the target is the first preview point at least the lookahead
//! distance `L_d = clamp(6 + 0.6 v, 8, 60)` m away; pure pursuit turns the
//! wheels by `atan(2 L sin(alpha) / L_d)`, `alpha` the target's bearing and
//! `L` the wheelbase. Speed: each preview point `k` at `d_k` metres allows
//! `v^2 <= a_lat / |kappa_k| + 2 a_brake d_k` (cornering at `a_lat`, braking
//! at `a_brake` before it); the target is the smallest. Both accelerations
//! are fractions of the tyres' `mu g`.

use hlynr_env::{Policy, PolicyInput};

use crate::car::{CarParams, Controls, G};
use crate::env::{ACTIONS, ActionMode, DECISION_HZ, PREVIEW_SPACING_M, RacingEnv};

/// The scripted driver.
#[derive(Clone, Debug)]
pub struct PurePursuit {
    car: CarParams,
    action: ActionMode,
    /// Cornering and braking accelerations as fractions of `mu g`.
    pub lateral_grip_used: f64,
    pub braking_grip_used: f64,
}

/// The baseline's name in reports.
pub const PURE_PURSUIT: &str = "pure-pursuit";

impl PurePursuit {
    /// A driver for cars of `car` and actions of `action`.
    pub fn new(car: &CarParams, action: ActionMode) -> Self {
        Self {
            car: car.clone(),
            action,
            lateral_grip_used: 0.85,
            braking_grip_used: 0.75,
        }
    }

    /// The controls for one controller view.
    pub fn controls(&self, view: &[f64]) -> Controls {
        let vx = view[0];
        let points = &view[7..];
        let lookahead = (6.0 + 0.6 * vx).clamp(8.0, 60.0);
        let mut target = [points[0], points[1]];
        for p in points.chunks_exact(3) {
            target = [p[0], p[1]];
            if p[0].hypot(p[1]) >= lookahead {
                break;
            }
        }
        let dist = target[0].hypot(target[1]).max(1.0);
        let alpha = target[1].atan2(target[0]);
        let wheelbase = self.car.front_axle_m + self.car.rear_axle_m;
        let delta = (2.0 * wheelbase * alpha.sin() / dist).atan();
        let steer = (delta / self.car.max_steer_rad).clamp(-1.0, 1.0);

        let grip = self.car.mu * G;
        let (a_lat, a_brake) = (self.lateral_grip_used * grip, self.braking_grip_used * grip);
        let target_speed = points
            .chunks_exact(3)
            .enumerate()
            .map(|(k, p)| {
                let d = (k as f64 + 1.0) * PREVIEW_SPACING_M;
                let corner = a_lat / p[2].abs().max(1e-4);
                (corner + 2.0 * a_brake * (d - PREVIEW_SPACING_M).max(0.0)).sqrt()
            })
            .fold(f64::INFINITY, f64::min);
        let err = target_speed - vx;
        let (gas, brake) = if err >= 0.0 {
            ((err / 2.0).clamp(0.3, 1.0), 0.0)
        } else {
            (0.0, (-err / 3.0).clamp(0.0, 1.0))
        };
        Controls { gas, brake, steer }
    }

    /// The discrete action for `c`: gas, brake or neither by thresholds,
    /// and of those actions the one whose steering command brings the
    /// rate-limited wheels (now at `wheel_rad`) nearest to the wanted angle
    /// by the end of the step.
    pub fn discrete_action(&self, c: Controls, wheel_rad: f64) -> usize {
        let (gas, brake) = if c.brake >= 0.3 {
            (0.0, 1.0)
        } else if c.gas >= 0.3 {
            (1.0, 0.0)
        } else {
            (0.0, 0.0)
        };
        let max = self.car.max_steer_rad;
        let turn = self.car.steer_rate_rps / DECISION_HZ;
        let want = c.steer * max;
        let miss = |i: usize| {
            let command = ACTIONS[i].2 * max;
            (wheel_rad + (command - wheel_rad).clamp(-turn, turn) - want).abs()
        };
        (0..ACTIONS.len())
            .filter(|&i| ACTIONS[i].0 == gas && ACTIONS[i].1 == brake)
            .min_by(|&i, &j| miss(i).total_cmp(&miss(j)))
            .unwrap_or(0)
    }
}

impl Policy for PurePursuit {
    fn name(&self) -> &str {
        PURE_PURSUIT
    }

    fn act(
        &mut self,
        input: &PolicyInput<'_>,
        _deterministic: bool,
        actions: &mut [f32],
    ) -> Result<(), String> {
        let d = RacingEnv::VIEW_DIM;
        if input.controller_view.len() != input.n * d {
            return Err(format!(
                "the scripted driver reads the racing env's controller view ({d} values per env), got {} for {} envs",
                input.controller_view.len(),
                input.n
            ));
        }
        let width = actions.len() / input.n.max(1);
        for (view, out) in input
            .controller_view
            .chunks_exact(d)
            .zip(actions.chunks_exact_mut(width))
        {
            let c = self.controls(view);
            match self.action {
                ActionMode::Discrete => out[0] = self.discrete_action(c, view[6]) as f32,
                ActionMode::Continuous => {
                    out.copy_from_slice(&[c.gas as f32, c.brake as f32, -c.steer as f32]);
                }
            }
        }
        Ok(())
    }
}
