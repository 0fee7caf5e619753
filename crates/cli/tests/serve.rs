//! `hlynr serve` over loopback with a real HTTP client: actions equal the
//! offline policy's, sessions keep each episode's frame stack, bad requests
//! get JSON errors and never stop the server, the model reloads when the
//! run writes a new checkpoint.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use hlynr_env::PolicyInput;
use hlynr_rl::trainer::{bare_policy, load_model, locate_model};
use hlynr_serve::{Handle, ServeOptions};
use serde_json::{Value, json};

/// Trains CartPole PPO for `steps` env steps (with `extra` overrides) into a
/// fresh runs directory; returns the run directory.
fn train(tag: &str, steps: u64, extra: &[&str]) -> PathBuf {
    train_part(tag, steps, steps, extra)
}

/// [`train`] of a run of `total` steps stopped after `steps`.
fn train_part(tag: &str, total: u64, steps: u64, extra: &[&str]) -> PathBuf {
    let runs = std::env::temp_dir().join(format!("hlynr-serve-{tag}-{}", std::process::id()));
    let (total, steps) = (format!("total_timesteps={total}"), steps.to_string());
    let mut args = vec![
        "--set",
        &total,
        "--steps",
        &steps,
        "--set",
        "run.eval_every_steps=1024",
        "--set",
        "run.eval_episodes=2",
    ];
    for e in extra {
        args.extend(["--set", e]);
    }
    hlynr_testkit::train_run(
        env!("CARGO_BIN_EXE_hlynr"),
        &hlynr_testkit::config_file("cartpole_ppo.yaml"),
        &runs,
        &args,
    )
}

fn options() -> ServeOptions {
    ServeOptions {
        workers: 2,
        reload_every: Duration::from_millis(50),
        session_idle: Duration::from_millis(400),
        ..ServeOptions::default()
    }
}

fn start(run: &Path) -> Handle {
    hlynr_serve::spawn(run, "127.0.0.1:0".parse().unwrap(), options()).unwrap()
}

/// POSTs `body` (raw text) to `path`; returns status and JSON body.
fn post(agent: &ureq::Agent, h: &Handle, path: &str, body: &str) -> (u16, Value) {
    let mut r = agent
        .post(format!("http://{}{path}", h.addr))
        .header("content-type", "application/json")
        .send(body)
        .unwrap();
    let status = r.status().as_u16();
    let text = r.body_mut().read_to_string().unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn get(agent: &ureq::Agent, h: &Handle, path: &str) -> (u16, String) {
    let mut r = agent
        .get(format!("http://{}{path}", h.addr))
        .call()
        .unwrap();
    (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
}

/// The offline policy's deterministic actions for `obs` rows of 4 values.
fn offline_actions(run: &Path, obs: &[[f32; 4]]) -> Vec<f32> {
    let (run_dir, ckpt) = locate_model(run).unwrap();
    let loaded = load_model(&run_dir, &ckpt).unwrap();
    let mut policy = bare_policy(loaded.policy, &loaded.record).unwrap();
    let flat: Vec<f32> = obs.iter().flatten().copied().collect();
    let mut out = vec![0.0; obs.len()];
    let input = PolicyInput {
        n: obs.len(),
        obs: &flat,
        obs_bytes: &[],
        controller_view: &[],
    };
    policy.act(&input, true, &mut out).unwrap();
    out
}

const OBS: [[f32; 4]; 3] = [
    [0.01, 0.2, -0.03, -0.4],
    [-0.1, -0.5, 0.08, 0.7],
    [0.0, 0.0, 0.0, 0.0],
];

#[test]
fn actions_match_the_offline_policy_and_bad_requests_get_json_errors() {
    let run = train("act", 2048, &[]);
    let h = start(&run);
    let a = hlynr_testkit::http_agent();
    let (status, health) = get(&a, &h, "/health");
    assert_eq!(status, 200);
    assert!(health.contains("\"model_version\":1"), "{health}");
    let (status, body) = post(
        &a,
        &h,
        "/v1/act",
        &json!({ "observations": OBS }).to_string(),
    );
    assert_eq!(status, 200, "{body}");
    let served: Vec<f32> = body["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row[0].as_f64().unwrap() as f32)
        .collect();
    assert_eq!(served, offline_actions(&run, &OBS));
    assert_eq!(body["model_version"], 1);

    for (body, status, code) in [
        ("{\"observations\": [[0.1, 0.2", 400, "malformed_json"),
        ("not json at all", 400, "malformed_json"),
        ("{\"observations\": [[0.1, 0.2, 0.3]]}", 400, "bad_shape"),
        ("{\"observations\": []}", 400, "bad_batch"),
        ("{\"observations\": [[1e39, 0, 0, 0]]}", 400, "not_finite"),
        (
            "{\"observations\": [[NaN, 0, 0, 0]]}",
            400,
            "malformed_json",
        ),
        (
            "{\"observations\": [[0, 0, 0, 0]], \"oops\": 1}",
            400,
            "malformed_json",
        ),
        (
            "{\"observations\": [[0, 0, 0, 0]], \"session_ids\": [\"nope\"]}",
            404,
            "unknown_session",
        ),
    ] {
        let (got, err) = post(&a, &h, "/v1/act", body);
        assert_eq!(got, status, "{} -> {err}", &body[..body.len().min(60)]);
        assert_eq!(err["error"]["code"], code, "{err}");
    }
    // A body over the limit is refused from its Content-Length, before it is read.
    {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(h.addr).unwrap();
        write!(
            s,
            "POST /v1/act HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            4 << 20
        )
        .unwrap();
        let mut answer = String::new();
        let _ = s.read_to_string(&mut answer);
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
        assert!(answer.contains("\"body_too_large\""), "{answer}");
    }
    let (status, err) = post(&a, &h, "/v2/nothing", "{}");
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let (status, _) = get(&a, &h, "/v1/act");
    assert_eq!(status, 405);
    let (status, page) = get(&a, &h, "/arena");
    assert_eq!(status, 404);
    assert!(page.contains("not_arena"), "{page}");

    // Thousands of random requests: every answer a 4xx JSON error or a 200.
    let mut rng = hlynr_rng::Rng::seed_from_u64(9);
    let pieces = [
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        "\"observations\"",
        "\"session_ids\"",
        "\"deterministic\"",
        "0.5",
        "-3",
        "1e308",
        "true",
        "null",
        "\"x\"",
        "[[0,0,0,0]]",
        "\u{00e9}",
        "\\",
    ];
    for _ in 0..2000 {
        let len = rng.below(12) as usize;
        let body: String = (0..len)
            .map(|_| pieces[rng.below(pieces.len() as u64) as usize])
            .collect();
        let (status, _) = post(&a, &h, "/v1/act", &body);
        assert!(
            status == 200 || (400..500).contains(&status),
            "{status} for {body}"
        );
    }
    let (status, metrics) = get(&a, &h, "/metrics");
    assert_eq!(status, 200);
    assert!(metrics.contains("hlynr_requests_total{route=\"/v1/act\",status=\"400\"}"));
    assert!(metrics.contains("hlynr_request_duration_seconds_bucket{le=\"+Inf\"}"));
    assert!(metrics.contains("hlynr_model_version 1"));
    assert_eq!(get(&a, &h, "/health").0, 200, "the server still serves");
    h.stop();
}

#[test]
fn sessions_keep_each_episodes_frames_and_expire() {
    let run = train("sessions", 2048, &["env.frame_stack=3"]);
    let h = start(&run);
    let a = hlynr_testkit::http_agent();
    let (status, err) = post(
        &a,
        &h,
        "/v1/act",
        &json!({ "observations": [OBS[0]] }).to_string(),
    );
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (400, Some("session_required"))
    );
    let (status, one) = post(&a, &h, "/v1/sessions", "");
    assert_eq!(status, 201, "{one}");
    let one = one["session_id"].as_str().unwrap().to_string();
    let (status, _) = post(&a, &h, "/v1/sessions", "{\"session_id\": \"episode-2\"}");
    assert_eq!(status, 201);
    let (status, _) = post(&a, &h, "/v1/sessions", "{\"session_id\": \"episode-2\"}");
    assert_eq!(status, 409);

    // Two interleaved episodes, each against its own offline frame stack.
    let (run_dir, ckpt) = locate_model(&run).unwrap();
    let loaded = load_model(&run_dir, &ckpt).unwrap();
    let mut offline = [
        loaded.fresh_policy().unwrap(),
        loaded.fresh_policy().unwrap(),
    ];
    for t in 0..6 {
        let rows = [OBS[t % 3], OBS[(t + 1) % 3]];
        let body = json!({ "observations": rows, "session_ids": [one, "episode-2"] });
        let (status, body) = post(&a, &h, "/v1/act", &body.to_string());
        assert_eq!(status, 200, "{body}");
        for (k, row) in rows.iter().enumerate() {
            let mut want = [0.0f32];
            let input = PolicyInput {
                n: 1,
                obs: row,
                obs_bytes: &[],
                controller_view: &[],
            };
            offline[k].act(&input, true, &mut want).unwrap();
            assert_eq!(
                body["actions"][k][0].as_f64().unwrap() as f32,
                want[0],
                "step {t}"
            );
        }
    }
    let end = a
        .delete(format!("http://{}/v1/sessions/episode-2", h.addr))
        .call()
        .unwrap();
    assert_eq!(end.status().as_u16(), 200);
    let body = json!({ "observations": [OBS[0]], "session_ids": ["episode-2"] });
    assert_eq!(post(&a, &h, "/v1/act", &body.to_string()).0, 404);
    // Idle sessions end.
    std::thread::sleep(Duration::from_millis(900));
    let body = json!({ "observations": [OBS[0]], "session_ids": [one] });
    assert_eq!(post(&a, &h, "/v1/act", &body.to_string()).0, 404);
    let (_, health) = get(&a, &h, "/health");
    assert!(health.contains("\"sessions\":0"), "{health}");
    h.stop();
}

#[test]
fn a_new_checkpoint_is_served_without_dropping_requests() {
    let run = train_part("reload", 4096, 1024, &[]);
    // Sessions outlive the resumed training below.
    let options = ServeOptions {
        session_idle: Duration::from_secs(120),
        ..options()
    };
    let h = hlynr_serve::spawn(&run, "127.0.0.1:0".parse().unwrap(), options).unwrap();
    let addr = h.addr;
    let a = hlynr_testkit::http_agent();
    let (_, before) = post(&a, &h, "/v1/sessions", "{}");
    let old = before["session_id"].as_str().unwrap().to_string();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let hammer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let a = hlynr_testkit::http_agent();
            let mut versions = std::collections::BTreeSet::new();
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let mut r = a
                    .post(format!("http://{addr}/v1/act"))
                    .send(json!({ "observations": OBS }).to_string())
                    .unwrap();
                assert_eq!(r.status().as_u16(), 200);
                let body: Value = r.body_mut().read_json().unwrap();
                versions.insert(body["model_version"].as_u64().unwrap());
                n += 1;
            }
            (versions, n)
        })
    };
    // Training on writes new checkpoints into the same run.
    let out = Command::new(env!("CARGO_BIN_EXE_hlynr"))
        .args(["resume", "--progress", "quiet"])
        .arg(&run)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (versions, n) = hammer.join().unwrap();
    assert!(
        versions.contains(&1) && versions.len() >= 2,
        "{versions:?} over {n} requests"
    );
    // A session keeps its model; a batch across models names each row's.
    let (_, after) = post(&a, &h, "/v1/sessions", "{}");
    let new = after["session_id"].as_str().unwrap().to_string();
    let latest = after["model_version"].as_u64().unwrap();
    assert!(latest >= 2, "{after}");
    let body = json!({ "observations": OBS, "session_ids": [&old, &new, &old] });
    let (status, mixed) = post(&a, &h, "/v1/act", &body.to_string());
    assert_eq!(status, 200, "{mixed}");
    assert_eq!(mixed["model_version"], json!([1, latest, 1]), "{mixed}");
    let body = json!({ "observations": &OBS[..2], "session_ids": [&old, &old] });
    let (_, same) = post(&a, &h, "/v1/act", &body.to_string());
    assert_eq!(same["model_version"], json!(1), "{same}");
    let (_, metrics) = get(&hlynr_testkit::http_agent(), &h, "/metrics");
    assert!(
        !metrics.contains("hlynr_model_reloads_total 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("hlynr_model_reload_failures_total 0"),
        "{metrics}"
    );
    h.stop();
}

#[test]
fn the_command_serves_until_stopped() {
    let run = train("command", 1024, &[]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_hlynr"))
        .args(["serve", "--port", "0", "--workers", "1"])
        .arg(&run)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();
    let mut r = hlynr_testkit::http_agent()
        .get(format!("{url}/health"))
        .call()
        .unwrap();
    let health: Value = r.body_mut().read_json().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(health["status"], "ok");
}
