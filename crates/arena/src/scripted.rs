//! The scripted prey: flee predators that come close, otherwise eat the
//! nearest star; use the special when a predator is within its reach, and
//! reproduce when energy covers a child with a special left in reserve.
//!
//! It reads only the 17-value observation (decoded with the arena's
//! scales), so it plays through the same interface as a learned policy.

use hlynr_env::{Policy, PolicyInput};

use crate::config::ArenaConfig;
use crate::observation::{NEAREST, OBS_DIM, PREDATORS_AT, STARS_AT};
use crate::world::{ACTION_DIM, Choice};

/// Its name in reports and on `hlynr eval --policy`.
pub const FLEE_AND_EAT: &str = "flee-and-eat";

/// Predators closer than this (px) repel the prey.
const DANGER_PX: f64 = 110.0;

/// Weight of fleeing against the pull of the nearest star.
const FLEE_WEIGHT: f64 = 3.0;

/// Beyond this fraction of the arena radius the prey also steers inward, so
/// it is not cornered against the wall.
const WALL_FRACTION: f64 = 0.8;

/// Length of `v` (plain square root: `f64::hypot`'s overflow care costs
/// more than the rest of a decision, and arena distances cannot overflow).
fn norm(v: [f64; 2]) -> f64 {
    (v[0] * v[0] + v[1] * v[1]).sqrt()
}

/// The scripted prey (see the module documentation).
#[derive(Clone, Debug)]
pub struct FleeAndEat {
    config: ArenaConfig,
}

impl FleeAndEat {
    pub fn new(config: &ArenaConfig) -> Self {
        Self {
            config: config.clone(),
        }
    }

    /// The action for one observation.
    pub fn decide(&self, obs: &[f32], action: &mut [f32]) {
        let c = &self.config;
        let r = c.arena_radius_px;
        let at = |i: usize| [f64::from(obs[i]) * r, f64::from(obs[i + 1]) * r];
        let pos = at(0);
        let energy = f64::from(obs[2]) * c.max_energy;
        let special_on = obs[3] > 0.5;
        let star = at(STARS_AT);
        let star_d = norm(star);
        let mut m = if star_d > 0.0 {
            [star[0] / star_d, star[1] / star_d]
        } else {
            [0.0, 0.0]
        };
        let mut nearest_predator = f64::INFINITY;
        for k in 0..NEAREST {
            let q = at(PREDATORS_AT + 2 * k);
            let d = norm(q);
            if d == 0.0 {
                continue;
            }
            nearest_predator = nearest_predator.min(d);
            if d < DANGER_PX && !special_on {
                let push = FLEE_WEIGHT * (1.0 - d / DANGER_PX);
                m[0] -= push * q[0] / d;
                m[1] -= push * q[1] / d;
            }
        }
        let from_centre = norm(pos);
        if from_centre > WALL_FRACTION * r {
            let push = (from_centre / r - WALL_FRACTION) / (1.0 - WALL_FRACTION);
            m[0] -= push * pos[0] / from_centre;
            m[1] -= push * pos[1] / from_centre;
        }
        let length = norm(m);
        if length > 0.0 {
            m = [m[0] / length, m[1] / length];
        }
        let choice =
            if !special_on && energy >= c.special_cost && nearest_predator <= c.special_radius_px {
                Choice::ActivateSpecial
            } else if energy >= c.reproduce_cost + c.special_cost {
                Choice::Reproduce
            } else {
                Choice::Idle
            };
        action[0] = m[0] as f32;
        action[1] = m[1] as f32;
        action[2] = choice as u8 as f32;
    }
}

impl Policy for FleeAndEat {
    fn name(&self) -> &str {
        FLEE_AND_EAT
    }

    fn act(
        &mut self,
        input: &PolicyInput<'_>,
        _deterministic: bool,
        actions: &mut [f32],
    ) -> Result<(), String> {
        if input.obs.len() != input.n * OBS_DIM || actions.len() != input.n * ACTION_DIM {
            return Err(format!(
                "{FLEE_AND_EAT} takes {OBS_DIM}-value arena observations and writes \
                 {ACTION_DIM}-value actions; got {} values and {} slots for {} rows",
                input.obs.len(),
                actions.len(),
                input.n
            ));
        }
        for (obs, action) in input
            .obs
            .chunks_exact(OBS_DIM)
            .zip(actions.chunks_exact_mut(ACTION_DIM))
        {
            self.decide(obs, action);
        }
        Ok(())
    }
}
