//! A batch that steps on another thread, as a remote or real-time env does:
//! `step_async` hands the actions over and returns, `step_wait` collects the
//! results. PPO trains over it exactly as over the same envs stepped in place,
//! and `step_async` really returns before the step has run, through the
//! wrappers the trainer puts around a batch.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;
use std::time::Duration;

use hlynr_env::{BatchEnv, EnvError, Info, Space, VecNormalize, VecNormalizeConfig};
use hlynr_rl::env_config::EnvConfig;
use hlynr_rl::env_factory::{ClassicVecEnv, make_classic_vec_env};
use hlynr_rl::episode_metrics::EpisodeMetricsRecorder;
use hlynr_rl::ppo::{Ppo, PpoConfig};
use serde_json::Value;

/// What one step produced, sent back from the worker.
struct Stepped {
    obs: Vec<f32>,
    rewards: Vec<f32>,
    terminated: Vec<bool>,
    truncated: Vec<bool>,
    infos: Vec<Info>,
    final_obs: Vec<Option<Vec<f32>>>,
}

fn results_of(b: &ClassicVecEnv) -> Stepped {
    Stepped {
        obs: b.obs().to_vec(),
        rewards: b.rewards().to_vec(),
        terminated: b.terminated().to_vec(),
        truncated: b.truncated().to_vec(),
        infos: b.infos().to_vec(),
        final_obs: (0..b.num_envs())
            .map(|i| b.final_observation(i).map(<[f32]>::to_vec))
            .collect(),
    }
}

enum Request {
    Reset(u64),
    Step(Vec<f32>),
}

/// CartPole envs owned by a worker thread. With `gate`, the worker holds each
/// step until the test says go (or, after a long wait, steps anyway and
/// records that the caller was still blocked in `step_async`).
struct Threaded {
    observation_space: Space,
    action_space: Space,
    num_envs: usize,
    requests: Sender<Request>,
    results: Receiver<hlynr_env::Result<Stepped>>,
    current: Stepped,
    pending: bool,
    _worker: JoinHandle<()>,
}

impl Threaded {
    fn new(envs: ClassicVecEnv, gate: Option<(Receiver<()>, Arc<AtomicBool>)>) -> Self {
        let (observation_space, action_space, num_envs) = (
            envs.observation_space().clone(),
            envs.action_space().clone(),
            envs.num_envs(),
        );
        let (requests, inbox) = channel::<Request>();
        let (outbox, results) = channel();
        let worker = std::thread::spawn(move || {
            let mut envs = envs;
            for request in inbox {
                let done = match request {
                    Request::Reset(seed) => envs.reset(seed),
                    Request::Step(actions) => {
                        if let Some((go, blocked)) = &gate
                            && go.recv_timeout(Duration::from_secs(5)).is_err()
                        {
                            blocked.store(true, Ordering::SeqCst);
                        }
                        envs.step(&actions)
                    }
                };
                if outbox.send(done.map(|()| results_of(&envs))).is_err() {
                    return;
                }
            }
        });
        Threaded {
            observation_space,
            action_space,
            num_envs,
            requests,
            results,
            current: Stepped {
                obs: Vec::new(),
                rewards: Vec::new(),
                terminated: Vec::new(),
                truncated: Vec::new(),
                infos: Vec::new(),
                final_obs: Vec::new(),
            },
            pending: false,
            _worker: worker,
        }
    }

    fn receive(&mut self) -> hlynr_env::Result<()> {
        let stepped = self
            .results
            .recv()
            .map_err(|e| EnvError::failed("worker", e))??;
        self.current = stepped;
        Ok(())
    }

    fn send(&self, request: Request) -> hlynr_env::Result<()> {
        self.requests
            .send(request)
            .map_err(|e| EnvError::failed("worker", e))
    }
}

impl BatchEnv for Threaded {
    fn num_envs(&self) -> usize {
        self.num_envs
    }
    fn observation_space(&self) -> &Space {
        &self.observation_space
    }
    fn action_space(&self) -> &Space {
        &self.action_space
    }
    fn reset(&mut self, seed: u64) -> hlynr_env::Result<()> {
        self.send(Request::Reset(seed))?;
        self.receive()
    }
    fn step(&mut self, actions: &[f32]) -> hlynr_env::Result<()> {
        self.step_async(actions)?;
        self.step_wait()
    }
    fn step_async(&mut self, actions: &[f32]) -> hlynr_env::Result<()> {
        self.pending = true;
        self.send(Request::Step(actions.to_vec()))
    }
    fn step_wait(&mut self) -> hlynr_env::Result<()> {
        assert!(self.pending, "step_wait without step_async");
        self.pending = false;
        self.receive()
    }
    fn obs(&self) -> &[f32] {
        &self.current.obs
    }
    fn rewards(&self) -> &[f32] {
        &self.current.rewards
    }
    fn terminated(&self) -> &[bool] {
        &self.current.terminated
    }
    fn truncated(&self) -> &[bool] {
        &self.current.truncated
    }
    fn infos(&self) -> &[Info] {
        &self.current.infos
    }
    fn final_observation(&self, i: usize) -> Option<&[f32]> {
        self.current.final_obs.get(i)?.as_deref()
    }
    fn state(&self) -> Value {
        Value::Null
    }
    fn set_state(&mut self, _: &Value) -> hlynr_env::Result<()> {
        Err(EnvError::state("Threaded", "keeps no snapshots"))
    }
}

fn cartpole(n: usize) -> ClassicVecEnv {
    let env = EnvConfig {
        id: "CartPole-v1".into(),
        python: None,
        max_episode_steps: None,
        settings: serde_json::json!({}),
        frame_stack: None,
        remote: None,
    };
    make_classic_vec_env(&env, n).unwrap()
}

fn config() -> PpoConfig {
    hlynr_env::config::from_yaml_str(
        "n_steps: 32\nbatch_size: 32\nn_epochs: 2\npolicy: {net_arch: [16]}\n",
        "t",
    )
    .unwrap()
}

#[test]
fn ppo_over_a_batch_stepped_elsewhere_trains_exactly_as_in_place() {
    let mut local = Ppo::new(config(), cartpole(4), 9, 1024).unwrap();
    let mut remote = Ppo::new(config(), Threaded::new(cartpole(4), None), 9, 1024).unwrap();
    for _ in 0..4 {
        assert_eq!(local.iterate().unwrap(), remote.iterate().unwrap());
    }
    assert_eq!(local.policy().state_dict(), remote.policy().state_dict());
    assert!(local.episodes().total_episodes > 0);
}

#[test]
fn step_async_returns_before_the_step_runs_through_the_wrappers() {
    let (go, gate) = channel();
    let blocked = Arc::new(AtomicBool::new(false));
    // As the trainer stacks them: episode metrics over the normaliser over the batch.
    let threaded = Threaded::new(cartpole(2), Some((gate, Arc::clone(&blocked))));
    let normalized = VecNormalize::new(threaded, VecNormalizeConfig::default()).unwrap();
    let mut batch: Box<dyn BatchEnv> = Box::new(EpisodeMetricsRecorder::new(
        Box::new(normalized) as Box<dyn BatchEnv>
    ));
    batch.reset(1).unwrap();
    let before = batch.obs().to_vec();
    // The worker cannot step until it hears `go`, which is sent only once
    // `step_async` has returned.
    batch.step_async(&[0.0, 1.0]).unwrap();
    go.send(()).unwrap();
    batch.step_wait().unwrap();
    assert!(
        !blocked.load(Ordering::SeqCst),
        "step_async waited for the step"
    );
    assert_ne!(batch.obs(), before.as_slice());
}
