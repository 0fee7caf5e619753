//! The training driver end to end on CartPole: exact resume, fallback past
//! damaged checkpoints, strict config keys, and a clean stop on request.

use std::path::{Path, PathBuf};

use hlynr_rl::checkpoint::{BEST, LAST, MODEL_FILE, step_dir_name};
use hlynr_rl::metrics::{MetricsRecord, read_metrics};
use hlynr_rl::progress::ProgressMode;
use hlynr_rl::run::{NO_CHECKPOINT, RunDir, RunStatus};
use hlynr_rl::signals::StopSignal;
use hlynr_rl::trainer::{
    ClassicEnvFactory, EnvFactory, RunConfig, RunLocation, TrainStatus, Trainer, Value,
};

const TOTAL: u64 = 1024;
const HALF: u64 = 512;

fn config_text(checkpoint_every: u64) -> String {
    config_text_with(checkpoint_every, "")
}

/// The test config plus `extra` YAML (e.g. a `curriculum` section).
fn config_text_with(checkpoint_every: u64, extra: &str) -> String {
    format!(
        "env: {{id: CartPole-v1}}\nseed: 3\n\
         n_envs: 2\ntotal_timesteps: {TOTAL}\nppo: {{n_steps: 32, batch_size: 32, n_epochs: 2,\n\
           learning_rate: {{type: linear, initial: 1.0e-3}}, clip_range: {{type: linear, initial: 0.2}},\n\
           normalize_observations: true, policy: {{net_arch: [16, 16]}}}}\n\
         run: {{checkpoint_every_steps: {checkpoint_every}, keep_last_n: 10, eval_every_steps: 256, eval_episodes: 2}}\n\
         {extra}"
    )
}

fn scratch_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hlynr-trainer-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn factory(config: &RunConfig) -> hlynr_rl::trainer::Result<Box<dyn EnvFactory>> {
    Ok(Box::new(ClassicEnvFactory::new(&config.env)?))
}

fn location(runs_dir: &Path) -> RunLocation {
    RunLocation {
        runs_dir: runs_dir.to_path_buf(),
        name: "cartpole".into(),
        command_line: vec!["test".into()],
    }
}

fn new_trainer(runs_dir: &Path, checkpoint_every: u64) -> Trainer {
    let (config, resolved): (RunConfig, Value) =
        hlynr_env::config::resolve(&config_text(checkpoint_every), "test", &[] as &[&str]).unwrap();
    let f = factory(&config).unwrap();
    Trainer::create(
        config,
        &resolved,
        f,
        &location(runs_dir),
        ProgressMode::Quiet,
    )
    .unwrap()
}

/// Stage 0 ends CartPole episodes after 30 steps; stage 1 is the full task.
/// Promotion needs a deterministic mean evaluation return of at least 20.
/// With this seed the first evaluation (256 steps) falls short and the
/// second (512 steps, the resume point) promotes.
const CURRICULUM: &str = "curriculum: {stages: [{name: short, set: [max_episode_steps=30]}, \
    {name: full, set: []}], promote_at_return: 20, min_eval_episodes: 2}\n";

/// A trainer for the test config plus `curriculum`; config and startup
/// errors as text.
fn staged_trainer(runs_dir: &Path, curriculum: &str) -> Result<Trainer, String> {
    let (config, resolved): (RunConfig, Value) =
        hlynr_env::config::resolve(&config_text_with(256, curriculum), "test", &[] as &[&str])
            .map_err(|e| e.to_string())?;
    Trainer::create_staged(
        config,
        &resolved,
        factory,
        &location(runs_dir),
        ProgressMode::Quiet,
    )
    .map_err(|e| e.to_string())
}

fn resume(run_dir: &Path) -> (Trainer, hlynr_rl::trainer::ResumeReport) {
    Trainer::resume(run_dir, factory, vec!["resume".into()], ProgressMode::Quiet).unwrap()
}

fn weight_bits(t: &Trainer) -> Vec<(String, Vec<u32>)> {
    t.algorithm()
        .export_state()
        .unwrap()
        .weights
        .into_iter()
        .map(|(k, v)| (k, v.data().iter().map(|x| x.to_bits()).collect()))
        .collect()
}

/// Scalar records without the wall-clock keys, as comparable text.
fn scalar_lines(run_dir: &Path) -> Vec<String> {
    let log = read_metrics(&run_dir.join("metrics.jsonl")).unwrap();
    log.records
        .iter()
        .filter_map(|r| match r {
            MetricsRecord::Scalars { step, values, .. } => {
                let kept: Vec<String> = values
                    .iter()
                    .filter(|(k, _)| !matches!(k.as_str(), "time/fps" | "time/time_elapsed"))
                    .map(|(k, v)| format!("{k}={:016x}", v.to_bits()))
                    .collect();
                Some(format!("{step}: {}", kept.join(" ")))
            }
            MetricsRecord::Event { .. } => None,
        })
        .collect()
}

#[test]
fn stopped_and_resumed_run_ends_bitwise_identical() {
    let root = scratch_dir("exact");
    let mut full = new_trainer(&root.join("full"), HALF);
    let outcome = full.train(None, None).unwrap();
    assert_eq!(outcome.status, TrainStatus::Completed);
    assert_eq!(outcome.env_steps, TOTAL);
    let full_dir = full.run_dir().to_path_buf();
    let full_weights = weight_bits(&full);
    drop(full);

    let mut half = new_trainer(&root.join("half"), HALF);
    let out = half.train(Some(HALF), None).unwrap();
    assert_eq!((out.status, out.env_steps), (TrainStatus::Paused, HALF));
    let half_dir = half.run_dir().to_path_buf();
    assert_ne!(weight_bits(&half), full_weights, "half a run already equal");
    drop(half);
    assert_eq!(
        RunDir::open(&half_dir).unwrap().manifest().status,
        RunStatus::Interrupted
    );

    let (mut resumed, found) = resume(&half_dir);
    assert_eq!(found.env_steps, HALF);
    assert!(found.rejected.is_empty());
    let out = resumed.train(None, None).unwrap();
    assert_eq!((out.status, out.env_steps), (TrainStatus::Completed, TOTAL));
    assert_eq!(weight_bits(&resumed), full_weights);
    drop(resumed);

    let (a, b) = (scalar_lines(&full_dir), scalar_lines(&half_dir));
    assert!(a.iter().any(|l| l.contains("eval/mean_reward")), "{a:?}");
    assert!(a.iter().any(|l| l.contains("rollout/ep_rew_mean")), "{a:?}");
    assert_eq!(a, b);
    let manifest = RunDir::open(&half_dir).unwrap().manifest().clone();
    assert_eq!(manifest.status, RunStatus::Completed);
    assert_eq!(manifest.resumes.len(), 1);
    for dir in [&full_dir, &half_dir] {
        let ckpts = dir.join("checkpoints");
        for name in [
            LAST.to_string(),
            BEST.to_string(),
            step_dir_name(HALF),
            step_dir_name(TOTAL),
        ] {
            assert!(
                ckpts.join(&name).join(MODEL_FILE).is_file(),
                "{name} in {}",
                dir.display()
            );
        }
    }
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn a_run_stopped_before_its_first_checkpoint_resumes_from_step_0() {
    let root = scratch_dir("no-checkpoint");
    let mut full = new_trainer(&root.join("full"), HALF);
    full.train(None, None).unwrap();
    let full_weights = weight_bits(&full);
    let full_dir = full.run_dir().to_path_buf();
    drop(full);

    // Created, an update or two logged, then gone before any checkpoint (as
    // after a kill -9 in the first seconds): nothing to restore but the config.
    let mut early = new_trainer(&root.join("early"), 100_000);
    early.train(Some(128), None).unwrap();
    let dir = early.run_dir().to_path_buf();
    drop(early);
    let ckpts = dir.join("checkpoints");
    for entry in std::fs::read_dir(&ckpts).unwrap() {
        std::fs::remove_dir_all(entry.unwrap().path()).unwrap();
    }

    let (mut resumed, found) = resume(&dir);
    assert_eq!((found.checkpoint.as_ref(), found.env_steps), (None, 0));
    let out = resumed.train(None, None).unwrap();
    assert_eq!((out.status, out.env_steps), (TrainStatus::Completed, TOTAL));
    assert_eq!(weight_bits(&resumed), full_weights);
    drop(resumed);
    // The metrics hold one history from step 0, as an uninterrupted run's.
    assert_eq!(scalar_lines(&dir), scalar_lines(&full_dir));
    let manifest = RunDir::open(&dir).unwrap().manifest().clone();
    assert_eq!(manifest.status, RunStatus::Completed);
    assert_eq!(manifest.resumes.len(), 1);
    assert_eq!(manifest.resumes[0].env_steps, 0);
    assert_eq!(manifest.resumes[0].checkpoint, NO_CHECKPOINT);
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn resume_reports_the_interrupted_writes_it_repaired() {
    let root = scratch_dir("repairs");
    let mut t = new_trainer(&root, 256);
    t.train(Some(256), None).unwrap();
    let dir = t.run_dir().to_path_buf();
    drop(t);
    // What a process killed inside a checkpoint write leaves behind.
    let partial = dir.join("checkpoints").join(".tmp-last-4000000");
    std::fs::create_dir(&partial).unwrap();
    std::fs::write(partial.join(MODEL_FILE), b"half a file").unwrap();
    let (_resumed, found) = resume(&dir);
    assert_eq!(
        found.repairs,
        vec!["removed partial write .tmp-last-4000000".to_string()]
    );
    assert!(!partial.exists());
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn a_run_has_one_writer_and_readers_keep_working() {
    let root = scratch_dir("one-writer");
    let mut t = new_trainer(&root, 256);
    t.train(Some(256), None).unwrap();
    let dir = t.run_dir().to_path_buf();
    // The trainer still holds the run: a second writer is refused at once,
    // naming this process, and leaves the run untouched.
    let manifest_before = std::fs::read(dir.join("manifest.json")).unwrap();
    let err = Trainer::resume(&dir, factory, vec!["resume".into()], ProgressMode::Quiet)
        .expect_err("a second writer is refused");
    let text = err.to_string();
    assert!(
        text.contains(&format!("process {}", std::process::id())) && text.contains("one writer"),
        "{text}"
    );
    assert_eq!(
        std::fs::read(dir.join("manifest.json")).unwrap(),
        manifest_before
    );
    // Readers open the live run.
    assert_eq!(
        RunDir::open(&dir).unwrap().manifest().status,
        RunStatus::Interrupted
    );
    read_metrics(&dir.join("metrics.jsonl")).unwrap();
    // Once the writer is gone, the run can be resumed.
    drop(t);
    let (mut resumed, found) = resume(&dir);
    assert_eq!(found.env_steps, 256);
    resumed.train(Some(512), None).unwrap();
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn resume_skips_damaged_checkpoints_and_still_continues_exactly() {
    let root = scratch_dir("corrupt");
    let mut full = new_trainer(&root.join("full"), 256);
    full.train(None, None).unwrap();
    let full_weights = weight_bits(&full);
    drop(full);

    let mut half = new_trainer(&root.join("half"), 256);
    half.train(Some(HALF), None).unwrap();
    let dir = half.run_dir().to_path_buf();
    drop(half);
    // Damage the two newest copies (last/ and step-512/): one flipped byte each.
    let ckpts = dir.join("checkpoints");
    for name in [LAST.to_string(), step_dir_name(HALF)] {
        let file = ckpts.join(&name).join(MODEL_FILE);
        let mut bytes = std::fs::read(&file).unwrap();
        let at = bytes.len() - 3;
        bytes[at] ^= 0x40;
        std::fs::write(&file, bytes).unwrap();
    }
    let (mut resumed, found) = resume(&dir);
    assert_eq!(found.env_steps, 256, "{found:?}");
    assert_eq!(found.checkpoint, Some(ckpts.join(step_dir_name(256))));
    assert_eq!(found.rejected.len(), 2, "{:?}", found.rejected);
    assert!(
        found
            .rejected
            .iter()
            .all(|(_, why)| why.contains(MODEL_FILE)),
        "{:?}",
        found.rejected
    );
    resumed.train(None, None).unwrap();
    assert_eq!(weight_bits(&resumed), full_weights);
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn unknown_keys_name_the_key_and_the_nearest_valid_one() {
    for (text, key, hint) in [
        (
            "env: {id: CartPole-v1}\nppo: {n_step: 8}\n",
            "ppo.n_step",
            "n_steps",
        ),
        (
            "env: {id: CartPole-v1}\nrun: {keep_last: 2}\n",
            "run.keep_last",
            "keep_last_n",
        ),
        ("env: {id: CartPole-v1}\nsed: 2\n", "sed", "seed"),
    ] {
        let e = hlynr_env::config::resolve::<RunConfig, _>(text, "t", &[] as &[&str])
            .unwrap_err()
            .to_string();
        assert!(e.contains(key) && e.contains(hint), "{text}: {e}");
    }
    let e = hlynr_env::config::resolve::<RunConfig, _>(
        "env: {id: CartPole-v1}\n",
        "t",
        &["run.eval_every=5"],
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("eval_every") && e.contains("eval_every_steps"),
        "{e}"
    );
}

#[test]
fn a_stop_request_finishes_the_update_checkpoints_and_marks_the_run() {
    let root = scratch_dir("stop");
    let mut trainer = new_trainer(&root, HALF);
    let stop = StopSignal::install().unwrap();
    stop.request_stop();
    let out = trainer.train(None, Some(&stop)).unwrap();
    drop(stop);
    // One update of 2 envs x 32 steps, then the stop.
    assert_eq!((out.status, out.env_steps), (TrainStatus::Interrupted, 64));
    let dir = trainer.run_dir().to_path_buf();
    drop(trainer);
    let manifest = RunDir::open(&dir).unwrap().manifest().clone();
    assert_eq!(manifest.status, RunStatus::Interrupted);
    assert!(
        manifest
            .status_message
            .as_deref()
            .is_some_and(|m| m.contains("stop")),
        "{manifest:?}"
    );
    assert!(
        dir.join("checkpoints")
            .join(step_dir_name(64))
            .join(MODEL_FILE)
            .is_file()
    );
    let (_, found) = resume(&dir);
    assert_eq!(found.env_steps, 64);
    let _ = std::fs::remove_dir_all(&root);
}

/// `(step, eval/mean_reward, curriculum/stage)` of every evaluation, and the
/// steps of the promotion events.
fn curriculum_log(run_dir: &Path) -> (Vec<(u64, f64, f64)>, Vec<u64>) {
    let log = read_metrics(&run_dir.join("metrics.jsonl")).unwrap();
    let mut stage_at = std::collections::BTreeMap::new();
    let mut evals = Vec::new();
    let mut promotions = Vec::new();
    for r in &log.records {
        match r {
            MetricsRecord::Scalars { step, values, .. } => {
                if let Some(s) = values.get("curriculum/stage") {
                    stage_at.insert(*step, *s);
                }
                if let Some(m) = values.get("eval/mean_reward") {
                    evals.push((*step, *m));
                }
            }
            MetricsRecord::Event { step, event, .. } => {
                if event.kind == "curriculum" {
                    promotions.push(*step);
                }
            }
        }
    }
    let evals = evals
        .into_iter()
        .map(|(step, m)| (step, m, stage_at[&step]))
        .collect();
    (evals, promotions)
}

#[test]
fn curriculum_promotes_on_performance_and_resumes_exactly() {
    let root = scratch_dir("curriculum");
    let mut full = staged_trainer(&root.join("full"), CURRICULUM).unwrap();
    assert_eq!(full.stage(), 0);
    full.train(None, None).unwrap();
    let full_dir = full.run_dir().to_path_buf();
    let full_weights = weight_bits(&full);
    assert_eq!(full.stage(), 1, "never promoted");
    drop(full);
    let (evals, promotions) = curriculum_log(&full_dir);
    assert_eq!(promotions, vec![HALF], "{evals:?}");
    assert!(
        evals
            .iter()
            .any(|&(_, mean, stage)| stage == 0.0 && mean < 20.0),
        "no evaluation fell short of the threshold: {evals:?}"
    );
    // Every stage-0 evaluation below the threshold left the stage alone; the
    // one that reached it promoted.
    for &(step, mean, stage) in &evals {
        if stage == 0.0 {
            assert_eq!(mean >= 20.0, step == promotions[0], "{evals:?}");
        }
    }

    let mut half = staged_trainer(&root.join("half"), CURRICULUM).unwrap();
    half.train(Some(HALF), None).unwrap();
    assert_eq!(half.stage(), 1);
    let half_dir = half.run_dir().to_path_buf();
    drop(half);
    // The checkpoint at the promotion step restores the new stage.
    let (mut resumed, _) = resume(&half_dir);
    assert_eq!(resumed.stage(), 1);
    resumed.train(None, None).unwrap();
    assert_eq!(resumed.stage(), 1);
    assert_eq!(weight_bits(&resumed), full_weights);
    drop(resumed);
    assert_eq!(scalar_lines(&full_dir), scalar_lines(&half_dir));

    // A model is evaluated on the final stage's environment, whatever stage
    // its checkpoint was written at.
    let (run_dir, ckpt) = hlynr_rl::trainer::locate_model(&half_dir).unwrap();
    let loaded = hlynr_rl::trainer::load_model(&run_dir, &ckpt).unwrap();
    assert_eq!(loaded.stage, Some((1, "full".to_string())));
    assert_eq!(loaded.config.env.max_episode_steps, None);
    let first = half_dir.join("checkpoints").join(step_dir_name(256));
    let early = hlynr_rl::trainer::load_model(&run_dir, &first).unwrap();
    assert_eq!(early.stage, Some((1, "full".to_string())));
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn a_bad_stage_override_fails_before_the_run_exists() {
    let root = scratch_dir("bad-stage");
    let bad = CURRICULUM.replace("set: []", "set: [max_episode_step=9]");
    let e = staged_trainer(&root, &bad).unwrap_err();
    assert!(
        e.contains("curriculum.stages[1]") && e.contains("max_episode_step"),
        "{e}"
    );
    let too_few = CURRICULUM.replace("min_eval_episodes: 2", "min_eval_episodes: 3");
    let e = staged_trainer(&root, &too_few).unwrap_err();
    assert!(e.contains("run.eval_episodes"), "{e}");
    assert_eq!(std::fs::read_dir(&root).unwrap().count(), 0);
    let _ = std::fs::remove_dir_all(&root);
}
