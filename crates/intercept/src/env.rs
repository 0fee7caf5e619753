//! [`InterceptEnv`]: the interception task behind the [`Env`] interface.
//!
//! One decision (`step`):
//! 1. the action becomes a world-frame acceleration command (model 8.2):
//!    - `aero`, `direct`: `u` in [-1, 1]^2 is the lateral command in the
//!      velocity frame, `a_cmd = sat(a_max (u1 yV + u2 zV), a_max)`;
//!    - `thruster`, `direct`: `u` in [-1, 1]^3 rescaled into the unit ball
//!      (`u / max(1, |u|)`, never per axis), `F_cmd = F_max u`;
//!    - `residual`: `a_cmd = sat(a_law + rho a_max u_frame, a_max)` with
//!      `a_law` the configured guidance law on the tracker estimate;
//!    - `action.gravity_compensation` adds `-P_perp(x_b) g` (`-g` for
//!      `thruster`) to direct commands;
//! 2. the command is held for `physics_rate_hz / decision_rate_hz` RK4
//!    physics steps; after each: closest-approach tracking, sensing (radar,
//!    seeker, delivered detections into the tracker) and the termination
//!    rules of model section 9, in order `cpa`, `ground`, `leak`, `energy`,
//!    then the time limit (`timeout`, a truncation);
//! 3. reward ([`crate::reward`]) and the observation from the tracker
//!    estimate, or in `raw_radar` mode from the latest delivered radar
//!    detection ([`crate::observation`]).
//!
//! In `raw_radar` mode the tracker keeps running, but only behind the
//! controller view that the classical baselines read (and the `track_lost_s`
//! metric): `hlynr eval --policy zem-pn` then flies the same filtered law on
//! the same episodes in every observation mode, so a learned raw-radar policy
//! is compared with the baseline it would replace, and nothing of the
//! tracker reaches the learned policy's observation. The residual action
//! mode, whose base law flies on the tracker, is rejected with `raw_radar`.
//!
//! Success has one definition: `info.is_success = miss_distance_m <=
//! kill_radius_m`, with `miss_distance_m` the minimum intra-step closest
//! approach between the true positions over the episode ([`CpaTracker`]).
//! On the final step `info` carries `miss_distance_m`, `time_to_intercept_s`,
//! `final_distance_m`, `track_lost_s`, `energy_used` (integral of the squared
//! achieved control acceleration, m^2/s^3), `propellant_used_kg` and
//! `termination_reason` (code of [`TerminationReason`]). Every step carries
//! `time_to_go_s` (true CPA time-to-go) and `range_m`. `reset` puts the
//! episode's randomisation draws into `info` (`dr_*`, `radar_*`, `seeker_*`)
//! and they stay available through [`InterceptEnv::record`].
//!
//! Randomness: each episode has its own seeds ([`EpisodeSeeds`]), one stream
//! per source (engagement geometry and randomisation, radar noise, radar
//! link, seeker, maneuver, wind), so changing one source leaves the others'
//! draws unchanged.

use hlynr_env::env::{from_state, to_state};
use hlynr_env::{Env, EnvError, Info, ObsMut, Result, Space, Step};
use hlynr_rng::Rng;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Vec3;
use crate::cpa::CpaTracker;
use crate::detection_feed::DetectionFeed;
use crate::engagement::{DrawScratch, EngagementRecord, draw_engagement_with};
use crate::guidance::{
    Guidance, GuidanceInput, GuidanceState, InterceptorKinematics, TargetKinematics, VehicleKind,
};
use crate::integrate::{Engagement, World};
use crate::interceptor::Interceptor;
use crate::observation::{
    ControllerView, ObservationScales, OwnObservation, TrackLayout, observation_dim,
    velocity_frame, write_observation, write_raw_radar_observation,
};
use crate::physics_config::InterceptorConfig;
use crate::radar::{GroundRadar, TargetTruth};
use crate::reward::{TerminationReason, effort_penalty, potential, terminal_reward, true_zem_perp};
use crate::scenario::{ActionMode, ScenarioConfig};
use crate::seeker::{OwnState, Seeker};
use crate::threat::ThreatMotion;
use crate::tracker::{Estimate, Tracker};

mod driven;
pub use driven::{DrivenStatus, InterceptorTruth, ThreatTruth, TruthSample};

/// Seeds of one episode, one per random source.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpisodeSeeds {
    pub engagement: u64,
    pub radar: u64,
    pub radar_link: u64,
    pub seeker: u64,
    pub maneuver: u64,
    pub wind: u64,
}

impl EpisodeSeeds {
    /// The per-source seeds derived from one episode seed.
    pub fn from_seed(seed: u64) -> Self {
        let s = |i: u64| hlynr_rng::derive_seed(seed, i);
        Self {
            engagement: s(0),
            radar: s(1),
            radar_link: s(2),
            seeker: s(3),
            maneuver: s(4),
            wind: s(5),
        }
    }
}

/// Everything that changes during an episode (serialised by `state()`).
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Dynamic {
    master: Rng,
    maneuver_rng: Rng,
    wind_rng: Rng,
    world: World,
    engagement: Engagement,
    record: EngagementRecord,
    radar: GroundRadar,
    seeker: Option<Seeker>,
    tracker: Tracker,
    /// Ground-radar detections as received (the `raw_radar` observation).
    radar_feed: DetectionFeed,
    cpa: CpaTracker,
    guidance: GuidanceState,
    previous_action: [f32; 3],
    /// Unit inertial velocity at launch: the fixed axis of the `raw_radar`
    /// observation's launch frame.
    #[serde(default)]
    launch_axis: Vec3,
    potential: f64,
    track_lost_s: f64,
    accel_scale_mps2: f64,
    reason: TerminationReason,
    done: bool,
    /// The wind the interceptor feels, as an outside simulator sent it
    /// (driven episodes, [`driven`]); `None`: the engagement's own wind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    driven_wind_mps: Option<Vec3>,
}

/// Which state fields held infinity when saved.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
struct InfiniteFields {
    miss_distance: bool,
    maneuver_end: bool,
    reference_accel: bool,
}

/// The serialised form of the dynamic state.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct SavedState {
    dynamic: Dynamic,
    infinite: InfiniteFields,
}

/// The interception environment.
#[derive(Debug)]
pub struct InterceptEnv {
    config: ScenarioConfig,
    observation_space: Space,
    action_space: Space,
    act_dim: usize,
    substeps: usize,
    h_s: f64,
    decision_period_s: f64,
    defended_m: Vec3,
    guidance: Guidance,
    d: Dynamic,
    /// The tracker estimate at the current time, computed once after each
    /// `reset`, `step` and `set_state` and shared by the observation, the
    /// controller view and the residual command (it is a function of the
    /// tracker and the clock, which change nowhere else).
    estimate: Estimate,
    /// The interceptor's kinematics at the current state, cached like
    /// `estimate` (the observation, the controller view and the next step's
    /// command all read it); `None` after [`InterceptEnv::engagement_mut`]
    /// may have changed the state, until the next refresh.
    kinematics: Option<InterceptorKinematics>,
    /// Buffers of the engagement draw, reused across resets.
    scratch: DrawScratch,
    /// The truth after each physics step of the last `step`, when recording.
    truth_log: Option<Vec<TruthSample>>,
}

fn interceptor_kind(config: &ScenarioConfig) -> VehicleKind {
    match config.physics.interceptor {
        InterceptorConfig::Aero(_) => VehicleKind::Aero,
        InterceptorConfig::Thruster(_) => VehicleKind::Thruster,
    }
}

impl InterceptEnv {
    /// Builds the env from a validated scenario and draws a first episode
    /// from seed 0 (call `reset` before use).
    pub fn new(config: &ScenarioConfig) -> Result<Self> {
        use hlynr_env::config::Validate;
        config
            .validate("")
            .map_err(|e| EnvError::invalid("scenario", e.to_string()))?;
        let act_dim = match interceptor_kind(config) {
            VehicleKind::Aero => 2,
            VehicleKind::Thruster => 3,
        };
        let obs_dim = observation_dim(config.observation.mode, act_dim);
        let guidance = Guidance::new(&config.guidance)?;
        let seeds = EpisodeSeeds::from_seed(0);
        let mut scratch = DrawScratch::default();
        let d = Self::draw(config, Rng::seed_from_u64(0), seeds, &mut scratch)?;
        let estimate = d.tracker.estimate(d.engagement.time_s);
        let h_s = config.physics.step_s();
        let substeps = config.substeps();
        Ok(Self {
            observation_space: Space::uniform_box(-5.0, 5.0, &[obs_dim]),
            action_space: Space::uniform_box(-1.0, 1.0, &[act_dim]),
            act_dim,
            substeps,
            h_s,
            decision_period_s: h_s * substeps as f64,
            defended_m: Vec3::from_array(config.engagement.defended_point_m),
            guidance,
            d,
            kinematics: None,
            estimate,
            scratch,
            truth_log: None,
            config: config.clone(),
        })
    }

    /// Builds the dynamic state of a first episode, constructing the sensors
    /// and the tracker.
    fn draw(
        config: &ScenarioConfig,
        master: Rng,
        seeds: EpisodeSeeds,
        scratch: &mut DrawScratch,
    ) -> Result<Dynamic> {
        let mut engagement_rng = Rng::seed_from_u64(seeds.engagement);
        let mut maneuver_rng = Rng::seed_from_u64(seeds.maneuver);
        let mut wind_rng = Rng::seed_from_u64(seeds.wind);
        let drawn = draw_engagement_with(
            config,
            &mut engagement_rng,
            &mut maneuver_rng,
            &mut wind_rng,
            scratch,
        )?;
        let mut radar = GroundRadar::new(&config.radar)?;
        radar.reset(
            0.0,
            Rng::seed_from_u64(seeds.radar),
            Rng::seed_from_u64(seeds.radar_link),
        );
        radar.set_target_rcs(drawn.record.rcs_m2);
        let seeker = if config.seeker.enabled {
            let mut s = Seeker::new(&config.seeker)?;
            s.reset(0.0, Rng::seed_from_u64(seeds.seeker));
            Some(s)
        } else {
            None
        };
        let tracker = Tracker::new(&config.tracker, drawn.world.gravity_mps2)?;
        let radar_feed = DetectionFeed::new(config.radar.update_rate_hz, config.physics.step_s())?;
        let accel_scale_mps2 = match &drawn.engagement.interceptor {
            Interceptor::Aero(a) => a.params.max_structural_accel_mps2,
            Interceptor::Thruster(t) => t.params.max_thrust_n / t.params.dry_mass_kg,
        };
        let launch_axis = drawn.engagement.interceptor.velocity_mps().unit_or_zero();
        Ok(Dynamic {
            master,
            maneuver_rng,
            wind_rng,
            world: drawn.world,
            engagement: drawn.engagement,
            record: drawn.record,
            radar,
            seeker,
            tracker,
            radar_feed,
            cpa: CpaTracker::new(),
            guidance: GuidanceState::default(),
            previous_action: [0.0; 3],
            launch_axis,
            potential: 0.0,
            track_lost_s: 0.0,
            accel_scale_mps2,
            reason: TerminationReason::None,
            done: false,
            driven_wind_mps: None,
        })
    }

    /// Draws a new episode into the existing dynamic state: the sensors and
    /// the tracker are reset in place (what [`InterceptEnv::draw`] gives for
    /// the same seeds, without rebuilding them).
    fn redraw(&mut self, seeds: EpisodeSeeds) -> Result<()> {
        let mut engagement_rng = Rng::seed_from_u64(seeds.engagement);
        let mut maneuver_rng = Rng::seed_from_u64(seeds.maneuver);
        let mut wind_rng = Rng::seed_from_u64(seeds.wind);
        let drawn = draw_engagement_with(
            &self.config,
            &mut engagement_rng,
            &mut maneuver_rng,
            &mut wind_rng,
            &mut self.scratch,
        )?;
        let d = &mut self.d;
        d.radar.reset(
            0.0,
            Rng::seed_from_u64(seeds.radar),
            Rng::seed_from_u64(seeds.radar_link),
        );
        d.radar.set_target_rcs(drawn.record.rcs_m2);
        match d.seeker.as_mut() {
            Some(s) => s.reset(0.0, Rng::seed_from_u64(seeds.seeker)),
            None if self.config.seeker.enabled => {
                let mut s = Seeker::new(&self.config.seeker)?;
                s.reset(0.0, Rng::seed_from_u64(seeds.seeker));
                d.seeker = Some(s);
            }
            None => {}
        }
        if drawn.world.gravity_mps2 == d.world.gravity_mps2 {
            d.tracker.reset();
        } else {
            d.tracker = Tracker::new(&self.config.tracker, drawn.world.gravity_mps2)?;
        }
        d.radar_feed.reset();
        d.accel_scale_mps2 = match &drawn.engagement.interceptor {
            Interceptor::Aero(a) => a.params.max_structural_accel_mps2,
            Interceptor::Thruster(t) => t.params.max_thrust_n / t.params.dry_mass_kg,
        };
        d.launch_axis = drawn.engagement.interceptor.velocity_mps().unit_or_zero();
        d.maneuver_rng = maneuver_rng;
        d.wind_rng = wind_rng;
        d.world = drawn.world;
        d.engagement = drawn.engagement;
        d.record = drawn.record;
        d.cpa = CpaTracker::new();
        d.guidance = GuidanceState::default();
        d.previous_action = [0.0; 3];
        d.potential = 0.0;
        d.track_lost_s = 0.0;
        d.reason = TerminationReason::None;
        d.done = false;
        d.driven_wind_mps = None;
        Ok(())
    }

    /// Recomputes the cached tracker estimate and own kinematics for the
    /// current state.
    fn refresh_views(&mut self) {
        self.estimate = self.d.tracker.estimate(self.d.engagement.time_s);
        self.kinematics = Some(self.own_kinematics());
    }

    /// The interceptor's kinematics now (cached after every reset, step and
    /// `set_state`).
    fn kinematics(&self) -> InterceptorKinematics {
        self.kinematics.unwrap_or_else(|| self.own_kinematics())
    }

    /// The scenario.
    pub fn config(&self) -> &ScenarioConfig {
        &self.config
    }

    /// The true engagement (for evaluation and plots; never for the policy).
    pub fn engagement(&self) -> &Engagement {
        &self.d.engagement
    }

    /// The world of this episode (atmosphere with its deviations, gravity).
    pub fn world(&self) -> &World {
        &self.d.world
    }

    /// What was drawn for this episode, including the randomisation factors.
    pub fn record(&self) -> &EngagementRecord {
        &self.d.record
    }

    /// The ground radar (its episode draw holds the noise and latency factors).
    pub fn radar(&self) -> &GroundRadar {
        &self.d.radar
    }

    /// The seeker, when enabled.
    pub fn seeker(&self) -> Option<&Seeker> {
        self.d.seeker.as_ref()
    }

    /// The tracker.
    pub fn tracker(&self) -> &Tracker {
        &self.d.tracker
    }

    /// The tracker estimate now.
    pub fn estimate(&self) -> Estimate {
        self.current_estimate().into_owned()
    }

    /// The cached estimate (recomputed only if the clock was moved through
    /// [`InterceptEnv::engagement_mut`]).
    fn current_estimate(&self) -> std::borrow::Cow<'_, Estimate> {
        if self.estimate.time_s() == self.d.engagement.time_s {
            std::borrow::Cow::Borrowed(&self.estimate)
        } else {
            std::borrow::Cow::Owned(self.d.tracker.estimate(self.d.engagement.time_s))
        }
    }

    /// Closest approach so far (m).
    pub fn miss_distance_m(&self) -> f64 {
        self.d.cpa.miss_distance_m
    }

    /// Why the episode ended (`None` while running).
    pub fn termination_reason(&self) -> TerminationReason {
        self.d.reason
    }

    /// Writes the observation of the current state (what the last `reset`
    /// or `step` wrote) into `obs`.
    pub fn observe(&self, obs: &mut [f32]) {
        self.write_obs(obs);
    }

    /// Physics steps per decision.
    pub fn substeps(&self) -> usize {
        self.substeps
    }

    /// Mutable access to the true engagement, for tests that perturb the
    /// truth (the no-truth-leak test) and for scripted geometries.
    pub fn engagement_mut(&mut self) -> &mut Engagement {
        self.kinematics = None;
        &mut self.d.engagement
    }

    /// Starts an episode from explicit per-source seeds.
    pub fn reset_with_seeds(
        &mut self,
        seeds: EpisodeSeeds,
        obs: &mut [f32],
        info: &mut Info,
    ) -> Result<()> {
        self.redraw(seeds)?;
        self.begin_episode(obs);
        self.fill_reset_info(info);
        Ok(())
    }

    /// The first sensing, shaping potential and observation of an episode
    /// whose vehicles are in place at time 0.
    fn begin_episode(&mut self, obs: &mut [f32]) {
        self.guidance.reset();
        self.sense(0.0);
        self.refresh_views();
        let (zem, _) = true_zem_perp(
            self.d.engagement.relative_position_m(),
            self.d.engagement.relative_velocity_mps(),
        );
        self.d.potential = potential(&self.config.reward, zem, self.config.kill_radius_m);
        self.write_obs(obs);
    }

    fn fill_reset_info(&self, info: &mut Info) {
        let r = &self.d.record;
        let dr = &r.randomization;
        info.set("dr_drag_factor", dr.drag_factor);
        info.set("dr_mass_factor", dr.mass_factor);
        info.set("dr_thrust_factor", dr.thrust_factor);
        info.set("dr_wind_factor", dr.wind_factor);
        info.set("dr_density_factor", dr.density_factor);
        info.set("dr_temperature_offset_k", dr.temperature_offset_k);
        let rd = self.d.radar.episode_draw();
        info.set("radar_noise_factor", rd.noise_factor);
        info.set("radar_latency_s", rd.latency_s);
        if let Some(s) = &self.d.seeker {
            let (noise, latency) = s.episode_draw();
            info.set("seeker_noise_factor", noise);
            info.set("seeker_latency_s", latency);
        }
        info.set("threat_class", r.threat_class as f64);
        info.set("heading_error_rad", r.heading_error_rad);
        info.set(
            "wind_reference_speed_mps",
            self.d.engagement.wind.reference_speed_mps,
        );
        info.set("feasible", if r.feasible { 1.0 } else { 0.0 });
    }

    /// Sensor polling and tracking at time `t_s` (after a physics step).
    fn sense(&mut self, t_s: f64) {
        let d = &mut self.d;
        let truth = TargetTruth {
            position_m: d.engagement.threat.state.position_m,
            velocity_mps: d.engagement.threat.state.velocity_mps,
        };
        d.radar.poll(t_s, &truth);
        while let Some(det) = d.radar.pop_ready(t_s) {
            // A radar detection always has a finite range; one the feed
            // refuses is counted there and still offered to the tracker,
            // which applies its own checks.
            d.radar_feed.receive(&det, t_s);
            d.tracker.ingest(&det);
        }
        if let Some(seeker) = d.seeker.as_mut() {
            let own = OwnState {
                position_m: d.engagement.interceptor.position_m(),
                velocity_mps: d.engagement.interceptor.velocity_mps(),
            };
            seeker.poll(t_s, &own, &truth);
            while let Some(det) = seeker.pop_ready(t_s) {
                d.tracker.ingest(&det);
            }
        }
        d.tracker.advance(t_s);
    }

    /// The wind the interceptor feels (m/s).
    fn interceptor_wind(&self) -> Vec3 {
        self.d
            .driven_wind_mps
            .unwrap_or_else(|| self.d.engagement.interceptor_wind())
    }

    fn own_kinematics(&self) -> InterceptorKinematics {
        let e = &self.d.engagement;
        let t = e.time_s;
        let wind = self.interceptor_wind();
        let i = &e.interceptor;
        let (kind, tau) = match i {
            Interceptor::Aero(a) => (VehicleKind::Aero, a.params.autopilot_tau_s),
            Interceptor::Thruster(th) => (VehicleKind::Thruster, th.params.thrust_tau_s),
        };
        InterceptorKinematics {
            position_m: i.position_m(),
            velocity_mps: i.velocity_mps(),
            body_axis: (i.velocity_mps() - wind).unit_or_zero(),
            lateral_accel_mps2: i.achieved_accel_mps2(),
            a_max_mps2: i.max_accel_mps2(&self.d.world, wind, t),
            autopilot_tau_s: tau,
            kind,
        }
    }

    fn own_observation(&self, k: &InterceptorKinematics) -> OwnObservation {
        let e = &self.d.engagement;
        OwnObservation {
            position_m: k.position_m,
            velocity_mps: k.velocity_mps,
            body_axis: k.body_axis,
            control_accel_mps2: k.lateral_accel_mps2,
            a_max_mps2: k.a_max_mps2,
            accel_scale_mps2: self.d.accel_scale_mps2,
            propulsion_fraction: e.interceptor.propulsion_fraction(e.time_s),
            seeker_lock: self.d.seeker.as_ref().is_some_and(Seeker::locked),
            time_s: e.time_s,
            launch_axis: self.d.launch_axis,
        }
    }

    fn write_obs(&self, obs: &mut [f32]) {
        let k = self.kinematics();
        let own = self.own_observation(&k);
        let previous_action = &self.d.previous_action[..self.act_dim];
        let scales = ObservationScales {
            kill_radius_m: self.config.kill_radius_m,
            max_range_m: self.config.observation.max_range_m,
        };
        match TrackLayout::of(self.config.observation.mode) {
            Some(layout) => {
                let estimate = self.current_estimate();
                write_observation(layout, &estimate, &own, previous_action, &scales, obs);
            }
            None => {
                write_raw_radar_observation(&self.d.radar_feed, &own, previous_action, &scales, obs)
            }
        }
    }

    /// The ground-radar detections received this episode, as the `raw_radar`
    /// observation sees them.
    pub fn radar_feed(&self) -> &DetectionFeed {
        &self.d.radar_feed
    }

    /// Turns an action into the world-frame acceleration command (m/s^2).
    fn command(&mut self, action: &[f32], k: &InterceptorKinematics) -> Vec3 {
        let a_max = k.a_max_mps2;
        let g = self.d.world.gravity_mps2;
        let u = match self.act_dim {
            2 => {
                let (_, y, z) = velocity_frame(k.body_axis);
                y * f64::from(action[0]) + z * f64::from(action[1])
            }
            _ => {
                let u = Vec3::new(
                    f64::from(action[0]),
                    f64::from(action[1]),
                    f64::from(action[2]),
                );
                u / u.norm().max(1.0)
            }
        };
        match self.config.action.mode {
            ActionMode::Direct => {
                let mut a = u * a_max;
                if self.config.action.gravity_compensation {
                    a -= match k.kind {
                        VehicleKind::Aero => g.perp_to(k.body_axis),
                        VehicleKind::Thruster => g,
                    };
                }
                a.clamp_norm(a_max)
            }
            ActionMode::Residual => {
                let estimate = self.current_estimate().into_owned();
                let base = if estimate.track_valid() {
                    self.guidance.set_state(self.d.guidance);
                    let c = self.guidance.command(&GuidanceInput {
                        time_s: self.d.engagement.time_s,
                        interceptor: *k,
                        target: TargetKinematics::from(&estimate),
                        gravity_mps2: g,
                        boost_phase: false,
                        pip_m: None,
                    });
                    self.d.guidance = self.guidance.state();
                    c.accel_mps2
                } else {
                    match k.kind {
                        VehicleKind::Aero => -g.perp_to(k.body_axis),
                        VehicleKind::Thruster => -g,
                    }
                };
                (base + u * (self.config.action.residual_scale * a_max)).clamp_norm(a_max)
            }
        }
    }

    /// Applies the termination rules after a physics step; returns the reason.
    fn check_termination(&self, passed_cpa: bool) -> TerminationReason {
        let e = &self.d.engagement;
        if passed_cpa {
            return TerminationReason::Cpa;
        }
        if e.interceptor.position_m().z < 0.0 {
            return TerminationReason::Ground;
        }
        let threat = e.threat.state.position_m;
        if threat.z < 0.0
            || (threat - self.defended_m).norm() < self.config.termination.leak_radius_m
        {
            return TerminationReason::Leak;
        }
        let r = e.relative_position_m();
        let closing = r.dot(e.relative_velocity_mps()) < 0.0;
        if !e.interceptor.has_propulsion(e.time_s)
            && e.interceptor.velocity_mps().norm() < self.config.termination.min_speed_mps
            && !closing
        {
            return TerminationReason::Energy;
        }
        if e.time_s >= self.config.time_limit_s - 1e-9 {
            return TerminationReason::Timeout;
        }
        TerminationReason::None
    }

    fn truth_view(&self) -> (Vec3, Vec3, Vec3, Vec3) {
        let e = &self.d.engagement;
        let s = e.threat.state;
        let accel = e
            .threat
            .derivative(&self.d.world, e.time_s, &s, e.threat_wind())
            .velocity_mps;
        let known = match e.threat.motion {
            ThreatMotion::Ballistic { .. } => self.d.world.gravity_mps2,
            ThreatMotion::Cruise { .. } => Vec3::ZERO,
        };
        (s.position_m, s.velocity_mps, accel, known)
    }

    fn fill_final_info(&self, info: &mut Info) {
        let d = &self.d;
        let miss = d.cpa.miss_distance_m;
        info.is_success = Some(miss <= self.config.kill_radius_m);
        info.set("miss_distance_m", miss);
        info.set("time_to_intercept_s", d.cpa.time_of_closest_approach_s);
        info.set(
            "final_distance_m",
            d.engagement.relative_position_m().norm(),
        );
        info.set("track_lost_s", d.track_lost_s);
        info.set(
            "energy_used",
            d.engagement.interceptor.control_effort_m2ps3(),
        );
        info.set(
            "propellant_used_kg",
            d.engagement.interceptor.propellant_used_kg(),
        );
        info.set("termination_reason", d.reason.code());
        info.set("episode_time_s", d.engagement.time_s);
    }
}

impl Env for InterceptEnv {
    fn observation_space(&self) -> &Space {
        &self.observation_space
    }

    fn action_space(&self) -> &Space {
        &self.action_space
    }

    fn reset(
        &mut self,
        seed: Option<u64>,
        obs: ObsMut<'_>,
        info: &mut Info,
    ) -> hlynr_env::Result<()> {
        let episode_seed = match seed {
            Some(s) => {
                self.d.master = Rng::seed_from_u64(s);
                s
            }
            None => self.d.master.next_u64(),
        };
        let seeds = EpisodeSeeds::from_seed(episode_seed);
        // The scenario was validated in `new`, so drawing should not fail;
        // if it does, the caller hears of it.
        self.reset_with_seeds(seeds, obs.values, info)
    }

    fn step(
        &mut self,
        action: &[f32],
        obs: ObsMut<'_>,
        info: &mut Info,
    ) -> hlynr_env::Result<Step> {
        let obs = obs.values;
        if self.d.done {
            self.write_obs(obs);
            self.fill_final_info(info);
            return Ok(Step {
                reward: 0.0,
                terminated: self.d.reason != TerminationReason::Timeout,
                truncated: self.d.reason == TerminationReason::Timeout,
            });
        }
        let k = self.kinematics();
        let a_cmd = self.command(action, &k);
        self.d.engagement.interceptor.set_accel_command_mps2(a_cmd);
        for (slot, &a) in self.d.previous_action.iter_mut().zip(action) {
            *slot = a;
        }
        let mut reason = TerminationReason::None;
        self.d.radar_feed.begin_decision();
        if let Some(log) = &mut self.truth_log {
            log.clear();
        }
        let constants = self.d.engagement.step_constants();
        for _ in 0..self.substeps {
            let d = &mut self.d;
            let geom = d.engagement.step_with(
                &constants,
                &d.world,
                self.h_s,
                &mut d.wind_rng,
                &mut d.maneuver_rng,
            );
            let passed = d.cpa.update(&geom);
            let t = d.engagement.time_s;
            self.sense(t);
            if !self.d.tracker.has_track() {
                self.d.track_lost_s += self.h_s;
            }
            if self.truth_log.is_some() {
                let sample = self.truth();
                if let Some(log) = &mut self.truth_log {
                    log.push(sample);
                }
            }
            reason = self.check_termination(passed);
            if reason != TerminationReason::None {
                break;
            }
        }
        let r = self.d.engagement.relative_position_m();
        let v = self.d.engagement.relative_velocity_mps();
        let (zem, t_go) = true_zem_perp(r, v);
        let rc = &self.config.reward;
        let terminated = reason != TerminationReason::None && reason != TerminationReason::Timeout;
        let truncated = reason == TerminationReason::Timeout;
        let phi_next = if terminated {
            0.0
        } else if t_go < rc.blind_time_s {
            self.d.potential
        } else {
            potential(rc, zem, self.config.kill_radius_m)
        };
        let mut reward = rc.gamma * phi_next - self.d.potential
            + effort_penalty(
                rc,
                a_cmd.norm(),
                self.d.accel_scale_mps2,
                self.decision_period_s,
            );
        self.d.potential = phi_next;
        info.set("time_to_go_s", t_go);
        info.set("range_m", r.norm());
        if reason != TerminationReason::None {
            self.d.done = true;
            self.d.reason = reason;
            reward += terminal_reward(
                rc,
                reason,
                self.d.cpa.miss_distance_m,
                self.config.kill_radius_m,
            );
            self.fill_final_info(info);
        }
        self.refresh_views();
        self.write_obs(obs);
        Ok(Step {
            reward,
            terminated,
            truncated,
        })
    }

    fn state(&self) -> Value {
        // JSON has no infinity. The quantities that may be infinite (the
        // closest approach before the first step, an endless maneuver, a
        // threat without a dynamic-pressure limit) are saved as flags and
        // restored exactly.
        let mut d = self.d.clone();
        let infinite = InfiniteFields {
            miss_distance: d.cpa.miss_distance_m.is_infinite(),
            maneuver_end: d.engagement.threat.maneuver.end_s.is_infinite(),
            reference_accel: d
                .engagement
                .threat
                .capability
                .reference_accel_mps2
                .is_infinite(),
        };
        if infinite.miss_distance {
            d.cpa.miss_distance_m = 0.0;
        }
        if infinite.maneuver_end {
            d.engagement.threat.maneuver.end_s = 0.0;
        }
        if infinite.reference_accel {
            d.engagement.threat.capability.reference_accel_mps2 = 0.0;
        }
        to_state(&SavedState {
            dynamic: d,
            infinite,
        })
    }

    fn set_state(&mut self, state: &Value) -> Result<()> {
        let saved: SavedState = from_state("InterceptEnv", state)?;
        let mut d = saved.dynamic;
        if saved.infinite.miss_distance {
            d.cpa.miss_distance_m = f64::INFINITY;
        }
        if saved.infinite.maneuver_end {
            d.engagement.threat.maneuver.end_s = f64::INFINITY;
        }
        if saved.infinite.reference_accel {
            d.engagement.threat.capability.reference_accel_mps2 = f64::INFINITY;
        }
        self.d = d;
        self.guidance.set_state(self.d.guidance);
        self.refresh_views();
        Ok(())
    }

    fn controller_view_dim(&self) -> usize {
        ControllerView::DIM
    }

    fn write_controller_view(&self, out: &mut [f64]) {
        let k = self.kinematics();
        let e = &self.d.engagement;
        let (
            target_position_m,
            target_velocity_mps,
            target_acceleration_mps2,
            known,
            valid,
            sp,
            sv,
        ) = if self.config.oracle {
            let (p, v, a, kn) = self.truth_view();
            (p, v, a, kn, true, 0.0, 0.0)
        } else {
            let est = self.current_estimate();
            (
                est.position_m(),
                est.velocity_mps(),
                est.acceleration_mps2(),
                est.known_acceleration_mps2(),
                est.track_valid(),
                if est.track_valid() {
                    est.position_sigma_m()
                } else {
                    0.0
                },
                if est.track_valid() {
                    est.velocity_sigma_mps()
                } else {
                    0.0
                },
            )
        };
        let boost_remaining_s = match &e.interceptor {
            Interceptor::Aero(a) => a
                .params
                .stages
                .first()
                .map_or(0.0, |s| (s.end_time_s - e.time_s).max(0.0)),
            Interceptor::Thruster(_) => 0.0,
        };
        ControllerView {
            target_position_m,
            target_velocity_mps,
            target_acceleration_mps2,
            target_known_acceleration_mps2: known,
            track_valid: valid,
            position_sigma_m: sp,
            velocity_sigma_mps: sv,
            position_m: k.position_m,
            velocity_mps: k.velocity_mps,
            body_axis: k.body_axis,
            control_accel_mps2: k.lateral_accel_mps2,
            a_max_mps2: k.a_max_mps2,
            lag_tau_s: k.autopilot_tau_s,
            time_s: e.time_s,
            boost_remaining_s,
            propulsion_fraction: e.interceptor.propulsion_fraction(e.time_s),
            thruster: k.kind == VehicleKind::Thruster,
            gravity_mps2: self.d.world.gravity_mps2,
            mass_kg: e.interceptor.mass_kg(),
        }
        .write(out);
    }
}
