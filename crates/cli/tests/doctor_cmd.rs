//! `hlynr doctor RUN_DIR` on synthetic run directories: Markdown and JSON
//! output, the run's own doctor thresholds, and clear errors.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use hlynr_rl::metrics::{Metrics, MetricsRecord, RunEvent};

fn scratch_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hlynr-doctor-{tag}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes `metrics.jsonl`: 40 updates, frozen (KL 2e-7, nothing clipped)
/// from update 10 on when `frozen`, with a NaN value loss at update 30 when
/// `nan`, and a doctor event logged by the live run.
fn write_metrics(dir: &Path, frozen: bool, nan: bool) {
    let mut text = String::new();
    for i in 0..40u64 {
        let step = (i + 1) * 1024;
        let is_frozen = frozen && i >= 10;
        let mut values = Metrics::new();
        values.insert(
            "train/approx_kl".into(),
            if is_frozen { 2e-7 } else { 0.01 },
        );
        values.insert(
            "train/clip_fraction".into(),
            if is_frozen { 0.0 } else { 0.1 },
        );
        values.insert(
            "train/value_loss".into(),
            if nan && i == 30 { f64::NAN } else { 1.0 },
        );
        values.insert("train/entropy_loss".into(), -0.69 + 0.005 * i as f64);
        values.insert("rollout/ep_rew_mean".into(), 20.0 + 5.0 * i as f64);
        let record = MetricsRecord::Scalars {
            step,
            time_s: i as f64,
            values,
        };
        text.push_str(&record.to_line());
        text.push('\n');
        if is_frozen && i == 14 {
            let event = RunEvent::new("doctor", "The policy has stopped changing.")
                .with("rule", "frozen_policy")
                .with("severity", "warn")
                .with("action", "warn");
            let record = MetricsRecord::Event {
                step,
                time_s: i as f64,
                event,
            };
            text.push_str(&record.to_line());
            text.push('\n');
        }
    }
    fs::write(dir.join("metrics.jsonl"), text).unwrap();
}

fn doctor(args: &[&str], dir: &Path) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hlynr"))
        .arg("doctor")
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_frozen_run_is_diagnosed_in_markdown_and_json() {
    let dir = scratch_dir("frozen");
    write_metrics(&dir, true, false);
    let (ok, md, stderr) = doctor(&[], &dir);
    assert!(ok, "{stderr}");
    assert!(md.contains("# Doctor report"), "{md}");
    // Default window 5: frozen from update 10 (step 11264), fires at update 14.
    assert!(md.contains("Step 15360: WARN `frozen_policy`"), "{md}");
    assert!(md.contains("`train/approx_kl` = 2e-7"), "{md}");
    assert!(md.contains("ppo.learning_rate"), "{md}");
    assert!(
        md.contains("| 15360 | doctor | frozen_policy | warn | warn |"),
        "{md}"
    );

    let (ok, json, stderr) = doctor(&["--json"], &dir);
    assert!(ok, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let findings = v["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "{json}");
    assert_eq!(findings[0]["rule"], "frozen_policy");
    assert_eq!(findings[0]["severity"], "warn");
    assert_eq!(findings[0]["step"], 15360);
    assert_eq!(findings[0]["evidence"]["train/clip_fraction"], 0.0);
    assert!(
        findings[0]["diagnosis"]
            .as_str()
            .unwrap()
            .contains("stopped changing")
    );
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn the_runs_doctor_section_sets_the_thresholds() {
    let dir = scratch_dir("config");
    write_metrics(&dir, true, false);
    fs::write(
        dir.join("config.yaml"),
        "env:\n  id: CartPole-v1\ndoctor:\n  frozen_policy:\n    window: 2\n    action: stop\n",
    )
    .unwrap();
    let (ok, json, stderr) = doctor(&["--json"], &dir);
    assert!(ok, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["findings"][0]["step"], 12 * 1024, "{json}");
    assert_eq!(v["findings"][0]["action"], "stop");

    fs::write(
        dir.join("config.yaml"),
        "doctor:\n  frozen_policy:\n    windw: 2\n",
    )
    .unwrap();
    let (ok, _, stderr) = doctor(&[], &dir);
    assert!(!ok);
    assert!(
        stderr.contains("doctor.frozen_policy.windw") && stderr.contains("window"),
        "{stderr}"
    );
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn a_healthy_run_says_so_and_errors_are_pointed_out_with_status_0() {
    let dir = scratch_dir("healthy");
    write_metrics(&dir, false, false);
    let (ok, md, stderr) = doctor(&[], &dir);
    assert!(ok, "{stderr}");
    assert!(md.contains("Healthy"), "{md}");
    assert!(!stderr.contains("error-severity"), "{stderr}");

    write_metrics(&dir, false, true);
    let (ok, md, stderr) = doctor(&[], &dir);
    assert!(ok, "analysis succeeded, so the status is 0: {stderr}");
    assert!(md.contains("ERROR `nonfinite`"), "{md}");
    assert!(stderr.contains("1 error-severity finding"), "{stderr}");
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn missing_directories_and_files_are_clear_errors() {
    let missing = std::env::temp_dir().join(format!("hlynr-doctor-none-{}", std::process::id()));
    let (ok, _, stderr) = doctor(&[], &missing);
    assert!(!ok);
    assert!(stderr.contains("no such run directory"), "{stderr}");

    let empty = scratch_dir("empty");
    let (ok, _, stderr) = doctor(&[], &empty);
    assert!(!ok);
    assert!(stderr.contains("metrics.jsonl"), "{stderr}");
    let _ = fs::remove_dir_all(&empty);
}

/// `hlynr train` ends with the doctor's verdict in one line.
#[test]
fn training_ends_with_the_doctors_verdict() {
    let dir = scratch_dir("verdict");
    let config = dir.join("cartpole.yaml");
    let run = |doctor: &str| {
        fs::write(
            &config,
            format!(
                "env: {{id: CartPole-v1}}\nseed: 5\n\
                 n_envs: 2\ntotal_timesteps: 256\nppo: {{n_steps: 32, batch_size: 32, n_epochs: 2, \n\
                   policy: {{net_arch: [16]}}}}\n\
                 run: {{eval_every_steps: 128, eval_episodes: 2}}\n\
                 doctor: {doctor}\n"
            ),
        )
        .unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_hlynr"))
            .args(["train", "--progress", "quiet", "--config"])
            .arg(&config)
            .arg("--runs-dir")
            .arg(dir.join("runs"))
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    let healthy = run("{}");
    assert!(healthy.contains("doctor: no problems found"), "{healthy}");
    // Any real update has a KL above 1e-12: the rule fires on the first.
    let flagged = run("{kl_blowup: {window: 1, kl_above: 1.0e-12}}");
    assert!(
        flagged.contains("doctor: kl_blowup (warn, first at step 64")
            && flagged.contains("details: hlynr doctor"),
        "{flagged}"
    );
    let _ = fs::remove_dir_all(&dir);
}
