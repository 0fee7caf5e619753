//! Evaluations table the baselines beside the policy: every periodic
//! evaluation of an interception run logs ZEM-PN's and OGL's success on the
//! same episodes and the gap to the best of them; `run.final_eval` ends a
//! completed run with the best policy and the laws on held-out episodes.

use std::process::Output;

use serde_json::Value;

const SMALL: [&str; 14] = [
    "--set",
    "total_timesteps=4096",
    "--set",
    "n_envs=4",
    "--set",
    "ppo.batch_size=256",
    "--set",
    "run.eval_every_steps=2048",
    "--set",
    "run.eval_episodes=20",
    "--set",
    "run.checkpoint_every_steps=2048",
    "--set",
    "run.final_eval=null",
];

fn train(tag: &str, extra: &[&str]) -> (Output, std::path::PathBuf) {
    let runs =
        std::env::temp_dir().join(format!("hlynr-eval-baselines-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&runs);
    let config = hlynr_testkit::config_file("intercept_ppo.yaml");
    let out = hlynr_testkit::train_command(env!("CARGO_BIN_EXE_hlynr"), &config, &runs)
        .args(SMALL)
        .args(extra)
        .output()
        .unwrap();
    (out, runs)
}

#[test]
fn evaluations_log_the_laws_and_a_completed_run_tables_them_on_held_out_episodes() {
    let (out, runs) = train("laws", &["--set", "run.final_eval={episodes: 30}"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stderr}");
    let run = hlynr_testkit::only_entry(&runs);

    let log = hlynr_rl::metrics::read_metrics(&run.join(hlynr_rl::run::METRICS_FILE)).unwrap();
    let policy = log.series("eval/success_rate");
    let zem = log.series("eval/baseline/zem-pn/success_rate");
    let ogl = log.series("eval/baseline/ogl/success_rate");
    let gap = log.series("eval/success_gap");
    assert_eq!(policy.len(), 2, "evaluations at 2048 and 4096");
    assert_eq!((zem.len(), ogl.len(), gap.len()), (2, 2, 2));
    // The laws are deterministic on the run's fixed episodes.
    assert_eq!(zem[0].1, zem[1].1);
    for k in 0..2 {
        let best = zem[k].1.max(ogl[k].1);
        assert!((gap[k].1 - (policy[k].1 - best)).abs() < 1e-12);
    }
    assert!(
        stderr.contains("(same episodes: zem-pn ") && stderr.contains(", ogl "),
        "{stderr}"
    );

    // The final table: the best policy and the laws on held-out episodes.
    assert!(
        stderr.contains("final evaluation on 30 held-out episodes"),
        "{stderr}"
    );
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("eval/final/report.json")).unwrap())
            .unwrap();
    let names: Vec<&str> = report["policies"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
    assert!(
        names.contains(&"zem-pn") && names.contains(&"ogl"),
        "{names:?}"
    );
    assert_eq!(report["episodes"], 30);
    let config = hlynr_rl::trainer::RunConfig::from_resolved(
        &serde_norway::from_str(&std::fs::read_to_string(run.join("config.yaml")).unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(report["seed"].as_u64(), config.final_eval_seed());
    assert_ne!(config.final_eval_seed(), Some(config.eval_seed()));
    assert!(
        stdout.contains("zem-pn") && stdout.contains("ogl"),
        "{stdout}"
    );
    let _ = std::fs::remove_dir_all(&runs);
}

#[test]
fn baselines_are_checked_by_name_and_the_final_seed_is_held_out() {
    let (out, runs) = train("typo", &["--set", "run.eval_baselines=[zem-pm]"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("unknown baseline `zem-pm`") && stderr.contains("did you mean `zem-pn`"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&runs);
    let (out, runs) = train(
        "seed",
        &[
            "--set",
            "run.eval_seed=7",
            "--set",
            "run.final_eval={episodes: 10, seed: 7}",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("run.final_eval.seed"), "{stderr}");
    let _ = std::fs::remove_dir_all(&runs);
    // None at all: nothing is logged beside the policy.
    let (out, runs) = train("none", &["--set", "run.eval_baselines=[]"]);
    assert!(out.status.success());
    let run = hlynr_testkit::only_entry(&runs);
    let log = hlynr_rl::metrics::read_metrics(&run.join(hlynr_rl::run::METRICS_FILE)).unwrap();
    assert!(log.series("eval/success_gap").is_empty());
    let _ = std::fs::remove_dir_all(&runs);
}
