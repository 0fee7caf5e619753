//! The env driven by an outside simulator's truth (`hlynr serve`'s
//! interception sessions): the client integrates the interceptor and the
//! threat itself and sends their true states; the env runs its own radar,
//! seeker, tracker, observation and action-to-command pipeline on them.
//!
//! Sensing happens at every physics step, not only at decisions (the radar
//! scans and its detections arrive with latency between decisions), so the
//! client sends the truth of each physics step since the last decision, in
//! the world frame (ENU: x east, y north, z up; metres, seconds). What the
//! pipeline reads that is not a sensor output comes from the sample too: the
//! interceptor's achieved control acceleration, its mass and the wind it
//! feels (its body axis is its air-relative velocity); its acceleration
//! limit is the env's interceptor model evaluated on that state.
//!
//! A sample replayed from the env's own physics ([`InterceptEnv::truth`]
//! after each physics step, kept by [`InterceptEnv::set_truth_recording`])
//! gives the env's own observations bit for bit.

use hlynr_env::{EnvError, Result};
use serde::{Deserialize, Serialize};

use super::{EpisodeSeeds, InterceptEnv};
use crate::Vec3;
use crate::integrate::StepGeometry;
use crate::interceptor::Interceptor;
use crate::reward::TerminationReason;
use crate::threat::ThreatState;

/// The interceptor's true state at one instant.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InterceptorTruth {
    /// Position (m, ENU).
    pub position_m: [f64; 3],
    /// Inertial velocity (m/s).
    pub velocity_mps: [f64; 3],
    /// Achieved control acceleration (m/s^2): the lateral acceleration of an
    /// `aero` interceptor, thrust over mass of a `thruster`.
    pub accel_mps2: [f64; 3],
    /// Mass (kg).
    pub mass_kg: f64,
    /// Wind felt by the interceptor (m/s); zero when not given.
    #[serde(default)]
    pub wind_mps: [f64; 3],
}

/// The threat's true state at one instant.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThreatTruth {
    /// Position (m, ENU).
    pub position_m: [f64; 3],
    /// Inertial velocity (m/s).
    pub velocity_mps: [f64; 3],
}

/// The truth of one physics step.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TruthSample {
    /// Time since launch (s).
    pub time_s: f64,
    pub interceptor: InterceptorTruth,
    pub threat: ThreatTruth,
}

/// Largest magnitudes a sample may hold: far beyond any engagement (100,000
/// km, Mach 300, 10,000 g, a day), near enough that no product or norm in
/// the pipeline overflows.
const MAX_POSITION_M: f64 = 1e8;
const MAX_SPEED_MPS: f64 = 1e5;
const MAX_ACCEL_MPS2: f64 = 1e5;
const MAX_MASS_KG: f64 = 1e7;
const MAX_TIME_S: f64 = 86_400.0;

impl TruthSample {
    /// Refuses values that are not finite, beyond the limits above, or a
    /// mass that is not positive, naming the field.
    fn check(&self) -> Result<()> {
        let i = &self.interceptor;
        let t = &self.threat;
        let vectors = [
            ("interceptor.position_m", i.position_m, MAX_POSITION_M),
            ("interceptor.velocity_mps", i.velocity_mps, MAX_SPEED_MPS),
            ("interceptor.accel_mps2", i.accel_mps2, MAX_ACCEL_MPS2),
            ("interceptor.wind_mps", i.wind_mps, MAX_SPEED_MPS),
            ("threat.position_m", t.position_m, MAX_POSITION_M),
            ("threat.velocity_mps", t.velocity_mps, MAX_SPEED_MPS),
        ];
        for (name, v, max) in vectors {
            if !v.iter().all(|x| x.is_finite() && x.abs() <= max) {
                return Err(EnvError::invalid(
                    "truth",
                    format!("`{name}` is {v:?}; each component must be finite and within {max:e}"),
                ));
            }
        }
        if !(self.time_s.is_finite() && self.time_s.abs() <= MAX_TIME_S) {
            return Err(EnvError::invalid(
                "truth",
                format!(
                    "`time_s` must be finite and within {MAX_TIME_S} s, got {}",
                    self.time_s
                ),
            ));
        }
        if !(i.mass_kg > 0.0 && i.mass_kg <= MAX_MASS_KG) {
            return Err(EnvError::invalid(
                "truth",
                format!(
                    "`interceptor.mass_kg` must be positive and at most {MAX_MASS_KG:e}, got {}",
                    i.mass_kg
                ),
            ));
        }
        Ok(())
    }
}

/// Where a driven episode stands after a decision's samples.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DrivenStatus {
    /// Why the episode ended (`None` while it goes on).
    pub reason: TerminationReason,
    /// Closest approach so far (m).
    pub miss_distance_m: f64,
}

impl InterceptEnv {
    /// The true state now, as a [`TruthSample`].
    pub fn truth(&self) -> TruthSample {
        let e = &self.d.engagement;
        let i = &e.interceptor;
        let mass_kg = match i {
            Interceptor::Aero(a) => a.state.mass_kg,
            Interceptor::Thruster(t) => t.state.mass_kg,
        };
        TruthSample {
            time_s: e.time_s,
            interceptor: InterceptorTruth {
                position_m: i.position_m().to_array(),
                velocity_mps: i.velocity_mps().to_array(),
                accel_mps2: i.achieved_accel_mps2().to_array(),
                mass_kg,
                wind_mps: self.interceptor_wind().to_array(),
            },
            threat: ThreatTruth {
                position_m: e.threat.state.position_m.to_array(),
                velocity_mps: e.threat.state.velocity_mps.to_array(),
            },
        }
    }

    /// Keeps the truth of every physics step of each `step` (read with
    /// [`InterceptEnv::recorded_truth`]), or stops keeping it.
    pub fn set_truth_recording(&mut self, on: bool) {
        self.truth_log = on.then(Vec::new);
    }

    /// The truth after each physics step of the last `step` (empty unless
    /// recording).
    pub fn recorded_truth(&self) -> &[TruthSample] {
        self.truth_log.as_deref().unwrap_or_default()
    }

    /// Starts a driven episode: the sensors, the tracker and the
    /// randomisation are drawn from `seeds` as `reset` draws them, the
    /// vehicles are where `initial` (at time 0) puts them, and the first
    /// observation is written to `obs`.
    pub fn reset_driven(
        &mut self,
        seeds: EpisodeSeeds,
        initial: &TruthSample,
        obs: &mut [f32],
    ) -> Result<()> {
        initial.check()?;
        if initial.time_s != 0.0 {
            return Err(EnvError::invalid(
                "truth",
                format!(
                    "an episode starts at time_s = 0 (launch), got {}",
                    initial.time_s
                ),
            ));
        }
        self.redraw(seeds)?;
        self.apply_truth(initial);
        self.d.launch_axis = Vec3::from_array(initial.interceptor.velocity_mps).unit_or_zero();
        self.begin_episode(obs);
        Ok(())
    }

    /// Takes the physics steps since the last decision (times strictly
    /// increasing): closest approach, sensing and the termination rules after
    /// each, as `step` does after each of its own; then writes the
    /// observation. Samples after the one that ends the episode are ignored.
    pub fn drive(&mut self, samples: &[TruthSample], obs: &mut [f32]) -> Result<DrivenStatus> {
        if self.d.done {
            return Err(EnvError::invalid(
                "truth",
                format!("the episode is over ({})", self.d.reason.name()),
            ));
        }
        let mut t = self.d.engagement.time_s;
        for (k, s) in samples.iter().enumerate() {
            s.check()
                .map_err(|e| EnvError::invalid(format!("truth[{k}]"), e.to_string()))?;
            if s.time_s <= t {
                return Err(EnvError::invalid(
                    format!("truth[{k}]"),
                    format!("time_s {} does not follow {t}", s.time_s),
                ));
            }
            t = s.time_s;
        }
        let mut reason = TerminationReason::None;
        for s in samples {
            let t0 = self.d.engagement.time_s;
            let r_start = self.d.engagement.relative_position_m();
            self.apply_truth(s);
            let e = &self.d.engagement;
            let passed = self.d.cpa.update(&StepGeometry {
                t0_s: t0,
                h_s: s.time_s - t0,
                relative_position_start_m: r_start,
                relative_position_end_m: e.relative_position_m(),
                relative_velocity_end_mps: e.relative_velocity_mps(),
            });
            self.sense(s.time_s);
            if !self.d.tracker.has_track() {
                self.d.track_lost_s += s.time_s - t0;
            }
            reason = self.check_termination(passed);
            if reason != TerminationReason::None {
                self.d.done = true;
                self.d.reason = reason;
                break;
            }
        }
        self.refresh_views();
        self.write_obs(obs);
        Ok(DrivenStatus {
            reason,
            miss_distance_m: self.d.cpa.miss_distance_m,
        })
    }

    /// The world-frame acceleration command (m/s^2) of `action` at the
    /// current state, as `step` computes it; the action becomes the
    /// observation's previous action.
    pub fn command_of(&mut self, action: &[f32]) -> Result<Vec3> {
        if action.len() != self.act_dim || !action.iter().all(|a| a.is_finite()) {
            return Err(EnvError::invalid(
                "action",
                format!("{} finite values wanted, got {action:?}", self.act_dim),
            ));
        }
        let k = self.kinematics();
        let command = self.command(action, &k);
        self.d.previous_action[..self.act_dim].copy_from_slice(action);
        Ok(command)
    }

    /// Whether the episode has ended.
    pub fn is_done(&self) -> bool {
        self.d.done
    }

    /// Puts the vehicles in the sample's state.
    fn apply_truth(&mut self, s: &TruthSample) {
        let e = &mut self.d.engagement;
        e.time_s = s.time_s;
        let i = &s.interceptor;
        let (position, velocity, accel) = (
            Vec3::from_array(i.position_m),
            Vec3::from_array(i.velocity_mps),
            Vec3::from_array(i.accel_mps2),
        );
        match &mut e.interceptor {
            Interceptor::Aero(a) => {
                a.state.position_m = position;
                a.state.velocity_mps = velocity;
                a.state.mass_kg = i.mass_kg;
                a.state.lateral_accel_mps2 = accel;
            }
            Interceptor::Thruster(t) => {
                t.state.position_m = position;
                t.state.velocity_mps = velocity;
                t.state.mass_kg = i.mass_kg;
                t.state.thrust_n = accel * i.mass_kg;
            }
        }
        e.threat.state = ThreatState {
            position_m: Vec3::from_array(s.threat.position_m),
            velocity_mps: Vec3::from_array(s.threat.velocity_mps),
        };
        self.d.driven_wind_mps = Some(Vec3::from_array(i.wind_mps));
        self.kinematics = None;
    }
}
