//! The browser game in a real headless Chromium: `hlynr train` with
//! `configs/arena_browser.yaml` serves the canvas page, the page plays the
//! arena and asks the learner for every prey's actions over the WebSocket,
//! and the run trains on what the page sends until it completes. Checked
//! through the DevTools protocol: the page received actions and drew
//! frames; the learner logged its updates; a screenshot is taken (written
//! to `HLYNR_SCREENSHOT` when set: `docs/img/arena_browser.png` comes from
//! here). And the same page from `hlynr serve`, its prey played by a
//! trained policy.
//!
//! Chromium is found as `chromium` on the PATH (or `HLYNR_CHROMIUM`);
//! without it the test says so and passes, unless `HLYNR_REQUIRE_BROWSER`
//! is set (CI sets it).

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

fn chromium() -> Option<PathBuf> {
    let named = std::env::var_os("HLYNR_CHROMIUM").map(PathBuf::from);
    let found = named.or_else(|| {
        std::env::var_os("PATH").and_then(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join("chromium"))
                .find(|p| p.is_file())
        })
    });
    if found.is_none() {
        assert!(
            std::env::var_os("HLYNR_REQUIRE_BROWSER").is_none(),
            "HLYNR_REQUIRE_BROWSER is set but no chromium was found (PATH or HLYNR_CHROMIUM)"
        );
        eprintln!("skipped: no chromium on the PATH (apt-get install chromium)");
    }
    found
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Kills the process when the test ends, however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A DevTools session with the page.
struct Page {
    ws: WebSocket<MaybeTlsStream<TcpStream>>,
    next_id: u64,
}

impl Page {
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let request = json!({"id": id, "method": method, "params": params});
        self.ws.send(Message::text(request.to_string())).unwrap();
        loop {
            if let Message::Text(t) = self.ws.read().unwrap() {
                let v: Value = serde_json::from_str(&t).unwrap();
                if v["id"] == id {
                    assert!(v.get("error").is_none(), "{method}: {v}");
                    return v["result"].clone();
                }
            }
        }
    }

    /// Waits (at most 2 minutes) until the page has received `actions`
    /// actions and drawn 60 frames, with nothing refused; its statistics.
    fn until_playing(&mut self, actions: u64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let stats = self.stats();
            let enough = stats["actionsReceived"].as_u64().unwrap_or(0) >= actions
                && stats["framesDrawn"].as_u64().unwrap_or(0) >= 60;
            if enough {
                assert_eq!(stats["refused"], 0, "{stats}");
                return stats;
            }
            assert!(
                Instant::now() < deadline,
                "the page made no progress: {stats}"
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    fn stats(&mut self) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": "JSON.stringify(window.hlynrStats || null)", "returnByValue": true}),
        );
        serde_json::from_str(r["result"]["value"].as_str().unwrap_or("null")).unwrap()
    }
}

/// Starts Chromium on `url` and attaches to its page.
fn open(chromium: &PathBuf, url: &str, profile: &std::path::Path) -> (Killed, Page) {
    let mut child = Command::new(chromium)
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--remote-debugging-port=0",
            "--window-size=720,820",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(url)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let mut devtools = None;
    for line in stderr.lines() {
        let line = line.unwrap();
        if let Some(at) = line.find("ws://") {
            devtools = Some(line[at..].trim().to_string());
            break;
        }
    }
    let browser = Killed(child);
    let devtools = devtools.expect("chromium printed no DevTools address");
    let port = devtools["ws://127.0.0.1:".len()..]
        .split('/')
        .next()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let page_ws = loop {
        let list: Value = ureq::get(&format!("http://127.0.0.1:{port}/json/list"))
            .call()
            .unwrap()
            .body_mut()
            .read_json()
            .unwrap();
        let page =
            list.as_array().unwrap().iter().find(|t| {
                t["type"] == "page" && t["url"].as_str().is_some_and(|u| u.starts_with(url))
            });
        if let Some(p) = page {
            break p["webSocketDebuggerUrl"].as_str().unwrap().to_string();
        }
        assert!(Instant::now() < deadline, "no page for {url}: {list}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let ws = tungstenite::connect(page_ws).unwrap().0;
    (browser, Page { ws, next_id: 0 })
}

#[test]
fn the_page_plays_the_game_for_the_live_learner() {
    let Some(chromium) = chromium() else { return };
    let scratch = std::env::temp_dir().join(format!("hlynr-arena-browser-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    let runs = scratch.join("runs");
    let port = free_port();
    let config = hlynr_testkit::config_file("arena_browser.yaml");
    let learner = Command::new(env!("CARGO_BIN_EXE_hlynr"))
        .args(["train", "--progress", "quiet", "--config"])
        .arg(&config)
        .arg("--runs-dir")
        .arg(&runs)
        .args([
            "--set",
            &format!("env.remote.listen=127.0.0.1:{port}"),
            "--set",
            "total_timesteps=4096",
            "--set",
            "ppo.n_steps=64",
            "--set",
            "run.eval_every_steps=0",
            "--set",
            "run.eval_episodes=1",
            "--set",
            "env.max_episode_steps=600",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut learner = Killed(learner);
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the learner never listened");
        std::thread::sleep(Duration::from_millis(100));
    }

    // Four game ticks per frame: the same game, four times faster.
    let url = format!("http://127.0.0.1:{port}/?ticks_per_frame=4&seed=7");
    let (_browser, mut page) = open(&chromium, &url, &scratch.join("profile"));
    page.until_playing(200);
    page.call(
        "Emulation.setDeviceMetricsOverride",
        json!({"width": 720, "height": 820, "deviceScaleFactor": 1, "mobile": false}),
    );
    std::thread::sleep(Duration::from_millis(300));
    let shot = page.call("Page.captureScreenshot", json!({"format": "png"}));
    let png = base64::engine::general_purpose::STANDARD
        .decode(shot["data"].as_str().unwrap())
        .unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
    if let Some(path) = std::env::var_os("HLYNR_SCREENSHOT") {
        std::fs::write(path, &png).unwrap();
    }

    // The learner trains on what the page sends until the run completes.
    let deadline = Instant::now() + Duration::from_secs(300);
    let status = loop {
        if let Some(status) = learner.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the run did not complete");
        std::thread::sleep(Duration::from_millis(250));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(learner.0.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("client 1 connected"), "{stderr}");
    let run = hlynr_testkit::only_entry(&runs);
    let log = hlynr_rl::metrics::read_metrics(&run.join(hlynr_rl::run::METRICS_FILE)).unwrap();
    let losses = log.series("train/value_loss");
    assert!(!losses.is_empty(), "no update logged");
    assert!(losses.iter().all(|(_, v)| v.is_finite()));
    assert!(
        !log.series("rollout/ep_rew_mean").is_empty(),
        "no prey life reached the learner"
    );
    let _ = std::fs::remove_dir_all(&scratch);
}

#[test]
fn a_served_policy_plays_the_page() {
    let Some(chromium) = chromium() else { return };
    let scratch = std::env::temp_dir().join(format!("hlynr-arena-served-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    let run = hlynr_testkit::train_run(
        env!("CARGO_BIN_EXE_hlynr"),
        &hlynr_testkit::config_file("arena_ppo.yaml"),
        &scratch.join("runs"),
        &[
            "--set",
            "n_envs=16",
            "--set",
            "total_timesteps=2048",
            "--set",
            "ppo.n_steps=64",
            "--set",
            "run.eval_every_steps=0",
            "--set",
            "run.eval_episodes=1",
            "--set",
            "env.max_episode_steps=600",
        ],
    );
    let server = hlynr_serve::spawn(
        &run,
        "127.0.0.1:0".parse().unwrap(),
        hlynr_serve::ServeOptions::default(),
    )
    .unwrap();
    let url = format!("http://{}/arena?ticks_per_frame=4&seed=3", server.addr);
    let (_browser, mut page) = open(&chromium, &url, &scratch.join("profile"));
    page.until_playing(200);
    server.stop();
    let _ = std::fs::remove_dir_all(&scratch);
}
