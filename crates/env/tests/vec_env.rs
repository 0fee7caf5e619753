//! Tests of the vectorised environment, the per-env wrappers and `VecNormalize`,
//! driven by a small deterministic counting environment defined here.

use hlynr_env::env::{from_state, to_state};
use hlynr_env::{
    ActionRepeat, BatchEnv, Env, EnvError, EpisodeStatistics, FrameStack, FrameStackPolicy, Info,
    ObsNormalizer, Parallelism, Policy, PolicyInput, RewardScaler, Space, Step, TimeLimit, VecEnv,
    VecNormalize, VecNormalizeConfig,
};
use hlynr_rng::{Rng, derive_seed};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Counts steps; its episode terminates after a horizon drawn at reset from its
/// own generator (or a fixed one). Observation `[t, episode, noise]`; action
/// `[throttle in [-1, 1], choice in 0..3]`; reward mixes noise and the action so
/// that trajectories depend on the seed, the actions and the step order.
#[derive(Debug, Clone)]
struct CounterEnv {
    observation_space: Space,
    action_space: Space,
    fixed_horizon: Option<u64>,
    s: CounterState,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct CounterState {
    rng: Rng,
    t: u64,
    horizon: u64,
    episode: u64,
    return_sum: f64,
}

impl CounterEnv {
    fn new() -> Self {
        Self {
            observation_space: Space::box_1d(vec![0.0, 0.0, 0.0], vec![1e6, 1e6, 1.0]),
            action_space: Space::Tuple {
                spaces: vec![
                    Space::uniform_box(-1.0, 1.0, &[1]),
                    Space::Discrete { n: 3 },
                ],
            },
            fixed_horizon: None,
            s: CounterState {
                rng: Rng::seed_from_u64(0),
                t: 0,
                horizon: 0,
                episode: 0,
                return_sum: 0.0,
            },
        }
    }

    fn with_horizon(horizon: u64) -> Self {
        Self {
            fixed_horizon: Some(horizon),
            ..Self::new()
        }
    }

    fn observe(&mut self, obs: &mut [f32]) {
        obs[0] = self.s.t as f32;
        obs[1] = self.s.episode as f32;
        obs[2] = self.s.rng.uniform_f32();
    }
}

impl Env for CounterEnv {
    fn observation_space(&self) -> &Space {
        &self.observation_space
    }

    fn action_space(&self) -> &Space {
        &self.action_space
    }

    fn reset(
        &mut self,
        seed: Option<u64>,
        obs: hlynr_env::ObsMut<'_>,
        info: &mut Info,
    ) -> hlynr_env::Result<()> {
        let obs = obs.values;
        if let Some(seed) = seed {
            self.s.rng = Rng::seed_from_u64(seed);
            self.s.episode = 0;
        } else {
            self.s.episode += 1;
        }
        self.s.t = 0;
        self.s.return_sum = 0.0;
        self.s.horizon = self
            .fixed_horizon
            .unwrap_or_else(|| 3 + self.s.rng.below(6));
        info.set("reset_marker", 1.0);
        self.observe(obs);
        Ok(())
    }

    fn step(
        &mut self,
        action: &[f32],
        obs: hlynr_env::ObsMut<'_>,
        info: &mut Info,
    ) -> hlynr_env::Result<Step> {
        let obs = obs.values;
        self.s.t += 1;
        let reward =
            self.s.rng.uniform() - 0.5 + f64::from(action[0]) + 0.25 * f64::from(action[1]);
        self.s.return_sum += reward;
        self.observe(obs);
        let terminated = self.s.t >= self.s.horizon;
        info.set("t", self.s.t as f64);
        if self.s.t.is_multiple_of(2) {
            // Set on some steps only, so stale infos would be noticed.
            info.set("even_step", 1.0);
        }
        if terminated {
            info.is_success = Some(self.s.return_sum > 0.0);
        }
        Ok(Step {
            reward,
            terminated,
            truncated: false,
        })
    }

    fn state(&self) -> Value {
        to_state(&self.s)
    }

    fn set_state(&mut self, state: &Value) -> hlynr_env::Result<()> {
        self.s = from_state("CounterEnv", state)?;
        Ok(())
    }
}

/// A valid action batch drawn from the action space.
fn random_actions(rng: &mut Rng, space: &Space, n: usize, out: &mut Vec<f32>) {
    let d = space.flat_dim();
    out.resize(n * d, 0.0);
    for a in out.chunks_exact_mut(d) {
        space.sample(rng, a);
    }
}

fn bits(xs: &[f32]) -> Vec<u32> {
    xs.iter().map(|x| x.to_bits()).collect()
}

/// Everything a batch reports after a step, as exact bit patterns.
#[derive(Debug, PartialEq)]
struct Snapshot {
    obs: Vec<u32>,
    rewards: Vec<u32>,
    terminated: Vec<bool>,
    truncated: Vec<bool>,
    infos: Vec<Info>,
    final_obs: Vec<Option<Vec<u32>>>,
}

fn snapshot<B: BatchEnv>(b: &B) -> Snapshot {
    Snapshot {
        obs: bits(b.obs()),
        rewards: bits(b.rewards()),
        terminated: b.terminated().to_vec(),
        truncated: b.truncated().to_vec(),
        infos: b.infos().to_vec(),
        final_obs: (0..b.num_envs())
            .map(|i| b.final_observation(i).map(bits))
            .collect(),
    }
}

/// Runs `steps` random steps (actions from `action_seed`), returning snapshots.
fn rollout<B: BatchEnv>(b: &mut B, action_seed: u64, steps: usize) -> Vec<Snapshot> {
    let mut rng = Rng::seed_from_u64(action_seed);
    let mut actions = Vec::new();
    (0..steps)
        .map(|_| {
            random_actions(&mut rng, b.action_space(), b.num_envs(), &mut actions);
            b.step(&actions).unwrap();
            snapshot(b)
        })
        .collect()
}

fn counter_vec(n: usize, parallelism: Parallelism) -> VecEnv<CounterEnv> {
    VecEnv::from_fn(n, |_| CounterEnv::new())
        .unwrap()
        .with_parallelism(parallelism)
}

// ---------------------------------------------------------------- VecEnv

#[test]
fn construction_rejects_empty_and_mismatched_batches() {
    let empty: Vec<CounterEnv> = Vec::new();
    assert!(matches!(VecEnv::new(empty), Err(EnvError::Invalid { .. })));
    let mut odd = CounterEnv::new();
    odd.action_space = Space::Discrete { n: 2 };
    let err = VecEnv::new(vec![CounterEnv::new(), CounterEnv::new(), odd]).unwrap_err();
    assert!(err.to_string().contains("env 2 has action space"), "{err}");
}

#[test]
fn step_before_reset_is_an_error() {
    let mut v = counter_vec(2, Parallelism::Serial);
    let err = v.step(&[0.0, 0.0, 0.0, 0.0]).unwrap_err();
    assert!(err.to_string().contains("before reset"), "{err}");
}

#[test]
fn auto_reset_is_same_step_and_keeps_the_finishing_step_outputs() {
    let n = 3;
    let mut v = counter_vec(n, Parallelism::Serial);
    v.reset(11).unwrap();
    // Reference envs stepped by hand with the same seeds and actions.
    let mut refs: Vec<CounterEnv> = (0..n).map(|_| CounterEnv::new()).collect();
    let mut ref_obs = vec![[0.0f32; 3]; n];
    for (i, e) in refs.iter_mut().enumerate() {
        let mut info = Info::default();
        e.reset(
            Some(derive_seed(11, i as u64)),
            (&mut ref_obs[i]).into(),
            &mut info,
        )
        .unwrap();
        assert_eq!(&v.obs()[i * 3..i * 3 + 3], &ref_obs[i]);
        assert_eq!(v.infos()[i].get("reset_marker"), Some(1.0));
    }
    let mut rng = Rng::seed_from_u64(5);
    let mut actions = Vec::new();
    let mut finished = 0;
    for _ in 0..40 {
        random_actions(&mut rng, v.action_space(), n, &mut actions);
        v.step(&actions).unwrap();
        for i in 0..n {
            let mut info = Info::default();
            let mut obs = [0.0f32; 3];
            let step = refs[i]
                .step(&actions[i * 2..i * 2 + 2], (&mut obs).into(), &mut info)
                .unwrap();
            assert_eq!(v.rewards()[i], step.reward as f32);
            assert_eq!(v.terminated()[i], step.terminated);
            assert!(!v.truncated()[i]);
            // The finishing step's info, never the reset's.
            assert_eq!(v.infos()[i], info);
            assert_eq!(v.infos()[i].get("reset_marker"), None);
            if step.done() {
                finished += 1;
                assert!(info.is_success.is_some());
                assert_eq!(v.final_observation(i), Some(&obs[..]));
                let mut reset_info = Info::default();
                refs[i]
                    .reset(None, (&mut obs).into(), &mut reset_info)
                    .unwrap();
                // The row already holds the next episode's first observation.
                assert_eq!(obs[0], 0.0);
                assert_eq!(v.final_observation(i).unwrap()[1] + 1.0, obs[1]);
            } else {
                assert_eq!(v.final_observation(i), None);
            }
            assert_eq!(&v.obs()[i * 3..i * 3 + 3], &obs);
        }
    }
    assert!(finished >= 10, "only {finished} episodes finished");
    assert_eq!(v.final_observation(n), None);
}

#[test]
fn same_seed_same_trajectory_and_env_i_uses_the_derived_seed() {
    let mut a = counter_vec(5, Parallelism::Serial);
    let mut b = counter_vec(5, Parallelism::Serial);
    let mut c = counter_vec(5, Parallelism::Serial);
    a.reset(3).unwrap();
    b.reset(3).unwrap();
    c.reset(4).unwrap();
    let mut single = CounterEnv::new();
    let mut obs = [0.0f32; 3];
    single
        .reset(
            Some(derive_seed(3, 4)),
            (&mut obs).into(),
            &mut Info::default(),
        )
        .unwrap();
    assert_eq!(&a.obs()[12..15], &obs);
    let ra = rollout(&mut a, 9, 60);
    assert_eq!(ra, rollout(&mut b, 9, 60));
    assert_ne!(ra, rollout(&mut c, 9, 60));
    // Reseeding restarts the same trajectory.
    a.reset(3).unwrap();
    assert_eq!(ra, rollout(&mut a, 9, 60));
}

#[test]
fn serial_and_parallel_steps_are_bitwise_identical() {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(4)
        .build()
        .unwrap();
    let mut serial = counter_vec(64, Parallelism::Serial);
    serial.reset(77).unwrap();
    let expected = rollout(&mut serial, 1, 200);
    let modes = [
        Parallelism::Rayon {
            min_envs_per_task: 1,
        },
        Parallelism::Rayon {
            min_envs_per_task: 7,
        },
        Parallelism::Auto { min_task_micros: 0 },
        Parallelism::default(),
    ];
    for mode in modes {
        let mut v = counter_vec(64, mode);
        let got = pool.install(|| {
            v.reset(77).unwrap();
            rollout(&mut v, 1, 200)
        });
        assert!(got == expected, "{mode:?} differs from serial");
    }
}

/// Records which rayon worker stepped it, to show that stepping really is
/// spread over threads.
#[derive(Debug)]
struct ThreadProbe(CounterEnv);

impl Env for ThreadProbe {
    fn observation_space(&self) -> &Space {
        self.0.observation_space()
    }
    fn action_space(&self) -> &Space {
        self.0.action_space()
    }
    fn reset(
        &mut self,
        seed: Option<u64>,
        obs: hlynr_env::ObsMut<'_>,
        info: &mut Info,
    ) -> hlynr_env::Result<()> {
        let obs = obs.values;
        self.0.reset(seed, obs.into(), info)
    }
    fn step(
        &mut self,
        action: &[f32],
        obs: hlynr_env::ObsMut<'_>,
        info: &mut Info,
    ) -> hlynr_env::Result<Step> {
        let obs = obs.values;
        // Enough work per env that other workers wake up and steal tasks.
        let mut x = 0.0f64;
        for k in 0..2_000 {
            x += std::hint::black_box(k as f64).sqrt();
        }
        std::hint::black_box(x);
        let thread = rayon::current_thread_index().map_or(-1.0, |t| t as f64);
        info.set("thread", thread);
        self.0.step(action, obs.into(), info)
    }
    fn state(&self) -> Value {
        self.0.state()
    }
    fn set_state(&mut self, state: &Value) -> hlynr_env::Result<()> {
        self.0.set_state(state)
    }
}

#[test]
fn rayon_mode_uses_several_threads_and_serial_mode_one() {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(4)
        .build()
        .unwrap();
    let threads_used = |parallelism| {
        let mut v = VecEnv::from_fn(32, |_| ThreadProbe(CounterEnv::new()))
            .unwrap()
            .with_parallelism(parallelism);
        pool.install(|| {
            v.reset(0).unwrap();
            let mut seen = std::collections::BTreeSet::new();
            let mut rng = Rng::seed_from_u64(0);
            let mut actions = Vec::new();
            // On a loaded machine idle workers may wake late, so keep stepping
            // (bounded in time) until a second thread shows up.
            let start = std::time::Instant::now();
            for step in 0.. {
                let serial = parallelism == Parallelism::Serial;
                if step >= 30 && (serial || seen.len() > 1 || start.elapsed().as_secs() >= 20) {
                    break;
                }
                random_actions(&mut rng, v.action_space(), 32, &mut actions);
                v.step(&actions).unwrap();
                for info in v.infos() {
                    seen.insert(info.get("thread").unwrap() as i64);
                }
            }
            seen.len()
        })
    };
    assert_eq!(threads_used(Parallelism::Serial), 1);
    assert!(
        threads_used(Parallelism::Rayon {
            min_envs_per_task: 1
        }) > 1
    );
}

#[test]
fn invalid_actions_are_named_and_change_nothing() {
    let mut v = counter_vec(6, Parallelism::Serial);
    v.reset(2).unwrap();
    rollout(&mut v, 3, 5);
    let before_state = v.state();
    let before = snapshot(&v);
    let mut good = Vec::new();
    random_actions(&mut Rng::seed_from_u64(8), v.action_space(), 6, &mut good);

    let mut nan = good.clone();
    nan[3 * 2] = f32::NAN;
    let err = v.step(&nan).unwrap_err();
    assert!(
        matches!(err, EnvError::InvalidAction { env_index: 3, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("slot 0 is NaN"), "{err}");

    let mut bad_choice = good.clone();
    bad_choice[5 * 2 + 1] = 3.0;
    let err = v.step(&bad_choice).unwrap_err();
    assert!(
        matches!(err, EnvError::InvalidAction { env_index: 5, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("slot 1 = 3"), "{err}");

    let mut fractional = good.clone();
    fractional[1] = 0.5;
    assert!(matches!(
        v.step(&fractional),
        Err(EnvError::InvalidAction { env_index: 0, .. })
    ));

    let err = v.step(&good[..11]).unwrap_err();
    assert!(
        matches!(
            err,
            EnvError::Shape {
                expected: 12,
                actual: 11,
                ..
            }
        ),
        "{err:?}"
    );

    assert_eq!(v.state(), before_state);
    assert_eq!(snapshot(&v), before);
    // The batch still steps normally afterwards.
    v.step(&good).unwrap();
}

#[test]
fn state_round_trip_continues_identically() {
    let mut v = counter_vec(7, Parallelism::Serial);
    v.reset(21).unwrap();
    rollout(&mut v, 4, 13);
    let saved = serde_json::to_string(&v.state()).unwrap();
    let after_save = snapshot(&v);
    let expected = rollout(&mut v, 5, 50);

    let mut restored = counter_vec(
        7,
        Parallelism::Rayon {
            min_envs_per_task: 2,
        },
    );
    restored
        .set_state(&serde_json::from_str(&saved).unwrap())
        .unwrap();
    let mut restored_view = snapshot(&restored);
    // Infos are not part of the state; everything else is restored.
    restored_view.infos = after_save.infos.clone();
    assert_eq!(restored_view, after_save);
    assert_eq!(rollout(&mut restored, 5, 50), expected);
}

#[test]
fn set_state_rejects_a_different_batch_and_leaves_it_unchanged() {
    let mut small = counter_vec(3, Parallelism::Serial);
    small.reset(1).unwrap();
    let mut v = counter_vec(4, Parallelism::Serial);
    v.reset(2).unwrap();
    let before = v.state();
    let err = v.set_state(&small.state()).unwrap_err();
    assert!(err.to_string().contains("3 envs"), "{err}");
    // A state whose third env is corrupt: the first two must be rolled back.
    let mut corrupt = counter_vec(4, Parallelism::Serial);
    corrupt.reset(9).unwrap();
    let mut state = corrupt.state();
    state["envs"][2] = Value::String("garbage".into());
    let err = v.set_state(&state).unwrap_err();
    assert!(err.to_string().contains("env 2"), "{err}");
    assert_eq!(v.state(), before);
}

#[test]
fn boxed_batch_is_usable_through_the_trait() {
    let mut boxed: Box<dyn BatchEnv> = Box::new(counter_vec(2, Parallelism::Serial));
    let mut plain = counter_vec(2, Parallelism::Serial);
    boxed.reset(6).unwrap();
    plain.reset(6).unwrap();
    assert_eq!(boxed.obs_dim(), 3);
    assert_eq!(boxed.act_dim(), 2);
    assert_eq!(rollout(&mut boxed, 2, 20), rollout(&mut plain, 2, 20));
}

// ---------------------------------------------------------------- wrappers

fn reset_env<E: Env>(env: &mut E, seed: u64) -> Vec<f32> {
    let mut obs = vec![0.0; env.observation_space().flat_dim()];
    env.reset(Some(seed), (&mut obs).into(), &mut Info::default())
        .unwrap();
    obs
}

fn step_env<E: Env>(env: &mut E, action: &[f32]) -> (Vec<f32>, Step, Info) {
    let mut obs = vec![0.0; env.observation_space().flat_dim()];
    let mut info = Info::default();
    let step = env.step(action, (&mut obs).into(), &mut info).unwrap();
    (obs, step, info)
}

#[test]
fn time_limit_truncates_at_the_limit_unless_terminated() {
    assert!(TimeLimit::new(CounterEnv::new(), 0).is_err());
    let mut env = TimeLimit::new(CounterEnv::with_horizon(100), 4).unwrap();
    for _ in 0..2 {
        reset_env(&mut env, 1);
        for t in 1..=4 {
            let (_, step, _) = step_env(&mut env, &[0.0, 0.0]);
            assert!(!step.terminated);
            assert_eq!(step.truncated, t == 4, "step {t}");
            assert_eq!(env.elapsed_steps(), t);
        }
    }
    // Termination on the limit step wins over truncation.
    let mut env = TimeLimit::new(CounterEnv::with_horizon(4), 4).unwrap();
    reset_env(&mut env, 1);
    for _ in 0..3 {
        step_env(&mut env, &[0.0, 0.0]);
    }
    let (_, step, _) = step_env(&mut env, &[0.0, 0.0]);
    assert!(step.terminated && !step.truncated);
}

#[test]
fn time_limit_in_a_vec_env_reports_truncation_with_the_final_observation() {
    let mut v = VecEnv::from_fn(2, |_| {
        TimeLimit::new(CounterEnv::with_horizon(100), 3).unwrap()
    })
    .unwrap();
    v.reset(0).unwrap();
    rollout(&mut v, 0, 2);
    let last = rollout(&mut v, 0, 1).pop().unwrap();
    assert_eq!(last.truncated, vec![true, true]);
    assert_eq!(last.terminated, vec![false, false]);
    assert_eq!(v.final_observation(1).unwrap()[0], 3.0);
    assert_eq!(v.obs()[3], 0.0);
}

#[test]
fn action_repeat_sums_rewards_and_stops_at_the_end() {
    assert!(ActionRepeat::new(CounterEnv::new(), 0).is_err());
    let mut wrapped = ActionRepeat::new(CounterEnv::with_horizon(5), 3).unwrap();
    let mut reference = CounterEnv::with_horizon(5);
    assert_eq!(reset_env(&mut wrapped, 4), reset_env(&mut reference, 4));
    let action = [0.5, 2.0];
    // First action: three inner steps.
    let (obs, step, info) = step_env(&mut wrapped, &action);
    let mut sum = 0.0;
    let mut last = None;
    for _ in 0..3 {
        let r = step_env(&mut reference, &action);
        sum += r.1.reward;
        last = Some(r);
    }
    let (ref_obs, _, ref_info) = last.unwrap();
    assert_eq!(step.reward, sum);
    assert_eq!(obs, ref_obs);
    assert_eq!(info, ref_info);
    assert!(!step.done());
    // Second action: the episode ends after two inner steps, so only two count.
    let (obs, step, info) = step_env(&mut wrapped, &action);
    let r1 = step_env(&mut reference, &action);
    let r2 = step_env(&mut reference, &action);
    assert!(step.terminated);
    assert_eq!(step.reward, r1.1.reward + r2.1.reward);
    assert_eq!(obs, r2.0);
    assert_eq!(obs[0], 5.0);
    assert_eq!(info.is_success, r2.2.is_success);
    assert_eq!(info.get("t"), Some(5.0));
}

#[test]
fn frame_stack_concatenates_the_last_k_observations_oldest_first() {
    assert!(FrameStack::new(CounterEnv::new(), 0).is_err());
    let mut env = FrameStack::new(CounterEnv::with_horizon(50), 3).unwrap();
    let Space::Box {
        low, high, shape, ..
    } = env.observation_space().clone()
    else {
        panic!("stacked Box space must stay a Box");
    };
    assert_eq!(shape, vec![3, 3]);
    assert_eq!(high, [1e6, 1e6, 1.0].repeat(3));
    assert_eq!(low, vec![0.0; 9]);

    let mut reference = CounterEnv::with_horizon(50);
    let first = reset_env(&mut env, 8);
    let ref_first = reset_env(&mut reference, 8);
    assert_eq!(first, ref_first.repeat(3));
    let mut history = vec![ref_first.clone(), ref_first.clone(), ref_first];
    for _ in 0..6 {
        let (obs, _, _) = step_env(&mut env, &[0.1, 1.0]);
        history.push(step_env(&mut reference, &[0.1, 1.0]).0);
        assert_eq!(obs, history[history.len() - 3..].concat());
        env.observation_space().check(&obs).unwrap();
    }
}

/// Records the observations it is given; acts with a constant.
struct Recorder(Vec<Vec<f32>>);

impl Policy for Recorder {
    fn name(&self) -> &str {
        "recorder"
    }

    fn act(
        &mut self,
        input: &PolicyInput<'_>,
        _deterministic: bool,
        actions: &mut [f32],
    ) -> Result<(), String> {
        self.0.push(input.obs.to_vec());
        actions.copy_from_slice(&[0.1, 1.0]);
        Ok(())
    }
}

#[test]
fn frame_stack_policy_sees_what_the_wrapper_shows() {
    // Two episodes of each: the wrapped env's observations, and what the
    // policy adapter builds from the bare env's observations.
    let mut wrapped = FrameStack::new(CounterEnv::with_horizon(5), 3).unwrap();
    let mut bare = CounterEnv::with_horizon(5);
    let mut policy =
        FrameStackPolicy::new(Recorder(Vec::new()), 3, wrapped.observation_space()).unwrap();
    let mut expected = Vec::new();
    let mut actions = [0.0f32; 2];
    for seed in [4, 9] {
        expected.push(reset_env(&mut wrapped, seed));
        let mut obs = reset_env(&mut bare, seed);
        policy.reset_rows(&[0]);
        loop {
            let input = PolicyInput {
                n: 1,
                obs: &obs,
                obs_bytes: &[],
                controller_view: &[],
            };
            policy.act(&input, true, &mut actions).unwrap();
            let (next, step, _) = step_env(&mut bare, &actions);
            let (stacked, _, _) = step_env(&mut wrapped, &actions);
            obs = next;
            if step.done() {
                break;
            }
            expected.push(stacked);
        }
    }
    assert_eq!(policy_inputs(&policy), expected);
    // A wrong observation width is an error, not a silent misread.
    let input = PolicyInput {
        n: 1,
        obs: &[0.0; 4],
        obs_bytes: &[],
        controller_view: &[],
    };
    assert!(
        policy
            .act(&input, true, &mut actions)
            .unwrap_err()
            .contains("frame stack")
    );
    assert!(FrameStackPolicy::new(Recorder(Vec::new()), 0, wrapped.observation_space()).is_err());
}

fn policy_inputs(policy: &FrameStackPolicy<Recorder>) -> Vec<Vec<f32>> {
    policy.inner().0.clone()
}

#[test]
fn frame_stack_of_discrete_observations_is_multi_discrete() {
    #[derive(Debug)]
    struct Dice(Space, Rng);
    impl Env for Dice {
        fn observation_space(&self) -> &Space {
            &self.0
        }
        fn action_space(&self) -> &Space {
            &self.0
        }
        fn reset(
            &mut self,
            _: Option<u64>,
            obs: hlynr_env::ObsMut<'_>,
            _: &mut Info,
        ) -> hlynr_env::Result<()> {
            let obs = obs.values;
            obs[0] = self.1.below(6) as f32;
            Ok(())
        }
        fn step(
            &mut self,
            _: &[f32],
            obs: hlynr_env::ObsMut<'_>,
            _: &mut Info,
        ) -> hlynr_env::Result<Step> {
            let obs = obs.values;
            obs[0] = self.1.below(6) as f32;
            Ok(Step::default())
        }
        fn state(&self) -> Value {
            Value::Null
        }
        fn set_state(&mut self, _: &Value) -> hlynr_env::Result<()> {
            Ok(())
        }
    }
    let env = FrameStack::new(Dice(Space::Discrete { n: 6 }, Rng::seed_from_u64(0)), 4).unwrap();
    assert_eq!(
        env.observation_space(),
        &Space::MultiDiscrete { nvec: vec![6; 4] }
    );
}

#[test]
fn episode_statistics_reports_return_and_length_on_the_final_step() {
    let mut env = EpisodeStatistics::new(CounterEnv::with_horizon(4));
    let mut reference = CounterEnv::with_horizon(4);
    for episode in 0..3 {
        let seed = (episode == 0).then_some(2);
        let mut obs = [0.0f32; 3];
        env.reset(seed, (&mut obs).into(), &mut Info::default())
            .unwrap();
        reference
            .reset(seed, (&mut obs).into(), &mut Info::default())
            .unwrap();
        let mut sum = 0.0;
        for t in 1..=4 {
            let (_, step, info) = step_env(&mut env, &[-0.3, 1.0]);
            assert_eq!(step.terminated, t == 4);
            sum += step_env(&mut reference, &[-0.3, 1.0]).1.reward;
            if t < 4 {
                assert_eq!(info.episode, None);
            } else {
                let stats = info.episode.expect("final step carries episode stats");
                assert_eq!(stats.episode_length, 4);
                assert_eq!(stats.episode_return, sum);
                assert_eq!(info.is_success, Some(sum > 0.0));
            }
        }
    }
}

#[test]
fn episode_statistics_in_a_vec_env_survive_the_auto_reset() {
    let make = |_| EpisodeStatistics::new(TimeLimit::new(CounterEnv::new(), 6).unwrap());
    let mut v = VecEnv::from_fn(4, make).unwrap();
    v.reset(13).unwrap();
    let mut returns = [0.0f64; 4];
    let mut lengths = [0u64; 4];
    let mut completed = 0;
    let mut rng = Rng::seed_from_u64(1);
    let mut actions = Vec::new();
    for _ in 0..50 {
        random_actions(&mut rng, v.action_space(), 4, &mut actions);
        v.step(&actions).unwrap();
        for i in 0..4 {
            // Rewards are stored as f32; the stats accumulate the f64 rewards.
            returns[i] += f64::from(v.rewards()[i]);
            lengths[i] += 1;
            let done = v.terminated()[i] || v.truncated()[i];
            assert_eq!(v.infos()[i].episode.is_some(), done);
            if let Some(stats) = v.infos()[i].episode {
                assert_eq!(stats.episode_length, lengths[i]);
                assert!((stats.episode_return - returns[i]).abs() < 1e-5);
                returns[i] = 0.0;
                lengths[i] = 0;
                completed += 1;
            }
        }
    }
    assert!(completed > 20);
}

#[test]
fn wrapper_states_round_trip_mid_episode() {
    fn check<E: Env>(mut env: E, mut fresh: E) {
        reset_env(&mut env, 5);
        for k in 0..3 {
            step_env(&mut env, &[0.2, k as f32]);
        }
        let saved = serde_json::to_string(&env.state()).unwrap();
        fresh
            .set_state(&serde_json::from_str(&saved).unwrap())
            .unwrap();
        for k in 0..12 {
            let a = [0.4, (k % 3) as f32];
            let (oa, sa, ia) = step_env(&mut env, &a);
            let (ob, sb, ib) = step_env(&mut fresh, &a);
            assert_eq!((bits(&oa), sa, ia), (bits(&ob), sb, ib), "step {k}");
            if sa.done() {
                let mut o = vec![0.0; oa.len()];
                env.reset(None, (&mut o).into(), &mut Info::default())
                    .unwrap();
                fresh
                    .reset(None, (&mut o).into(), &mut Info::default())
                    .unwrap();
            }
        }
    }
    let stack = || {
        EpisodeStatistics::new(
            FrameStack::new(
                ActionRepeat::new(TimeLimit::new(CounterEnv::new(), 5).unwrap(), 2).unwrap(),
                3,
            )
            .unwrap(),
        )
    };
    check(stack(), stack());
    // Each wrapper's own counter is part of its state: a fresh wrapper restored
    // from a mid-episode state must truncate at the same step.
    let mut limited = TimeLimit::new(CounterEnv::with_horizon(100), 5).unwrap();
    reset_env(&mut limited, 0);
    step_env(&mut limited, &[0.0, 0.0]);
    step_env(&mut limited, &[0.0, 0.0]);
    let mut restored = TimeLimit::new(CounterEnv::with_horizon(100), 5).unwrap();
    restored.set_state(&limited.state()).unwrap();
    assert_eq!(restored.elapsed_steps(), 2);
    let mut frames = FrameStack::new(CounterEnv::new(), 2).unwrap();
    assert!(frames.set_state(&Value::Null).is_err());
    let other_k = FrameStack::new(CounterEnv::new(), 3).unwrap();
    let err = frames.set_state(&other_k.state()).unwrap_err();
    assert!(err.to_string().contains("k = 3"), "{err}");
}

// ---------------------------------------------------------------- VecNormalize

fn normalized(n: usize, config: VecNormalizeConfig) -> VecNormalize<VecEnv<CounterEnv>> {
    VecNormalize::new(counter_vec(n, Parallelism::Serial), config).unwrap()
}

#[test]
fn vec_normalize_matches_standalone_normalisers_and_keeps_raw_values() {
    let n = 5;
    let config = VecNormalizeConfig {
        gamma: 0.9,
        ..VecNormalizeConfig::default()
    };
    let mut v = normalized(n, config);
    let mut obs_norm = ObsNormalizer::new(3);
    let mut scaler = RewardScaler::new(n, 0.9).unwrap();
    v.reset(4).unwrap();
    obs_norm.update(v.raw_obs()).unwrap();
    let mut expected_obs = vec![0.0; n * 3];
    obs_norm.normalize(v.raw_obs(), &mut expected_obs).unwrap();
    assert_eq!(v.obs(), &expected_obs[..]);

    let mut rng = Rng::seed_from_u64(3);
    let mut actions = Vec::new();
    let mut expected_rewards = vec![0.0; n];
    let mut finals_checked = 0;
    for _ in 0..60 {
        random_actions(&mut rng, v.action_space(), n, &mut actions);
        v.step(&actions).unwrap();
        obs_norm.update(v.raw_obs()).unwrap();
        obs_norm.normalize(v.raw_obs(), &mut expected_obs).unwrap();
        assert_eq!(v.obs(), &expected_obs[..]);
        scaler
            .scale(
                v.raw_rewards(),
                v.terminated(),
                v.truncated(),
                None,
                &mut expected_rewards,
            )
            .unwrap();
        assert_eq!(v.rewards(), &expected_rewards[..]);
        assert_eq!(v.raw_rewards(), v.inner().rewards());
        for i in 0..n {
            match v.raw_final_observation(i) {
                Some(raw) => {
                    let mut expected = [0.0f32; 3];
                    obs_norm.normalize(raw, &mut expected).unwrap();
                    assert_eq!(v.final_observation(i), Some(&expected[..]));
                    finals_checked += 1;
                }
                None => assert_eq!(v.final_observation(i), None),
            }
        }
    }
    assert!(finals_checked > 10);
    assert_eq!(v.obs_normalizer(), Some(&obs_norm));
    assert_eq!(v.reward_scaler(), Some(&scaler));
}

#[test]
fn vec_normalize_can_pass_obs_or_rewards_through() {
    let mut v = normalized(
        3,
        VecNormalizeConfig {
            norm_obs: false,
            norm_reward: false,
            ..VecNormalizeConfig::default()
        },
    );
    let mut plain = counter_vec(3, Parallelism::Serial);
    v.reset(1).unwrap();
    plain.reset(1).unwrap();
    assert_eq!(rollout(&mut v, 2, 30), rollout(&mut plain, 2, 30));
    assert!(v.obs_normalizer().is_none() && v.reward_scaler().is_none());
}

#[test]
fn frozen_vec_normalize_applies_but_never_updates_statistics() {
    let mut v = normalized(4, VecNormalizeConfig::default());
    v.reset(0).unwrap();
    rollout(&mut v, 1, 30);
    v.freeze();
    let obs_stats = v.obs_normalizer().unwrap().clone();
    let ret_stats = v.reward_scaler().unwrap().stats().clone();
    rollout(&mut v, 2, 30);
    v.reset(5).unwrap();
    assert_eq!(v.obs_normalizer().unwrap().stats(), obs_stats.stats());
    assert_eq!(v.reward_scaler().unwrap().stats(), &ret_stats);
    let mut expected = vec![0.0; 12];
    obs_stats.normalize(v.raw_obs(), &mut expected).unwrap();
    assert_eq!(v.obs(), &expected[..]);
    v.unfreeze();
    rollout(&mut v, 2, 1);
    assert_ne!(v.obs_normalizer().unwrap().stats(), obs_stats.stats());
}

#[test]
fn vec_normalize_state_round_trip_continues_identically() {
    let mut v = normalized(6, VecNormalizeConfig::default());
    v.reset(10).unwrap();
    rollout(&mut v, 1, 25);
    let saved = serde_json::to_string(&v.state()).unwrap();
    let mut at_save = snapshot(&v);
    let expected = rollout(&mut v, 2, 40);
    let mut restored = normalized(6, VecNormalizeConfig::default());
    restored
        .set_state(&serde_json::from_str(&saved).unwrap())
        .unwrap();
    // Infos are not part of the state; everything else is restored.
    at_save.infos = restored.infos().to_vec();
    assert_eq!(snapshot(&restored), at_save);
    assert_eq!(rollout(&mut restored, 2, 40), expected);
    assert_eq!(restored.obs_normalizer(), v.obs_normalizer());

    // A wrapper configured differently refuses the state and is unchanged.
    let mut other = normalized(
        6,
        VecNormalizeConfig {
            norm_reward: false,
            ..VecNormalizeConfig::default()
        },
    );
    other.reset(0).unwrap();
    let before = other.state();
    assert!(
        other
            .set_state(&serde_json::from_str(&saved).unwrap())
            .is_err()
    );
    assert_eq!(other.state(), before);
}

#[test]
fn eval_batch_takes_training_statistics() {
    let mut train = normalized(4, VecNormalizeConfig::default());
    train.reset(0).unwrap();
    rollout(&mut train, 1, 20);
    let mut eval = normalized(2, VecNormalizeConfig::default());
    eval.reset(99).unwrap();
    let mut stats = train.obs_normalizer().unwrap().clone();
    stats.freeze();
    eval.set_obs_normalizer(stats.clone()).unwrap();
    let mut expected = vec![0.0; 6];
    stats.normalize(eval.raw_obs(), &mut expected).unwrap();
    assert_eq!(eval.obs(), &expected[..]);
    rollout(&mut eval, 3, 10);
    assert_eq!(eval.obs_normalizer(), Some(&stats));
    assert!(eval.set_obs_normalizer(ObsNormalizer::new(5)).is_err());
    assert!(
        eval.set_reward_scaler(train.reward_scaler().unwrap().clone())
            .is_err()
    );
}

/// An env that implements only what stepping needs: it keeps no state
/// snapshots. A batch of them runs; restoring one is refused with a message
/// that says why a run over it cannot resume exactly.
#[test]
fn state_snapshots_are_optional_and_their_absence_is_named() {
    #[derive(Debug)]
    struct Remote(Space);
    impl Env for Remote {
        fn observation_space(&self) -> &Space {
            &self.0
        }
        fn action_space(&self) -> &Space {
            &self.0
        }
        fn reset(
            &mut self,
            _: Option<u64>,
            obs: hlynr_env::ObsMut<'_>,
            _: &mut Info,
        ) -> hlynr_env::Result<()> {
            let obs = obs.values;
            obs.fill(0.0);
            Ok(())
        }
        fn step(
            &mut self,
            _: &[f32],
            obs: hlynr_env::ObsMut<'_>,
            _: &mut Info,
        ) -> hlynr_env::Result<Step> {
            let obs = obs.values;
            obs.fill(1.0);
            Ok(Step::default())
        }
    }
    let space = Space::uniform_box(-1.0, 1.0, &[2]);
    let mut batch = VecEnv::from_fn(2, |_| Remote(space.clone())).unwrap();
    batch.reset(0).unwrap();
    batch.step(&[0.0; 4]).unwrap();
    assert_eq!(batch.obs(), &[1.0; 4]);
    let saved = batch.state();
    let e = batch.set_state(&saved).unwrap_err().to_string();
    assert!(e.contains("keeps no state snapshots"), "{e}");
}
