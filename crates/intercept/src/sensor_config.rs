//! Configuration of the sensing chain: ground radar, onboard seeker and tracker.
//!
//! These structs are the config boundary: key names carry their units (`_m`,
//! `_deg`, `_mrad`, `_hz`, `_ms`, ...), unknown keys are rejected, every key has a
//! documented default, and [`RadarConfig::validate`] and friends reject values out
//! of their physical range with an error naming the key. Degrees and milliradians
//! exist only here; the sensor and tracker constructors convert to SI once.
//!
//! Domain randomisation: `noise_factor_range` and `latency_factor_range` are
//! `[low, high]` intervals; at every episode reset a factor is drawn uniformly from
//! each and multiplies all noise standard deviations, respectively the latency, for
//! that episode. `[1, 1]` (the default) disables the randomisation.

use hlynr_env::EnvError;
use serde::{Deserialize, Serialize};

/// Result alias for configuration validation.
pub type ConfigResult<T> = std::result::Result<T, EnvError>;

fn check_range(key: &str, value: f64, low: f64, high: f64) -> ConfigResult<()> {
    if value.is_finite() && value >= low && value <= high {
        Ok(())
    } else {
        Err(EnvError::invalid(
            key,
            format!("must be in [{low}, {high}], got {value}"),
        ))
    }
}

fn check_factor_range(key: &str, r: [f64; 2]) -> ConfigResult<()> {
    check_range(key, r[0], 0.0, 100.0)?;
    check_range(key, r[1], 0.0, 100.0)?;
    if r[0] > r[1] {
        return Err(EnvError::invalid(
            key,
            format!("low must not exceed high, got [{}, {}]", r[0], r[1]),
        ));
    }
    Ok(())
}

fn unit_range() -> [f64; 2] {
    [1.0, 1.0]
}

/// SNR-derived accuracy and Swerling-1 detection (model section 5.2 and 5.3).
///
/// When present, each configured radar sigma acts as the floor (bias and
/// calibration) and the thermal part follows the radar equation:
/// `SNR(R) = SNR_ref (rcs/rcs_ref) (R_ref/R)^4`, `sigma_angle = theta_3dB/(k_m sqrt(2 SNR))`,
/// `sigma_range = (c/2B)/sqrt(2 SNR)`, `sigma_Rdot = lambda/(2 T_coh sqrt(2 SNR))`,
/// and the single-look detection probability is `P_fa^(1/(1+SNR))`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SnrModelConfig {
    /// SNR at the reference range for the reference RCS (dB). Default 13.
    pub snr_ref_db: f64,
    /// Reference range (m). Default 20 000.
    pub range_ref_m: f64,
    /// Reference radar cross-section (m^2). Default 1.
    pub rcs_ref_m2: f64,
    /// Target RCS assumed until the environment sets one (m^2). Default 1.
    pub target_rcs_m2: f64,
    /// Two-sided 3 dB beamwidth (mrad). Default 35 (2 deg).
    pub beamwidth_mrad: f64,
    /// Monopulse slope `k_m`. Default 1.6.
    pub monopulse_slope: f64,
    /// Signal bandwidth (MHz); range resolution `c/(2B)`. Default 10.
    pub bandwidth_mhz: f64,
    /// Wavelength (m). Default 0.03.
    pub wavelength_m: f64,
    /// Coherent integration time for Doppler (ms). Default 10.
    pub coherent_time_ms: f64,
    /// Single-look false-alarm probability. Default 1e-6.
    pub false_alarm_probability: f64,
}

impl Default for SnrModelConfig {
    fn default() -> Self {
        Self {
            snr_ref_db: 13.0,
            range_ref_m: 20_000.0,
            rcs_ref_m2: 1.0,
            target_rcs_m2: 1.0,
            beamwidth_mrad: 35.0,
            monopulse_slope: 1.6,
            bandwidth_mhz: 10.0,
            wavelength_m: 0.03,
            coherent_time_ms: 10.0,
            false_alarm_probability: 1e-6,
        }
    }
}

impl SnrModelConfig {
    /// Checks every key against its physical range.
    pub fn validate(&self) -> ConfigResult<()> {
        check_range("radar.snr.snr_ref_db", self.snr_ref_db, -30.0, 100.0)?;
        check_range("radar.snr.range_ref_m", self.range_ref_m, 1.0, 1e7)?;
        check_range("radar.snr.rcs_ref_m2", self.rcs_ref_m2, 1e-6, 1e6)?;
        check_range("radar.snr.target_rcs_m2", self.target_rcs_m2, 1e-6, 1e6)?;
        check_range(
            "radar.snr.beamwidth_mrad",
            self.beamwidth_mrad,
            0.01,
            1000.0,
        )?;
        check_range("radar.snr.monopulse_slope", self.monopulse_slope, 0.1, 10.0)?;
        check_range("radar.snr.bandwidth_mhz", self.bandwidth_mhz, 1e-3, 1e5)?;
        check_range("radar.snr.wavelength_m", self.wavelength_m, 1e-4, 10.0)?;
        check_range(
            "radar.snr.coherent_time_ms",
            self.coherent_time_ms,
            1e-3,
            1e4,
        )?;
        check_range(
            "radar.snr.false_alarm_probability",
            self.false_alarm_probability,
            1e-15,
            0.5,
        )
    }
}

/// Ground radar (model section 5.1 to 5.3).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RadarConfig {
    /// Antenna position in the ENU world frame (m). Default `[0, 0, 5]` (a mast at the launcher).
    pub position_m: [f64; 3],
    /// Measurement rate (Hz); scans happen on the simulation steps at or after each
    /// multiple of `1/rate`. Default 50.
    pub update_rate_hz: f64,
    /// Delay from acquisition to delivery (ms). Default 0.
    pub latency_ms: f64,
    /// Range noise standard deviation (m). Default 1.
    pub sigma_range_m: f64,
    /// Azimuth noise standard deviation (mrad). Default 0.5.
    pub sigma_azimuth_mrad: f64,
    /// Elevation noise standard deviation (mrad). Default 0.5.
    pub sigma_elevation_mrad: f64,
    /// Whether the radar measures range rate (Doppler). Default false.
    pub range_rate_enabled: bool,
    /// Range-rate noise standard deviation (m/s). Default 0.1.
    pub sigma_range_rate_mps: f64,
    /// Minimum detection range (m). Default 200.
    pub min_range_m: f64,
    /// Maximum detection range (m). Default 40 000.
    pub max_range_m: f64,
    /// Minimum elevation (horizon masking, multipath) (deg). Default 1.
    pub min_elevation_deg: f64,
    /// Maximum elevation (deg). Default 85.
    pub max_elevation_deg: f64,
    /// Single-look detection probability (multiplies the Swerling-1 value when
    /// `snr` is set). Default 1.
    pub detection_probability: f64,
    /// Per-episode angle bias standard deviation, drawn once per axis (mrad). Default 0.
    pub angle_bias_sigma_mrad: f64,
    /// Per-episode range bias standard deviation (m). Default 0.
    pub range_bias_sigma_m: f64,
    /// Long-run fraction of messages lost on the uplink. Default 0.
    pub link_loss_probability: f64,
    /// Mean length of a loss burst in messages. 1 selects independent (Bernoulli)
    /// losses; larger values a two-state Gilbert-Elliott chain with
    /// `p_bad_to_good = 1/L`. Must be at least `1/(1-p)` when above 1. Default 1.
    pub link_mean_burst_length: f64,
    /// Domain-randomisation interval of the per-episode noise factor. Default `[1, 1]`.
    #[serde(default = "unit_range")]
    pub noise_factor_range: [f64; 2],
    /// Domain-randomisation interval of the per-episode latency factor. Default `[1, 1]`.
    #[serde(default = "unit_range")]
    pub latency_factor_range: [f64; 2],
    /// SNR-derived accuracy and Swerling-1 detection; absent (the default) means the
    /// sigmas above are used as they are.
    pub snr: Option<SnrModelConfig>,
}

impl Default for RadarConfig {
    fn default() -> Self {
        Self {
            position_m: [0.0, 0.0, 5.0],
            update_rate_hz: 50.0,
            latency_ms: 0.0,
            sigma_range_m: 1.0,
            sigma_azimuth_mrad: 0.5,
            sigma_elevation_mrad: 0.5,
            range_rate_enabled: false,
            sigma_range_rate_mps: 0.1,
            min_range_m: 200.0,
            max_range_m: 40_000.0,
            min_elevation_deg: 1.0,
            max_elevation_deg: 85.0,
            detection_probability: 1.0,
            angle_bias_sigma_mrad: 0.0,
            range_bias_sigma_m: 0.0,
            link_loss_probability: 0.0,
            link_mean_burst_length: 1.0,
            noise_factor_range: unit_range(),
            latency_factor_range: unit_range(),
            snr: None,
        }
    }
}

impl RadarConfig {
    /// Checks every key against its physical range; the error names the key.
    pub fn validate(&self) -> ConfigResult<()> {
        for (i, v) in self.position_m.iter().enumerate() {
            check_range(&format!("radar.position_m[{i}]"), *v, -1e7, 1e7)?;
        }
        check_range("radar.update_rate_hz", self.update_rate_hz, 0.01, 10_000.0)?;
        check_range("radar.latency_ms", self.latency_ms, 0.0, 10_000.0)?;
        check_range("radar.sigma_range_m", self.sigma_range_m, 0.0, 10_000.0)?;
        check_range(
            "radar.sigma_azimuth_mrad",
            self.sigma_azimuth_mrad,
            0.0,
            500.0,
        )?;
        check_range(
            "radar.sigma_elevation_mrad",
            self.sigma_elevation_mrad,
            0.0,
            500.0,
        )?;
        check_range(
            "radar.sigma_range_rate_mps",
            self.sigma_range_rate_mps,
            0.0,
            1000.0,
        )?;
        check_range("radar.min_range_m", self.min_range_m, 0.0, 1e7)?;
        check_range("radar.max_range_m", self.max_range_m, 0.0, 1e7)?;
        if self.max_range_m <= self.min_range_m {
            return Err(EnvError::invalid(
                "radar.max_range_m",
                format!(
                    "must exceed radar.min_range_m ({}), got {}",
                    self.min_range_m, self.max_range_m
                ),
            ));
        }
        check_range(
            "radar.min_elevation_deg",
            self.min_elevation_deg,
            -90.0,
            90.0,
        )?;
        check_range(
            "radar.max_elevation_deg",
            self.max_elevation_deg,
            -90.0,
            90.0,
        )?;
        if self.max_elevation_deg <= self.min_elevation_deg {
            return Err(EnvError::invalid(
                "radar.max_elevation_deg",
                format!(
                    "must exceed radar.min_elevation_deg ({}), got {}",
                    self.min_elevation_deg, self.max_elevation_deg
                ),
            ));
        }
        check_range(
            "radar.detection_probability",
            self.detection_probability,
            0.0,
            1.0,
        )?;
        check_range(
            "radar.angle_bias_sigma_mrad",
            self.angle_bias_sigma_mrad,
            0.0,
            100.0,
        )?;
        check_range(
            "radar.range_bias_sigma_m",
            self.range_bias_sigma_m,
            0.0,
            1000.0,
        )?;
        check_range(
            "radar.link_loss_probability",
            self.link_loss_probability,
            0.0,
            0.99,
        )?;
        check_range(
            "radar.link_mean_burst_length",
            self.link_mean_burst_length,
            1.0,
            1e6,
        )?;
        let p = self.link_loss_probability;
        let l = self.link_mean_burst_length;
        if l > 1.0 && l < 1.0 / (1.0 - p) {
            return Err(EnvError::invalid(
                "radar.link_mean_burst_length",
                format!(
                    "must be 1 (independent losses) or at least 1/(1 - link_loss_probability) = {}, got {l}",
                    1.0 / (1.0 - p)
                ),
            ));
        }
        check_factor_range("radar.noise_factor_range", self.noise_factor_range)?;
        check_factor_range("radar.latency_factor_range", self.latency_factor_range)?;
        if let Some(snr) = &self.snr {
            snr.validate()?;
        }
        Ok(())
    }
}

/// Onboard seeker (model section 5.4).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SeekerConfig {
    /// Whether the interceptor carries a seeker. Default false.
    pub enabled: bool,
    /// Field-of-regard half-angle about the interceptor velocity axis (deg). Default 30.
    pub field_of_regard_deg: f64,
    /// Acquisition range (m). Default 3000.
    pub acquisition_range_m: f64,
    /// Measurement rate (Hz). Default 50.
    pub update_rate_hz: f64,
    /// Delay from acquisition to delivery (ms). Default 0.
    pub latency_ms: f64,
    /// Range-independent angle noise (mrad). Default 1.
    pub sigma_angle_fixed_mrad: f64,
    /// Glint noise as a lateral displacement (m); its angle is `sigma_glint/R`. Default 0.
    pub sigma_glint_m: f64,
    /// Receiver-noise angle at the reference range (mrad). Default 0.
    pub sigma_receiver_mrad: f64,
    /// Reference range of the receiver-noise term (m). Default 3000.
    pub receiver_ref_range_m: f64,
    /// Range exponent `p` of the receiver-noise term (2 active RF, 1 passive IR). Default 2.
    pub receiver_range_exponent: f64,
    /// Whether the seeker measures range (active RF); false for a passive seeker. Default true.
    pub range_enabled: bool,
    /// Range noise standard deviation (m). Default 5.
    pub sigma_range_m: f64,
    /// Whether the seeker measures range rate. Default false.
    pub range_rate_enabled: bool,
    /// Range-rate noise standard deviation (m/s). Default 1.
    pub sigma_range_rate_mps: f64,
    /// Consecutive detections needed to (re)acquire lock. Default 2.
    pub reacquisition_detections: u32,
    /// Domain-randomisation interval of the per-episode noise factor. Default `[1, 1]`.
    #[serde(default = "unit_range")]
    pub noise_factor_range: [f64; 2],
    /// Domain-randomisation interval of the per-episode latency factor. Default `[1, 1]`.
    #[serde(default = "unit_range")]
    pub latency_factor_range: [f64; 2],
}

impl Default for SeekerConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            field_of_regard_deg: 30.0,
            acquisition_range_m: 3000.0,
            update_rate_hz: 50.0,
            latency_ms: 0.0,
            sigma_angle_fixed_mrad: 1.0,
            sigma_glint_m: 0.0,
            sigma_receiver_mrad: 0.0,
            receiver_ref_range_m: 3000.0,
            receiver_range_exponent: 2.0,
            range_enabled: true,
            sigma_range_m: 5.0,
            range_rate_enabled: false,
            sigma_range_rate_mps: 1.0,
            reacquisition_detections: 2,
            noise_factor_range: unit_range(),
            latency_factor_range: unit_range(),
        }
    }
}

impl SeekerConfig {
    /// Checks every key against its physical range; the error names the key.
    pub fn validate(&self) -> ConfigResult<()> {
        check_range(
            "seeker.field_of_regard_deg",
            self.field_of_regard_deg,
            0.1,
            180.0,
        )?;
        check_range(
            "seeker.acquisition_range_m",
            self.acquisition_range_m,
            1.0,
            1e7,
        )?;
        check_range("seeker.update_rate_hz", self.update_rate_hz, 0.01, 10_000.0)?;
        check_range("seeker.latency_ms", self.latency_ms, 0.0, 10_000.0)?;
        check_range(
            "seeker.sigma_angle_fixed_mrad",
            self.sigma_angle_fixed_mrad,
            0.0,
            500.0,
        )?;
        check_range("seeker.sigma_glint_m", self.sigma_glint_m, 0.0, 100.0)?;
        check_range(
            "seeker.sigma_receiver_mrad",
            self.sigma_receiver_mrad,
            0.0,
            500.0,
        )?;
        check_range(
            "seeker.receiver_ref_range_m",
            self.receiver_ref_range_m,
            1.0,
            1e7,
        )?;
        check_range(
            "seeker.receiver_range_exponent",
            self.receiver_range_exponent,
            0.0,
            4.0,
        )?;
        check_range("seeker.sigma_range_m", self.sigma_range_m, 0.0, 10_000.0)?;
        check_range(
            "seeker.sigma_range_rate_mps",
            self.sigma_range_rate_mps,
            0.0,
            1000.0,
        )?;
        check_range(
            "seeker.reacquisition_detections",
            f64::from(self.reacquisition_detections),
            1.0,
            1000.0,
        )?;
        if self.sigma_angle_fixed_mrad == 0.0
            && self.sigma_glint_m == 0.0
            && self.sigma_receiver_mrad == 0.0
        {
            return Err(EnvError::invalid(
                "seeker.sigma_angle_fixed_mrad",
                "at least one angle noise term must be positive (the tracker needs a measurement covariance)",
            ));
        }
        check_factor_range("seeker.noise_factor_range", self.noise_factor_range)?;
        check_factor_range("seeker.latency_factor_range", self.latency_factor_range)
    }
}

/// Tracker motion model (model section 6.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MotionModelKind {
    /// Constant velocity, 6 states, discrete white-noise acceleration of std `sa_mps2`.
    Cv,
    /// Singer, 9 states, first-order Markov acceleration (`singer_sm_mps2`, `singer_tau_s`).
    Singer,
}

/// Tracking filter (model section 6).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrackerConfig {
    /// Motion model: `cv` or `singer`. Default `cv`.
    pub model: MotionModelKind,
    /// CV process noise: std of the piecewise-constant acceleration (m/s^2);
    /// 0.5 to 1 times the threat's maximum acceleration. Default 20.
    pub sa_mps2: f64,
    /// Singer acceleration standard deviation `sm` (m/s^2). Default 30.
    pub singer_sm_mps2: f64,
    /// Singer maneuver time constant `tau_m` (s). Default 10.
    pub singer_tau_s: f64,
    /// Propagate gravity as a known input (ballistic threats), so the process noise
    /// only has to cover the unknown part. Default false.
    pub gravity_input: bool,
    /// Without an accepted update for this long the track is dropped and must be
    /// re-initialised from two new detections (s). Default 2.
    pub coast_timeout_s: f64,
    /// Reject updates whose NIS exceeds the chi-square 99.9 % point. Default true.
    pub gate_enabled: bool,
    /// Detections are held this long before they are filtered, so that sensors with
    /// different latencies are still processed in time-stamp order (ms). Set it to
    /// the largest latency difference between sensors; 0 processes each detection on
    /// arrival. Default 0.
    pub reorder_window_ms: f64,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        Self {
            model: MotionModelKind::Cv,
            sa_mps2: 20.0,
            singer_sm_mps2: 30.0,
            singer_tau_s: 10.0,
            gravity_input: false,
            coast_timeout_s: 2.0,
            gate_enabled: true,
            reorder_window_ms: 0.0,
        }
    }
}

impl TrackerConfig {
    /// Checks every key against its physical range; the error names the key.
    pub fn validate(&self) -> ConfigResult<()> {
        check_range("tracker.sa_mps2", self.sa_mps2, 1e-6, 1e4)?;
        check_range("tracker.singer_sm_mps2", self.singer_sm_mps2, 1e-6, 1e4)?;
        check_range("tracker.singer_tau_s", self.singer_tau_s, 1e-3, 1e6)?;
        check_range("tracker.coast_timeout_s", self.coast_timeout_s, 1e-3, 1e4)?;
        check_range(
            "tracker.reorder_window_ms",
            self.reorder_window_ms,
            0.0,
            10_000.0,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate() {
        RadarConfig::default().validate().unwrap();
        let r = RadarConfig {
            snr: Some(SnrModelConfig::default()),
            ..Default::default()
        };
        r.validate().unwrap();
        SeekerConfig::default().validate().unwrap();
        TrackerConfig::default().validate().unwrap();
    }

    #[test]
    fn out_of_range_names_the_key() {
        let r = RadarConfig {
            sigma_range_m: -1.0,
            ..Default::default()
        };
        let e = r.validate().unwrap_err().to_string();
        assert!(e.contains("radar.sigma_range_m"), "{e}");
        let t = TrackerConfig {
            singer_tau_s: f64::NAN,
            ..Default::default()
        };
        assert!(
            t.validate()
                .unwrap_err()
                .to_string()
                .contains("tracker.singer_tau_s")
        );
        let s = SeekerConfig {
            noise_factor_range: [2.0, 1.0],
            ..Default::default()
        };
        assert!(
            s.validate()
                .unwrap_err()
                .to_string()
                .contains("seeker.noise_factor_range")
        );
        let b = RadarConfig {
            link_loss_probability: 0.5,
            link_mean_burst_length: 1.5,
            ..Default::default()
        };
        assert!(
            b.validate()
                .unwrap_err()
                .to_string()
                .contains("link_mean_burst_length")
        );
    }

    #[test]
    fn unknown_keys_are_rejected_and_defaults_fill_in() {
        let err = serde_json::from_str::<RadarConfig>(r#"{"sigma_range": 3.0}"#).unwrap_err();
        assert!(err.to_string().contains("sigma_range"), "{err}");
        let r: RadarConfig = serde_json::from_str(r#"{"sigma_range_m": 3.0}"#).unwrap();
        assert_eq!(r.sigma_range_m, 3.0);
        assert_eq!(r.update_rate_hz, RadarConfig::default().update_rate_hz);
        let t: TrackerConfig = serde_json::from_str(r#"{"model": "singer"}"#).unwrap();
        assert_eq!(t.model, MotionModelKind::Singer);
        assert!(serde_json::from_str::<TrackerConfig>(r#"{"model": "ca"}"#).is_err());
        assert!(serde_json::from_str::<SnrModelConfig>(r#"{"snr_db": 1}"#).is_err());
    }
}
