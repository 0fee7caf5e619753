//! `run.early_stop`: a run whose evaluations stop improving ends after
//! `patience` evaluations with `best/` kept and says why; resumed, it trains
//! on with its patience counted again; a run without evaluations refuses it.

use std::path::Path;
use std::process::{Command, Output};

fn hlynr(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hlynr"))
        .args(args)
        .output()
        .unwrap()
}

fn config() -> String {
    hlynr_testkit::config_file("cartpole_ppo.yaml")
        .display()
        .to_string()
}

/// The stopped events of the run's metrics log.
fn stops(run: &Path) -> Vec<String> {
    let log = hlynr_rl::metrics::read_metrics(&run.join(hlynr_rl::run::METRICS_FILE)).unwrap();
    log.events()
        .iter()
        .filter(|(_, e)| e.kind == hlynr_rl::metrics::event_kind::STOPPED)
        .map(|(_, e)| e.message.clone())
        .collect()
}

#[test]
fn a_plateau_ends_the_run_with_best_kept_and_resume_trains_on() {
    let runs = std::env::temp_dir().join(format!("hlynr-early-stop-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&runs);
    let runs_arg = runs.display().to_string();
    // A learning rate too small to change the policy: every evaluation (the
    // same seeded episodes) scores the same, so none after the first improves.
    let out = hlynr(&[
        "train",
        "--progress",
        "quiet",
        "--config",
        &config(),
        "--runs-dir",
        &runs_arg,
        "--set",
        "ppo.learning_rate=1.0e-12",
        "--set",
        "run.eval_every_steps=512",
        "--set",
        "run.eval_episodes=2",
        "--set",
        "run.early_stop={patience: 2, min_delta: 0.0}",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("stopped early"), "{stderr}");
    assert!(!stderr.contains("continue with"), "{stderr}");
    let run = hlynr_testkit::only_entry(&runs);
    // Evaluations at 512 (the reference), 1024 and 1536: two without a gain.
    assert!(run.join("checkpoints/best").is_dir());
    assert!(run.join("checkpoints/last").is_dir());
    let stopped = stops(&run);
    assert_eq!(stopped.len(), 1, "{stopped:?}");
    assert!(
        stopped[0].contains("2 evaluations without a gain of at least 0 since step 512"),
        "{stopped:?}"
    );
    let manifest = std::fs::read_to_string(run.join(hlynr_rl::run::MANIFEST_FILE)).unwrap();
    assert!(manifest.contains("\"completed\""), "{manifest}");
    assert!(stderr.contains("at 1536 env steps"), "{stderr}");
    // Resumed, it goes on from 1536 and stops again two evaluations later.
    let run_arg = run.display().to_string();
    let out = hlynr(&["resume", "--progress", "quiet", &run_arg]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("at 2560 env steps"), "{stderr}");
    assert_eq!(stops(&run).len(), 2);
    let _ = std::fs::remove_dir_all(&runs);
}

#[test]
fn early_stop_without_periodic_evaluations_is_refused() {
    let runs = std::env::temp_dir().join(format!("hlynr-early-stop-bad-{}", std::process::id()));
    let runs_arg = runs.display().to_string();
    for (set, expect) in [
        ("run.eval_every_steps=0", "run.early_stop"),
        ("run.early_stop={patience: 0}", "run.early_stop.patience"),
        (
            "run.early_stop={patience: 3, min_delta: -1}",
            "run.early_stop.min_delta",
        ),
        ("run.early_stop={patience: 3, patiense: 4}", "patiense"),
    ] {
        let mut args = vec!["train", "--progress", "quiet", "--config"];
        let c = config();
        args.push(&c);
        args.extend(["--runs-dir", &runs_arg, "--set", set]);
        if set == "run.eval_every_steps=0" {
            args.extend(["--set", "run.early_stop={patience: 3}"]);
        }
        let out = hlynr(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{set}: {stderr}");
        assert!(stderr.contains(expect), "{set}: {stderr}");
    }
    let _ = std::fs::remove_dir_all(&runs);
}
