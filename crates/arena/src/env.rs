//! One arena game as a single-agent environment, for evaluation: every prey
//! is played by the same policy, one decision at a time.
//!
//! The prey take turns within a tick, in slot order (as PettingZoo's
//! agent-environment-cycle API does): each `step` gives the action of the
//! prey whose observation the previous call returned, and once every living
//! prey has acted the world advances one tick. The reward of a step is the
//! tick's total over all prey (0 between ticks), so the episode return is
//! the whole population's, and the episode is the game: terminated when
//! every prey is dead, truncated at the tick limit. The final step's
//! `info.metrics` report the game (see [`GAME_METRICS`]) and `is_success` is
//! survival to the tick limit.
//!
//! Policies must be feed-forward: consecutive decisions belong to different
//! prey, so a recurrent state would mix them.

use hlynr_env::{Env, Info, ObsMut, Space, Step};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::{ArenaConfig, TICKS_PER_SECOND};
use crate::world::{ACTION_DIM, ActScratch, SlotStep, World};

/// The `info.metrics` of a finished game.
pub const GAME_METRICS: [&str; 9] = [
    "game_s",
    "stars_eaten",
    "births",
    "predators_killed",
    "prey_lifetime_s",
    "caught",
    "starved",
    "wasted_specials",
    "peak_prey",
];

/// A game played turn by turn (see the module documentation).
#[derive(Debug)]
pub struct ArenaEnv {
    config: ArenaConfig,
    obs_space: Space,
    act_space: Space,
    state: TurnState,
    outcomes: Vec<SlotStep>,
    scratch: ActScratch,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct TurnState {
    world: World,
    /// Actions given so far this tick, `[max_prey, ACTION_DIM]`.
    actions: Vec<f32>,
    /// The slot whose observation was returned last.
    turn: usize,
}

impl ArenaEnv {
    /// A game of `config` (validated); `reset` draws the first one.
    pub fn new(config: &ArenaConfig) -> hlynr_env::Result<Self> {
        config
            .validate()
            .map_err(|e| hlynr_env::EnvError::invalid("arena settings", e))?;
        Ok(Self {
            config: config.clone(),
            obs_space: crate::observation::space(),
            act_space: crate::action_space(),
            state: TurnState {
                world: World::new(config, 0),
                actions: vec![0.0; config.max_prey * ACTION_DIM],
                turn: 0,
            },
            outcomes: vec![SlotStep::default(); config.max_prey],
            scratch: ActScratch::default(),
        })
    }

    /// The world being played.
    pub fn world(&self) -> &World {
        &self.state.world
    }

    /// The first living slot after `after` (from the start with `None`).
    fn next_turn(&self, after: Option<usize>) -> Option<usize> {
        let start = after.map_or(0, |s| s + 1);
        (start..self.config.max_prey).find(|&s| self.state.world.slots()[s].is_some())
    }

    fn write_obs(&self, obs: ObsMut<'_>) {
        self.state
            .world
            .observe(&self.config, self.state.turn, obs.values);
    }

    fn write_game(&self, info: &mut Info) {
        let t = self.state.world.finish_totals();
        info.set(
            "game_s",
            f64::from(self.state.world.tick()) / TICKS_PER_SECOND,
        );
        info.set("stars_eaten", t.stars_eaten as f64);
        info.set("births", t.births as f64);
        info.set("predators_killed", t.predators_killed as f64);
        info.set(
            "prey_lifetime_s",
            t.prey_ticks as f64 / t.prey_lived.max(1) as f64 / TICKS_PER_SECOND,
        );
        info.set("caught", t.caught as f64);
        info.set("starved", t.starved as f64);
        info.set("wasted_specials", t.wasted_specials as f64);
        info.set("peak_prey", t.peak_prey as f64);
    }
}

impl Env for ArenaEnv {
    fn observation_space(&self) -> &Space {
        &self.obs_space
    }

    fn action_space(&self) -> &Space {
        &self.act_space
    }

    fn reset(
        &mut self,
        seed: Option<u64>,
        obs: ObsMut<'_>,
        _info: &mut Info,
    ) -> hlynr_env::Result<()> {
        match seed {
            Some(seed) => self.state.world = World::new(&self.config, seed),
            None => self.state.world.restart(&self.config),
        }
        self.state.actions.fill(0.0);
        self.state.turn = self.next_turn(None).expect("a game starts with prey");
        self.write_obs(obs);
        Ok(())
    }

    fn step(
        &mut self,
        action: &[f32],
        obs: ObsMut<'_>,
        info: &mut Info,
    ) -> hlynr_env::Result<Step> {
        let turn = self.state.turn;
        self.state.actions[turn * ACTION_DIM..(turn + 1) * ACTION_DIM].copy_from_slice(action);
        if let Some(next) = self.next_turn(Some(turn)) {
            self.state.turn = next;
            self.write_obs(obs);
            return Ok(Step::default());
        }
        let s = &mut self.state;
        s.world.act(
            &self.config,
            &s.actions,
            &mut self.outcomes,
            &mut self.scratch,
        );
        let reward: f64 = self.outcomes.iter().map(|o| o.reward).sum();
        let terminated = s.world.extinct();
        let truncated = !terminated && s.world.timed_out(&self.config);
        if terminated {
            self.write_game(info);
            info.is_success = Some(false);
            obs.values.fill(0.0);
        } else {
            if truncated {
                self.write_game(info);
                info.is_success = Some(true);
            }
            self.state.turn = self.next_turn(None).expect("a living world has prey");
            self.write_obs(obs);
        }
        Ok(Step {
            reward,
            terminated,
            truncated,
        })
    }

    fn state(&self) -> Value {
        hlynr_env::env::to_state(&self.state)
    }

    fn set_state(&mut self, state: &Value) -> hlynr_env::Result<()> {
        let saved: TurnState = hlynr_env::env::from_state("ArenaEnv", state)?;
        if saved.actions.len() != self.config.max_prey * ACTION_DIM
            || saved.world.slots().len() != self.config.max_prey
        {
            return Err(hlynr_env::EnvError::state(
                "ArenaEnv",
                "saved for another max_prey",
            ));
        }
        self.state = saved;
        Ok(())
    }
}
