//! The evaluation engine on classic-control envs: identical seeds for every
//! policy, determinism (also across thread counts), controller views, success
//! read from `info`, and clear errors.

use hlynr_env::classic::CartPole;
use hlynr_env::{Env, Info, ObsMut, Policy, PolicyInput, Space, Step, TimeLimit};
use hlynr_rl::eval::report::{EvalReport, ReportContext};
use hlynr_rl::eval::{
    EpisodeProbe, EvalConfig, EvalError, PolicyEpisodes, episode_seed, evaluate,
    evaluate_with_probes,
};

type CartPoleTask = TimeLimit<CartPole>;

fn cartpole() -> hlynr_env::Result<CartPoleTask> {
    TimeLimit::new(CartPole::new(), 500)
}

/// Pushes the cart toward the side the pole leans to (a decent CartPole
/// controller: long but not always maximal episodes).
#[derive(Debug)]
struct Lean;

impl Policy for Lean {
    fn name(&self) -> &str {
        "lean"
    }
    fn act(
        &mut self,
        input: &PolicyInput<'_>,
        _det: bool,
        actions: &mut [f32],
    ) -> Result<(), String> {
        for (i, a) in actions.iter_mut().enumerate().take(input.n) {
            let o = input.obs_row(i).values;
            *a = if o[2] + 0.5 * o[3] > 0.0 { 1.0 } else { 0.0 };
        }
        Ok(())
    }
}

/// Always pushes in the same direction.
#[derive(Debug)]
struct Constant(f32, &'static str);

impl Policy for Constant {
    fn name(&self) -> &str {
        self.1
    }
    fn act(
        &mut self,
        _input: &PolicyInput<'_>,
        _det: bool,
        actions: &mut [f32],
    ) -> Result<(), String> {
        actions.fill(self.0);
        Ok(())
    }
}

fn policies() -> Vec<Box<dyn Policy>> {
    vec![
        Box::new(Lean),
        Box::new(Constant(0.0, "left")),
        Box::new(Constant(1.0, "right")),
    ]
}

fn context(config: &EvalConfig) -> ReportContext {
    ReportContext {
        env: "CartPole-v1".into(),
        scenario: None,
        seed: config.seed,
        episodes: config.episodes,
        deterministic: config.deterministic,
        oracle: false,
        spec: Default::default(),
    }
}

fn report_json(config: &EvalConfig) -> String {
    let results = evaluate(&cartpole, &mut policies(), config).unwrap();
    EvalReport::new(&context(config), &results)
        .unwrap()
        .to_json()
}

/// Records the env's full state right after every reset.
#[derive(Debug, Default)]
struct InitialStates(Vec<serde_json::Value>);

impl EpisodeProbe<CartPoleTask> for InitialStates {
    fn on_step(&mut self, episode: u64, step: u64, env: &CartPoleTask) {
        if step == 0 {
            assert_eq!(episode as usize, self.0.len(), "episodes run in order");
            self.0.push(env.state());
        }
    }
}

#[test]
fn every_policy_sees_the_same_initial_states() {
    let config = EvalConfig::new(12, 99);
    let (results, probes) = evaluate_with_probes(&cartpole, &mut policies(), &config, |_| {
        InitialStates::default()
    })
    .unwrap();
    assert_eq!(probes.len(), 3);
    for p in &probes[1..] {
        assert_eq!(p.0, probes[0].0, "initial states differ between policies");
    }
    // ...while episodes differ from each other.
    assert_ne!(probes[0].0[0], probes[0].0[1]);
    for r in &results {
        for (k, e) in r.episodes.iter().enumerate() {
            assert_eq!(e.episode, k as u64);
            assert_eq!(e.seed, episode_seed(99, k as u64));
        }
    }
    // The policies really differ: the lean controller balances far longer.
    let mean_len = |r: &PolicyEpisodes| {
        r.episodes.iter().map(|e| e.length as f64).sum::<f64>() / r.episodes.len() as f64
    };
    assert!(mean_len(&results[0]) > 3.0 * mean_len(&results[1]));
    for e in &results[0].episodes {
        assert_eq!(
            e.episode_return, e.length as f64,
            "CartPole pays 1 per step"
        );
        assert_eq!(e.terminated, e.length < 500);
        assert_eq!(e.truncated, e.length == 500);
        let expected = if e.length < 500 {
            "terminated"
        } else {
            "truncated"
        };
        assert_eq!(e.termination_reason, expected);
    }
}

#[test]
fn fixed_seed_gives_byte_identical_reports() {
    let config = EvalConfig::new(20, 7);
    let a = report_json(&config);
    let b = report_json(&config);
    assert_eq!(a, b);
    let c = report_json(&EvalConfig::new(20, 8));
    assert_ne!(a, c, "a different seed must change the report");
}

#[test]
fn reports_are_independent_of_the_thread_count() {
    let config = EvalConfig::new(15, 3);
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| report_json(&config))
    };
    let one = run(1);
    assert_eq!(one, run(2));
    assert_eq!(one, run(4));
}

/// CartPole that publishes its observation as the controller view and
/// reports success (balanced for 100 steps) and a metric on the final step.
#[derive(Debug)]
struct ViewCartPole {
    inner: TimeLimit<CartPole>,
    last_obs: [f32; 4],
}

impl Env for ViewCartPole {
    fn observation_space(&self) -> &Space {
        self.inner.observation_space()
    }
    fn action_space(&self) -> &Space {
        self.inner.action_space()
    }
    fn reset(
        &mut self,
        seed: Option<u64>,
        mut obs: ObsMut<'_>,
        info: &mut Info,
    ) -> hlynr_env::Result<()> {
        self.inner.reset(seed, obs.reborrow(), info)?;
        self.last_obs.copy_from_slice(obs.values);
        Ok(())
    }
    fn step(
        &mut self,
        action: &[f32],
        mut obs: ObsMut<'_>,
        info: &mut Info,
    ) -> hlynr_env::Result<Step> {
        let step = self.inner.step(action, obs.reborrow(), info)?;
        self.last_obs.copy_from_slice(obs.values);
        if step.done() {
            let length = self.inner.elapsed_steps();
            info.is_success = Some(length >= 100);
            info.set("cart_position_m", f64::from(obs.values[0]));
            info.set("steps_balanced", length as f64);
        }
        Ok(step)
    }
    fn state(&self) -> serde_json::Value {
        self.inner.state()
    }
    fn set_state(&mut self, state: &serde_json::Value) -> hlynr_env::Result<()> {
        self.inner.set_state(state)
    }
    fn controller_view_dim(&self) -> usize {
        4
    }
    fn write_controller_view(&self, out: &mut [f64]) {
        for (o, &v) in out.iter_mut().zip(&self.last_obs) {
            *o = f64::from(v);
        }
    }
}

fn view_cartpole() -> hlynr_env::Result<ViewCartPole> {
    Ok(ViewCartPole {
        inner: cartpole()?,
        last_obs: [0.0; 4],
    })
}

/// Acts on the controller view only, and fails if it does not match the
/// observation (i.e. if the engine did not refresh it this step).
#[derive(Debug)]
struct ViewLean;

impl Policy for ViewLean {
    fn name(&self) -> &str {
        "view-lean"
    }
    fn act(
        &mut self,
        input: &PolicyInput<'_>,
        _det: bool,
        actions: &mut [f32],
    ) -> Result<(), String> {
        let view = input.view_row(0);
        let obs = input.obs_row(0).values;
        if view.len() != 4 || view.iter().zip(obs).any(|(v, &o)| *v != f64::from(o)) {
            return Err(format!(
                "stale controller view {view:?} for observation {obs:?}"
            ));
        }
        actions[0] = if view[2] + 0.5 * view[3] > 0.0 {
            1.0
        } else {
            0.0
        };
        Ok(())
    }
}

#[test]
fn controller_view_is_filled_every_step_and_success_is_read_from_info() {
    let config = EvalConfig::new(10, 5);
    let mut ps: Vec<Box<dyn Policy>> = vec![Box::new(ViewLean), Box::new(Constant(1.0, "right"))];
    let results = evaluate(&view_cartpole, &mut ps, &config).unwrap();
    // The view-driven controller matches the observation-driven one exactly.
    let lean = evaluate(&cartpole, &mut [Box::new(Lean) as Box<dyn Policy>], &config).unwrap();
    let lengths = |r: &PolicyEpisodes| r.episodes.iter().map(|e| e.length).collect::<Vec<_>>();
    assert_eq!(lengths(&results[0]), lengths(&lean[0]));

    let report = EvalReport::new(&context(&config), &results).unwrap();
    for (name, r) in [("view-lean", &results[0]), ("right", &results[1])] {
        let expected = r.episodes.iter().filter(|e| e.length >= 100).count() as u64;
        let p = report.policies.get(name).unwrap();
        assert_eq!(p.successes, Some(expected), "{name}");
        let steps = &p.metrics["steps_balanced"];
        assert_eq!(steps.count, 10);
        assert_eq!(steps.mean, p.episode_length.mean);
        assert!(p.metrics.contains_key("cart_position_m"));
    }
    assert_eq!(report.policies.get("right").unwrap().successes, Some(0));
    assert!(report.policies.get("view-lean").unwrap().successes.unwrap() > 0);
}

/// Fails on a chosen step of a chosen episode.
#[derive(Debug)]
struct FailsAt {
    episode: u64,
    step: u64,
    seen_episode: u64,
    seen_step: u64,
    nan: bool,
}

impl Policy for FailsAt {
    fn name(&self) -> &str {
        "flaky"
    }
    fn act(
        &mut self,
        _input: &PolicyInput<'_>,
        _det: bool,
        actions: &mut [f32],
    ) -> Result<(), String> {
        let hit = self.seen_episode == self.episode && self.seen_step == self.step;
        self.seen_step += 1;
        actions[0] = 0.0;
        if hit && self.nan {
            actions[0] = f32::NAN;
        } else if hit {
            return Err("network produced garbage".into());
        }
        Ok(())
    }
    fn reset_rows(&mut self, rows: &[usize]) {
        assert_eq!(rows, &[0]);
        if self.seen_step > 0 {
            self.seen_episode += 1;
        }
        self.seen_step = 0;
    }
}

#[test]
fn policy_errors_and_invalid_actions_name_policy_episode_and_step() {
    let config = EvalConfig::new(5, 1);
    let flaky = |nan| -> Vec<Box<dyn Policy>> {
        vec![
            Box::new(Lean),
            Box::new(FailsAt {
                episode: 2,
                step: 3,
                seen_episode: 0,
                seen_step: 0,
                nan,
            }),
        ]
    };
    let err = evaluate(&cartpole, &mut flaky(false), &config).unwrap_err();
    assert!(matches!(err, EvalError::Policy { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("\"flaky\"") && text.contains("episode 2") && text.contains("step 3"),
        "{text}"
    );
    assert!(text.contains("network produced garbage"), "{text}");
    let err = evaluate(&cartpole, &mut flaky(true), &config).unwrap_err();
    assert!(matches!(err, EvalError::InvalidAction { .. }), "{err:?}");
    assert!(err.to_string().contains("episode 2, step 3"), "{err}");
}

#[test]
fn bad_configurations_are_rejected_with_names() {
    let err = evaluate(&cartpole, &mut policies(), &EvalConfig::new(0, 1)).unwrap_err();
    assert!(err.to_string().contains("episodes"), "{err}");
    let mut twice: Vec<Box<dyn Policy>> = vec![Box::new(Lean), Box::new(Lean)];
    let err = evaluate(&cartpole, &mut twice, &EvalConfig::new(2, 1)).unwrap_err();
    assert!(err.to_string().contains("\"lean\" appears twice"), "{err}");
    let err = evaluate(&cartpole, &mut Vec::new(), &EvalConfig::new(2, 1)).unwrap_err();
    assert!(err.to_string().contains("at least one policy"), "{err}");
    let failing = || -> hlynr_env::Result<CartPoleTask> { TimeLimit::new(CartPole::new(), 0) };
    let err = evaluate(&failing, &mut policies(), &EvalConfig::new(2, 1)).unwrap_err();
    assert!(matches!(err, EvalError::Env(_)), "{err:?}");
}

#[test]
fn step_cap_truncates_envs_without_a_time_limit() {
    let mut config = EvalConfig::new(4, 2);
    config.max_episode_steps = Some(25);
    let raw = || -> hlynr_env::Result<CartPole> { Ok(CartPole::new()) };
    let mut ps: Vec<Box<dyn Policy>> = vec![Box::new(Lean)];
    let results = evaluate(&raw, &mut ps, &config).unwrap();
    for e in &results[0].episodes {
        assert_eq!(e.length, 25);
        assert!(e.truncated && !e.terminated);
        assert_eq!(e.termination_reason, "step_cap");
    }
}

#[test]
fn box_actions_are_clipped_into_bounds() {
    use hlynr_rl::eval::clip_to_space;
    let space = Space::Tuple {
        spaces: vec![
            Space::uniform_box(-1.0, 1.0, &[2]),
            Space::Discrete { n: 3 },
        ],
    };
    let mut a = [3.0, -0.5, 2.0];
    clip_to_space(&space, &mut a);
    assert_eq!(a, [1.0, -0.5, 2.0]);
    assert!(space.check(&a).is_ok());
    let mut bad = [f32::NAN, 0.0, 1.0];
    clip_to_space(&space, &mut bad);
    assert!(space.check(&bad).is_err());
}
