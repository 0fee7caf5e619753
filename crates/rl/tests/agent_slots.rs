//! Batches whose rows are agent slots (`BatchEnv::active`): PPO learns only
//! from rows that held an agent, and normalisers see only those rows.

use hlynr_env::{BatchEnv, Info, Space};
use hlynr_rl::env_factory::{ClassicVecEnv, make_classic_vec_env};
use hlynr_rl::ppo::{Ppo, PpoConfig};
use hlynr_rl::trainer::{RunConfig, Value};

/// CartPole rows followed by `extra` rows that never hold an agent and show
/// garbage (observations and rewards of 1e4) that must never be learned from.
struct WithEmptyRows {
    inner: ClassicVecEnv,
    extra: usize,
    obs: Vec<f32>,
    rewards: Vec<f32>,
    terminated: Vec<bool>,
    truncated: Vec<bool>,
    infos: Vec<Info>,
    active: Vec<bool>,
}

const GARBAGE: f32 = 1e4;

impl WithEmptyRows {
    fn new(real: usize, extra: usize) -> Self {
        let cfg: RunConfig =
            hlynr_env::config::from_yaml_str("env: {id: CartPole-v1}\n", "t").unwrap();
        let inner = make_classic_vec_env(&cfg.env, real).unwrap();
        let n = real + extra;
        let mut active = vec![true; n];
        active[real..].fill(false);
        Self {
            inner,
            extra,
            obs: vec![GARBAGE; n * 4],
            rewards: vec![GARBAGE; n],
            terminated: vec![false; n],
            truncated: vec![false; n],
            infos: vec![Info::default(); n],
            active,
        }
    }

    fn copy_inner(&mut self) {
        let real = self.inner.num_envs();
        self.obs[..real * 4].copy_from_slice(self.inner.obs());
        self.rewards[..real].copy_from_slice(self.inner.rewards());
        self.infos[..real].clone_from_slice(self.inner.infos());
        self.terminated[..real].copy_from_slice(self.inner.terminated());
        self.truncated[..real].copy_from_slice(self.inner.truncated());
    }
}

impl BatchEnv for WithEmptyRows {
    fn num_envs(&self) -> usize {
        self.inner.num_envs() + self.extra
    }
    fn observation_space(&self) -> &Space {
        self.inner.observation_space()
    }
    fn action_space(&self) -> &Space {
        self.inner.action_space()
    }
    fn reset(&mut self, seed: u64) -> hlynr_env::Result<()> {
        self.inner.reset(seed)?;
        self.copy_inner();
        Ok(())
    }
    fn step(&mut self, actions: &[f32]) -> hlynr_env::Result<()> {
        self.inner.step(&actions[..self.inner.num_envs()])?;
        self.copy_inner();
        Ok(())
    }
    fn obs(&self) -> &[f32] {
        &self.obs
    }
    fn rewards(&self) -> &[f32] {
        &self.rewards
    }
    fn terminated(&self) -> &[bool] {
        &self.terminated
    }
    fn truncated(&self) -> &[bool] {
        &self.truncated
    }
    fn infos(&self) -> &[Info] {
        &self.infos
    }
    fn final_observation(&self, i: usize) -> Option<&[f32]> {
        self.inner.final_observation(i)
    }
    fn active(&self) -> Option<&[bool]> {
        Some(&self.active)
    }
    fn state(&self) -> Value {
        Value::Null
    }
    fn set_state(&mut self, _: &Value) -> hlynr_env::Result<()> {
        unreachable!("not resumed in these tests")
    }
}

fn config(extra: &str) -> PpoConfig {
    hlynr_env::config::from_yaml_str(
        &format!("n_steps: 32\nbatch_size: 32\nn_epochs: 2\n{extra}"),
        "t",
    )
    .unwrap()
}

#[test]
fn empty_rows_are_no_experience() {
    let mut ppo = Ppo::new(
        config("normalize_observations: true\npolicy: {net_arch: [16]}\n"),
        WithEmptyRows::new(4, 4),
        1,
        10_000,
    )
    .unwrap();
    let m = ppo.iterate().unwrap();
    // 4 real rows x 32 steps = 128 samples: 4 minibatches per epoch, not 8.
    assert_eq!(m.gradient_steps, 2 * 4, "{m:?}");
    // Targets and statistics of CartPole alone: returns of at most ~1/(1-gamma).
    let (mean, std) = (m.value_target_mean.unwrap(), m.value_target_std.unwrap());
    assert!(mean > 0.0 && mean < 100.0 && std < 100.0, "{mean} {std}");
    assert!(m.explained_variance.is_some_and(f64::is_finite));
    let stats = ppo.env().obs_normalizer().unwrap().stats();
    assert!(
        stats.mean().iter().all(|m| m.abs() < 10.0),
        "{:?}",
        stats.mean()
    );
    assert_eq!(ppo.buffer().active.iter().filter(|&&a| a).count(), 128);
}

#[test]
fn recurrent_policies_refuse_agent_slots() {
    let mut ppo = Ppo::new(
        config("policy: {type: lstm, net_arch: []}\n"),
        WithEmptyRows::new(2, 2),
        1,
        10_000,
    )
    .unwrap();
    let err = ppo.iterate().unwrap_err().to_string();
    assert!(err.contains("agent slots"), "{err}");
}
