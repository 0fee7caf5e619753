//! Configuration of the physics: interceptor, threat, maneuvers, wind,
//! integration rate and domain randomisation.
//!
//! Keys carry their unit (`_m`, `_mps`, `_s`, `_deg`, `_g`, `_kg`, `_n`);
//! degrees and g are converted to SI once, when the per-episode parameters are
//! built. Every struct rejects unknown keys, and [`Validate`] checks every
//! value, naming the full key path on error. A range key takes either one
//! number or a `[low, high]` pair; episodes draw uniformly from it.
//!
//! Domain randomisation: [`PhysicsConfig::sample_randomization`] draws one
//! factor per randomised quantity per episode (i.i.d., always starting from the
//! nominal config, so nothing accumulates), and the `build_*` functions apply
//! every factor to the parameters they return:
//! - `drag_factor` multiplies every drag coefficient (interceptor tables,
//!   induced drag, thruster CD) and divides the threat ballistic coefficient;
//! - `mass_factor` multiplies the interceptor's inert mass (burnout / dry);
//! - `thrust_factor` multiplies the interceptor thrust; an `aero` motor keeps
//!   its total impulse (stage durations scale by `1/factor`, as a hot solid
//!   motor burns harder and shorter), a `thruster` has a larger `F_max`;
//! - `wind_factor` multiplies the mean wind speed and the gust sigma;
//! - `density_factor` and `temperature_offset_k` set the atmosphere.

use hlynr_env::config::{ConfigError, Interval, Validate, ensure_range, ensure_span, join_path};
use hlynr_rng::Rng;
use serde::{Deserialize, Serialize};

use crate::atmosphere::Atmosphere;
use crate::integrate::World;
use crate::interceptor::{AeroParams, DragTable, MotorStage, ThrusterParams};
use crate::threat::{AltitudeHold, Maneuver, ManeuverCapability, ManeuverKind, ThreatMotion};
use crate::units::{G0_MPS2, deg_to_rad, g_to_mps2};
use crate::wind::WindParams;

/// A value range `[lo, hi]`; written as one number (fixed) or a pair.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(from = "SpanRepr", into = "[f64; 2]")]
pub struct Span {
    pub lo: f64,
    pub hi: f64,
}

#[derive(Deserialize)]
#[serde(untagged, expecting = "a number or a [low, high] pair of numbers")]
enum SpanRepr {
    One(f64),
    Two([f64; 2]),
}

impl From<SpanRepr> for Span {
    fn from(r: SpanRepr) -> Self {
        match r {
            SpanRepr::One(x) => Span { lo: x, hi: x },
            SpanRepr::Two([lo, hi]) => Span { lo, hi },
        }
    }
}

impl From<Span> for [f64; 2] {
    fn from(s: Span) -> Self {
        [s.lo, s.hi]
    }
}

impl Span {
    /// A fixed value.
    pub const fn fixed(x: f64) -> Self {
        Self { lo: x, hi: x }
    }
    /// `[lo, hi]`.
    pub const fn new(lo: f64, hi: f64) -> Self {
        Self { lo, hi }
    }
    /// One uniform draw (always consumes one draw, so stream positions do not
    /// depend on whether the range is degenerate).
    pub fn sample(&self, rng: &mut Rng) -> f64 {
        let u = rng.uniform();
        self.lo + (self.hi - self.lo) * u
    }
    fn check(&self, path: &str, interval: Interval) -> Result<(), ConfigError> {
        ensure_span(path, self.lo, self.hi, interval)
    }
}

/// One motor stage in the config.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageConfig {
    pub duration_s: f64,
    pub thrust_n: f64,
}

/// Zero-lift drag table in the config.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DragTableConfig {
    pub mach: Vec<f64>,
    pub cd0: Vec<f64>,
    pub base_drag: Vec<f64>,
}

impl Default for DragTableConfig {
    fn default() -> Self {
        let t = DragTable::slender_body();
        Self {
            mach: t.mach,
            cd0: t.cd0,
            base_drag: t.base_drag,
        }
    }
}

/// The `aero` interceptor. Defaults: the agile short-range interceptor of
/// the model reference (90 kg, 0.16 m, boost 3 s at 23.5 kN, sustain 6 s at
/// 1.96 kN, Isp 240 s, about 55 kg at burnout, CL_max 3.5, 40 g, 10 deg TVC,
/// 0.15 s autopilot).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AeroConfig {
    pub launch_mass_kg: f64,
    pub diameter_m: f64,
    pub isp_s: f64,
    /// Motor stages in order (boost, optional sustain); coast afterwards.
    pub stages: Vec<StageConfig>,
    pub drag_table: DragTableConfig,
    pub cl_max: f64,
    pub k_induced: f64,
    pub max_accel_g: f64,
    /// Thrust-vector deflection limit; 0 disables TVC.
    pub tvc_max_deg: f64,
    pub autopilot_tau_s: f64,
    /// Rail-exit speed (> 0 so the body axis is defined at launch).
    pub launch_speed_mps: f64,
}

impl Default for AeroConfig {
    fn default() -> Self {
        Self {
            launch_mass_kg: 90.0,
            diameter_m: 0.16,
            isp_s: 240.0,
            stages: vec![
                StageConfig {
                    duration_s: 3.0,
                    thrust_n: 23_500.0,
                },
                StageConfig {
                    duration_s: 6.0,
                    thrust_n: 1_960.0,
                },
            ],
            drag_table: DragTableConfig::default(),
            cl_max: 3.5,
            k_induced: 0.03,
            max_accel_g: 40.0,
            tvc_max_deg: 10.0,
            autopilot_tau_s: 0.15,
            launch_speed_mps: 30.0,
        }
    }
}

/// The `thruster` interceptor. Defaults: a small drone-defence interceptor
/// (4 kg dry, 1 kg propellant, 120 N, Isp 220 s, about 30 s at full thrust).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThrusterConfig {
    pub dry_mass_kg: f64,
    pub propellant_kg: f64,
    pub max_thrust_n: f64,
    pub thrust_tau_s: f64,
    pub isp_s: f64,
    pub drag_coefficient: f64,
    pub reference_area_m2: f64,
    pub launch_speed_mps: f64,
}

impl Default for ThrusterConfig {
    fn default() -> Self {
        Self {
            dry_mass_kg: 4.0,
            propellant_kg: 1.0,
            max_thrust_n: 120.0,
            thrust_tau_s: 0.05,
            isp_s: 220.0,
            drag_coefficient: 0.5,
            reference_area_m2: 0.02,
            launch_speed_mps: 20.0,
        }
    }
}

/// Which interceptor model to fly, selected by `model: aero | thruster`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "model", rename_all = "snake_case")]
pub enum InterceptorConfig {
    Aero(AeroConfig),
    Thruster(ThrusterConfig),
}

impl Default for InterceptorConfig {
    fn default() -> Self {
        InterceptorConfig::Aero(AeroConfig::default())
    }
}

/// Wind ranges; each episode draws one mean wind and gust level.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WindConfig {
    /// Mean wind at 10 m (default 0: calm).
    pub reference_speed_mps: Span,
    /// Direction the wind blows toward, from north clockwise (default any).
    pub direction_deg: Span,
    /// Power-law exponent (default 1/7).
    pub shear_exponent: f64,
    /// Gust standard deviation per axis (default 0: no gusts).
    pub gust_sigma_mps: Span,
    /// Gust correlation length (default 300 m).
    pub gust_length_m: Span,
}

impl Default for WindConfig {
    fn default() -> Self {
        Self {
            reference_speed_mps: Span::fixed(0.0),
            direction_deg: Span::new(0.0, 360.0),
            shear_exponent: 1.0 / 7.0,
            gust_sigma_mps: Span::fixed(0.0),
            gust_length_m: Span::fixed(300.0),
        }
    }
}

/// Domain-randomisation ranges (defaults: all nominal).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RandomizationConfig {
    pub drag_factor: Span,
    pub mass_factor: Span,
    pub thrust_factor: Span,
    pub wind_factor: Span,
    pub density_factor: Span,
    pub temperature_offset_k: Span,
}

impl Default for RandomizationConfig {
    fn default() -> Self {
        Self {
            drag_factor: Span::fixed(1.0),
            mass_factor: Span::fixed(1.0),
            thrust_factor: Span::fixed(1.0),
            wind_factor: Span::fixed(1.0),
            density_factor: Span::fixed(1.0),
            temperature_offset_k: Span::fixed(0.0),
        }
    }
}

/// One episode's randomisation draw (record it with the episode).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RandomizationSample {
    pub drag_factor: f64,
    pub mass_factor: f64,
    pub thrust_factor: f64,
    pub wind_factor: f64,
    pub density_factor: f64,
    pub temperature_offset_k: f64,
}

impl RandomizationSample {
    /// Every factor nominal.
    pub const NOMINAL: Self = Self {
        drag_factor: 1.0,
        mass_factor: 1.0,
        thrust_factor: 1.0,
        wind_factor: 1.0,
        density_factor: 1.0,
        temperature_offset_k: 0.0,
    };
}

/// The physics block of an env config.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PhysicsConfig {
    /// Physics integration rate (default 100 Hz).
    pub physics_rate_hz: f64,
    pub interceptor: InterceptorConfig,
    pub wind: WindConfig,
    pub randomization: RandomizationConfig,
}

impl Default for PhysicsConfig {
    fn default() -> Self {
        Self {
            physics_rate_hz: 100.0,
            interceptor: InterceptorConfig::default(),
            wind: WindConfig::default(),
            randomization: RandomizationConfig::default(),
        }
    }
}

impl PhysicsConfig {
    /// Physics step (s).
    pub fn step_s(&self) -> f64 {
        1.0 / self.physics_rate_hz
    }

    /// Draws one episode's randomisation factors (fixed order: drag, mass,
    /// thrust, wind, density, temperature).
    pub fn sample_randomization(&self, rng: &mut Rng) -> RandomizationSample {
        let r = &self.randomization;
        RandomizationSample {
            drag_factor: r.drag_factor.sample(rng),
            mass_factor: r.mass_factor.sample(rng),
            thrust_factor: r.thrust_factor.sample(rng),
            wind_factor: r.wind_factor.sample(rng),
            density_factor: r.density_factor.sample(rng),
            temperature_offset_k: r.temperature_offset_k.sample(rng),
        }
    }

    /// The world (atmosphere with its deviations, standard gravity).
    pub fn build_world(&self, dr: &RandomizationSample) -> World {
        World {
            atmosphere: Atmosphere::with_deviations(dr.temperature_offset_k, dr.density_factor),
            ..World::standard()
        }
    }

    /// One episode's wind (draws speed, direction, gust sigma, gust length).
    pub fn build_wind(&self, dr: &RandomizationSample, rng: &mut Rng) -> WindParams {
        let w = &self.wind;
        WindParams {
            reference_speed_mps: dr.wind_factor * w.reference_speed_mps.sample(rng),
            direction_rad: deg_to_rad(w.direction_deg.sample(rng)),
            shear_exponent: w.shear_exponent,
            gust_sigma_mps: dr.wind_factor * w.gust_sigma_mps.sample(rng),
            gust_length_m: w.gust_length_m.sample(rng),
        }
    }
}

impl AeroConfig {
    /// SI parameters with the randomisation applied.
    pub fn build(&self, dr: &RandomizationSample) -> AeroParams {
        let exhaust_speed = self.isp_s * G0_MPS2;
        let mut end = 0.0;
        let stages = self
            .stages
            .iter()
            .map(|s| {
                let thrust = s.thrust_n * dr.thrust_factor;
                let duration = s.duration_s / dr.thrust_factor;
                end += duration;
                MotorStage {
                    end_time_s: end,
                    thrust_n: thrust,
                    mass_flow_kgps: thrust / exhaust_speed,
                }
            })
            .collect();
        let nominal_propellant: f64 = self
            .stages
            .iter()
            .map(|s| s.thrust_n * s.duration_s / exhaust_speed)
            .sum();
        let inert = self.launch_mass_kg - nominal_propellant;
        let scale = |v: &[f64]| v.iter().map(|c| c * dr.drag_factor).collect::<Vec<f64>>();
        AeroParams {
            burnout_mass_kg: inert * dr.mass_factor,
            reference_area_m2: std::f64::consts::PI * self.diameter_m * self.diameter_m / 4.0,
            stages,
            drag: DragTable {
                mach: self.drag_table.mach.clone(),
                cd0: scale(&self.drag_table.cd0),
                base_drag: scale(&self.drag_table.base_drag),
            },
            cl_max: self.cl_max,
            k_induced: self.k_induced * dr.drag_factor,
            max_structural_accel_mps2: g_to_mps2(self.max_accel_g),
            tvc_sin: deg_to_rad(self.tvc_max_deg).sin(),
            autopilot_tau_s: self.autopilot_tau_s,
        }
    }

    fn propellant_kg(&self) -> f64 {
        self.stages
            .iter()
            .map(|s| s.thrust_n * s.duration_s / (self.isp_s * G0_MPS2))
            .sum()
    }
}

impl ThrusterConfig {
    /// SI parameters with the randomisation applied.
    pub fn build(&self, dr: &RandomizationSample) -> ThrusterParams {
        ThrusterParams {
            dry_mass_kg: self.dry_mass_kg * dr.mass_factor,
            propellant_mass_kg: self.propellant_kg,
            max_thrust_n: self.max_thrust_n * dr.thrust_factor,
            thrust_tau_s: self.thrust_tau_s,
            isp_s: self.isp_s,
            drag_coefficient: self.drag_coefficient * dr.drag_factor,
            reference_area_m2: self.reference_area_m2,
        }
    }
}

impl Validate for AeroConfig {
    fn validate(&self, path: &str) -> Result<(), ConfigError> {
        let p = |k: &str| join_path(path, k);
        ensure_range(
            &p("launch_mass_kg"),
            self.launch_mass_kg,
            Interval::open_closed(0.0, 1e5),
        )?;
        ensure_range(
            &p("diameter_m"),
            self.diameter_m,
            Interval::open_closed(0.0, 5.0),
        )?;
        ensure_range(&p("isp_s"), self.isp_s, Interval::closed(50.0, 500.0))?;
        for (i, s) in self.stages.iter().enumerate() {
            let sp = join_path(&p("stages"), &i.to_string());
            ensure_range(
                &join_path(&sp, "duration_s"),
                s.duration_s,
                Interval::open_closed(0.0, 600.0),
            )?;
            ensure_range(
                &join_path(&sp, "thrust_n"),
                s.thrust_n,
                Interval::closed(0.0, 1e7),
            )?;
        }
        let propellant = self.propellant_kg();
        if propellant >= 0.9 * self.launch_mass_kg {
            return Err(ConfigError::invalid(
                p("stages"),
                format!(
                    "the motor burns {propellant:.3} kg of propellant (thrust x duration / (isp_s g0)), \
                     which leaves less than 10 % of launch_mass_kg = {} kg as structure",
                    self.launch_mass_kg
                ),
            ));
        }
        let t = &self.drag_table;
        let tp = p("drag_table");
        if t.mach.is_empty() || t.cd0.len() != t.mach.len() || t.base_drag.len() != t.mach.len() {
            return Err(ConfigError::invalid(
                tp,
                format!(
                    "mach, cd0 and base_drag must be non-empty and of equal length (got {}, {}, {})",
                    t.mach.len(),
                    t.cd0.len(),
                    t.base_drag.len()
                ),
            ));
        }
        for i in 0..t.mach.len() {
            ensure_range(
                &format!("{tp}.mach[{i}]"),
                t.mach[i],
                Interval::closed(0.0, 30.0),
            )?;
            if i > 0 && t.mach[i] <= t.mach[i - 1] {
                return Err(ConfigError::invalid(
                    format!("{tp}.mach[{i}]"),
                    "Mach values must be strictly increasing",
                ));
            }
            ensure_range(
                &format!("{tp}.cd0[{i}]"),
                t.cd0[i],
                Interval::closed(0.0, 10.0),
            )?;
            ensure_range(
                &format!("{tp}.base_drag[{i}]"),
                t.base_drag[i],
                Interval::closed(0.0, 10.0),
            )?;
        }
        ensure_range(&p("cl_max"), self.cl_max, Interval::closed(0.0, 50.0))?;
        ensure_range(&p("k_induced"), self.k_induced, Interval::closed(0.0, 1.0))?;
        ensure_range(
            &p("max_accel_g"),
            self.max_accel_g,
            Interval::open_closed(0.0, 1000.0),
        )?;
        ensure_range(
            &p("tvc_max_deg"),
            self.tvc_max_deg,
            Interval::closed(0.0, 45.0),
        )?;
        ensure_range(
            &p("autopilot_tau_s"),
            self.autopilot_tau_s,
            Interval::closed(1e-3, 5.0),
        )?;
        ensure_range(
            &p("launch_speed_mps"),
            self.launch_speed_mps,
            Interval::open_closed(0.0, 5000.0),
        )?;
        Ok(())
    }
}

impl Validate for ThrusterConfig {
    fn validate(&self, path: &str) -> Result<(), ConfigError> {
        let p = |k: &str| join_path(path, k);
        ensure_range(
            &p("dry_mass_kg"),
            self.dry_mass_kg,
            Interval::open_closed(0.0, 1e5),
        )?;
        ensure_range(
            &p("propellant_kg"),
            self.propellant_kg,
            Interval::closed(0.0, 1e5),
        )?;
        ensure_range(
            &p("max_thrust_n"),
            self.max_thrust_n,
            Interval::open_closed(0.0, 1e7),
        )?;
        ensure_range(
            &p("thrust_tau_s"),
            self.thrust_tau_s,
            Interval::closed(1e-3, 5.0),
        )?;
        ensure_range(&p("isp_s"), self.isp_s, Interval::closed(50.0, 5000.0))?;
        ensure_range(
            &p("drag_coefficient"),
            self.drag_coefficient,
            Interval::closed(0.0, 10.0),
        )?;
        ensure_range(
            &p("reference_area_m2"),
            self.reference_area_m2,
            Interval::closed(0.0, 100.0),
        )?;
        ensure_range(
            &p("launch_speed_mps"),
            self.launch_speed_mps,
            Interval::closed(0.0, 5000.0),
        )?;
        Ok(())
    }
}

impl Validate for PhysicsConfig {
    fn validate(&self, path: &str) -> Result<(), ConfigError> {
        let p = |k: &str| join_path(path, k);
        ensure_range(
            &p("physics_rate_hz"),
            self.physics_rate_hz,
            Interval::closed(10.0, 10_000.0),
        )?;
        match &self.interceptor {
            InterceptorConfig::Aero(a) => a.validate(&p("interceptor"))?,
            InterceptorConfig::Thruster(t) => t.validate(&p("interceptor"))?,
        }
        let w = &self.wind;
        let wp = p("wind");
        w.reference_speed_mps.check(
            &join_path(&wp, "reference_speed_mps"),
            Interval::closed(0.0, 100.0),
        )?;
        w.direction_deg.check(
            &join_path(&wp, "direction_deg"),
            Interval::closed(-360.0, 720.0),
        )?;
        ensure_range(
            &join_path(&wp, "shear_exponent"),
            w.shear_exponent,
            Interval::closed(0.0, 1.0),
        )?;
        w.gust_sigma_mps.check(
            &join_path(&wp, "gust_sigma_mps"),
            Interval::closed(0.0, 30.0),
        )?;
        w.gust_length_m.check(
            &join_path(&wp, "gust_length_m"),
            Interval::open_closed(0.0, 1e5),
        )?;
        let r = &self.randomization;
        let rp = p("randomization");
        let factor = Interval::closed(0.1, 10.0);
        r.drag_factor
            .check(&join_path(&rp, "drag_factor"), factor)?;
        r.mass_factor
            .check(&join_path(&rp, "mass_factor"), factor)?;
        r.thrust_factor
            .check(&join_path(&rp, "thrust_factor"), factor)?;
        r.wind_factor
            .check(&join_path(&rp, "wind_factor"), Interval::closed(0.0, 10.0))?;
        r.density_factor
            .check(&join_path(&rp, "density_factor"), factor)?;
        r.temperature_offset_k.check(
            &join_path(&rp, "temperature_offset_k"),
            Interval::closed(-60.0, 60.0),
        )?;
        Ok(())
    }
}

/// How the maneuver level is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccelDistribution {
    /// Uniform over `accel_g`.
    Uniform,
    /// 50 % at the top of `accel_g`, 50 % uniform over `[0, top]`.
    Mixture,
}

/// Maneuver draws of a threat class.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ManeuverConfig {
    /// Patterns, one drawn uniformly per episode (default none).
    pub patterns: Vec<ManeuverKind>,
    pub accel_g: Span,
    pub accel_distribution: AccelDistribution,
    pub omega_radps: Span,
    pub jink_rate_hz: Span,
    pub onset_s: Span,
    /// Maneuver duration; a value above 1e6 s means "until the end".
    pub duration_s: Span,
    /// Below this threat altitude the maneuver is kept horizontal.
    pub horizontal_below_m: f64,
}

impl Default for ManeuverConfig {
    fn default() -> Self {
        Self {
            patterns: vec![ManeuverKind::None],
            accel_g: Span::new(2.0, 4.0),
            accel_distribution: AccelDistribution::Uniform,
            omega_radps: Span::new(1.0, 3.0),
            jink_rate_hz: Span::new(0.2, 1.0),
            onset_s: Span::new(0.0, 8.0),
            duration_s: Span::fixed(1e9),
            horizontal_below_m: 300.0,
        }
    }
}

impl Validate for ManeuverConfig {
    fn validate(&self, path: &str) -> Result<(), ConfigError> {
        let p = |k: &str| join_path(path, k);
        if self.patterns.is_empty() {
            return Err(ConfigError::invalid(
                p("patterns"),
                "list at least one pattern (`none` for no maneuver)",
            ));
        }
        self.accel_g
            .check(&p("accel_g"), Interval::closed(0.0, 100.0))?;
        self.omega_radps
            .check(&p("omega_radps"), Interval::closed(0.0, 50.0))?;
        self.jink_rate_hz
            .check(&p("jink_rate_hz"), Interval::closed(0.0, 50.0))?;
        self.onset_s
            .check(&p("onset_s"), Interval::closed(0.0, 1e4))?;
        self.duration_s
            .check(&p("duration_s"), Interval::open_closed(0.0, 1e12))?;
        ensure_range(
            &p("horizontal_below_m"),
            self.horizontal_below_m,
            Interval::closed(0.0, 1e5),
        )?;
        Ok(())
    }
}

impl ManeuverConfig {
    /// Draws one episode's maneuver for a threat at `altitude_m` (fixed draw
    /// order: pattern, level, omega, phase, jink rate, onset, duration,
    /// direction, initial sign).
    pub fn sample(&self, altitude_m: f64, rng: &mut Rng) -> Maneuver {
        let kind = self.patterns[rng.below(self.patterns.len() as u64) as usize];
        let top = self.accel_g.hi;
        let level_g = match self.accel_distribution {
            AccelDistribution::Uniform => self.accel_g.sample(rng),
            AccelDistribution::Mixture => {
                let at_top = rng.uniform() < 0.5;
                let u = rng.uniform();
                if at_top { top } else { top * u }
            }
        };
        let omega = self.omega_radps.sample(rng);
        let phase = std::f64::consts::TAU * rng.uniform();
        let jink = self.jink_rate_hz.sample(rng);
        let onset = self.onset_s.sample(rng);
        let duration = self.duration_s.sample(rng);
        let direction = std::f64::consts::TAU * rng.uniform();
        let sign = if rng.uniform() < 0.5 { -1.0 } else { 1.0 };
        Maneuver {
            kind,
            accel_mps2: g_to_mps2(level_g),
            omega_radps: omega,
            phase_rad: phase,
            jink_rate_hz: jink,
            onset_s: onset,
            end_s: if duration > 1e6 {
                f64::INFINITY
            } else {
                onset + duration
            },
            direction_rad: direction,
            horizontal_only: altitude_m < self.horizontal_below_m,
            active: false,
            sign,
        }
    }
}

/// Threat motion class.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThreatKind {
    Ballistic,
    Cruise,
}

/// A threat class: motion, capability and maneuvers. Defaults: a subsonic
/// cruise threat (200 to 280 m/s) with a 5 g structural limit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThreatConfig {
    pub kind: ThreatKind,
    pub speed_mps: Span,
    /// Ballistic only.
    pub ballistic_coefficient_kgpm2: Span,
    /// Cruise only: hold the initial altitude with a PD loop.
    pub altitude_hold: bool,
    pub hold_kp_per_s2: f64,
    pub hold_kd_per_s: f64,
    /// Structural maneuver limit.
    pub max_accel_g: f64,
    /// Maneuver available at `reference_dynamic_pressure_pa`; 0 disables the
    /// dynamic-pressure limit.
    pub reference_accel_g: f64,
    pub reference_dynamic_pressure_pa: f64,
    pub maneuver: ManeuverConfig,
}

impl Default for ThreatConfig {
    fn default() -> Self {
        Self {
            kind: ThreatKind::Cruise,
            speed_mps: Span::new(200.0, 280.0),
            ballistic_coefficient_kgpm2: Span::new(5_000.0, 20_000.0),
            altitude_hold: true,
            hold_kp_per_s2: 0.05,
            hold_kd_per_s: 0.5,
            max_accel_g: 5.0,
            reference_accel_g: 0.0,
            reference_dynamic_pressure_pa: 50_000.0,
            maneuver: ManeuverConfig::default(),
        }
    }
}

impl Validate for ThreatConfig {
    fn validate(&self, path: &str) -> Result<(), ConfigError> {
        let p = |k: &str| join_path(path, k);
        self.speed_mps
            .check(&p("speed_mps"), Interval::open_closed(0.0, 10_000.0))?;
        self.ballistic_coefficient_kgpm2.check(
            &p("ballistic_coefficient_kgpm2"),
            Interval::open_closed(0.0, 1e7),
        )?;
        ensure_range(
            &p("hold_kp_per_s2"),
            self.hold_kp_per_s2,
            Interval::closed(0.0, 10.0),
        )?;
        ensure_range(
            &p("hold_kd_per_s"),
            self.hold_kd_per_s,
            Interval::closed(0.0, 10.0),
        )?;
        ensure_range(
            &p("max_accel_g"),
            self.max_accel_g,
            Interval::closed(0.0, 100.0),
        )?;
        ensure_range(
            &p("reference_accel_g"),
            self.reference_accel_g,
            Interval::closed(0.0, 1000.0),
        )?;
        ensure_range(
            &p("reference_dynamic_pressure_pa"),
            self.reference_dynamic_pressure_pa,
            Interval::open_closed(0.0, 1e8),
        )?;
        self.maneuver.validate(&p("maneuver"))
    }
}

impl ThreatConfig {
    /// Draws the motion model for one episode (speed, then ballistic
    /// coefficient; both always drawn). `altitude_m` is the cruise altitude to
    /// hold. The drag factor divides the ballistic coefficient.
    pub fn sample_motion(
        &self,
        altitude_m: f64,
        dr: &RandomizationSample,
        rng: &mut Rng,
    ) -> (ThreatMotion, f64) {
        let speed = self.speed_mps.sample(rng);
        let beta = self.ballistic_coefficient_kgpm2.sample(rng) / dr.drag_factor;
        let motion = match self.kind {
            ThreatKind::Ballistic => ThreatMotion::Ballistic {
                ballistic_coefficient_kgpm2: beta,
            },
            ThreatKind::Cruise => ThreatMotion::Cruise {
                speed_mps: speed,
                altitude_hold: self.altitude_hold.then_some(AltitudeHold {
                    commanded_altitude_m: altitude_m,
                    kp_per_s2: self.hold_kp_per_s2,
                    kd_per_s: self.hold_kd_per_s,
                }),
            },
        };
        (motion, speed)
    }

    /// The maneuver capability in SI.
    pub fn capability(&self) -> ManeuverCapability {
        if self.reference_accel_g == 0.0 {
            ManeuverCapability::unlimited(g_to_mps2(self.max_accel_g))
        } else {
            ManeuverCapability {
                max_accel_mps2: g_to_mps2(self.max_accel_g),
                reference_accel_mps2: g_to_mps2(self.reference_accel_g),
                reference_dynamic_pressure_pa: self.reference_dynamic_pressure_pa,
            }
        }
    }
}
