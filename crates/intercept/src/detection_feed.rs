//! The interceptor's receiver for ground-radar detections: what the
//! `raw_radar` observation ([`crate::observation`]) is built from.
//!
//! The feed holds the most recent detection delivered over the uplink, the one
//! before it, when the last arrived, and how many arrived during the current
//! decision step. Its only input is [`DetectionFeed::receive`], which takes a
//! [`Detection`] (the radar's output type), so, like the tracker, it cannot
//! hold the true threat state: it holds exactly what the receiver got, noise,
//! bias and latency included.
//!
//! Missed updates are counted the way a receiver can count them: from the
//! time since the last arrival and the radar's nominal update period. The
//! latency is constant within an episode, so a delivered scan arrives one
//! period after its predecessor; every whole period that passes without an
//! arrival is one missed update (a detection draw that failed, a target
//! outside the radar's limits, or a message lost on the link).

use hlynr_env::EnvError;
use serde::{Deserialize, Serialize};

use crate::radar::{Detection, TIME_EPS_S};

/// The latest ground-radar detection received, with its arrival bookkeeping.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DetectionFeed {
    /// Interval between radar scans (s): the nominal period `1 / update_rate`,
    /// or the physics step when the radar is faster than the simulation
    /// (scans then happen once per physics step).
    scan_interval_s: f64,
    /// The detection with the latest acquisition time received so far.
    latest: Option<Detection>,
    /// The detection `latest` replaced: with it, the raw two-point velocity.
    #[serde(default)]
    previous: Option<Detection>,
    /// Delivery time of the most recent arrival (s).
    last_arrival_s: Option<f64>,
    /// Detections received since [`DetectionFeed::begin_decision`].
    arrivals_this_decision: u32,
    /// Detections refused by [`DetectionFeed::receive`] this episode.
    rejected: u64,
}

impl DetectionFeed {
    /// A feed for a radar scanning at `update_rate_hz`, polled every
    /// `physics_step_s` seconds. Errors on a non-positive or non-finite value.
    pub fn new(update_rate_hz: f64, physics_step_s: f64) -> Result<Self, EnvError> {
        if !(update_rate_hz.is_finite() && update_rate_hz > 0.0) {
            return Err(EnvError::invalid(
                "detection feed",
                format!("radar update rate must be positive and finite, got {update_rate_hz} Hz"),
            ));
        }
        if !(physics_step_s.is_finite() && physics_step_s > 0.0) {
            return Err(EnvError::invalid(
                "detection feed",
                format!("physics step must be positive and finite, got {physics_step_s} s"),
            ));
        }
        Ok(Self {
            scan_interval_s: (1.0 / update_rate_hz).max(physics_step_s),
            latest: None,
            previous: None,
            last_arrival_s: None,
            arrivals_this_decision: 0,
            rejected: 0,
        })
    }

    /// Forgets everything received (start of an episode).
    pub fn reset(&mut self) {
        self.latest = None;
        self.previous = None;
        self.last_arrival_s = None;
        self.arrivals_this_decision = 0;
        self.rejected = 0;
    }

    /// Starts a decision step: the arrival counter restarts at zero.
    pub fn begin_decision(&mut self) {
        self.arrivals_this_decision = 0;
    }

    /// Receives `det`, delivered at `arrival_time_s`. A detection without a
    /// range or with a non-finite value cannot place the target and is
    /// refused (counted in [`DetectionFeed::rejected`]); returns whether it
    /// was accepted. Of several detections, the one with the latest
    /// acquisition time is kept.
    pub fn receive(&mut self, det: &Detection, arrival_time_s: f64) -> bool {
        let usable = det.range_m.is_some_and(f64::is_finite)
            && det.azimuth_rad.is_finite()
            && det.elevation_rad.is_finite()
            && det.range_rate_mps.is_none_or(f64::is_finite)
            && det.time_s.is_finite()
            && det.sensor_position_m.is_finite()
            && arrival_time_s.is_finite();
        if !usable {
            self.rejected += 1;
            return false;
        }
        if self.latest.is_none_or(|l| det.time_s >= l.time_s) {
            self.previous = self.latest.replace(*det);
        }
        self.last_arrival_s = Some(arrival_time_s);
        self.arrivals_this_decision += 1;
        true
    }

    /// The latest detection received, if any.
    pub fn latest(&self) -> Option<&Detection> {
        self.latest.as_ref()
    }

    /// The detection received before [`DetectionFeed::latest`], if any.
    pub fn previous(&self) -> Option<&Detection> {
        self.previous.as_ref()
    }

    /// Detections received since the current decision step began.
    pub fn arrivals_this_decision(&self) -> u32 {
        self.arrivals_this_decision
    }

    /// Age of the latest detection at `now_s`, from its acquisition time (s).
    pub fn age_s(&self, now_s: f64) -> Option<f64> {
        self.latest.map(|d| (now_s - d.time_s).max(0.0))
    }

    /// Whole scan intervals since the last arrival at `now_s`: the number of
    /// updates that were due by now and did not arrive (0 before the first
    /// arrival).
    pub fn missed_updates(&self, now_s: f64) -> u64 {
        match self.last_arrival_s {
            Some(t) => {
                let gap = (now_s - t).max(0.0);
                ((gap + TIME_EPS_S) / self.scan_interval_s).floor() as u64
            }
            None => 0,
        }
    }

    /// Interval between radar scans that the missed-update count uses (s).
    pub fn scan_interval_s(&self) -> f64 {
        self.scan_interval_s
    }

    /// Detections refused this episode (no range or non-finite values).
    pub fn rejected(&self) -> u64 {
        self.rejected
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Vec3;
    use crate::radar::{MeasurementSigma, SensorKind};

    fn det(time_s: f64, range_m: f64) -> Detection {
        Detection {
            time_s,
            sensor: SensorKind::Radar,
            sensor_position_m: Vec3::ZERO,
            sensor_velocity_mps: Vec3::ZERO,
            range_m: Some(range_m),
            azimuth_rad: 0.1,
            elevation_rad: 0.2,
            range_rate_mps: None,
            sigma: MeasurementSigma::default(),
        }
    }

    #[test]
    fn keeps_the_latest_and_counts_arrivals() {
        let mut f = DetectionFeed::new(50.0, 0.01).unwrap();
        assert!(f.latest().is_none());
        assert_eq!(f.age_s(1.0), None);
        f.begin_decision();
        assert!(f.receive(&det(0.0, 1000.0), 0.0));
        assert!(f.previous().is_none());
        assert!(f.receive(&det(0.02, 990.0), 0.02));
        assert!(f.receive(&det(0.04, 980.0), 0.04));
        assert_eq!(f.arrivals_this_decision(), 3);
        assert_eq!(f.latest().unwrap().range_m, Some(980.0));
        assert_eq!(f.previous().unwrap().range_m, Some(990.0));
        assert!((f.age_s(0.05).unwrap() - 0.01).abs() < 1e-12);
        f.begin_decision();
        assert_eq!(f.arrivals_this_decision(), 0);
        // An older acquisition arriving late does not replace the latest.
        assert!(f.receive(&det(0.03, 5.0), 0.06));
        assert_eq!(f.latest().unwrap().range_m, Some(980.0));
        assert_eq!(f.previous().unwrap().range_m, Some(990.0));
        f.reset();
        assert!(f.latest().is_none() && f.previous().is_none());
        assert_eq!(f.missed_updates(3.0), 0);
    }

    #[test]
    fn missed_updates_count_whole_periods_since_the_last_arrival() {
        let mut f = DetectionFeed::new(5.0, 0.01).unwrap();
        f.receive(&det(0.0, 1000.0), 0.05);
        assert_eq!(f.missed_updates(0.05), 0);
        assert_eq!(f.missed_updates(0.2), 0);
        // The next arrival was due at 0.25 and did not come.
        assert_eq!(f.missed_updates(0.25), 1);
        assert_eq!(f.missed_updates(0.65), 3);
        // Accumulated step sums sit a rounding error below the due time.
        let t: f64 = (0..45).map(|_| 0.01).sum::<f64>();
        assert_eq!(f.missed_updates(t), 2);
    }

    #[test]
    fn a_radar_faster_than_the_physics_scans_once_per_step() {
        let f = DetectionFeed::new(500.0, 0.01).unwrap();
        assert_eq!(f.scan_interval_s(), 0.01);
        let f = DetectionFeed::new(20.0, 0.01).unwrap();
        assert_eq!(f.scan_interval_s(), 0.05);
    }

    #[test]
    fn unusable_detections_are_refused() {
        let mut f = DetectionFeed::new(20.0, 0.01).unwrap();
        let mut d = det(0.0, 1000.0);
        d.range_m = None;
        assert!(!f.receive(&d, 0.0));
        let mut d = det(0.0, 1000.0);
        d.azimuth_rad = f64::NAN;
        assert!(!f.receive(&d, 0.0));
        assert_eq!(f.rejected(), 2);
        assert!(f.latest().is_none());
        assert_eq!(f.arrivals_this_decision(), 0);
    }

    #[test]
    fn bad_rates_are_errors_naming_the_value() {
        let e = DetectionFeed::new(0.0, 0.01).unwrap_err().to_string();
        assert!(e.contains("update rate") && e.contains('0'), "{e}");
        let e = DetectionFeed::new(20.0, f64::NAN).unwrap_err().to_string();
        assert!(e.contains("physics step") && e.contains("NaN"), "{e}");
    }
}
