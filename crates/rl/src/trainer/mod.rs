//! The training driver behind `hlynr train` and `hlynr resume`: it ties an
//! [`Algorithm`] to a run directory.
//!
//! One [`Trainer`] owns the run directory (config, manifest), the algorithm,
//! the metrics sink (TensorBoard, `metrics.jsonl`, progress) and the
//! checkpoint manager. After every iteration it logs the algorithm's metrics
//! and the environment metrics of the episodes that finished during it
//! (`episode/<name>`, mean over those episodes); every `eval_every_steps` env
//! steps it evaluates the policy deterministically on separate environments
//! with fixed seeds and keeps `best/`; every `checkpoint_every_steps` env steps
//! it writes a checkpoint. A stop request (Ctrl-C, SIGTERM) finishes the
//! current update, writes a checkpoint and marks the run `interrupted`.
//!
//! With a `curriculum` section (see [`crate::curriculum`]) the training and
//! evaluation environments are those of the current stage; an evaluation
//! that reaches the promotion threshold moves the run to the next stage, and
//! the stage is logged (`curriculum/stage`) and checkpointed.
//!
//! Every decision depends only on the env-step counter and saved state, never
//! on wall time, so a run stopped at any checkpoint and resumed ends with the
//! same weights and metrics as one that ran through.
//!
//! The driver sees environments only through an [`EnvFactory`]; the
//! classic-control tasks have [`ClassicEnvFactory`], other environments (the
//! interception simulator) provide their own.

mod build;
mod model;
mod state;

use std::path::{Path, PathBuf};

use hlynr_env::Policy;
use hlynr_env::config::Validate;
use hlynr_rng::derive_seed;
pub use serde_json::Value;

pub use self::build::{AlgorithmBuilder, build_algorithm, policy_from_record, stage_factories};
pub use self::model::{LoadedModel, bare_policy, load_model, locate_model};
use self::state::payload_of;
pub use self::state::{SavedRun, TRAINER_STATE_VERSION, TrainerMeta, saved_run};
use crate::algorithm::Algorithm;
use crate::checkpoint::{BEST, CheckpointManager, CheckpointPayload};
use crate::doctor::{Doctor, DoctorAction};
pub use crate::env_factory::{ClassicEnvFactory, EnvFactory};
use crate::episode_metrics::{EpisodeMetrics, EpisodeMetricsRecorder};
pub use crate::error::{Result, TrainError};
use crate::eval::{EvalConfig, evaluate};
pub use crate::eval::{EvalScore, EvalSummary};
use crate::metrics::{Metrics, RunEvent, event_kind, keys};
use crate::model_policy::ModelPolicy;
use crate::progress::{Progress, ProgressMode};
use crate::run::RunLock;
use crate::run::{NO_CHECKPOINT, NewRun, RunDir, RunStatus};
pub use crate::run_config::{AlgoName, FinalEval, RunConfig, RunSettings};
use crate::signals::StopSignal;
use crate::sink::MetricsSink;

// -------------------------------------------------------------- driver ----

/// How a training segment ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrainStatus {
    /// `total_timesteps` reached.
    Completed,
    /// The `until` step of this segment reached before the total; resumable.
    Paused,
    /// Stopped by a signal or request; resumable.
    Interrupted,
    /// Stopped by a training-doctor rule whose action is `stop` (or after
    /// `doctor.max_rollbacks` rollbacks); resumable after a look at the run.
    DoctorStopped,
    /// Ended by `run.early_stop`: evaluations stopped improving; `best/`
    /// holds the best policy. The run is complete (resuming it trains on).
    EarlyStopped,
}

/// The result of [`Trainer::train`].
#[derive(Clone, Debug, PartialEq)]
pub struct TrainOutcome {
    /// How it ended.
    pub status: TrainStatus,
    /// Env steps reached.
    pub env_steps: u64,
    /// The last checkpoint written.
    pub checkpoint: Option<PathBuf>,
    /// The most recent evaluation.
    pub last_eval: Option<EvalSummary>,
    /// The baselines of `run.eval_baselines` on the same episodes.
    pub baselines: Vec<(String, EvalSummary)>,
    /// Updates skipped by PPO's non-finite guard (whole run).
    pub nonfinite_skips: u64,
    /// Wall time of this segment (s).
    pub segment_s: f64,
}

/// Where to create a new run.
#[derive(Clone, Debug)]
pub struct RunLocation {
    /// Parent directory (`runs/`).
    pub runs_dir: PathBuf,
    /// Run name.
    pub name: String,
    /// The command line to record.
    pub command_line: Vec<String>,
}

/// What resuming found.
#[derive(Clone, Debug, PartialEq)]
pub struct ResumeReport {
    /// The checkpoint used; `None` when the run had written none yet and
    /// started over from step 0 with its resolved config.
    pub checkpoint: Option<PathBuf>,
    /// Its env-step count.
    pub env_steps: u64,
    /// Newer checkpoints that failed validation: path and reason.
    pub rejected: Vec<(PathBuf, String)>,
    /// Interrupted writes that were completed or cleaned up.
    pub repairs: Vec<String>,
}

/// A training run in progress (see the module docs).
#[derive(Debug)]
pub struct Trainer {
    run: RunDir,
    config: RunConfig,
    fingerprint: String,
    /// One factory per curriculum stage (one without a curriculum).
    factories: Vec<Box<dyn EnvFactory>>,
    algorithm: Box<dyn Algorithm>,
    /// What the training batch's finished episodes reported.
    episode_metrics: EpisodeMetrics,
    sink: MetricsSink,
    checkpoints: CheckpointManager,
    meta: TrainerMeta,
    /// Env steps of the last checkpoint written (avoids saving twice).
    last_saved_step: Option<u64>,
    /// Watches every logged record.
    doctor: Doctor,
    /// Why the doctor asked to stop, once it has.
    doctor_stop: Option<String>,
    /// Why `run.early_stop` ended the run, once it has.
    early_stop: Option<String>,
    /// The baselines' evaluations and the stage they were made in: the
    /// laws are deterministic on the run's fixed evaluation episodes, so
    /// each stage evaluates them once.
    baseline_evals: Option<(usize, Vec<(String, EvalSummary)>)>,
}

/// What a run is rebuilt from: its config, resolved and typed, the
/// environments of every stage and the algorithm's builder.
struct RunParts {
    resolved: Value,
    config: RunConfig,
    factories: Vec<Box<dyn EnvFactory>>,
    builder: AlgorithmBuilder,
}

/// Seed stream of the environment resets at curriculum promotions.
const STREAM_CURRICULUM: u64 = 0x6375_7272; // "curr"

fn stage_factory(factories: &[Box<dyn EnvFactory>], stage: usize) -> Result<&dyn EnvFactory> {
    factories.get(stage).map(Box::as_ref).ok_or_else(|| {
        TrainError::invalid(
            "curriculum",
            format!(
                "stage {stage} does not exist (the run has {} stages)",
                factories.len()
            ),
        )
    })
}

/// A training batch of `factory` with its episode metrics recorded.
fn recorded_batch(
    config: &RunConfig,
    factory: &dyn EnvFactory,
) -> Result<(Box<dyn hlynr_env::BatchEnv>, EpisodeMetrics)> {
    let recorder = EpisodeMetricsRecorder::new(factory.make_train(config.n_envs)?);
    let metrics = recorder.metrics();
    Ok((Box::new(recorder), metrics))
}

/// The algorithm of `config` over a fresh training batch of `factory`.
fn make_algorithm(
    config: &RunConfig,
    factory: &dyn EnvFactory,
    builder: AlgorithmBuilder,
) -> Result<(Box<dyn Algorithm>, EpisodeMetrics)> {
    let (batch, metrics) = recorded_batch(config, factory)?;
    Ok((builder(config, batch)?, metrics))
}

/// Validates `config` and builds the learner of its first stage, checking
/// that its evaluation env builds too: everything that can fail on bad input
/// before a run directory is written.
fn first_stage_algorithm(
    config: &RunConfig,
    factories: &[Box<dyn EnvFactory>],
    builder: AlgorithmBuilder,
) -> Result<(Box<dyn Algorithm>, EpisodeMetrics)> {
    config.validate("")?;
    let factory = stage_factory(factories, 0)?;
    let built = make_algorithm(config, factory, builder)?;
    if config.run.evaluate {
        factory.make_eval()?;
        for f in factories {
            let known = f.baseline_names();
            for name in eval_baseline_names(config, f.as_ref()) {
                if !known.contains(&name.as_str()) {
                    let hint = hlynr_env::config::suggest(&name, known.iter().copied())
                        .map_or(String::new(), |b| format!("did you mean `{b}`? "));
                    return Err(TrainError::invalid(
                        "run.eval_baselines",
                        format!(
                            "unknown baseline `{name}`; {hint}(this env has: {})",
                            if known.is_empty() {
                                "none".into()
                            } else {
                                known.join(", ")
                            }
                        ),
                    ));
                }
            }
        }
    }
    Ok(built)
}

/// The baselines evaluations of `factory` table: `run.eval_baselines`, or
/// the env's own choice.
pub fn eval_baseline_names(config: &RunConfig, factory: &dyn EnvFactory) -> Vec<String> {
    match &config.run.eval_baselines {
        Some(names) => names.clone(),
        None => factory
            .default_baselines()
            .into_iter()
            .map(String::from)
            .collect(),
    }
}

impl Trainer {
    /// Creates a new run directory for the resolved `config` (`resolved` is
    /// what `config.yaml` holds) and a trainer at step 0. A config with a
    /// curriculum needs one factory per stage: use [`Trainer::create_staged`].
    pub fn create(
        config: RunConfig,
        resolved: &Value,
        factory: Box<dyn EnvFactory>,
        location: &RunLocation,
        progress: ProgressMode,
    ) -> Result<Self> {
        if config.curriculum.is_some() {
            return Err(TrainError::invalid(
                "curriculum",
                "a run with a curriculum is created with Trainer::create_staged",
            ));
        }
        Self::create_with(
            config,
            resolved,
            vec![factory],
            build_algorithm,
            location,
            progress,
        )
    }

    /// Everything [`Trainer::create_staged`] checks before it writes a run
    /// directory (the config, every stage's environments, the learner),
    /// without creating one: `hlynr train --check`.
    pub fn check_staged<F>(config: &RunConfig, factory_for: F) -> Result<()>
    where
        F: Fn(&RunConfig) -> Result<Box<dyn EnvFactory>>,
    {
        config.validate("")?;
        let factories = stage_factories(config, factory_for)?;
        first_stage_algorithm(config, &factories, build_algorithm).map(drop)
    }

    /// Like [`Trainer::create`], building the environments of every
    /// curriculum stage with `factory_for` (from the stage's config) and
    /// checking each before the run directory exists.
    pub fn create_staged<F>(
        config: RunConfig,
        resolved: &Value,
        factory_for: F,
        location: &RunLocation,
        progress: ProgressMode,
    ) -> Result<Self>
    where
        F: Fn(&RunConfig) -> Result<Box<dyn EnvFactory>>,
    {
        Self::create_staged_with(
            config,
            resolved,
            factory_for,
            build_algorithm,
            location,
            progress,
        )
    }

    /// [`Trainer::create_staged`] with the algorithm built by `algorithm`
    /// instead of the one `config.algo` names.
    pub fn create_staged_with<F>(
        config: RunConfig,
        resolved: &Value,
        factory_for: F,
        algorithm: AlgorithmBuilder,
        location: &RunLocation,
        progress: ProgressMode,
    ) -> Result<Self>
    where
        F: Fn(&RunConfig) -> Result<Box<dyn EnvFactory>>,
    {
        config.validate("")?;
        let factories = stage_factories(&config, factory_for)?;
        Self::create_with(config, resolved, factories, algorithm, location, progress)
    }

    fn create_with(
        config: RunConfig,
        resolved: &Value,
        factories: Vec<Box<dyn EnvFactory>>,
        builder: AlgorithmBuilder,
        location: &RunLocation,
        progress: ProgressMode,
    ) -> Result<Self> {
        // Build everything that can fail on bad input before creating the directory.
        let built = first_stage_algorithm(&config, &factories, builder)?;
        let run = RunDir::create(&NewRun {
            runs_dir: &location.runs_dir,
            name: &location.name,
            seed: config.seed,
            resolved_config: resolved,
            command_line: location.command_line.clone(),
        })?;
        let progress = Progress::new(progress, 0, config.total_timesteps);
        let sink = MetricsSink::create_in(run.path(), Some(progress))?;
        Self::at_step_zero(run, resolved, config, factories, built, sink)
    }

    /// A trainer at step 0 writing `run` through `sink`.
    fn at_step_zero(
        run: RunDir,
        resolved: &Value,
        config: RunConfig,
        factories: Vec<Box<dyn EnvFactory>>,
        (algorithm, episode_metrics): (Box<dyn Algorithm>, EpisodeMetrics),
        sink: MetricsSink,
    ) -> Result<Self> {
        let checkpoints = CheckpointManager::new(&run.checkpoints_dir(), config.run.keep_last_n)?;
        Ok(Trainer {
            doctor: Doctor::new(config.doctor.clone()),
            fingerprint: crate::checkpoint::json_fingerprint(resolved),
            run,
            config,
            factories,
            algorithm,
            episode_metrics,
            sink,
            checkpoints,
            meta: TrainerMeta::default(),
            last_saved_step: None,
            doctor_stop: None,
            early_stop: None,
            baseline_evals: None,
        })
    }

    /// Reopens the run at `run_dir` from its newest valid checkpoint, or from
    /// step 0 when it was stopped before writing any (its resolved config is
    /// all a run needs to start). `factory_for` builds the environments from
    /// the run's config. The run's writer lock is taken first: a run that
    /// another process is writing is refused before anything is read or
    /// repaired.
    pub fn resume<F>(
        run_dir: &Path,
        factory_for: F,
        command_line: Vec<String>,
        progress: ProgressMode,
    ) -> Result<(Self, ResumeReport)>
    where
        F: Fn(&RunConfig) -> Result<Box<dyn EnvFactory>>,
    {
        Self::resume_with(
            run_dir,
            factory_for,
            build_algorithm,
            command_line,
            progress,
        )
    }

    /// [`Trainer::resume`] with the algorithm built by `algorithm` (it must
    /// be the one that wrote the run's checkpoints).
    pub fn resume_with<F>(
        run_dir: &Path,
        factory_for: F,
        algorithm: AlgorithmBuilder,
        command_line: Vec<String>,
        progress: ProgressMode,
    ) -> Result<(Self, ResumeReport)>
    where
        F: Fn(&RunConfig) -> Result<Box<dyn EnvFactory>>,
    {
        let lock = RunLock::acquire(run_dir)?;
        let opened = RunDir::open(run_dir)?;
        let resolved = opened.read_config()?;
        let config = RunConfig::from_resolved(&resolved)?;
        let factories = stage_factories(&config, factory_for)?;
        let checkpoints =
            CheckpointManager::new(&opened.checkpoints_dir(), config.run.keep_last_n)?;
        let recovery = checkpoints.latest_valid()?;
        let report_rejected: Vec<(PathBuf, String)> = recovery
            .rejected
            .iter()
            .map(|r| (r.path.clone(), r.reason.clone()))
            .collect();
        let Some(checkpoint) = recovery.checkpoint else {
            if report_rejected.is_empty() {
                drop(opened);
                let report = ResumeReport {
                    checkpoint: None,
                    env_steps: 0,
                    rejected: Vec::new(),
                    repairs: recovery.repairs,
                };
                let parts = RunParts {
                    resolved,
                    config,
                    factories,
                    builder: algorithm,
                };
                let trainer = Self::start_over(run_dir, lock, parts, command_line, progress)?;
                return Ok((trainer, report));
            }
            let mut message = format!(
                "no valid checkpoint in {}",
                opened.checkpoints_dir().display()
            );
            for (p, why) in &report_rejected {
                message.push_str(&format!("; {} rejected: {why}", p.display()));
            }
            message.push_str(&format!(
                "; to train from the beginning, start a new run from its config: hlynr train --config {}",
                opened.config_path().display()
            ));
            return Err(TrainError::invalid("resume", message));
        };
        let context = || format!("checkpoint {}", checkpoint.path.display());
        let saved = saved_run(&checkpoint)?;
        if saved.config_fingerprint != crate::checkpoint::json_fingerprint(&resolved) {
            return Err(TrainError::invalid(
                context(),
                "was written for a different config.yaml (fingerprint mismatch); \
                 config.yaml must not be edited between segments",
            ));
        }
        let mut meta = saved.trainer;
        // A run that ended on `run.early_stop` and is resumed goes on: its
        // patience starts again from the last improvement.
        if let Some(e) = &config.run.early_stop
            && meta.plateau.evaluations >= e.patience
        {
            meta.plateau.evaluations = 0;
        }
        // The checkpoint's environment state belongs to its stage's batch.
        let (mut algorithm, episode_metrics) =
            make_algorithm(&config, stage_factory(&factories, meta.stage)?, algorithm)?;
        if saved.algorithm != algorithm.name() {
            return Err(TrainError::invalid(
                context(),
                format!(
                    "holds the state of algorithm `{}`, not `{}`",
                    saved.algorithm,
                    algorithm.name()
                ),
            ));
        }
        algorithm.import_state(&saved.state)?;
        algorithm.import_resume_files(&checkpoint.resume_files)?;
        let env_steps = checkpoint.env_steps;
        if algorithm.num_timesteps() != env_steps {
            return Err(TrainError::invalid(
                context(),
                format!(
                    "records {env_steps} env steps but its state holds {}",
                    algorithm.num_timesteps()
                ),
            ));
        }
        drop(opened);
        let run = RunDir::resume(
            run_dir,
            lock,
            Some(&checkpoint.path),
            env_steps,
            command_line,
        )?;
        let relative = checkpoint
            .path
            .strip_prefix(run_dir)
            .unwrap_or(&checkpoint.path)
            .display()
            .to_string();
        let progress = Progress::new(progress, env_steps, config.total_timesteps);
        let sink = MetricsSink::resume_in(
            run.path(),
            env_steps,
            &relative,
            meta.elapsed_s,
            Some(progress),
        )?;
        let mut doctor = Doctor::new(config.doctor.clone());
        if let Some(state) = &meta.doctor {
            doctor.set_state(state).map_err(|e| {
                TrainError::invalid(context(), format!("training doctor state: {e}"))
            })?;
        }
        let report = ResumeReport {
            checkpoint: Some(checkpoint.path.clone()),
            env_steps,
            rejected: report_rejected,
            repairs: recovery.repairs,
        };
        Ok((
            Trainer {
                run,
                fingerprint: saved.config_fingerprint,
                config,
                factories,
                algorithm,
                episode_metrics,
                sink,
                checkpoints,
                meta,
                last_saved_step: Some(env_steps),
                doctor,
                doctor_stop: None,
                early_stop: None,
                baseline_evals: None,
            },
            report,
        ))
    }

    /// The trainer of a run that wrote no checkpoint: step 0 of its resolved
    /// config, in its own directory, which keeps its history (the manifest
    /// records the restart; metrics and TensorBoard start a new segment at 0).
    fn start_over(
        run_dir: &Path,
        lock: RunLock,
        parts: RunParts,
        command_line: Vec<String>,
        progress: ProgressMode,
    ) -> Result<Self> {
        let built = first_stage_algorithm(&parts.config, &parts.factories, parts.builder)?;
        let run = RunDir::resume(run_dir, lock, None, 0, command_line)?;
        let progress = Progress::new(progress, 0, parts.config.total_timesteps);
        let sink = MetricsSink::resume_in(run.path(), 0, NO_CHECKPOINT, 0.0, Some(progress))?;
        Self::at_step_zero(
            run,
            &parts.resolved,
            parts.config,
            parts.factories,
            built,
            sink,
        )
    }

    /// The run directory.
    pub fn run_dir(&self) -> &Path {
        self.run.path()
    }

    /// The config.
    pub fn config(&self) -> &RunConfig {
        &self.config
    }

    /// The algorithm being trained.
    pub fn algorithm(&self) -> &dyn Algorithm {
        self.algorithm.as_ref()
    }

    /// Trains until `until` env steps (default and cap: `total_timesteps`)
    /// or a stop request. Always ends with a checkpoint and the manifest's
    /// status; on error the run is marked `failed`.
    pub fn train(&mut self, until: Option<u64>, stop: Option<&StopSignal>) -> Result<TrainOutcome> {
        match self.train_inner(until, stop) {
            Ok(outcome) => Ok(outcome),
            Err(e) => {
                let _ = self.sink.event(
                    self.algorithm.num_timesteps(),
                    &RunEvent::new(event_kind::FAILED, e.to_string()),
                );
                let _ = self.sink.finish();
                let _ = self.run.finish(RunStatus::Failed, Some(e.to_string()));
                Err(e)
            }
        }
    }

    fn train_inner(
        &mut self,
        until: Option<u64>,
        stop: Option<&StopSignal>,
    ) -> Result<TrainOutcome> {
        let total = self.config.total_timesteps;
        let until = until.unwrap_or(total);
        if until > total {
            return Err(TrainError::invalid(
                "--steps",
                format!(
                    "{until} is beyond total_timesteps = {total}, the horizon of the schedules; \
                     start a new run with a larger total_timesteps"
                ),
            ));
        }
        let started = std::time::Instant::now();
        let segment_start = self.algorithm.num_timesteps();
        let mut status = TrainStatus::Completed;
        while self.algorithm.num_timesteps() < until {
            let before = self.algorithm.num_timesteps();
            let iteration = self.algorithm.iterate()?;
            let step = self.algorithm.num_timesteps();
            let mut values = iteration.scalars;
            values.extend(self.episode_metrics.take());
            let segment_s = started.elapsed().as_secs_f64();
            if segment_s > 0.0 {
                values.insert(keys::FPS.into(), (step - segment_start) as f64 / segment_s);
            }
            values.insert(keys::TIME_ELAPSED.into(), self.sink.elapsed_s());
            if self.config.curriculum.is_some() {
                values.insert(CURRICULUM_STAGE.into(), self.meta.stage as f64);
            }
            self.sink.log(step, &values)?;
            self.consult_doctor(step, &values)?;
            if let Some(skips) = iteration.nonfinite_skip {
                self.sink.event(
                    step,
                    &RunEvent::new(
                        event_kind::NONFINITE,
                        "non-finite loss, gradient or weight: update skipped, last good parameters restored",
                    )
                    .with("skips", skips),
                )?;
            }
            let every = self.config.run.eval_every_steps;
            let finished = step >= total;
            let evaluates = (every > 0 && crossed(before, step, every)) || finished;
            if evaluates && self.config.run.evaluate {
                self.evaluate_and_keep_best(step)?;
            }
            if crossed(before, step, self.config.run.checkpoint_every_steps) {
                self.save_checkpoint(step)?;
            }
            if stop.is_some_and(StopSignal::stop_requested) {
                status = TrainStatus::Interrupted;
                break;
            }
            if self.doctor_stop.is_some() {
                status = TrainStatus::DoctorStopped;
                break;
            }
            if self.early_stop.is_some() {
                status = TrainStatus::EarlyStopped;
                break;
            }
        }
        let step = self.algorithm.num_timesteps();
        if status == TrainStatus::Completed && step < total {
            status = TrainStatus::Paused;
        }
        if self.last_saved_step != Some(step) {
            self.save_checkpoint(step)?;
        }
        let (run_status, message) = match status {
            TrainStatus::Completed => (RunStatus::Completed, None),
            TrainStatus::Paused => (
                RunStatus::Interrupted,
                Some(format!(
                    "stopped at {step} of {total} env steps as asked (--steps); `hlynr resume` continues"
                )),
            ),
            TrainStatus::Interrupted => (
                RunStatus::Interrupted,
                Some(
                    stop.and_then(StopSignal::reason)
                        .unwrap_or_else(|| "stop requested".into()),
                ),
            ),
            TrainStatus::DoctorStopped => (
                RunStatus::Interrupted,
                Some(format!(
                    "stopped by the training doctor: {}",
                    self.doctor_stop.clone().unwrap_or_default()
                )),
            ),
            TrainStatus::EarlyStopped => (
                RunStatus::Completed,
                Some(self.early_stop.clone().unwrap_or_default()),
            ),
        };
        if let Some(m) = &message {
            self.sink
                .event(step, &RunEvent::new(event_kind::STOPPED, m.clone()))?;
        }
        self.sink.finish()?;
        self.run.finish(run_status, message)?;
        Ok(TrainOutcome {
            status,
            env_steps: step,
            checkpoint: self.last_saved_step.map(|s| {
                self.checkpoints
                    .dir()
                    .join(crate::checkpoint::step_dir_name(s))
            }),
            last_eval: self.meta.last_eval,
            baselines: self
                .baseline_evals
                .as_ref()
                .map_or_else(Vec::new, |(_, b)| b.clone()),
            nonfinite_skips: self.algorithm.nonfinite_skips(),
            segment_s: started.elapsed().as_secs_f64(),
        })
    }

    /// The current curriculum stage (0 without a curriculum).
    pub fn stage(&self) -> usize {
        self.meta.stage
    }

    /// Evaluates the current policy on fresh environments of the current
    /// curriculum stage (deterministic actions, frozen normaliser, the run's
    /// fixed evaluation seeds).
    pub fn evaluate_now(&self) -> Result<EvalSummary> {
        let step = self.algorithm.num_timesteps();
        let policy = ModelPolicy::new("model", self.algorithm.policy()?);
        let mut policies: Vec<Box<dyn Policy>> = vec![Box::new(policy)];
        let config = EvalConfig::new(self.config.run.eval_episodes, self.config.eval_seed());
        let factory = stage_factory(&self.factories, self.meta.stage)?;
        let results = evaluate(&|| factory.make_eval(), &mut policies, &config)?;
        let first = results
            .first()
            .ok_or_else(|| TrainError::invalid("evaluation", "returned no results"))?;
        Ok(EvalSummary {
            stage: self.meta.stage,
            ..EvalSummary::of(first, step)
        })
    }

    /// The baselines' evaluations on the current stage's evaluation
    /// episodes (made once per stage).
    fn baseline_summaries(&mut self) -> Result<&[(String, EvalSummary)]> {
        let stage = self.meta.stage;
        if self
            .baseline_evals
            .as_ref()
            .is_none_or(|(s, _)| *s != stage)
        {
            let factory = stage_factory(&self.factories, stage)?;
            let names = eval_baseline_names(&self.config, factory);
            let mut policies = names
                .iter()
                .map(|n| factory.make_baseline(n))
                .collect::<hlynr_env::Result<Vec<_>>>()?;
            let config = EvalConfig::new(self.config.run.eval_episodes, self.config.eval_seed());
            let results = if policies.is_empty() {
                Vec::new()
            } else {
                evaluate(&|| factory.make_eval(), &mut policies, &config)?
            };
            let step = self.algorithm.num_timesteps();
            let summaries = names
                .into_iter()
                .zip(&results)
                .map(|(n, r)| {
                    (
                        n,
                        EvalSummary {
                            stage,
                            ..EvalSummary::of(r, step)
                        },
                    )
                })
                .collect();
            self.baseline_evals = Some((stage, summaries));
        }
        Ok(self.baseline_evals.as_ref().map_or(&[], |(_, b)| b))
    }

    fn evaluate_and_keep_best(&mut self, step: u64) -> Result<()> {
        let summary = self.evaluate_now()?;
        let mut values = Metrics::new();
        values.insert(keys::EVAL_MEAN_REWARD.into(), summary.mean_reward);
        values.insert(keys::EVAL_MEAN_EP_LENGTH.into(), summary.mean_ep_length);
        if let Some(s) = summary.success_rate {
            values.insert(keys::EVAL_SUCCESS_RATE.into(), s);
        }
        let baselines = self.baseline_summaries()?;
        for (name, b) in baselines {
            match b.success_rate {
                Some(s) => values.insert(format!("{}/{name}/success_rate", keys::EVAL_BASELINE), s),
                None => values.insert(
                    format!("{}/{name}/mean_reward", keys::EVAL_BASELINE),
                    b.mean_reward,
                ),
            };
        }
        let best = baselines
            .iter()
            .filter_map(|(_, b)| b.success_rate)
            .max_by(f64::total_cmp);
        if let (Some(best), Some(s)) = (best, summary.success_rate) {
            values.insert(keys::EVAL_SUCCESS_GAP.into(), s - best);
        }
        self.sink.log(step, &values)?;
        self.consult_doctor(step, &values)?;
        self.meta.last_eval = Some(summary);
        let score = summary.score();
        if self.meta.best.is_none_or(|b| score.beats(&b)) {
            self.meta.best = Some(score);
            let payload = self.payload()?;
            let path = self.checkpoints.save_best(step, &payload)?;
            self.sink.event(
                step,
                &RunEvent::new(event_kind::CHECKPOINT, "new best evaluation")
                    .with("path", self.relative(&path))
                    .with("mean_reward", summary.mean_reward)
                    .with(
                        "success_rate",
                        summary.success_rate.map_or(Value::Null, Value::from),
                    ),
            )?;
        }
        if let Some(e) = &self.config.run.early_stop
            && self.meta.plateau.observe(score, step, e)
        {
            let p = self.meta.plateau;
            self.early_stop = Some(format!(
                "stopped early (run.early_stop): {} evaluations without a gain of at least {} since step {}; best/ holds the best policy",
                p.evaluations, e.min_delta, p.reference_step
            ));
        }
        let promotes = match &self.config.curriculum {
            Some(c) => c.promotes(self.meta.stage, &summary)?,
            None => false,
        };
        if promotes {
            self.promote(step, &summary)?;
        }
        Ok(())
    }

    /// Moves to the next curriculum stage: a fresh training batch of that
    /// stage, reset with a seed derived from the run seed and the stage
    /// (normaliser statistics, network and optimizer carry over).
    fn promote(&mut self, step: u64, summary: &EvalSummary) -> Result<()> {
        let next = self.meta.stage + 1;
        let factory = stage_factory(&self.factories, next)?;
        let (batch, episode_metrics) = recorded_batch(&self.config, factory)?;
        let seed = derive_seed(
            derive_seed(self.config.seed, STREAM_CURRICULUM),
            next as u64,
        );
        self.algorithm.replace_env_batch(batch, seed)?;
        self.episode_metrics = episode_metrics;
        self.meta.stage = next;
        let name = self.config.stage_name(next).unwrap_or_default().to_string();
        self.sink.event(
            step,
            &RunEvent::new(
                event_kind::CURRICULUM,
                format!("promoted to stage {next} `{name}`"),
            )
            .with("stage", next as u64)
            .with("name", name)
            .with("mean_reward", summary.mean_reward)
            .with(
                "success_rate",
                summary.success_rate.map_or(Value::Null, Value::from),
            ),
        )?;
        Ok(())
    }

    /// Shows a logged record to the doctor and acts on its findings: every
    /// finding becomes a `doctor` event (JSONL, TensorBoard text, progress
    /// display); `stop` ends training after this update; `rollback` restores
    /// `best/` with a lower learning rate (a stop once `max_rollbacks` are used).
    fn consult_doctor(&mut self, step: u64, values: &Metrics) -> Result<()> {
        for finding in self.doctor.observe(step, values) {
            self.sink.event(
                step,
                &RunEvent::new(event_kind::DOCTOR, finding.diagnosis.clone())
                    .with("rule", finding.rule.clone())
                    .with("severity", finding.severity.name())
                    .with("action", finding.action.name())
                    .with("suggestion", finding.suggestion.clone())
                    .with("evidence", crate::doctor::evidence_json(&finding.evidence)),
            )?;
            match finding.action {
                DoctorAction::Warn => {}
                DoctorAction::Stop => {
                    self.doctor_stop
                        .get_or_insert_with(|| format!("{} at step {step}", finding.rule));
                }
                DoctorAction::Rollback => self.roll_back(step, &finding.rule)?,
            }
        }
        Ok(())
    }

    /// Restores `best/` (weights, optimizer, normaliser statistics) and scales
    /// the learning rate by `doctor.rollback_lr_factor`; the step count,
    /// environments and generators continue.
    fn roll_back(&mut self, step: u64, rule: &str) -> Result<()> {
        let (factor, max) = (
            self.config.doctor.rollback_lr_factor,
            self.config.doctor.max_rollbacks,
        );
        if self.meta.rollbacks >= max {
            let why = format!("{rule} at step {step} after {max} rollbacks");
            self.sink.event(
                step,
                &RunEvent::new(
                    event_kind::STOP,
                    format!("rollback limit (doctor.max_rollbacks = {max}) reached: stopping"),
                )
                .with("rule", rule),
            )?;
            self.doctor_stop.get_or_insert(why);
            return Ok(());
        }
        let best_dir = self.checkpoints.dir().join(BEST);
        let best = if best_dir.is_dir() {
            match crate::checkpoint::read_checkpoint(&best_dir).and_then(|c| {
                saved_run(&c)
                    .map(|saved| (saved.state, c.env_steps))
                    .map_err(|e| crate::run::RunError::corrupt(&best_dir, e.to_string()))
            }) {
                Ok(found) => Some(found),
                Err(e) => {
                    self.sink.event(
                        step,
                        &RunEvent::new(
                            event_kind::ROLLBACK,
                            format!("best/ unusable ({e}); not rolled back"),
                        )
                        .with("rule", rule),
                    )?;
                    return Ok(());
                }
            }
        } else {
            None
        };
        let Some((state, best_step)) = best else {
            self.sink.event(
                step,
                &RunEvent::new(
                    event_kind::ROLLBACK,
                    "no best/ checkpoint yet; not rolled back",
                )
                .with("rule", rule),
            )?;
            return Ok(());
        };
        self.algorithm.roll_back_to(&state, factor)?;
        self.meta.rollbacks += 1;
        self.sink.event(
            step,
            &RunEvent::new(
                event_kind::ROLLBACK,
                format!(
                    "restored best/ (step {best_step}); learning rate now x{:.3}",
                    self.algorithm.lr_scale()
                ),
            )
            .with("rule", rule)
            .with("best_step", best_step)
            .with("lr_scale", self.algorithm.lr_scale())
            .with("rollbacks", self.meta.rollbacks),
        )?;
        Ok(())
    }

    fn payload(&mut self) -> Result<CheckpointPayload> {
        self.meta.elapsed_s = self.sink.elapsed_s();
        self.meta.doctor = Some(self.doctor.state());
        let mut policy = self.algorithm.policy_record()?;
        policy.frame_stack = self.config.env.frame_stack;
        payload_of(
            self.algorithm.name(),
            self.algorithm.export_state()?,
            policy,
            &self.meta,
            &self.fingerprint,
        )
    }

    fn save_checkpoint(&mut self, step: u64) -> Result<()> {
        let payload = self.payload()?;
        let path = self
            .checkpoints
            .save(step, &payload, self.algorithm.resume_files())?;
        self.last_saved_step = Some(step);
        self.sink.event(
            step,
            &RunEvent::new(event_kind::CHECKPOINT, "saved").with("path", self.relative(&path)),
        )?;
        Ok(())
    }

    fn relative(&self, path: &Path) -> String {
        path.strip_prefix(self.run.path())
            .unwrap_or(path)
            .display()
            .to_string()
    }
}

/// Metric key of the current curriculum stage, logged every update.
pub const CURRICULUM_STAGE: &str = "curriculum/stage";

/// Whether a multiple of `every` lies in `(before, after]`.
fn crossed(before: u64, after: u64, every: u64) -> bool {
    every > 0 && after / every > before / every
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crossing_counts_env_steps() {
        assert!(crossed(0, 256, 256));
        assert!(!crossed(256, 511, 256));
        assert!(crossed(500, 520, 256 * 2));
        assert!(!crossed(0, 100, 0));
    }
}
