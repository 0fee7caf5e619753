//! An environment that fails mid-run (a dropped connection, a simulator
//! fault) ends training with the env's own message and a `failed` run, and
//! loses nothing: the last good checkpoint is intact, and resuming it ends
//! exactly where a run that never failed ends.

use std::path::{Path, PathBuf};

use hlynr_env::{BatchEnv, Env, EnvError, EpisodeStatistics, TimeLimit, VecEnv, classic};
use hlynr_rl::checkpoint::{LAST, read_checkpoint, step_dir_name};
use hlynr_rl::progress::ProgressMode;
use hlynr_rl::run::{RunDir, RunStatus};
use hlynr_rl::trainer::{EnvFactory, Result, RunConfig, RunLocation, TrainStatus, Trainer, Value};
use hlynr_testkit::tampered::Tampered;

/// Env 1's step at which its link drops, when the factory is set to fail.
const FAIL_AT: u64 = 300;

#[derive(Debug)]
struct Factory {
    fails: bool,
}

fn cartpole() -> EpisodeStatistics<TimeLimit<Box<dyn Env>>> {
    EpisodeStatistics::new(TimeLimit::new(classic::make("CartPole-v1").unwrap(), 500).unwrap())
}

impl EnvFactory for Factory {
    fn make_train(&self, n_envs: usize) -> Result<Box<dyn BatchEnv>> {
        let fails = self.fails;
        let env = VecEnv::from_fn(n_envs, |i| {
            // Env 1's link drops at its FAIL_AT-th step.
            let fail_at = (fails && i == 1).then_some(FAIL_AT);
            Tampered::new(
                cartpole(),
                Box::new(move |step, _, _| match fail_at {
                    Some(at) if step == at => Err(EnvError::failed(
                        "cartpole link",
                        "connection reset by peer",
                    )),
                    _ => Ok(()),
                }),
            )
        })?;
        Ok(Box::new(env))
    }
    fn make_eval(&self) -> hlynr_env::Result<Box<dyn Env>> {
        Ok(Box::new(cartpole()))
    }
}

const CONFIG: &str = "env: {id: CartPole-v1}\nseed: 6\nn_envs: 2\ntotal_timesteps: 1024\n\
    ppo: {n_steps: 64, batch_size: 64, n_epochs: 2, learning_rate: 1.0e-3, policy: {net_arch: [16]}}\n\
    run: {checkpoint_every_steps: 256, eval_every_steps: 256, eval_episodes: 2}\n";

fn create(runs_dir: &Path, fails: bool) -> Trainer {
    let (config, resolved): (RunConfig, Value) =
        hlynr_env::config::resolve(CONFIG, "test", &[] as &[&str]).unwrap();
    let location = RunLocation {
        runs_dir: runs_dir.to_path_buf(),
        name: "flaky".into(),
        command_line: vec!["test".into()],
    };
    let factory =
        move |_: &RunConfig| -> Result<Box<dyn EnvFactory>> { Ok(Box::new(Factory { fails })) };
    Trainer::create_staged(config, &resolved, factory, &location, ProgressMode::Quiet).unwrap()
}

fn weights(t: &Trainer) -> Vec<(String, Vec<u32>)> {
    t.algorithm()
        .export_state()
        .unwrap()
        .weights
        .into_iter()
        .map(|(k, v)| (k, v.data().iter().map(|x| x.to_bits()).collect()))
        .collect()
}

fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hlynr-env-failure-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn a_failing_env_ends_the_run_with_its_message_and_the_checkpoint_resumes_exactly() {
    let root = scratch("run");
    let mut reference = create(&root.join("reference"), false);
    let out = reference.train(None, None).unwrap();
    assert_eq!(out.status, TrainStatus::Completed);
    let expected = weights(&reference);
    drop(reference);

    let mut flaky = create(&root.join("flaky"), true);
    let run_dir = flaky.run_dir().to_path_buf();
    let e = flaky.train(None, None).unwrap_err().to_string();
    // Env 1's 300th step is run step ~600: after the checkpoint at 512.
    assert!(
        e.contains("env 1 failed") && e.contains("cartpole link failed: connection reset by peer"),
        "{e}"
    );
    drop(flaky);
    let manifest = RunDir::open(&run_dir).unwrap().manifest().clone();
    assert_eq!(manifest.status, RunStatus::Failed);
    assert!(
        manifest
            .status_message
            .as_deref()
            .is_some_and(|m| m.contains("connection reset by peer")),
        "{manifest:?}"
    );
    let checkpoints = run_dir.join("checkpoints");
    assert_eq!(
        read_checkpoint(&checkpoints.join(LAST)).unwrap().env_steps,
        512
    );
    read_checkpoint(&checkpoints.join(step_dir_name(512))).unwrap();
    assert!(!checkpoints.join(step_dir_name(768)).exists());

    // With the link back, the run resumes from its last good checkpoint and
    // ends bitwise where the run that never failed ended.
    let factory =
        |_: &RunConfig| -> Result<Box<dyn EnvFactory>> { Ok(Box::new(Factory { fails: false })) };
    let (mut resumed, report) = Trainer::resume(
        &run_dir,
        factory,
        vec!["resume".into()],
        ProgressMode::Quiet,
    )
    .unwrap();
    assert_eq!(report.env_steps, 512);
    let out = resumed.train(None, None).unwrap();
    assert_eq!((out.status, out.env_steps), (TrainStatus::Completed, 1024));
    assert_eq!(weights(&resumed), expected);
    let _ = std::fs::remove_dir_all(&root);
}
