//! The trainer drives any [`Algorithm`], not only PPO: a random-search hill
//! climber on a linear CartPole policy (no gradients, no optimiser, no
//! rollout buffer, no critic) goes through checkpoints, a `SIGKILL`, resume
//! and a training-doctor rollback, and ends exactly where a run that was never
//! interrupted ends.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use hlynr_env::{BatchEnv, Policy, PolicyInput};
use hlynr_nn::{OptimizerState, Tensor};
use hlynr_rl::algorithm::{Algorithm, AlgorithmState, Iteration, PolicyRecord, PolicySnapshot};
use hlynr_rl::checkpoint::{ResumeFiles, step_dir_name};
use hlynr_rl::metrics::read_metrics;
use hlynr_rl::progress::ProgressMode;
use hlynr_rl::trainer::{
    ClassicEnvFactory, EnvFactory, Result, RunConfig, RunLocation, TrainError, TrainStatus,
    Trainer, Value,
};
use hlynr_rng::{Rng, derive_seed};
use serde::{Deserialize, Serialize};

/// Vector steps per iteration (2 envs: 256 env steps).
const STEPS: usize = 128;
/// The three iterations that start at these env steps meet a simulated
/// numerical fault: the candidate's score is NaN and the iteration is skipped.
/// Three skips in a row fire the doctor's `nonfinite` rule (action: rollback).
const FAULT_FROM: u64 = 6144;
const FAULT_TO: u64 = 6912;
/// Where both runs stop (the config's total is far beyond it).
const UNTIL: u64 = 16384;

/// Random-search hill climbing: perturb the weights of a linear threshold
/// policy, keep the candidate if it balances the pole at least as long.
struct HillClimb {
    env: Box<dyn BatchEnv>,
    state: ClimbState,
    actions: Vec<f32>,
    /// Every candidate's score so far, as an off-policy learner keeps its
    /// replay: too large for the checkpoint's state, so it travels as a
    /// resume-only file (`scores.bin`, f64 little-endian).
    scores: Vec<f64>,
}

impl std::fmt::Debug for HillClimb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HillClimb")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// Everything but the environments and weights, as a checkpoint stores it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct ClimbState {
    /// `[w_0 .. w_{d-1}, bias]`.
    weights: Vec<f32>,
    best_score: f64,
    /// Perturbation scale factor; rollbacks shrink it.
    noise_scale: f64,
    rng: Rng,
    num_timesteps: u64,
    skips: u64,
    /// How many scores the resume file must hold.
    scores: usize,
}

#[derive(Serialize, Deserialize)]
struct SavedClimb {
    climb: ClimbState,
    env: Value,
}

fn build_hill_climb(config: &RunConfig, mut env: Box<dyn BatchEnv>) -> Result<Box<dyn Algorithm>> {
    env.reset(derive_seed(config.seed, 1))?;
    let dim = env.obs_dim() + 1;
    let actions = vec![0.0; env.num_envs()];
    Ok(Box::new(HillClimb {
        env,
        state: ClimbState {
            weights: vec![0.0; dim],
            best_score: 0.0,
            noise_scale: 1.0,
            rng: Rng::from_stream(config.seed, 2),
            num_timesteps: 0,
            skips: 0,
            scores: 0,
        },
        actions,
        scores: Vec::new(),
    }))
}

fn act(weights: &[f32], obs: &[f32], actions: &mut [f32]) {
    let d = weights.len() - 1;
    for (row, a) in obs.chunks_exact(d).zip(actions) {
        let z: f32 = row.iter().zip(weights).map(|(o, w)| o * w).sum::<f32>() + weights[d];
        *a = if z > 0.0 { 1.0 } else { 0.0 };
    }
}

fn state_error(e: impl std::fmt::Display) -> TrainError {
    TrainError::invalid("hill-climb state", e.to_string())
}

impl Algorithm for HillClimb {
    fn name(&self) -> &'static str {
        "hill_climb"
    }

    fn iterate(&mut self) -> Result<Iteration> {
        let s = &mut self.state;
        let start = s.num_timesteps;
        let candidate: Vec<f32> = s
            .weights
            .iter()
            .map(|w| w + (0.5 * s.noise_scale * s.rng.normal()) as f32)
            .collect();
        // Each candidate balances fresh poles: the score is the mean number
        // of steps before each env's first episode end (at most STEPS).
        self.env.reset(s.rng.next_u64())?;
        let n = self.env.num_envs();
        let mut lasted: Vec<Option<usize>> = vec![None; n];
        for t in 0..STEPS {
            act(&candidate, self.env.obs(), &mut self.actions);
            self.env.step(&self.actions)?;
            let (term, trunc) = (self.env.terminated(), self.env.truncated());
            for (i, l) in lasted.iter_mut().enumerate() {
                if l.is_none() && (term[i] || trunc[i]) {
                    *l = Some(t + 1);
                }
            }
        }
        s.num_timesteps += (STEPS * n) as u64;
        let mut score = lasted
            .iter()
            .map(|l| l.unwrap_or(STEPS) as f64)
            .sum::<f64>()
            / n as f64;
        if (FAULT_FROM..FAULT_TO).contains(&start) {
            score = f64::NAN;
        }
        let mut scalars = hlynr_rl::metrics::Metrics::new();
        let skipped = !score.is_finite();
        if skipped {
            s.skips += 1;
        } else {
            self.scores.push(score);
            s.scores = self.scores.len();
            scalars.insert("train/score".into(), score);
            // A candidate also has to beat the mean of every score so far.
            let mean = self.scores.iter().sum::<f64>() / self.scores.len() as f64;
            if score >= s.best_score && score >= mean {
                s.weights = candidate;
                s.best_score = score;
            }
        }
        scalars.insert("train/best_score".into(), s.best_score);
        scalars.insert("train/noise_scale".into(), s.noise_scale);
        scalars.insert("train/nonfinite_skip".into(), f64::from(u8::from(skipped)));
        scalars.insert("train/nonfinite_skips".into(), s.skips as f64);
        scalars.insert("time/total_timesteps".into(), s.num_timesteps as f64);
        Ok(Iteration {
            scalars,
            nonfinite_skip: skipped.then_some(s.skips),
        })
    }

    fn num_timesteps(&self) -> u64 {
        self.state.num_timesteps
    }

    fn nonfinite_skips(&self) -> u64 {
        self.state.skips
    }

    fn export_state(&self) -> Result<AlgorithmState> {
        let w = &self.state.weights;
        let d = w.len() - 1;
        let tensor = |v: &[f32], shape: &[usize]| Tensor::from_vec(shape, v.to_vec());
        let meta = serde_json::to_value(SavedClimb {
            climb: self.state.clone(),
            env: self.env.state(),
        })
        .map_err(state_error)?;
        Ok(AlgorithmState {
            weights: [
                (
                    "linear.weight".to_string(),
                    tensor(&w[..d], &[1, d]).map_err(state_error)?,
                ),
                (
                    "linear.bias".to_string(),
                    tensor(&w[d..], &[1]).map_err(state_error)?,
                ),
            ]
            .into(),
            optimizer: OptimizerState {
                tensors: Default::default(),
                scalars: "{}".into(),
            },
            meta,
        })
    }

    fn import_state(&mut self, state: &AlgorithmState) -> Result<()> {
        let saved: SavedClimb = serde_json::from_value(state.meta.clone()).map_err(state_error)?;
        self.env.set_state(&saved.env)?;
        self.state = saved.climb;
        Ok(())
    }

    fn roll_back_to(&mut self, state: &AlgorithmState, lr_factor: f64) -> Result<()> {
        let saved: SavedClimb = serde_json::from_value(state.meta.clone()).map_err(state_error)?;
        self.state.weights = saved.climb.weights;
        self.state.best_score = saved.climb.best_score;
        self.state.noise_scale *= lr_factor;
        Ok(())
    }

    fn lr_scale(&self) -> f64 {
        self.state.noise_scale
    }

    fn resume_files(&self) -> Option<&dyn ResumeFiles> {
        Some(self)
    }

    fn import_resume_files(&mut self, files: &BTreeMap<String, PathBuf>) -> Result<()> {
        let path = files
            .get(SCORES)
            .ok_or_else(|| TrainError::invalid("hill-climb resume", "no scores file"))?;
        let bytes = std::fs::read(path).map_err(state_error)?;
        self.scores = bytes
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect();
        if self.scores.len() != self.state.scores {
            return Err(state_error(format!(
                "{} scores in the file, the state says {}",
                self.scores.len(),
                self.state.scores
            )));
        }
        Ok(())
    }

    fn replace_env_batch(&mut self, mut batch: Box<dyn BatchEnv>, seed: u64) -> Result<()> {
        batch.reset(seed)?;
        self.env = batch;
        Ok(())
    }

    fn policy(&self) -> Result<PolicySnapshot> {
        Ok(PolicySnapshot {
            net: Box::new(Linear(self.state.weights.clone())),
            obs_dim: self.state.weights.len() - 1,
            obs_bytes: 0,
            normalizer: None,
        })
    }

    fn policy_record(&self) -> Result<PolicyRecord> {
        Ok(PolicyRecord {
            observation_space: self.env.observation_space().clone(),
            action_space: self.env.action_space().clone(),
            frame_stack: None,
            obs_normalizer: None,
            network: Value::String("linear threshold".into()),
        })
    }
}

/// The resume file of the climber's score history.
const SCORES: &str = "scores.bin";

impl ResumeFiles for HillClimb {
    fn names(&self) -> Vec<String> {
        vec![SCORES.into()]
    }
    fn write(&self, _: &str, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        for s in &self.scores {
            out.write_all(&s.to_le_bytes())?;
        }
        Ok(())
    }
}

/// The climber's policy for evaluation.
struct Linear(Vec<f32>);

impl Policy for Linear {
    fn name(&self) -> &str {
        "linear"
    }

    fn act(
        &mut self,
        input: &PolicyInput<'_>,
        _deterministic: bool,
        actions: &mut [f32],
    ) -> std::result::Result<(), String> {
        act(&self.0, input.obs, actions);
        Ok(())
    }
}

// ------------------------------------------------------------- harness ----

const CONFIG: &str = "env: {id: CartPole-v1}\nseed: 7\nn_envs: 2\ntotal_timesteps: 1000000000\n\
     run: {checkpoint_every_steps: 2048, keep_last_n: 20, eval_every_steps: 2048, eval_episodes: 3}\n";

/// Set in the child process the kill test starts: the runs directory to train in.
const CHILD_VAR: &str = "HLYNR_HILL_CLIMB_CHILD";

fn factory(config: &RunConfig) -> Result<Box<dyn EnvFactory>> {
    Ok(Box::new(ClassicEnvFactory::new(&config.env)?))
}

/// The same environments, each vector step taking a millisecond longer: slow
/// enough for the parent to kill the run between two checkpoints.
fn slow_factory(config: &RunConfig) -> Result<Box<dyn EnvFactory>> {
    #[derive(Debug)]
    struct Slow(ClassicEnvFactory);
    impl EnvFactory for Slow {
        fn make_train(&self, n_envs: usize) -> Result<Box<dyn BatchEnv>> {
            Ok(Box::new(SlowBatch(self.0.make_train(n_envs)?)))
        }
        fn make_eval(&self) -> hlynr_env::Result<Box<dyn hlynr_env::Env>> {
            self.0.make_eval()
        }
    }
    Ok(Box::new(Slow(ClassicEnvFactory::new(&config.env)?)))
}

struct SlowBatch(Box<dyn BatchEnv>);

impl BatchEnv for SlowBatch {
    fn num_envs(&self) -> usize {
        self.0.num_envs()
    }
    fn observation_space(&self) -> &hlynr_env::Space {
        self.0.observation_space()
    }
    fn action_space(&self) -> &hlynr_env::Space {
        self.0.action_space()
    }
    fn reset(&mut self, seed: u64) -> hlynr_env::Result<()> {
        self.0.reset(seed)
    }
    fn step(&mut self, actions: &[f32]) -> hlynr_env::Result<()> {
        std::thread::sleep(Duration::from_millis(1));
        self.0.step(actions)
    }
    fn obs(&self) -> &[f32] {
        self.0.obs()
    }
    fn rewards(&self) -> &[f32] {
        self.0.rewards()
    }
    fn terminated(&self) -> &[bool] {
        self.0.terminated()
    }
    fn truncated(&self) -> &[bool] {
        self.0.truncated()
    }
    fn infos(&self) -> &[hlynr_env::Info] {
        self.0.infos()
    }
    fn final_observation(&self, i: usize) -> Option<&[f32]> {
        self.0.final_observation(i)
    }
    fn controller_view(&self) -> &[f64] {
        self.0.controller_view()
    }
    fn controller_view_dim(&self) -> usize {
        self.0.controller_view_dim()
    }
    fn state(&self) -> Value {
        self.0.state()
    }
    fn set_state(&mut self, state: &Value) -> hlynr_env::Result<()> {
        self.0.set_state(state)
    }
}

fn create(runs_dir: &Path, slow: bool) -> Trainer {
    let (config, resolved): (RunConfig, Value) =
        hlynr_env::config::resolve(CONFIG, "test", &[] as &[&str]).unwrap();
    let location = RunLocation {
        runs_dir: runs_dir.to_path_buf(),
        name: "climb".into(),
        command_line: vec!["test".into()],
    };
    let envs = if slow { slow_factory } else { factory };
    Trainer::create_staged_with(
        config,
        &resolved,
        envs,
        build_hill_climb,
        &location,
        ProgressMode::Quiet,
    )
    .unwrap()
}

fn the_run_in(runs_dir: &Path) -> Option<PathBuf> {
    std::fs::read_dir(runs_dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.is_dir())
}

/// `(kind, rule)` of the run's events.
fn events(run_dir: &Path) -> Vec<(String, Option<String>)> {
    read_metrics(&run_dir.join("metrics.jsonl"))
        .unwrap()
        .events()
        .into_iter()
        .map(|(_, e)| {
            let rule = e.fields.get("rule").and_then(Value::as_str);
            (e.kind.clone(), rule.map(String::from))
        })
        .collect()
}

#[test]
fn a_non_ppo_algorithm_survives_kill_resume_and_rollback_exactly() {
    if let Some(runs_dir) = std::env::var_os(CHILD_VAR) {
        // The child: train until killed.
        let mut t = create(Path::new(&runs_dir), true);
        t.train(None, None).unwrap();
        return;
    }
    let root = std::env::temp_dir().join(format!("hlynr-second-algo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);

    // The reference: straight through to UNTIL.
    let mut straight = create(&root.join("straight"), false);
    let out = straight.train(Some(UNTIL), None).unwrap();
    assert_eq!((out.status, out.env_steps), (TrainStatus::Paused, UNTIL));
    assert_eq!(out.nonfinite_skips, 3);
    assert_eq!(straight.algorithm().name(), "hill_climb");
    assert_eq!(
        straight.algorithm().lr_scale(),
        0.5,
        "the rollback halves the noise"
    );
    let ev = events(straight.run_dir());
    assert!(
        ev.contains(&("rollback".into(), Some("nonfinite".into()))),
        "{ev:?}"
    );
    assert_eq!(ev.iter().filter(|(k, _)| k == "nonfinite").count(), 3);
    let reference = straight.algorithm().export_state().unwrap();
    let reference_eval = straight.evaluate_now().unwrap();
    assert!(
        reference_eval.mean_reward > 20.0,
        "the climber learned nothing: {reference_eval:?}"
    );
    drop(straight);

    // The same run in a child process, killed once it has checkpointed after
    // the rollback (the checkpoint must carry the halved noise and the
    // doctor's count).
    let killed_dir = root.join("killed");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_non_ppo_algorithm_survives_kill_resume_and_rollback_exactly",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_VAR, &killed_dir)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let run_dir = loop {
        if let Some(run) = the_run_in(&killed_dir)
            && run.join("checkpoints").join(step_dir_name(8192)).is_dir()
        {
            break run;
        }
        assert!(
            Instant::now() < deadline,
            "the child wrote no checkpoint in time"
        );
        assert!(child.try_wait().unwrap().is_none(), "the child ended early");
        std::thread::sleep(Duration::from_millis(5));
    };
    child.kill().unwrap();
    child.wait().unwrap();

    let (mut resumed, report) = Trainer::resume_with(
        &run_dir,
        factory,
        build_hill_climb,
        vec!["resume".into()],
        ProgressMode::Quiet,
    )
    .unwrap();
    assert!(
        report.env_steps >= 8192 && report.env_steps < UNTIL,
        "{report:?}"
    );
    assert_eq!(resumed.algorithm().lr_scale(), 0.5);
    let checkpoints = run_dir.join("checkpoints");
    assert!(
        checkpoints
            .join("last")
            .join("resume")
            .join(SCORES)
            .is_file()
    );
    assert!(!checkpoints.join("best").join("resume").exists());
    let out = resumed.train(Some(UNTIL), None).unwrap();
    assert_eq!(out.env_steps, UNTIL);
    assert_eq!(resumed.algorithm().lr_scale(), 0.5);
    assert_eq!(resumed.algorithm().export_state().unwrap(), reference);
    assert_eq!(resumed.evaluate_now().unwrap(), reference_eval);
    drop(resumed);

    // A PPO trainer cannot take the climber's checkpoints.
    let e = Trainer::resume(&run_dir, factory, vec![], ProgressMode::Quiet)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("holds the state of algorithm `hill_climb`, not `ppo`"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&root);
}
