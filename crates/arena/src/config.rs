//! `env.settings` of the arena: the game's rules as numbers.
//!
//! Defaults are the browser game's (see `docs/arena.md`): a 300 px arena at
//! 60 ticks per second, 6 prey at 2.2 px/tick, 2 predators at 1.8 px/tick with
//! one more every 10 s on an interval shrinking 5% each time, 15 stars, a
//! special costing 5 energy that lasts 60 ticks and kills predators within
//! 50 px, and the reward table. Where the game's source left a number
//! unstated (energy per star, the reproduction cost, the starvation limit,
//! body sizes, the population caps) the value chosen here is documented
//! beside the key.

use serde::{Deserialize, Serialize};

/// The rules of one arena world.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ArenaConfig {
    /// Radius of the circular arena, px.
    pub arena_radius_px: f64,
    /// Game length in ticks (60 per second): 18,000 is the game's 300 s.
    /// A run sets it with `env.max_episode_steps`.
    #[serde(skip)]
    pub max_ticks: u32,
    /// Prey alive at the start of a game.
    pub initial_prey: usize,
    /// Most prey alive at once (agent slots per world); a birth with every
    /// slot taken does not happen.
    pub max_prey: usize,
    /// Prey speed at full stick, px/tick.
    pub prey_speed_px: f64,
    /// Prey body radius, px.
    pub prey_radius_px: f64,
    /// Predators at the start of a game.
    pub initial_predators: usize,
    /// Most predators alive at once: past it, spawns are skipped.
    pub max_predators: usize,
    /// Predator speed, px/tick (they chase the nearest prey).
    pub predator_speed_px: f64,
    /// Predator body radius, px: a prey within the sum of both radii is caught.
    pub predator_radius_px: f64,
    /// Ticks until the first extra predator.
    pub predator_spawn_interval_ticks: f64,
    /// Each spawn multiplies the interval by this factor.
    pub predator_spawn_interval_factor: f64,
    /// The interval never shrinks below this, ticks.
    pub predator_spawn_interval_min_ticks: f64,
    /// Stars on the field at all times (an eaten star reappears elsewhere).
    pub stars: usize,
    /// Star radius, px: a prey within the sum of both radii eats it.
    pub star_radius_px: f64,
    /// Energy a star gives.
    pub star_energy: f64,
    /// Energy of a prey at the start of a game and at birth.
    pub initial_energy: f64,
    /// Energy cap (the observation reports energy as a fraction of it).
    pub max_energy: f64,
    /// Energy a birth costs the parent.
    pub reproduce_cost: f64,
    /// Energy the special costs.
    pub special_cost: f64,
    /// Ticks the special lasts: the prey cannot be caught, and predators
    /// within `special_radius_px` die.
    pub special_ticks: u32,
    /// Reach of the special, px.
    pub special_radius_px: f64,
    /// A prey that has eaten nothing for this many ticks starves.
    pub starvation_ticks: u32,
    /// The reward table, before `reward_scale`.
    pub reward: RewardTable,
    /// Every reward is multiplied by this (the game's `REWARD_SCALE`).
    pub reward_scale: f64,
    /// Ticks each decision lasts: the move is held for all of them, the
    /// choice (reproduce, special) acts on the first. The game decides every
    /// tick (1); a learner may decide less often, as Atari agents skip frames.
    pub ticks_per_action: u32,
}

/// Reward of each event, per prey, before [`ArenaConfig::reward_scale`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RewardTable {
    /// Every tick a prey is alive at its end.
    pub survive: f64,
    /// Per star eaten.
    pub star: f64,
    /// Per birth.
    pub reproduce: f64,
    /// Per predator killed by the special.
    pub predator_killed: f64,
    /// A special that ends without killing anything.
    pub wasted_special: f64,
    /// Caught or starved.
    pub death: f64,
}

impl Default for RewardTable {
    fn default() -> Self {
        Self {
            survive: 0.01,
            star: 1.0,
            reproduce: 5.0,
            predator_killed: 7.0,
            wasted_special: -10.0,
            death: -20.0,
        }
    }
}

/// The game's length: 300 s at 60 ticks per second.
pub const DEFAULT_MAX_TICKS: u32 = 18_000;

/// Ticks per second of the game clock.
pub const TICKS_PER_SECOND: f64 = 60.0;

impl Default for ArenaConfig {
    fn default() -> Self {
        Self {
            arena_radius_px: 300.0,
            max_ticks: DEFAULT_MAX_TICKS,
            initial_prey: 6,
            max_prey: 16,
            prey_speed_px: 2.2,
            prey_radius_px: 8.0,
            initial_predators: 2,
            max_predators: 48,
            predator_speed_px: 1.8,
            predator_radius_px: 10.0,
            predator_spawn_interval_ticks: 600.0,
            predator_spawn_interval_factor: 0.95,
            predator_spawn_interval_min_ticks: 60.0,
            stars: 15,
            star_radius_px: 6.0,
            star_energy: 1.0,
            initial_energy: 3.0,
            max_energy: 20.0,
            reproduce_cost: 8.0,
            special_cost: 5.0,
            special_ticks: 60,
            special_radius_px: 50.0,
            starvation_ticks: 900,
            reward: RewardTable::default(),
            reward_scale: 0.1,
            ticks_per_action: 1,
        }
    }
}

impl ArenaConfig {
    /// Checks every value; the message names the key and its range.
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("arena_radius_px", self.arena_radius_px),
            ("prey_speed_px", self.prey_speed_px),
            ("prey_radius_px", self.prey_radius_px),
            ("predator_radius_px", self.predator_radius_px),
            (
                "predator_spawn_interval_ticks",
                self.predator_spawn_interval_ticks,
            ),
            (
                "predator_spawn_interval_min_ticks",
                self.predator_spawn_interval_min_ticks,
            ),
            ("star_radius_px", self.star_radius_px),
            ("max_energy", self.max_energy),
            ("reward_scale", self.reward_scale),
        ];
        for (key, v) in positive {
            if !(v.is_finite() && v > 0.0) {
                return Err(format!("{key} must be a positive number, got {v}"));
            }
        }
        let non_negative = [
            ("predator_speed_px", self.predator_speed_px),
            ("star_energy", self.star_energy),
            ("reproduce_cost", self.reproduce_cost),
            ("special_cost", self.special_cost),
            ("special_radius_px", self.special_radius_px),
        ];
        for (key, v) in non_negative {
            if !(v.is_finite() && v >= 0.0) {
                return Err(format!("{key} must be >= 0, got {v}"));
            }
        }
        if !(self.predator_spawn_interval_factor > 0.0
            && self.predator_spawn_interval_factor <= 1.0)
        {
            return Err(format!(
                "predator_spawn_interval_factor must lie in (0, 1], got {}",
                self.predator_spawn_interval_factor
            ));
        }
        if !(0.0..=self.max_energy).contains(&self.initial_energy) {
            return Err(format!(
                "initial_energy must lie in [0, max_energy = {}], got {}",
                self.max_energy, self.initial_energy
            ));
        }
        if !(1..=256).contains(&self.max_prey) {
            return Err(format!(
                "max_prey must lie in [1, 256], got {}",
                self.max_prey
            ));
        }
        if !(1..=self.max_prey).contains(&self.initial_prey) {
            return Err(format!(
                "initial_prey must lie in [1, max_prey = {}], got {}",
                self.max_prey, self.initial_prey
            ));
        }
        if self.max_predators > 1024 || self.initial_predators > self.max_predators {
            return Err(format!(
                "need initial_predators <= max_predators <= 1024, got {} and {}",
                self.initial_predators, self.max_predators
            ));
        }
        if !(1..=1024).contains(&self.stars) {
            return Err(format!("stars must lie in [1, 1024], got {}", self.stars));
        }
        if self.special_ticks == 0 || self.starvation_ticks == 0 || self.max_ticks == 0 {
            return Err("special_ticks, starvation_ticks and the tick limit must be >= 1".into());
        }
        if !(1..=60).contains(&self.ticks_per_action) {
            return Err(format!(
                "ticks_per_action must lie in [1, 60], got {}",
                self.ticks_per_action
            ));
        }
        let r = &self.reward;
        for (key, v) in [
            ("reward.survive", r.survive),
            ("reward.star", r.star),
            ("reward.reproduce", r.reproduce),
            ("reward.predator_killed", r.predator_killed),
            ("reward.wasted_special", r.wasted_special),
            ("reward.death", r.death),
        ] {
            if !v.is_finite() {
                return Err(format!("{key} must be finite, got {v}"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_are_named() {
        assert_eq!(ArenaConfig::default().validate(), Ok(()));
        let mut c = ArenaConfig {
            initial_prey: 20,
            ..ArenaConfig::default()
        };
        assert!(c.validate().unwrap_err().contains("initial_prey"));
        c.initial_prey = 6;
        c.prey_speed_px = f64::NAN;
        assert!(c.validate().unwrap_err().contains("prey_speed_px"));
    }
}
