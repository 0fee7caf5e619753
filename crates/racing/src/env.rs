//! The racing task as an [`Env`], modelled on what tmrl exposes for
//! TrackMania: decisions at 20 Hz, speed, gear and rpm plus a greyscale
//! camera image (or 19 LIDAR beams), discrete or continuous controls, and a
//! reward for progress along the track's reference line.
//!
//! Reward per step: `progress_per_m` times the metres gained along the
//! reference line (negative when driving backwards), minus `step_penalty`,
//! plus `lap_bonus` on completing the lap. The episode ends (terminated) on
//! the lap, or when no new best progress was made for
//! `failure_countdown_steps` (stuck, spun, or driving the wrong way), and
//! is truncated at `max_episode_steps`. Success, in `info`, is a completed
//! lap; its time is `lap_time_s`.
//!
//! Frames are single images; stack them with the run's `env.frame_stack`
//! (tmrl's full environment gives four).

use hlynr_env::{Env, EnvError, Info, ObsMut, Space, Step};
use hlynr_rng::Rng;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::camera::{Camera, CameraConfig};
use crate::car::{CarParams, CarState, Controls, advance};
use crate::raster::TrackRaster;
use crate::track::{self, Track, TrackSet};

/// Decisions per second (tmrl's real-time step).
pub const DECISION_HZ: f64 = 20.0;
/// Physics steps per decision.
pub const SUBSTEPS: usize = 10;
/// Speed into a wall above which touching it is an impact (m/s).
const IMPACT_MPS: f64 = 1.0;
/// Speed, gear and rpm are divided by these in the observation.
const SPEED_SCALE_MPS: f64 = 50.0;
/// The discrete controls: `(gas, brake, steer)`, steer positive to the left.
pub const ACTIONS: [(f64, f64, f64); 11] = [
    (0.0, 0.0, 0.0),
    (1.0, 0.0, 0.0),
    (0.0, 1.0, 0.0),
    (1.0, 0.0, 1.0),
    (1.0, 0.0, -1.0),
    (0.0, 0.0, 1.0),
    (0.0, 0.0, -1.0),
    (0.0, 1.0, 1.0),
    (0.0, 1.0, -1.0),
    (1.0, 0.0, 0.5),
    (1.0, 0.0, -0.5),
];
/// Names of [`ACTIONS`], for documentation and plots.
pub const ACTION_NAMES: [&str; 11] = [
    "coast",
    "gas",
    "brake",
    "gas+left",
    "gas+right",
    "left",
    "right",
    "brake+left",
    "brake+right",
    "gas+half-left",
    "gas+half-right",
];

/// What the policy sees besides speed, gear and rpm.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObservationMode {
    /// One greyscale image from the camera (`u8`, `[1, H, W]`).
    #[default]
    Camera,
    /// Distances to the walls along the LIDAR beams, over `lidar_range_m`.
    Lidar,
}

/// How actions are given.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionMode {
    /// `Discrete(11)`, the controls of [`ACTIONS`].
    #[default]
    Discrete,
    /// tmrl's box `[gas, brake, steer]` in `[-1, 1]^3`: gas and brake act
    /// above 0, steer is positive to the right.
    Continuous,
}

/// The reward's terms.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RewardConfig {
    /// Reward per metre of progress along the reference line.
    pub progress_per_m: f64,
    /// Subtracted every step.
    pub step_penalty: f64,
    /// Added on completing the lap.
    pub lap_bonus: f64,
    /// Steps without a new best progress that end the episode.
    pub failure_countdown_steps: u32,
}

impl Default for RewardConfig {
    fn default() -> Self {
        Self {
            progress_per_m: 0.1,
            step_penalty: 0.0,
            lap_bonus: 10.0,
            failure_countdown_steps: 100,
        }
    }
}

/// `env.settings` of the racing task.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RacingConfig {
    /// A shipped track (`oval`, `technical`, `flow`), one procedural track
    /// (`procedural-K`, the K-th training track, or `procedural-heldout-K`),
    /// or a set drawn from per episode: `train` (the first
    /// `procedural_tracks` training tracks) or `held_out` (as many tracks no
    /// training set contains).
    pub track: String,
    /// Size of the `train` and `held_out` sets.
    pub procedural_tracks: u64,
    pub observation: ObservationMode,
    pub action: ActionMode,
    pub camera: CameraConfig,
    /// LIDAR beams, spread from hard left to hard right.
    pub lidar_beams: usize,
    pub lidar_range_m: f64,
    pub reward: RewardConfig,
    /// Time limit in decisions (120 s at 20 Hz by default). Not a setting:
    /// a run sets it with `env.max_episode_steps`, the one time-limit key.
    #[serde(skip)]
    pub max_episode_steps: u32,
    pub car: CarParams,
}

impl Default for RacingConfig {
    fn default() -> Self {
        Self {
            track: "technical".into(),
            procedural_tracks: 100,
            observation: ObservationMode::Camera,
            action: ActionMode::Discrete,
            camera: CameraConfig::default(),
            lidar_beams: 19,
            lidar_range_m: 100.0,
            reward: RewardConfig::default(),
            max_episode_steps: 2400,
            car: CarParams::default(),
        }
    }
}

/// Where the episode's track comes from.
#[derive(Clone, Debug, PartialEq)]
enum TrackSource {
    /// One track by name (see [`track::named`]).
    Fixed(String),
    /// A track of the set drawn per episode.
    Set(TrackSet),
}

impl RacingConfig {
    /// Checks every value, naming the first bad one.
    pub fn validate(&self) -> Result<(), String> {
        self.car.validate()?;
        self.camera.validate()?;
        self.source()?;
        if !(1..=1_000_000).contains(&self.procedural_tracks) {
            return Err(format!(
                "procedural_tracks must lie in [1, 1000000], got {}",
                self.procedural_tracks
            ));
        }
        if !(1..=360).contains(&self.lidar_beams) {
            return Err(format!(
                "lidar_beams must lie in [1, 360], got {}",
                self.lidar_beams
            ));
        }
        if !(self.lidar_range_m > 0.0 && self.lidar_range_m <= 1000.0) {
            return Err(format!(
                "lidar_range_m must lie in (0, 1000], got {}",
                self.lidar_range_m
            ));
        }
        if self.max_episode_steps == 0 {
            return Err("max_episode_steps must be at least 1".into());
        }
        let r = &self.reward;
        for (k, v) in [
            ("progress_per_m", r.progress_per_m),
            ("step_penalty", r.step_penalty),
            ("lap_bonus", r.lap_bonus),
        ] {
            if !v.is_finite() {
                return Err(format!("reward.{k} must be finite, got {v}"));
            }
        }
        if r.failure_countdown_steps == 0 {
            return Err("reward.failure_countdown_steps must be at least 1".into());
        }
        Ok(())
    }

    fn source(&self) -> Result<TrackSource, String> {
        Ok(match self.track.as_str() {
            "train" => TrackSource::Set(TrackSet::Train),
            "held_out" => TrackSource::Set(TrackSet::HeldOut),
            name => {
                track::named(name)?;
                TrackSource::Fixed(name.to_string())
            }
        })
    }

    /// The observation space: `(image u8 [1, H, W], [speed, gear, rpm])`
    /// with the camera, `[beams..., speed, gear, rpm]` with the LIDAR.
    pub fn observation_space(&self) -> Space {
        match self.observation {
            ObservationMode::Camera => Space::Tuple {
                spaces: vec![
                    Space::byte_box(&[1, self.camera.height, self.camera.width]),
                    Space::uniform_box(0.0, f32::INFINITY, &[3]),
                ],
            },
            ObservationMode::Lidar => {
                Space::uniform_box(0.0, f32::INFINITY, &[self.lidar_beams + 3])
            }
        }
    }

    /// The action space.
    pub fn action_space(&self) -> Space {
        match self.action {
            ActionMode::Discrete => Space::Discrete { n: ACTIONS.len() },
            ActionMode::Continuous => Space::uniform_box(-1.0, 1.0, &[3]),
        }
    }
}

/// The episode's dynamic state (everything [`Env::state`] saves).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Episode {
    car: CarState,
    /// Track of the episode: a procedural seed, or `None` for a fixed track.
    procedural_seed: Option<u64>,
    /// Reference-line sample nearest the car.
    index: usize,
    /// Arc length at the last step (m).
    s_m: f64,
    /// Progress along the line since the start (m) and its best so far.
    progress_m: f64,
    best_progress_m: f64,
    steps: u32,
    steps_since_best: u32,
    wall_hits: u32,
    distance_m: f64,
    done: bool,
}

/// The racing environment.
#[derive(Debug)]
pub struct RacingEnv {
    config: RacingConfig,
    source: TrackSource,
    observation_space: Space,
    action_space: Space,
    camera: Camera,
    track: Track,
    raster: TrackRaster,
    rng: Rng,
    ep: Episode,
    lidar: Vec<f64>,
}

impl RacingEnv {
    /// An environment of `config` (validated).
    pub fn new(config: &RacingConfig) -> Result<Self, EnvError> {
        config
            .validate()
            .map_err(|e| EnvError::invalid("racing settings", e))?;
        let source = config
            .source()
            .map_err(|e| EnvError::invalid("racing settings", e))?;
        let (track, procedural_seed) = match &source {
            TrackSource::Fixed(name) => (
                track::named(name).map_err(|e| EnvError::invalid("racing", e))?,
                None,
            ),
            TrackSource::Set(set) => (track::procedural(set.seed(0)), Some(set.seed(0))),
        };
        let raster = TrackRaster::new(&track);
        Ok(Self {
            camera: Camera::new(&config.camera).map_err(|e| EnvError::invalid("racing", e))?,
            observation_space: config.observation_space(),
            action_space: config.action_space(),
            lidar: vec![0.0; config.lidar_beams],
            config: config.clone(),
            source,
            track,
            raster,
            rng: Rng::seed_from_u64(0),
            ep: Episode {
                procedural_seed,
                ..Episode::default()
            },
        })
    }

    /// The current track.
    pub fn track(&self) -> &Track {
        &self.track
    }

    /// The current track's painting.
    pub fn raster(&self) -> &TrackRaster {
        &self.raster
    }

    /// The car's state.
    pub fn car(&self) -> &CarState {
        &self.ep.car
    }

    /// The configuration.
    pub fn config(&self) -> &RacingConfig {
        &self.config
    }

    /// Renders the camera view of the current state into `out`.
    pub fn render_camera(&self, out: &mut [u8]) {
        let c = &self.ep.car;
        self.camera
            .render(&self.raster, c.x_m, c.y_m, c.heading_rad, out);
    }

    /// Switches to the procedural track of `seed` (no-op if current).
    fn load_procedural(&mut self, seed: u64) {
        if self.ep.procedural_seed != Some(seed) {
            self.track = track::procedural(seed);
            self.raster = TrackRaster::new(&self.track);
        }
        self.ep.procedural_seed = Some(seed);
    }

    fn controls(&self, action: &[f32]) -> Result<Controls, EnvError> {
        match self.config.action {
            ActionMode::Discrete => {
                let a = action[0];
                if !(a >= 0.0 && (a as usize) < ACTIONS.len() && a.fract() == 0.0) {
                    return Err(EnvError::invalid(
                        "racing action",
                        format!("{a} is not an action in 0..{}", ACTIONS.len()),
                    ));
                }
                let (gas, brake, steer) = ACTIONS[a as usize];
                Ok(Controls { gas, brake, steer })
            }
            ActionMode::Continuous => {
                if action.iter().any(|a| !a.is_finite()) {
                    return Err(EnvError::invalid(
                        "racing action",
                        format!("{action:?} is not finite"),
                    ));
                }
                let a = |k: usize| f64::from(action[k]).clamp(-1.0, 1.0);
                Ok(Controls {
                    gas: a(0).max(0.0),
                    brake: a(1).max(0.0),
                    steer: -a(2),
                })
            }
        }
    }

    fn write_obs(&mut self, obs: ObsMut<'_>) {
        let c = self.ep.car;
        let p = &self.config.car;
        let tail = [
            (c.speed_mps() / SPEED_SCALE_MPS) as f32,
            ((c.gear + 1) as f64 / p.gear_ratios.len() as f64) as f32,
            (p.rpm(c.vx_mps, c.gear) / p.redline_rpm) as f32,
        ];
        match self.config.observation {
            ObservationMode::Camera => {
                self.render_camera(obs.bytes);
                obs.values.copy_from_slice(&tail);
            }
            ObservationMode::Lidar => {
                crate::lidar::scan(
                    &self.raster,
                    c.x_m,
                    c.y_m,
                    c.heading_rad,
                    self.config.lidar_range_m,
                    &mut self.lidar,
                );
                let n = self.lidar.len();
                for (o, &d) in obs.values[..n].iter_mut().zip(&self.lidar) {
                    *o = (d / self.config.lidar_range_m) as f32;
                }
                obs.values[n..].copy_from_slice(&tail);
            }
        }
    }

    /// Keeps the car off the walls: a car whose side passes a wall is put
    /// back against it, loses its velocity into the wall and part of the
    /// rest. Returns true on a hit (contact with a wall moving into it).
    fn collide(&mut self) -> bool {
        let car = &mut self.ep.car;
        let proj = self
            .track
            .project([car.x_m, car.y_m], Some(self.ep.index), 12);
        self.ep.index = proj.index;
        let limit = self.track.half_width_m() - self.config.car.half_width_m;
        if proj.lateral_m.abs() <= limit {
            return false;
        }
        let t = self.track.tangents()[proj.index];
        // Outward wall normal.
        let side = proj.lateral_m.signum();
        let normal = [-t[1] * side, t[0] * side];
        let excess = proj.lateral_m.abs() - limit;
        car.x_m -= normal[0] * excess;
        car.y_m -= normal[1] * excess;
        let v = car.velocity();
        let speed = v[0].hypot(v[1]);
        let into = (v[0] * normal[0] + v[1] * normal[1]).max(0.0);
        // The velocity into the wall is lost, and on an impact (above
        // `IMPACT_MPS` into the wall) a share of the rest that grows with
        // its angle: all of `1 - wall_speed_kept` from about 15 degrees on,
        // little when grazing. A car pressed against a wall slides along it.
        let loss = if into > IMPACT_MPS {
            (1.0 - self.config.car.wall_speed_kept) * (4.0 * into / speed.max(1e-9)).min(1.0)
        } else {
            0.0
        };
        let keep = 1.0 - loss;
        let v = [v[0] - into * normal[0], v[1] - into * normal[1]];
        car.set_velocity([v[0] * keep, v[1] * keep]);
        car.yaw_rate_rps *= keep;
        into > IMPACT_MPS
    }

    fn finish_info(&self, info: &mut Info, lap: bool) {
        let ep = &self.ep;
        let time = ep.steps as f64 / DECISION_HZ;
        info.is_success = Some(lap);
        info.set(
            "progress_fraction",
            ep.best_progress_m / self.track.length_m(),
        );
        info.set("wall_hits", f64::from(ep.wall_hits));
        info.set("mean_speed_mps", ep.distance_m / time.max(1e-9));
        if lap {
            info.set("lap_time_s", time);
        }
    }

    /// The controller view's length: body velocity and yaw rate, lateral
    /// offset, heading error, half width and road-wheel angle, then [`PREVIEW_POINTS`]
    /// reference-line points ahead (car frame, m), each with the sharpest
    /// curvature (1/m) of the stretch leading to it.
    pub const VIEW_DIM: usize = 7 + 3 * PREVIEW_POINTS;
}

/// Reference-line points in the controller view, [`PREVIEW_SPACING_M`] apart.
pub const PREVIEW_POINTS: usize = 32;
pub const PREVIEW_SPACING_M: f64 = 8.0;

impl Env for RacingEnv {
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
        if let Some(s) = seed {
            self.rng = Rng::seed_from_u64(s);
        }
        match self.source.clone() {
            TrackSource::Fixed(_) => {}
            TrackSource::Set(set) => {
                let k = self.rng.below(self.config.procedural_tracks);
                self.load_procedural(set.seed(k));
            }
        }
        let (p, t) = self.track.at(0.0);
        let procedural_seed = self.ep.procedural_seed;
        self.ep = Episode {
            car: CarState {
                x_m: p[0],
                y_m: p[1],
                heading_rad: t[1].atan2(t[0]),
                ..CarState::default()
            },
            procedural_seed,
            ..Episode::default()
        };
        let proj = self.track.project(p, None, 0);
        self.ep.index = proj.index;
        self.ep.s_m = proj.s_m;
        self.write_obs(obs);
        info.clear();
        Ok(())
    }

    fn step(
        &mut self,
        action: &[f32],
        obs: ObsMut<'_>,
        info: &mut Info,
    ) -> hlynr_env::Result<Step> {
        if self.ep.done {
            return Err(EnvError::invalid(
                "racing",
                "step after the episode ended; reset first",
            ));
        }
        let controls = self.controls(action)?;
        let dt = 1.0 / (DECISION_HZ * SUBSTEPS as f64);
        let mut hit = false;
        for _ in 0..SUBSTEPS {
            advance(&self.config.car, &mut self.ep.car, controls, dt);
            hit |= self.collide();
            self.ep.distance_m += self.ep.car.speed_mps() * dt;
        }
        let ep = &mut self.ep;
        ep.wall_hits += u32::from(hit);
        ep.steps += 1;
        let proj = self
            .track
            .project([ep.car.x_m, ep.car.y_m], Some(ep.index), 12);
        ep.index = proj.index;
        let length = self.track.length_m();
        let ds = (proj.s_m - ep.s_m + length / 2.0).rem_euclid(length) - length / 2.0;
        ep.s_m = proj.s_m;
        ep.progress_m += ds;
        let r = &self.config.reward;
        let mut reward = r.progress_per_m * ds - r.step_penalty;
        if ep.progress_m > ep.best_progress_m {
            ep.best_progress_m = ep.progress_m;
            ep.steps_since_best = 0;
        } else {
            ep.steps_since_best += 1;
        }
        let lap = ep.progress_m >= length;
        if lap {
            reward += r.lap_bonus;
        }
        let failed = ep.steps_since_best >= r.failure_countdown_steps;
        let terminated = lap || failed;
        let truncated = !terminated && ep.steps >= self.config.max_episode_steps;
        ep.done = terminated || truncated;
        self.write_obs(obs);
        info.clear();
        if terminated || truncated {
            self.finish_info(info, lap);
        }
        Ok(Step {
            reward,
            terminated,
            truncated,
        })
    }

    fn state(&self) -> Value {
        serde_json::json!({
            "episode": self.ep,
            "rng": self.rng,
        })
    }

    fn set_state(&mut self, state: &Value) -> hlynr_env::Result<()> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Saved {
            episode: Episode,
            rng: Rng,
        }
        let saved: Saved =
            serde_json::from_value(state.clone()).map_err(|e| EnvError::state("racing", e))?;
        if let Some(seed) = saved.episode.procedural_seed {
            self.load_procedural(seed);
        }
        self.ep = saved.episode;
        self.rng = saved.rng;
        Ok(())
    }

    fn controller_view_dim(&self) -> usize {
        Self::VIEW_DIM
    }

    fn write_controller_view(&self, out: &mut [f64]) {
        let c = &self.ep.car;
        let proj = self.track.project([c.x_m, c.y_m], Some(self.ep.index), 12);
        let t = self.track.tangents()[proj.index];
        let heading_error = (c.heading_rad - t[1].atan2(t[0]) + std::f64::consts::PI)
            .rem_euclid(std::f64::consts::TAU)
            - std::f64::consts::PI;
        out[..7].copy_from_slice(&[
            c.vx_mps,
            c.vy_mps,
            c.yaw_rate_rps,
            proj.lateral_m,
            heading_error,
            self.track.half_width_m(),
            c.steer_rad,
        ]);
        let (s, co) = c.heading_rad.sin_cos();
        let m = self.track.points().len();
        let spacing = self.track.spacing_m();
        let per_window = (PREVIEW_SPACING_M / spacing).ceil() as usize;
        let curvature = self.track.curvature();
        for (k, chunk) in out[7..].chunks_exact_mut(3).enumerate() {
            let ahead = (k + 1) as f64 * PREVIEW_SPACING_M;
            let (p, _) = self.track.at(proj.s_m + ahead);
            let rel = [p[0] - c.x_m, p[1] - c.y_m];
            // The sharpest curvature of the window ending at the point.
            let last = ((proj.s_m + ahead) / spacing) as usize;
            let sharpest = (0..per_window)
                .map(|j| curvature[(last + m - j) % m])
                .fold(0.0f64, |a, b| if b.abs() > a.abs() { b } else { a });
            chunk.copy_from_slice(&[
                rel[0] * co + rel[1] * s,
                -rel[0] * s + rel[1] * co,
                sharpest,
            ]);
        }
    }
}
