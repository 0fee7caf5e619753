//! `hlynr eval --model` on an interception run trained behind a frame stack:
//! the model gets its stacked observations while the baselines beside it
//! read the bare environment.

use std::path::{Path, PathBuf};
use std::process::Command;

fn hlynr(args: &[&str], dir: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_hlynr"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

fn scratch_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hlynr-eval-model-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn frame_stacked_interception_model_is_evaluated_beside_baselines() {
    let dir = scratch_dir("stack");
    let config =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/intercept_raw_radar_mlp.yaml");
    let out = hlynr(
        &[
            "train",
            "--config",
            config.to_str().unwrap(),
            "--progress",
            "quiet",
            "--name",
            "stacked",
            "--runs-dir",
            "runs",
            "--set",
            "env.frame_stack=3",
            "--set",
            "env.settings.scenario=easy",
            "--set",
            "n_envs=2",
            "--set",
            "ppo.n_steps=256",
            "--set",
            "ppo.batch_size=256",
            "--set",
            "total_timesteps=512",
            "--set",
            "run.eval_every_steps=0",
        ],
        &dir,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = std::fs::read_dir(dir.join("runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .next()
        .unwrap();
    let out = hlynr(
        &[
            "eval",
            "--model",
            run.to_str().unwrap(),
            "--policy",
            "zero",
            "--episodes",
            "3",
            "--out",
            "report",
        ],
        &dir,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report/report.json")).unwrap())
            .unwrap();
    let policies = report["policies"].as_object().unwrap();
    assert_eq!(policies.len(), 2, "{policies:?}");
    assert!(
        policies.contains_key("zero") && policies.contains_key("stacked"),
        "{policies:?}"
    );
    assert_eq!(policies["stacked"]["episodes"], 3);
    let _ = std::fs::remove_dir_all(&dir);
}
