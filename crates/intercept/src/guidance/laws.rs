//! The classical guidance laws (model section 7.2 and 7.3).
//!
//! Each law is a small parameter struct; it maps the engagement geometry to a raw
//! world-frame acceleration command. Gravity compensation, the aero projection,
//! saturation, the blind time, turn-around and boost phases are the common
//! pipeline's job ([`super::Guidance`]).

use super::{Geometry, GuidanceInput, GuidanceLaw};
use crate::Vec3;

/// Zero command ("do nothing"; with the pipeline's gravity compensation on, the
/// gravity-compensated do-nothing baseline).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Zero;

impl GuidanceLaw for Zero {
    fn name(&self) -> &'static str {
        "zero"
    }
    fn is_passive(&self) -> bool {
        true
    }
    fn accel(&self, _g: &Geometry, _input: &GuidanceInput) -> Vec3 {
        Vec3::ZERO
    }
}

/// Pure pursuit: `a = K_p V_M P_perp(v_hat_M) lam` (turn the velocity onto the LOS).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PurePursuit {
    /// Gain `K_p` (1/s).
    pub gain_per_s: f64,
}

impl GuidanceLaw for PurePursuit {
    fn name(&self) -> &'static str {
        "pursuit"
    }
    fn accel(&self, g: &Geometry, _input: &GuidanceInput) -> Vec3 {
        self.gain_per_s * g.speed_mps * g.los.perp_to(g.velocity_dir)
    }
}

/// Pure proportional navigation: `a = N (Omega x v_M)`, perpendicular to `v_M`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ppn {
    /// Navigation constant `N`.
    pub nav_gain: f64,
}

impl GuidanceLaw for Ppn {
    fn name(&self) -> &'static str {
        "ppn"
    }
    fn accel(&self, g: &Geometry, input: &GuidanceInput) -> Vec3 {
        self.nav_gain * g.los_rate.cross(input.interceptor.velocity_mps)
    }
}

/// True proportional navigation: `a = N V_c (Omega x lam)`, perpendicular to the LOS.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tpn {
    /// Navigation constant `N`.
    pub nav_gain: f64,
}

impl GuidanceLaw for Tpn {
    fn name(&self) -> &'static str {
        "tpn"
    }
    fn accel(&self, g: &Geometry, _input: &GuidanceInput) -> Vec3 {
        self.nav_gain * g.closing_speed_mps * g.los_rate.cross(g.los)
    }
}

/// ZEM-PN, the primary baseline: `a = N P_perp(lam) ZEM / t_go^2` with
/// `ZEM = r + v t_go + 0.5 a_rel t_go^2`, `a_rel = a_T(known part) - g`. Gravity is
/// therefore handled inside the ZEM, and the pipeline adds no compensation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ZemPn {
    /// Navigation constant `N`.
    pub nav_gain: f64,
}

impl GuidanceLaw for ZemPn {
    fn name(&self) -> &'static str {
        "zem-pn"
    }
    fn gravity_in_law(&self) -> bool {
        true
    }
    fn accel(&self, g: &Geometry, input: &GuidanceInput) -> Vec3 {
        let t = g.t_go_s;
        let a_rel = input.target.known_acceleration_mps2 - input.gravity_mps2;
        let zem = g.r + g.v * t + a_rel * (0.5 * t * t);
        self.nav_gain * zem.perp_to(g.los) / (t * t)
    }
}

/// Augmented PN: `a = N V_c (Omega x lam) + (N/2) P_perp(lam) a_T_hat`.
///
/// Extrapolating an oscillating target acceleration over a long `t_go` steers the
/// wrong way against weaving targets, so the augmentation is applied only while
/// `t_go < gate_t_go_s` (infinite: always).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Apn {
    /// Navigation constant `N`.
    pub nav_gain: f64,
    /// Augmentation applied only below this time-to-go (s).
    pub gate_t_go_s: f64,
}

impl GuidanceLaw for Apn {
    fn name(&self) -> &'static str {
        "apn"
    }
    fn accel(&self, g: &Geometry, input: &GuidanceInput) -> Vec3 {
        let pn = self.nav_gain * g.closing_speed_mps * g.los_rate.cross(g.los);
        if g.t_go_s < self.gate_t_go_s {
            pn + (0.5 * self.nav_gain) * input.target.acceleration_mps2.perp_to(g.los)
        } else {
            pn
        }
    }
}

/// Optimal guidance with a first-order autopilot lag `tau` (OGL, section 7.3):
/// `a = N'(x) P_perp(lam) ZEM_tau / t_go^2`, `x = t_go/tau`,
/// `ZEM_tau = r + v t_go + 0.5 (a_T_hat - g) t_go^2 - tau^2 (e^-x + x - 1) a_L`.
/// The gain is capped (it grows like `10/x` as `x -> 0`); saturation does the rest.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ogl {
    /// Upper limit of `N'`.
    pub gain_cap: f64,
}

impl GuidanceLaw for Ogl {
    fn name(&self) -> &'static str {
        "ogl"
    }
    fn gravity_in_law(&self) -> bool {
        true
    }
    fn accel(&self, g: &Geometry, input: &GuidanceInput) -> Vec3 {
        let t = g.t_go_s;
        let tau = input.interceptor.autopilot_tau_s;
        let a_rel = input.target.acceleration_mps2 - input.gravity_mps2;
        let mut zem = g.r + g.v * t + a_rel * (0.5 * t * t);
        let gain = if tau > 0.0 {
            let x = t / tau;
            zem -= input.interceptor.lateral_accel_mps2 * (tau * tau * ((-x).exp() + x - 1.0));
            ogl_gain(x).min(self.gain_cap)
        } else {
            3.0_f64.min(self.gain_cap)
        };
        gain * zem.perp_to(g.los) / (t * t)
    }
}

/// Number of series terms in [`ogl_gain`] for `x < 1`.
const OGL_SERIES_TERMS: usize = 30;

/// The OGL effective navigation ratio
/// `N'(x) = 6 x^2 (e^-x - 1 + x) / (2x^3 - 6x^2 + 6x + 3 - 12 x e^-x - 3 e^-2x)`, uncapped.
///
/// The denominator vanishes like `0.3 x^5` with catastrophic cancellation, so for
/// `x < 1` both sides are evaluated as power series with the cancelling terms
/// removed analytically; above, the form divided by `x^3` is well conditioned and
/// tends to 3. Returns `+inf` for `x <= 0`.
pub fn ogl_gain(x: f64) -> f64 {
    if x.is_nan() || x <= 0.0 {
        return f64::INFINITY;
    }
    if x < 1.0 {
        // N' = 6 sum_j (-x)^j/(j+2)!  /  ( x sum_i (-1)^(i+5) (12(i+5) - 3 2^(i+5)) x^i/(i+5)! ).
        let mut num = 0.0;
        let mut den = 0.0;
        for j in (0..OGL_SERIES_TERMS).rev() {
            num = num * (-x) + 1.0 / factorial(j + 2);
            let n = j + 5;
            let sign = if n % 2 == 0 { 1.0 } else { -1.0 };
            let c = sign * (12.0 * n as f64 - 3.0 * 2f64.powi(n as i32)) / factorial(n);
            den = den * x + c;
        }
        return 6.0 * num / (x * den);
    }
    let e1 = (-x).exp();
    let e2 = e1 * e1;
    let ix = 1.0 / x;
    let ix2 = ix * ix;
    let ix3 = ix2 * ix;
    6.0 * (e1 * ix - ix + 1.0)
        / (2.0 - 6.0 * ix + 6.0 * ix2 + 3.0 * ix3 - 12.0 * e1 * ix2 - 3.0 * e2 * ix3)
}

fn factorial(n: usize) -> f64 {
    (2..=n).fold(1.0, |f, i| f * i as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ogl_gain_matches_the_table() {
        let table = [
            (0.5, 22.26),
            (1.0, 12.30),
            (2.0, 7.370),
            (3.0, 5.765),
            (5.0, 4.533),
            (10.0, 3.691),
            (20.0, 3.323),
            (50.0, 3.124),
        ];
        for (x, want) in table {
            let got = ogl_gain(x);
            assert!(
                (got - want).abs() / want < 1e-3,
                "N'({x}) = {got}, want {want}"
            );
        }
    }

    #[test]
    fn ogl_gain_limits() {
        // Large x: tends to 3.
        assert!((ogl_gain(1e4) - 3.0).abs() < 1e-3);
        assert!((ogl_gain(1e12) - 3.0).abs() < 1e-9);
        assert!(ogl_gain(1e300).is_finite());
        // Small x: finite and like 10/x + 2.2.
        for x in [1e-2, 1e-4, 1e-8] {
            let g = ogl_gain(x);
            assert!(g.is_finite());
            assert!((g - (10.0 / x + 2.2)).abs() / g < 1e-3, "{x}: {g}");
        }
        // Series and closed form agree across the switch.
        let below = ogl_gain(1.0 - 1e-12);
        let above = ogl_gain(1.0);
        assert!((below - above).abs() < 1e-9);
        // Capped in the law.
        assert_eq!(Ogl { gain_cap: 10.0 }.gain_cap.min(ogl_gain(0.01)), 10.0);
    }
}
