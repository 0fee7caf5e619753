//! The engagement generator (model section 4.4): draws one whole scenario
//! instance from the ranges of a [`ScenarioConfig`].
//!
//! Per episode, in this order:
//! 1. domain randomisation ([`crate::physics_config::PhysicsConfig::sample_randomization`]) from the
//!    engagement stream: drag, mass, thrust, wind, density and temperature
//!    factors, each applied by the `build_*` functions (the radar and seeker
//!    draw their own noise and latency factors from their own streams);
//! 2. the world (atmosphere with the drawn deviations) and the wind (mean
//!    profile and gust level, from the wind stream);
//! 3. up to `max_draw_attempts` geometry draws (engagement stream): threat
//!    class by weight, aim point within `aim_offset_m` of the defended point,
//!    approach azimuth, threat speed and start state (cruise: level toward
//!    the aim point; ballistic: impact conditions back-propagated through the
//!    threat's own dynamics; box: uniform in a box, aimed at the aim point),
//!    the maneuver (maneuver stream), launcher position, and the predicted
//!    intercept point by bisection on the threat's non-maneuvering trajectory.
//!    A draw is feasible when a PIP exists within `pip_max_time_s` and lies
//!    at least `pip_min_altitude_m` up; the last draw is kept if none is;
//! 4. the launch direction toward the PIP, perturbed by the heading error and
//!    raised to the minimum launch elevation.

use hlynr_env::EnvError;
use hlynr_rng::Rng;
use serde::{Deserialize, Serialize};

use crate::Vec3;
use crate::integrate::{Engagement, World};
use crate::interceptor::{AeroInterceptor, Interceptor, ThrusterInterceptor};
use crate::physics_config::{InterceptorConfig, RandomizationSample};
use crate::scenario::{ScenarioConfig, ThreatSpawn};
use crate::threat::{
    InterceptPoint, Maneuver, Threat, ThreatState, back_propagate, ballistic_start_drag_free,
    cruise_start, draw_aim_point, impact_velocity, launch_direction, predicted_intercept_point,
};
use crate::units::deg_to_rad;

/// Step of the threat trajectory table used for the PIP search (s).
const PIP_TABLE_STEP_S: f64 = 0.05;
/// Grid step of the PIP root bracketing (s).
const PIP_SCAN_STEP_S: f64 = 0.25;
/// Step of the back-propagation of ballistic threats from their impact
/// conditions (s). Against a converged (500 Hz) back-propagation its start
/// state is within centimetres over the configured threat ranges, as close as
/// one at the 100 Hz physics rate (the 10 m atmosphere table's kinks limit
/// both), at half the cost; coarser steps lose accuracy quickly in the
/// heavy-drag corner (tested in `physics_dynamics`).
pub const BACK_PROPAGATION_STEP_S: f64 = 0.02;

/// What was drawn for one episode, besides the engagement itself.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct EngagementRecord {
    /// Domain-randomisation factors applied this episode.
    pub randomization: RandomizationSample,
    /// Index into `ScenarioConfig::threats`.
    pub threat_class: usize,
    /// The threat's aim point (m).
    pub aim_point_m: Vec3,
    /// The predicted intercept point used for the launch, if any.
    pub pip: Option<InterceptPoint>,
    /// Angle between the launch direction and the PIP line (rad).
    pub heading_error_rad: f64,
    /// Geometry draws rejected by the feasibility filter before this one.
    pub rejected_draws: u32,
    /// Whether the kept draw passed the feasibility filter.
    pub feasible: bool,
    /// The threat's radar cross-section (m^2).
    pub rcs_m2: f64,
}

/// A drawn engagement: the world it flies in, the true initial state, and the record.
#[derive(Clone, Debug, PartialEq)]
pub struct DrawnEngagement {
    pub world: World,
    pub engagement: Engagement,
    pub record: EngagementRecord,
}

fn pick_class(config: &ScenarioConfig, rng: &mut Rng) -> usize {
    let total: f64 = config.threats.iter().map(|c| c.weight).sum();
    let mut u = rng.uniform() * total;
    for (i, c) in config.threats.iter().enumerate() {
        if u < c.weight {
            return i;
        }
        u -= c.weight;
    }
    config
        .threats
        .iter()
        .rposition(|c| c.weight > 0.0)
        .unwrap_or(0)
}

/// The threat's non-maneuvering trajectory in the mean wind, tabulated every
/// [`PIP_TABLE_STEP_S`] for the PIP search and extended only as far as the
/// search asks: the search stops at the first root, usually long before the
/// horizon, so most of the table is never needed. The entries are those of a
/// table built to the horizon up front (same steps in the same order).
struct TrajectoryTable<'a> {
    threat: Threat,
    world: &'a World,
    wind: &'a crate::wind::WindParams,
    /// Entries the full table would have (`horizon / step + 1`).
    len: usize,
    time_s: f64,
    positions: &'a mut Vec<Vec3>,
}

impl<'a> TrajectoryTable<'a> {
    fn new(
        threat: &Threat,
        world: &'a World,
        wind: &'a crate::wind::WindParams,
        horizon_s: f64,
        positions: &'a mut Vec<Vec3>,
    ) -> Self {
        let threat = Threat {
            maneuver: Maneuver::none(),
            ..threat.clone()
        };
        positions.clear();
        positions.push(threat.state.position_m);
        Self {
            threat,
            world,
            wind,
            len: (horizon_s / PIP_TABLE_STEP_S).ceil() as usize + 1,
            time_s: 0.0,
            positions,
        }
    }

    /// Extends the table to `entries` entries (at most the full length). One
    /// RK4 step per entry: a prediction for aiming the launch needs far less
    /// accuracy than the simulation itself.
    fn extend_to(&mut self, entries: usize) {
        let h = PIP_TABLE_STEP_S;
        while self.positions.len() < entries.min(self.len) {
            let w = self.wind.mean_at(self.threat.state.position_m.z);
            self.threat.integrate(self.world, w, self.time_s, h);
            self.threat.finish_step();
            self.time_s += h;
            self.positions.push(self.threat.state.position_m);
        }
    }

    /// Predicted position at `t_s`, linearly interpolated.
    fn position_at(&mut self, t_s: f64) -> Vec3 {
        let x = (t_s / PIP_TABLE_STEP_S).max(0.0);
        let i = (x.floor() as usize).min(self.len.saturating_sub(2));
        self.extend_to(i + 2);
        let table = &self.positions;
        if table.len() < 2 {
            return table[0];
        }
        let f = (x - i as f64).clamp(0.0, 1.0);
        table[i] + (table[i + 1] - table[i]) * f
    }
}

/// Reusable buffers of [`draw_engagement_with`], so repeated draws do not
/// allocate.
#[derive(Clone, Debug, Default)]
pub struct DrawScratch {
    trajectory: Vec<Vec3>,
}

/// Draws one engagement. `engagement_rng` draws randomisation and geometry,
/// `maneuver_rng` the maneuver, `wind_rng` the wind and initial gusts.
pub fn draw_engagement(
    config: &ScenarioConfig,
    engagement_rng: &mut Rng,
    maneuver_rng: &mut Rng,
    wind_rng: &mut Rng,
) -> Result<DrawnEngagement, EnvError> {
    draw_engagement_with(
        config,
        engagement_rng,
        maneuver_rng,
        wind_rng,
        &mut DrawScratch::default(),
    )
}

/// [`draw_engagement`] with caller-owned buffers (no allocation once they
/// have grown).
pub fn draw_engagement_with(
    config: &ScenarioConfig,
    engagement_rng: &mut Rng,
    maneuver_rng: &mut Rng,
    wind_rng: &mut Rng,
    scratch: &mut DrawScratch,
) -> Result<DrawnEngagement, EnvError> {
    let physics = &config.physics;
    let randomization = physics.sample_randomization(engagement_rng);
    let world = physics.build_world(&randomization);
    let wind = physics.build_wind(&randomization, wind_rng);
    let e = &config.engagement;
    let defended = Vec3::from_array(e.defended_point_m);
    let horizon = e.pip_horizon_s.min(e.pip_max_time_s);
    let attempts = e.max_draw_attempts.max(1);

    let mut rejected = 0;
    let mut kept = None;
    for attempt in 0..attempts {
        let class_index = pick_class(config, engagement_rng);
        let class = &config.threats[class_index];
        let tc = &class.threat;
        let aim = draw_aim_point(
            defended,
            e.aim_offset_m.sample(engagement_rng),
            engagement_rng,
        );
        let azimuth = deg_to_rad(e.approach_azimuth_deg.sample(engagement_rng));
        // Start altitude and motion.
        let (state, altitude, motion) = match &class.start {
            ThreatSpawn::Cruise(s) => {
                let range = s.range_m.sample(engagement_rng);
                let altitude = s.altitude_m.sample(engagement_rng);
                let (motion, speed) = tc.sample_motion(altitude, &randomization, engagement_rng);
                (
                    cruise_start(aim, range, azimuth, altitude, speed),
                    altitude,
                    motion,
                )
            }
            ThreatSpawn::Ballistic(s) => {
                let descent = deg_to_rad(s.descent_deg.sample(engagement_rng));
                let t_imp = s.time_to_impact_s.sample(engagement_rng);
                let (motion, speed) = tc.sample_motion(0.0, &randomization, engagement_rng);
                let v_imp = impact_velocity(speed, descent, azimuth);
                let probe = Threat {
                    motion,
                    maneuver: Maneuver::none(),
                    capability: tc.capability(),
                    state: ballistic_start_drag_free(aim, v_imp, t_imp, world.gravity_mps2),
                };
                let start = back_propagate(
                    &probe,
                    &world,
                    &wind,
                    aim,
                    v_imp,
                    t_imp,
                    BACK_PROPAGATION_STEP_S,
                );
                (start, start.position_m.z, motion)
            }
            ThreatSpawn::Box(s) => {
                let p = Vec3::new(
                    s.position_m[0].sample(engagement_rng),
                    s.position_m[1].sample(engagement_rng),
                    s.position_m[2].sample(engagement_rng),
                );
                let (motion, speed) = tc.sample_motion(p.z, &randomization, engagement_rng);
                let state = ThreatState {
                    position_m: p,
                    velocity_mps: (aim - p).unit_or_zero() * speed,
                };
                (state, p.z, motion)
            }
        };
        let maneuver = tc.maneuver.sample(altitude, maneuver_rng);
        let threat = Threat {
            motion,
            maneuver,
            capability: tc.capability(),
            state,
        };
        let launcher = Vec3::new(
            e.launcher_position_m[0].sample(engagement_rng),
            e.launcher_position_m[1].sample(engagement_rng),
            e.launcher_position_m[2].sample(engagement_rng),
        );
        let mut table =
            TrajectoryTable::new(&threat, &world, &wind, horizon, &mut scratch.trajectory);
        let pip = predicted_intercept_point(
            launcher,
            e.mean_flyout_speed_mps,
            horizon,
            PIP_SCAN_STEP_S,
            |t| table.position_at(t),
        );
        let feasible = pip.is_some_and(|p| {
            p.time_s <= e.pip_max_time_s && p.position_m.z >= e.pip_min_altitude_m
        });
        let last = attempt + 1 == attempts;
        if feasible || last {
            kept = Some((class_index, aim, threat, launcher, pip, feasible));
            break;
        }
        rejected += 1;
    }
    let Some((threat_class, aim, threat, launcher, pip, feasible)) = kept else {
        return Err(EnvError::invalid(
            "engagement",
            "no engagement could be drawn",
        ));
    };

    // Launch.
    let nominal = match pip {
        Some(p) => p.position_m - launcher,
        None => threat.state.position_m - launcher,
    };
    let direction = launch_direction(
        nominal,
        deg_to_rad(e.heading_error_max_deg),
        deg_to_rad(e.min_launch_elevation_deg),
        engagement_rng,
    );
    let heading_error_rad = direction
        .dot(nominal.unit_or_zero())
        .clamp(-1.0, 1.0)
        .acos();
    let interceptor = match &physics.interceptor {
        InterceptorConfig::Aero(a) => Interceptor::Aero(AeroInterceptor::launch(
            a.build(&randomization),
            launcher,
            direction,
            a.launch_speed_mps,
        )),
        InterceptorConfig::Thruster(t) => {
            let velocity = match &e.launch_velocity_mps {
                Some(v) => Vec3::new(
                    v[0].sample(engagement_rng),
                    v[1].sample(engagement_rng),
                    v[2].sample(engagement_rng),
                ),
                None => direction * t.launch_speed_mps,
            };
            Interceptor::Thruster(ThrusterInterceptor::launch(
                t.build(&randomization),
                launcher,
                velocity,
            ))
        }
    };
    let engagement = Engagement::new(interceptor, threat, wind, wind_rng);
    Ok(DrawnEngagement {
        world,
        engagement,
        record: EngagementRecord {
            randomization,
            threat_class,
            aim_point_m: aim,
            pip,
            heading_error_rad,
            rejected_draws: rejected,
            feasible,
            rcs_m2: config.threats[threat_class].rcs_m2,
        },
    })
}
