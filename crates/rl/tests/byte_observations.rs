//! Observations with camera frames: PPO with a CNN features extractor learns
//! a task that needs both the frames and a vector side input, the trained
//! policy loads from its run directory and acts on byte frames, and rollout
//! storage keeps frames as bytes.

use std::path::Path;

use hlynr_env::{BatchEnv, Env, EpisodeStatistics, FrameStack, VecEnv};
use hlynr_rl::eval::{EvalConfig, evaluate};
use hlynr_rl::ppo::{Ppo, PpoConfig};
use hlynr_rl::progress::ProgressMode;
use hlynr_rl::trainer::{
    EnvFactory, Result, RunConfig, RunLocation, Trainer, Value, bare_policy, load_model,
};
use hlynr_testkit::pixels::LitSide;

/// Two stacked frames of [`LitSide`] (the flip bit rides along, twice).
fn stacked() -> FrameStack<LitSide> {
    FrameStack::new(LitSide::new(), 2).unwrap()
}

#[derive(Debug)]
struct LitSideFactory;

impl EnvFactory for LitSideFactory {
    fn make_train(&self, n_envs: usize) -> Result<Box<dyn BatchEnv>> {
        Ok(Box::new(VecEnv::from_fn(n_envs, |_| {
            EpisodeStatistics::new(stacked())
        })?))
    }
    fn make_eval(&self) -> hlynr_env::Result<Box<dyn Env>> {
        Ok(Box::new(stacked()))
    }
}

fn factory(config: &RunConfig) -> Result<Box<dyn EnvFactory>> {
    assert_eq!(config.env.id, "lit-side");
    Ok(Box::new(LitSideFactory))
}

const CNN: &str =
    "{type: cnn, channels: [8, 8], kernels: [4, 3], strides: [2, 2], features_dim: 32}";

fn train(root: &Path, seed: u64, total: u64) -> std::path::PathBuf {
    let text = format!(
        "env: {{id: lit-side}}\nseed: {seed}\nn_envs: 8\ntotal_timesteps: {total}\n\
         ppo: {{n_steps: 32, batch_size: 64, n_epochs: 4, learning_rate: 1.0e-3, gamma: 0.5, \
         ent_coef: 0.01, policy: {{features: {CNN}, net_arch: [32], activation: relu}}}}\n\
         run: {{eval_every_steps: {total}, eval_episodes: 4}}\n"
    );
    let (config, resolved): (RunConfig, Value) =
        hlynr_env::config::resolve(&text, "test", &[] as &[&str]).unwrap();
    let location = RunLocation {
        runs_dir: root.to_path_buf(),
        name: format!("lit-{seed}"),
        command_line: vec!["test".into()],
    };
    let mut t =
        Trainer::create_staged(config, &resolved, factory, &location, ProgressMode::Quiet).unwrap();
    t.train(None, None).unwrap();
    t.run_dir().to_path_buf()
}

/// Mean return of the run's best policy, loaded with no env, over 40
/// episodes on seeds training never used.
fn held_out_return(run_dir: &Path) -> f64 {
    let model = load_model(run_dir, &run_dir.join("checkpoints").join("best")).unwrap();
    let policy = bare_policy(model.policy, &model.record).unwrap();
    let mut policies = vec![policy];
    let make = || Ok(Box::new(stacked()) as Box<dyn Env>);
    let out = evaluate(&make, &mut policies, &EvalConfig::new(40, 90_000)).unwrap();
    let returns: Vec<f64> = out[0].episodes.iter().map(|e| e.episode_return).collect();
    returns.iter().sum::<f64>() / returns.len() as f64
}

#[test]
fn ppo_with_a_cnn_learns_from_frames_and_a_side_input() {
    let root = std::env::temp_dir().join(format!("hlynr-byte-obs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let run = train(&root, 1, 24_576);
    let score = held_out_return(&run);
    println!(
        "LitSide, CNN, seed 1, 24576 steps: held-out mean return {score:.2} of 8 (4 by guessing or reading one input)"
    );
    assert!(score >= 7.0, "held-out mean return {score}");
    // The record declares the byte frames and the CNN, so the network is
    // rebuilt from the checkpoint alone.
    let model = load_model(&run, &run.join("checkpoints").join("last")).unwrap();
    assert_eq!(model.record.observation_space.byte_dim(), 2 * 16 * 16);
    let config = model.record.network.to_string();
    assert!(config.contains("\"cnn\""), "{config}");
    let _ = std::fs::remove_dir_all(&root);
}

/// Seeds other than the one the settings were chosen on.
#[test]
#[ignore = "statistical acceptance; run in release"]
fn ppo_with_a_cnn_learns_lit_side_on_5_held_out_seeds() {
    let root = std::env::temp_dir().join(format!("hlynr-byte-obs-5-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let scores: Vec<f64> = (2..7)
        .map(|seed| held_out_return(&train(&root, seed, 24_576)))
        .collect();
    println!("LitSide, CNN, seeds 2..6, 24576 steps: held-out mean returns {scores:?}");
    let _ = std::fs::remove_dir_all(&root);
    assert!(scores.iter().all(|&s| s >= 7.0), "{scores:?}");
}

#[test]
fn rollouts_store_a_stack_of_four_64x64_frames_in_16_kib() {
    let config: PpoConfig = hlynr_env::config::from_yaml_str(
        "n_steps: 4\nbatch_size: 8\nn_epochs: 1\npolicy: {features: {type: cnn}}\n",
        "test",
    )
    .unwrap();
    let env = VecEnv::from_fn(2, |_| {
        EpisodeStatistics::new(FrameStack::new(LitSide::with_side(64), 4).unwrap())
    })
    .unwrap();
    let mut ppo = Ppo::new(config, env, 0, 8).unwrap();
    ppo.collect_rollout().unwrap();
    let buffer = ppo.buffer();
    let rows = buffer.len();
    assert_eq!(buffer.obs_bytes.len(), rows * 16 * 1024);
    // The value lane holds the four flip bits, not the pixels.
    assert_eq!(std::mem::size_of_val(&buffer.obs[..]), rows * 4 * 4);
    assert!(buffer.obs_bytes.contains(&255), "frames are stored");
}
