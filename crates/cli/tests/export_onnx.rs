//! `hlynr export --format onnx`: the exported model, run by onnxruntime,
//! gives the actions hlynr's own deterministic policy gives (max abs
//! difference <= 1e-5) for MLP and LSTM policies, with and without the
//! observation normaliser, for Gaussian, categorical and hybrid actions and
//! for camera frames read by a CNN.

use std::path::{Path, PathBuf};
use std::process::Command;

use hlynr_env::{Policy, PolicyInput};
use hlynr_rl::trainer::{load_model, locate_model};
use hlynr_rng::Rng;
use serde_json::json;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hlynr"))
}

fn configs() -> PathBuf {
    hlynr_testkit::config_file("")
}

/// Trains `config` (a path) for `steps` env steps with the overrides; returns
/// the run directory.
fn train(tag: &str, config: &Path, steps: u64, overrides: &[&str]) -> PathBuf {
    let runs = std::env::temp_dir().join(format!("hlynr-onnx-{tag}-{}", std::process::id()));
    let total = format!("total_timesteps={steps}");
    let mut args = vec!["--set", &total, "--set", "run.eval_episodes=1"];
    for o in overrides {
        args.extend(["--set", o]);
    }
    hlynr_testkit::train_run(env!("CARGO_BIN_EXE_hlynr"), config, &runs, &args)
}

/// `hlynr export` of `run`; returns the model file and the command's output.
fn export(run: &Path) -> (PathBuf, String) {
    let out_file = run.join("policy.onnx");
    let out = bin()
        .args(["export", "--format", "onnx", "--out"])
        .arg(&out_file)
        .arg(run)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (out_file, String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `steps` steps of `rows` rows of random observations (values in
/// `[-scale, scale]`, random bytes) through the run's policy as `hlynr eval`
/// loads it, deterministic, resetting a row's recurrent state now and then;
/// writes the cases file the Python check reads.
fn cases(run: &Path, rows: usize, steps: usize, scale: f32) -> PathBuf {
    let (run_dir, ckpt) = locate_model(run).unwrap();
    let mut loaded = load_model(&run_dir, &ckpt).unwrap();
    let space = loaded.record.observation_space.clone();
    let (values, bytes) = (space.flat_dim(), space.byte_dim());
    let act_dim = loaded.record.action_space.flat_dim();
    // A Q-network's values are compared too (its action is an argmax).
    let mut q_net = (loaded.algorithm == "dqn").then(|| {
        hlynr_rl::dqn::network_from_record(&loaded.record, &loaded.weights)
            .unwrap()
            .0
    });
    let mut rng = Rng::seed_from_u64(11);
    let mut out = Vec::new();
    for t in 0..steps {
        let obs: Vec<f32> = (0..rows * values)
            .map(|_| rng.uniform_range_f32(-scale, scale))
            .collect();
        let obs_bytes: Vec<u8> = (0..rows * bytes).map(|_| rng.next_u64() as u8).collect();
        let reset: Vec<bool> = (0..rows).map(|r| t > 0 && (t + r) % 5 == 0).collect();
        let rows_reset: Vec<usize> = (0..rows).filter(|&r| reset[r]).collect();
        loaded.policy.reset_rows(&rows_reset);
        let mut action = vec![0.0f32; rows * act_dim];
        let input = PolicyInput {
            n: rows,
            obs: &obs,
            obs_bytes: &obs_bytes,
            controller_view: &[],
        };
        loaded.policy.act(&input, true, &mut action).unwrap();
        let chunk = |v: &[f32], w: usize| -> Vec<Vec<f32>> {
            v.chunks(w.max(1)).map(<[f32]>::to_vec).collect()
        };
        let mut step = json!({
            "obs": chunk(&obs, values),
            "obs_bytes": obs_bytes.chunks(bytes.max(1)).map(<[u8]>::to_vec).collect::<Vec<_>>(),
            "reset": reset,
            "action": chunk(&action, act_dim),
        });
        if let Some(q) = &mut q_net {
            let t = hlynr_nn::Tensor::from_vec(&[rows, values], obs.clone()).unwrap();
            let qv = q.q_values(&t, &obs_bytes).unwrap();
            step["q_values"] = json!(chunk(qv.data(), qv.cols()));
        }
        out.push(step);
    }
    let path = run.join("onnx_cases.json");
    std::fs::write(&path, json!({ "steps": out }).to_string()).unwrap();
    path
}

/// Exports `run`, and checks it in onnxruntime against hlynr's actions;
/// returns the export's printed signature (or `None` when onnxruntime is
/// not installed and not required).
fn check(tag: &str, run: &Path, rows: usize, steps: usize, scale: f32) -> Option<String> {
    let (model, printed) = export(run);
    let cases = cases(run, rows, steps, scale);
    let out = hlynr_testkit::run_python_check(
        &format!("ONNX export ({tag}) in onnxruntime"),
        &["onnxruntime", "numpy"],
        Path::new("scripts/check_onnx.py"),
        [model.as_os_str(), cases.as_os_str()],
    )?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{tag}: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("action max_abs_diff"), "{stdout}");
    eprintln!("{tag}: {}", stdout.lines().last().unwrap_or_default());
    let _ = std::fs::remove_dir_all(run.parent().unwrap());
    Some(format!("{printed}\n{stdout}"))
}

#[test]
fn discrete_mlp_matches_onnxruntime() {
    let run = train("cartpole", &configs().join("cartpole_ppo.yaml"), 2048, &[]);
    if let Some(out) = check("CartPole MLP", &run, 16, 4, 3.0) {
        assert!(out.contains("input  obs: float [batch, 4]"), "{out}");
        assert!(out.contains("output action: float [batch, 1]"), "{out}");
    }
}

#[test]
fn gaussian_mlp_with_normaliser_layer_norm_and_leaky_relu_matches_onnxruntime() {
    let run = train(
        "pendulum",
        &configs().join("pendulum_ppo.yaml"),
        4096,
        &[
            "ppo.policy.layer_norm=true",
            "ppo.policy.activation=leaky_relu",
            "ppo.policy.net_arch={shared: [32], pi: [32], vf: [32]}",
        ],
    );
    // Wide observations: the normaliser's clip is reached in some rows.
    check("Pendulum MLP, normaliser", &run, 32, 4, 20.0);
}

#[test]
fn recurrent_policy_matches_onnxruntime_step_by_step() {
    // Gaussian actions (not an argmax), so any error in the state shows.
    let run = train(
        "lstm",
        &configs().join("pendulum_ppo.yaml"),
        4096,
        &[
            "ppo.policy.type=lstm",
            "ppo.policy.lstm_hidden_size=16",
            "ppo.policy.net_arch={pi: [32], vf: [32]}",
            "ppo.n_steps=64",
            "ppo.batch_size=128",
        ],
    );
    if let Some(out) = check("Pendulum LSTM", &run, 6, 20, 1.0) {
        assert!(out.contains("input  h_in: float [batch, 16]"), "{out}");
        assert!(out.contains("output c_out: float [batch, 16]"), "{out}");
    }
}

#[test]
fn hybrid_tanh_action_matches_onnxruntime() {
    let run = train(
        "arena",
        &configs().join("arena_ppo.yaml"),
        2048,
        &[
            "n_envs=32",
            "ppo.n_steps=64",
            "ppo.policy.squash=tanh",
            "ppo.policy.net_arch=[32]",
            "run.eval_every_steps=2048",
        ],
    );
    check("arena hybrid, tanh", &run, 16, 3, 2.0);
}

#[test]
fn camera_cnn_matches_onnxruntime() {
    let run = train(
        "camera",
        &configs().join("pendulum_ppo.yaml"),
        64,
        &[
            "env={id: racing, frame_stack: 2, max_episode_steps: 50, settings: {track: technical, observation: camera, action: continuous}}",
            "n_envs=2",
            "ppo.n_steps=32",
            "ppo.batch_size=32",
            "ppo.n_epochs=1",
            "ppo.normalize_reward=false",
            "ppo.policy.features={type: cnn, channels: [4, 8], kernels: [8, 4], strides: [4, 2], features_dim: 32}",
            "run.eval_every_steps=64",
        ],
    );
    if let Some(out) = check("racing camera CNN", &run, 3, 2, 1.0) {
        assert!(out.contains("input  obs_bytes: uint8 [batch,"), "{out}");
    }
}

/// Trains a DQN-family config briefly (learning has started, so the
/// weights are not the initial ones).
fn train_dqn(tag: &str, config: &str, steps: u64, overrides: &[&str]) -> PathBuf {
    let mut all = vec![
        "dqn.learning_starts=200",
        "dqn.train_freq=16",
        "dqn.gradient_steps=4",
    ];
    all.extend_from_slice(overrides);
    train(tag, &configs().join(config), steps, &all)
}

#[test]
fn dqn_q_values_and_greedy_action_match_onnxruntime() {
    let run = train_dqn(
        "dqn",
        "cartpole_dqn.yaml",
        1000,
        &["run.eval_every_steps=1000", "dqn.policy.layer_norm=true"],
    );
    if let Some(out) = check("CartPole DQN", &run, 16, 3, 3.0) {
        assert!(out.contains("output q_values: float [batch, 2]"), "{out}");
    }
}

#[test]
fn qr_dqn_with_dueling_heads_matches_onnxruntime() {
    let run = train_dqn(
        "qrdqn",
        "cartpole_qrdqn.yaml",
        1000,
        &["run.eval_every_steps=1000", "dqn.policy.dueling=true"],
    );
    check("CartPole QR-DQN dueling", &run, 16, 3, 3.0);
}

#[test]
fn iqn_with_noisy_dueling_heads_over_camera_frames_matches_onnxruntime() {
    // The racing users' agent: IQN + dueling + noisy layers over a CNN.
    let run = train_dqn(
        "iqn",
        "racing_iqn.yaml",
        400,
        &[
            "env.max_episode_steps=100",
            "dqn.buffer_size=1000",
            "dqn.batch_size=8",
            "dqn.policy.net_arch=[32]",
            "dqn.distribution.head_arch=[16]",
            "dqn.distribution.cosine_dim=8",
            "dqn.policy.features={type: cnn, channels: [4, 8], kernels: [8, 4], strides: [4, 2], features_dim: 32}",
            "run.eval_every_steps=400",
            "run.checkpoint_every_steps=400",
        ],
    );
    check("racing IQN camera", &run, 4, 2, 1.0);
}

#[test]
fn plain_iqn_matches_onnxruntime() {
    let run = train_dqn(
        "iqn-plain",
        "cartpole_iqn.yaml",
        1000,
        &["run.eval_every_steps=1000"],
    );
    check("CartPole IQN", &run, 16, 3, 3.0);
}
