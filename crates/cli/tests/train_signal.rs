//! Real `hlynr train` processes: a Ctrl-C (SIGINT) or SIGTERM finishes the
//! current update, writes a checkpoint, marks the run interrupted, exits
//! cleanly, and the run resumes from that checkpoint; a second writer is
//! refused while the run trains, readers keep working, and a `kill -9` before
//! the first checkpoint leaves no stale lock and a run that resumes from step 0.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn scratch_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hlynr-signal-{tag}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// A CartPole run long enough to still be training when the signal arrives.
fn write_config(dir: &Path) -> PathBuf {
    let path = dir.join("long_cartpole.yaml");
    fs::write(
        &path,
        "env: {id: CartPole-v1}\nseed: 3\nn_envs: 4\ntotal_timesteps: 50000000\nppo:\n  n_steps: 64\n  \
         batch_size: 64\n  n_epochs: 2\nrun:\n  eval_every_steps: 0\n  \
         checkpoint_every_steps: 100000000\n",
    )
    .unwrap();
    path
}

fn run_dir(runs: &Path) -> Option<PathBuf> {
    fs::read_dir(runs)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.is_dir())
}

/// Env steps of the newest `checkpoints/step-N` directory.
fn newest_step_checkpoint(run: &Path) -> u64 {
    fs::read_dir(run.join("checkpoints"))
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.strip_prefix("step-")?.parse().ok())
        .max()
        .expect("a step checkpoint")
}

fn wait_for(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_exit(child: &mut Child, timeout: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            panic!("hlynr did not exit within {timeout:?} after the signal");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts `hlynr train` of `config` into `runs` and returns once it has
/// logged its first update.
fn start_training(config: &Path, runs: &Path) -> Child {
    let child = Command::new(env!("CARGO_BIN_EXE_hlynr"))
        .args(["train", "--progress", "quiet", "--config"])
        .arg(config)
        .arg("--runs-dir")
        .arg(runs)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the first logged update", Duration::from_secs(120), || {
        run_dir(runs).is_some_and(|r| {
            fs::read_to_string(r.join("metrics.jsonl")).is_ok_and(|m| m.lines().count() >= 1)
        })
    });
    child
}

fn interrupt_and_check(signal: &str) {
    let dir = scratch_dir(signal);
    let config = write_config(&dir);
    let runs = dir.join("runs");
    let mut child = start_training(&config, &runs);
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success(), "kill -{signal} failed");
    let exit = wait_exit(&mut child, Duration::from_secs(120));
    assert!(
        exit.success(),
        "hlynr exited with {exit:?} after SIG{signal}"
    );

    let run = run_dir(&runs).unwrap();
    let manifest: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(run.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["status"], "interrupted", "{manifest}");
    assert!(run.join("checkpoints/last/state.json").is_file());

    // The interrupted run resumes from its checkpoint and trains on.
    let saved = newest_step_checkpoint(&run);
    let target = saved + 512;
    let resumed = Command::new(env!("CARGO_BIN_EXE_hlynr"))
        .args(["resume", "--progress", "quiet", "--steps"])
        .arg(target.to_string())
        .arg(&run)
        .output()
        .unwrap();
    assert!(
        resumed.status.success(),
        "resume failed: {}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    assert!(newest_step_checkpoint(&run) >= target);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn sigint_checkpoints_marks_interrupted_and_exits_cleanly() {
    interrupt_and_check("INT");
}

#[test]
fn sigterm_checkpoints_marks_interrupted_and_exits_cleanly() {
    interrupt_and_check("TERM");
}

#[test]
fn one_writer_per_run_and_a_kill_before_the_first_checkpoint_resumes_from_0() {
    let dir = scratch_dir("lock");
    let config = write_config(&dir);
    let runs = dir.join("runs");
    let hlynr = env!("CARGO_BIN_EXE_hlynr");
    let mut child = start_training(&config, &runs);
    let run = run_dir(&runs).unwrap();

    // A second writer fails at once and names the one training.
    let start = Instant::now();
    let second = Command::new(hlynr)
        .args(["resume", "--progress", "quiet"])
        .arg(&run)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success(), "a second writer ran: {stderr}");
    assert!(start.elapsed() < Duration::from_secs(30), "{stderr}");
    assert!(
        stderr.contains(&format!("being written by process {}", child.id())),
        "{stderr}"
    );
    // Readers work on the live run.
    for args in [&["doctor"][..], &["monitor", "--once"][..]] {
        let out = Command::new(hlynr).args(args).arg(&run).output().unwrap();
        assert!(
            out.status.success(),
            "hlynr {args:?} on a live run: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // Killed before any checkpoint: no stale lock, and resume starts over.
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!run.join("checkpoints/last").exists());
    let resumed = Command::new(hlynr)
        .args(["resume", "--progress", "quiet", "--steps", "512"])
        .arg(&run)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&resumed.stderr);
    assert!(resumed.status.success(), "resume failed: {stderr}");
    assert!(stderr.contains("starting over from step 0"), "{stderr}");
    let manifest: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(run.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["resumes"][0]["env_steps"], 0, "{manifest}");
    assert!(newest_step_checkpoint(&run) >= 512);
    let _ = fs::remove_dir_all(&dir);
}
