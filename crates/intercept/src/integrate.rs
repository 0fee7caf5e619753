//! Fixed-step RK4 and the joint engagement step.
//!
//! Both vehicles are advanced over the same step with the same four stage
//! times (RK4 on the joint state; the vehicles do not interact physically, so
//! this equals one RK4 on the concatenated state). Controls, motor stage, wind
//! (mean and gust) and maneuver switches are evaluated once at the step start
//! and held through the stages (zero-order hold). Motor stage boundaries that
//! fall inside a step split it, so burnout happens at the exact time and the
//! burnout mass is exact.
//!
//! Per-step order inside [`Engagement::step`]: hold inputs (draw gusts and
//! maneuver switches from their own RNG streams), integrate, post-step
//! projections and clamps, then report the relative positions before and after
//! for the closest-approach check in [`crate::cpa`].

use hlynr_rng::Rng;
use serde::{Deserialize, Serialize};

use crate::atmosphere::Atmosphere;
use crate::interceptor::Interceptor;
use crate::threat::Threat;
use crate::units::G0_MPS2;
use crate::vec3::Vec3;
use crate::wind::{Gust, WindParams};

/// A state that RK4 can advance: `add_scaled(rate, h)` is `self + h * rate`,
/// where `rate` (same type) holds time derivatives.
pub trait OdeState: Copy {
    fn add_scaled(&self, rate: &Self, h: f64) -> Self;
}

/// One classical RK4 step of `dy/dt = f(t, y)` from `(t, y)` over `h`
/// (`h` may be negative for back-propagation).
#[inline]
pub fn rk4_step<S: OdeState>(t: f64, y: &S, h: f64, mut f: impl FnMut(f64, &S) -> S) -> S {
    let half = 0.5 * h;
    let k1 = f(t, y);
    let k2 = f(t + half, &y.add_scaled(&k1, half));
    let k3 = f(t + half, &y.add_scaled(&k2, half));
    let k4 = f(t + h, &y.add_scaled(&k3, h));
    y.add_scaled(&k1, h / 6.0)
        .add_scaled(&k2, h / 3.0)
        .add_scaled(&k3, h / 3.0)
        .add_scaled(&k4, h / 6.0)
}

/// Two independent RK4 steps, `a` over `h_a` and `b` over `h_b` from the same
/// time `t`, stage by stage: each result is bit-identical to its own
/// [`rk4_step`], but the two dependency chains (each stage waits on the
/// previous one) are interleaved, so the processor overlaps their latencies.
#[inline]
pub fn rk4_step_pair<A: OdeState, B: OdeState>(
    t: f64,
    (y_a, h_a): (&A, f64),
    (y_b, h_b): (&B, f64),
    mut f_a: impl FnMut(f64, &A) -> A,
    mut f_b: impl FnMut(f64, &B) -> B,
) -> (A, B) {
    let (half_a, half_b) = (0.5 * h_a, 0.5 * h_b);
    let (a1, b1) = (f_a(t, y_a), f_b(t, y_b));
    let a2 = f_a(t + half_a, &y_a.add_scaled(&a1, half_a));
    let b2 = f_b(t + half_b, &y_b.add_scaled(&b1, half_b));
    let a3 = f_a(t + half_a, &y_a.add_scaled(&a2, half_a));
    let b3 = f_b(t + half_b, &y_b.add_scaled(&b2, half_b));
    let a4 = f_a(t + h_a, &y_a.add_scaled(&a3, h_a));
    let b4 = f_b(t + h_b, &y_b.add_scaled(&b3, h_b));
    (
        y_a.add_scaled(&a1, h_a / 6.0)
            .add_scaled(&a2, h_a / 3.0)
            .add_scaled(&a3, h_a / 3.0)
            .add_scaled(&a4, h_a / 6.0),
        y_b.add_scaled(&b1, h_b / 6.0)
            .add_scaled(&b2, h_b / 3.0)
            .add_scaled(&b3, h_b / 3.0)
            .add_scaled(&b4, h_b / 6.0),
    )
}

/// The physical surroundings shared by both vehicles.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct World {
    pub atmosphere: Atmosphere,
    /// Gravity vector (m/s^2); `(0, 0, -g0)` on flat Earth.
    pub gravity_mps2: Vec3,
}

impl Default for World {
    fn default() -> Self {
        Self::standard()
    }
}

impl World {
    /// ISA standard day with standard gravity.
    pub const fn standard() -> Self {
        Self {
            atmosphere: Atmosphere::standard(),
            gravity_mps2: Vec3::new(0.0, 0.0, -G0_MPS2),
        }
    }
}

/// Time tolerance for event times that coincide with step boundaries (s):
/// burn times are multiples of the step only up to round-off.
pub const EVENT_EPSILON_S: f64 = 1e-9;

/// Relative geometry before and after one physics step, for CPA checks.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepGeometry {
    /// Time at the start of the step (s).
    pub t0_s: f64,
    /// Step length (s).
    pub h_s: f64,
    /// `r_T - r_M` at the start of the step (m).
    pub relative_position_start_m: Vec3,
    /// `r_T - r_M` at the end of the step (m).
    pub relative_position_end_m: Vec3,
    /// `v_T - v_M` at the end of the step (m/s).
    pub relative_velocity_end_mps: Vec3,
}

/// Values fixed for an episode that every physics step reads, evaluated once
/// (each is a `sin_cos`) by [`Engagement::step_constants`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepConstants {
    /// [`WindParams::toward`].
    wind_toward: (f64, f64),
    /// [`crate::threat::Maneuver::direction_weights`].
    maneuver_direction: (f64, f64),
}

/// The true joint state of one engagement: both vehicles, the wind they fly
/// in, and the clock. Everything needed to continue the run bit-exactly is
/// here (plus the caller's RNG streams), and it serialises.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Engagement {
    pub time_s: f64,
    pub interceptor: Interceptor,
    pub threat: Threat,
    pub wind: WindParams,
    pub interceptor_gust: Gust,
    pub threat_gust: Gust,
}

impl Engagement {
    /// An engagement at time 0 with gusts drawn from their stationary
    /// distribution (interceptor first, then threat) from the wind stream.
    pub fn new(
        interceptor: Interceptor,
        threat: Threat,
        wind: WindParams,
        wind_rng: &mut Rng,
    ) -> Self {
        let interceptor_gust = Gust::stationary(&wind, wind_rng);
        let threat_gust = Gust::stationary(&wind, wind_rng);
        Self {
            time_s: 0.0,
            interceptor,
            threat,
            wind,
            interceptor_gust,
            threat_gust,
        }
    }

    /// `r_T - r_M` (m).
    #[inline]
    pub fn relative_position_m(&self) -> Vec3 {
        self.threat.state.position_m - self.interceptor.position_m()
    }

    /// `v_T - v_M` (m/s).
    #[inline]
    pub fn relative_velocity_mps(&self) -> Vec3 {
        self.threat.state.velocity_mps - self.interceptor.velocity_mps()
    }

    /// The episode constants [`Engagement::step_with`] needs.
    pub fn step_constants(&self) -> StepConstants {
        StepConstants {
            wind_toward: self.wind.toward(),
            maneuver_direction: self.threat.maneuver.direction_weights(),
        }
    }

    /// Advances the engagement by `h_s`. Gusts draw from `wind_rng` (both
    /// vehicles, interceptor first), maneuver switches from `maneuver_rng`.
    pub fn step(
        &mut self,
        world: &World,
        h_s: f64,
        wind_rng: &mut Rng,
        maneuver_rng: &mut Rng,
    ) -> StepGeometry {
        let constants = self.step_constants();
        self.step_with(&constants, world, h_s, wind_rng, maneuver_rng)
    }

    /// [`Engagement::step`] with the episode constants evaluated once for
    /// several steps (bit-identical to `step`).
    pub fn step_with(
        &mut self,
        constants: &StepConstants,
        world: &World,
        h_s: f64,
        wind_rng: &mut Rng,
        maneuver_rng: &mut Rng,
    ) -> StepGeometry {
        let t0 = self.time_s;
        let r_start = self.relative_position_m();

        // Held inputs for the whole step. The mean wind depends only on the
        // altitudes, which the gust update does not change: evaluate it once.
        let toward = constants.wind_toward;
        let mean_m = self
            .wind
            .mean_toward(self.interceptor.position_m().z, toward);
        let mean_t = self
            .wind
            .mean_toward(self.threat.state.position_m.z, toward);
        let air_m = self
            .interceptor
            .air_speed_mps(mean_m + self.interceptor_gust.velocity_mps);
        let air_t = self
            .threat
            .air_speed_mps(mean_t + self.threat_gust.velocity_mps);
        self.interceptor_gust
            .advance(&self.wind, air_m, h_s, wind_rng);
        self.threat_gust.advance(&self.wind, air_t, h_s, wind_rng);
        let wind_m = mean_m + self.interceptor_gust.velocity_mps;
        let wind_t = mean_t + self.threat_gust.velocity_mps;
        self.threat.begin_step(t0, h_s, maneuver_rng);

        let t_end = t0 + h_s;
        let event_inside = self
            .interceptor
            .next_event_after_s(t0)
            .is_some_and(|e| e < t_end - EVENT_EPSILON_S);
        match &mut self.interceptor {
            // The common case, an `aero` step without a motor event: both
            // vehicles in one interleaved RK4.
            Interceptor::Aero(a) if !event_inside => {
                let (thrust, mdot) = a.params.motor_at(t0);
                let threat = &self.threat;
                let direction = constants.maneuver_direction;
                let (own, target) = rk4_step_pair(
                    t0,
                    (&a.state, t_end - t0),
                    (&threat.state, h_s),
                    |_, s| a.derivative(world, s, thrust, mdot, wind_m),
                    |t, s| threat.derivative_with(world, t, s, wind_t, direction),
                );
                a.state = own;
                self.threat.state = target;
            }
            _ => {
                // Interceptor: split at motor events inside the step.
                let mut t = t0;
                while t < t_end - EVENT_EPSILON_S {
                    let next = match self.interceptor.next_event_after_s(t) {
                        Some(e) if e < t_end - EVENT_EPSILON_S => e,
                        _ => t_end,
                    };
                    self.interceptor.integrate(world, wind_m, t, next - t);
                    t = next;
                }
                self.threat
                    .integrate_with(world, wind_t, t0, h_s, constants.maneuver_direction);
            }
        }
        self.interceptor.finish_step(world, wind_m, t_end);
        self.threat.finish_step();
        self.time_s = t_end;

        StepGeometry {
            t0_s: t0,
            h_s,
            relative_position_start_m: r_start,
            relative_position_end_m: self.relative_position_m(),
            relative_velocity_end_mps: self.relative_velocity_mps(),
        }
    }

    /// Wind currently felt by the interceptor (m/s).
    #[inline]
    pub fn interceptor_wind(&self) -> Vec3 {
        self.interceptor_gust
            .wind_at(&self.wind, self.interceptor.position_m().z)
    }

    /// Wind currently felt by the threat (m/s).
    #[inline]
    pub fn threat_wind(&self) -> Vec3 {
        self.threat_gust
            .wind_at(&self.wind, self.threat.state.position_m.z)
    }
}
