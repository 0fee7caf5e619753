//! Environment throughput workloads.

use hlynr_env::classic::CartPole;
use hlynr_env::{BatchEnv, Parallelism, TimeLimit, VecEnv};
use hlynr_rng::Rng;

/// CartPole-v1 (with its 500-step time limit) in a `VecEnv`, stepped with
/// uniformly random actions drawn by the caller, as a training loop would.
#[derive(Debug)]
pub struct CartPoleVec {
    envs: VecEnv<TimeLimit<CartPole>>,
    actions: Vec<f32>,
    rng: Rng,
}

impl CartPoleVec {
    /// `num_envs` environments, stepped serially or on the rayon pool.
    pub fn new(num_envs: usize, parallelism: Parallelism) -> Self {
        let mut envs = VecEnv::from_fn(num_envs, |_| {
            TimeLimit::new(CartPole::new(), 500).expect("500 is a valid limit")
        })
        .expect("at least one env")
        .with_parallelism(parallelism);
        envs.reset(0).expect("reset succeeds");
        Self {
            envs,
            actions: vec![0.0; num_envs],
            rng: Rng::seed_from_u64(1),
        }
    }

    /// Number of environments (env steps per call of [`CartPoleVec::step`]).
    pub fn num_envs(&self) -> usize {
        self.envs.num_envs()
    }

    /// One vector step: draws random actions and steps every environment.
    pub fn step(&mut self) {
        for a in &mut self.actions {
            *a = (self.rng.next_u64() >> 63) as f32;
        }
        self.envs.step(&self.actions).expect("valid actions");
    }
}
