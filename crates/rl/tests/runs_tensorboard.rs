//! TensorBoard event files: CRC32C, TFRecord framing, protobuf encoding, and
//! the writer/reader round trip.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use hlynr_rl::tensorboard::{
    Event, EventBody, EventWriter, FILE_VERSION, SummaryValue, crc32c, decode_records,
    encode_record, event_files_in, masked_crc32c, read_event_file,
};

fn scratch_dir(name: &str) -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "hlynr-runs-tb-{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

#[test]
fn crc32c_check_value() {
    // The standard check value of CRC-32C (Castagnoli).
    assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    // Masking: ((crc >> 15) | (crc << 17)) + 0xa282ead8; the value agrees
    // with TensorBoard's own `masked_crc32c`.
    assert_eq!(masked_crc32c(b"123456789"), 0xC78A_B0E5);
}

#[test]
fn scalar_event_encodes_to_hand_computed_bytes() {
    let event = Event {
        wall_time: 1.5,
        step: 3,
        body: EventBody::Summary(vec![SummaryValue::Scalar {
            tag: "a".into(),
            value: 2.0,
        }]),
    };
    let expected: Vec<u8> = vec![
        0x09, 0, 0, 0, 0, 0, 0, 0xF8, 0x3F, // wall_time = 1.5 (field 1, fixed64)
        0x10, 0x03, // step = 3 (field 2, varint)
        0x2A, 0x0A, // summary (field 5), 10 bytes
        0x0A, 0x08, // Summary.value (field 1), 8 bytes
        0x0A, 0x01, b'a', // Value.tag = "a"
        0x15, 0, 0, 0, 0x40, // Value.simple_value = 2.0f (field 2, fixed32)
    ];
    assert_eq!(event.encode(), expected);
    assert_eq!(Event::decode(&expected).expect("decodes"), event);
}

#[test]
fn file_version_event_encodes_to_hand_computed_bytes() {
    let event = Event {
        wall_time: 0.0,
        step: 0,
        body: EventBody::FileVersion(FILE_VERSION.into()),
    };
    let mut expected = vec![0x1A, 13];
    expected.extend_from_slice(b"brain.Event:2");
    assert_eq!(event.encode(), expected);
}

#[test]
fn session_start_event_encodes_to_hand_computed_bytes() {
    // Event.session_log is field 7; SessionLog.status = 1, START = 1.
    let event = Event {
        wall_time: 0.0,
        step: 1,
        body: EventBody::SessionStart {
            checkpoint_path: String::new(),
        },
    };
    assert_eq!(event.encode(), vec![0x10, 0x01, 0x3A, 0x02, 0x08, 0x01]);
    assert_eq!(Event::decode(&event.encode()).expect("decodes"), event);
}

#[test]
fn large_steps_use_multi_byte_varints() {
    let event = Event {
        wall_time: 0.0,
        step: 300,
        body: EventBody::Other,
    };
    assert_eq!(event.encode(), vec![0x10, 0xAC, 0x02]);
    let event = Event {
        wall_time: 0.0,
        step: 1 << 40,
        body: EventBody::Other,
    };
    assert_eq!(
        Event::decode(&event.encode()).expect("decodes").step,
        1 << 40
    );
}

#[test]
fn text_summary_round_trips_with_plugin_metadata() {
    let event = Event {
        wall_time: 10.25,
        step: 42,
        body: EventBody::Summary(vec![SummaryValue::Text {
            tag: "events/doctor".into(),
            text: "value loss is 120x the return variance".into(),
        }]),
    };
    let bytes = event.encode();
    // The text plugin's name must be in the metadata.
    assert!(bytes.windows(4).any(|w| w == b"text"));
    assert_eq!(Event::decode(&bytes).expect("decodes"), event);
}

#[test]
fn tfrecord_framing_round_trips_and_detects_corruption() {
    let payloads: Vec<Vec<u8>> = vec![vec![], b"hello".to_vec(), vec![7u8; 1000]];
    let mut stream = Vec::new();
    for p in &payloads {
        stream.extend(encode_record(p));
    }
    // Framing: u64 length, masked CRC of it, data, masked CRC of data.
    let first = encode_record(b"hello");
    assert_eq!(&first[..8], &5u64.to_le_bytes());
    assert_eq!(
        &first[8..12],
        &masked_crc32c(&5u64.to_le_bytes()).to_le_bytes()
    );
    assert_eq!(&first[12..17], b"hello");
    assert_eq!(&first[17..], &masked_crc32c(b"hello").to_le_bytes());

    let src = PathBuf::from("stream");
    let decoded = decode_records(&stream, &src).expect("valid stream");
    assert_eq!(decoded.records, payloads);
    assert_eq!(decoded.trailing_partial_bytes, 0);

    // Flip one byte in every position: each must be detected (or, in the
    // length field, make the record incomplete) — never silently accepted.
    for pos in 0..stream.len() {
        let mut bad = stream.clone();
        bad[pos] ^= 0x20;
        match decode_records(&bad, &src) {
            Err(e) => assert!(e.to_string().contains("CRC mismatch"), "byte {pos}: {e}"),
            Ok(r) => panic!(
                "byte {pos}: corruption accepted ({} records)",
                r.records.len()
            ),
        }
    }

    // A cut-off stream keeps the complete records and reports the rest.
    let cut = &stream[..stream.len() - 3];
    let partial = decode_records(cut, &src).expect("partial tail is not an error");
    assert_eq!(partial.records, payloads[..2].to_vec());
    assert_eq!(partial.trailing_partial_bytes, 16 + 1000 - 3);
}

#[test]
fn writer_output_reads_back_with_verified_crcs() {
    let dir = scratch_dir("write");
    let path = {
        let mut w = EventWriter::create(&dir).expect("create");
        for step in [0u64, 2048, 4096] {
            w.add_scalars(
                step,
                [
                    ("rollout/ep_rew_mean", step as f64 * 0.5),
                    ("train/value_loss", 1.0 / (1.0 + step as f64)),
                ],
            )
            .expect("scalars");
        }
        w.add_text(4096, "events/doctor", "explained variance below 0")
            .expect("text");
        w.path().to_path_buf()
        // dropped: flushes
    };
    let name = path.file_name().and_then(|n| n.to_str()).expect("name");
    let parts: Vec<&str> = name.split('.').collect();
    assert!(name.starts_with("events.out.tfevents."), "{name}");
    assert!(
        parts.last().and_then(|p| p.parse::<u64>().ok()).is_some(),
        "{name}"
    );
    assert!(
        name.contains(&format!(".{}.", std::process::id())),
        "pid in {name}"
    );

    let file = read_event_file(&path).expect("valid file");
    assert_eq!(file.trailing_partial_bytes, 0);
    assert_eq!(
        file.events[0].body,
        EventBody::FileVersion(FILE_VERSION.into())
    );
    assert_eq!(
        file.scalars("rollout/ep_rew_mean"),
        vec![(0, 0.0), (2048, 1024.0), (4096, 2048.0)]
    );
    assert_eq!(file.scalars("train/value_loss").len(), 3);
    assert_eq!(
        file.texts("events/doctor"),
        vec![(4096, "explained variance below 0".to_string())]
    );

    // A resumed writer makes a second file in the same directory.
    let mut w2 = EventWriter::create(&dir).expect("create second");
    w2.add_scalars(6144, [("rollout/ep_rew_mean", 1.0)])
        .expect("scalars");
    w2.flush().expect("flush");
    let files = event_files_in(&dir).expect("list");
    assert_eq!(files.len(), 2);
    assert!(files.contains(&path));

    // Corrupting a byte of the written file is reported with its record.
    let mut bytes = std::fs::read(&path).expect("read");
    let n = bytes.len();
    bytes[n - 10] ^= 1;
    std::fs::write(&path, &bytes).expect("write");
    let err = read_event_file(&path).expect_err("corruption detected");
    assert!(err.to_string().contains("CRC mismatch"), "{err}");
}

/// TensorBoard's own reader (`scripts/check_tensorboard.py`, run when the
/// `tensorboard` package is importable) on a run that crashed and resumed: a
/// first process logs steps 0..=4000, "crashes" after its checkpoint at 2000,
/// and a resumed process logs 3000 and 4000 again with new values.
/// TensorBoard must show 5 points per tag, the resumed values at 3000 and
/// 4000, and the doctor's text entry.
#[test]
fn tensorboard_reads_a_crashed_and_resumed_run() {
    let dir = scratch_dir("tb-reader");
    write_crash_and_resume(&dir);
    let args = [
        dir.as_os_str(),
        OsStr::new("--expect-scalar"),
        OsStr::new("rollout/ep_rew_mean=5"),
        OsStr::new("--expect-scalar"),
        OsStr::new("rollout/success_rate=5"),
        OsStr::new("--expect-text"),
        OsStr::new("events/doctor=1"),
    ];
    let Some(out) = hlynr_testkit::run_python_check(
        "TensorBoard reader check",
        &["tensorboard"],
        Path::new("scripts/check_tensorboard.py"),
        args,
    ) else {
        return;
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The rewards series as TensorBoard shows it: the resumed values win.
    let rewards: Vec<&str> = stdout
        .lines()
        .skip_while(|l| !l.starts_with("scalar rollout/ep_rew_mean"))
        .skip(1)
        .take_while(|l| l.starts_with("  step"))
        .collect();
    assert_eq!(
        rewards,
        [
            "  step 0: 0.0",
            "  step 1000: 10.0",
            "  step 2000: 20.0",
            "  step 3000: -30.0",
            "  step 4000: -40.0"
        ],
        "{stdout}"
    );
    assert!(
        stdout.contains("  step 2000: '**value loss** spiking: 3.2e3'"),
        "{stdout}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn write_crash_and_resume(dir: &std::path::Path) {
    let mut first = EventWriter::create(dir).expect("create");
    for i in 0..5u64 {
        first
            .add_scalars(
                i * 1000,
                [
                    ("rollout/ep_rew_mean", 10.0 * i as f64),
                    ("rollout/success_rate", i as f64 / 4.0),
                ],
            )
            .expect("scalars");
    }
    first
        .add_text(2000, "events/doctor", "**value loss** spiking: 3.2e3")
        .expect("text");
    drop(first);
    let mut resumed = EventWriter::resume(dir, 2000, "checkpoints/step-000002000").expect("resume");
    for i in 3..5u64 {
        resumed
            .add_scalars(
                i * 1000,
                [
                    ("rollout/ep_rew_mean", -10.0 * i as f64),
                    ("rollout/success_rate", 0.0),
                ],
            )
            .expect("scalars");
    }
    resumed.flush().expect("flush");
}

#[test]
fn resumed_file_starts_a_session_after_the_checkpoint_step() {
    let dir = scratch_dir("resume");
    write_crash_and_resume(&dir);
    let files = event_files_in(&dir).expect("list");
    assert_eq!(files.len(), 2);
    let resumed = files
        .iter()
        .map(|f| read_event_file(f).expect("valid"))
        .find(|f| {
            f.events
                .iter()
                .any(|e| matches!(e.body, EventBody::SessionStart { .. }))
        })
        .expect("a file with a session start");
    assert_eq!(
        resumed.events[1],
        Event {
            wall_time: resumed.events[1].wall_time,
            step: 2001,
            body: EventBody::SessionStart {
                checkpoint_path: "checkpoints/step-000002000".into()
            },
        }
    );
    assert_eq!(
        resumed.scalars("rollout/ep_rew_mean"),
        vec![(3000, -30.0), (4000, -40.0)]
    );
}
