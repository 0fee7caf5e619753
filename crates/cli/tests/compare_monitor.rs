//! `hlynr compare` and `hlynr monitor` on run directories written by hand:
//! the tables, JSON and plots of a comparison, one monitor frame, and the
//! errors for directories that are not runs.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn scratch_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hlynr-compare-cli-{tag}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn hlynr(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hlynr"))
        .args(args)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A manifest as `RunDir` writes it, with the given status.
fn manifest(name: &str, status: &str) -> String {
    format!(
        r#"{{"format_version":1,"hlynr_version":"0.1.0","name":"{name}","git_commit":null,
"started_at":"2026-01-01T00:00:00Z","ended_at":null,"host":"h","pid":1,"seed":0,
"status":"{status}","status_message":null,"command_line":["hlynr","train"],"resumes":[]}}"#
    )
}

/// A run directory: config with `learning_rate`, four updates and two
/// evaluations whose success rates are `eval_success`, a doctor finding.
fn write_run(parent: &Path, name: &str, learning_rate: f64, eval_success: [f64; 2]) -> PathBuf {
    let dir = parent.join(name);
    fs::create_dir_all(&dir).unwrap();
    fs::write(
        dir.join("config.yaml"),
        format!(
            "env:\n  id: intercept\nseed: 0\ntotal_timesteps: 8000\nn_envs: 4\nppo:\n  \
             learning_rate:\n    type: constant\n    initial: {learning_rate}\n"
        ),
    )
    .unwrap();
    let mut lines = String::new();
    for i in 1..=4u64 {
        lines.push_str(&format!(
            "{{\"step\":{},\"time_s\":{},\"rollout/success_rate\":{},\"rollout/ep_rew_mean\":{},\
             \"train/value_loss\":{},\"train/approx_kl\":0.01,\"time/fps\":{}}}\n",
            i * 1000,
            i as f64,
            0.1 * i as f64,
            100.0 * i as f64,
            10.0 / i as f64,
            1000.0 + i as f64
        ));
        if i % 2 == 0 {
            let s = eval_success[(i / 2 - 1) as usize];
            lines.push_str(&format!(
                "{{\"step\":{},\"time_s\":{},\"eval/success_rate\":{s},\"eval/mean_reward\":{},\
                 \"eval/mean_ep_length\":300}}\n",
                i * 1000,
                i as f64 + 0.5,
                500.0 * s
            ));
        }
    }
    lines.push_str(
        "{\"step\":3000,\"time_s\":3.2,\"event\":{\"kind\":\"doctor\",\"message\":\"success fell \
         below half its peak\",\"rule\":\"forgetting\",\"severity\":\"warn\"}}\n",
    );
    fs::write(dir.join("metrics.jsonl"), lines).unwrap();
    dir
}

#[test]
fn compare_prints_tables_and_writes_reports_and_plots() {
    let root = scratch_dir("tables");
    let a = write_run(&root, "fast", 0.001, [0.5, 0.9]);
    let b = write_run(&root, "slow", 0.0003, [0.25, 0.4]);
    fs::write(a.join("manifest.json"), manifest("fast", "completed")).unwrap();
    let out_dir = root.join("report");
    let out = hlynr(&[
        "compare",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        stdout.contains("| ppo.learning_rate.initial | 0.001 | 0.0003 |"),
        "{stdout}"
    );
    assert!(!stdout.contains("n_envs"), "equal keys are not differences");
    assert!(
        stdout.contains("| status | completed | no manifest |"),
        "{stdout}"
    );
    assert!(
        stdout.contains("| success rate (final) | 90.0% | 40.0% |"),
        "{stdout}"
    );
    assert!(
        stdout.contains("| steps to best | 4,000 | 4,000 |"),
        "{stdout}"
    );
    assert!(stdout.contains("| doctor events | 1 | 1 |"), "{stdout}");

    let md = fs::read_to_string(out_dir.join("compare.md")).unwrap();
    assert!(md.contains("## Config differences") && md.contains("## Results"));
    let json: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(out_dir.join("compare.json")).unwrap()).unwrap();
    assert_eq!(json["runs"][1]["name"], "slow");
    assert_eq!(json["runs"][0]["success_rate"]["key"], "eval/success_rate");
    assert_eq!(json["runs"][1]["success_rate"]["best"], 0.4);
    for plot in [
        "curves_eval_success_rate.svg",
        "curves_eval_mean_reward.svg",
    ] {
        let svg = fs::read_to_string(out_dir.join(plot)).unwrap();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 2, "{plot}");
    }
    let _ = fs::remove_dir_all(&root);
}

#[test]
fn compare_json_and_metric_choice() {
    let root = scratch_dir("json");
    let a = write_run(&root, "one", 0.001, [0.5, 0.9]);
    let out = hlynr(&["compare", a.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["runs"].as_array().map(Vec::len), Some(1));
    assert_eq!(json["runs"][0]["total_steps"], 4000);

    let out_dir = root.join("kl");
    let out = hlynr(&[
        "compare",
        a.to_str().unwrap(),
        "--metric",
        "train/approx_kl",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(out_dir.join("curves_train_approx_kl.svg").is_file());

    let out = hlynr(&["compare", a.to_str().unwrap(), "--metric", "train/aprox_kl"]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("train/aprox_kl") && stderr.contains("train/approx_kl"),
        "{stderr}"
    );
    let _ = fs::remove_dir_all(&root);
}

#[test]
fn compare_names_a_directory_that_is_not_a_run() {
    let root = scratch_dir("bad");
    let good = write_run(&root, "good", 0.001, [0.5, 0.9]);
    let bad = root.join("not-a-run");
    fs::create_dir_all(&bad).unwrap();
    let out = hlynr(&["compare", good.to_str().unwrap(), bad.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(bad.to_str().unwrap()) && stderr.contains("config.yaml"),
        "{stderr}"
    );
    let out = hlynr(&["compare"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("RUN_DIR"));
    let _ = fs::remove_dir_all(&root);
}

#[test]
fn monitor_once_prints_one_frame() {
    let root = scratch_dir("monitor");
    let run = write_run(&root, "watched", 0.001, [0.5, 0.9]);
    fs::write(run.join("manifest.json"), manifest("watched", "running")).unwrap();
    let out = hlynr(&["monitor", run.to_str().unwrap(), "--once", "--width", "90"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let frame = text(&out.stdout);
    assert!(!frame.contains('\x1b'), "no escape codes with --once");
    assert!(frame.contains(" 50.0%  4,000 / 8,000 env steps"), "{frame}");
    assert!(frame.contains("1,004 steps/s"), "{frame}");
    assert!(
        frame.contains("last eval   step 4,000: return 450, success 90.0%"),
        "{frame}"
    );
    assert!(
        frame.contains("[doctor warn] forgetting: success fell below half its peak"),
        "{frame}"
    );
    assert!(frame.lines().all(|l| l.chars().count() <= 90), "{frame}");
    let _ = fs::remove_dir_all(&root);
}

#[test]
fn monitor_exits_by_itself_when_the_run_has_finished() {
    let root = scratch_dir("finished");
    let run = write_run(&root, "done", 0.001, [0.5, 0.9]);
    fs::write(run.join("manifest.json"), manifest("done", "completed")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_hlynr"))
        .args(["monitor", run.to_str().unwrap(), "--interval", "0.2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("monitor kept running on a finished run");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = child.wait_with_output().unwrap();
    assert!(status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("run finished: completed"));
    let _ = fs::remove_dir_all(&root);
}

#[test]
fn monitor_stops_cleanly_on_ctrl_c() {
    let root = scratch_dir("ctrl-c");
    let run = write_run(&root, "live", 0.001, [0.5, 0.9]);
    fs::write(run.join("manifest.json"), manifest("live", "running")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_hlynr"))
        .args(["monitor", run.to_str().unwrap(), "--interval", "0.2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The first frame is drawn after the signal handler is installed.
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 64];
    let n = stdout.read(&mut first).unwrap();
    assert!(text(&first[..n]).contains("hlynr monitor"));
    let reader = std::thread::spawn(move || {
        let mut rest = Vec::new();
        let _ = stdout.read_to_end(&mut rest);
    });
    // A running run never finishes by itself: only the signal ends the monitor.
    std::thread::sleep(Duration::from_millis(500));
    assert!(child.try_wait().unwrap().is_none(), "exited before Ctrl-C");
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("monitor ignored Ctrl-C");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    reader.join().unwrap();
    assert!(status.success(), "{status:?}");
    let _ = fs::remove_dir_all(&root);
}

#[test]
fn monitor_rejects_a_missing_directory() {
    let root = scratch_dir("missing");
    let missing = root.join("nope");
    let out = hlynr(&["monitor", missing.to_str().unwrap(), "--once"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains(missing.to_str().unwrap()));
    let out = hlynr(&["monitor", root.to_str().unwrap(), "--interval", "0"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("--interval"),
        "{}",
        text(&out.stderr)
    );
    let _ = fs::remove_dir_all(&root);
}
