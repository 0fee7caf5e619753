//! Scenario configuration: everything one interception task is made of.
//!
//! A scenario is one YAML file under `configs/scenarios/` (`easy`, `medium`,
//! `hard`, `extreme`, `legacy`). It is loaded strictly through
//! [`hlynr_env::config`]: unknown keys are errors naming the key and the
//! nearest valid one, every value is range-checked with its full key path, and
//! every key is consumed by the simulator (there is no constant a key only
//! pretends to set). Missing keys take the documented defaults below.
//!
//! Time structure: physics runs at `physics.physics_rate_hz` (default 100 Hz,
//! RK4); the policy decides at `decision_rate_hz` (default 20 Hz), which must
//! divide the physics rate, so each decision holds its command for
//! `physics_rate_hz / decision_rate_hz` physics steps (action repeat).

use std::path::Path;

use hlynr_env::EnvError;
use hlynr_env::config::{
    ConfigError, Interval, Validate, ensure_range, ensure_span, join_path, resolve, resolve_file,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::guidance::GuidanceConfig;
use crate::physics_config::{PhysicsConfig, Span, ThreatConfig};
use crate::sensor_config::{RadarConfig, SeekerConfig, TrackerConfig};

/// The scenarios shipped with the crate, embedded so a binary finds them
/// wherever it runs.
pub const SHIPPED_SCENARIOS: [(&str, &str); 5] = [
    ("easy", include_str!("../../../configs/scenarios/easy.yaml")),
    (
        "medium",
        include_str!("../../../configs/scenarios/medium.yaml"),
    ),
    ("hard", include_str!("../../../configs/scenarios/hard.yaml")),
    (
        "extreme",
        include_str!("../../../configs/scenarios/extreme.yaml"),
    ),
    (
        "legacy",
        include_str!("../../../configs/scenarios/legacy.yaml"),
    ),
];

/// Cruise threat start: `range_m` (horizontal) from its aim point, flying
/// level toward it at `altitude_m`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CruiseStart {
    /// Initial horizontal range from the aim point (m).
    pub range_m: Span,
    /// Flight altitude (m).
    pub altitude_m: Span,
}

impl Default for CruiseStart {
    fn default() -> Self {
        Self {
            range_m: Span::new(4_000.0, 8_000.0),
            altitude_m: Span::new(50.0, 3_000.0),
        }
    }
}

/// Ballistic threat start: impact conditions at the aim point, back-propagated
/// through the threat's own dynamics so the threat really arrives there.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BallisticStart {
    /// Descent angle below the horizon at impact (deg).
    pub descent_deg: Span,
    /// Time from episode start to impact (s).
    pub time_to_impact_s: Span,
}

impl Default for BallisticStart {
    fn default() -> Self {
        Self {
            descent_deg: Span::new(20.0, 60.0),
            time_to_impact_s: Span::new(10.0, 20.0),
        }
    }
}

/// Box start (the legacy simulator's spawn): position uniform in an
/// axis-aligned box, velocity aimed at the aim point.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BoxStart {
    /// Per-axis position ranges (m, ENU).
    pub position_m: [Span; 3],
}

impl Default for BoxStart {
    fn default() -> Self {
        Self {
            position_m: [Span::new(800.0, 1_500.0); 3],
        }
    }
}

/// How a threat's start state is generated (`spawn: cruise | ballistic | box`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "spawn", rename_all = "snake_case")]
pub enum ThreatSpawn {
    Cruise(CruiseStart),
    Ballistic(BallisticStart),
    Box(BoxStart),
}

impl Default for ThreatSpawn {
    fn default() -> Self {
        ThreatSpawn::Cruise(CruiseStart::default())
    }
}

/// One entry of the threat mix: a class (motion, speed, maneuvers), how it
/// starts, and its relative weight in the draw.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThreatClassConfig {
    /// Relative probability of this class (weights need not sum to 1).
    pub weight: f64,
    /// Radar cross-section (m^2), used by a radar with an SNR model.
    pub rcs_m2: f64,
    /// Motion model, speed (impact speed for ballistic spawns) and maneuvers.
    pub threat: ThreatConfig,
    /// Start-state generation.
    pub start: ThreatSpawn,
}

impl Default for ThreatClassConfig {
    fn default() -> Self {
        Self {
            weight: 1.0,
            rcs_m2: 1.0,
            threat: ThreatConfig::default(),
            start: ThreatSpawn::default(),
        }
    }
}

/// Engagement geometry (model section 4.4).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngagementConfig {
    /// The defended point (m, ENU).
    pub defended_point_m: [f64; 3],
    /// Radius of the horizontal disc around the defended point in which the
    /// threat's aim point is drawn (m); creates crossing geometry.
    pub aim_offset_m: Span,
    /// Approach azimuth seen from the aim point (deg from north, clockwise).
    pub approach_azimuth_deg: Span,
    /// Launcher position, per axis (m).
    pub launcher_position_m: [Span; 3],
    /// Launch heading error: uniform in `[0, max]` about a random axis (deg).
    pub heading_error_max_deg: f64,
    /// Minimum launch elevation (deg).
    pub min_launch_elevation_deg: f64,
    /// Interceptor mean flyout speed used to find the PIP (m/s).
    pub mean_flyout_speed_mps: f64,
    /// PIP search horizon (s).
    pub pip_horizon_s: f64,
    /// Feasibility: reject draws whose PIP lies below this altitude (m); 0 disables.
    pub pip_min_altitude_m: f64,
    /// Feasibility: reject draws whose PIP is further out than this (s).
    pub pip_max_time_s: f64,
    /// Draws tried before the last one is accepted regardless of feasibility.
    pub max_draw_attempts: u32,
    /// `thruster` only: launch velocity per axis (m/s) instead of
    /// `launch_speed_mps` along the launch direction (the legacy spawn).
    pub launch_velocity_mps: Option<[Span; 3]>,
}

impl Default for EngagementConfig {
    fn default() -> Self {
        Self {
            defended_point_m: [0.0, 0.0, 0.0],
            aim_offset_m: Span::new(0.0, 1_000.0),
            approach_azimuth_deg: Span::new(0.0, 360.0),
            launcher_position_m: [Span::fixed(0.0); 3],
            heading_error_max_deg: 20.0,
            min_launch_elevation_deg: 15.0,
            mean_flyout_speed_mps: 700.0,
            pip_horizon_s: 60.0,
            pip_min_altitude_m: 0.0,
            pip_max_time_s: 60.0,
            max_draw_attempts: 100,
            launch_velocity_mps: None,
        }
    }
}

/// Observation layout (see [`crate::observation`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObservationMode {
    /// Line-of-sight frame, rotation invariant (default).
    #[default]
    Los,
    /// World (ENU) frame.
    World,
    /// Interceptor velocity frame.
    Body,
    /// The latest raw radar detection and the interceptor's own state, no
    /// tracker output: the policy has to filter the measurements itself.
    RawRadar,
}

/// Observation settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ObservationConfig {
    pub mode: ObservationMode,
    /// Range that maps to 1 in the log-range feature (`los`, `raw_radar`), and
    /// the position scale of the `world`/`body` modes (m).
    pub max_range_m: f64,
}

impl Default for ObservationConfig {
    fn default() -> Self {
        Self {
            mode: ObservationMode::Los,
            max_range_m: 20_000.0,
        }
    }
}

/// How the action becomes a command.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionMode {
    /// The action is the command: normalised lateral acceleration in the
    /// velocity frame (`aero`), or a thrust vector in the unit ball (`thruster`).
    #[default]
    Direct,
    /// A bounded residual added to the `guidance` law's command.
    Residual,
}

/// Action settings (model section 8.2).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ActionConfig {
    pub mode: ActionMode,
    /// Residual authority `rho`: the residual is `rho a_max u`.
    pub residual_scale: f64,
    /// Add `-P_perp(x_b) g` to every direct command (gravity compensation done
    /// by the env instead of learned). Default false.
    pub gravity_compensation: bool,
}

impl Default for ActionConfig {
    fn default() -> Self {
        Self {
            mode: ActionMode::Direct,
            residual_scale: 0.4,
            gravity_compensation: false,
        }
    }
}

/// Reward weights (model section 8.3).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RewardConfig {
    /// Discount of the training algorithm; the shaping uses it so that the
    /// optimal policy is unchanged.
    pub gamma: f64,
    /// `c_z`: weight of the ZEM potential.
    pub zem_weight: f64,
    /// `c_u`: weight of the effort penalty.
    pub effort_weight: f64,
    /// `B`: bonus for a miss within the kill radius.
    pub hit_bonus: f64,
    /// `C`: weight of `exp(-miss^2 / R_kill^2)`.
    pub miss_weight: f64,
    /// `c_m`: weight of the terminal miss penalty `-c_m ln(1 + miss / R_kill)`.
    /// The ZEM shaping is neutral under discounting and the `C` term vanishes
    /// a few kill radii out, so without it a policy that never comes near has
    /// no reward gradient toward the target; this term gives one at any miss.
    pub miss_log_weight: f64,
    /// `B_fail`: penalty for ground impact, leak or running out of energy.
    pub failure_penalty: f64,
    /// The potential is frozen below this true time-to-go (s).
    pub blind_time_s: f64,
}

impl Default for RewardConfig {
    fn default() -> Self {
        Self {
            gamma: 0.995,
            zem_weight: 1.0,
            effort_weight: 0.03,
            hit_bonus: 10.0,
            miss_weight: 10.0,
            miss_log_weight: 0.0,
            failure_penalty: 3.0,
            blind_time_s: 0.1,
        }
    }
}

/// Termination parameters (model section 9).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TerminationConfig {
    /// The threat leaks when it comes within this distance of the defended point (m).
    pub leak_radius_m: f64,
    /// The interceptor is spent when its motor is out, it is slower than
    /// this and not closing (m/s).
    pub min_speed_mps: f64,
}

impl Default for TerminationConfig {
    fn default() -> Self {
        Self {
            leak_radius_m: 200.0,
            min_speed_mps: 150.0,
        }
    }
}

/// A complete interception scenario.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScenarioConfig {
    /// Name used in reports.
    pub name: String,
    pub physics: PhysicsConfig,
    /// The threat mix; one class is drawn per episode by weight.
    pub threats: Vec<ThreatClassConfig>,
    pub engagement: EngagementConfig,
    pub radar: RadarConfig,
    pub seeker: SeekerConfig,
    pub tracker: TrackerConfig,
    /// Parameters of the classical guidance (baselines and the residual base law).
    pub guidance: GuidanceConfig,
    pub observation: ObservationConfig,
    pub action: ActionConfig,
    pub reward: RewardConfig,
    pub termination: TerminationConfig,
    /// Policy decision rate (Hz); must divide the physics rate.
    pub decision_rate_hz: f64,
    /// Episode time limit (s); reaching it truncates the episode.
    pub time_limit_s: f64,
    /// Success radius: `is_success = miss_distance_m <= kill_radius_m`.
    pub kill_radius_m: f64,
    /// Publish the TRUE threat state in the controller view (perfect-information
    /// upper bounds). The observation is never affected.
    pub oracle: bool,
}

impl Default for ScenarioConfig {
    fn default() -> Self {
        Self {
            name: "custom".to_string(),
            physics: PhysicsConfig::default(),
            threats: vec![ThreatClassConfig::default()],
            engagement: EngagementConfig::default(),
            radar: RadarConfig::default(),
            seeker: SeekerConfig::default(),
            tracker: TrackerConfig::default(),
            guidance: GuidanceConfig::default(),
            observation: ObservationConfig::default(),
            action: ActionConfig::default(),
            reward: RewardConfig::default(),
            termination: TerminationConfig::default(),
            decision_rate_hz: 20.0,
            time_limit_s: 40.0,
            kill_radius_m: 10.0,
            oracle: false,
        }
    }
}

/// Converts a sensor/guidance validation error into a config error at `path`.
fn env_to_config(path: &str, e: EnvError) -> ConfigError {
    ConfigError::invalid(path, e.to_string())
}

impl Validate for ScenarioConfig {
    fn validate(&self, path: &str) -> Result<(), ConfigError> {
        let p = |k: &str| join_path(path, k);
        self.physics.validate(&p("physics"))?;
        if self.threats.is_empty() {
            return Err(ConfigError::invalid(
                p("threats"),
                "list at least one threat class",
            ));
        }
        let mut total = 0.0;
        for (i, c) in self.threats.iter().enumerate() {
            let cp = join_path(&p("threats"), &i.to_string());
            ensure_range(
                &join_path(&cp, "weight"),
                c.weight,
                Interval::closed(0.0, 1e6),
            )?;
            ensure_range(
                &join_path(&cp, "rcs_m2"),
                c.rcs_m2,
                Interval::open_closed(0.0, 1e6),
            )?;
            total += c.weight;
            c.threat.validate(&join_path(&cp, "threat"))?;
            let sp = join_path(&cp, "start");
            match &c.start {
                ThreatSpawn::Cruise(s) => {
                    let r = &s.range_m;
                    ensure_span(
                        &join_path(&sp, "range_m"),
                        r.lo,
                        r.hi,
                        Interval::open_closed(0.0, 1e6),
                    )?;
                    let a = &s.altitude_m;
                    ensure_span(
                        &join_path(&sp, "altitude_m"),
                        a.lo,
                        a.hi,
                        Interval::closed(1.0, 30_000.0),
                    )?;
                }
                ThreatSpawn::Ballistic(s) => {
                    let d = &s.descent_deg;
                    ensure_span(
                        &join_path(&sp, "descent_deg"),
                        d.lo,
                        d.hi,
                        Interval::closed(1.0, 89.0),
                    )?;
                    let t = &s.time_to_impact_s;
                    ensure_span(
                        &join_path(&sp, "time_to_impact_s"),
                        t.lo,
                        t.hi,
                        Interval::open_closed(0.0, 600.0),
                    )?;
                }
                ThreatSpawn::Box(s) => {
                    for (axis, b) in s.position_m.iter().enumerate() {
                        ensure_span(
                            &format!("{sp}.position_m[{axis}]"),
                            b.lo,
                            b.hi,
                            Interval::closed(-1e6, 1e6),
                        )?;
                    }
                    if s.position_m[2].lo < 0.0 {
                        return Err(ConfigError::invalid(
                            format!("{sp}.position_m[2]"),
                            "the threat must start above ground (z >= 0)",
                        ));
                    }
                }
            }
        }
        if total <= 0.0 {
            return Err(ConfigError::invalid(
                p("threats"),
                "the class weights must not all be zero",
            ));
        }
        let e = &self.engagement;
        let ep = p("engagement");
        let q = |k: &str| join_path(&ep, k);
        for (i, v) in e.defended_point_m.iter().enumerate() {
            ensure_range(
                &format!("{}[{i}]", q("defended_point_m")),
                *v,
                Interval::closed(-1e6, 1e6),
            )?;
        }
        ensure_span(
            &q("aim_offset_m"),
            e.aim_offset_m.lo,
            e.aim_offset_m.hi,
            Interval::closed(0.0, 1e5),
        )?;
        ensure_span(
            &q("approach_azimuth_deg"),
            e.approach_azimuth_deg.lo,
            e.approach_azimuth_deg.hi,
            Interval::closed(-720.0, 720.0),
        )?;
        for (i, s) in e.launcher_position_m.iter().enumerate() {
            ensure_span(
                &format!("{}[{i}]", q("launcher_position_m")),
                s.lo,
                s.hi,
                Interval::closed(-1e6, 1e6),
            )?;
        }
        if e.launcher_position_m[2].lo < 0.0 {
            return Err(ConfigError::invalid(
                format!("{}[2]", q("launcher_position_m")),
                "the launcher must be at or above ground (z >= 0)",
            ));
        }
        ensure_range(
            &q("heading_error_max_deg"),
            e.heading_error_max_deg,
            Interval::closed(0.0, 180.0),
        )?;
        ensure_range(
            &q("min_launch_elevation_deg"),
            e.min_launch_elevation_deg,
            Interval::closed(-90.0, 90.0),
        )?;
        ensure_range(
            &q("mean_flyout_speed_mps"),
            e.mean_flyout_speed_mps,
            Interval::open_closed(0.0, 1e4),
        )?;
        ensure_range(
            &q("pip_horizon_s"),
            e.pip_horizon_s,
            Interval::open_closed(0.0, 3600.0),
        )?;
        ensure_range(
            &q("pip_min_altitude_m"),
            e.pip_min_altitude_m,
            Interval::closed(0.0, 1e5),
        )?;
        ensure_range(
            &q("pip_max_time_s"),
            e.pip_max_time_s,
            Interval::open_closed(0.0, 3600.0),
        )?;
        ensure_range(
            &q("max_draw_attempts"),
            f64::from(e.max_draw_attempts),
            Interval::closed(1.0, 1e6),
        )?;
        if let Some(v) = &e.launch_velocity_mps {
            for (i, s) in v.iter().enumerate() {
                ensure_span(
                    &format!("{}[{i}]", q("launch_velocity_mps")),
                    s.lo,
                    s.hi,
                    Interval::closed(-1e4, 1e4),
                )?;
            }
            if matches!(
                self.physics.interceptor,
                crate::physics_config::InterceptorConfig::Aero(_)
            ) {
                return Err(ConfigError::invalid(
                    q("launch_velocity_mps"),
                    "applies to the `thruster` interceptor only (an `aero` interceptor launches along \
                     the launch direction at `physics.interceptor.launch_speed_mps`)",
                ));
            }
        }
        self.radar
            .validate()
            .map_err(|e| env_to_config(&p("radar"), e))?;
        self.seeker
            .validate()
            .map_err(|e| env_to_config(&p("seeker"), e))?;
        self.tracker
            .validate()
            .map_err(|e| env_to_config(&p("tracker"), e))?;
        self.guidance
            .validate()
            .map_err(|e| env_to_config(&p("guidance"), e))?;
        crate::guidance::law_from_name(&self.guidance.law, &self.guidance)
            .map_err(|e| env_to_config(&p("guidance.law"), e))?;
        ensure_range(
            &p("observation.max_range_m"),
            self.observation.max_range_m,
            Interval::open_closed(1.0, 1e7),
        )?;
        if self.observation.mode == ObservationMode::RawRadar
            && self.action.mode == ActionMode::Residual
        {
            // The residual's base law flies on the tracker estimate, which would
            // put the filtering back into the loop that `raw_radar` removes.
            return Err(ConfigError::invalid(
                p("action.mode"),
                "`residual` adds the tracker-driven guidance law to the action; \
                 `observation.mode: raw_radar` needs `action.mode: direct` so the policy \
                 does its own filtering",
            ));
        }
        ensure_range(
            &p("action.residual_scale"),
            self.action.residual_scale,
            Interval::closed(0.0, 2.0),
        )?;
        let r = &self.reward;
        let rp = p("reward");
        let w = |k: &str| join_path(&rp, k);
        ensure_range(&w("gamma"), r.gamma, Interval::closed(0.0, 1.0))?;
        let weight = Interval::closed(0.0, 1e6);
        ensure_range(&w("zem_weight"), r.zem_weight, weight)?;
        ensure_range(&w("effort_weight"), r.effort_weight, weight)?;
        ensure_range(&w("hit_bonus"), r.hit_bonus, weight)?;
        ensure_range(&w("miss_weight"), r.miss_weight, weight)?;
        ensure_range(&w("miss_log_weight"), r.miss_log_weight, weight)?;
        ensure_range(&w("failure_penalty"), r.failure_penalty, weight)?;
        ensure_range(
            &w("blind_time_s"),
            r.blind_time_s,
            Interval::closed(0.0, 10.0),
        )?;
        ensure_range(
            &p("termination.leak_radius_m"),
            self.termination.leak_radius_m,
            Interval::closed(0.0, 1e6),
        )?;
        ensure_range(
            &p("termination.min_speed_mps"),
            self.termination.min_speed_mps,
            Interval::closed(0.0, 1e4),
        )?;
        ensure_range(
            &p("decision_rate_hz"),
            self.decision_rate_hz,
            Interval::open_closed(0.0, self.physics.physics_rate_hz),
        )?;
        let ratio = self.physics.physics_rate_hz / self.decision_rate_hz;
        if (ratio - ratio.round()).abs() > 1e-9 {
            return Err(ConfigError::invalid(
                p("decision_rate_hz"),
                format!(
                    "must divide physics.physics_rate_hz = {} Hz (got {} Hz, ratio {ratio})",
                    self.physics.physics_rate_hz, self.decision_rate_hz
                ),
            ));
        }
        ensure_range(
            &p("time_limit_s"),
            self.time_limit_s,
            Interval::open_closed(0.0, 3600.0),
        )?;
        ensure_range(
            &p("kill_radius_m"),
            self.kill_radius_m,
            Interval::open_closed(0.0, 1e5),
        )?;
        Ok(())
    }
}

impl ScenarioConfig {
    /// Physics steps per decision (the action repeat).
    pub fn substeps(&self) -> usize {
        (self.physics.physics_rate_hz / self.decision_rate_hz).round() as usize
    }

    /// Parses and validates YAML text with `--set key=value` overrides.
    /// Returns the config and its resolved form (every default filled in).
    pub fn from_yaml<S: AsRef<str>>(
        text: &str,
        source_name: &str,
        overrides: &[S],
    ) -> Result<(Self, Value), ConfigError> {
        resolve(text, source_name, overrides)
    }

    /// Loads a scenario by name or by file path. A name of a shipped tier
    /// (`easy`, `medium`, ...) is the copy built into the binary, so every
    /// binary, wherever it runs, means the same scenario by the same name; any
    /// other argument is a YAML file (write `./easy` for a file named like a
    /// tier).
    pub fn load(name_or_path: &str) -> Result<Self, ConfigError> {
        Self::load_resolved::<&str>(name_or_path, &[]).map(|(c, _)| c)
    }

    /// [`ScenarioConfig::load`] with overrides; also returns the resolved config.
    pub fn load_resolved<S: AsRef<str>>(
        name_or_path: &str,
        overrides: &[S],
    ) -> Result<(Self, Value), ConfigError> {
        if let Some((_, text)) = SHIPPED_SCENARIOS.iter().find(|(n, _)| *n == name_or_path) {
            return resolve(
                text,
                &format!(
                    "scenario `{name_or_path}` (configs/scenarios/{name_or_path}.yaml, built in)"
                ),
                overrides,
            );
        }
        let path = Path::new(name_or_path);
        if path.is_file() {
            return resolve_file(path, overrides);
        }
        let names: Vec<&str> = SHIPPED_SCENARIOS.iter().map(|(n, _)| *n).collect();
        let mut message =
            format!("`{name_or_path}` is neither a shipped scenario nor a scenario file");
        if let Some(s) = hlynr_env::config::suggest(name_or_path, names.iter().copied()) {
            message.push_str(&format!("; did you mean `{s}`?"));
        }
        message.push_str(&format!(" (shipped: {})", names.join(", ")));
        Err(ConfigError::invalid("scenario", message))
    }
}
