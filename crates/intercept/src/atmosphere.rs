//! ISA 1976 standard atmosphere to 32 km, with per-episode deviations.
//!
//! Geometric altitude is used as geopotential altitude (about 1 % density error
//! at 20 km, negligible at these ranges). Altitudes are clamped to [0, 32 km].
//!
//! Domain randomisation enters in two ways that both change density (a density
//! multiplier that is silently recomputed away from pressure and temperature is
//! a known defect of other simulators):
//! - `temperature_offset_k`: a hot/cold day. Temperature is shifted by the
//!   offset at every altitude while the standard pressure profile is kept, so
//!   density `p / (R T)` and the speed of sound `sqrt(gamma R T)` both change.
//! - `density_factor`: multiplies the final density (it does not touch
//!   pressure, temperature or the speed of sound).
//!
//! The step path uses [`Atmosphere::at`], which interpolates a table of the
//! standard temperature and pressure built once per process (10 m spacing,
//! relative error below 1e-6), so a physics stage costs one division and one
//! square root instead of a `powf`/`exp`. [`Atmosphere::exact`] evaluates the
//! closed-form profile and is the reference the table is tested against.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::units::{G0_MPS2, GAMMA_AIR, R_AIR_JPKGK};

/// Sea-level standard temperature (K).
pub const T0_K: f64 = 288.15;
/// Sea-level standard pressure (Pa).
pub const P0_PA: f64 = 101_325.0;
/// Tropospheric lapse rate (K/m).
pub const LAPSE_KPM: f64 = 0.0065;
/// Tropopause altitude (m).
pub const TROPOPAUSE_M: f64 = 11_000.0;
/// Top of the isothermal layer (m).
pub const STRATOPAUSE_LOW_M: f64 = 20_000.0;
/// Highest modelled altitude (m); higher altitudes are clamped.
pub const CEILING_M: f64 = 32_000.0;
/// Temperature of the isothermal layer (K).
pub const T11_K: f64 = 216.65;
/// Temperature gradient of the 20 to 32 km layer (K/m, temperature rising).
const UPPER_GRADIENT_KPM: f64 = 0.001;

/// Spacing of the interpolation table (m).
const TABLE_STEP_M: f64 = 10.0;
/// Reciprocal of [`TABLE_STEP_M`] (1/m).
const INV_TABLE_STEP_PER_M: f64 = 1.0 / TABLE_STEP_M;
const TABLE_LEN: usize = (CEILING_M / TABLE_STEP_M) as usize + 1;

/// Air properties at one altitude.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct AirState {
    pub temperature_k: f64,
    pub pressure_pa: f64,
    pub density_kgpm3: f64,
    pub speed_of_sound_mps: f64,
}

/// Pressure at the tropopause, from the tropospheric formula (Pa).
fn p11_pa() -> f64 {
    P0_PA * (T11_K / T0_K).powf(G0_MPS2 / (R_AIR_JPKGK * LAPSE_KPM))
}

/// Pressure at 20 km, from the isothermal formula (Pa).
fn p20_pa() -> f64 {
    p11_pa() * (-G0_MPS2 * (STRATOPAUSE_LOW_M - TROPOPAUSE_M) / (R_AIR_JPKGK * T11_K)).exp()
}

/// Standard-day temperature and pressure at a (clamped) altitude, closed form.
/// The layer base pressures are derived from the lower layers, so the profile
/// is continuous by construction.
pub fn isa_temperature_pressure(altitude_m: f64) -> (f64, f64) {
    let h = altitude_m.clamp(0.0, CEILING_M);
    if h <= TROPOPAUSE_M {
        let t = T0_K - LAPSE_KPM * h;
        (
            t,
            P0_PA * (t / T0_K).powf(G0_MPS2 / (R_AIR_JPKGK * LAPSE_KPM)),
        )
    } else if h <= STRATOPAUSE_LOW_M {
        let p = p11_pa() * (-G0_MPS2 * (h - TROPOPAUSE_M) / (R_AIR_JPKGK * T11_K)).exp();
        (T11_K, p)
    } else {
        let t = T11_K + UPPER_GRADIENT_KPM * (h - STRATOPAUSE_LOW_M);
        let p = p20_pa() * (t / T11_K).powf(-G0_MPS2 / (R_AIR_JPKGK * UPPER_GRADIENT_KPM));
        (t, p)
    }
}

/// The shared standard-day table: `[temperature_k, pressure_pa]` every 10 m.
fn table() -> &'static [[f64; 2]] {
    static TABLE: OnceLock<Vec<[f64; 2]>> = OnceLock::new();
    TABLE.get_or_init(|| {
        (0..TABLE_LEN)
            .map(|i| {
                let (t, p) = isa_temperature_pressure(i as f64 * TABLE_STEP_M);
                [t, p]
            })
            .collect()
    })
}

/// Which vertical profile the atmosphere follows.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AtmosphereModel {
    /// ISA 1976 (the default).
    Isa,
    /// The same air at every altitude: for analytic tests and for idealised
    /// scenarios. Offsets still apply.
    Uniform {
        temperature_k: f64,
        pressure_pa: f64,
    },
}

/// The atmosphere of one episode: a profile plus its randomised deviations.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Atmosphere {
    pub model: AtmosphereModel,
    /// Added to the profile temperature at every altitude (K).
    pub temperature_offset_k: f64,
    /// Multiplies the density (1 = nominal).
    pub density_factor: f64,
}

impl Default for Atmosphere {
    fn default() -> Self {
        Self::standard()
    }
}

impl Atmosphere {
    /// The standard day.
    pub const fn standard() -> Self {
        Self {
            model: AtmosphereModel::Isa,
            temperature_offset_k: 0.0,
            density_factor: 1.0,
        }
    }

    /// ISA with a temperature deviation and a density multiplier.
    pub const fn with_deviations(temperature_offset_k: f64, density_factor: f64) -> Self {
        Self {
            model: AtmosphereModel::Isa,
            temperature_offset_k,
            density_factor,
        }
    }

    /// Uniform air with the given density and speed of sound (the temperature
    /// and pressure are chosen to be consistent with both).
    pub fn uniform(density_kgpm3: f64, speed_of_sound_mps: f64) -> Self {
        let temperature_k = speed_of_sound_mps * speed_of_sound_mps / (GAMMA_AIR * R_AIR_JPKGK);
        Self {
            model: AtmosphereModel::Uniform {
                temperature_k,
                pressure_pa: density_kgpm3 * R_AIR_JPKGK * temperature_k,
            },
            temperature_offset_k: 0.0,
            density_factor: 1.0,
        }
    }

    #[inline]
    fn finish(&self, base_temperature_k: f64, pressure_pa: f64) -> AirState {
        let temperature_k = base_temperature_k + self.temperature_offset_k;
        AirState {
            temperature_k,
            pressure_pa,
            density_kgpm3: self.density_factor * pressure_pa / (R_AIR_JPKGK * temperature_k),
            speed_of_sound_mps: (GAMMA_AIR * R_AIR_JPKGK * temperature_k).sqrt(),
        }
    }

    /// Air at `altitude_m`, fast path (table interpolation for ISA).
    #[inline]
    pub fn at(&self, altitude_m: f64) -> AirState {
        let (t, p) = self.base_temperature_pressure(altitude_m);
        self.finish(t, p)
    }

    /// Density alone (kg/m^3), bitwise equal to `at(altitude_m).density_kgpm3`
    /// without the speed of sound's square root, for vehicles that need only
    /// the dynamic pressure.
    #[inline]
    pub fn density_at(&self, altitude_m: f64) -> f64 {
        let (t, p) = self.base_temperature_pressure(altitude_m);
        self.density_factor * p / (R_AIR_JPKGK * (t + self.temperature_offset_k))
    }

    /// Standard (undeviated) temperature and pressure from the table.
    #[inline]
    fn base_temperature_pressure(&self, altitude_m: f64) -> (f64, f64) {
        match self.model {
            AtmosphereModel::Isa => {
                // A multiplication by the reciprocal spacing, not a division:
                // the index and fraction differ only at rounding level.
                let x = altitude_m.clamp(0.0, CEILING_M) * INV_TABLE_STEP_PER_M;
                let t = table();
                let i = (x as usize).min(TABLE_LEN - 2);
                let f = x - i as f64;
                let (a, b) = (t[i], t[i + 1]);
                (a[0] + f * (b[0] - a[0]), a[1] + f * (b[1] - a[1]))
            }
            AtmosphereModel::Uniform {
                temperature_k,
                pressure_pa,
            } => (temperature_k, pressure_pa),
        }
    }

    /// Air at `altitude_m` from the closed-form profile (reference path).
    pub fn exact(&self, altitude_m: f64) -> AirState {
        match self.model {
            AtmosphereModel::Isa => {
                let (t, p) = isa_temperature_pressure(altitude_m);
                self.finish(t, p)
            }
            AtmosphereModel::Uniform {
                temperature_k,
                pressure_pa,
            } => self.finish(temperature_k, pressure_pa),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(a: f64, b: f64) -> f64 {
        ((a - b) / b).abs()
    }

    /// Section 3 table of the model reference.
    #[test]
    fn isa_matches_reference_table() {
        let rows = [
            (0.0, 288.15, 101_325.0, 1.2250, 340.29),
            (5_000.0, 255.65, 54_020.0, 0.73612, 320.53),
            (11_000.0, 216.65, 22_632.0, 0.36392, 295.07),
            (20_000.0, 216.65, 5_474.9, 0.088035, 295.07),
        ];
        let atm = Atmosphere::standard();
        for (h, t, p, rho, a) in rows {
            for air in [atm.exact(h), atm.at(h)] {
                assert!(rel(air.temperature_k, t) < 1e-4, "T at {h}: {air:?}");
                assert!(rel(air.pressure_pa, p) < 1e-4, "p at {h}: {air:?}");
                assert!(rel(air.density_kgpm3, rho) < 1e-4, "rho at {h}: {air:?}");
                assert!(rel(air.speed_of_sound_mps, a) < 1e-4, "a at {h}: {air:?}");
            }
        }
        // Upper layer: +1 K/km; 1171.87 Pa at 30 km geopotential altitude.
        let air = atm.exact(30_000.0);
        assert!(rel(air.temperature_k, 226.65) < 1e-9);
        assert!(rel(air.pressure_pa, 1171.87) < 1e-5, "{air:?}");
    }

    #[test]
    fn isa_is_continuous_at_layer_boundaries() {
        let atm = Atmosphere::standard();
        for h in [TROPOPAUSE_M, STRATOPAUSE_LOW_M] {
            let below = atm.exact(h - 1e-6);
            let above = atm.exact(h + 1e-6);
            assert!(rel(above.pressure_pa, below.pressure_pa) < 1e-6);
            assert!(rel(above.density_kgpm3, below.density_kgpm3) < 1e-6);
            assert!(rel(above.temperature_k, below.temperature_k) < 1e-6);
        }
        // The 20 km base pressure agrees with the published 5474.89 Pa.
        assert!(rel(p20_pa(), 5474.89) < 1e-4);
    }

    #[test]
    fn table_agrees_with_closed_form_everywhere() {
        let atm = Atmosphere::standard();
        let mut worst: f64 = 0.0;
        let mut h = -50.0;
        while h < 33_000.0 {
            let (a, b) = (atm.at(h), atm.exact(h));
            worst = worst
                .max(rel(a.density_kgpm3, b.density_kgpm3))
                .max(rel(a.speed_of_sound_mps, b.speed_of_sound_mps));
            h += 3.7;
        }
        assert!(worst < 1e-6, "worst relative error {worst}");
    }

    #[test]
    fn clamps_outside_the_modelled_band() {
        let atm = Atmosphere::standard();
        assert_eq!(atm.at(-100.0), atm.at(0.0));
        assert_eq!(atm.exact(40_000.0), atm.exact(CEILING_M));
    }

    #[test]
    fn deviations_change_density_and_sound_speed() {
        let nominal = Atmosphere::standard().at(3_000.0);
        let hot = Atmosphere::with_deviations(15.0, 1.0).at(3_000.0);
        assert!(
            rel(
                hot.density_kgpm3,
                nominal.density_kgpm3 * nominal.temperature_k / hot.temperature_k
            ) < 1e-12
        );
        assert!(hot.density_kgpm3 < nominal.density_kgpm3 * 0.96);
        assert!(hot.speed_of_sound_mps > nominal.speed_of_sound_mps);
        let dense = Atmosphere::with_deviations(0.0, 1.1).at(3_000.0);
        assert!(rel(dense.density_kgpm3, 1.1 * nominal.density_kgpm3) < 1e-12);
        assert_eq!(dense.speed_of_sound_mps, nominal.speed_of_sound_mps);
    }

    #[test]
    fn uniform_air_is_what_was_asked_for() {
        let atm = Atmosphere::uniform(1.225, 340.0);
        for h in [0.0, 10_000.0] {
            let air = atm.at(h);
            assert!(rel(air.density_kgpm3, 1.225) < 1e-12);
            assert!(rel(air.speed_of_sound_mps, 340.0) < 1e-12);
        }
    }
}
