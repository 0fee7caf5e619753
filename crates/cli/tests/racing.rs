//! The racing env through the command: an IQN run with every Rainbow
//! switch on stacked camera frames resumes bit for bit (its replay buffer
//! holds frames stored once), and `hlynr eval` tables the scripted driver
//! beside the model.

use std::path::Path;
use std::process::{Command, Output};

fn hlynr(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_hlynr"))
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "hlynr {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

const CONFIG: &str = "env:
  id: racing
  frame_stack: 4
  max_episode_steps: 150
  settings: {track: train, procedural_tracks: 3, camera: {width: 24, height: 24}}
algo: dqn
seed: 3
n_envs: 2
total_timesteps: 1600
dqn:
  buffer_size: 500
  learning_starts: 200
  batch_size: 16
  train_freq: 8
  gradient_steps: 2
  target_update_interval: 200
  gamma: 0.997
  double_q: true
  n_step: 3
  prioritized_replay: {alpha: 0.6, beta0: 0.4}
  distribution: {type: iqn, n_quantiles: 4, n_target_quantiles: 5, n_policy_quantiles: 4, cosine_dim: 8}
  policy:
    net_arch: [16]
    dueling: true
    noisy: {sigma0: 0.5}
    features: {type: cnn, channels: [4, 8], kernels: [4, 3], strides: [2, 2], features_dim: 16}
run:
  checkpoint_every_steps: 800
  eval_every_steps: 800
  eval_episodes: 1
";

/// Every file of the last checkpoint but its state's timings.
fn checkpoint_files(run: &Path) -> Vec<(String, Vec<u8>)> {
    let last = run.join("checkpoints/last");
    let mut out = Vec::new();
    for name in [
        "model.safetensors",
        "optimizer.safetensors",
        "resume/replay.bin",
        "resume/target.safetensors",
        "resume/nstep.json",
    ] {
        out.push((name.to_string(), std::fs::read(last.join(name)).unwrap()));
    }
    out
}

#[test]
fn racing_iqn_on_stacked_frames_resumes_bitwise_and_evaluates_beside_the_driver() {
    let root = std::env::temp_dir().join(format!("hlynr-racing-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    let config = root.join("racing.yaml");
    std::fs::write(&config, CONFIG).unwrap();
    let config = config.to_str().unwrap();
    let (whole, split) = (root.join("whole"), root.join("split"));
    hlynr(&[
        "train",
        "--config",
        config,
        "--runs-dir",
        whole.to_str().unwrap(),
        "--progress",
        "quiet",
    ]);
    hlynr(&[
        "train",
        "--config",
        config,
        "--runs-dir",
        split.to_str().unwrap(),
        "--progress",
        "quiet",
        "--steps",
        "800",
    ]);
    let split_run = hlynr_testkit::only_entry(&split);
    hlynr(&["resume", split_run.to_str().unwrap(), "--progress", "quiet"]);
    let whole_run = hlynr_testkit::only_entry(&whole);
    let (a, b) = (checkpoint_files(&whole_run), checkpoint_files(&split_run));
    for ((name, x), (_, y)) in a.iter().zip(&b) {
        assert!(x == y, "{name} differs after resume");
    }
    // The replay file holds each frame once: far less than two stacks of
    // four 24x24 frames per stored transition.
    let replay = a
        .iter()
        .find(|(n, _)| n == "resume/replay.bin")
        .unwrap()
        .1
        .len();
    assert!(replay < 500 * 2 * 4 * 576 / 3, "{replay} bytes");

    let out = hlynr(&[
        "eval",
        "--model",
        whole_run.to_str().unwrap(),
        "--policy",
        "pure-pursuit,random",
        "--episodes",
        "3",
    ]);
    let table = String::from_utf8_lossy(&out.stdout);
    // The model's row carries its run's name.
    for row in ["pure-pursuit", "random", "racing "] {
        assert!(table.contains(row), "{table}");
    }
    assert!(table.contains("progress"), "{table}");
    // The model on tracks it never trained on.
    let out = hlynr(&[
        "eval",
        "--model",
        whole_run.to_str().unwrap(),
        "--set",
        "track=held_out",
        "--episodes",
        "2",
    ]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("track=held_out"));
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn racing_settings_are_checked_by_name() {
    let root = std::env::temp_dir().join(format!("hlynr-racing-cfg-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    let config = root.join("bad.yaml");
    std::fs::write(
        &config,
        "env: {id: racing, settings: {trak: oval}}\nalgo: dqn\ntotal_timesteps: 100\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hlynr"))
        .args(["train", "--config", config.to_str().unwrap(), "--check"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("trak") && err.contains("track"), "{err}");
    // The scripted driver laps a shipped track in eval, with a --set.
    let out = hlynr(&[
        "eval",
        "--env",
        "racing",
        "--set",
        "track=oval",
        "--policy",
        "pure-pursuit",
        "--episodes",
        "2",
    ]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("100.0%"), "{table}");
    let _ = std::fs::remove_dir_all(&root);
}
