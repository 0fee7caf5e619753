//! Arena worlds as one training batch whose rows are agent slots.
//!
//! `W` worlds of `max_prey` slots each make `W * max_prey` rows. A row's
//! episode is one prey's life: it starts when the prey is born into the slot
//! (or the game starts) and ends when the prey dies (terminated) or the game
//! reaches its tick limit (truncated, with the final observation for the
//! bootstrap). Rows whose slot is empty are masked out through
//! [`BatchEnv::active`]: their actions are ignored and their transitions are
//! not experience. A world whose game ended starts the next game at once
//! (same-step auto-reset, as `hlynr_env::VecEnv`).

use hlynr_env::{BatchEnv, EnvError, EpisodeStats, Info, Space, check_action_batch};
use hlynr_rng::derive_seed;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::{ArenaConfig, TICKS_PER_SECOND};
use crate::observation::OBS_DIM;
use crate::world::{ACTION_DIM, ActScratch, Death, Prey, SlotStep, World};

/// Training batch of arena worlds (see the module documentation).
#[derive(Debug)]
pub struct ArenaBatch {
    config: ArenaConfig,
    obs_space: Space,
    act_space: Space,
    worlds: Vec<World>,
    buffers: Buffers,
    outcomes: Vec<SlotStep>,
    scratch: ActScratch,
    infos: Vec<Info>,
}

/// Everything a consumer reads after a step (part of the exact state).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Buffers {
    obs: Vec<f32>,
    rewards: Vec<f32>,
    terminated: Vec<bool>,
    truncated: Vec<bool>,
    final_obs: Vec<f32>,
    has_final: Vec<bool>,
    active: Vec<bool>,
}

/// A finished life's statistics in a saved state: return, length, metrics.
type SavedLife = (f64, u64, Vec<(String, f64)>);

#[derive(Serialize, Deserialize)]
struct BatchState {
    worlds: Vec<World>,
    buffers: Buffers,
    /// Per row: the finished prey's episode info (return, length, metrics).
    infos: Vec<Option<SavedLife>>,
}

/// The `info.metrics` of a prey whose life ended: what it did.
fn write_life(info: &mut Info, prey: &Prey, death: Option<Death>) {
    info.episode = Some(EpisodeStats {
        episode_return: prey.total_reward,
        episode_length: u64::from(prey.decisions),
    });
    info.set("lifetime_s", f64::from(prey.age_ticks) / TICKS_PER_SECOND);
    info.set("stars_eaten", f64::from(prey.stars_eaten));
    info.set("births", f64::from(prey.births));
    info.set("predators_killed", f64::from(prey.predators_killed));
    info.set("caught", f64::from(u8::from(death == Some(Death::Caught))));
    info.set(
        "starved",
        f64::from(u8::from(death == Some(Death::Starved))),
    );
}

/// The metric names [`write_life`] sets (the keys a restored info may carry).
const LIFE_METRICS: [&str; 6] = [
    "lifetime_s",
    "stars_eaten",
    "births",
    "predators_killed",
    "caught",
    "starved",
];

impl ArenaBatch {
    /// `worlds` worlds of `config` (validated).
    pub fn new(config: &ArenaConfig, worlds: usize) -> Result<Self, EnvError> {
        config
            .validate()
            .map_err(|e| EnvError::invalid("arena settings", e))?;
        if worlds == 0 {
            return Err(EnvError::invalid("ArenaBatch", "needs at least one world"));
        }
        let rows = worlds * config.max_prey;
        let world = World::new(config, 0);
        Ok(Self {
            config: config.clone(),
            obs_space: crate::observation::space(),
            act_space: crate::action_space(),
            worlds: vec![world; worlds],
            buffers: Buffers {
                obs: vec![0.0; rows * OBS_DIM],
                rewards: vec![0.0; rows],
                terminated: vec![false; rows],
                truncated: vec![false; rows],
                final_obs: vec![0.0; rows * OBS_DIM],
                has_final: vec![false; rows],
                active: vec![false; rows],
            },
            outcomes: vec![SlotStep::default(); config.max_prey],
            scratch: ActScratch::default(),
            infos: vec![Info::default(); rows],
        })
    }

    /// The worlds (for inspection and rendering).
    pub fn worlds(&self) -> &[World] {
        &self.worlds
    }

    /// Rewrites the observation and mask rows of world `w`.
    fn observe_world(&mut self, w: usize) {
        let k = self.config.max_prey;
        for slot in 0..k {
            let row = w * k + slot;
            self.worlds[w].observe(
                &self.config,
                slot,
                &mut self.buffers.obs[row * OBS_DIM..(row + 1) * OBS_DIM],
            );
            self.buffers.active[row] = self.worlds[w].slots()[slot].is_some();
        }
    }
}

impl BatchEnv for ArenaBatch {
    fn num_envs(&self) -> usize {
        self.worlds.len() * self.config.max_prey
    }

    fn observation_space(&self) -> &Space {
        &self.obs_space
    }

    fn action_space(&self) -> &Space {
        &self.act_space
    }

    fn reset(&mut self, seed: u64) -> hlynr_env::Result<()> {
        for w in 0..self.worlds.len() {
            self.worlds[w] = World::new(&self.config, derive_seed(seed, w as u64));
            self.observe_world(w);
        }
        let b = &mut self.buffers;
        b.rewards.fill(0.0);
        b.terminated.fill(false);
        b.truncated.fill(false);
        b.has_final.fill(false);
        self.infos.iter_mut().for_each(Info::clear);
        Ok(())
    }

    fn step(&mut self, actions: &[f32]) -> hlynr_env::Result<()> {
        check_action_batch(&self.act_space, self.num_envs(), actions)?;
        let k = self.config.max_prey;
        self.infos.iter_mut().for_each(Info::clear);
        let b = &mut self.buffers;
        b.terminated.fill(false);
        b.truncated.fill(false);
        b.has_final.fill(false);
        for w in 0..self.worlds.len() {
            let rows = w * k..(w + 1) * k;
            self.worlds[w].act(
                &self.config,
                &actions[rows.start * ACTION_DIM..rows.end * ACTION_DIM],
                &mut self.outcomes,
                &mut self.scratch,
            );
            for (slot, out) in self.outcomes.iter().enumerate() {
                let row = rows.start + slot;
                self.buffers.rewards[row] = out.reward as f32;
                if let Some((prey, death)) = &out.died {
                    self.buffers.terminated[row] = true;
                    write_life(&mut self.infos[row], prey, Some(*death));
                }
            }
            let world = &self.worlds[w];
            if world.timed_out(&self.config) {
                for (slot, cell) in world.slots().iter().enumerate() {
                    let Some(prey) = cell else { continue };
                    let row = rows.start + slot;
                    self.buffers.truncated[row] = true;
                    self.buffers.has_final[row] = true;
                    world.observe(
                        &self.config,
                        slot,
                        &mut self.buffers.final_obs[row * OBS_DIM..(row + 1) * OBS_DIM],
                    );
                    write_life(&mut self.infos[row], prey, None);
                }
            }
            if world.timed_out(&self.config) || world.extinct() {
                self.worlds[w].restart(&self.config);
            }
            self.observe_world(w);
        }
        Ok(())
    }

    fn obs(&self) -> &[f32] {
        &self.buffers.obs
    }

    fn rewards(&self) -> &[f32] {
        &self.buffers.rewards
    }

    fn terminated(&self) -> &[bool] {
        &self.buffers.terminated
    }

    fn truncated(&self) -> &[bool] {
        &self.buffers.truncated
    }

    fn infos(&self) -> &[Info] {
        &self.infos
    }

    fn final_observation(&self, i: usize) -> Option<&[f32]> {
        (*self.buffers.has_final.get(i)?)
            .then(|| &self.buffers.final_obs[i * OBS_DIM..(i + 1) * OBS_DIM])
    }

    fn active(&self) -> Option<&[bool]> {
        Some(&self.buffers.active)
    }

    fn state(&self) -> Value {
        let infos = self
            .infos
            .iter()
            .map(|info| {
                info.episode.map(|ep| {
                    let metrics = info
                        .metrics
                        .iter()
                        .map(|&(k, v)| (k.to_string(), v))
                        .collect();
                    (ep.episode_return, ep.episode_length, metrics)
                })
            })
            .collect();
        hlynr_env::env::to_state(&BatchState {
            worlds: self.worlds.clone(),
            buffers: self.buffers.clone(),
            infos,
        })
    }

    fn set_state(&mut self, state: &Value) -> hlynr_env::Result<()> {
        let saved: BatchState = hlynr_env::env::from_state("ArenaBatch", state)?;
        let rows = self.num_envs();
        if saved.worlds.len() != self.worlds.len()
            || saved.buffers.active.len() != rows
            || saved.infos.len() != rows
            || saved
                .worlds
                .iter()
                .any(|w| w.slots().len() != self.config.max_prey)
        {
            return Err(EnvError::state(
                "ArenaBatch",
                format!(
                    "saved for {} worlds and {} rows; this batch has {} and {rows}",
                    saved.worlds.len(),
                    saved.buffers.active.len(),
                    self.worlds.len()
                ),
            ));
        }
        let mut infos = vec![Info::default(); rows];
        for (info, saved) in infos.iter_mut().zip(&saved.infos) {
            if let Some((episode_return, episode_length, metrics)) = saved {
                info.episode = Some(EpisodeStats {
                    episode_return: *episode_return,
                    episode_length: *episode_length,
                });
                for (key, v) in metrics {
                    let key = LIFE_METRICS
                        .iter()
                        .find(|k| **k == key.as_str())
                        .ok_or_else(|| {
                            EnvError::state("ArenaBatch", format!("unknown metric `{key}`"))
                        })?;
                    info.set(key, *v);
                }
            }
        }
        self.worlds = saved.worlds;
        self.buffers = saved.buffers;
        self.infos = infos;
        Ok(())
    }
}
