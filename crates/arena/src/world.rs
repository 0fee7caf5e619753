//! One arena world: prey, predators and stars on a disk, advanced one tick at
//! a time from the actions of every living prey.
//!
//! Prey live in a fixed number of agent slots (`max_prey`); a slot is empty
//! until a prey is born into it and empty again when its prey dies. Within a
//! tick the order is fixed, so a world is a pure function of its seed and
//! the actions: choices (births are placed at the end of the tick, in the
//! lowest free slots), prey movement, predator pursuit, the special's kills,
//! catches, the specials running down, stars, starvation, survival rewards,
//! predator spawns.

use hlynr_rng::Rng;
use serde::{Deserialize, Serialize};

use crate::config::ArenaConfig;

/// A point or displacement on the arena plane, px, origin at the centre.
pub type Point = [f64; 2];

/// Values of one prey's flat action: `[move_x, move_y, choice]`.
pub const ACTION_DIM: usize = 3;

/// The discrete part of a prey's action (the game's order).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Choice {
    /// Spend `reproduce_cost` energy on a child, when a slot is free.
    Reproduce = 0,
    /// Spend `special_cost` energy on the special.
    ActivateSpecial = 1,
    /// Neither (the game's `IDLE_FOOD`: just forage).
    Idle = 2,
}

impl Choice {
    /// The choice encoded in a flat action slot (an index `0..3`).
    pub fn from_action(value: f32) -> Self {
        match value.round() as i64 {
            0 => Choice::Reproduce,
            1 => Choice::ActivateSpecial,
            _ => Choice::Idle,
        }
    }
}

/// One prey and what it has done since birth.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Prey {
    pub pos: Point,
    pub energy: f64,
    /// Ticks of special left (0 when inactive).
    pub special_left: u32,
    /// Predators the current special has killed.
    pub special_kills: u32,
    /// Ticks since the last star (or since birth).
    pub hunger_ticks: u32,
    /// Ticks lived.
    pub age_ticks: u32,
    /// Sum of this prey's (scaled) rewards.
    pub total_reward: f64,
    pub stars_eaten: u32,
    pub births: u32,
    pub predators_killed: u32,
    /// Decisions taken (one per `ticks_per_action` ticks).
    pub decisions: u32,
}

/// How a prey died.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Death {
    Caught,
    Starved,
}

/// What one tick did to one slot.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SlotStep {
    /// The slot's (scaled) reward this tick: 0 for an empty slot.
    pub reward: f64,
    /// The slot's prey died this tick: its final record and the cause.
    pub died: Option<(Prey, Death)>,
}

/// Reusable buffers of [`World::act`].
#[derive(Clone, Debug, Default)]
pub struct ActScratch {
    held: Vec<f32>,
    tick: Vec<SlotStep>,
    /// Slots whose prey took the decision.
    decided: Vec<bool>,
}

/// Totals of one game, for evaluation reports.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GameTotals {
    pub stars_eaten: u64,
    pub births: u64,
    pub predators_killed: u64,
    pub specials: u64,
    pub wasted_specials: u64,
    pub caught: u64,
    pub starved: u64,
    /// Ticks lived, summed over every prey that lived in the game.
    pub prey_ticks: u64,
    /// Prey that lived in the game (initial ones and births).
    pub prey_lived: u64,
    pub peak_prey: u64,
    /// Sum of every prey's (scaled) rewards.
    pub total_reward: f64,
}

/// The dynamic state of one world (serialisable for exact resume).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct World {
    rng: Rng,
    tick: u32,
    slots: Vec<Option<Prey>>,
    predators: Vec<Point>,
    stars: Vec<Point>,
    /// Tick at which the next predator arrives, and the interval after it.
    next_spawn_tick: f64,
    spawn_interval: f64,
    totals: GameTotals,
}

fn dist2(a: Point, b: Point) -> f64 {
    let (dx, dy) = (a[0] - b[0], a[1] - b[1]);
    dx * dx + dy * dy
}

/// Uniform over the disk of radius `r` around the centre.
fn point_in_disk(rng: &mut Rng, r: f64) -> Point {
    let rho = r * rng.uniform().sqrt();
    let theta = std::f64::consts::TAU * rng.uniform();
    [rho * theta.cos(), rho * theta.sin()]
}

/// Uniform over the circle of radius `r` around the centre.
fn point_on_rim(rng: &mut Rng, r: f64) -> Point {
    let theta = std::f64::consts::TAU * rng.uniform();
    [r * theta.cos(), r * theta.sin()]
}

/// Moves `p` back inside the disk of radius `r` around the centre.
fn keep_inside(p: &mut Point, r: f64) {
    let d = (p[0] * p[0] + p[1] * p[1]).sqrt();
    if d > r {
        p[0] *= r / d;
        p[1] *= r / d;
    }
}

impl World {
    /// A new game drawn from `seed`.
    pub fn new(config: &ArenaConfig, seed: u64) -> Self {
        Self::starting(config, Rng::seed_from_u64(seed))
    }

    /// Starts the next game, continuing this world's generator.
    pub fn restart(&mut self, config: &ArenaConfig) {
        *self = Self::starting(config, self.rng.clone());
    }

    /// A game at its first tick, drawn from `rng`: the prey inside half the
    /// radius, the predators on the rim, the stars anywhere.
    fn starting(c: &ArenaConfig, mut rng: Rng) -> Self {
        let mut slots = vec![None; c.max_prey];
        for slot in slots.iter_mut().take(c.initial_prey) {
            *slot = Some(Self::newborn(
                c,
                point_in_disk(&mut rng, 0.5 * c.arena_radius_px),
            ));
        }
        let predators = (0..c.initial_predators)
            .map(|_| point_on_rim(&mut rng, c.arena_radius_px - c.predator_radius_px))
            .collect();
        let stars = (0..c.stars)
            .map(|_| point_in_disk(&mut rng, c.arena_radius_px - c.star_radius_px))
            .collect();
        World {
            rng,
            tick: 0,
            slots,
            predators,
            stars,
            next_spawn_tick: c.predator_spawn_interval_ticks,
            spawn_interval: c.predator_spawn_interval_ticks,
            totals: GameTotals {
                prey_lived: c.initial_prey as u64,
                peak_prey: c.initial_prey as u64,
                ..GameTotals::default()
            },
        }
    }

    fn newborn(c: &ArenaConfig, pos: Point) -> Prey {
        Prey {
            pos,
            energy: c.initial_energy,
            special_left: 0,
            special_kills: 0,
            hunger_ticks: 0,
            age_ticks: 0,
            total_reward: 0.0,
            stars_eaten: 0,
            births: 0,
            predators_killed: 0,
            decisions: 0,
        }
    }

    /// Ticks played in this game.
    pub fn tick(&self) -> u32 {
        self.tick
    }

    /// The prey in each slot (`None`: empty).
    pub fn slots(&self) -> &[Option<Prey>] {
        &self.slots
    }

    pub fn predators(&self) -> &[Point] {
        &self.predators
    }

    pub fn stars(&self) -> &[Point] {
        &self.stars
    }

    /// Number of living prey.
    pub fn prey_alive(&self) -> usize {
        self.slots.iter().filter(|s| s.is_some()).count()
    }

    pub fn totals(&self) -> &GameTotals {
        &self.totals
    }

    /// The game ended with every prey dead.
    pub fn extinct(&self) -> bool {
        self.prey_alive() == 0
    }

    /// The game reached its tick limit.
    pub fn timed_out(&self, c: &ArenaConfig) -> bool {
        self.tick >= c.max_ticks
    }

    /// One decision of every living prey: `ticks_per_action` ticks with the
    /// moves held and the choices acting on the first, stopping early when
    /// the game ends. `out` receives each slot's summed reward and its death,
    /// if any. Rows of slots without the prey that decided (empty at the
    /// decision, or freed by a death during it and refilled by a birth)
    /// stand still, and their rewards after the death are not the dead
    /// prey's: a row's reward is its own prey's.
    pub fn act(
        &mut self,
        c: &ArenaConfig,
        actions: &[f32],
        out: &mut [SlotStep],
        scratch: &mut ActScratch,
    ) {
        for p in self.slots.iter_mut().flatten() {
            p.decisions += 1;
        }
        scratch.decided.clear();
        scratch
            .decided
            .extend(self.slots.iter().map(Option::is_some));
        self.step(c, actions, out);
        if c.ticks_per_action == 1 {
            return;
        }
        let held = &mut scratch.held;
        held.clear();
        held.extend_from_slice(actions);
        for (slot, row) in held.chunks_exact_mut(ACTION_DIM).enumerate() {
            if !scratch.decided[slot] || out[slot].died.is_some() {
                row[0] = 0.0;
                row[1] = 0.0;
            }
            row[2] = Choice::Idle as u8 as f32;
        }
        scratch.tick.resize(out.len(), SlotStep::default());
        for _ in 1..c.ticks_per_action {
            if self.extinct() || self.timed_out(c) {
                break;
            }
            self.step(c, held, &mut scratch.tick);
            for (slot, (o, t)) in out.iter_mut().zip(&mut scratch.tick).enumerate() {
                if o.died.is_some() || !scratch.decided[slot] {
                    continue;
                }
                o.reward += t.reward;
                if let Some(died) = t.died.take() {
                    o.died = Some(died);
                    held[slot * ACTION_DIM] = 0.0;
                    held[slot * ACTION_DIM + 1] = 0.0;
                }
            }
        }
    }

    /// Advances one tick. `actions` is `[max_prey, ACTION_DIM]` (rows of
    /// empty slots are ignored); `out` receives one [`SlotStep`] per slot.
    /// Move components are clamped to `[-1, 1]` and the move vector to unit
    /// length, so any finite action is valid.
    pub fn step(&mut self, c: &ArenaConfig, actions: &[f32], out: &mut [SlotStep]) {
        assert_eq!(
            actions.len(),
            c.max_prey * ACTION_DIM,
            "one action row per slot"
        );
        assert_eq!(out.len(), c.max_prey, "one outcome per slot");
        out.iter_mut().for_each(|o| *o = SlotStep::default());
        let scale = c.reward_scale;
        let rw = &c.reward;
        // Choices; births wait for the end of the tick.
        let mut births: Vec<Point> = Vec::new();
        let free = self.slots.iter().filter(|s| s.is_none()).count();
        for (slot, row) in actions.chunks_exact(ACTION_DIM).enumerate() {
            let Some(p) = self.slots[slot].as_mut() else {
                continue;
            };
            match Choice::from_action(row[2]) {
                Choice::Reproduce if p.energy >= c.reproduce_cost && births.len() < free => {
                    p.energy -= c.reproduce_cost;
                    p.births += 1;
                    out[slot].reward += rw.reproduce;
                    births.push(p.pos);
                }
                Choice::ActivateSpecial if p.energy >= c.special_cost && p.special_left == 0 => {
                    p.energy -= c.special_cost;
                    p.special_left = c.special_ticks;
                    p.special_kills = 0;
                    self.totals.specials += 1;
                }
                _ => {}
            }
        }
        // Prey move.
        let prey_limit = c.arena_radius_px - c.prey_radius_px;
        for (slot, row) in actions.chunks_exact(ACTION_DIM).enumerate() {
            let Some(p) = self.slots[slot].as_mut() else {
                continue;
            };
            let mut m = [
                f64::from(row[0]).clamp(-1.0, 1.0),
                f64::from(row[1]).clamp(-1.0, 1.0),
            ];
            let norm = (m[0] * m[0] + m[1] * m[1]).sqrt();
            if norm > 1.0 {
                m = [m[0] / norm, m[1] / norm];
            }
            p.pos[0] += c.prey_speed_px * m[0];
            p.pos[1] += c.prey_speed_px * m[1];
            keep_inside(&mut p.pos, prey_limit);
        }
        // Predators chase the nearest prey.
        let predator_limit = c.arena_radius_px - c.predator_radius_px;
        for q in &mut self.predators {
            let target = self
                .slots
                .iter()
                .flatten()
                .map(|p| p.pos)
                .min_by(|a, b| dist2(*q, *a).total_cmp(&dist2(*q, *b)));
            if let Some(t) = target {
                let (dx, dy) = (t[0] - q[0], t[1] - q[1]);
                let d = (dx * dx + dy * dy).sqrt();
                if d > 0.0 {
                    let s = c.predator_speed_px.min(d);
                    q[0] += s * dx / d;
                    q[1] += s * dy / d;
                }
                keep_inside(q, predator_limit);
            }
        }
        // The special kills predators within its reach.
        let reach2 = c.special_radius_px * c.special_radius_px;
        for (slot, cell) in self.slots.iter_mut().enumerate() {
            let Some(p) = cell.as_mut() else { continue };
            if p.special_left == 0 {
                continue;
            }
            let before = self.predators.len();
            self.predators.retain(|q| dist2(*q, p.pos) >= reach2);
            let kills = (before - self.predators.len()) as u32;
            p.special_kills += kills;
            p.predators_killed += kills;
            self.totals.predators_killed += u64::from(kills);
            out[slot].reward += rw.predator_killed * f64::from(kills);
        }
        // Catches (a prey under its special cannot be caught).
        let catch2 = (c.prey_radius_px + c.predator_radius_px).powi(2);
        let mut deaths: Vec<(usize, Death)> = Vec::new();
        for (slot, cell) in self.slots.iter().enumerate() {
            if let Some(p) = cell
                && p.special_left == 0
                && self.predators.iter().any(|q| dist2(*q, p.pos) <= catch2)
            {
                deaths.push((slot, Death::Caught));
            }
        }
        // Specials run down (after the catches: a special protects for all
        // of its ticks); one that ends without a kill was wasted.
        for (slot, cell) in self.slots.iter_mut().enumerate() {
            let Some(p) = cell.as_mut() else { continue };
            if p.special_left > 0 {
                p.special_left -= 1;
                if p.special_left == 0 && p.special_kills == 0 {
                    out[slot].reward += rw.wasted_special;
                    self.totals.wasted_specials += 1;
                }
            }
        }
        // Stars, then hunger, for the prey still alive.
        let eat2 = (c.prey_radius_px + c.star_radius_px).powi(2);
        let star_limit = c.arena_radius_px - c.star_radius_px;
        for (slot, (cell, out)) in self.slots.iter_mut().zip(out.iter_mut()).enumerate() {
            if deaths.iter().any(|&(s, _)| s == slot) {
                continue;
            }
            let Some(p) = cell.as_mut() else {
                continue;
            };
            for star in &mut self.stars {
                if dist2(*star, p.pos) <= eat2 {
                    p.stars_eaten += 1;
                    p.energy = (p.energy + c.star_energy).min(c.max_energy);
                    p.hunger_ticks = 0;
                    self.totals.stars_eaten += 1;
                    out.reward += rw.star;
                    *star = point_in_disk(&mut self.rng, star_limit);
                }
            }
            p.hunger_ticks += 1;
            if p.hunger_ticks >= c.starvation_ticks {
                deaths.push((slot, Death::Starved));
            } else {
                out.reward += rw.survive;
            }
        }
        for (slot, cause) in deaths {
            let mut p = self.slots[slot].take().expect("a dying prey is alive");
            out[slot].reward += rw.death;
            p.age_ticks += 1;
            p.total_reward += out[slot].reward * scale;
            match cause {
                Death::Caught => self.totals.caught += 1,
                Death::Starved => self.totals.starved += 1,
            }
            self.totals.prey_ticks += u64::from(p.age_ticks);
            out[slot].died = Some((p, cause));
        }
        for (slot, cell) in self.slots.iter_mut().enumerate() {
            if let Some(p) = cell {
                p.age_ticks += 1;
                p.total_reward += out[slot].reward * scale;
            }
        }
        for o in out.iter_mut() {
            o.reward *= scale;
            self.totals.total_reward += o.reward;
        }
        // Births, in the lowest free slots, beside their parents.
        for parent in births {
            let theta = std::f64::consts::TAU * self.rng.uniform();
            let r = 2.0 * c.prey_radius_px;
            let mut pos = [parent[0] + r * theta.cos(), parent[1] + r * theta.sin()];
            keep_inside(&mut pos, prey_limit);
            let slot = self
                .slots
                .iter()
                .position(Option::is_none)
                .expect("births are limited to the free slots");
            self.slots[slot] = Some(Self::newborn(c, pos));
            self.totals.births += 1;
            self.totals.prey_lived += 1;
        }
        self.totals.peak_prey = self.totals.peak_prey.max(self.prey_alive() as u64);
        // Predator spawns on the shrinking interval.
        self.tick += 1;
        while f64::from(self.tick) >= self.next_spawn_tick {
            if self.predators.len() < c.max_predators {
                let pos = point_on_rim(&mut self.rng, predator_limit);
                self.predators.push(pos);
            }
            self.spawn_interval = (self.spawn_interval * c.predator_spawn_interval_factor)
                .max(c.predator_spawn_interval_min_ticks);
            self.next_spawn_tick += self.spawn_interval;
        }
    }

    /// Adds the living prey's ticks to the totals at the end of a game (the
    /// dead ones were added when they died).
    pub fn finish_totals(&self) -> GameTotals {
        let mut t = self.totals.clone();
        t.prey_ticks += self
            .slots
            .iter()
            .flatten()
            .map(|p| u64::from(p.age_ticks))
            .sum::<u64>();
        t
    }

    /// Writes the 17-value observation of the prey in `slot` (see
    /// [`crate::observation`]).
    pub fn observe(&self, c: &ArenaConfig, slot: usize, out: &mut [f32]) {
        match &self.slots[slot] {
            Some(p) => crate::observation::write(c, p, &self.stars, &self.predators, out),
            None => out.fill(0.0),
        }
    }

    #[cfg(test)]
    pub(crate) fn parts_mut(
        &mut self,
    ) -> (&mut Vec<Option<Prey>>, &mut Vec<Point>, &mut Vec<Point>) {
        (&mut self.slots, &mut self.predators, &mut self.stars)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A world with one prey at `pos`, the given predators and one star far
    /// away (the spawn clock pushed past the test), so each rule is seen alone.
    fn lone_prey(pos: Point, predators: &[Point]) -> (ArenaConfig, World) {
        let c = ArenaConfig {
            initial_prey: 1,
            initial_predators: 0,
            stars: 1,
            predator_spawn_interval_ticks: 1e9,
            ..ArenaConfig::default()
        };
        let mut w = World::new(&c, 7);
        let (slots, preds, stars) = w.parts_mut();
        slots[0].as_mut().unwrap().pos = pos;
        *preds = predators.to_vec();
        stars[0] = [-250.0, 0.0];
        (c, w)
    }

    fn act(c: &ArenaConfig, rows: &[(usize, [f32; 3])]) -> Vec<f32> {
        let mut a = vec![0.0; c.max_prey * ACTION_DIM];
        for (slot, row) in rows {
            a[slot * ACTION_DIM..(slot + 1) * ACTION_DIM].copy_from_slice(row);
        }
        a
    }

    fn step(c: &ArenaConfig, w: &mut World, rows: &[(usize, [f32; 3])]) -> Vec<SlotStep> {
        let mut out = vec![SlotStep::default(); c.max_prey];
        w.step(c, &act(c, rows), &mut out);
        out
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn prey_move_at_their_speed_and_stay_inside() {
        let (c, mut w) = lone_prey([0.0, 0.0], &[]);
        let out = step(&c, &mut w, &[(0, [1.0, 1.0, 2.0])]);
        let p = w.slots()[0].as_ref().unwrap();
        let s = c.prey_speed_px / 2f64.sqrt();
        assert!(close(p.pos[0], s) && close(p.pos[1], s), "{:?}", p.pos);
        assert!(close(out[0].reward, c.reward.survive * c.reward_scale));
        // Half stick moves at half speed; the wall stops the prey.
        step(&c, &mut w, &[(0, [-0.5, 0.0, 2.0])]);
        let p = w.slots()[0].as_ref().unwrap();
        assert!(close(p.pos[0], s - 0.5 * c.prey_speed_px));
        let (c, mut w) = lone_prey([290.0, 0.0], &[]);
        step(&c, &mut w, &[(0, [1.0, 0.0, 2.0])]);
        let p = w.slots()[0].as_ref().unwrap();
        assert!(close(p.pos[0], c.arena_radius_px - c.prey_radius_px));
    }

    #[test]
    fn predators_close_in_at_their_speed_and_catch() {
        let (c, mut w) = lone_prey([0.0, 0.0], &[[0.0, 100.0]]);
        for k in 1..=60 {
            let out = step(&c, &mut w, &[(0, [0.0, 0.0, 2.0])]);
            let d = 100.0 - c.predator_speed_px * f64::from(k);
            if d > c.prey_radius_px + c.predator_radius_px {
                assert!(close(w.predators()[0][1], d), "tick {k}");
                assert!(out[0].died.is_none());
            } else {
                let (prey, death) = out[0].died.clone().expect("caught");
                assert_eq!(death, Death::Caught);
                assert_eq!(prey.age_ticks, k as u32);
                assert!(close(out[0].reward, c.reward.death * c.reward_scale));
                assert!(w.extinct());
                return;
            }
        }
        panic!("never caught");
    }

    #[test]
    fn stars_feed_and_reappear() {
        let (c, mut w) = lone_prey([0.0, 0.0], &[]);
        w.parts_mut().2[0] = [1.0, 0.0];
        w.parts_mut().0[0].as_mut().unwrap().hunger_ticks = 100;
        let out = step(&c, &mut w, &[(0, [0.0, 0.0, 2.0])]);
        let p = w.slots()[0].as_ref().unwrap();
        assert!(close(
            out[0].reward,
            (c.reward.star + c.reward.survive) * c.reward_scale
        ));
        assert!(close(p.energy, c.initial_energy + c.star_energy));
        assert_eq!((p.stars_eaten, p.hunger_ticks), (1, 1));
        assert!(dist2(w.stars()[0], [1.0, 0.0]) > 0.0, "the star moved");
        assert_eq!(w.totals().stars_eaten, 1);
    }

    #[test]
    fn starvation_kills_after_the_limit() {
        let (c, mut w) = lone_prey([0.0, 0.0], &[]);
        for k in 1..c.starvation_ticks {
            assert!(
                step(&c, &mut w, &[(0, [0.0, 0.0, 2.0])])[0].died.is_none(),
                "{k}"
            );
        }
        let out = step(&c, &mut w, &[(0, [0.0, 0.0, 2.0])]);
        assert_eq!(out[0].died.as_ref().map(|d| d.1), Some(Death::Starved));
        assert!(close(out[0].reward, c.reward.death * c.reward_scale));
    }

    #[test]
    fn special_kills_protects_and_costs() {
        let (c, mut w) = lone_prey([0.0, 0.0], &[[0.0, 40.0], [0.0, 120.0]]);
        w.parts_mut().0[0].as_mut().unwrap().energy = 6.0;
        let out = step(&c, &mut w, &[(0, [0.0, 0.0, 1.0])]);
        let p = w.slots()[0].as_ref().unwrap();
        assert!(close(p.energy, 1.0));
        assert_eq!(w.predators().len(), 1, "the near predator died");
        assert!(close(
            out[0].reward,
            (c.reward.predator_killed + c.reward.survive) * c.reward_scale
        ));
        // The far one dies when it comes within reach, while the special lasts.
        let mut kills_reward = 0.0;
        for _ in 1..c.special_ticks {
            let out = step(&c, &mut w, &[(0, [0.0, 0.0, 2.0])]);
            kills_reward += out[0].reward - c.reward.survive * c.reward_scale;
        }
        assert!(w.predators().is_empty());
        assert!(close(
            kills_reward,
            c.reward.predator_killed * c.reward_scale
        ));
        assert_eq!(w.slots()[0].as_ref().unwrap().predators_killed, 2);
        // Invincible: with no reach, a predator on the prey cannot catch it
        // until the special ends.
        let (mut c, mut w) = lone_prey([0.0, 0.0], &[[0.0, 5.0]]);
        c.special_radius_px = 0.0;
        w.parts_mut().0[0].as_mut().unwrap().energy = 5.0;
        for k in 0..c.special_ticks {
            let choice = if k == 0 { 1.0 } else { 2.0 };
            assert!(
                step(&c, &mut w, &[(0, [0.0, 0.0, choice])])[0]
                    .died
                    .is_none()
            );
        }
        assert!(step(&c, &mut w, &[(0, [0.0, 0.0, 2.0])])[0].died.is_some());
        // A special with nothing in reach is wasted.
        let (c, mut w) = lone_prey([0.0, 0.0], &[]);
        w.parts_mut().0[0].as_mut().unwrap().energy = 5.0;
        let mut total = 0.0;
        for k in 0..c.special_ticks {
            let choice = if k == 0 { 1.0 } else { 2.0 };
            total += step(&c, &mut w, &[(0, [0.0, 0.0, choice])])[0].reward;
        }
        let expected = (c.reward.wasted_special + f64::from(c.special_ticks) * c.reward.survive)
            * c.reward_scale;
        assert!(close(total, expected), "{total} vs {expected}");
        assert_eq!(w.totals().wasted_specials, 1);
        // Too little energy: nothing happens.
        let out = step(&c, &mut w, &[(0, [0.0, 0.0, 1.0])]);
        assert_eq!(w.slots()[0].as_ref().unwrap().special_left, 0);
        assert!(close(out[0].reward, c.reward.survive * c.reward_scale));
    }

    #[test]
    fn reproduction_fills_the_lowest_free_slot_up_to_the_cap() {
        let (mut c, mut w) = lone_prey([0.0, 0.0], &[]);
        w.parts_mut().0[0].as_mut().unwrap().energy = 20.0;
        let out = step(&c, &mut w, &[(0, [0.0, 0.0, 0.0])]);
        assert!(close(
            out[0].reward,
            (c.reward.reproduce + c.reward.survive) * c.reward_scale
        ));
        let child = w.slots()[1].as_ref().expect("born into slot 1");
        assert!(close(child.energy, c.initial_energy));
        assert!(close(
            dist2(child.pos, [0.0, 0.0]).sqrt(),
            2.0 * c.prey_radius_px
        ));
        assert!(close(
            w.slots()[0].as_ref().unwrap().energy,
            20.0 - c.reproduce_cost
        ));
        // With every slot taken, no birth and no reward.
        c.max_prey = 2;
        let mut w2 = World::new(&c, 1);
        let (slots, _, _) = w2.parts_mut();
        *slots = w.slots()[..2].to_vec();
        slots[0].as_mut().unwrap().energy = 20.0;
        let out = step(&c, &mut w2, &[(0, [0.0, 0.0, 0.0])]);
        assert!(close(out[0].reward, c.reward.survive * c.reward_scale));
        assert_eq!(w2.totals().births, 0);
    }

    #[test]
    fn a_decision_holds_the_move_and_makes_the_choice_once() {
        let (mut c, mut w) = lone_prey([0.0, 0.0], &[]);
        c.ticks_per_action = 4;
        w.parts_mut().0[0].as_mut().unwrap().energy = 20.0;
        let mut out = vec![SlotStep::default(); c.max_prey];
        let mut scratch = ActScratch::default();
        w.act(
            &c,
            &act(&c, &[(0, [1.0, 0.0, 0.0])]),
            &mut out,
            &mut scratch,
        );
        let parent = w.slots()[0].as_ref().unwrap();
        assert!(close(parent.pos[0], 4.0 * c.prey_speed_px));
        assert_eq!(
            (parent.births, parent.decisions, parent.age_ticks),
            (1, 1, 4)
        );
        assert!(
            close(parent.energy, 20.0 - c.reproduce_cost),
            "one child only"
        );
        let child = w.slots()[1].as_ref().unwrap();
        assert_eq!((child.decisions, child.age_ticks), (0, 3));
        assert!(close(
            out[0].reward,
            (c.reward.reproduce + 4.0 * c.reward.survive) * c.reward_scale
        ));
        assert_eq!(
            out[1].reward, 0.0,
            "the child's rewards are not the row's before it decides"
        );
        assert_eq!(w.tick(), 4);
    }

    #[test]
    fn predators_arrive_on_a_shrinking_interval() {
        let c = ArenaConfig {
            initial_prey: 1,
            ..ArenaConfig::default()
        };
        let mut w = World::new(&c, 3);
        // Keep the prey alive and far from everything it could meet.
        let mut expected = c.initial_predators;
        let (mut next, mut interval) = (
            c.predator_spawn_interval_ticks,
            c.predator_spawn_interval_ticks,
        );
        for tick in 1..=3000u32 {
            {
                let (slots, preds, _) = w.parts_mut();
                let p = slots[0].as_mut().unwrap();
                p.pos = [0.0, 0.0];
                p.hunger_ticks = 0;
                p.special_left = 2;
                preds.iter_mut().for_each(|q| *q = [0.0, 280.0]);
            }
            step(&c, &mut w, &[]);
            while f64::from(tick) >= next {
                expected += 1;
                interval = (interval * c.predator_spawn_interval_factor)
                    .max(c.predator_spawn_interval_min_ticks);
                next += interval;
            }
            assert_eq!(
                w.predators().len(),
                expected.min(c.max_predators),
                "tick {tick}"
            );
        }
        // 600, 1170, 1711.5, 2225.9, 2714.6: five arrivals by tick 3000.
        assert_eq!(expected, c.initial_predators + 5);
    }

    #[test]
    fn same_seed_and_actions_same_game() {
        let c = ArenaConfig::default();
        let run = |seed| {
            let mut w = World::new(&c, seed);
            let mut out = vec![SlotStep::default(); c.max_prey];
            let mut rng = Rng::seed_from_u64(99);
            for _ in 0..2000 {
                let a: Vec<f32> = (0..c.max_prey)
                    .flat_map(|_| {
                        [
                            rng.uniform_range_f32(-1.0, 1.0),
                            rng.uniform_range_f32(-1.0, 1.0),
                            rng.below(3) as f32,
                        ]
                    })
                    .collect();
                w.step(&c, &a, &mut out);
                if w.extinct() {
                    break;
                }
            }
            w
        };
        assert_eq!(run(5), run(5));
        assert_ne!(run(5), run(6));
    }
}
