//! Stop requests by signal. Signals are process-wide, so the checks run in a
//! child process (this test binary re-run with an environment variable).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hlynr_rl::signals::StopSignal;

const CHILD_ENV: &str = "HLYNR_SIGNAL_TEST_CHILD";

/// In the child: install the handler, report readiness, poll like a training
/// loop, and exit 0 with a message once a stop is requested; with
/// `ignore_stop`, keep looping (to test the second-signal exit).
#[test]
fn child_training_loop() {
    let Ok(mode) = std::env::var(CHILD_ENV) else {
        return;
    };
    let stop = StopSignal::install().expect("install");
    println!("HLYNR_CHILD_READY");
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5)); // "one update"
        if stop.stop_requested() && mode != "ignore_stop" {
            println!("stopped cleanly: {}", stop.reason().unwrap_or_default());
            std::process::exit(0);
        }
    }
    println!("no signal arrived");
    std::process::exit(3);
}

fn spawn_child(mode: &str) -> (std::process::Child, BufReader<std::process::ChildStdout>) {
    let exe = std::env::current_exe().expect("test binary");
    let mut child = Command::new(exe)
        .args([
            "--exact",
            "child_training_loop",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, mode)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn child");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    loop {
        line.clear();
        let n = out.read_line(&mut line).expect("read");
        assert!(n > 0, "child exited before installing handlers");
        // libtest prints the test name on the same line first.
        if line.contains("HLYNR_CHILD_READY") {
            break;
        }
    }
    (child, out)
}

fn send(pid: u32, signal: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .expect("run kill")
        .success();
    assert!(ok, "kill -{signal} {pid}");
}

#[test]
fn sigterm_requests_a_clean_stop() {
    let (mut child, mut out) = spawn_child("normal");
    send(child.id(), "TERM");
    let status = child.wait().expect("wait");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).expect("read");
    assert!(status.success(), "status {status:?}, output {rest:?}");
    assert!(
        rest.contains("stopped cleanly: stopped by SIGTERM"),
        "{rest}"
    );
}

#[test]
fn sigint_requests_a_clean_stop() {
    let (mut child, mut out) = spawn_child("normal");
    send(child.id(), "INT");
    let status = child.wait().expect("wait");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).expect("read");
    assert!(status.success(), "status {status:?}, output {rest:?}");
    assert!(rest.contains("SIGINT (Ctrl-C)"), "{rest}");
}

#[test]
fn second_signal_exits_immediately() {
    let (mut child, _out) = spawn_child("ignore_stop");
    send(child.id(), "INT");
    std::thread::sleep(Duration::from_millis(200));
    // Still running: the first signal only requested a stop.
    assert!(
        child.try_wait().expect("try_wait").is_none(),
        "first signal must not kill"
    );
    send(child.id(), "INT");
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(130), "{status:?}");
}

#[test]
fn programmatic_stop_request() {
    // No signal involved: safe to run in-process.
    let stop = StopSignal::install().expect("install");
    assert!(!stop.stop_requested());
    assert_eq!(stop.reason(), None);
    stop.request_stop();
    assert!(stop.stop_requested());
    assert_eq!(stop.signal(), None);
    assert_eq!(stop.reason().as_deref(), Some("stop requested"));
}
