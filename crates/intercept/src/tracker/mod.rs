//! Target tracker (model section 6): an EKF fed only by [`Detection`]s.
//!
//! The tracker never sees the true target state: its inputs are detections, its
//! output is an [`Estimate`], whose constructor is private to this module. Anything
//! holding an `Estimate` therefore holds filter output, never truth. Guidance laws and
//! observation builders read the threat only through it.
//!
//! Timing (section 6.4). The filter state always refers to the time of the last
//! processed measurement. Every update is preceded by a prediction to that
//! measurement's time stamp, so a delayed measurement is applied where it belongs,
//! never "now". Outputs at the current time come from a prediction-only copy
//! advanced from the filter time, computed on every call ([`Tracker::estimate`]):
//! the filter predicts every step whether or not a detection arrived (defect B4 is
//! structurally impossible). Because the discretisations are exact (CV's `F` and the
//! Singer `F`, `Q` compose over split intervals), predicting in one jump equals
//! predicting step by step; CV's discrete white-noise `Q` is, by its definition,
//! applied per measurement interval, which is how its `sa` is tuned.
//!
//! Detections from sensors with different latencies can arrive out of time order.
//! They are held for `reorder_window_ms` and filtered in time-stamp order; one older
//! than the filter time is counted in [`TrackStats::out_of_sequence_dropped`] and
//! discarded.
//!
//! Track life cycle: no track until two detections with range (section 6.3); the
//! track is dropped when no update has been accepted for `coast_timeout_s` (gated
//! rejections do not count), after which two new detections start it again.

pub mod ekf;
pub mod models;

use std::collections::VecDeque;

use hlynr_env::EnvError;
use serde::{Deserialize, Serialize};

use crate::Vec3;
use crate::linalg::{self, Mat};
use crate::radar::{Detection, TIME_EPS_S, spherical_to_cartesian};
use crate::sensor_config::{MotionModelKind, TrackerConfig};
use ekf::{EkfState, MAX_STATES, UpdateOutcome};
use models::MotionModel;

/// Shortest time between the two initialising detections (s).
const MIN_INIT_INTERVAL_S: f64 = 1e-4;

/// Detections held for reordering before they are filtered; reserved up front.
const PENDING_CAPACITY: usize = 64;

/// Counters and the last innovation statistics of a track.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TrackStats {
    /// Accepted measurement updates.
    pub updates: u64,
    /// Updates rejected by the NIS gate.
    pub rejected: u64,
    /// Updates skipped for degenerate geometry.
    pub skipped: u64,
    /// Detections older than the filter time, discarded.
    pub out_of_sequence_dropped: u64,
    /// Detections with non-finite values, discarded.
    pub invalid_dropped: u64,
    /// Times a track was (re)initialised.
    pub initialisations: u64,
    /// Times a track was dropped on the coast timeout.
    pub drops: u64,
    /// NIS of the last accepted update (0 before the first).
    pub last_nis: f64,
    /// Measurement dimension of the last accepted update.
    pub last_nis_dof: usize,
    /// Time stamp of the last accepted update or initialisation (s).
    pub last_update_time_s: Option<f64>,
}

/// What the tracker knows about the threat at a time: the only view of the threat
/// that guidance and observations get. Built exclusively by [`Tracker::estimate`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Estimate {
    time_s: f64,
    track_valid: bool,
    position_m: Vec3,
    velocity_mps: Vec3,
    acceleration_mps2: Vec3,
    known_acceleration_mps2: Vec3,
    covariance: Mat<6, 6>,
    acceleration_cov: Mat<3, 3>,
    nis: f64,
    nis_dof: usize,
    time_since_update_s: f64,
}

impl Estimate {
    fn no_track(time_s: f64, stats: &TrackStats) -> Self {
        Self {
            time_s,
            track_valid: false,
            position_m: Vec3::ZERO,
            velocity_mps: Vec3::ZERO,
            acceleration_mps2: Vec3::ZERO,
            known_acceleration_mps2: Vec3::ZERO,
            covariance: linalg::zeros(),
            acceleration_cov: linalg::zeros(),
            nis: 0.0,
            nis_dof: 0,
            time_since_update_s: stats
                .last_update_time_s
                .map_or(f64::INFINITY, |t| time_s - t),
        }
    }

    /// Time the estimate refers to (s).
    pub fn time_s(&self) -> f64 {
        self.time_s
    }

    /// Whether a track exists. When false, every kinematic field is zero.
    pub fn track_valid(&self) -> bool {
        self.track_valid
    }

    /// Estimated threat position (m).
    pub fn position_m(&self) -> Vec3 {
        self.position_m
    }

    /// Estimated threat velocity (m/s).
    pub fn velocity_mps(&self) -> Vec3 {
        self.velocity_mps
    }

    /// Estimated threat acceleration (m/s^2): the Singer state plus the known input
    /// (gravity when `gravity_input` is on); for CV only the known input.
    pub fn acceleration_mps2(&self) -> Vec3 {
        self.acceleration_mps2
    }

    /// The known part of the acceleration: the model's input (gravity when
    /// `gravity_input` is on, else zero). ZEM-PN uses only this part.
    pub fn known_acceleration_mps2(&self) -> Vec3 {
        self.known_acceleration_mps2
    }

    /// Joint position-velocity covariance, ordered `[p_x, p_y, p_z, v_x, v_y, v_z]`.
    pub fn pos_vel_covariance(&self) -> &Mat<6, 6> {
        &self.covariance
    }

    /// Position covariance (m^2).
    pub fn position_covariance(&self) -> Mat<3, 3> {
        let c = &self.covariance;
        [
            [c[0][0], c[0][1], c[0][2]],
            [c[1][0], c[1][1], c[1][2]],
            [c[2][0], c[2][1], c[2][2]],
        ]
    }

    /// Velocity covariance (m^2/s^2).
    pub fn velocity_covariance(&self) -> Mat<3, 3> {
        let c = &self.covariance;
        [
            [c[3][3], c[3][4], c[3][5]],
            [c[4][3], c[4][4], c[4][5]],
            [c[5][3], c[5][4], c[5][5]],
        ]
    }

    /// Acceleration covariance (zero for CV).
    pub fn acceleration_covariance(&self) -> &Mat<3, 3> {
        &self.acceleration_cov
    }

    /// `sqrt(tr P_pos)` (m).
    pub fn position_sigma_m(&self) -> f64 {
        linalg::block_trace(&self.covariance, 0, 3).max(0.0).sqrt()
    }

    /// `sqrt(tr P_vel)` (m/s).
    pub fn velocity_sigma_mps(&self) -> f64 {
        linalg::block_trace(&self.covariance, 3, 3).max(0.0).sqrt()
    }

    /// NIS of the last accepted update and its degrees of freedom.
    pub fn last_nis(&self) -> (f64, usize) {
        (self.nis, self.nis_dof)
    }

    /// Time since the last accepted update (s); infinite before any.
    pub fn time_since_update_s(&self) -> f64 {
        self.time_since_update_s
    }
}

/// The tracker: track initiation, EKF, timing and track maintenance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tracker {
    config: TrackerConfig,
    model: MotionModel,
    known_accel: Vec3,
    reorder_window_s: f64,
    filter: Option<EkfState>,
    init_first: Option<Detection>,
    pending: VecDeque<Detection>,
    stats: TrackStats,
}

impl Tracker {
    /// Builds a tracker. `gravity_mps2` is the gravity vector, used as a known input
    /// when `config.gravity_input` is set.
    pub fn new(config: &TrackerConfig, gravity_mps2: Vec3) -> Result<Self, EnvError> {
        config.validate()?;
        if !gravity_mps2.is_finite() {
            return Err(EnvError::invalid(
                "tracker gravity",
                format!("must be finite, got {gravity_mps2:?}"),
            ));
        }
        let model = match config.model {
            MotionModelKind::Cv => MotionModel::Cv {
                sa_mps2: config.sa_mps2,
            },
            MotionModelKind::Singer => MotionModel::Singer {
                sm_mps2: config.singer_sm_mps2,
                tau_s: config.singer_tau_s,
            },
        };
        Ok(Self {
            model,
            known_accel: if config.gravity_input {
                gravity_mps2
            } else {
                Vec3::ZERO
            },
            reorder_window_s: config.reorder_window_ms * 1e-3,
            filter: None,
            init_first: None,
            pending: VecDeque::with_capacity(PENDING_CAPACITY),
            stats: TrackStats::default(),
            config: config.clone(),
        })
    }

    /// Forgets the track and everything pending (new episode or new target).
    pub fn reset(&mut self) {
        self.filter = None;
        self.init_first = None;
        self.pending.clear();
        self.stats = TrackStats::default();
    }

    /// The motion model in use.
    pub fn model(&self) -> &MotionModel {
        &self.model
    }

    /// The config this tracker was built from.
    pub fn config(&self) -> &TrackerConfig {
        &self.config
    }

    /// Counters and last innovation statistics.
    pub fn stats(&self) -> &TrackStats {
        &self.stats
    }

    /// Whether a track currently exists.
    pub fn has_track(&self) -> bool {
        self.filter.is_some()
    }

    /// The raw filter state at the last measurement time (for diagnostics and
    /// checkpoints).
    pub fn filter_state(&self) -> Option<&EkfState> {
        self.filter.as_ref()
    }

    /// Queues a delivered detection; it is filtered by [`Tracker::advance`] once it
    /// is older than the reorder window.
    pub fn ingest(&mut self, det: &Detection) {
        let finite = det.time_s.is_finite()
            && det.azimuth_rad.is_finite()
            && det.elevation_rad.is_finite()
            && det.range_m.is_none_or(f64::is_finite)
            && det.range_rate_mps.is_none_or(f64::is_finite)
            && det.sensor_position_m.is_finite()
            && det.sensor_velocity_mps.is_finite();
        if !finite {
            self.stats.invalid_dropped += 1;
            return;
        }
        // Insertion sort from the back: arrivals are nearly in order.
        let mut idx = self.pending.len();
        while idx > 0 && self.pending[idx - 1].time_s > det.time_s {
            idx -= 1;
        }
        self.pending.insert(idx, *det);
    }

    /// Filters every queued detection stamped at or before `t_now_s` minus the
    /// reorder window, in time-stamp order, then applies the coast timeout.
    pub fn advance(&mut self, t_now_s: f64) {
        let horizon = t_now_s - self.reorder_window_s;
        while let Some(front) = self.pending.front() {
            if front.time_s > horizon + TIME_EPS_S {
                break;
            }
            if let Some(det) = self.pending.pop_front() {
                self.process(&det);
            }
        }
        let timeout = self.config.coast_timeout_s;
        if self.filter.is_some()
            && self
                .stats
                .last_update_time_s
                .is_some_and(|t| t_now_s - t > timeout)
        {
            self.filter = None;
            self.stats.drops += 1;
        }
        if self
            .init_first
            .as_ref()
            .is_some_and(|d| t_now_s - d.time_s > timeout)
        {
            self.init_first = None;
        }
    }

    /// Convenience: ingest `detections`, advance to `t_now_s`, and return the estimate.
    pub fn step(&mut self, t_now_s: f64, detections: &[Detection]) -> Estimate {
        for d in detections {
            self.ingest(d);
        }
        self.advance(t_now_s);
        self.estimate(t_now_s)
    }

    /// The estimate at `t_now_s`: the filter state predicted (on a copy) from the
    /// last measurement time to `t_now_s`. Never mutates the filter.
    pub fn estimate(&self, t_now_s: f64) -> Estimate {
        let Some(filter) = &self.filter else {
            return Estimate::no_track(t_now_s, &self.stats);
        };
        let mut s = filter.clone();
        let dt = t_now_s - s.time_s;
        if dt > 0.0 {
            s.predict(&self.model.axis_model(dt), dt, self.known_accel);
        }
        let mut covariance = linalg::zeros::<6, 6>();
        for (r, row) in covariance.iter_mut().enumerate() {
            row.copy_from_slice(&s.p[r][..6]);
        }
        let mut acceleration_cov = linalg::zeros::<3, 3>();
        if s.n == MAX_STATES {
            for (r, row) in acceleration_cov.iter_mut().enumerate() {
                row.copy_from_slice(&s.p[6 + r][6..9]);
            }
        }
        Estimate {
            time_s: t_now_s,
            track_valid: true,
            position_m: s.position(),
            velocity_mps: s.velocity(),
            acceleration_mps2: s.acceleration() + self.known_accel,
            known_acceleration_mps2: self.known_accel,
            covariance,
            acceleration_cov,
            nis: self.stats.last_nis,
            nis_dof: self.stats.last_nis_dof,
            time_since_update_s: self
                .stats
                .last_update_time_s
                .map_or(f64::INFINITY, |t| t_now_s - t),
        }
    }

    fn process(&mut self, det: &Detection) {
        let Some(filter) = self.filter.as_mut() else {
            self.try_initialise(det);
            return;
        };
        if det.time_s < filter.time_s - TIME_EPS_S {
            self.stats.out_of_sequence_dropped += 1;
            return;
        }
        let dt = det.time_s - filter.time_s;
        if dt > 0.0 {
            filter.predict(&self.model.axis_model(dt), dt, self.known_accel);
        }
        match filter.update(det, self.config.gate_enabled) {
            UpdateOutcome::Accepted { nis, dof } => {
                self.stats.updates += 1;
                self.stats.last_nis = nis;
                self.stats.last_nis_dof = dof;
                self.stats.last_update_time_s = Some(det.time_s);
            }
            UpdateOutcome::Rejected { .. } => self.stats.rejected += 1,
            UpdateOutcome::Skipped => self.stats.skipped += 1,
        }
    }

    /// Two-point initialisation (section 6.3) from detections that carry range.
    fn try_initialise(&mut self, det: &Detection) {
        if det.range_m.is_none() {
            return;
        }
        let Some(first) = self.init_first else {
            self.init_first = Some(*det);
            return;
        };
        let t = det.time_s - first.time_s;
        if t.is_nan() || t < MIN_INIT_INTERVAL_S || t > self.config.coast_timeout_s {
            self.init_first = Some(*det);
            return;
        }
        let (Some(r1), Some(r2)) = (first.range_m, det.range_m) else {
            return;
        };
        let (c1, rc1) =
            spherical_to_cartesian(r1, first.azimuth_rad, first.elevation_rad, &first.sigma);
        let (c2, rc2) = spherical_to_cartesian(r2, det.azimuth_rad, det.elevation_rad, &det.sigma);
        let p1 = first.sensor_position_m + c1;
        let p2 = det.sensor_position_m + c2;
        // The difference quotient is the mean velocity over the interval; with a
        // known acceleration input the end velocity is larger by u T / 2.
        let v2 = (p2 - p1) / t + self.known_accel * (0.5 * t);
        let n = self.model.state_dim();
        let mut s = EkfState {
            n,
            x: [0.0; MAX_STATES],
            p: linalg::zeros(),
            time_s: det.time_s,
        };
        s.x[..3].copy_from_slice(&p2.to_array());
        s.x[3..6].copy_from_slice(&v2.to_array());
        for i in 0..3 {
            for j in 0..3 {
                s.p[i][j] = rc2[i][j];
                s.p[i][3 + j] = rc2[i][j] / t;
                s.p[3 + i][j] = rc2[i][j] / t;
                s.p[3 + i][3 + j] = (rc1[i][j] + rc2[i][j]) / (t * t);
            }
        }
        if let MotionModel::Singer { sm_mps2, .. } = self.model {
            for i in 6..9 {
                s.p[i][i] = sm_mps2 * sm_mps2;
            }
        }
        if let Some(rdot) = det.range_rate_mps {
            apply_range_rate(
                &mut s,
                c2,
                det.sensor_velocity_mps,
                rdot,
                det.sigma.range_rate_mps,
            );
        }
        linalg::symmetrize_n(&mut s.p, n);
        self.filter = Some(s);
        self.init_first = None;
        self.stats.initialisations += 1;
        self.stats.last_update_time_s = Some(det.time_s);
        self.stats.last_nis = 0.0;
        self.stats.last_nis_dof = 0;
    }
}

/// Scalar linear update of the velocity with a measured range rate along the
/// line of sight `los` (sensor to target): `z = rdot + los_hat . v_sensor = los_hat . v`.
fn apply_range_rate(s: &mut EkfState, los: Vec3, sensor_velocity: Vec3, rdot: f64, sigma: f64) {
    let u = los.unit_or_zero();
    if u == Vec3::ZERO || sigma.is_nan() || sigma <= 0.0 {
        return;
    }
    let h = [u.x, u.y, u.z];
    let n = s.n;
    let mut ph = [0.0; MAX_STATES];
    for (r, v) in ph.iter_mut().enumerate().take(n) {
        *v = (0..3).map(|j| s.p[r][3 + j] * h[j]).sum();
    }
    let innovation_var: f64 = (0..3).map(|j| h[j] * ph[3 + j]).sum::<f64>() + sigma * sigma;
    let z = rdot + u.dot(sensor_velocity);
    let nu = z - u.dot(s.velocity());
    for (x, g) in s.x.iter_mut().zip(ph.iter()).take(n) {
        *x += g / innovation_var * nu;
    }
    // Joseph-equivalent for a scalar update: P - ph ph^T / S keeps symmetry; the
    // subsequent symmetrisation removes round-off.
    for r in 0..n {
        for c in 0..n {
            s.p[r][c] -= ph[r] * ph[c] / innovation_var;
        }
    }
}
