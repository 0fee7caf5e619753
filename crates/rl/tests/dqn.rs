//! DQN: Q-network gradients against finite differences, exact resume with a
//! full (wrapped) prioritised replay buffer, clear errors for what cannot
//! work, and learning CartPole.

use std::path::{Path, PathBuf};

use hlynr_env::Space;
use hlynr_nn::Tensor;
use hlynr_rl::algorithm::AlgorithmState;
use hlynr_rl::policy::{
    CnnConfig, FeaturesConfig, ImplicitQuantiles, NoisyConfig, QNetConfig, QNetwork, QOutputs,
};
use hlynr_rl::progress::ProgressMode;
use hlynr_rl::trainer::{
    ClassicEnvFactory, EnvFactory, Result, RunConfig, RunLocation, TrainStatus, Trainer, Value,
};
use hlynr_rng::Rng;

/// `L = sum G * Q` for a fixed random `G`: its gradient with respect to the
/// parameters is exactly what `backward(G)` adds, so central differences of
/// `L` check every parameter's gradient.
/// Implicit networks are checked at fixed random fractions, `atoms` per
/// observation.
fn check_gradients(space: &Space, config: &QNetConfig, outputs: &QOutputs, seed: u64) -> usize {
    let mut rng = Rng::seed_from_u64(seed);
    let action = Space::Discrete { n: 3 };
    let mut net = QNetwork::new(space, &action, config, outputs, &mut rng).unwrap();
    let atoms = match outputs {
        QOutputs::Implicit(_) => 3,
        o => o.atoms(),
    };
    net.resample_noise(&mut rng);
    let b = 4;
    let obs = Tensor::from_vec(
        &[b, space.flat_dim()],
        (0..b * space.flat_dim())
            .map(|_| rng.normal_f32())
            .collect(),
    )
    .unwrap();
    let bytes: Vec<u8> = (0..b * space.byte_dim())
        .map(|_| rng.below(256) as u8)
        .collect();
    let taus: Vec<f32> = (0..b * atoms).map(|_| rng.uniform_f32()).collect();
    let w = 3 * atoms;
    let g = Tensor::from_vec(&[b, w], (0..b * w).map(|_| rng.normal_f32()).collect()).unwrap();
    let loss = |net: &mut QNetwork| -> f64 {
        let q = if net.is_implicit() {
            net.forward_at(&obs, &bytes, &taus, atoms).unwrap()
        } else {
            net.forward(&obs, &bytes).unwrap()
        };
        q.data()
            .iter()
            .zip(g.data())
            .map(|(&q, &g)| f64::from(q) * f64::from(g))
            .sum()
    };
    loss(&mut net);
    net.zero_grad();
    net.backward(&obs, &g).unwrap();
    // Buffers (the noisy layers' noise) are not trained.
    let grads: Vec<(usize, String, Vec<f32>)> = net
        .named_params()
        .into_iter()
        .enumerate()
        .filter(|(_, (_, p))| p.is_trainable())
        .map(|(i, (n, p))| (i, n, p.grad.data().to_vec()))
        .collect();
    let eps = 2e-3f32;
    let (mut checked, mut kinks) = (0, 0);
    for (pi, name, grad) in &grads {
        for (j, &analytic) in grad.iter().enumerate() {
            let set = |net: &mut QNetwork, d: f32| {
                net.named_params_mut()[*pi].1.value.data_mut()[j] += d;
            };
            let base = loss(&mut net);
            set(&mut net, eps);
            let up = loss(&mut net);
            set(&mut net, -2.0 * eps);
            let down = loss(&mut net);
            set(&mut net, eps);
            let numeric = (up - down) / (2.0 * f64::from(eps));
            let tol = 2e-3 + 2e-2 * numeric.abs().max(f64::from(analytic).abs());
            // A ReLU kink within eps makes the one-sided slopes disagree.
            let (fwd, bwd) = ((up - base) / f64::from(eps), (base - down) / f64::from(eps));
            if (fwd - bwd).abs() > 2.0 * tol {
                kinks += 1;
                continue;
            }
            assert!(
                (numeric - f64::from(analytic)).abs() <= tol,
                "{name}[{j}]: analytic {analytic} vs numeric {numeric} ({config:?})"
            );
            checked += 1;
        }
    }
    assert!(kinks * 10 <= checked, "{kinks} kinks for {checked} entries");
    checked
}

#[test]
fn q_network_gradients_match_finite_differences() {
    let vector = Space::uniform_box(-1.0, 1.0, &[5]);
    let camera = Space::Tuple {
        spaces: vec![
            Space::byte_box(&[2, 9, 9]),
            Space::uniform_box(-1.0, 1.0, &[2]),
        ],
    };
    let cnn = FeaturesConfig::Cnn(CnnConfig {
        channels: vec![3, 2],
        kernels: vec![3, 2],
        strides: vec![2, 1],
        features_dim: 4,
    });
    let mut total = 0;
    let iqn = |head_arch: Vec<usize>| {
        QOutputs::Implicit(ImplicitQuantiles {
            cosine_dim: 5,
            head_arch,
            policy_quantiles: 4,
        })
    };
    // (seed, dueling, layer norm, outputs, noisy): expectation, quantile and
    // implicit quantile heads, plain and noisy layers (with fixed noise).
    for (seed, dueling, layer_norm, outputs, noisy) in [
        (1, false, false, QOutputs::Expected, false),
        (2, true, false, QOutputs::Expected, false),
        (3, true, true, QOutputs::Expected, false),
        (4, false, false, QOutputs::Quantiles(4), false),
        (5, true, false, QOutputs::Quantiles(4), false),
        (6, true, false, QOutputs::Quantiles(4), true),
        (7, false, false, QOutputs::Expected, true),
        (8, false, false, iqn(vec![]), false),
        (9, false, false, iqn(vec![4]), false),
        (10, true, false, iqn(vec![4]), true),
    ] {
        let config = QNetConfig {
            net_arch: vec![6, 5],
            dueling,
            layer_norm,
            noisy: noisy.then_some(NoisyConfig { sigma0: 0.5 }),
            ..QNetConfig::default()
        };
        total += check_gradients(&vector, &config, &outputs, seed);
        let config = QNetConfig {
            features: cnn.clone(),
            ..config
        };
        total += check_gradients(&camera, &config, &outputs, seed + 100);
    }
    assert!(total > 900, "{total}");
}

#[test]
fn q_network_names_follow_pytorch() {
    let space = Space::uniform_box(-1.0, 1.0, &[4]);
    let action = Space::Discrete { n: 2 };
    let names = |dueling| -> Vec<String> {
        let config = QNetConfig {
            net_arch: vec![8, 8],
            dueling,
            ..QNetConfig::default()
        };
        let net = QNetwork::new(
            &space,
            &action,
            &config,
            &QOutputs::Expected,
            &mut Rng::seed_from_u64(0),
        )
        .unwrap();
        net.named_params().into_iter().map(|(n, _)| n).collect()
    };
    // SB3's QNetwork.q_net: Linear, ReLU, Linear, ReLU, Linear.
    assert_eq!(
        names(false),
        [
            "q_net.0.weight",
            "q_net.0.bias",
            "q_net.2.weight",
            "q_net.2.bias",
            "q_net.4.weight",
            "q_net.4.bias"
        ]
    );
    assert_eq!(
        names(true)[4..],
        [
            "value_head.weight",
            "value_head.bias",
            "advantage_head.weight",
            "advantage_head.bias"
        ]
    );
}

#[test]
fn what_cannot_work_is_refused_with_the_reason() {
    let mut rng = Rng::seed_from_u64(0);
    let vector = Space::uniform_box(-1.0, 1.0, &[4]);
    let e = QNetwork::new(
        &vector,
        &Space::uniform_box(-1.0, 1.0, &[2]),
        &QNetConfig::default(),
        &QOutputs::Expected,
        &mut rng,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("discrete actions"), "{e}");
    // Camera frames given to an MLP without a CNN.
    let frames = Space::byte_box(&[4, 64, 64]);
    let e = QNetwork::new(
        &frames,
        &Space::Discrete { n: 5 },
        &QNetConfig::default(),
        &QOutputs::Expected,
        &mut rng,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("images") && e.contains("type: cnn"), "{e}");
    // A replay buffer larger than the machine's memory, before allocating it.
    let text = "env: {id: CartPole-v1}\nalgo: dqn\ndqn: {buffer_size: 9000000000}\n";
    let root = scratch("huge");
    let e = match create(&root, text) {
        Ok(_) => panic!("a 9e9-transition buffer was accepted"),
        Err(e) => e,
    };
    assert!(e.contains("GiB") && e.contains("dqn.buffer_size"), "{e}");
    // A section of another algorithm is not silently ignored.
    let e = hlynr_env::config::resolve::<RunConfig, &str>(
        "env: {id: CartPole-v1}\nalgo: dqn\nppo: {n_steps: 64}\n",
        "test",
        &[],
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("`ppo` section") && e.contains("algo: dqn"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&root);
}

fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hlynr-dqn-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn factory(config: &RunConfig) -> Result<Box<dyn EnvFactory>> {
    Ok(Box::new(ClassicEnvFactory::new(&config.env)?))
}

fn create(root: &Path, text: &str) -> std::result::Result<Trainer, String> {
    let (config, resolved): (RunConfig, Value) =
        hlynr_env::config::resolve(text, "test", &[] as &[&str]).map_err(|e| e.to_string())?;
    let location = RunLocation {
        runs_dir: root.to_path_buf(),
        name: "dqn".into(),
        command_line: vec!["test".into()],
    };
    Trainer::create_staged(config, &resolved, factory, &location, ProgressMode::Quiet)
        .map_err(|e| e.to_string())
}

/// The run at `run_dir` resumed from its newest valid checkpoint.
fn resume(run_dir: &Path) -> (Trainer, hlynr_rl::trainer::ResumeReport) {
    Trainer::resume(run_dir, factory, vec!["resume".into()], ProgressMode::Quiet).unwrap()
}

/// A trainer for the config `text` whose envs come from `envs()`.
fn create_with_envs(root: &Path, text: &str, envs: fn() -> Box<dyn EnvFactory>) -> Trainer {
    let (config, resolved): (RunConfig, Value) =
        hlynr_env::config::resolve(text, "test", &[] as &[&str]).unwrap();
    let location = RunLocation {
        runs_dir: root.to_path_buf(),
        name: "dqn".into(),
        command_line: vec!["test".into()],
    };
    let factory = |_: &RunConfig| -> Result<Box<dyn EnvFactory>> { Ok(envs()) };
    Trainer::create_staged(config, &resolved, factory, &location, ProgressMode::Quiet).unwrap()
}

/// Every Rainbow switch of this issue on, a buffer small enough to wrap.
const RESUME_CONFIG: &str = "env: {id: CartPole-v1}\nalgo: dqn\nseed: 5\nn_envs: 2\ntotal_timesteps: 2400\n\
    dqn: {buffer_size: 700, learning_starts: 200, batch_size: 32, train_freq: 8, gradient_steps: 4, \
    target_update_interval: 100, tau: 0.5, exploration_fraction: 0.5, learning_rate: 1.0e-3, \
    double_q: true, n_step: 3, prioritized_replay: {alpha: 0.6, beta0: 0.4}, \
    policy: {net_arch: [16], dueling: true}}\n\
    run: {checkpoint_every_steps: 800, eval_every_steps: 1200, eval_episodes: 2}\n";

/// The algorithm's full state and the bytes of its resume files.
fn snapshot(t: &Trainer) -> (AlgorithmState, Vec<Vec<u8>>) {
    let algorithm = t.algorithm();
    let files = algorithm.resume_files().expect("DQN has resume files");
    let bytes = files
        .names()
        .iter()
        .map(|name| {
            let mut out = Vec::new();
            files.write(name, &mut out).unwrap();
            out
        })
        .collect();
    (algorithm.export_state().unwrap(), bytes)
}

#[test]
fn dqn_resumes_bitwise_with_a_full_replay_buffer() {
    resumes_bitwise("resume", RESUME_CONFIG);
}

/// QR-DQN with noisy layers: the noise generator and the target's noise
/// resume too.
#[test]
fn qr_dqn_with_noisy_layers_resumes_bitwise() {
    let qr = RESUME_CONFIG
        .replace(
            "double_q: true,",
            "double_q: true, distribution: {type: qr, n_quantiles: 5},",
        )
        .replace("dueling: true}", "dueling: true, noisy: {sigma0: 0.5}}");
    assert_ne!(qr, RESUME_CONFIG);
    resumes_bitwise("resume-qr", &qr);
}

/// IQN with dueling, noisy layers and prioritised replay (the racing
/// config's switches): the fractions drawn for every sample resume too.
#[test]
fn iqn_resumes_bitwise() {
    let iqn = RESUME_CONFIG
        .replace(
            "double_q: true,",
            "double_q: true, distribution: {type: iqn, n_quantiles: 4, n_target_quantiles: 5, \
             n_policy_quantiles: 6, cosine_dim: 8, head_arch: [8]},",
        )
        .replace("dueling: true}", "dueling: true, noisy: {sigma0: 0.5}}");
    assert_ne!(iqn, RESUME_CONFIG);
    resumes_bitwise("resume-iqn", &iqn);
}

fn resumes_bitwise(tag: &str, config: &str) {
    let root = scratch(tag);
    let mut whole = create(&root.join("whole"), config).unwrap();
    let out = whole.train(None, None).unwrap();
    assert_eq!(out.status, TrainStatus::Completed);
    let expected = snapshot(&whole);
    drop(whole);

    let mut first = create(&root.join("split"), config).unwrap();
    let run_dir = first.run_dir().to_path_buf();
    first.train(Some(1600), None).unwrap();
    // The buffer has wrapped (1600 steps > 700 transitions) by the checkpoint.
    assert_eq!(first.algorithm().num_timesteps(), 1600);
    drop(first);
    let (mut resumed, report) = resume(&run_dir);
    assert_eq!(report.env_steps, 1600);
    resumed.train(None, None).unwrap();
    let got = snapshot(&resumed);
    assert_eq!(got.0.weights, expected.0.weights, "online network");
    assert_eq!(got.0.meta, expected.0.meta, "counters, generators, envs");
    assert_eq!(
        got.1, expected.1,
        "replay buffer, target network, n-step windows"
    );
    let _ = std::fs::remove_dir_all(&root);
}

/// The evaluation returns of a finished run, in order.
fn eval_returns(run_dir: &Path) -> Vec<f64> {
    std::fs::read_to_string(run_dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .filter_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).ok()?;
            v["eval/mean_reward"].as_f64()
        })
        .collect()
}

fn shipped_config(file: &str, overrides: &[(&str, &str)]) -> String {
    let mut text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../configs")
            .join(file),
    )
    .unwrap();
    for (from, to) in overrides {
        assert!(text.contains(from), "{from}");
        text = text.replace(from, to);
    }
    text
}

/// The shipped RL Zoo configs with 64-wide layers for 30k steps (a few
/// seconds each here): a random policy returns ~22, the greedy one must
/// reach 200.
#[test]
fn dqn_qr_dqn_and_iqn_learn_cartpole() {
    let narrow = |from: &'static str, to: &'static str| {
        [
            ("total_timesteps: 50000", "total_timesteps: 30000"),
            (from, to),
        ]
    };
    for (file, overrides) in [
        (
            "cartpole_dqn.yaml",
            narrow("net_arch: [256, 256]", "net_arch: [64, 64]"),
        ),
        (
            "cartpole_qrdqn.yaml",
            narrow("net_arch: [256, 256]", "net_arch: [64, 64]"),
        ),
        // Both the trunk and the layer after the embedding.
        ("cartpole_iqn.yaml", narrow("[128]", "[64]")),
    ] {
        let root = scratch("learn");
        let text = shipped_config(file, &overrides);
        let mut t = create(&root, &text).unwrap();
        t.train(None, None).unwrap();
        let returns = eval_returns(t.run_dir());
        println!("{file}, 30k steps, 64 wide, seed 0: eval returns {returns:?}");
        let best = returns.iter().copied().fold(f64::MIN, f64::max);
        assert!(best >= 200.0, "{file}: {returns:?}");
        let _ = std::fs::remove_dir_all(&root);
    }
}

/// The shipped configs as they are (RL Zoo's hyperparameters, untuned here)
/// on 5 seeds: the best evaluation (what `best/` keeps) reaches 500 on each.
#[test]
#[ignore = "statistical acceptance; run in release"]
fn dqn_cartpole_reaches_500_on_5_of_5_seeds() {
    reaches_500("cartpole_dqn.yaml");
}

#[test]
#[ignore = "statistical acceptance; run in release"]
fn qr_dqn_cartpole_reaches_500_on_5_of_5_seeds() {
    reaches_500("cartpole_qrdqn.yaml");
}

#[test]
#[ignore = "statistical acceptance; run in release"]
fn iqn_cartpole_reaches_500_on_5_of_5_seeds() {
    reaches_500("cartpole_iqn.yaml");
}

fn reaches_500(file: &str) {
    let root = scratch(file);
    let mut reached = 0;
    for seed in 0..5 {
        let text = shipped_config(file, &[("seed: 0", &format!("seed: {seed}"))]);
        let mut t = create(&root.join(seed.to_string()), &text).unwrap();
        let start = std::time::Instant::now();
        t.train(None, None).unwrap();
        let returns = eval_returns(t.run_dir());
        println!(
            "{file} seed {seed}: {:.1} s, eval returns {returns:?}",
            start.elapsed().as_secs_f64()
        );
        reached += usize::from(returns.iter().any(|&r| r >= 500.0));
    }
    let _ = std::fs::remove_dir_all(&root);
    assert_eq!(reached, 5, "{file}: {reached} of 5 seeds reached 500");
}

#[test]
fn epsilon_decays_linearly_in_steps_or_exponentially_in_steps_or_episodes() {
    use hlynr_rl::dqn::{Dqn, DqnConfig};
    use hlynr_rl::env_factory::make_classic_vec_env;
    let env_config: RunConfig =
        hlynr_env::config::from_yaml_str("env: {id: CartPole-v1}\n", "t").unwrap();
    let build = |extra: &str| {
        let config: DqnConfig = hlynr_env::config::from_yaml_str(
            &format!(
                "learning_starts: 0\nbuffer_size: 1000\ntrain_freq: 10\ngradient_steps: 1\n\
                 exploration_final_eps: 0.05\nexploration_fraction: 0.5\n{extra}"
            ),
            "t",
        )
        .unwrap();
        let env = make_classic_vec_env(&env_config.env, 2).unwrap();
        Dqn::new(config, env, 1, 1000).unwrap()
    };
    let mut linear = build("");
    let mut steps = build("exploration_decay: {type: exponential, rate: 0.99}\n");
    let mut episodes = build("exploration_decay: {type: exponential, rate: 0.5, unit: episodes}\n");
    for _ in 0..30 {
        for (kind, dqn) in [(0, &mut linear), (1, &mut steps), (2, &mut episodes)] {
            dqn.iterate().unwrap();
            let t = dqn.counters().num_timesteps as f64;
            let n = dqn.counters().episodes as f64;
            let expected = if t >= 500.0 {
                0.05
            } else {
                match kind {
                    0 => 1.0 + t / 500.0 * (0.05 - 1.0),
                    1 => 0.99f64.powf(t).max(0.05),
                    _ => 0.5f64.powf(n).max(0.05),
                }
            };
            assert!(
                (dqn.exploration_rate() - expected).abs() < 1e-12,
                "{kind} at {t}"
            );
        }
    }
    assert!(episodes.counters().episodes > 3, "episodes ended");
}

/// CartPole whose env 0 returns a NaN observation on its 300th step and a
/// NaN reward on its 400th.
#[derive(Debug)]
struct Corrupted;

impl EnvFactory for Corrupted {
    fn make_train(&self, n_envs: usize) -> Result<Box<dyn hlynr_env::BatchEnv>> {
        use hlynr_testkit::tampered::Tampered;
        let cartpole = || {
            hlynr_env::EpisodeStatistics::new(
                hlynr_env::TimeLimit::new(hlynr_env::classic::make("CartPole-v1").unwrap(), 500)
                    .unwrap(),
            )
        };
        let env = hlynr_env::VecEnv::from_fn(n_envs, |i| {
            Tampered::new(
                cartpole(),
                Box::new(move |step, obs: &mut [f32], s: &mut hlynr_env::Step| {
                    if i == 0 && step == 300 {
                        obs[1] = f32::NAN;
                    }
                    if i == 0 && step == 400 {
                        s.reward = f64::NAN;
                    }
                    Ok(())
                }),
            )
        })?;
        Ok(Box::new(env))
    }
    fn make_eval(&self) -> hlynr_env::Result<Box<dyn hlynr_env::Env>> {
        Ok(Box::new(hlynr_env::TimeLimit::new(
            hlynr_env::classic::make("CartPole-v1")?,
            500,
        )?))
    }
}

#[test]
fn nan_from_the_env_is_acted_around_and_never_stored() {
    let root = scratch("nan");
    let mut t = create_with_envs(&root, RESUME_CONFIG, || Box::new(Corrupted));
    let out = t.train(None, None).unwrap();
    assert_eq!(out.status, TrainStatus::Completed);
    let metrics = hlynr_rl::metrics::read_metrics(&t.run_dir().join("metrics.jsonl")).unwrap();
    // Env 0's 300th step is run step ~600 (2 envs, 16 env steps an iteration).
    let nan_obs = metrics.series("rollout/nonfinite_obs");
    assert_eq!(nan_obs.len(), 1, "{nan_obs:?}");
    assert!((592..=608).contains(&nan_obs[0].0), "{nan_obs:?}");
    // The two transitions into and out of the NaN observation were dropped,
    // and the 1 to 3 n-step windows (n = 3; fewer right after an episode
    // start) that hold the NaN reward.
    let dropped: f64 = metrics
        .series("rollout/dropped_transitions")
        .iter()
        .map(|&(_, v)| v)
        .sum();
    let series = metrics.series("rollout/dropped_transitions");
    assert_eq!(series[0], (nan_obs[0].0, 2.0), "{series:?}");
    assert!((3.0..=5.0).contains(&dropped), "{series:?}");
    // Nothing non-finite was learned from; the network is finite.
    assert!(metrics.series("train/nonfinite_skip").is_empty());
    let weights = t.algorithm().export_state().unwrap().weights;
    assert!(
        weights
            .values()
            .all(|w| w.data().iter().all(|v| v.is_finite()))
    );
    drop(t);
    let _ = std::fs::remove_dir_all(&root);
}

/// The seed's replay memory: 100k transitions whose observations are
/// stacks of four 64x64 frames (one new frame per step, episodes of 500
/// steps starting from a repeated frame). Stored naively that is 100k x 2 x
/// 16 KiB = 3.3 GB; planes stored once take about 0.42 GB.
#[test]
#[ignore = "allocates ~0.45 GB; run in release"]
fn a_100k_replay_of_stacked_camera_frames_fits_in_half_a_gigabyte() {
    use hlynr_env::ObsRef;
    use hlynr_rl::dqn::replay::ReplayBuffer;
    const K: usize = 4;
    const PLANE: usize = 64 * 64;
    let mut buf = ReplayBuffer::new(100_000, 3, K * PLANE, PLANE, Some(0.6));
    let mut rng = Rng::seed_from_u64(1);
    let mut stack: Vec<Vec<u8>> = Vec::new();
    // Every frame differs from every other (a counter in its first bytes).
    let frame = |rng: &mut Rng, t: u64| -> Vec<u8> {
        let base = rng.below(200) as u8;
        let mut f: Vec<u8> = (0..PLANE)
            .map(|i| base.wrapping_add((i % 53) as u8))
            .collect();
        f[..8].copy_from_slice(&t.to_le_bytes());
        f
    };
    for t in 0..120_000u64 {
        if t % 500 == 0 {
            stack = vec![frame(&mut rng, t << 32); K];
        }
        let obs = stack.concat();
        stack.remove(0);
        stack.push(frame(&mut rng, t));
        let next = stack.concat();
        buf.push(
            ObsRef::new(&[0.0; 3], &obs),
            1,
            0.1,
            ObsRef::new(&[0.0; 3], &next),
            0.99,
        );
    }
    let gib = buf.heap_bytes() as f64 / f64::from(1u32 << 30);
    println!(
        "100k transitions of 4x64x64 frames: {} planes stored, {gib:.3} GiB",
        buf.stored_frames()
    );
    assert!(gib < 0.5, "{gib} GiB");
}

/// `RESUME_CONFIG` acting on an actor thread.
fn decoupled_config() -> String {
    let text = RESUME_CONFIG.replace(
        "double_q: true,",
        "double_q: true, decoupled_acting: {weight_sync_interval: 3},",
    );
    assert_ne!(text, RESUME_CONFIG);
    text
}

#[test]
fn an_actor_thread_feeds_the_learner_every_step_and_a_run_resumes_on_fresh_episodes() {
    let root = scratch("decoupled");
    let config = decoupled_config();
    let mut first = create(&root, &config).unwrap();
    let run_dir = first.run_dir().to_path_buf();
    first.train(Some(1600), None).unwrap();
    // Every vector step the actor took reached the learner (the last
    // iteration takes whatever had arrived, so a segment may end past its
    // mark), and the learner learned from them.
    let paused_at = first.algorithm().num_timesteps();
    assert!((1600..1600 + 4096 * 2).contains(&paused_at), "{paused_at}");
    let metrics = hlynr_rl::metrics::read_metrics(&run_dir.join("metrics.jsonl")).unwrap();
    let received: f64 = metrics
        .series("time/actor_vector_steps")
        .iter()
        .map(|&(_, v)| v)
        .sum();
    assert_eq!(received * 2.0, paused_at as f64);
    let updates = metrics.series("train/n_updates");
    assert!(updates.last().unwrap().1 > 0.0, "{updates:?}");
    let episodes = metrics.series("time/episodes");
    assert!(episodes.last().unwrap().1 > 10.0, "{episodes:?}");
    drop(first);

    let (mut resumed, report) = resume(&run_dir);
    assert_eq!(report.env_steps, paused_at);
    let out = resumed.train(None, None).unwrap();
    assert_eq!(out.status, TrainStatus::Completed);
    assert!(out.env_steps >= 2400, "{}", out.env_steps);
    drop(resumed);
    let metrics = hlynr_rl::metrics::read_metrics(&run_dir.join("metrics.jsonl")).unwrap();
    let episodes = metrics.series("time/episodes");
    assert!(
        episodes.windows(2).all(|w| w[0].1 <= w[1].1),
        "episodes count on across the resume: {episodes:?}"
    );
    let _ = std::fs::remove_dir_all(&root);
}

/// CartPole whose env 0 fails on its 700th step, paced at 0.2 ms a step
/// so that the learner keeps up with the actor thread.
#[derive(Debug)]
struct FailsAt700;

impl EnvFactory for FailsAt700 {
    fn make_train(&self, n_envs: usize) -> Result<Box<dyn hlynr_env::BatchEnv>> {
        use hlynr_testkit::tampered::Tampered;
        let env = hlynr_env::VecEnv::from_fn(n_envs, |i| {
            Tampered::new(
                hlynr_env::EpisodeStatistics::new(
                    hlynr_env::TimeLimit::new(
                        hlynr_env::classic::make("CartPole-v1").unwrap(),
                        500,
                    )
                    .unwrap(),
                ),
                Box::new(move |step, _: &mut [f32], _: &mut hlynr_env::Step| {
                    std::thread::sleep(std::time::Duration::from_micros(200));
                    if i == 0 && step == 700 {
                        return Err(hlynr_env::EnvError::failed("the cart", "lost a wheel"));
                    }
                    Ok(())
                }),
            )
        })?;
        Ok(Box::new(env))
    }
    fn make_eval(&self) -> hlynr_env::Result<Box<dyn hlynr_env::Env>> {
        Corrupted.make_eval()
    }
}

#[test]
fn an_env_failing_on_the_actor_thread_fails_the_run_and_keeps_its_checkpoint() {
    let root = scratch("decoupled-fail");
    let mut t = create_with_envs(&root, &decoupled_config(), || Box::new(FailsAt700));
    let run_dir = t.run_dir().to_path_buf();
    let err = t.train(None, None).unwrap_err().to_string();
    assert!(err.contains("lost a wheel"), "{err}");
    drop(t);
    let manifest = std::fs::read_to_string(run_dir.join("manifest.json")).unwrap();
    assert!(manifest.contains("\"failed\""), "{manifest}");
    // The checkpoint of 800 env steps (env 0's 400th step) is whole and
    // resumes.
    let (_, report) = resume(&run_dir);
    assert!(
        (800..1400).contains(&report.env_steps),
        "{}",
        report.env_steps
    );
    let _ = std::fs::remove_dir_all(&root);
}

/// An env of which only one instance may exist (a game): with
/// `run.evaluate: false` no evaluation env is ever built.
#[derive(Debug)]
struct OnlyOneInstance;

impl EnvFactory for OnlyOneInstance {
    fn make_train(&self, n_envs: usize) -> Result<Box<dyn hlynr_env::BatchEnv>> {
        ClassicEnvFactory::new(&hlynr_env::config::from_yaml_str("id: CartPole-v1", "t").unwrap())
            .unwrap()
            .make_train(n_envs)
    }
    fn make_eval(&self) -> hlynr_env::Result<Box<dyn hlynr_env::Env>> {
        panic!("a second instance of the game was built")
    }
}

#[test]
fn a_run_without_evaluation_never_builds_an_evaluation_env() {
    let root = scratch("no-eval");
    let text = RESUME_CONFIG.replace("run: {", "run: {evaluate: false, ");
    assert_ne!(text, RESUME_CONFIG);
    let mut t = create_with_envs(&root, &text, || Box::new(OnlyOneInstance));
    let out = t.train(None, None).unwrap();
    assert_eq!(out.status, TrainStatus::Completed);
    assert!(out.last_eval.is_none());
    let metrics = hlynr_rl::metrics::read_metrics(&t.run_dir().join("metrics.jsonl")).unwrap();
    assert!(metrics.series("eval/mean_reward").is_empty());
    assert!(!metrics.series("rollout/ep_rew_mean").is_empty());
    drop(t);
    let _ = std::fs::remove_dir_all(&root);
}
