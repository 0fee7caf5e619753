//! `hlynr train` refuses bad configs before creating a run directory, with an
//! error that names the offending key.

use std::process::Command;

const INTERCEPT_CONFIG: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../configs/intercept_ppo.yaml"
);
const CARTPOLE_CONFIG: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../configs/cartpole_ppo.yaml"
);

/// Runs `hlynr train` with extra arguments; returns (success, stderr, runs dir).
fn train(config: &str, tag: &str, extra: &[&str]) -> (bool, String, std::path::PathBuf) {
    train_with(config, tag, extra, &[])
}

/// [`train`] with extra environment variables.
fn train_with(
    config: &str,
    tag: &str,
    extra: &[&str],
    vars: &[(&str, &str)],
) -> (bool, String, std::path::PathBuf) {
    let runs = std::env::temp_dir().join(format!("hlynr-config-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&runs);
    let out = Command::new(env!("CARGO_BIN_EXE_hlynr"))
        .args([
            "train",
            "--progress",
            "quiet",
            "--config",
            config,
            "--runs-dir",
        ])
        .arg(&runs)
        .args(extra)
        .envs(vars.iter().copied())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        runs,
    )
}

fn no_run_created(runs: &std::path::Path) -> bool {
    std::fs::read_dir(runs).map_or(true, |mut d| d.next().is_none())
}

#[test]
fn a_gamma_that_differs_from_the_reward_shaping_gamma_is_rejected() {
    let (ok, stderr, runs) = train(INTERCEPT_CONFIG, "gamma", &["--set", "ppo.gamma=0.99"]);
    assert!(!ok, "training started with mismatched gammas");
    assert!(
        stderr.contains("reward.gamma") && stderr.contains("ppo.gamma"),
        "{stderr}"
    );
    assert!(no_run_created(&runs));
}

#[test]
fn an_unknown_key_is_named_with_the_closest_valid_one() {
    let (ok, stderr, runs) = train(CARTPOLE_CONFIG, "key", &["--set", "ppo.n_step=64"]);
    assert!(!ok);
    assert!(
        stderr.contains("n_step") && stderr.contains("n_steps"),
        "{stderr}"
    );
    assert!(no_run_created(&runs));
}

#[test]
fn a_python_env_without_the_python_package_says_how_to_get_it() {
    let config = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../configs/gymnasium/acrobot_dqn.yaml"
    );
    for python in ["/nonexistent/python3", "/bin/false"] {
        let (ok, stderr, runs) = train_with(config, "python", &[], &[("HLYNR_PYTHON", python)]);
        assert!(!ok);
        assert!(
            stderr.contains("gymnasium:Acrobot-v1")
                && stderr.contains("pip install ./crates/py")
                && stderr.contains(python),
            "{stderr}"
        );
        assert!(no_run_created(&runs));
    }
}
