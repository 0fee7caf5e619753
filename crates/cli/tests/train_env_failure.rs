//! A real `hlynr train` process whose environment fails mid-run (a dropped
//! connection) exits non-zero with the env's message, leaves its last good
//! checkpoint intact, and `hlynr resume` finishes the run once the link is
//! back. The env comes from `examples/hlynr_with_a_flaky_env.rs`, the command
//! with one registered environment more.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const EXAMPLE: &str = "hlynr_with_a_flaky_env";

/// The example binary, built beside the test binaries (`cargo test` builds
/// examples; a filtered run builds it here).
fn flaky_hlynr() -> PathBuf {
    let deps = std::env::current_exe().unwrap();
    let profile_dir = deps.parent().and_then(Path::parent).unwrap();
    let exe = profile_dir
        .join("examples")
        .join(format!("{EXAMPLE}{}", std::env::consts::EXE_SUFFIX));
    if !exe.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-p", "hlynr", "--example", EXAMPLE])
            .status()
            .unwrap();
        assert!(status.success(), "building {EXAMPLE}");
    }
    assert!(exe.exists(), "{} not found", exe.display());
    exe
}

fn run(args: &[&str]) -> Output {
    Command::new(flaky_hlynr())
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap()
}

fn newest_checkpoint_steps(run_dir: &Path) -> u64 {
    let state = fs::read_to_string(run_dir.join("checkpoints/last/state.json")).unwrap();
    let state: serde_json::Value = serde_json::from_str(&state).unwrap();
    state["env_steps"]
        .as_u64()
        .or_else(|| state["checkpoint"]["env_steps"].as_u64())
        .unwrap_or_else(|| panic!("no env_steps in {state}"))
}

#[test]
fn a_failing_env_ends_hlynr_train_with_its_message_and_the_run_resumes() {
    let dir = std::env::temp_dir().join(format!("hlynr-env-fail-cli-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let outage = dir.join("outage");
    fs::write(&outage, "link down").unwrap();
    let config = dir.join("flaky.yaml");
    fs::write(
        &config,
        format!(
            "env: {{id: FlakyCartPole-v0, settings: {{fail_at_step: 300, outage_file: '{}'}}}}\n\
             seed: 6\nn_envs: 2\ntotal_timesteps: 1024\n\
             ppo: {{n_steps: 64, batch_size: 64, n_epochs: 2, policy: {{net_arch: [16]}}}}\n\
             run: {{checkpoint_every_steps: 256, eval_every_steps: 256, eval_episodes: 2}}\n",
            outage.display()
        ),
    )
    .unwrap();
    let runs = dir.join("runs");
    let (config_arg, runs_arg) = (config.to_str().unwrap(), runs.to_str().unwrap());
    let out = run(&[
        "train",
        "--config",
        config_arg,
        "--runs-dir",
        runs_arg,
        "--progress",
        "quiet",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "train succeeded despite the outage: {stderr}"
    );
    assert!(
        stderr.contains("env 1 failed") && stderr.contains("connection reset by peer"),
        "{stderr}"
    );
    let run_dir = fs::read_dir(&runs)
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .path();
    // Env 1's 300th step is run step ~600, after the checkpoint at 512.
    assert_eq!(newest_checkpoint_steps(&run_dir), 512);
    let manifest = fs::read_to_string(run_dir.join("manifest.json")).unwrap();
    assert!(manifest.contains("\"failed\""), "{manifest}");

    // The link is back: the run resumes from its last good checkpoint.
    fs::remove_file(&outage).unwrap();
    let out = run(&["resume", run_dir.to_str().unwrap(), "--progress", "quiet"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(newest_checkpoint_steps(&run_dir), 1024, "{stderr}");
    let _ = fs::remove_dir_all(&dir);
}
