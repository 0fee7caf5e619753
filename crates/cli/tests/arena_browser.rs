//! The browser game in a real headless Chromium: `hlynr train` with
//! `configs/arena_browser.yaml` serves the canvas page, the page plays the
//! arena and asks the learner for every prey's actions over the WebSocket,
//! and the run trains on what the page sends until it completes. Checked
//! through the DevTools protocol: the page received actions and drew
//! frames; the learner logged its updates; a screenshot is taken (written
//! to `HLYNR_SCREENSHOT` when set: `docs/img/arena_browser.png` comes from
//! here). And the same page from `hlynr serve`, its prey played by a
//! trained policy; and the page's JavaScript rules held to the Rust world's,
//! tick by tick.
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

/// A short arena run: 64-step rollouts, one evaluation game at the end,
/// games of 600 ticks (10 s).
const SMALL_ARENA: [&str; 8] = [
    "--set",
    "ppo.n_steps=64",
    "--set",
    "run.eval_every_steps=0",
    "--set",
    "run.eval_episodes=1",
    "--set",
    "env.max_episode_steps=600",
];

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
    let port = hlynr_testkit::free_port();
    let config = hlynr_testkit::config_file("arena_browser.yaml");
    let learner = hlynr_testkit::train_command(env!("CARGO_BIN_EXE_hlynr"), &config, &runs)
        .args([
            "--set",
            &format!("env.remote.listen=127.0.0.1:{port}"),
            "--set",
            "total_timesteps=4096",
        ])
        .args(SMALL_ARENA)
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
            ["--set", "n_envs=16", "--set", "total_timesteps=2048"].as_slice(),
            &SMALL_ARENA,
        ]
        .concat(),
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

/// Converts a Rust `World` (its JSON) into the page's world, runs the
/// page's `tick` on it with `moves`, and reports what a tick decides.
const JS_TICK: &str = r#"
(cases) => cases.map(([s, moves]) => {
  const w = {
    tick: s.tick, predators: s.predators.map((q) => [q[0], q[1]]), stars: s.stars.map((q) => [q[0], q[1]]),
    dead: [], nextSpawn: s.next_spawn_tick, interval: s.spawn_interval,
    starsEaten: 0, births: 0, kills: 0, caught: 0, starved: 0,
    slots: s.slots.map((p) => p && { id: 0, pos: [p.pos[0], p.pos[1]], energy: p.energy,
      specialLeft: p.special_left, specialKills: p.special_kills, hunger: p.hunger_ticks,
      action: null, reward: 0, fresh: false }),
  };
  const obs = w.slots.map((p) => p && observe(w, p));
  const out = tick(w, moves);
  return {
    obs,
    rewards: out.map((o) => o.reward),
    deaths: out.map((o) => o.died && o.died.cause),
    prey: w.slots.map((p) => p && [p.pos[0], p.pos[1], p.energy, p.specialLeft, p.hunger]),
    predators: w.predators,
    tick: w.tick,
  };
})
"#;

/// Stars each slot's prey has eaten in its life (0 for an empty slot).
fn stars_eaten_by_slot(world: &hlynr_arena::World) -> Vec<u32> {
    world
        .slots()
        .iter()
        .map(|p| p.as_ref().map_or(0, |p| p.stars_eaten))
        .collect()
}

#[test]
fn the_pages_rules_are_the_worlds() {
    use hlynr_arena::world::{Death, SlotStep};
    use hlynr_arena::{ArenaConfig, World};

    let Some(chromium) = chromium() else { return };
    let scratch = std::env::temp_dir().join(format!("hlynr-arena-rules-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).unwrap();
    // Eventful settings: full energy (specials and births from the start),
    // quick starvation and predator arrivals.
    let config = ArenaConfig {
        initial_energy: 12.0,
        starvation_ticks: 300,
        predator_spawn_interval_ticks: 60.0,
        ..ArenaConfig::default()
    };
    let page_file = scratch.join("arena.html");
    let page_text = hlynr_arena::web::page(&config, hlynr_arena::web::Driver::Served);
    std::fs::write(&page_file, page_text).unwrap();
    let url = format!("file://{}", page_file.display());
    let (_browser, mut page) = open(&chromium, &url, &scratch.join("profile"));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let loaded = page.call(
            "Runtime.evaluate",
            json!({"expression": "typeof tick === 'function' && typeof observe === 'function'",
                   "returnByValue": true}),
        );
        if loaded["result"]["value"] == true {
            break;
        }
        assert!(Instant::now() < deadline, "the page's script never loaded");
        std::thread::sleep(Duration::from_millis(100));
    }

    let mut rng = hlynr_rng::Rng::seed_from_u64(17);
    let (mut ticks, mut deaths, mut births, mut kills, mut stars) = (0, [0; 2], 0, 0, 0);
    let mut seed = 0;
    while ticks < 2000 {
        seed += 1;
        let mut world = World::new(&config, seed);
        let mut cases = Vec::new();
        let mut expected = Vec::new();
        while !world.extinct() && cases.len() < 400 {
            let actions: Vec<f32> = (0..config.max_prey)
                .flat_map(|_| {
                    [
                        rng.uniform_range_f32(-1.3, 1.3),
                        rng.uniform_range_f32(-1.3, 1.3),
                        rng.below(3) as f32,
                    ]
                })
                .collect();
            let state = serde_json::to_value(&world).unwrap();
            let obs: Vec<Option<Vec<f32>>> = (0..config.max_prey)
                .map(|slot| {
                    world.slots()[slot].as_ref().map(|_| {
                        let mut o = vec![0.0; 17];
                        world.observe(&config, slot, &mut o);
                        o
                    })
                })
                .collect();
            let moves: Vec<[f32; 3]> = actions.chunks(3).map(|a| [a[0], a[1], a[2]]).collect();
            let before = world.totals().clone();
            let predators_before = world.predators().len();
            let fed_before = stars_eaten_by_slot(&world);
            let mut out = vec![SlotStep::default(); config.max_prey];
            world.step(&config, &actions, &mut out);
            let after = world.totals();
            let killed = (after.predators_killed - before.predators_killed) as usize;
            births += after.births - before.births;
            kills += killed as u64;
            stars += after.stars_eaten - before.stars_eaten;
            // Predators that arrived this tick, at places drawn at random.
            let arrivals = world.predators().len() + killed - predators_before;
            // A star eaten reappears at a place drawn at random, which the
            // prey after the eater (in slot order) may then find: from the
            // first eater on, what depends on stars is not compared.
            let first_eater = stars_eaten_by_slot(&world)
                .iter()
                .zip(&fed_before)
                .position(|(a, b)| a > b);
            cases.push(json!([state, moves]));
            let next = serde_json::to_value(&world).unwrap();
            expected.push((obs, out, next, arrivals, first_eater));
        }
        let expression = format!("JSON.stringify(({JS_TICK})({}))", Value::from(cases));
        let r = page.call(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true}),
        );
        let got: Vec<Value> = serde_json::from_str(
            r["result"]["value"]
                .as_str()
                .unwrap_or_else(|| panic!("{r}")),
        )
        .unwrap();
        for (k, (expect, js)) in expected.iter().zip(&got).enumerate() {
            let (obs, out, next, arrivals, first_eater) = expect;
            let at = format!("seed {seed} tick {k}");
            let close = |a: f64, b: &Value, what: &str| {
                let b = b.as_f64().unwrap_or(f64::NAN);
                assert!(
                    (a - b).abs() <= 1e-9 * (1.0 + a.abs()),
                    "{at}: {what} {a} vs {b}"
                );
            };
            for (slot, o) in obs.iter().enumerate() {
                match o {
                    Some(o) => {
                        for (i, v) in o.iter().enumerate() {
                            let b = js["obs"][slot][i].as_f64().unwrap();
                            assert!((f64::from(*v) - b).abs() < 1e-6, "{at}: obs {slot}[{i}]");
                        }
                    }
                    None => assert!(js["obs"][slot].is_null(), "{at}: slot {slot}"),
                }
            }
            for (slot, o) in out.iter().enumerate() {
                let prey = &next["slots"][slot];
                let p = &js["prey"][slot];
                assert_eq!(prey.is_null(), p.is_null(), "{at}: slot {slot}");
                // A newborn's place is drawn at random; its slot is checked.
                let moved = !prey.is_null() && prey["age_ticks"] != 0;
                if moved {
                    close(prey["pos"][0].as_f64().unwrap(), &p[0], "x");
                    close(prey["pos"][1].as_f64().unwrap(), &p[1], "y");
                }
                if first_eater.is_some_and(|f| slot > f) {
                    continue;
                }
                close(
                    o.reward,
                    &js["rewards"][slot],
                    &format!("reward of slot {slot}"),
                );
                let cause = o.died.as_ref().map(|(_, d)| match d {
                    Death::Caught => "caught",
                    Death::Starved => "starved",
                });
                assert_eq!(
                    js["deaths"][slot].as_str(),
                    cause,
                    "{at}: death of slot {slot}"
                );
                if let Some((_, d)) = &o.died {
                    deaths[usize::from(*d == Death::Starved)] += 1;
                }
                if moved {
                    close(prey["energy"].as_f64().unwrap(), &p[2], "energy");
                    assert_eq!(prey["special_left"], p[3], "{at}: special");
                    assert_eq!(prey["hunger_ticks"], p[4], "{at}: hunger");
                }
            }
            let preds = next["predators"].as_array().unwrap();
            assert_eq!(
                preds.len(),
                js["predators"].as_array().unwrap().len(),
                "{at}"
            );
            for (i, q) in preds.iter().enumerate().take(preds.len() - arrivals) {
                close(q[0].as_f64().unwrap(), &js["predators"][i][0], "predator x");
                close(q[1].as_f64().unwrap(), &js["predators"][i][1], "predator y");
            }
            assert_eq!(next["tick"], js["tick"], "{at}");
        }
        ticks += expected.len();
    }
    eprintln!(
        "{ticks} ticks compared: {births} births, {kills} predators killed, {stars} stars, \
         {} caught, {} starved",
        deaths[0], deaths[1]
    );
    for (what, n) in [
        ("births", births),
        ("kills", kills),
        ("stars", stars),
        ("catches", deaths[0]),
        ("starvations", deaths[1]),
    ] {
        assert!(n > 0, "no {what} in the compared ticks");
    }
    let _ = std::fs::remove_dir_all(&scratch);
}
