//! Wind: a mean boundary-layer profile plus per-vehicle Gauss-Markov gusts.
//!
//! Wind enters the dynamics only through the air-relative velocity
//! `v_air = v - w` (drag, dynamic pressure, Mach, lift authority).
//!
//! - Mean wind, power law: `w_mean(h) = u_ref (max(h, 1 m) / 10 m)^p` blowing
//!   toward azimuth `psi_w` (from north, clockwise), horizontal. `p = 1/7` is
//!   the classic neutral-stability exponent.
//! - Gusts, per axis and independent per vehicle: a first-order Gauss-Markov
//!   (Ornstein-Uhlenbeck) process `dw/dt = -w/tau + sigma sqrt(2/tau) eta` with
//!   `tau = L_w / max(V_air, 1 m/s)` (frozen turbulence swept past at the
//!   vehicle's airspeed), advanced with its exact discretisation
//!   `w <- phi w + sigma sqrt(1 - phi^2) N(0,1)`, `phi = exp(-h/tau)`, so the
//!   stationary standard deviation is exactly `sigma` at any step size.
//!
//! Both are evaluated once per physics step and held through the RK4 stages
//! (zero-order hold): the altitude changes by metres within a 10 ms step, far
//! below the scale of the profile, and a held input keeps RK4 fourth order.
//! Every random draw comes from the wind stream passed in by the caller.

use hlynr_rng::Rng;
use serde::{Deserialize, Serialize};

use crate::vec3::Vec3;

/// Height at which `reference_speed_mps` is given (m).
pub const WIND_REFERENCE_HEIGHT_M: f64 = 10.0;

/// Wind of one episode, in SI units.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct WindParams {
    /// Mean wind speed at 10 m (m/s).
    pub reference_speed_mps: f64,
    /// Azimuth the wind blows toward, from north clockwise (rad).
    pub direction_rad: f64,
    /// Power-law shear exponent.
    pub shear_exponent: f64,
    /// Gust standard deviation per axis (m/s); 0 disables gusts.
    pub gust_sigma_mps: f64,
    /// Gust correlation length (m).
    pub gust_length_m: f64,
}

impl Default for WindParams {
    fn default() -> Self {
        Self::calm()
    }
}

impl WindParams {
    /// No wind at all.
    pub const fn calm() -> Self {
        Self {
            reference_speed_mps: 0.0,
            direction_rad: 0.0,
            shear_exponent: 1.0 / 7.0,
            gust_sigma_mps: 0.0,
            gust_length_m: 300.0,
        }
    }

    /// Mean wind vector at `altitude_m` (m/s, ENU, horizontal).
    #[inline]
    pub fn mean_at(&self, altitude_m: f64) -> Vec3 {
        self.mean_toward(altitude_m, self.toward())
    }

    /// `(sin, cos)` of the direction the wind blows toward: the east and
    /// north weights of the mean wind, constant over an episode.
    #[inline]
    pub fn toward(&self) -> (f64, f64) {
        self.direction_rad.sin_cos()
    }

    /// [`WindParams::mean_at`] with [`WindParams::toward`] already evaluated.
    #[inline]
    pub fn mean_toward(&self, altitude_m: f64, (s, c): (f64, f64)) -> Vec3 {
        if self.reference_speed_mps == 0.0 {
            return Vec3::ZERO;
        }
        let speed = self.reference_speed_mps
            * (altitude_m.max(1.0) / WIND_REFERENCE_HEIGHT_M).powf(self.shear_exponent);
        Vec3::new(speed * s, speed * c, 0.0)
    }
}

/// The gust velocity felt by one vehicle (serialisable state of its
/// Gauss-Markov process).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Gust {
    pub velocity_mps: Vec3,
}

impl Gust {
    /// A gust drawn from the stationary distribution `N(0, sigma^2)` per axis,
    /// so the process is stationary from the first step. No draw when gusts
    /// are off.
    pub fn stationary(params: &WindParams, rng: &mut Rng) -> Self {
        if params.gust_sigma_mps == 0.0 {
            return Self::default();
        }
        let s = params.gust_sigma_mps;
        Self {
            velocity_mps: Vec3::new(s * rng.normal(), s * rng.normal(), s * rng.normal()),
        }
    }

    /// Advances the gust by `dt_s` for a vehicle flying at `air_speed_mps`.
    #[inline]
    pub fn advance(&mut self, params: &WindParams, air_speed_mps: f64, dt_s: f64, rng: &mut Rng) {
        if params.gust_sigma_mps == 0.0 {
            self.velocity_mps = Vec3::ZERO;
            return;
        }
        let tau_s = params.gust_length_m / air_speed_mps.max(1.0);
        let phi = (-dt_s / tau_s).exp();
        let s = params.gust_sigma_mps * (1.0 - phi * phi).max(0.0).sqrt();
        let w = self.velocity_mps;
        self.velocity_mps = Vec3::new(
            phi * w.x + s * rng.normal(),
            phi * w.y + s * rng.normal(),
            phi * w.z + s * rng.normal(),
        );
    }

    /// Total wind at `altitude_m`: mean profile plus this gust.
    #[inline]
    pub fn wind_at(&self, params: &WindParams, altitude_m: f64) -> Vec3 {
        params.mean_at(altitude_m) + self.velocity_mps
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_profile_follows_power_law_and_direction() {
        let p = WindParams {
            reference_speed_mps: 10.0,
            direction_rad: std::f64::consts::FRAC_PI_2, // blowing toward east
            ..WindParams::calm()
        };
        let w10 = p.mean_at(10.0);
        assert!((w10.x - 10.0).abs() < 1e-12 && w10.y.abs() < 1e-12 && w10.z == 0.0);
        let w1000 = p.mean_at(1000.0);
        assert!((w1000.norm() - 10.0 * 100f64.powf(1.0 / 7.0)).abs() < 1e-9);
        // Below 1 m the profile is held at its 1 m value (no zero or NaN).
        assert_eq!(p.mean_at(-5.0), p.mean_at(1.0));
        assert!(p.mean_at(1.0).norm() > 0.0);
    }

    #[test]
    fn gust_statistics_match_sigma_and_correlation() {
        let p = WindParams {
            gust_sigma_mps: 2.0,
            gust_length_m: 300.0,
            ..WindParams::calm()
        };
        let mut rng = Rng::seed_from_u64(7);
        let mut g = Gust::stationary(&p, &mut rng);
        let (dt, v) = (0.01, 300.0); // tau = 1 s
        let n = 400_000;
        let lag = 100; // 1 s: correlation exp(-1)
        let mut xs = Vec::with_capacity(n);
        for _ in 0..n {
            g.advance(&p, v, dt, &mut rng);
            xs.push(g.velocity_mps.x);
        }
        let var = xs.iter().map(|x| x * x).sum::<f64>() / n as f64;
        assert!((var.sqrt() - 2.0).abs() < 0.08, "std {}", var.sqrt());
        let cov = xs.windows(lag + 1).map(|w| w[0] * w[lag]).sum::<f64>() / (n - lag) as f64;
        let rho = cov / var;
        assert!((rho - (-1.0f64).exp()).abs() < 0.05, "correlation {rho}");
    }

    #[test]
    fn gusts_are_deterministic_by_seed() {
        let p = WindParams {
            gust_sigma_mps: 1.5,
            ..WindParams::calm()
        };
        let run = |seed| {
            let mut rng = Rng::seed_from_u64(seed);
            let mut g = Gust::stationary(&p, &mut rng);
            for _ in 0..100 {
                g.advance(&p, 250.0, 0.01, &mut rng);
            }
            g
        };
        assert_eq!(run(3), run(3));
        assert_ne!(run(3), run(4));
        let json = serde_json::to_string(&run(3)).unwrap();
        let back: Gust = serde_json::from_str(&json).unwrap();
        assert_eq!(back, run(3));
    }
}
