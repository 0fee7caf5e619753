//! Observations (model section 8.1) and the controller view.
//!
//! The observation builders' inputs are sensor products and the interceptor's
//! own state ([`OwnObservation`]); nothing else. [`write_observation`] (modes
//! `los`, `world`, `body`) reads a tracker [`Estimate`], which only
//! [`crate::tracker::Tracker`] can produce, from detections;
//! [`write_raw_radar_observation`] (mode `raw_radar`) reads a
//! [`DetectionFeed`], which holds only the radar's [`Detection`]s as
//! delivered. The true threat state therefore cannot reach an observation:
//! the builders' type signatures are the no-truth-leak guarantee (and a test
//! perturbs the truth after the last measurement to check it for every mode).
//!
//! Every feature uses a fixed physical scale (no running statistics), is
//! clipped to [-5, 5] and cast to `f32` last. When the track is not valid,
//! every track-derived feature is zero and only the flags say so: the policy
//! sees "no track", never stale numbers. `A` below is the action dimension
//! (2 for `aero`, 3 for `thruster`); vectors "in frame F" are the components
//! on F's axes in the order given.
//!
//! Frames. Velocity frame: `xV = x_b` (unit air-relative velocity),
//! `zV = unit(P_perp(xV) z_up)` (east when flying vertically), `yV = zV x xV`.
//! LOS frame from the estimated LOS: `xL = lam_hat`,
//! `zL = unit(P_perp(xL) z_up)` (if `|xL . z_up| > 0.99`, `unit(P_perp(xL) east)`),
//! `yL = zL x xL`. Achieved control acceleration: `(yV, zV)` components for
//! `aero`, `(xV, yV, zV)` for `thruster`.
//!
//! # `los` (default): `22 + 2A` values (26 for `aero`)
//! | index | meaning | unit | normalisation |
//! |---|---|---|---|
//! | 0 | range `R_hat` | m | `ln(R/R_kill) / ln(R_max/R_kill)` |
//! | 1 | closing speed `V_c_hat` | m/s | `/ 1000` |
//! | 2 | time-to-go `t_go_cpa_hat` (0 when opening) | s | `/ 10`, clipped to [0, 3] |
//! | 3-4 | LOS rate `(Omega.yL, Omega.zL) t_go` | rad | none |
//! | 5-6 | ZEM perpendicular to the LOS, `(yL, zL)` | m | `sign(z) ln(1 + \|z\|/R_kill) / ln(1 + 1000 m/R_kill)` |
//! | 7-9 | own velocity in the LOS frame `(xL, yL, zL)` | m/s | `/ 1000` |
//! | 10..10+A | achieved control acceleration, velocity frame | m/s^2 | `/ a_scale` |
//! | 10+A | authority `a_max(q, m)` | m/s^2 | `/ a_scale` |
//! | 11+A, 12+A | altitude, climb rate | m, m/s | `/ 10 km`, `/ 300 m/s` |
//! | 13+A | propulsion left | - | remaining burn time / total (`aero`), fuel fraction (`thruster`) |
//! | 14+A, 15+A | target acceleration estimate `P_perp(lam) a_T_hat`, `(yL, zL)` | m/s^2 | `/ 10 g` |
//! | 16+A | position uncertainty `sqrt(tr P_pos)` | m | `ln(1 + s/R_kill) / 5` |
//! | 17+A | velocity uncertainty `sqrt(tr P_vel)` | m/s | `/ 100` |
//! | 18+A | last NIS per measurement component | - | `min(NIS/m, 5)` |
//! | 19+A | time since the last accepted update | s | `/ 1 s` (clipped at 5) |
//! | 20+A | `track_valid` | - | 0 or 1 |
//! | 21+A | `seeker_lock` | - | 0 or 1 |
//! | 22+A..22+2A | previous action | - | as sent |
//!
//! `a_scale` is the structural limit `a_struct` (`aero`) or `F_max / m_dry`
//! (`thruster`).
//!
//! # `world`: `25 + A` values (27 for `aero`)
//! | index | meaning | unit | normalisation |
//! |---|---|---|---|
//! | 0-2 | relative position `r_hat = r_T_hat - r_M` (x, y, z) | m | `/ R_max` |
//! | 3-5 | relative velocity `v_hat = v_T_hat - v_M` | m/s | `/ 1000` |
//! | 6-8 | own velocity `v_M` | m/s | `/ 1000` |
//! | 9-11 | achieved control acceleration | m/s^2 | `/ a_scale` |
//! | 12 | authority `a_max` | m/s^2 | `/ a_scale` |
//! | 13, 14 | altitude, climb rate | m, m/s | `/ 10 km`, `/ 300 m/s` |
//! | 15 | propulsion left | - | as in `los` |
//! | 16-18 | target acceleration estimate `a_T_hat` | m/s^2 | `/ 10 g` |
//! | 19-22 | track quality (as `los` 16+A..19+A) | | |
//! | 23, 24 | `track_valid`, `seeker_lock` | - | 0 or 1 |
//! | 25..25+A | previous action | - | as sent |
//!
//! # `body`: `25 + A` values
//! The `world` layout with every vector (indices 0-11 and 16-18) expressed in
//! the velocity frame `(xV, yV, zV)` instead of ENU.
//!
//! # `raw_radar`: `27 + 2A` values (31 for `aero`)
//! No tracker output: the latest ground-radar detection as the interceptor
//! received it (noise, bias, latency and dropouts included), the unfiltered
//! difference to the detection before it, and the interceptor's own state,
//! so the policy must do its own filtering. Several detections arriving
//! within one decision step: the latest is shown; a radar slower than the
//! decisions: the same detection repeats with growing age. The detected
//! position is `p_det = r_s + R (cos el sin az, cos el cos az, sin el)` from
//! the measured range, azimuth and elevation and the radar position `r_s`;
//! `d = p_det - r_M` with the interceptor's position now (the age and the own
//! velocity say how far it has flown since acquisition). The two-point
//! velocity `v_det = (p_det - p_det,prev) / (t - t_prev)` differences the
//! latest two detections over their acquisition times: at 20 Hz and 1 mrad
//! it carries about 140 m/s of noise per axis at 5 km, which only
//! averaging over many detections removes (what a tracker, or a recurrent
//! policy, does).
//!
//! Two frames: the velocity frame (as `body`), which turns with the
//! interceptor, and the launch frame, the velocity frame of the launch
//! velocity, fixed for the episode. In the launch frame a detection's
//! direction moves only with the geometry, not with the interceptor's own
//! turning, so the line-of-sight rate shows in its changes.
//! Before the first detection of an episode, indices 1-18 are zero and
//! index 0 says so. Seeker measurements are not part of this layout (they
//! still feed the tracker behind the controller view).
//!
//! | index | meaning | unit | normalisation |
//! |---|---|---|---|
//! | 0 | `detection_valid`: a detection has been received this episode | - | 0 or 1 |
//! | 1 | `new_detection`: at least one detection arrived during the last decision step (at reset: at time 0) | - | 0 or 1 |
//! | 2 | age of the latest detection, now minus its acquisition time | s | `/ 1 s` (clipped at 5) |
//! | 3 | missed updates: whole radar scan intervals since the last arrival | - | `/ 10` (clipped at 5) |
//! | 4 | range to the detected position `\|d\|` | m | `ln(R/R_kill) / ln(R_max/R_kill)` |
//! | 5-7 | direction to the detected position `d / \|d\|`, velocity frame | - | none |
//! | 8-10 | the same direction, launch frame | - | none |
//! | 11 | measured range rate at the radar (positive opening; 0 when the radar does not measure it) | m/s | `/ 1000` |
//! | 12-14 | measured radar line of sight `(cos el sin az, cos el cos az, sin el)`, launch frame (the direction the range rate is along) | - | none |
//! | 15 | `velocity_valid`: two detections with distinct acquisition times have been received | - | 0 or 1 |
//! | 16-18 | two-point velocity relative to the interceptor `v_det - v_M`, velocity frame (0 when index 15 is 0) | m/s | `/ 1000` |
//! | 19-21 | own velocity, launch frame | m/s | `/ 1000` |
//! | 22..22+A | achieved control acceleration, velocity frame | m/s^2 | `/ a_scale` |
//! | 22+A | authority `a_max(q, m)` | m/s^2 | `/ a_scale` |
//! | 23+A, 24+A | altitude, climb rate | m, m/s | `/ 10 km`, `/ 300 m/s` |
//! | 25+A | propulsion left | - | as in `los` |
//! | 26+A | time since launch | s | `/ 10 s` (clipped at 5) |
//! | 27+A..27+2A | previous action | - | as sent |

use crate::Vec3;
use crate::detection_feed::DetectionFeed;
use crate::radar::{Detection, spherical_to_cartesian};
use crate::scenario::ObservationMode;
use crate::tracker::Estimate;
use crate::units::G0_MPS2;

const Z_UP: Vec3 = Vec3::new(0.0, 0.0, 1.0);
const EAST: Vec3 = Vec3::new(1.0, 0.0, 0.0);
const CLIP: f64 = 5.0;

/// The interceptor's own state as the observation sees it (SI units).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct OwnObservation {
    /// Position (m).
    pub position_m: Vec3,
    /// Inertial velocity (m/s).
    pub velocity_mps: Vec3,
    /// Body axis (unit air-relative velocity).
    pub body_axis: Vec3,
    /// Achieved control acceleration (m/s^2).
    pub control_accel_mps2: Vec3,
    /// Current acceleration limit (m/s^2).
    pub a_max_mps2: f64,
    /// Normalising acceleration `a_scale` (m/s^2).
    pub accel_scale_mps2: f64,
    /// Propulsion left in [0, 1].
    pub propulsion_fraction: f64,
    /// Whether the onboard seeker holds lock.
    pub seeker_lock: bool,
    /// Simulation time since launch (s); read by `raw_radar` only (the age
    /// of a detection and the time feature).
    pub time_s: f64,
    /// Unit inertial velocity at launch; read by `raw_radar` only (the axis
    /// of its launch frame, which turns with neither vehicle).
    pub launch_axis: Vec3,
}

/// Fixed scales of the observation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ObservationScales {
    /// Kill radius `R_kill` (m).
    pub kill_radius_m: f64,
    /// `R_max` (m).
    pub max_range_m: f64,
}

/// The velocity frame `(xV, yV, zV)` of a body axis (see the module docs).
pub fn velocity_frame(body_axis: Vec3) -> (Vec3, Vec3, Vec3) {
    let x = body_axis.unit_or_zero();
    let mut z = Z_UP.perp_to(x);
    if z.norm_sq() < 1e-12 {
        z = EAST.perp_to(x);
    }
    let z = z.unit_or_zero();
    (x, z.cross(x), z)
}

fn los_frame(los: Vec3) -> (Vec3, Vec3, Vec3) {
    let x = los.unit_or_zero();
    let z = if x.dot(Z_UP).abs() > 0.99 {
        EAST.perp_to(x)
    } else {
        Z_UP.perp_to(x)
    }
    .unit_or_zero();
    (x, z.cross(x), z)
}

/// Length of the observation for `mode` and action dimension `act_dim`.
pub fn observation_dim(mode: ObservationMode, act_dim: usize) -> usize {
    match mode {
        ObservationMode::Los => 22 + 2 * act_dim,
        ObservationMode::World | ObservationMode::Body => 25 + act_dim,
        ObservationMode::RawRadar => 27 + 2 * act_dim,
    }
}

/// The observation modes built from the tracker estimate by
/// [`write_observation`] (`raw_radar` is built from detections instead).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrackLayout {
    /// `los`.
    Los,
    /// `world`.
    World,
    /// `body`.
    Body,
}

impl TrackLayout {
    /// The layout of `mode`, or `None` for `raw_radar`.
    pub fn of(mode: ObservationMode) -> Option<Self> {
        match mode {
            ObservationMode::Los => Some(Self::Los),
            ObservationMode::World => Some(Self::World),
            ObservationMode::Body => Some(Self::Body),
            ObservationMode::RawRadar => None,
        }
    }

    /// The configured mode this layout belongs to.
    pub fn mode(self) -> ObservationMode {
        match self {
            Self::Los => ObservationMode::Los,
            Self::World => ObservationMode::World,
            Self::Body => ObservationMode::Body,
        }
    }
}

/// Sequential writer that clips and casts.
struct Writer<'a> {
    out: &'a mut [f32],
    i: usize,
}

impl Writer<'_> {
    #[inline]
    fn put(&mut self, x: f64) {
        self.out[self.i] = x.clamp(-CLIP, CLIP) as f32;
        self.i += 1;
    }
    #[inline]
    fn put3(&mut self, v: Vec3) {
        self.put(v.x);
        self.put(v.y);
        self.put(v.z);
    }
}

#[inline]
fn in_frame(v: Vec3, f: &(Vec3, Vec3, Vec3)) -> Vec3 {
    Vec3::new(v.dot(f.0), v.dot(f.1), v.dot(f.2))
}

fn log_signed(z: f64, r_kill: f64) -> f64 {
    z.signum() * (1.0 + z.abs() / r_kill).ln() / (1.0 + 1000.0 / r_kill).ln()
}

/// Writes the observation of `layout` into `out` (`observation_dim` values).
/// Reads only the tracker estimate and the interceptor's own state.
pub fn write_observation(
    layout: TrackLayout,
    estimate: &Estimate,
    own: &OwnObservation,
    previous_action: &[f32],
    scales: &ObservationScales,
    out: &mut [f32],
) {
    let act_dim = previous_action.len();
    debug_assert_eq!(out.len(), observation_dim(layout.mode(), act_dim));
    let valid = estimate.track_valid();
    let r = estimate.position_m() - own.position_m;
    let v = estimate.velocity_mps() - own.velocity_mps;
    let a_t = estimate.acceleration_mps2();
    let vf = velocity_frame(own.body_axis);
    let a_scale = own.accel_scale_mps2.max(1e-9);
    let r_kill = scales.kill_radius_m;
    let (nis, dof) = estimate.last_nis();
    let quality = if valid {
        [
            (1.0 + estimate.position_sigma_m() / r_kill).ln() / 5.0,
            estimate.velocity_sigma_mps() / 100.0,
            if dof > 0 {
                (nis / dof as f64).min(5.0)
            } else {
                0.0
            },
            estimate.time_since_update_s().min(CLIP),
        ]
    } else {
        [0.0; 4]
    };
    let mut w = Writer { out, i: 0 };
    let accel_components = |a: Vec3| {
        let c = in_frame(a, &vf);
        if act_dim == 2 {
            [c.y, c.z, 0.0]
        } else {
            [c.x, c.y, c.z]
        }
    };
    match layout {
        TrackLayout::Los => {
            let range = r.norm();
            if valid && range > 0.0 {
                let lf = los_frame(r);
                let closing = -r.dot(v) / range;
                let vv = v.norm_sq();
                let t_go = if vv > 1e-12 {
                    (-r.dot(v) / vv).max(0.0)
                } else {
                    0.0
                };
                let omega = r.cross(v) / (range * range);
                let zem = (r + v * t_go).perp_to(lf.0);
                let a_perp = a_t.perp_to(lf.0);
                let r_eff = range.max(r_kill * 1e-3);
                w.put((r_eff / r_kill).ln() / (scales.max_range_m / r_kill).ln());
                w.put(closing / 1000.0);
                w.put((t_go / 10.0).clamp(0.0, 3.0));
                w.put(omega.dot(lf.1) * t_go);
                w.put(omega.dot(lf.2) * t_go);
                w.put(log_signed(zem.dot(lf.1), r_kill));
                w.put(log_signed(zem.dot(lf.2), r_kill));
                w.put3(in_frame(own.velocity_mps, &lf) / 1000.0);
                let ac = accel_components(own.control_accel_mps2);
                for c in ac.iter().take(act_dim) {
                    w.put(c / a_scale);
                }
                w.put(own.a_max_mps2 / a_scale);
                w.put(own.position_m.z / 10_000.0);
                w.put(own.velocity_mps.z / 300.0);
                w.put(own.propulsion_fraction);
                w.put(a_perp.dot(lf.1) / (10.0 * G0_MPS2));
                w.put(a_perp.dot(lf.2) / (10.0 * G0_MPS2));
            } else {
                for _ in 0..10 {
                    w.put(0.0);
                }
                let ac = accel_components(own.control_accel_mps2);
                for c in ac.iter().take(act_dim) {
                    w.put(c / a_scale);
                }
                w.put(own.a_max_mps2 / a_scale);
                w.put(own.position_m.z / 10_000.0);
                w.put(own.velocity_mps.z / 300.0);
                w.put(own.propulsion_fraction);
                w.put(0.0);
                w.put(0.0);
            }
        }
        TrackLayout::World | TrackLayout::Body => {
            let frame = if layout == TrackLayout::Body {
                vf
            } else {
                (EAST, Vec3::new(0.0, 1.0, 0.0), Z_UP)
            };
            let (r, v, a_t) = if valid {
                (r, v, a_t)
            } else {
                (Vec3::ZERO, Vec3::ZERO, Vec3::ZERO)
            };
            w.put3(in_frame(r, &frame) / scales.max_range_m);
            w.put3(in_frame(v, &frame) / 1000.0);
            w.put3(in_frame(own.velocity_mps, &frame) / 1000.0);
            w.put3(in_frame(own.control_accel_mps2, &frame) / a_scale);
            w.put(own.a_max_mps2 / a_scale);
            w.put(own.position_m.z / 10_000.0);
            w.put(own.velocity_mps.z / 300.0);
            w.put(own.propulsion_fraction);
            w.put3(in_frame(a_t, &frame) / (10.0 * G0_MPS2));
        }
    }
    for q in quality {
        w.put(q);
    }
    w.put(if valid { 1.0 } else { 0.0 });
    w.put(if own.seeker_lock { 1.0 } else { 0.0 });
    for &a in previous_action {
        w.put(f64::from(a));
    }
    debug_assert_eq!(w.i, w.out.len());
}

/// Log-scaled range, as the `los` range feature: `ln(R/R_kill) /
/// ln(R_max/R_kill)`, with `R` floored at `R_kill / 1000` so a zero range
/// stays finite.
fn log_range(range_m: f64, scales: &ObservationScales) -> f64 {
    let r_kill = scales.kill_radius_m;
    let r_eff = range_m.max(r_kill * 1e-3);
    (r_eff / r_kill).ln() / (scales.max_range_m / r_kill).ln()
}

/// The target position a range-measuring detection places (m, ENU), and the
/// measured line of sight from its sensor (unit).
fn detected_position(det: &Detection, range_m: f64) -> (Vec3, Vec3) {
    let (offset, _) =
        spherical_to_cartesian(range_m, det.azimuth_rad, det.elevation_rad, &det.sigma);
    let (saz, caz) = det.azimuth_rad.sin_cos();
    let (sel, cel) = det.elevation_rad.sin_cos();
    (
        det.sensor_position_m + offset,
        Vec3::new(cel * saz, cel * caz, sel),
    )
}

/// The velocity of the detected position between detection `previous` and
/// `latest` (detected at `p_latest`): their difference over their acquisition
/// times (m/s), unfiltered, or `None` when they share an acquisition time or
/// `previous` has no range.
fn two_point_velocity(previous: &Detection, latest: &Detection, p_latest: Vec3) -> Option<Vec3> {
    let dt = latest.time_s - previous.time_s;
    let range_m = previous.range_m?;
    (dt > 1e-9).then(|| (p_latest - detected_position(previous, range_m).0) / dt)
}

/// Writes the `raw_radar` observation into `out` (`observation_dim` values;
/// layout in the module docs). Reads only the received detections and the
/// interceptor's own state: no tracker estimate, no truth.
pub fn write_raw_radar_observation(
    feed: &DetectionFeed,
    own: &OwnObservation,
    previous_action: &[f32],
    scales: &ObservationScales,
    out: &mut [f32],
) {
    let act_dim = previous_action.len();
    debug_assert_eq!(
        out.len(),
        observation_dim(ObservationMode::RawRadar, act_dim)
    );
    let vf = velocity_frame(own.body_axis);
    let lf = velocity_frame(own.launch_axis);
    let a_scale = own.accel_scale_mps2.max(1e-9);
    let now = own.time_s;
    let mut w = Writer { out, i: 0 };
    match feed.latest().and_then(|d| d.range_m.map(|r| (d, r))) {
        Some((det, range_m)) => {
            let (p_det, radar_los) = detected_position(det, range_m);
            let d = p_det - own.position_m;
            w.put(1.0);
            w.put(if feed.arrivals_this_decision() > 0 {
                1.0
            } else {
                0.0
            });
            w.put(feed.age_s(now).unwrap_or(0.0));
            w.put(feed.missed_updates(now) as f64 / 10.0);
            w.put(log_range(d.norm(), scales));
            let u = d.unit_or_zero();
            w.put3(in_frame(u, &vf));
            w.put3(in_frame(u, &lf));
            w.put(det.range_rate_mps.unwrap_or(0.0) / 1000.0);
            w.put3(in_frame(radar_los, &lf));
            match feed
                .previous()
                .and_then(|p| two_point_velocity(p, det, p_det))
            {
                Some(v) => {
                    w.put(1.0);
                    w.put3(in_frame(v - own.velocity_mps, &vf) / 1000.0);
                }
                None => {
                    for _ in 0..4 {
                        w.put(0.0);
                    }
                }
            }
        }
        None => {
            for _ in 0..19 {
                w.put(0.0);
            }
        }
    }
    w.put3(in_frame(own.velocity_mps, &lf) / 1000.0);
    let c = in_frame(own.control_accel_mps2, &vf);
    let ac = if act_dim == 2 {
        [c.y, c.z, 0.0]
    } else {
        [c.x, c.y, c.z]
    };
    for a in ac.iter().take(act_dim) {
        w.put(a / a_scale);
    }
    w.put(own.a_max_mps2 / a_scale);
    w.put(own.position_m.z / 10_000.0);
    w.put(own.velocity_mps.z / 300.0);
    w.put(own.propulsion_fraction);
    w.put(now / 10.0);
    for &a in previous_action {
        w.put(f64::from(a));
    }
    debug_assert_eq!(w.i, w.out.len());
}

/// Layout of the controller view (model-free SI `f64` values; see
/// [`hlynr_env::Env::write_controller_view`]). The target block holds the
/// tracker estimate, or the true threat state when the env is an oracle. In
/// every observation mode, `raw_radar` included, the tracker runs for this
/// view: the classical baselines are the same laws on the same filter
/// whatever a learned policy observes (see [`crate::env`]).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ControllerView {
    /// Target position (m).
    pub target_position_m: Vec3,
    /// Target velocity (m/s).
    pub target_velocity_mps: Vec3,
    /// Target acceleration (m/s^2).
    pub target_acceleration_mps2: Vec3,
    /// Known part of the target acceleration (gravity for a ballistic model).
    pub target_known_acceleration_mps2: Vec3,
    /// Whether the target block is valid.
    pub track_valid: bool,
    /// `sqrt(tr P_pos)` (m); 0 for truth.
    pub position_sigma_m: f64,
    /// `sqrt(tr P_vel)` (m/s); 0 for truth.
    pub velocity_sigma_mps: f64,
    /// Own position (m).
    pub position_m: Vec3,
    /// Own velocity (m/s).
    pub velocity_mps: Vec3,
    /// Body axis (unit).
    pub body_axis: Vec3,
    /// Achieved control acceleration (m/s^2).
    pub control_accel_mps2: Vec3,
    /// Current acceleration limit (m/s^2).
    pub a_max_mps2: f64,
    /// Autopilot (`aero`) or thrust (`thruster`) time constant (s).
    pub lag_tau_s: f64,
    /// Simulation time (s).
    pub time_s: f64,
    /// Time left in the first motor stage (s); 0 for `thruster`.
    pub boost_remaining_s: f64,
    /// Propulsion left in [0, 1].
    pub propulsion_fraction: f64,
    /// True for the `thruster` model.
    pub thruster: bool,
    /// Gravity vector (m/s^2).
    pub gravity_mps2: Vec3,
    /// Mass (kg).
    pub mass_kg: f64,
}

impl ControllerView {
    /// Number of `f64` values.
    pub const DIM: usize = 37;

    /// Writes the view into `out` (`DIM` values).
    pub fn write(&self, out: &mut [f64]) {
        let b = |x: bool| if x { 1.0 } else { 0.0 };
        let vals: [f64; Self::DIM] = [
            self.target_position_m.x,
            self.target_position_m.y,
            self.target_position_m.z,
            self.target_velocity_mps.x,
            self.target_velocity_mps.y,
            self.target_velocity_mps.z,
            self.target_acceleration_mps2.x,
            self.target_acceleration_mps2.y,
            self.target_acceleration_mps2.z,
            self.target_known_acceleration_mps2.x,
            self.target_known_acceleration_mps2.y,
            self.target_known_acceleration_mps2.z,
            b(self.track_valid),
            self.position_sigma_m,
            self.velocity_sigma_mps,
            self.position_m.x,
            self.position_m.y,
            self.position_m.z,
            self.velocity_mps.x,
            self.velocity_mps.y,
            self.velocity_mps.z,
            self.body_axis.x,
            self.body_axis.y,
            self.body_axis.z,
            self.control_accel_mps2.x,
            self.control_accel_mps2.y,
            self.control_accel_mps2.z,
            self.a_max_mps2,
            self.lag_tau_s,
            self.time_s,
            self.boost_remaining_s,
            self.propulsion_fraction,
            b(self.thruster),
            self.gravity_mps2.x,
            self.gravity_mps2.y,
            self.gravity_mps2.z,
            self.mass_kg,
        ];
        out[..Self::DIM].copy_from_slice(&vals);
    }

    /// Reads a view written by [`ControllerView::write`]. Errors on a short slice.
    pub fn read(v: &[f64]) -> Result<Self, String> {
        if v.len() < Self::DIM {
            return Err(format!(
                "controller view has {} values, the interception view needs {}",
                v.len(),
                Self::DIM
            ));
        }
        let v3 = |i: usize| Vec3::new(v[i], v[i + 1], v[i + 2]);
        Ok(Self {
            target_position_m: v3(0),
            target_velocity_mps: v3(3),
            target_acceleration_mps2: v3(6),
            target_known_acceleration_mps2: v3(9),
            track_valid: v[12] > 0.5,
            position_sigma_m: v[13],
            velocity_sigma_mps: v[14],
            position_m: v3(15),
            velocity_mps: v3(18),
            body_axis: v3(21),
            control_accel_mps2: v3(24),
            a_max_mps2: v[27],
            lag_tau_s: v[28],
            time_s: v[29],
            boost_remaining_s: v[30],
            propulsion_fraction: v[31],
            thruster: v[32] > 0.5,
            gravity_mps2: v3(33),
            mass_kg: v[36],
        })
    }
}
