//! Checkpoints: round trip, corruption detection and fallback, crash
//! recovery of the atomic swap, pruning.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use hlynr_nn::{Adam, AdamConfig, AdamKind, Layer, Linear, ParamGroup};
use hlynr_rl::checkpoint::{
    BEST, CheckpointManager, CheckpointPayload, LAST, MODEL_FILE, ModelTensor, OPTIMIZER_FILE,
    STATE_FILE, latest_valid_checkpoint, prune_step_checkpoints, read_checkpoint,
    recover_interrupted_writes, step_checkpoints, step_dir_name, write_checkpoint,
};
use hlynr_rng::Rng;
use serde_json::json;

fn scratch_dir(name: &str) -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "hlynr-runs-ckpt-{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// A payload from a real layer and a stepped Adam, distinct per `seed`.
fn payload(seed: u64) -> CheckpointPayload {
    let mut rng = Rng::seed_from_u64(seed);
    let mut layer = Linear::new(3, 2, &mut rng);
    {
        let mut params = Vec::new();
        layer.params_mut("", &mut params);
        for (_, p) in params {
            for g in p.grad.data_mut() {
                *g = rng.uniform_f32() - 0.5;
            }
        }
    }
    let names: Vec<String> = named(&layer).into_iter().map(|(n, _)| n).collect();
    let mut adam = Adam::new(
        AdamConfig::new(AdamKind::Adam),
        vec![ParamGroup::new("all", names, 1e-3)],
    )
    .expect("adam");
    {
        let mut params = Vec::new();
        layer.params_mut("", &mut params);
        adam.step(&mut params).expect("step");
    }
    let mut model = CheckpointPayload::model_from_params(&named(&layer));
    model.push((
        "num_batches_tracked".into(),
        ModelTensor::Counter(hlynr_nn::Tensor::from_vec(&[], vec![seed as f32]).expect("t")),
    ));
    CheckpointPayload {
        model,
        optimizer: adam.state().expect("state"),
        state: json!({
            "env_steps": seed * 1000,
            "rng": rng,
            "schedule": {"lr": 3e-4, "position": 0.1 + 0.2},
            "obs_norm": {"mean": [0.5, -1e-12], "count": 12345},
        }),
    }
}

fn named(layer: &Linear) -> Vec<hlynr_nn::NamedParam<'_>> {
    let mut out = Vec::new();
    layer.params("", &mut out);
    out
}

fn sorted(mut p: CheckpointPayload) -> CheckpointPayload {
    p.model.sort_by(|a, b| a.0.cmp(&b.0));
    p
}

fn flip_byte(path: &Path, at: usize) {
    let mut b = std::fs::read(path).expect("read");
    let i = at.min(b.len() - 1);
    b[i] ^= 0x01;
    std::fs::write(path, b).expect("write");
}

#[test]
fn write_read_round_trip_is_exact() {
    let dir = scratch_dir("roundtrip");
    let p = payload(7);
    let path = write_checkpoint(&dir, &step_dir_name(7000), 7000, &p).expect("write");
    assert_eq!(path, dir.join("step-000007000"));
    for f in [MODEL_FILE, OPTIMIZER_FILE, STATE_FILE] {
        assert!(path.join(f).is_file(), "{f}");
    }
    let c = read_checkpoint(&path).expect("read");
    assert_eq!(c.env_steps, 7000);
    assert_eq!(c.payload, sorted(p.clone()));
    // The optimizer restores and continues exactly.
    let a = Adam::from_state(&c.payload.optimizer).expect("restorable");
    assert_eq!(a.state().expect("state"), p.optimizer);
    // No temporary directories are left behind.
    let names: Vec<String> = std::fs::read_dir(&dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["step-000007000".to_string()]);
}

#[test]
fn model_file_loads_as_plain_safetensors() {
    let dir = scratch_dir("plain");
    let p = payload(3);
    let path = write_checkpoint(&dir, "best", 3000, &p).expect("write");
    let st = hlynr_nn::load_safetensors(&path.join(MODEL_FILE)).expect("safetensors");
    assert_eq!(st.metadata.get("format").map(String::as_str), Some("pt"));
    assert_eq!(st.tensors["num_batches_tracked"].dtype(), "I64");
    assert_eq!(st.tensors["weight"].shape(), &[2, 3]);
}

#[test]
fn corrupting_any_file_fails_clearly_and_falls_back() {
    for (file, offsets) in [
        (MODEL_FILE, vec![3usize, 40, 100_000]),
        (OPTIMIZER_FILE, vec![5, 60, 100_000]),
        (STATE_FILE, vec![0, 30, 200, 100_000]),
    ] {
        for at in offsets {
            let dir = scratch_dir("corrupt");
            let manager = CheckpointManager::new(&dir, None).expect("manager");
            let older = payload(1);
            let newer = payload(2);
            manager.save(1000, &older, None).expect("save 1000");
            let newest = manager.save(2000, &newer, None).expect("save 2000");
            // Damage the newest step checkpoint and `last` (its copy).
            flip_byte(&newest.join(file), at);
            flip_byte(&dir.join(LAST).join(file), at);

            let err = read_checkpoint(&newest).expect_err("corruption must be detected");
            let msg = err.to_string();
            assert!(
                msg.contains(file),
                "{file}@{at}: message names the file: {msg}"
            );

            let rec = latest_valid_checkpoint(&dir).expect("search");
            let found = rec.checkpoint.expect("falls back to an older checkpoint");
            assert_eq!(found.env_steps, 1000, "{file}@{at}");
            assert_eq!(found.payload, sorted(older));
            let rejected: Vec<&Path> = rec.rejected.iter().map(|r| r.path.as_path()).collect();
            assert!(rejected.contains(&dir.join(LAST).as_path()), "{rejected:?}");
            assert!(rejected.contains(&newest.as_path()), "{rejected:?}");
            assert!(rec.rejected.iter().all(|r| r.reason.contains(file)));
        }
    }
}

#[test]
fn missing_or_truncated_files_are_rejected() {
    let dir = scratch_dir("missing");
    let path = write_checkpoint(&dir, "step-000000005", 5, &payload(5)).expect("write");
    std::fs::remove_file(path.join(OPTIMIZER_FILE)).expect("rm");
    let err = read_checkpoint(&path).expect_err("missing file");
    assert!(err.to_string().contains(OPTIMIZER_FILE), "{err}");

    let path = write_checkpoint(&dir, "step-000000006", 6, &payload(6)).expect("write");
    let bytes = std::fs::read(path.join(MODEL_FILE)).expect("read");
    std::fs::write(path.join(MODEL_FILE), &bytes[..bytes.len() - 4]).expect("truncate");
    let err = read_checkpoint(&path).expect_err("truncated");
    assert!(err.to_string().contains("truncated"), "{err}");

    // A directory name that disagrees with the recorded steps is rejected.
    let path = write_checkpoint(&dir, "step-000000009", 8, &payload(8)).expect("write");
    let rec = latest_valid_checkpoint(&dir).expect("search");
    assert!(rec.checkpoint.is_none());
    assert!(
        rec.rejected
            .iter()
            .any(|r| r.path == path && r.reason.contains("directory name")),
        "{:?}",
        rec.rejected
    );
}

#[test]
fn optimizer_state_of_another_network_is_rejected() {
    let dir = scratch_dir("mismatch");
    let mut p = payload(4);
    // Model from a differently shaped layer; optimizer from the original.
    let mut rng = Rng::seed_from_u64(9);
    let other = Linear::new(5, 2, &mut rng);
    p.model = CheckpointPayload::model_from_params(&named(&other));
    let path = write_checkpoint(&dir, "last", 1, &p).expect("write");
    let err = read_checkpoint(&path).expect_err("shape mismatch");
    assert!(err.to_string().contains("shape"), "{err}");
}

#[test]
fn crash_leftovers_never_corrupt_last_or_best() {
    let dir = scratch_dir("crash");
    let good = payload(1);
    let newer = payload(2);
    write_checkpoint(&dir, LAST, 1000, &good).expect("last");
    write_checkpoint(&dir, BEST, 1000, &good).expect("best");

    // 1. Crash while writing into a temporary directory (another process):
    //    a half-written `.tmp-` dir with garbage.
    let tmp = dir.join(".tmp-last-999999999");
    std::fs::create_dir(&tmp).expect("tmp");
    std::fs::write(tmp.join(MODEL_FILE), b"half").expect("half");
    let rec = latest_valid_checkpoint(&dir).expect("search");
    assert_eq!(
        rec.checkpoint.expect("last intact").payload,
        sorted(good.clone())
    );
    assert!(!tmp.exists(), "partial write removed");

    // 2. Crash after `best.new` was complete but before the swap: the new
    //    copy wins, and `best` is always complete.
    let staging = scratch_dir("staging");
    let complete_new = write_checkpoint(&staging, "x", 2000, &newer).expect("stage");
    std::fs::rename(&complete_new, dir.join("best.new")).expect("mv");
    let repairs = recover_interrupted_writes(&dir).expect("recover");
    assert_eq!(repairs.len(), 1, "{repairs:?}");
    let best = read_checkpoint(&dir.join(BEST)).expect("best valid");
    assert_eq!(best.env_steps, 2000);
    assert!(!dir.join("best.new").exists() && !dir.join("best.old").exists());

    // 3. Crash between moving `last` to `last.old` and renaming `last.new`:
    //    no `last`, both copies present; the new one is installed.
    let staged = write_checkpoint(&staging, "y", 2000, &newer).expect("stage");
    std::fs::rename(dir.join(LAST), dir.join("last.old")).expect("mv aside");
    std::fs::rename(&staged, dir.join("last.new")).expect("mv new");
    let rec = latest_valid_checkpoint(&dir).expect("search");
    assert_eq!(rec.checkpoint.expect("valid").env_steps, 2000);
    assert!(dir.join(LAST).is_dir());
    assert!(!dir.join("last.old").exists() && !dir.join("last.new").exists());

    // 4. Crash after the swap, before deleting `.old`: the old copy goes.
    let staged = write_checkpoint(&staging, "z", 1000, &good).expect("stage");
    std::fs::rename(&staged, dir.join("last.old")).expect("mv old");
    recover_interrupted_writes(&dir).expect("recover");
    assert_eq!(
        read_checkpoint(&dir.join(LAST)).expect("last").env_steps,
        2000
    );
    assert!(!dir.join("last.old").exists());

    // 5. Only `.old` survived (the rename into place never happened and the
    //    new copy is gone): it is moved back, never lost.
    std::fs::rename(dir.join(LAST), dir.join("last.old")).expect("mv aside");
    recover_interrupted_writes(&dir).expect("recover");
    assert_eq!(
        read_checkpoint(&dir.join(LAST)).expect("last").env_steps,
        2000
    );

    // 6. Writing over an existing checkpoint replaces it completely.
    write_checkpoint(&dir, LAST, 3000, &payload(3)).expect("overwrite");
    assert_eq!(
        read_checkpoint(&dir.join(LAST)).expect("last").env_steps,
        3000
    );
}

#[test]
fn keep_last_n_prunes_only_step_checkpoints() {
    let dir = scratch_dir("prune");
    let manager = CheckpointManager::new(&dir, Some(2)).expect("manager");
    let p = payload(1);
    manager.save_best(1000, &p).expect("best");
    for step in [1000u64, 2000, 3000, 4000, 5000] {
        let path = manager.save(step, &p, None).expect("save");
        assert_eq!(path, dir.join(step_dir_name(step)));
    }
    let steps: Vec<u64> = step_checkpoints(&dir)
        .expect("list")
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    assert_eq!(steps, vec![4000, 5000]);
    assert_eq!(
        read_checkpoint(&dir.join(LAST)).expect("last").env_steps,
        5000
    );
    assert_eq!(
        read_checkpoint(&dir.join(BEST)).expect("best").env_steps,
        1000
    );

    // Explicit pruning to 0 leaves last and best alone.
    let removed = prune_step_checkpoints(&dir, 0).expect("prune");
    assert_eq!(removed.len(), 2);
    let rec = latest_valid_checkpoint(&dir).expect("search");
    assert_eq!(rec.checkpoint.expect("last").env_steps, 5000);

    // keep_last_n = 0 writes no step dirs at all.
    let dir0 = scratch_dir("prune0");
    let m0 = CheckpointManager::new(&dir0, Some(0)).expect("manager");
    let path = m0.save(10, &p, None).expect("save");
    assert_eq!(path, dir0.join(LAST));
    assert!(step_checkpoints(&dir0).expect("list").is_empty());
}

#[test]
fn newest_step_wins_over_an_older_last() {
    // A crash between writing step-N and updating `last` leaves `last`
    // older; resume must use the newer valid step checkpoint.
    let dir = scratch_dir("newer-step");
    write_checkpoint(&dir, LAST, 1000, &payload(1)).expect("last");
    write_checkpoint(&dir, &step_dir_name(1000), 1000, &payload(1)).expect("s1");
    write_checkpoint(&dir, &step_dir_name(2000), 2000, &payload(2)).expect("s2");
    let rec = latest_valid_checkpoint(&dir).expect("search");
    assert_eq!(rec.checkpoint.expect("valid").env_steps, 2000);
    assert!(rec.rejected.is_empty());
}

#[test]
fn duplicate_model_names_and_bad_checkpoint_names_are_errors() {
    let dir = scratch_dir("names");
    let mut p = payload(1);
    let first = p.model[0].clone();
    p.model.push(first);
    let err = write_checkpoint(&dir, LAST, 1, &p).expect_err("duplicate");
    assert!(err.to_string().contains("twice"), "{err}");
    for bad in ["", "../x", "last.new", ".tmp-a"] {
        assert!(
            write_checkpoint(&dir, bad, 1, &payload(1)).is_err(),
            "{bad}"
        );
    }
}

/// A replay buffer's worth of bytes, produced in pieces as a learner would
/// stream it.
struct Replay {
    seed: u64,
    bytes: usize,
}

impl hlynr_rl::checkpoint::ResumeFiles for Replay {
    fn names(&self) -> Vec<String> {
        vec!["replay.bin".into(), "priorities.bin".into()]
    }
    fn write(&self, name: &str, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        let mut rng = Rng::seed_from_u64(self.seed ^ name.len() as u64);
        let mut chunk = vec![0u8; 4096];
        let mut left = self.bytes;
        while left > 0 {
            let n = left.min(chunk.len());
            for b in &mut chunk[..n] {
                *b = rng.below(256) as u8;
            }
            out.write_all(&chunk[..n])?;
            left -= n;
        }
        Ok(())
    }
}

fn replay_bytes(replay: &Replay, name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    hlynr_rl::checkpoint::ResumeFiles::write(replay, name, &mut out).expect("write");
    out
}

#[test]
fn resume_files_are_written_once_verified_and_never_in_best() {
    use std::os::unix::fs::MetadataExt;
    let dir = scratch_dir("resume-files");
    let manager = CheckpointManager::new(&dir, Some(1)).expect("manager");
    let p = payload(3);
    let first = Replay {
        seed: 1,
        bytes: 1 << 20,
    };
    manager.save(1000, &p, Some(&first)).expect("save");
    manager.save_best(1000, &p).expect("best");
    let second = Replay {
        seed: 2,
        bytes: 300_000,
    };
    let step = manager.save(2000, &p, Some(&second)).expect("save");

    // step-2000 holds the files; last/ holds links to the same bytes on
    // disk (one write); best/ has none.
    let resume = |d: &Path, n: &str| d.join("resume").join(n);
    for name in ["replay.bin", "priorities.bin"] {
        let (a, b) = (resume(&step, name), resume(&dir.join(LAST), name));
        assert_eq!(
            a.metadata().expect("step file").ino(),
            b.metadata().expect("last file").ino(),
            "{name} was written twice"
        );
        assert_eq!(
            std::fs::read(&a).expect("read"),
            replay_bytes(&second, name)
        );
    }
    assert!(!dir.join(BEST).join("resume").exists());
    let best = read_checkpoint(&dir.join(BEST)).expect("best");
    assert!(best.resume_files.is_empty());
    // step-1000 was pruned (keep 1); last's links survive it.
    assert!(!dir.join(step_dir_name(1000)).exists());
    let last = read_checkpoint(&dir.join(LAST)).expect("last");
    assert_eq!(
        last.resume_files.keys().collect::<Vec<_>>(),
        vec!["priorities.bin", "replay.bin"]
    );

    // A flipped byte in a resume file is caught, and the search falls back.
    let path = resume(&step, "replay.bin");
    let mut bytes = std::fs::read(&path).expect("read");
    bytes[123_456] ^= 1;
    std::fs::remove_file(&path).expect("unlink");
    std::fs::write(&path, &bytes).expect("write");
    let e = read_checkpoint(&step).expect_err("corrupt").to_string();
    assert!(
        e.contains("replay.bin") && e.contains("checksum mismatch"),
        "{e}"
    );
    // `last` has its own link to the unflipped bytes (the flip replaced the
    // step's link with a new file), so it is still good.
    let rec = latest_valid_checkpoint(&dir).expect("search");
    assert_eq!(rec.checkpoint.expect("last").path, dir.join(LAST));

    // Names that could escape the directory are refused before anything is written.
    struct Escaping;
    impl hlynr_rl::checkpoint::ResumeFiles for Escaping {
        fn names(&self) -> Vec<String> {
            vec!["../model.safetensors".into()]
        }
        fn write(&self, _: &str, _: &mut dyn std::io::Write) -> std::io::Result<()> {
            Ok(())
        }
    }
    let e = manager
        .save(3000, &p, Some(&Escaping))
        .expect_err("escaping name")
        .to_string();
    assert!(e.contains("not a plain file name"), "{e}");
    struct Twice;
    impl hlynr_rl::checkpoint::ResumeFiles for Twice {
        fn names(&self) -> Vec<String> {
            vec!["a.bin".into(), "a.bin".into()]
        }
        fn write(&self, _: &str, _: &mut dyn std::io::Write) -> std::io::Result<()> {
            Ok(())
        }
    }
    let e = manager
        .save(3000, &p, Some(&Twice))
        .expect_err("a name twice")
        .to_string();
    assert!(e.contains("`a.bin` is listed twice"), "{e}");
    assert_eq!(
        read_checkpoint(&dir.join(LAST)).expect("last").env_steps,
        2000
    );
}
