//! The controller view travels from each env through wrappers into the batch.

use hlynr_env::env::{from_state, to_state};
use hlynr_env::{BatchEnv, Env, Info, Space, Step, TimeLimit, VecEnv};
use serde_json::Value;

/// Counts its steps; its controller view is `[steps, seed]`.
#[derive(Debug)]
struct Counter {
    obs_space: Space,
    act_space: Space,
    steps: u64,
    seed: u64,
}

impl Counter {
    fn new() -> Self {
        Self {
            obs_space: Space::uniform_box(0.0, 1e9, &[1]),
            act_space: Space::Discrete { n: 2 },
            steps: 0,
            seed: 0,
        }
    }
}

impl Env for Counter {
    fn observation_space(&self) -> &Space {
        &self.obs_space
    }
    fn action_space(&self) -> &Space {
        &self.act_space
    }
    fn reset(
        &mut self,
        seed: Option<u64>,
        obs: hlynr_env::ObsMut<'_>,
        _info: &mut Info,
    ) -> hlynr_env::Result<()> {
        let obs = obs.values;
        if let Some(s) = seed {
            self.seed = s;
        }
        self.steps = 0;
        obs[0] = 0.0;
        Ok(())
    }
    fn step(
        &mut self,
        action: &[f32],
        obs: hlynr_env::ObsMut<'_>,
        _info: &mut Info,
    ) -> hlynr_env::Result<Step> {
        let obs = obs.values;
        self.steps += 1 + action[0] as u64;
        obs[0] = self.steps as f32;
        Ok(Step::default())
    }
    fn state(&self) -> Value {
        to_state(&(self.steps, self.seed))
    }
    fn set_state(&mut self, state: &Value) -> hlynr_env::Result<()> {
        (self.steps, self.seed) = from_state("Counter", state)?;
        Ok(())
    }
    fn controller_view_dim(&self) -> usize {
        2
    }
    fn write_controller_view(&self, out: &mut [f64]) {
        out[0] = self.steps as f64;
        out[1] = self.seed as f64;
    }
}

#[test]
fn views_follow_reset_step_and_restore_through_wrappers() {
    let mut envs = VecEnv::from_fn(3, |_| TimeLimit::new(Counter::new(), 100).unwrap()).unwrap();
    assert_eq!(envs.controller_view_dim(), 2);
    envs.reset(11).unwrap();
    let seeds: Vec<f64> = (0..3)
        .map(|i| hlynr_rng::derive_seed(11, i) as f64)
        .collect();
    for (row, seed) in envs.controller_view().chunks(2).zip(&seeds) {
        assert_eq!(row, [0.0, *seed]);
    }
    envs.step(&[0.0, 1.0, 0.0]).unwrap();
    let steps: Vec<f64> = envs.controller_view().chunks(2).map(|r| r[0]).collect();
    assert_eq!(steps, [1.0, 2.0, 1.0]);

    let saved = envs.state();
    envs.step(&[1.0, 1.0, 1.0]).unwrap();
    envs.set_state(&saved).unwrap();
    let steps: Vec<f64> = envs.controller_view().chunks(2).map(|r| r[0]).collect();
    assert_eq!(steps, [1.0, 2.0, 1.0]);
}

#[test]
fn envs_without_a_view_publish_an_empty_one() {
    let mut envs = VecEnv::from_fn(2, |_| hlynr_env::classic::CartPole::new()).unwrap();
    envs.reset(0).unwrap();
    assert_eq!(envs.controller_view_dim(), 0);
    assert!(envs.controller_view().is_empty());
}
