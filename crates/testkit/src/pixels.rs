//! `LitSide`, a small camera task for checking that a network learns from
//! byte frames and a vector side input together.
//!
//! Each step shows a `1 x side x side` frame (16 unless chosen), dark but for
//! faint noise and a bright 4x4 square in its left or right half, beside one
//! value, the *flip* bit. Action 0 says "left", 1 says "right"; the answer is
//! right when it names the lit side, or the other side when flip is 1. A
//! correct answer earns 1. Episodes last [`LitSide::LENGTH`] steps: guessing,
//! or reading only the frame or only the flip bit, earns half of that on
//! average; reading both earns all of it.

use hlynr_env::env::{from_state, to_state};
use hlynr_env::{Env, Info, ObsMut, Space, Step};
use hlynr_rng::Rng;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The camera task (see the module docs).
#[derive(Debug, Clone)]
pub struct LitSide {
    observation_space: Space,
    action_space: Space,
    side: usize,
    s: LitSideState,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct LitSideState {
    rng: Rng,
    t: u64,
    /// 0 = left, 1 = right.
    lit: u8,
    flip: u8,
}

impl Default for LitSide {
    fn default() -> Self {
        Self::new()
    }
}

impl LitSide {
    /// Steps per episode.
    pub const LENGTH: u64 = 8;

    /// A task of 16x16 frames whose generator is seeded by the first `reset`.
    pub fn new() -> Self {
        Self::with_side(16)
    }

    /// A task of `side x side` frames (`side >= 8`).
    pub fn with_side(side: usize) -> Self {
        assert!(side >= 8, "frames of {side} pixels cannot hold the square");
        Self {
            side,
            observation_space: Space::Tuple {
                spaces: vec![
                    Space::byte_box(&[1, side, side]),
                    Space::uniform_box(0.0, 1.0, &[1]),
                ],
            },
            action_space: Space::Discrete { n: 2 },
            s: LitSideState {
                rng: Rng::seed_from_u64(0),
                t: 0,
                lit: 0,
                flip: 0,
            },
        }
    }

    /// Draws the next scene and writes it.
    fn show(&mut self, obs: ObsMut<'_>) {
        let rng = &mut self.s.rng;
        self.s.lit = rng.below(2) as u8;
        self.s.flip = rng.below(2) as u8;
        for p in obs.bytes.iter_mut() {
            *p = rng.below(32) as u8;
        }
        let (side, half) = (self.side, self.side / 2);
        let x0 = usize::from(self.s.lit) * half + rng.below((half - 4 + 1) as u64) as usize;
        let y0 = rng.below((side - 4 + 1) as u64) as usize;
        for y in y0..y0 + 4 {
            obs.bytes[y * side + x0..y * side + x0 + 4].fill(255);
        }
        obs.values[0] = f32::from(self.s.flip);
    }
}

impl Env for LitSide {
    fn observation_space(&self) -> &Space {
        &self.observation_space
    }

    fn action_space(&self) -> &Space {
        &self.action_space
    }

    fn reset(
        &mut self,
        seed: Option<u64>,
        obs: ObsMut<'_>,
        _info: &mut Info,
    ) -> hlynr_env::Result<()> {
        if let Some(seed) = seed {
            self.s.rng = Rng::seed_from_u64(seed);
        }
        self.s.t = 0;
        self.show(obs);
        Ok(())
    }

    fn step(
        &mut self,
        action: &[f32],
        obs: ObsMut<'_>,
        _info: &mut Info,
    ) -> hlynr_env::Result<Step> {
        let answer = self.s.lit ^ self.s.flip;
        let reward = if action[0] == f32::from(answer) {
            1.0
        } else {
            0.0
        };
        self.s.t += 1;
        self.show(obs);
        Ok(Step {
            reward,
            terminated: false,
            truncated: self.s.t == Self::LENGTH,
        })
    }

    fn state(&self) -> Value {
        to_state(&self.s)
    }

    fn set_state(&mut self, state: &Value) -> hlynr_env::Result<()> {
        self.s = from_state("LitSide", state)?;
        Ok(())
    }
}
