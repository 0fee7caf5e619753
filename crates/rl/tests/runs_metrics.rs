//! `metrics.jsonl` and the metrics sink.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hlynr_rl::metrics::{Metrics, MetricsJsonl, MetricsRecord, RunEvent, keys, read_metrics};
use hlynr_rl::progress::{Progress, ProgressMode};
use hlynr_rl::sink::MetricsSink;
use hlynr_rl::tensorboard::{EventWriter, event_files_in, read_event_file};

fn scratch_dir(name: &str) -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "hlynr-runs-metrics-{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

fn metrics(pairs: &[(&str, f64)]) -> Metrics {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

/// A `Write` that tests can read back.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Shared {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().expect("lock").clone()).expect("utf8")
    }
}

#[test]
fn jsonl_round_trips_values_exactly() {
    let dir = scratch_dir("roundtrip");
    let path = dir.join("metrics.jsonl");
    let records = vec![
        MetricsRecord::Scalars {
            step: 2048,
            time_s: 1.25,
            values: metrics(&[
                (keys::EP_REW_MEAN, 21.5),
                (keys::VALUE_LOSS, 0.1 + 0.2),
                (keys::LEARNING_RATE, 3e-4),
                (keys::APPROX_KL, f64::NAN),
            ]),
        },
        MetricsRecord::Event {
            step: 2048,
            time_s: 1.3,
            event: RunEvent::new("checkpoint", "saved")
                .with("path", "checkpoints/step-000002048")
                .with("env_steps", 2048),
        },
        MetricsRecord::Scalars {
            step: 4096,
            time_s: 2.5,
            values: metrics(&[(keys::EP_REW_MEAN, -1e-300), (keys::FPS, 12_345.0)]),
        },
    ];
    {
        let mut w = MetricsJsonl::create(&path).expect("create");
        for r in &records {
            w.write(r).expect("write");
        }
    }
    let text = std::fs::read_to_string(&path).expect("read");
    let first = text.lines().next().expect("a line");
    assert!(
        first.starts_with("{\"step\":2048,\"time_s\":1.25,"),
        "{first}"
    );
    assert!(first.contains("\"rollout/ep_rew_mean\":21.5"), "{first}");
    assert!(first.contains("\"train/approx_kl\":\"NaN\""), "{first}");

    let log = read_metrics(&path).expect("parse");
    assert_eq!(log.truncated_tail, None);
    assert_eq!(log.records.len(), 3);
    // Bitwise equality of every value (NaN compared by bits).
    for (a, b) in log.records.iter().zip(&records) {
        match (a, b) {
            (
                MetricsRecord::Scalars {
                    values: va,
                    step: sa,
                    time_s: ta,
                },
                MetricsRecord::Scalars {
                    values: vb,
                    step: sb,
                    time_s: tb,
                },
            ) => {
                assert_eq!((sa, ta.to_bits()), (sb, tb.to_bits()));
                assert_eq!(va.len(), vb.len());
                for (k, v) in va {
                    assert_eq!(v.to_bits(), vb[k].to_bits(), "{k}");
                }
            }
            (x, y) => assert_eq!(x, y),
        }
    }
    assert_eq!(
        log.series(keys::EP_REW_MEAN),
        vec![(2048, 21.5), (4096, -1e-300)]
    );
    let events = log.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].1.kind, "checkpoint");
    assert_eq!(events[0].1.fields["env_steps"], 2048);
}

#[test]
fn truncated_last_line_is_tolerated_and_reported() {
    let dir = scratch_dir("truncated");
    let path = dir.join("metrics.jsonl");
    std::fs::write(
        &path,
        "{\"step\":1,\"time_s\":0.5,\"a\":1}\n{\"step\":2,\"time_s\":1.0,\"a\":2}\n{\"step\":3,\"ti",
    )
    .expect("write");
    let log = read_metrics(&path).expect("tolerant");
    assert_eq!(log.series("a"), vec![(1, 1.0), (2, 2.0)]);
    assert_eq!(log.truncated_tail.as_deref(), Some("{\"step\":3,\"ti"));

    // The same damage on a terminated line is an error naming the line.
    std::fs::write(
        &path,
        "{\"step\":1,\"time_s\":0.5,\"a\":1}\n{\"step\":3,\"ti\n{\"step\":4,\"time_s\":1,\"a\":2}\n",
    )
    .expect("write");
    let err = read_metrics(&path).expect_err("corrupt middle line");
    assert!(err.to_string().contains("line 2"), "{err}");
}

#[test]
fn resume_drops_records_after_the_checkpoint_step() {
    let dir = scratch_dir("resume");
    let path = dir.join("metrics.jsonl");
    {
        let mut w = MetricsJsonl::create(&path).expect("create");
        for step in [1000u64, 2000, 3000] {
            w.write(&MetricsRecord::Scalars {
                step,
                time_s: step as f64 / 1000.0,
                values: metrics(&[("a", step as f64)]),
            })
            .expect("write");
        }
    }
    // A crash mid-line after the last record.
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(b"{\"step\":4000,"))
        .expect("append");

    let (mut w, dropped) = MetricsJsonl::resume(&path, 2000).expect("resume");
    assert_eq!(dropped, 1);
    w.write(&MetricsRecord::Scalars {
        step: 3000,
        time_s: 3.5,
        values: metrics(&[("a", 30.0)]),
    })
    .expect("write");
    drop(w);
    let log = read_metrics(&path).expect("parse");
    assert_eq!(log.truncated_tail, None);
    assert_eq!(
        log.series("a"),
        vec![(1000, 1000.0), (2000, 2000.0), (3000, 30.0)]
    );
}

#[test]
fn sink_fans_out_to_tensorboard_jsonl_and_progress() {
    let dir = scratch_dir("sink");
    let out = Shared::default();
    let progress = Progress::with_writer(
        ProgressMode::JsonLines,
        0,
        8192,
        Box::new(out.clone()),
        false,
        Duration::ZERO,
    );
    let tb = EventWriter::create(&dir).expect("tb");
    let jsonl = MetricsJsonl::create(&dir.join("metrics.jsonl")).expect("jsonl");
    let mut sink = MetricsSink::new(Some(tb), Some(jsonl), Some(progress), 100.0);
    sink.log(
        4096,
        &metrics(&[(keys::EP_REW_MEAN, 12.5), (keys::SUCCESS_RATE, 0.25)]),
    )
    .expect("log");
    sink.event(4096, &RunEvent::new("doctor", "entropy collapsed"))
        .expect("event");
    sink.log(8192, &metrics(&[(keys::EP_REW_MEAN, 20.0)]))
        .expect("log");
    sink.finish().expect("finish");
    assert!(sink.elapsed_s() >= 100.0, "time offset carried");

    // JSONL: two scalar records and one event, time including the offset.
    let log = read_metrics(&dir.join("metrics.jsonl")).expect("jsonl");
    assert_eq!(
        log.series(keys::EP_REW_MEAN),
        vec![(4096, 12.5), (8192, 20.0)]
    );
    assert_eq!(log.events()[0].1.message, "entropy collapsed");
    match &log.records[0] {
        MetricsRecord::Scalars { time_s, .. } => assert!(*time_s >= 100.0),
        other => panic!("expected scalars, got {other:?}"),
    }

    // TensorBoard: the same scalars and the event as text.
    let files = event_files_in(&dir).expect("list");
    assert_eq!(files.len(), 1);
    let tb = read_event_file(&files[0]).expect("tb parse");
    assert_eq!(
        tb.scalars(keys::EP_REW_MEAN),
        vec![(4096, 12.5), (8192, 20.0)]
    );
    assert_eq!(tb.scalars(keys::SUCCESS_RATE), vec![(4096, 0.25)]);
    assert_eq!(tb.texts("events/doctor").len(), 1);

    // Progress (JSON lines): one object per update, a note, and the final one.
    let text = out.text();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert_eq!(lines[0]["step"], 4096);
    assert_eq!(lines[0]["success_rate"], 0.25);
    assert_eq!(lines[0]["ep_rew_mean"], 12.5);
    assert_eq!(lines[1]["note"], "[doctor] entropy collapsed");
    assert_eq!(lines[2]["step"], 8192);
    assert_eq!(lines[2]["fraction"], 1.0);
    // The success rate persists until a new one is logged.
    assert_eq!(lines[2]["success_rate"], 0.25);
}

#[test]
fn sink_rejects_reserved_keys() {
    let mut sink = MetricsSink::new(None, None, None, 0.0);
    let err = sink
        .log(1, &metrics(&[("step", 1.0)]))
        .expect_err("reserved");
    assert!(err.to_string().contains("`step`"), "{err}");
}

#[test]
fn progress_bar_redraws_on_terminals_and_prints_lines_otherwise() {
    let values = metrics(&[(keys::SUCCESS_RATE, 0.5), (keys::EP_REW_MEAN, 3.0)]);

    let tty = Shared::default();
    let mut p = Progress::with_writer(
        ProgressMode::Bar,
        0,
        1000,
        Box::new(tty.clone()),
        true,
        Duration::ZERO,
    );
    p.update(500, &values);
    p.update(1000, &values);
    p.finish();
    let t = tty.text();
    assert_eq!(t.matches('\r').count(), 3, "{t:?}");
    assert!(t.ends_with('\n'), "line ended at finish");
    assert!(t.contains("1,000/1,000 steps"), "{t}");
    assert!(t.contains("success 50.0%"), "{t}");
    assert!(t.contains("return 3.00"), "{t}");

    let plain = Shared::default();
    let mut p = Progress::with_writer(
        ProgressMode::Bar,
        0,
        1000,
        Box::new(plain.clone()),
        false,
        Duration::from_secs(3600),
    );
    p.update(100, &values);
    p.update(200, &values); // throttled
    p.finish();
    let t = plain.text();
    assert!(!t.contains('\r'));
    assert_eq!(t.lines().count(), 2, "{t}");

    let quiet = Shared::default();
    let mut p = Progress::with_writer(
        ProgressMode::Quiet,
        0,
        1000,
        Box::new(quiet.clone()),
        true,
        Duration::ZERO,
    );
    p.update(100, &values);
    p.note("hello");
    p.finish();
    assert_eq!(quiet.text(), "");
}

#[test]
fn resumed_sink_continues_files_and_clock() {
    let dir = scratch_dir("sink-resume");
    {
        let mut sink = MetricsSink::create_in(&dir, None).expect("create");
        for step in [1000u64, 2000, 3000] {
            sink.log(step, &metrics(&[("a", step as f64)]))
                .expect("log");
        }
    }
    let mut sink = MetricsSink::resume_in(&dir, 2000, "checkpoints/step-000002000", 50.0, None)
        .expect("resume");
    sink.log(3000, &metrics(&[("a", -3.0)])).expect("log");
    drop(sink);
    let log = read_metrics(&dir.join("metrics.jsonl")).expect("parse");
    assert_eq!(
        log.series("a"),
        vec![(1000, 1000.0), (2000, 2000.0), (3000, -3.0)]
    );
    match log.records.last() {
        Some(MetricsRecord::Scalars { time_s, .. }) => assert!(*time_s >= 50.0),
        other => panic!("{other:?}"),
    }
    assert_eq!(event_files_in(&dir).expect("list").len(), 2);
}
