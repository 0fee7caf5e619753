//! Physical constants and the unit conversions used at the config boundary.
//!
//! Everything inside the simulator is SI (m, s, kg, N, rad). Degrees and "g"
//! exist only in config keys (`_deg`, `_g`) and are converted once, on load,
//! with the functions here.

/// Standard gravity `g0` (m/s^2).
pub const G0_MPS2: f64 = 9.80665;

/// Specific gas constant of dry air (J/(kg K)), as used by ISA 1976.
pub const R_AIR_JPKGK: f64 = 287.05287;

/// Ratio of specific heats of air.
pub const GAMMA_AIR: f64 = 1.4;

/// Degrees to radians.
#[inline]
pub fn deg_to_rad(deg: f64) -> f64 {
    deg.to_radians()
}

/// Radians to degrees.
#[inline]
pub fn rad_to_deg(rad: f64) -> f64 {
    rad.to_degrees()
}

/// Multiples of standard gravity to m/s^2.
#[inline]
pub fn g_to_mps2(g: f64) -> f64 {
    g * G0_MPS2
}

/// m/s^2 to multiples of standard gravity.
#[inline]
pub fn mps2_to_g(a: f64) -> f64 {
    a / G0_MPS2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_round_trip() {
        assert!((deg_to_rad(180.0) - std::f64::consts::PI).abs() < 1e-15);
        assert!((rad_to_deg(deg_to_rad(37.5)) - 37.5).abs() < 1e-12);
        assert!((g_to_mps2(2.0) - 19.6133).abs() < 1e-12);
        assert!((mps2_to_g(g_to_mps2(3.25)) - 3.25).abs() < 1e-12);
    }
}
