//! Reading and writing weights in the safetensors format, with PyTorch names,
//! so `safetensors.torch.load_file` + `load_state_dict` reads what we write and
//! we read what PyTorch writes.
//!
//! Format: an unsigned 64-bit little-endian header length `n`; `n` bytes of UTF-8
//! JSON mapping each tensor name to `{"dtype", "shape", "data_offsets": [begin,
//! end]}` plus an optional `"__metadata__"` map of strings to strings; then the
//! data buffer, little-endian, offsets relative to its start. Tensors tile the
//! buffer exactly: sorted by offset, each starts where the previous ends.
//!
//! Values are `F32`; counters ([`ParamKind::Counter`], e.g. BatchNorm's
//! `num_batches_tracked`) are `I64`, as PyTorch stores them. Parsing checks every
//! length, offset and size before touching the data, so a truncated or
//! corrupted file is an error naming the problem, never a panic. Files are
//! written atomically: a temporary file in the same directory is written,
//! flushed to disk, then renamed over the target, so a crash mid-write leaves
//! the previous file intact.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Map, Value};

use crate::error::{NnError, Result};
use crate::param::{NamedParam, NamedParamMut, ParamKind};
use crate::tensor::Tensor;

/// Largest header accepted (the reference implementation's limit), so a
/// corrupt length cannot make us allocate gigabytes.
const MAX_HEADER_BYTES: u64 = 100_000_000;

/// The metadata key of the header.
const METADATA_KEY: &str = "__metadata__";

/// A tensor to write.
#[derive(Clone, Copy, Debug)]
pub enum TensorEntry<'a> {
    /// Written as `F32`.
    F32(&'a Tensor),
    /// Written as `I64`; every value must be an integer (counters are kept in
    /// `f32` in memory).
    I64(&'a Tensor),
}

/// A tensor read from a file.
#[derive(Clone, Debug, PartialEq)]
pub enum Loaded {
    /// An `F32` tensor.
    F32(Tensor),
    /// An `I64` tensor (counters).
    I64 {
        /// Shape.
        shape: Vec<usize>,
        /// Values, row-major.
        values: Vec<i64>,
    },
}

impl Loaded {
    /// The safetensors dtype name.
    pub fn dtype(&self) -> &'static str {
        match self {
            Loaded::F32(_) => "F32",
            Loaded::I64 { .. } => "I64",
        }
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        match self {
            Loaded::F32(t) => t.shape(),
            Loaded::I64 { shape, .. } => shape,
        }
    }
}

/// The contents of a safetensors file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SafeTensors {
    /// Tensors by name.
    pub tensors: BTreeMap<String, Loaded>,
    /// The `__metadata__` map (empty when absent).
    pub metadata: BTreeMap<String, String>,
}

/// What [`load_into`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Parameters set from the file.
    pub loaded: Vec<String>,
    /// Parameters the file lacks (always empty after a strict load).
    pub missing: Vec<String>,
    /// Tensors in the file no parameter asked for (empty after a strict load).
    pub unexpected: Vec<String>,
}

/// Size in bytes of one element of every dtype the format defines, so files
/// holding types we do not load are still validated and reported by name.
fn dtype_size(dtype: &str) -> Option<usize> {
    Some(match dtype {
        "BOOL" | "U8" | "I8" | "F8_E5M2" | "F8_E4M3" => 1,
        "I16" | "U16" | "F16" | "BF16" => 2,
        "I32" | "U32" | "F32" => 4,
        "I64" | "U64" | "F64" => 8,
        _ => return None,
    })
}

fn io_err(source: &str, message: impl Into<String>) -> NnError {
    NnError::Io {
        path: source.to_string(),
        message: message.into(),
    }
}

/// Encodes tensors and metadata as safetensors bytes. Entries are laid out with
/// 8-byte types first, then by name; the header is padded with spaces so the
/// data buffer starts 8-byte aligned.
pub fn serialize(
    entries: &[(String, TensorEntry<'_>)],
    metadata: &BTreeMap<String, String>,
) -> Result<Vec<u8>> {
    let mut order: Vec<usize> = (0..entries.len()).collect();
    let is_i64 = |e: &TensorEntry<'_>| matches!(e, TensorEntry::I64(_));
    order.sort_by(|&a, &b| {
        (!is_i64(&entries[a].1), &entries[a].0).cmp(&(!is_i64(&entries[b].1), &entries[b].0))
    });
    let mut names = BTreeSet::new();
    let mut header = Map::new();
    if !metadata.is_empty() {
        let m: Map<String, Value> = metadata
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        header.insert(METADATA_KEY.to_string(), Value::Object(m));
    }
    let mut data = Vec::new();
    for &i in &order {
        let (name, entry) = &entries[i];
        if name == METADATA_KEY || !names.insert(name.as_str()) {
            return Err(NnError::invalid(
                "safetensors serialize",
                format!("tensor name `{name}` is reserved or given twice"),
            ));
        }
        let begin = data.len();
        let (dtype, tensor) = match entry {
            TensorEntry::F32(t) => {
                for &v in t.data() {
                    data.extend_from_slice(&v.to_le_bytes());
                }
                ("F32", t)
            }
            TensorEntry::I64(t) => {
                for (j, &v) in t.data().iter().enumerate() {
                    if !(v.is_finite() && v.fract() == 0.0) {
                        return Err(NnError::invalid(
                            "safetensors serialize",
                            format!("I64 tensor `{name}` holds non-integer {v} at index {j}"),
                        ));
                    }
                    data.extend_from_slice(&(v as i64).to_le_bytes());
                }
                ("I64", t)
            }
        };
        let mut desc = Map::new();
        desc.insert("dtype".into(), Value::from(dtype));
        desc.insert("shape".into(), Value::from(tensor.shape().to_vec()));
        desc.insert(
            "data_offsets".into(),
            Value::from(vec![begin as u64, data.len() as u64]),
        );
        header.insert(name.clone(), Value::Object(desc));
    }
    let mut json = serde_json::to_vec(&Value::Object(header))
        .map_err(|e| NnError::invalid("safetensors serialize", e.to_string()))?;
    while (8 + json.len()) % 8 != 0 {
        json.push(b' ');
    }
    let mut out = Vec::with_capacity(8 + json.len() + data.len());
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(&json);
    out.extend_from_slice(&data);
    Ok(out)
}

/// One validated header entry.
struct Entry {
    name: String,
    dtype: String,
    shape: Vec<usize>,
    begin: usize,
    end: usize,
}

fn parse_entry(source: &str, name: &str, value: &Value, buffer_len: usize) -> Result<Entry> {
    let bad = |msg: String| io_err(source, format!("tensor `{name}`: {msg}"));
    let obj = value
        .as_object()
        .ok_or_else(|| bad("header entry is not an object".into()))?;
    let dtype = obj
        .get("dtype")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("missing or non-string `dtype`".into()))?;
    let size = dtype_size(dtype).ok_or_else(|| bad(format!("unknown dtype `{dtype}`")))?;
    let shape: Vec<usize> = obj
        .get("shape")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("missing or non-array `shape`".into()))?
        .iter()
        .map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok()))
        .collect::<Option<_>>()
        .ok_or_else(|| bad("`shape` must hold non-negative integers".into()))?;
    let offsets: Vec<usize> = obj
        .get("data_offsets")
        .and_then(Value::as_array)
        .filter(|a| a.len() == 2)
        .ok_or_else(|| bad("`data_offsets` must be [begin, end]".into()))?
        .iter()
        .map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok()))
        .collect::<Option<_>>()
        .ok_or_else(|| bad("`data_offsets` must hold non-negative integers".into()))?;
    let (begin, end) = (offsets[0], offsets[1]);
    if begin > end || end > buffer_len {
        return Err(bad(format!(
            "data_offsets [{begin}, {end}] out of range for a data buffer of {buffer_len} bytes"
        )));
    }
    let nbytes = shape
        .iter()
        .try_fold(size, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| bad(format!("shape {shape:?} overflows")))?;
    if nbytes != end - begin {
        return Err(bad(format!(
            "{dtype} shape {shape:?} needs {nbytes} bytes but data_offsets [{begin}, {end}] span {}",
            end - begin
        )));
    }
    Ok(Entry {
        name: name.to_string(),
        dtype: dtype.to_string(),
        shape,
        begin,
        end,
    })
}

/// Parses safetensors bytes; `source` names the file in errors.
pub fn deserialize(bytes: &[u8], source: &str) -> Result<SafeTensors> {
    let len_bytes: [u8; 8] = bytes
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| {
            io_err(
                source,
                format!(
                    "file of {} bytes is too short for a safetensors header length",
                    bytes.len()
                ),
            )
        })?;
    let header_len = u64::from_le_bytes(len_bytes);
    let available = (bytes.len() - 8) as u64;
    if header_len > MAX_HEADER_BYTES || header_len > available {
        return Err(io_err(
            source,
            format!(
                "header length {header_len} is larger than the {available} bytes after it (truncated or not a safetensors file)"
            ),
        ));
    }
    let header_end = 8 + header_len as usize;
    let header_text = std::str::from_utf8(&bytes[8..header_end])
        .map_err(|e| io_err(source, format!("header is not valid UTF-8: {e}")))?;
    let header: Map<String, Value> = serde_json::from_str(header_text)
        .map_err(|e| io_err(source, format!("header is not a JSON object: {e}")))?;
    let buffer = &bytes[header_end..];

    let mut metadata = BTreeMap::new();
    let mut entries = Vec::new();
    for (name, value) in &header {
        if name == METADATA_KEY {
            let m = value
                .as_object()
                .ok_or_else(|| io_err(source, "`__metadata__` is not an object"))?;
            for (k, v) in m {
                let s = v
                    .as_str()
                    .ok_or_else(|| io_err(source, format!("metadata `{k}` is not a string")))?;
                metadata.insert(k.clone(), s.to_string());
            }
        } else {
            entries.push(parse_entry(source, name, value, buffer.len())?);
        }
    }

    // The tensors must tile the buffer: no overlap, no gap, nothing after.
    let mut layout: Vec<&Entry> = entries.iter().collect();
    layout.sort_by_key(|e| (e.begin, e.end));
    let mut expected = 0usize;
    for e in &layout {
        if e.begin != expected {
            return Err(io_err(
                source,
                format!(
                    "tensor `{}` starts at byte {} of the data buffer but the previous tensor ends at {expected} ({})",
                    e.name,
                    e.begin,
                    if e.begin < expected { "overlap" } else { "gap" }
                ),
            ));
        }
        expected = e.end;
    }
    if expected != buffer.len() {
        return Err(io_err(
            source,
            format!(
                "tensors cover {expected} bytes but the data buffer has {} (truncated or trailing bytes)",
                buffer.len()
            ),
        ));
    }

    let mut tensors = BTreeMap::new();
    for e in entries {
        let raw = &buffer[e.begin..e.end];
        let loaded = match e.dtype.as_str() {
            "F32" => {
                let values = raw
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect();
                Loaded::F32(Tensor::from_vec(&e.shape, values)?)
            }
            "I64" => Loaded::I64 {
                shape: e.shape,
                values: raw
                    .chunks_exact(8)
                    .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                    .collect(),
            },
            other => {
                return Err(io_err(
                    source,
                    format!(
                        "tensor `{}` has dtype {other}; only F32 and I64 are supported",
                        e.name
                    ),
                ));
            }
        };
        tensors.insert(e.name, loaded);
    }
    Ok(SafeTensors { tensors, metadata })
}

/// Writes `bytes` to `path` atomically: temporary file in the same directory,
/// flushed to disk, renamed over `path`, directory entry flushed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let shown = path.display().to_string();
    let file_name = path
        .file_name()
        .ok_or_else(|| io_err(&shown, "not a file path"))?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let tmp = dir.join(format!(
        ".{}.tmp-{}-{}",
        file_name.to_string_lossy(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let write = || -> std::io::Result<()> {
        let mut f = fs::File::create_new(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)?;
        // Make the rename itself durable. Directories cannot be opened for
        // syncing on every platform, so a failure here is not an error.
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        io_err(&shown, format!("cannot write: {e}"))
    })
}

/// Writes named tensors atomically.
pub fn save_entries(
    path: &Path,
    entries: &[(String, TensorEntry<'_>)],
    metadata: &BTreeMap<String, String>,
) -> Result<()> {
    let bytes = serialize(entries, metadata)
        .map_err(|e| io_err(&path.display().to_string(), e.to_string()))?;
    write_atomic(path, &bytes)
}

/// Saves a model's parameters and buffers under their names: counters as
/// `I64`, everything else as `F32`. `metadata` lands in `__metadata__`.
pub fn save_safetensors(
    path: &Path,
    params: &[NamedParam<'_>],
    metadata: &BTreeMap<String, String>,
) -> Result<()> {
    let entries: Vec<(String, TensorEntry<'_>)> = params
        .iter()
        .map(|(name, p)| {
            let entry = match p.kind {
                ParamKind::Counter => TensorEntry::I64(&p.value),
                ParamKind::Trainable | ParamKind::Buffer => TensorEntry::F32(&p.value),
            };
            (name.clone(), entry)
        })
        .collect();
    save_entries(path, &entries, metadata)
}

/// Reads and validates a safetensors file.
pub fn load_safetensors(path: &Path) -> Result<SafeTensors> {
    let shown = path.display().to_string();
    let bytes = fs::read(path).map_err(|e| io_err(&shown, format!("cannot read: {e}")))?;
    deserialize(&bytes, &shown)
}

/// Loads a file into parameters by name. Shape and dtype mismatches are
/// always errors; with `strict`, so are parameters the file lacks and tensors
/// no parameter takes. Every problem is listed in one error, and nothing is
/// changed unless the whole load succeeds.
pub fn load_into(
    params: &mut [NamedParamMut<'_>],
    path: &Path,
    strict: bool,
) -> Result<LoadReport> {
    let file = load_safetensors(path)?;
    apply(params, &file, strict, &path.display().to_string())
}

/// [`load_into`] for contents already read; `source` names them in errors.
pub fn apply(
    params: &mut [NamedParamMut<'_>],
    file: &SafeTensors,
    strict: bool,
    source: &str,
) -> Result<LoadReport> {
    let mut report = LoadReport::default();
    let mut problems = Vec::new();
    let mut wanted = BTreeSet::new();
    for (name, p) in params.iter() {
        wanted.insert(name.as_str());
        match file.tensors.get(name) {
            None => report.missing.push(name.clone()),
            Some(t) => {
                if t.shape() != p.value.shape() {
                    problems.push(format!(
                        "shape mismatch for `{name}`: model expects {:?}, file has {:?}",
                        p.value.shape(),
                        t.shape()
                    ));
                }
                let dtype_ok = match p.kind {
                    ParamKind::Counter => true,
                    ParamKind::Trainable | ParamKind::Buffer => matches!(t, Loaded::F32(_)),
                };
                if !dtype_ok {
                    problems.push(format!(
                        "`{name}` has dtype {} in the file, expected F32",
                        t.dtype()
                    ));
                }
            }
        }
    }
    report.unexpected = file
        .tensors
        .keys()
        .filter(|k| !wanted.contains(k.as_str()))
        .cloned()
        .collect();
    if strict {
        if !report.missing.is_empty() {
            problems.push(format!("missing tensors: {}", report.missing.join(", ")));
        }
        if !report.unexpected.is_empty() {
            problems.push(format!(
                "unexpected tensors: {}",
                report.unexpected.join(", ")
            ));
        }
    }
    if !problems.is_empty() {
        return Err(io_err(
            source,
            format!("cannot load: {}", problems.join("; ")),
        ));
    }
    for (name, p) in params.iter_mut() {
        if let Some(t) = file.tensors.get(name) {
            match t {
                Loaded::F32(t) => p.value.data_mut().copy_from_slice(t.data()),
                Loaded::I64 { values, .. } => {
                    for (d, &v) in p.value.data_mut().iter_mut().zip(values) {
                        *d = v as f32;
                    }
                }
            }
            report.loaded.push(name.clone());
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::param::Param;

    fn sample_params() -> Vec<(String, Param)> {
        vec![
            (
                "0.weight".into(),
                Param::trainable(
                    Tensor::from_vec(&[2, 3], vec![1.0, -2.0, 3.5, 0.0, 1e-20, -7.25]).unwrap(),
                ),
            ),
            (
                "0.bias".into(),
                Param::trainable(Tensor::from_vec(&[2], vec![0.5, -0.5]).unwrap()),
            ),
            (
                "1.running_mean".into(),
                Param::buffer(Tensor::from_vec(&[3], vec![0.1, 0.2, 0.3]).unwrap()),
            ),
            ("1.num_batches_tracked".into(), Param::counter(12345.0)),
        ]
    }

    fn sample_bytes() -> Vec<u8> {
        let ps = sample_params();
        let entries: Vec<(String, TensorEntry<'_>)> = ps
            .iter()
            .map(|(n, p)| {
                let e = if p.kind == ParamKind::Counter {
                    TensorEntry::I64(&p.value)
                } else {
                    TensorEntry::F32(&p.value)
                };
                (n.clone(), e)
            })
            .collect();
        let mut meta = BTreeMap::new();
        meta.insert("format".to_string(), "pt".to_string());
        serialize(&entries, &meta).unwrap()
    }

    #[test]
    fn round_trip_preserves_values_kinds_and_metadata() {
        let bytes = sample_bytes();
        assert_eq!(
            (u64::from_le_bytes(bytes[..8].try_into().unwrap()) + 8) % 8,
            0
        );
        let file = deserialize(&bytes, "mem").unwrap();
        assert_eq!(file.metadata["format"], "pt");
        assert_eq!(
            file.tensors["1.num_batches_tracked"],
            Loaded::I64 {
                shape: vec![],
                values: vec![12345]
            }
        );
        let mut fresh: Vec<(String, Param)> = sample_params()
            .into_iter()
            .map(|(n, mut p)| {
                p.value.fill_zero();
                (n, p)
            })
            .collect();
        let mut named: Vec<NamedParamMut<'_>> =
            fresh.iter_mut().map(|(n, p)| (n.clone(), p)).collect();
        let report = apply(&mut named, &file, true, "mem").unwrap();
        assert_eq!(report.loaded.len(), 4);
        for ((_, a), (_, b)) in fresh.iter().zip(sample_params().iter()) {
            assert_eq!(a.value, b.value);
        }
    }

    #[test]
    fn file_round_trip_is_atomic_and_leaves_no_temporaries() {
        let dir = std::env::temp_dir().join(format!("hlynr-io-test-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("model.safetensors");
        let ps = sample_params();
        let named: Vec<NamedParam<'_>> = ps.iter().map(|(n, p)| (n.clone(), p)).collect();
        save_safetensors(&path, &named, &BTreeMap::new()).unwrap();
        save_safetensors(&path, &named, &BTreeMap::new()).unwrap();
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        let file = load_safetensors(&path).unwrap();
        assert_eq!(file.tensors.len(), 4);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn load_into_names_every_missing_unexpected_and_mismatched_tensor() {
        let file = deserialize(&sample_bytes(), "weights.safetensors").unwrap();
        let mut w = Param::trainable(Tensor::zeros(&[3, 2]));
        let mut extra = Param::trainable(Tensor::zeros(&[4]));
        let mut bias = Param::trainable(Tensor::zeros(&[2]));
        let mut named: Vec<NamedParamMut<'_>> = vec![
            ("0.weight".into(), &mut w),
            ("2.weight".into(), &mut extra),
            ("0.bias".into(), &mut bias),
        ];
        let e = apply(&mut named, &file, true, "weights.safetensors")
            .unwrap_err()
            .to_string();
        for needle in [
            "weights.safetensors",
            "`0.weight`",
            "[3, 2]",
            "[2, 3]",
            "missing tensors: 2.weight",
            "1.running_mean",
            "1.num_batches_tracked",
        ] {
            assert!(e.contains(needle), "`{needle}` not in: {e}");
        }
        assert_eq!(
            bias.value.data(),
            &[0.0, 0.0],
            "failed load must change nothing"
        );
        // Non-strict: shape mismatch is still an error; without it, missing and
        // unexpected are reported, not fatal.
        let mut bias2 = Param::trainable(Tensor::zeros(&[2]));
        let mut extra2 = Param::trainable(Tensor::zeros(&[4]));
        let mut named: Vec<NamedParamMut<'_>> =
            vec![("0.bias".into(), &mut bias2), ("9.x".into(), &mut extra2)];
        let r = apply(&mut named, &file, false, "w").unwrap();
        assert_eq!(r.missing, ["9.x"]);
        assert_eq!(r.unexpected.len(), 3);
        assert_eq!(bias2.value.data(), &[0.5, -0.5]);
    }

    fn with_header(header: &str, data: &[u8]) -> Vec<u8> {
        let mut b = (header.len() as u64).to_le_bytes().to_vec();
        b.extend_from_slice(header.as_bytes());
        b.extend_from_slice(data);
        b
    }

    #[test]
    fn corrupt_files_are_clear_errors_never_panics() {
        let good = sample_bytes();
        // Every truncation fails.
        for cut in 0..good.len() {
            assert!(
                deserialize(&good[..cut], "t").is_err(),
                "truncated at {cut} parsed"
            );
        }
        // Trailing garbage fails.
        let mut long = good.clone();
        long.push(0);
        assert!(
            deserialize(&long, "t")
                .unwrap_err()
                .to_string()
                .contains("trailing")
        );
        // Every single-byte corruption is an error or a valid parse, never a panic.
        for i in 0..good.len() {
            for v in [0u8, 0xff, b'"', b'}', b'9', b'-', 0x80] {
                let mut b = good.clone();
                b[i] = v;
                let _ = deserialize(&b, "t");
            }
        }
        let f8 = [0u8; 8];
        let cases: Vec<(Vec<u8>, &str)> = vec![
            ((u64::MAX).to_le_bytes().to_vec(), "header length"),
            (with_header("{\"a\": 1", &[]), "JSON"),
            (with_header("[1, 2]", &[]), "JSON object"),
            (
                {
                    let mut b = 2u64.to_le_bytes().to_vec();
                    b.extend_from_slice(&[0xc3, 0x28]);
                    b
                },
                "UTF-8",
            ),
            (
                with_header(
                    r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,16]}}"#,
                    &f8,
                ),
                "out of range",
            ),
            (
                with_header(
                    r#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#,
                    &f8,
                ),
                "needs 12 bytes",
            ),
            (
                with_header(
                    r#"{"a":{"dtype":"Q7","shape":[2],"data_offsets":[0,8]}}"#,
                    &f8,
                ),
                "unknown dtype",
            ),
            (
                with_header(
                    r#"{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}"#,
                    &f8,
                ),
                "non-negative",
            ),
            (
                with_header(
                    r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}"#,
                    &f8,
                ),
                "out of range",
            ),
            (
                with_header(
                    r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
                    &f8,
                ),
                "overlap",
            ),
            (
                with_header(
                    r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
                    &f8,
                ),
                "gap",
            ),
            (
                with_header(r#"{"a":{"dtype":"F32","shape":[2]}}"#, &f8),
                "data_offsets",
            ),
            (
                with_header(r#"{"__metadata__":{"k":3}}"#, &[]),
                "metadata `k`",
            ),
            (
                with_header(
                    r#"{"a":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,8]}}"#,
                    &f8,
                ),
                "overflows",
            ),
            (
                with_header(
                    r#"{"a":{"dtype":"F16","shape":[4],"data_offsets":[0,8]}}"#,
                    &f8,
                ),
                "only F32 and I64",
            ),
        ];
        for (bytes, needle) in cases {
            let e = deserialize(&bytes, "bad.safetensors")
                .unwrap_err()
                .to_string();
            assert!(
                e.contains(needle) && e.contains("bad.safetensors"),
                "`{needle}` not in: {e}"
            );
        }
    }

    #[test]
    fn serialize_rejects_duplicates_and_non_integer_counters() {
        let t = Tensor::zeros(&[1]);
        let dup = vec![
            ("a".to_string(), TensorEntry::F32(&t)),
            ("a".to_string(), TensorEntry::F32(&t)),
        ];
        assert!(serialize(&dup, &BTreeMap::new()).is_err());
        let half = Tensor::full(&[], 0.5);
        assert!(
            serialize(
                &[("c".to_string(), TensorEntry::I64(&half))],
                &BTreeMap::new()
            )
            .is_err()
        );
    }
}
