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

/// The racing env alone, single-threaded, on the `technical` track with the
/// 64x64 camera (rendered every step) or the LIDAR, stepped with uniformly
/// random discrete actions, resets included.
#[derive(Debug)]
pub struct RacingSteps {
    env: hlynr_racing::RacingEnv,
    values: Vec<f32>,
    bytes: Vec<u8>,
    info: hlynr_env::Info,
    rng: Rng,
}

impl RacingSteps {
    /// The workload with the camera (`true`) or the LIDAR.
    pub fn new(camera: bool) -> Self {
        use hlynr_env::Env;
        use hlynr_racing::{ObservationMode, RacingConfig, RacingEnv};
        let config = RacingConfig {
            observation: if camera {
                ObservationMode::Camera
            } else {
                ObservationMode::Lidar
            },
            ..RacingConfig::default()
        };
        let mut env = RacingEnv::new(&config).expect("the default racing config is valid");
        let space = env.observation_space().clone();
        let mut values = vec![0.0; space.flat_dim()];
        let mut bytes = vec![0; space.byte_dim()];
        let mut info = hlynr_env::Info::default();
        env.reset(
            Some(0),
            hlynr_env::ObsMut::new(&mut values, &mut bytes),
            &mut info,
        )
        .expect("reset succeeds");
        Self {
            env,
            values,
            bytes,
            info,
            rng: Rng::seed_from_u64(2),
        }
    }

    /// One decision (and a reset when the episode ends).
    pub fn step(&mut self) {
        use hlynr_env::{Env, ObsMut};
        // Mostly gas, so that the car covers the track.
        let a = if self.rng.below(4) == 0 {
            self.rng.below(11)
        } else {
            1
        } as f32;
        let obs = ObsMut::new(&mut self.values, &mut self.bytes);
        let step = self
            .env
            .step(&[a], obs, &mut self.info)
            .expect("valid action");
        if step.terminated || step.truncated {
            let obs = ObsMut::new(&mut self.values, &mut self.bytes);
            self.env
                .reset(None, obs, &mut self.info)
                .expect("reset succeeds");
        }
    }
}

/// One arena world, single-threaded, played by the scripted prey (so the
/// population, the stars eaten and the predators arriving are those of a
/// real game), the next game started when one ends. One call is one world
/// tick (the game's one decision per tick), the policy's decisions for
/// every living prey included.
#[derive(Debug)]
pub struct ArenaTicks {
    config: hlynr_arena::ArenaConfig,
    world: hlynr_arena::World,
    policy: hlynr_arena::FleeAndEat,
    obs: Vec<f32>,
    actions: Vec<f32>,
    outcomes: Vec<hlynr_arena::world::SlotStep>,
    scratch: hlynr_arena::world::ActScratch,
}

impl Default for ArenaTicks {
    fn default() -> Self {
        let config = hlynr_arena::ArenaConfig::default();
        let k = config.max_prey;
        Self {
            world: hlynr_arena::World::new(&config, 0),
            policy: hlynr_arena::FleeAndEat::new(&config),
            obs: vec![0.0; hlynr_arena::observation::OBS_DIM],
            actions: vec![0.0; k * hlynr_arena::world::ACTION_DIM],
            outcomes: vec![Default::default(); k],
            scratch: Default::default(),
            config,
        }
    }
}

impl ArenaTicks {
    /// One tick: every living prey observes and decides, then the world steps.
    pub fn step(&mut self) {
        let d = hlynr_arena::world::ACTION_DIM;
        for slot in 0..self.config.max_prey {
            if self.world.slots()[slot].is_some() {
                self.world.observe(&self.config, slot, &mut self.obs);
                self.policy
                    .decide(&self.obs, &mut self.actions[slot * d..(slot + 1) * d]);
            }
        }
        self.world.act(
            &self.config,
            &self.actions,
            &mut self.outcomes,
            &mut self.scratch,
        );
        if self.world.extinct() || self.world.timed_out(&self.config) {
            self.world.restart(&self.config);
        }
    }
}
