//! The predator-prey arena of the browser game: a circular world where prey
//! eat stars for energy, spend it on children or on a special that kills
//! nearby predators, and starve or are caught by predators that multiply on
//! a shrinking interval.
//!
//! Every prey is an agent with the 17-value observation
//! ([`observation`]) and the hybrid action `[move_x, move_y, choice]`
//! ([`action_space`]: a move box and a 3-way choice), all sharing one
//! policy. [`ArenaBatch`] trains on many worlds at once with one row per
//! agent slot; [`ArenaEnv`] plays one game turn by turn for evaluation;
//! [`FleeAndEat`] is the scripted baseline. The rules, their numbers and the
//! tick order are in [`world`] and [`config`], and in `docs/arena.md`.

pub mod batch;
pub mod config;
pub mod env;
pub mod observation;
pub mod scripted;
pub mod web;
pub mod world;

pub use batch::ArenaBatch;
pub use config::{ArenaConfig, RewardTable};
pub use env::ArenaEnv;
pub use scripted::{FLEE_AND_EAT, FleeAndEat};
pub use world::World;

use hlynr_env::Space;

/// One prey's action: a move in `[-1, 1]^2` (scaled to the prey's speed,
/// longer vectors cut to unit length) and a choice of reproduce (0),
/// activate special (1) or neither (2).
pub fn action_space() -> Space {
    Space::Tuple {
        spaces: vec![
            Space::uniform_box(-1.0, 1.0, &[2]),
            Space::Discrete { n: 3 },
        ],
    }
}
