//! Ground radar (model section 5.1 to 5.3) and the measurement model shared by all
//! sensors and the tracker.
//!
//! A radar scan measures range, azimuth (from north, clockwise), elevation and
//! optionally range rate of the target relative to the antenna, adds Gaussian noise
//! and a per-episode bias, and hands the [`Detection`] to a delay line. The tracker
//! sees it only once the latency has elapsed, still stamped with the acquisition
//! time. Range and elevation limits mask the target, a detection draw (fixed or
//! Swerling 1) may miss it, and the uplink may drop the message (Bernoulli or
//! Gilbert-Elliott bursts).
//!
//! Randomness: the radar owns two generators, one for detection and noise draws and
//! one for the data link, so that enabling link loss does not shift the noise
//! sequence. Every scan consumes the same number of draws from each, whether or not
//! a detection results.

use std::collections::VecDeque;
use std::f64::consts::PI;

use hlynr_env::EnvError;
use hlynr_rng::Rng;
use serde::{Deserialize, Serialize};

use crate::Vec3;
use crate::sensor_config::{RadarConfig, SnrModelConfig};

/// Speed of light (m/s), for the range resolution `c/(2B)`.
const SPEED_OF_LIGHT_MPS: f64 = 299_792_458.0;

/// Tolerance when comparing simulation times that are sums of step lengths.
pub(crate) const TIME_EPS_S: f64 = 1e-9;

/// Which sensor produced a detection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SensorKind {
    /// The ground radar.
    Radar,
    /// The interceptor's onboard seeker.
    Seeker,
}

/// Standard deviations of the noise on each measured component, as reported by the
/// sensor with the detection (the tracker's measurement covariance).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MeasurementSigma {
    /// Range (m).
    pub range_m: f64,
    /// Azimuth (rad).
    pub azimuth_rad: f64,
    /// Elevation (rad).
    pub elevation_rad: f64,
    /// Range rate (m/s).
    pub range_rate_mps: f64,
}

/// One measurement of the target, as delivered to the tracker.
///
/// Angles are in the world (ENU) frame as seen from `sensor_position_m`: azimuth
/// `atan2(dx, dy)` from north clockwise, elevation `atan2(dz, hypot(dx, dy))`, with
/// `d` the line of sight from the sensor to the target. `range_m` is absent for an
/// angles-only (passive) seeker.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    /// Acquisition time (s), not delivery time.
    pub time_s: f64,
    /// Sensor that produced it.
    pub sensor: SensorKind,
    /// Sensor position at acquisition (m).
    pub sensor_position_m: Vec3,
    /// Sensor velocity at acquisition (m/s); enters the range-rate model.
    pub sensor_velocity_mps: Vec3,
    /// Measured range (m), if the sensor measures range.
    pub range_m: Option<f64>,
    /// Measured azimuth (rad), wrapped to (-pi, pi].
    pub azimuth_rad: f64,
    /// Measured elevation (rad).
    pub elevation_rad: f64,
    /// Measured range rate (m/s, positive opening), if measured.
    pub range_rate_mps: Option<f64>,
    /// Noise standard deviations of this measurement.
    pub sigma: MeasurementSigma,
}

/// The true target state a sensor looks at. Only sensors (and evaluation code)
/// receive this; the tracker and guidance never do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TargetTruth {
    /// Position (m).
    pub position_m: Vec3,
    /// Velocity (m/s).
    pub velocity_mps: Vec3,
}

/// Wraps an angle to (-pi, pi].
#[inline]
pub fn wrap_angle(a: f64) -> f64 {
    if a > -PI && a <= PI {
        return a;
    }
    let w = a.rem_euclid(2.0 * PI);
    if w > PI { w - 2.0 * PI } else { w }
}

/// Noise-free spherical measurement of a target at relative position `d` and
/// relative velocity `u` (target minus sensor).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spherical {
    /// `|d|` (m).
    pub range_m: f64,
    /// `atan2(d_x, d_y)` (rad).
    pub azimuth_rad: f64,
    /// `atan2(d_z, hypot(d_x, d_y))` (rad).
    pub elevation_rad: f64,
    /// `(d.u)/|d|` (m/s).
    pub range_rate_mps: f64,
}

/// The measurement function `h(d, u)`.
#[inline]
pub fn spherical(d: Vec3, u: Vec3) -> Spherical {
    let rho = d.x.hypot(d.y);
    let range = d.norm();
    Spherical {
        range_m: range,
        azimuth_rad: d.x.atan2(d.y),
        elevation_rad: d.z.atan2(rho),
        range_rate_mps: if range > 0.0 { d.dot(u) / range } else { 0.0 },
    }
}

/// Jacobian of [`spherical`]: rows (range, azimuth, elevation, range rate), columns
/// (d_x, d_y, d_z, u_x, u_y, u_z). Undefined at `d = 0` and, for the azimuth and
/// elevation rows, on the vertical axis (`hypot(d_x, d_y) = 0`), where it returns
/// zero rows rather than infinities.
pub fn spherical_jacobian(d: Vec3, u: Vec3) -> [[f64; 6]; 4] {
    let mut h = [[0.0; 6]; 4];
    let r2 = d.norm_sq();
    if r2 <= 0.0 {
        return h;
    }
    let r = r2.sqrt();
    let rho2 = d.x * d.x + d.y * d.y;
    let rho = rho2.sqrt();
    let rdot = d.dot(u) / r;
    h[0][0] = d.x / r;
    h[0][1] = d.y / r;
    h[0][2] = d.z / r;
    if rho > 0.0 {
        h[1][0] = d.y / rho2;
        h[1][1] = -d.x / rho2;
        let k = 1.0 / (r2 * rho);
        h[2][0] = -d.x * d.z * k;
        h[2][1] = -d.y * d.z * k;
        h[2][2] = rho2 * k;
    }
    h[3][0] = (u.x - rdot * d.x / r) / r;
    h[3][1] = (u.y - rdot * d.y / r) / r;
    h[3][2] = (u.z - rdot * d.z / r) / r;
    h[3][3] = d.x / r;
    h[3][4] = d.y / r;
    h[3][5] = d.z / r;
    h
}

/// Cartesian offset `R [cos el sin az, cos el cos az, sin el]` of a spherical
/// measurement and its covariance `J diag(sR^2, sAz^2, sEl^2) J^T` (model section 6.2,
/// converted measurement), used to initialise tracks.
pub fn spherical_to_cartesian(
    range_m: f64,
    azimuth_rad: f64,
    elevation_rad: f64,
    sigma: &MeasurementSigma,
) -> (Vec3, [[f64; 3]; 3]) {
    let (saz, caz) = azimuth_rad.sin_cos();
    let (sel, cel) = elevation_rad.sin_cos();
    let p = Vec3::new(range_m * cel * saz, range_m * cel * caz, range_m * sel);
    let j = [
        [cel * saz, range_m * cel * caz, -range_m * sel * saz],
        [cel * caz, -range_m * cel * saz, -range_m * sel * caz],
        [sel, 0.0, range_m * cel],
    ];
    let var = [
        sigma.range_m * sigma.range_m,
        sigma.azimuth_rad * sigma.azimuth_rad,
        sigma.elevation_rad * sigma.elevation_rad,
    ];
    let mut c = [[0.0; 3]; 3];
    for i in 0..3 {
        for k in 0..3 {
            c[i][k] = (0..3).map(|m| j[i][m] * var[m] * j[k][m]).sum();
        }
    }
    (p, c)
}

/// Swerling-1 single-look detection probability `P_fa^(1/(1+SNR))` (SNR linear).
#[inline]
pub fn swerling1_detection_probability(snr_linear: f64, false_alarm_probability: f64) -> f64 {
    false_alarm_probability.powf(1.0 / (1.0 + snr_linear.max(0.0)))
}

/// Decibels to a linear power ratio.
#[inline]
pub fn db_to_linear(db: f64) -> f64 {
    10f64.powf(db / 10.0)
}

/// Thermal-noise accuracy at a given SNR (model section 5.2), SI units.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SnrModel {
    /// SNR at the reference range and RCS (linear).
    pub snr_ref: f64,
    /// Reference range (m).
    pub range_ref_m: f64,
    /// Reference RCS (m^2).
    pub rcs_ref_m2: f64,
    /// 3 dB beamwidth (rad).
    pub beamwidth_rad: f64,
    /// Monopulse slope.
    pub monopulse_slope: f64,
    /// Range resolution `c/(2B)` (m).
    pub range_resolution_m: f64,
    /// Wavelength (m).
    pub wavelength_m: f64,
    /// Coherent time (s).
    pub coherent_time_s: f64,
    /// False-alarm probability.
    pub false_alarm_probability: f64,
}

impl SnrModel {
    /// Converts the config to SI.
    pub fn from_config(c: &SnrModelConfig) -> Self {
        Self {
            snr_ref: db_to_linear(c.snr_ref_db),
            range_ref_m: c.range_ref_m,
            rcs_ref_m2: c.rcs_ref_m2,
            beamwidth_rad: c.beamwidth_mrad * 1e-3,
            monopulse_slope: c.monopulse_slope,
            range_resolution_m: SPEED_OF_LIGHT_MPS / (2.0 * c.bandwidth_mhz * 1e6),
            wavelength_m: c.wavelength_m,
            coherent_time_s: c.coherent_time_ms * 1e-3,
            false_alarm_probability: c.false_alarm_probability,
        }
    }

    /// Linear SNR at range `r` for a target of RCS `rcs` (radar equation, R^-4).
    #[inline]
    pub fn snr(&self, range_m: f64, rcs_m2: f64) -> f64 {
        let q = self.range_ref_m / range_m.max(1.0);
        let q2 = q * q;
        self.snr_ref * (rcs_m2 / self.rcs_ref_m2) * q2 * q2
    }

    /// Thermal standard deviations (range, angle, range rate) at linear SNR `snr`.
    #[inline]
    pub fn thermal_sigma(&self, snr: f64) -> (f64, f64, f64) {
        let k = 1.0 / (2.0 * snr.max(1e-12)).sqrt();
        (
            self.range_resolution_m * k,
            self.beamwidth_rad / self.monopulse_slope * k,
            self.wavelength_m / (2.0 * self.coherent_time_s) * k,
        )
    }
}

/// A first-in, first-out queue of detections waiting for their delivery time.
///
/// Latency is constant within an episode, so delivery times are non-decreasing and
/// a FIFO is exact. Capacity is reserved up front; steady-state use never allocates.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DelayLine {
    queue: VecDeque<(f64, Detection)>,
}

impl DelayLine {
    /// An empty line with room for `capacity` detections in flight.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            queue: VecDeque::with_capacity(capacity),
        }
    }

    /// Enqueues `det` for delivery at `deliver_at_s`.
    pub fn push(&mut self, deliver_at_s: f64, det: Detection) {
        self.queue.push_back((deliver_at_s, det));
    }

    /// The oldest detection whose delivery time has come by `t_s`, if any.
    pub fn pop_ready(&mut self, t_s: f64) -> Option<Detection> {
        match self.queue.front() {
            Some((at, _)) if *at <= t_s + TIME_EPS_S => self.queue.pop_front().map(|(_, d)| d),
            _ => None,
        }
    }

    /// Number of detections in flight.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// True when nothing is in flight.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Drops everything in flight.
    pub fn clear(&mut self) {
        self.queue.clear();
    }
}

/// Two-state (good/bad) Markov data link (Gilbert-Elliott): a message is delivered
/// in the good state and dropped in the bad one. The chain steps once per message
/// slot. Long-run loss `p_gb/(p_gb + p_bg)`, mean burst length `1/p_bg`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DataLink {
    p_good_to_bad: f64,
    p_bad_to_good: f64,
    independent_loss: Option<f64>,
    bad: bool,
}

impl DataLink {
    /// A link losing `loss_probability` of messages in bursts of mean length
    /// `mean_burst_length` (1: independent Bernoulli losses).
    pub fn new(loss_probability: f64, mean_burst_length: f64) -> Self {
        if mean_burst_length <= 1.0 {
            return Self {
                p_good_to_bad: 0.0,
                p_bad_to_good: 1.0,
                independent_loss: Some(loss_probability),
                bad: false,
            };
        }
        let p_bg = 1.0 / mean_burst_length;
        let p_gb = (loss_probability * p_bg / (1.0 - loss_probability)).min(1.0);
        Self {
            p_good_to_bad: p_gb,
            p_bad_to_good: p_bg,
            independent_loss: None,
            bad: false,
        }
    }

    /// Starts an episode: the first state is drawn from the stationary distribution.
    pub fn reset(&mut self, rng: &mut Rng) {
        let u = rng.uniform();
        self.bad = match self.independent_loss {
            Some(_) => false,
            None => u < self.p_good_to_bad / (self.p_good_to_bad + self.p_bad_to_good),
        };
    }

    /// Steps the chain for one message; true when the message gets through.
    /// Consumes exactly one uniform draw.
    pub fn transmit(&mut self, rng: &mut Rng) -> bool {
        let u = rng.uniform();
        if let Some(p) = self.independent_loss {
            self.bad = u < p;
        } else if self.bad {
            self.bad = u >= self.p_bad_to_good;
        } else {
            self.bad = u < self.p_good_to_bad;
        }
        !self.bad
    }
}

/// Counters of what happened to radar scans (for diagnostics and tests).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RadarStats {
    /// Scans performed.
    pub scans: u64,
    /// Scans where the target was outside the range or elevation limits.
    pub masked: u64,
    /// Scans where the detection draw failed.
    pub missed: u64,
    /// Detections dropped by the data link.
    pub link_lost: u64,
    /// Detections sent into the delay line.
    pub sent: u64,
}

/// Per-episode randomised radar parameters (drawn at reset; recorded for the episode).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RadarEpisodeDraw {
    /// Factor on every noise standard deviation.
    pub noise_factor: f64,
    /// Effective latency (s).
    pub latency_s: f64,
    /// Range bias (m).
    pub range_bias_m: f64,
    /// Azimuth bias (rad).
    pub azimuth_bias_rad: f64,
    /// Elevation bias (rad).
    pub elevation_bias_rad: f64,
}

/// The ground radar.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroundRadar {
    config: RadarConfig,
    position: Vec3,
    period_s: f64,
    latency_nominal_s: f64,
    sigma_nominal: MeasurementSigma,
    min_elevation_rad: f64,
    max_elevation_rad: f64,
    snr: Option<SnrModel>,
    target_rcs_m2: f64,
    draw: RadarEpisodeDraw,
    start_time_s: f64,
    next_scan: u64,
    link: DataLink,
    queue: DelayLine,
    rng: Rng,
    link_rng: Rng,
    stats: RadarStats,
}

impl GroundRadar {
    /// Builds a radar from a validated config. Call [`GroundRadar::reset`] before use.
    pub fn new(config: &RadarConfig) -> Result<Self, EnvError> {
        config.validate()?;
        let period_s = 1.0 / config.update_rate_hz;
        let max_latency_s = config.latency_ms * 1e-3 * config.latency_factor_range[1];
        let capacity = (max_latency_s / period_s).ceil() as usize + 4;
        Ok(Self {
            position: Vec3::from_array(config.position_m),
            period_s,
            latency_nominal_s: config.latency_ms * 1e-3,
            sigma_nominal: MeasurementSigma {
                range_m: config.sigma_range_m,
                azimuth_rad: config.sigma_azimuth_mrad * 1e-3,
                elevation_rad: config.sigma_elevation_mrad * 1e-3,
                range_rate_mps: config.sigma_range_rate_mps,
            },
            min_elevation_rad: config.min_elevation_deg.to_radians(),
            max_elevation_rad: config.max_elevation_deg.to_radians(),
            snr: config.snr.as_ref().map(SnrModel::from_config),
            target_rcs_m2: config.snr.as_ref().map_or(1.0, |s| s.target_rcs_m2),
            draw: RadarEpisodeDraw {
                noise_factor: 1.0,
                latency_s: config.latency_ms * 1e-3,
                ..Default::default()
            },
            start_time_s: 0.0,
            next_scan: 0,
            link: DataLink::new(config.link_loss_probability, config.link_mean_burst_length),
            queue: DelayLine::with_capacity(capacity),
            rng: Rng::seed_from_u64(0),
            link_rng: Rng::seed_from_u64(1),
            stats: RadarStats::default(),
            config: config.clone(),
        })
    }

    /// Starts an episode at `t0_s`: takes the episode's noise and link generators,
    /// draws the randomised factors and biases (from `rng`), empties the delay line
    /// and schedules the first scan at `t0_s`.
    pub fn reset(&mut self, t0_s: f64, rng: Rng, link_rng: Rng) {
        self.rng = rng;
        self.link_rng = link_rng;
        let c = &self.config;
        let noise_factor = self
            .rng
            .uniform_range(c.noise_factor_range[0], c.noise_factor_range[1]);
        let latency_factor = self
            .rng
            .uniform_range(c.latency_factor_range[0], c.latency_factor_range[1]);
        let range_bias_m = c.range_bias_sigma_m * self.rng.normal();
        let azimuth_bias_rad = c.angle_bias_sigma_mrad * 1e-3 * self.rng.normal();
        let elevation_bias_rad = c.angle_bias_sigma_mrad * 1e-3 * self.rng.normal();
        self.draw = RadarEpisodeDraw {
            noise_factor,
            latency_s: self.latency_nominal_s * latency_factor,
            range_bias_m,
            azimuth_bias_rad,
            elevation_bias_rad,
        };
        self.link.reset(&mut self.link_rng);
        self.queue.clear();
        self.start_time_s = t0_s;
        self.next_scan = 0;
        self.stats = RadarStats::default();
    }

    /// Sets the target's radar cross-section (used by the SNR model only).
    pub fn set_target_rcs(&mut self, rcs_m2: f64) {
        self.target_rcs_m2 = rcs_m2;
    }

    /// Antenna position (m).
    pub fn position_m(&self) -> Vec3 {
        self.position
    }

    /// This episode's randomised parameters.
    pub fn episode_draw(&self) -> &RadarEpisodeDraw {
        &self.draw
    }

    /// Scan counters of this episode.
    pub fn stats(&self) -> &RadarStats {
        &self.stats
    }

    /// The config this radar was built from.
    pub fn config(&self) -> &RadarConfig {
        &self.config
    }

    /// Detections acquired but not yet delivered.
    pub fn in_flight(&self) -> usize {
        self.queue.len()
    }

    /// Noise standard deviations (including SNR and the episode's noise factor) for
    /// a target at range `range_m`, and the single-look detection probability.
    pub fn accuracy_at(&self, range_m: f64) -> (MeasurementSigma, f64) {
        let f = self.draw.noise_factor;
        let base = self.sigma_nominal;
        let (sigma, pd) = match &self.snr {
            None => (base, self.config.detection_probability),
            Some(m) => {
                let snr = m.snr(range_m, self.target_rcs_m2);
                let (sr, sa, srd) = m.thermal_sigma(snr);
                (
                    MeasurementSigma {
                        range_m: sr.hypot(base.range_m),
                        azimuth_rad: sa.hypot(base.azimuth_rad),
                        elevation_rad: sa.hypot(base.elevation_rad),
                        range_rate_mps: srd.hypot(base.range_rate_mps),
                    },
                    self.config.detection_probability
                        * swerling1_detection_probability(snr, m.false_alarm_probability),
                )
            }
        };
        (
            MeasurementSigma {
                range_m: sigma.range_m * f,
                azimuth_rad: sigma.azimuth_rad * f,
                elevation_rad: sigma.elevation_rad * f,
                range_rate_mps: sigma.range_rate_mps * f,
            },
            pd,
        )
    }

    /// Advances the radar to simulation time `t_s`: performs a scan if one is due
    /// (at most one per call; scans missed between calls are skipped), and puts the
    /// resulting detection, if any, into the delay line. Collect deliveries with
    /// [`GroundRadar::pop_ready`].
    pub fn poll(&mut self, t_s: f64, target: &TargetTruth) {
        let due = self.start_time_s + self.next_scan as f64 * self.period_s;
        if t_s + TIME_EPS_S < due {
            return;
        }
        self.next_scan =
            ((t_s - self.start_time_s) / self.period_s + TIME_EPS_S).floor() as u64 + 1;
        self.stats.scans += 1;
        // Fixed draw budget per scan keeps the streams aligned across outcomes.
        let u_detect = self.rng.uniform();
        let n = [
            self.rng.normal(),
            self.rng.normal(),
            self.rng.normal(),
            self.rng.normal(),
        ];
        let delivered = self.link.transmit(&mut self.link_rng);

        let d = target.position_m - self.position;
        let truth = spherical(d, target.velocity_mps);
        if truth.range_m < self.config.min_range_m
            || truth.range_m > self.config.max_range_m
            || truth.elevation_rad < self.min_elevation_rad
            || truth.elevation_rad > self.max_elevation_rad
        {
            self.stats.masked += 1;
            return;
        }
        let (sigma, pd) = self.accuracy_at(truth.range_m);
        if u_detect >= pd {
            self.stats.missed += 1;
            return;
        }
        if !delivered {
            self.stats.link_lost += 1;
            return;
        }
        let b = &self.draw;
        let det = Detection {
            time_s: t_s,
            sensor: SensorKind::Radar,
            sensor_position_m: self.position,
            sensor_velocity_mps: Vec3::ZERO,
            range_m: Some(truth.range_m + b.range_bias_m + sigma.range_m * n[0]),
            azimuth_rad: wrap_angle(
                truth.azimuth_rad + b.azimuth_bias_rad + sigma.azimuth_rad * n[1],
            ),
            elevation_rad: truth.elevation_rad + b.elevation_bias_rad + sigma.elevation_rad * n[2],
            range_rate_mps: self
                .config
                .range_rate_enabled
                .then(|| truth.range_rate_mps + sigma.range_rate_mps * n[3]),
            sigma,
        };
        self.stats.sent += 1;
        self.queue.push(t_s + b.latency_s, det);
    }

    /// The next detection whose latency has elapsed by `t_s`, oldest first.
    pub fn pop_ready(&mut self, t_s: f64) -> Option<Detection> {
        self.queue.pop_ready(t_s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_angle_range() {
        assert_eq!(wrap_angle(PI), PI);
        assert!((wrap_angle(-PI) - PI).abs() < 1e-15);
        assert!((wrap_angle(3.0 * PI + 0.1) - (-PI + 0.1)).abs() < 1e-12);
        assert!((wrap_angle(-0.1 - 2.0 * PI) + 0.1).abs() < 1e-12);
        assert_eq!(wrap_angle(0.3), 0.3);
    }

    #[test]
    fn azimuth_is_from_north_clockwise() {
        let u = Vec3::ZERO;
        assert!((spherical(Vec3::new(0.0, 1.0, 0.0), u).azimuth_rad).abs() < 1e-15);
        assert!((spherical(Vec3::new(1.0, 0.0, 0.0), u).azimuth_rad - PI / 2.0).abs() < 1e-15);
        assert!((spherical(Vec3::new(-1.0, 0.0, 0.0), u).azimuth_rad + PI / 2.0).abs() < 1e-15);
        let s = spherical(Vec3::new(0.0, 3.0, 4.0), Vec3::new(0.0, 0.0, -10.0));
        assert!((s.elevation_rad - (4.0f64).atan2(3.0)).abs() < 1e-15);
        assert!((s.range_rate_mps + 8.0).abs() < 1e-12);
    }

    #[test]
    fn gilbert_elliott_parameters_match_the_model_example() {
        let l = DataLink::new(0.05, 3.0);
        assert!((l.p_bad_to_good - 1.0 / 3.0).abs() < 1e-15);
        assert!((l.p_good_to_bad - 0.0175).abs() < 1e-4);
    }
}
