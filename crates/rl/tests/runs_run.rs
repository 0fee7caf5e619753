//! Run directories: naming, config, manifest and status.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, UNIX_EPOCH};

use hlynr_rl::run::RunLock;
use hlynr_rl::run::{
    MANIFEST_FORMAT_VERSION, NewRun, RunDir, RunError, RunStatus, git_commit, hostname, read_config,
};
use serde_json::json;

fn scratch_dir(name: &str) -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "hlynr-runs-run-{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

fn config() -> serde_json::Value {
    json!({
        "algo": "ppo",
        "seed": 7,
        "ppo": {"learning_rate": 3e-4, "n_steps": 2048, "clip_range": 0.2, "gamma": 0.99,
                "target_kl": null, "net_arch": {"pi": [64, 64], "vf": [64, 64]}},
        "env": {"id": "CartPole-v1", "n_envs": 8, "name": "with: colon # and hash"},
    })
}

#[test]
fn run_dir_is_named_by_utc_start_and_holds_config_and_manifest() {
    let runs = scratch_dir("create");
    // 2024-02-29T23:59:59Z
    let started = UNIX_EPOCH + Duration::from_secs(1_709_251_199);
    let cfg = config();
    let new = NewRun {
        runs_dir: &runs,
        name: "cartpole",
        seed: 7,
        resolved_config: &cfg,
        command_line: vec!["hlynr".into(), "train".into()],
    };
    let mut run = RunDir::create_at(&new, started).expect("create");
    assert_eq!(run.path(), runs.join("cartpole-20240229-235959"));
    assert!(run.checkpoints_dir().is_dir());

    // The config round-trips exactly through YAML.
    assert_eq!(read_config(&run.config_path()).expect("config"), cfg);
    assert_eq!(run.read_config().expect("config"), cfg);

    let m = run.manifest().clone();
    assert_eq!(m.format_version, MANIFEST_FORMAT_VERSION);
    assert_eq!(m.status, RunStatus::Running);
    assert_eq!(m.started_at, "2024-02-29T23:59:59Z");
    assert_eq!(m.seed, 7);
    assert_eq!(m.host, hostname());
    assert_eq!(m.command_line, vec!["hlynr", "train"]);
    assert_eq!(m.ended_at, None);

    // Same name and second: a suffix, never a shared directory.
    let second = RunDir::create_at(&new, started).expect("create again");
    assert_eq!(second.path(), runs.join("cartpole-20240229-235959-2"));

    run.finish(RunStatus::Completed, None).expect("finish");
    let reread = RunDir::open(run.path()).expect("open");
    assert_eq!(reread.manifest().status, RunStatus::Completed);
    assert!(reread.manifest().ended_at.is_some());

    let text = std::fs::read_to_string(run.manifest_path()).expect("manifest");
    let v: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert_eq!(v["status"], "completed");
}

#[test]
fn dropping_an_unfinished_run_marks_it_failed_and_resume_records_itself() {
    let runs = scratch_dir("drop");
    let cfg = config();
    let path = {
        let run = RunDir::create(&NewRun {
            runs_dir: &runs,
            name: "x",
            seed: 1,
            resolved_config: &cfg,
            command_line: vec![],
        })
        .expect("create");
        run.path().to_path_buf()
    };
    let m = RunDir::open(&path).expect("open").manifest().clone();
    assert_eq!(m.status, RunStatus::Failed);
    assert!(m.status_message.is_some());

    // Read-only opens never change the status.
    drop(RunDir::open(&path).expect("open"));
    assert_eq!(
        RunDir::open(&path).expect("open").manifest().status,
        RunStatus::Failed
    );

    let ckpt = path.join("checkpoints").join("last");
    let lock = RunLock::acquire(&path).expect("lock");
    let mut resumed = RunDir::resume(
        &path,
        lock,
        Some(&ckpt),
        4096,
        vec!["hlynr".into(), "resume".into()],
    )
    .expect("resume");
    // While the resumed handle lives, nobody else can write the run.
    let err = RunLock::acquire(&path).unwrap_err();
    assert!(matches!(err, RunError::Locked { .. }), "{err}");
    assert_eq!(resumed.manifest().status, RunStatus::Running);
    assert_eq!(resumed.manifest().resumes.len(), 1);
    assert_eq!(resumed.manifest().resumes[0].checkpoint, "checkpoints/last");
    assert_eq!(resumed.manifest().resumes[0].env_steps, 4096);
    resumed
        .finish(RunStatus::Interrupted, Some("stopped by SIGTERM".into()))
        .expect("finish");
    let m = RunDir::open(&path).expect("open").manifest().clone();
    assert_eq!(m.status, RunStatus::Interrupted);
    assert_eq!(m.status_message.as_deref(), Some("stopped by SIGTERM"));
}

#[test]
fn bad_names_and_non_runs_are_rejected() {
    let runs = scratch_dir("bad");
    let cfg = config();
    let err = RunDir::create(&NewRun {
        runs_dir: &runs,
        name: "../escape",
        seed: 0,
        resolved_config: &cfg,
        command_line: vec![],
    })
    .expect_err("bad name");
    assert!(err.to_string().contains("../escape"), "{err}");
    let err = RunDir::open(&runs).expect_err("not a run");
    assert!(err.to_string().contains("manifest"), "{err}");
}

#[test]
fn git_commit_is_read_from_loose_and_packed_refs() {
    let repo = scratch_dir("git");
    let git = repo.join(".git");
    std::fs::create_dir_all(git.join("refs/heads")).expect("mkdir");
    let id = "0123456789abcdef0123456789abcdef01234567";
    std::fs::write(git.join("HEAD"), "ref: refs/heads/main\n").expect("head");
    std::fs::write(git.join("refs/heads/main"), format!("{id}\n")).expect("ref");
    let nested = repo.join("a/b");
    std::fs::create_dir_all(&nested).expect("mkdir");
    assert_eq!(git_commit(&nested).as_deref(), Some(id));

    let packed_id = "fedcba9876543210fedcba9876543210fedcba98";
    std::fs::remove_file(git.join("refs/heads/main")).expect("rm");
    std::fs::write(
        git.join("packed-refs"),
        format!("# pack-refs with: peeled\n{packed_id} refs/heads/main\n"),
    )
    .expect("packed");
    assert_eq!(git_commit(&repo).as_deref(), Some(packed_id));

    std::fs::write(git.join("HEAD"), format!("{id}\n")).expect("detached");
    assert_eq!(git_commit(&repo).as_deref(), Some(id));

    std::fs::write(git.join("HEAD"), "garbage\n").expect("bad");
    assert_eq!(git_commit(&repo), None);
}
