//! Onboard seeker (model section 5.4): a terminal sensor on the interceptor.
//!
//! The seeker sees the target while it is within the acquisition range and inside
//! the field of regard, a cone of the configured half-angle about the interceptor's
//! velocity axis (the body axis of the 3-DOF model). Lock needs
//! `reacquisition_detections` consecutive sightings and is lost as soon as a scan
//! does not see the target; detections are produced only while locked.
//!
//! Measurements are the line-of-sight angles in a stabilised, world-aligned frame
//! (the same azimuth/elevation convention as the radar, seen from the interceptor's
//! position) plus range and range rate for an active seeker. The angle noise is
//! isotropic about the line of sight: its standard deviation `sigma_theta(R)` with
//! `sigma_theta^2 = fixed^2 + (glint/R)^2 + (receiver (R/R_ref)^p)^2` applies to the
//! elevation and to `cos(el) * azimuth`, so the reported azimuth sigma is
//! `sigma_theta / cos(el)`. Detections travel through a delay line like the radar's
//! and go to the tracker as ordinary [`Detection`]s (no data link: the seeker is on
//! board). Glint is modelled as white, not as a correlated Markov process.

use hlynr_env::EnvError;
use hlynr_rng::Rng;
use serde::{Deserialize, Serialize};

use crate::Vec3;
use crate::radar::{
    DelayLine, Detection, MeasurementSigma, SensorKind, TIME_EPS_S, TargetTruth, spherical,
    wrap_angle,
};
use crate::sensor_config::SeekerConfig;

/// Smallest `cos(el)` used to scale the azimuth noise near the zenith.
const MIN_COS_ELEVATION: f64 = 1e-2;

/// Counters of what happened to seeker scans.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeekerStats {
    /// Scans performed.
    pub scans: u64,
    /// Scans where the target was beyond the acquisition range or outside the field of regard.
    pub unseen: u64,
    /// Detections sent into the delay line.
    pub sent: u64,
    /// Times lock was acquired.
    pub acquisitions: u64,
    /// Times lock was lost.
    pub losses: u64,
}

/// The interceptor's own (navigation) state, used to place the seeker.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OwnState {
    /// Position (m).
    pub position_m: Vec3,
    /// Velocity (m/s); its direction is the seeker's boresight reference.
    pub velocity_mps: Vec3,
}

/// The onboard seeker.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Seeker {
    config: SeekerConfig,
    cos_half_angle: f64,
    period_s: f64,
    latency_nominal_s: f64,
    sigma_fixed_rad: f64,
    sigma_receiver_rad: f64,
    noise_factor: f64,
    latency_s: f64,
    start_time_s: f64,
    next_scan: u64,
    consecutive: u32,
    locked: bool,
    queue: DelayLine,
    rng: Rng,
    stats: SeekerStats,
}

impl Seeker {
    /// Builds a seeker from a validated config. Call [`Seeker::reset`] before use.
    pub fn new(config: &SeekerConfig) -> Result<Self, EnvError> {
        config.validate()?;
        let period_s = 1.0 / config.update_rate_hz;
        let max_latency_s = config.latency_ms * 1e-3 * config.latency_factor_range[1];
        Ok(Self {
            cos_half_angle: config.field_of_regard_deg.to_radians().cos(),
            period_s,
            latency_nominal_s: config.latency_ms * 1e-3,
            sigma_fixed_rad: config.sigma_angle_fixed_mrad * 1e-3,
            sigma_receiver_rad: config.sigma_receiver_mrad * 1e-3,
            noise_factor: 1.0,
            latency_s: config.latency_ms * 1e-3,
            start_time_s: 0.0,
            next_scan: 0,
            consecutive: 0,
            locked: false,
            queue: DelayLine::with_capacity((max_latency_s / period_s).ceil() as usize + 4),
            rng: Rng::seed_from_u64(2),
            stats: SeekerStats::default(),
            config: config.clone(),
        })
    }

    /// Starts an episode at `t0_s` with the seeker's noise generator; draws the
    /// episode's noise and latency factors from it first.
    pub fn reset(&mut self, t0_s: f64, rng: Rng) {
        self.rng = rng;
        let c = &self.config;
        self.noise_factor = self
            .rng
            .uniform_range(c.noise_factor_range[0], c.noise_factor_range[1]);
        let latency_factor = self
            .rng
            .uniform_range(c.latency_factor_range[0], c.latency_factor_range[1]);
        self.latency_s = self.latency_nominal_s * latency_factor;
        self.start_time_s = t0_s;
        self.next_scan = 0;
        self.consecutive = 0;
        self.locked = false;
        self.queue.clear();
        self.stats = SeekerStats::default();
    }

    /// Whether the seeker currently holds lock.
    pub fn locked(&self) -> bool {
        self.locked
    }

    /// Scan counters of this episode.
    pub fn stats(&self) -> &SeekerStats {
        &self.stats
    }

    /// This episode's noise factor and latency (s).
    pub fn episode_draw(&self) -> (f64, f64) {
        (self.noise_factor, self.latency_s)
    }

    /// Line-of-sight angle noise standard deviation at range `range_m` (rad),
    /// including the episode's noise factor.
    pub fn sigma_angle_at(&self, range_m: f64) -> f64 {
        let r = range_m.max(1.0);
        let glint = self.config.sigma_glint_m / r;
        let rn = self.sigma_receiver_rad
            * (r / self.config.receiver_ref_range_m).powf(self.config.receiver_range_exponent);
        (self.sigma_fixed_rad * self.sigma_fixed_rad + glint * glint + rn * rn).sqrt()
            * self.noise_factor
    }

    /// Advances the seeker to time `t_s`: performs a scan if one is due and, while
    /// locked, puts the detection into the delay line.
    pub fn poll(&mut self, t_s: f64, own: &OwnState, target: &TargetTruth) {
        let due = self.start_time_s + self.next_scan as f64 * self.period_s;
        if t_s + TIME_EPS_S < due {
            return;
        }
        self.next_scan =
            ((t_s - self.start_time_s) / self.period_s + TIME_EPS_S).floor() as u64 + 1;
        self.stats.scans += 1;
        let n = [
            self.rng.normal(),
            self.rng.normal(),
            self.rng.normal(),
            self.rng.normal(),
        ];
        let d = target.position_m - own.position_m;
        let range = d.norm();
        let speed = own.velocity_mps.norm();
        let in_view = range <= self.config.acquisition_range_m
            && range > 0.0
            && speed > 0.0
            && d.dot(own.velocity_mps) >= self.cos_half_angle * range * speed;
        if !in_view {
            self.stats.unseen += 1;
            if self.locked {
                self.stats.losses += 1;
            }
            self.locked = false;
            self.consecutive = 0;
            return;
        }
        self.consecutive = self.consecutive.saturating_add(1);
        if !self.locked && self.consecutive >= self.config.reacquisition_detections {
            self.locked = true;
            self.stats.acquisitions += 1;
        }
        if !self.locked {
            return;
        }
        let u = target.velocity_mps - own.velocity_mps;
        let truth = spherical(d, u);
        let sigma_theta = self.sigma_angle_at(range);
        let f = self.noise_factor;
        let sigma = MeasurementSigma {
            range_m: self.config.sigma_range_m * f,
            azimuth_rad: sigma_theta / truth.elevation_rad.cos().max(MIN_COS_ELEVATION),
            elevation_rad: sigma_theta,
            range_rate_mps: self.config.sigma_range_rate_mps * f,
        };
        let det = Detection {
            time_s: t_s,
            sensor: SensorKind::Seeker,
            sensor_position_m: own.position_m,
            sensor_velocity_mps: own.velocity_mps,
            range_m: self
                .config
                .range_enabled
                .then(|| truth.range_m + sigma.range_m * n[0]),
            azimuth_rad: wrap_angle(truth.azimuth_rad + sigma.azimuth_rad * n[1]),
            elevation_rad: truth.elevation_rad + sigma.elevation_rad * n[2],
            range_rate_mps: self
                .config
                .range_rate_enabled
                .then(|| truth.range_rate_mps + sigma.range_rate_mps * n[3]),
            sigma,
        };
        self.stats.sent += 1;
        self.queue.push(t_s + self.latency_s, det);
    }

    /// The next detection whose latency has elapsed by `t_s`, oldest first.
    pub fn pop_ready(&mut self, t_s: f64) -> Option<Detection> {
        self.queue.pop_ready(t_s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seeker(cfg: SeekerConfig) -> Seeker {
        let mut s = Seeker::new(&cfg).unwrap();
        s.reset(0.0, Rng::seed_from_u64(7));
        s
    }

    fn own() -> OwnState {
        OwnState {
            position_m: Vec3::new(0.0, 0.0, 1000.0),
            velocity_mps: Vec3::new(0.0, 500.0, 0.0),
        }
    }

    #[test]
    fn lock_needs_consecutive_detections_and_is_lost_outside_the_field_of_regard() {
        let mut s = seeker(SeekerConfig {
            enabled: true,
            update_rate_hz: 100.0,
            ..Default::default()
        });
        let ahead = TargetTruth {
            position_m: Vec3::new(100.0, 2000.0, 1000.0),
            velocity_mps: Vec3::new(0.0, -300.0, 0.0),
        };
        s.poll(0.0, &own(), &ahead);
        assert!(!s.locked());
        assert!(s.pop_ready(0.0).is_none());
        s.poll(0.01, &own(), &ahead);
        assert!(s.locked());
        let d = s.pop_ready(0.01).expect("detection once locked");
        assert_eq!(d.sensor, SensorKind::Seeker);
        assert_eq!(d.sensor_position_m, own().position_m);
        // 40 deg off the velocity axis: outside the 30 deg field of regard.
        let off = TargetTruth {
            position_m: Vec3::new(
                2000.0 * 40f64.to_radians().sin(),
                2000.0 * 40f64.to_radians().cos(),
                1000.0,
            ),
            velocity_mps: Vec3::ZERO,
        };
        s.poll(0.02, &own(), &off);
        assert!(!s.locked());
        assert!(s.pop_ready(0.02).is_none());
        // Beyond the acquisition range.
        let far = TargetTruth {
            position_m: Vec3::new(0.0, 5000.0, 1000.0),
            velocity_mps: Vec3::ZERO,
        };
        s.poll(0.03, &own(), &far);
        s.poll(0.04, &own(), &far);
        assert!(!s.locked());
        assert_eq!(s.stats().acquisitions, 1);
        assert_eq!(s.stats().losses, 1);
    }

    #[test]
    fn angle_noise_follows_the_range_law() {
        let s = seeker(SeekerConfig {
            sigma_angle_fixed_mrad: 1.0,
            sigma_glint_m: 0.5,
            sigma_receiver_mrad: 2.0,
            receiver_ref_range_m: 3000.0,
            receiver_range_exponent: 2.0,
            ..Default::default()
        });
        let r: f64 = 500.0;
        let want = (1e-6 + (0.5 / r).powi(2) + (2e-3 * (r / 3000.0).powi(2)).powi(2)).sqrt();
        assert!((s.sigma_angle_at(r) - want).abs() < 1e-15);
        assert!(s.sigma_angle_at(50.0) > s.sigma_angle_at(500.0));
    }

    #[test]
    fn passive_seeker_reports_angles_only() {
        let mut s = seeker(SeekerConfig {
            range_enabled: false,
            reacquisition_detections: 1,
            ..Default::default()
        });
        let t = TargetTruth {
            position_m: Vec3::new(0.0, 1500.0, 1000.0),
            velocity_mps: Vec3::ZERO,
        };
        s.poll(0.0, &own(), &t);
        let d = s.pop_ready(0.0).unwrap();
        assert!(d.range_m.is_none());
        assert!(d.range_rate_mps.is_none());
        assert!(d.azimuth_rad.abs() < 0.01);
    }
}
