//! TensorBoard event files, written and read without TensorFlow.
//!
//! An event file is a sequence of TFRecords. Each record is
//!
//! ```text
//! u64 LE  length
//! u32 LE  masked CRC32C of the 8 length bytes
//! [u8]    data (one serialised `Event` protobuf)
//! u32 LE  masked CRC32C of the data
//! ```
//!
//! where `mask(crc) = ((crc >> 15) | (crc << 17)) + 0xa282ead8` (wrapping).
//! The first record of every file carries `file_version: "brain.Event:2"`.
//! The protobuf messages are encoded by hand; only the fields TensorBoard's
//! scalar and text dashboards read are written:
//!
//! ```text
//! Event           { double wall_time = 1; int64 step = 2;
//!                   oneof { string file_version = 3; Summary summary = 5; } }
//! Summary         { repeated Value value = 1; }
//! Summary.Value   { string tag = 1; float simple_value = 2;
//!                   TensorProto tensor = 8; SummaryMetadata metadata = 9; }
//! SummaryMetadata { PluginData plugin_data = 1; }   PluginData { string plugin_name = 1; }
//! TensorProto     { DataType dtype = 1; TensorShapeProto tensor_shape = 2;
//!                   repeated bytes string_val = 8; }   (DT_STRING = 7, rank 0)
//! ```
//!
//! Scalars are `simple_value` (what SB3 and PyTorch write); text (doctor and
//! checkpoint notes) uses the text plugin's string tensors.
//!
//! A resumed run writes a *new* file in the same directory
//! ([`EventWriter::resume`]); TensorBoard reads all files of a directory in
//! name order (the name starts with the creation time). The new file starts
//! with a `SessionLog { status: START }` event (`Event.session_log = 7`,
//! `SessionLog.status = 1`, `START = 1`) at the checkpoint step + 1, which
//! tells TensorBoard to drop every point at or after that step logged
//! earlier: the points the crashed process wrote after its last checkpoint.
//! The curve then continues without a fork.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::run::{RunError, hostname};

/// The `file_version` of the first record.
pub const FILE_VERSION: &str = "brain.Event:2";

/// `DataType.DT_STRING` in TensorFlow's `types.proto`.
const DT_STRING: u64 = 7;

/// `SessionLog.SessionStatus.START`.
const SESSION_START: u64 = 1;

/// The text dashboard's plugin name.
const TEXT_PLUGIN: &str = "text";

// ---------------------------------------------------------------- CRC32C ----

/// Reflected Castagnoli polynomial 0x1EDC6F41.
const CRC32C_POLY_REFLECTED: u32 = 0x82F6_3B78;

/// The byte-at-a-time lookup table, computed at compile time.
const CRC32C_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ CRC32C_POLY_REFLECTED
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

/// CRC-32C (Castagnoli) of `data`, as TFRecord uses it.
pub fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc = CRC32C_TABLE[((crc ^ u32::from(b)) & 0xFF) as usize] ^ (crc >> 8);
    }
    !crc
}

/// TFRecord's masked CRC: rotating and offsetting keeps a CRC stored inside
/// CRC-protected data from checksumming to a trivial value.
pub fn masked_crc32c(data: &[u8]) -> u32 {
    let crc = crc32c(data);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

// -------------------------------------------------------------- TFRecord ----

/// One TFRecord: the framing around `data`.
pub fn encode_record(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 16);
    let len = (data.len() as u64).to_le_bytes();
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc32c(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc32c(data).to_le_bytes());
    out
}

/// The records of a TFRecord byte stream.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Records {
    /// Payloads of the complete records, in order.
    pub records: Vec<Vec<u8>>,
    /// Bytes at the end that do not form a complete record (a writer that
    /// crashed, or is still writing). 0 for a cleanly closed file.
    pub trailing_partial_bytes: usize,
}

/// Splits a TFRecord stream into records, verifying both CRCs of every
/// complete record. A CRC mismatch is an error naming the record and byte
/// offset; an incomplete final record is reported, not an error.
pub fn decode_records(bytes: &[u8], source: &Path) -> Result<Records, RunError> {
    let mut out = Records::default();
    let mut pos = 0usize;
    while pos < bytes.len() {
        let index = out.records.len();
        let rest = &bytes[pos..];
        if rest.len() < 12 {
            out.trailing_partial_bytes = rest.len();
            break;
        }
        let len_bytes = &rest[..8];
        let stored_len_crc = u32::from_le_bytes([rest[8], rest[9], rest[10], rest[11]]);
        if masked_crc32c(len_bytes) != stored_len_crc {
            return Err(RunError::corrupt(
                source,
                format!("record {index} at byte {pos}: length CRC mismatch"),
            ));
        }
        let len = u64::from_le_bytes(len_bytes.try_into().unwrap_or([0; 8]));
        let needed = 12u64.saturating_add(len).saturating_add(4);
        if (rest.len() as u64) < needed {
            out.trailing_partial_bytes = rest.len();
            break;
        }
        let len = len as usize;
        let data = &rest[12..12 + len];
        let c = &rest[12 + len..16 + len];
        let stored = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        if masked_crc32c(data) != stored {
            return Err(RunError::corrupt(
                source,
                format!("record {index} at byte {pos}: data CRC mismatch ({len} bytes)"),
            ));
        }
        out.records.push(data.to_vec());
        pos += 16 + len;
    }
    Ok(out)
}

// -------------------------------------------------------------- protobuf ----

const WIRE_VARINT: u8 = 0;
const WIRE_FIXED64: u8 = 1;
const WIRE_LEN: u8 = 2;
const WIRE_FIXED32: u8 = 5;

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_key(out: &mut Vec<u8>, field: u32, wire: u8) {
    put_varint(out, (u64::from(field) << 3) | u64::from(wire));
}

fn put_bytes(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_key(out, field, WIRE_LEN);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// One value of a summary.
#[derive(Clone, Debug, PartialEq)]
pub enum SummaryValue {
    /// `simple_value`: a scalar curve point.
    Scalar {
        /// Tag, e.g. `rollout/ep_rew_mean`.
        tag: String,
        /// The value (TensorBoard stores `float`).
        value: f32,
    },
    /// A text-plugin string tensor.
    Text {
        /// Tag, e.g. `events/doctor`.
        tag: String,
        /// Markdown text.
        text: String,
    },
}

impl SummaryValue {
    /// The tag.
    pub fn tag(&self) -> &str {
        match self {
            SummaryValue::Scalar { tag, .. } | SummaryValue::Text { tag, .. } => tag,
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            SummaryValue::Scalar { tag, value } => {
                put_bytes(out, 1, tag.as_bytes());
                put_key(out, 2, WIRE_FIXED32);
                out.extend_from_slice(&value.to_le_bytes());
            }
            SummaryValue::Text { tag, text } => {
                put_bytes(out, 1, tag.as_bytes());
                let mut tensor = Vec::new();
                put_key(&mut tensor, 1, WIRE_VARINT);
                put_varint(&mut tensor, DT_STRING);
                put_bytes(&mut tensor, 2, &[]); // rank-0 shape: no dims
                put_bytes(&mut tensor, 8, text.as_bytes());
                put_bytes(out, 8, &tensor);
                let mut plugin_data = Vec::new();
                put_bytes(&mut plugin_data, 1, TEXT_PLUGIN.as_bytes());
                let mut metadata = Vec::new();
                put_bytes(&mut metadata, 1, &plugin_data);
                put_bytes(out, 9, &metadata);
            }
        }
    }
}

/// What an event carries besides time and step.
#[derive(Clone, Debug, PartialEq)]
pub enum EventBody {
    /// The file header.
    FileVersion(String),
    /// Summary values.
    Summary(Vec<SummaryValue>),
    /// `SessionLog { status: START }`: a restart; TensorBoard discards
    /// earlier points with a step at or after this event's.
    SessionStart {
        /// The checkpoint the session continues from.
        checkpoint_path: String,
    },
    /// Anything else (fields we do not write; kept so readers can skip them).
    Other,
}

/// One `Event` record.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// Seconds since the Unix epoch.
    pub wall_time: f64,
    /// Global step (total env steps in hlynr runs).
    pub step: i64,
    /// The payload.
    pub body: EventBody,
}

impl Event {
    /// The protobuf encoding. Proto3 omits default (zero) scalars, so a zero
    /// wall time or step is not written, exactly as other writers do.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        if self.wall_time.to_bits() != 0 {
            put_key(&mut out, 1, WIRE_FIXED64);
            out.extend_from_slice(&self.wall_time.to_le_bytes());
        }
        if self.step != 0 {
            put_key(&mut out, 2, WIRE_VARINT);
            put_varint(&mut out, self.step as u64);
        }
        match &self.body {
            EventBody::FileVersion(v) => put_bytes(&mut out, 3, v.as_bytes()),
            EventBody::Summary(values) => {
                let mut summary = Vec::new();
                for v in values {
                    let mut value = Vec::new();
                    v.encode(&mut value);
                    put_bytes(&mut summary, 1, &value);
                }
                put_bytes(&mut out, 5, &summary);
            }
            EventBody::SessionStart { checkpoint_path } => {
                let mut log = Vec::new();
                put_key(&mut log, 1, WIRE_VARINT);
                put_varint(&mut log, SESSION_START);
                if !checkpoint_path.is_empty() {
                    put_bytes(&mut log, 2, checkpoint_path.as_bytes());
                }
                put_bytes(&mut out, 7, &log);
            }
            EventBody::Other => {}
        }
        out
    }

    /// Parses an encoded `Event`; unknown fields are skipped.
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        let mut event = Event {
            wall_time: 0.0,
            step: 0,
            body: EventBody::Other,
        };
        for field in Fields::new(bytes) {
            let (number, value) = field?;
            match (number, value) {
                (1, FieldValue::Fixed64(b)) => event.wall_time = f64::from_bits(b),
                (2, FieldValue::Varint(v)) => event.step = v as i64,
                (3, FieldValue::Bytes(b)) => {
                    event.body = EventBody::FileVersion(utf8(b, "Event.file_version")?)
                }
                (5, FieldValue::Bytes(b)) => event.body = EventBody::Summary(decode_summary(b)?),
                (7, FieldValue::Bytes(b)) => {
                    let mut status = 0;
                    let mut checkpoint_path = String::new();
                    for f in Fields::new(b) {
                        match f? {
                            (1, FieldValue::Varint(v)) => status = v,
                            (2, FieldValue::Bytes(p)) => {
                                checkpoint_path = utf8(p, "SessionLog.checkpoint_path")?
                            }
                            _ => {}
                        }
                    }
                    if status == SESSION_START {
                        event.body = EventBody::SessionStart { checkpoint_path };
                    }
                }
                _ => {}
            }
        }
        Ok(event)
    }
}

fn utf8(b: &[u8], what: &str) -> Result<String, String> {
    String::from_utf8(b.to_vec()).map_err(|_| format!("{what} is not UTF-8"))
}

fn decode_summary(bytes: &[u8]) -> Result<Vec<SummaryValue>, String> {
    let mut values = Vec::new();
    for field in Fields::new(bytes) {
        if let (1, FieldValue::Bytes(b)) = field?
            && let Some(v) = decode_value(b)?
        {
            values.push(v);
        }
    }
    Ok(values)
}

/// A `Summary.Value` as a scalar or text; other kinds are skipped (`None`).
fn decode_value(bytes: &[u8]) -> Result<Option<SummaryValue>, String> {
    let mut tag = String::new();
    let mut simple = None;
    let mut strings: Option<Vec<u8>> = None;
    for field in Fields::new(bytes) {
        match field? {
            (1, FieldValue::Bytes(b)) => tag = utf8(b, "Summary.Value.tag")?,
            (2, FieldValue::Fixed32(v)) => simple = Some(f32::from_bits(v)),
            (8, FieldValue::Bytes(tensor)) => {
                let mut dtype = 0;
                let mut text = Vec::new();
                for f in Fields::new(tensor) {
                    match f? {
                        (1, FieldValue::Varint(d)) => dtype = d,
                        (8, FieldValue::Bytes(s)) => text.extend_from_slice(s),
                        _ => {}
                    }
                }
                if dtype == DT_STRING {
                    strings = Some(text);
                }
            }
            _ => {}
        }
    }
    Ok(match (simple, strings) {
        (Some(value), _) => Some(SummaryValue::Scalar { tag, value }),
        (None, Some(text)) => Some(SummaryValue::Text {
            tag,
            text: utf8(&text, "TensorProto.string_val")?,
        }),
        _ => None,
    })
}

enum FieldValue<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32(u32),
}

/// Iterator over the fields of one protobuf message.
struct Fields<'a> {
    bytes: &'a [u8],
    pos: usize,
    failed: bool,
}

impl<'a> Fields<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Fields {
            bytes,
            pos: 0,
            failed: false,
        }
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self
                .bytes
                .get(self.pos)
                .ok_or_else(|| format!("varint runs past the end at byte {}", self.pos))?;
            self.pos += 1;
            v |= u64::from(b & 0x7F) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(format!(
            "varint longer than 10 bytes before byte {}",
            self.pos
        ))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| {
                format!(
                    "field of {n} bytes at byte {} runs past the end ({} bytes)",
                    self.pos,
                    self.bytes.len()
                )
            })?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn field(&mut self) -> Result<(u32, FieldValue<'a>), String> {
        let key = self.varint()?;
        let number = (key >> 3) as u32;
        let value = match (key & 7) as u8 {
            WIRE_VARINT => FieldValue::Varint(self.varint()?),
            WIRE_FIXED64 => {
                let b = self.take(8)?;
                FieldValue::Fixed64(u64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
            }
            WIRE_LEN => {
                let n = self.varint()?;
                let n = usize::try_from(n).map_err(|_| format!("length {n} too large"))?;
                FieldValue::Bytes(self.take(n)?)
            }
            WIRE_FIXED32 => {
                let b = self.take(4)?;
                FieldValue::Fixed32(u32::from_le_bytes(b.try_into().unwrap_or([0; 4])))
            }
            w => return Err(format!("field {number}: unsupported wire type {w}")),
        };
        Ok((number, value))
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u32, FieldValue<'a>), String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.bytes.len() {
            return None;
        }
        let r = self.field();
        self.failed = r.is_err();
        Some(r)
    }
}

// ---------------------------------------------------------------- writer ----

/// Distinguishes files created by one process within one second.
static FILE_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Seconds since the Unix epoch, with sub-second precision.
pub fn wall_time_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Writes one TensorBoard event file.
///
/// Writes are buffered; call [`EventWriter::flush`] at each log interval so a
/// running TensorBoard sees fresh points. Dropping the writer flushes it.
#[derive(Debug)]
pub struct EventWriter {
    path: PathBuf,
    out: BufWriter<File>,
}

impl EventWriter {
    /// Creates a new event file
    /// `dir/events.out.tfevents.<unix_secs>.<hostname>.<pid>.<n>` and writes
    /// its header. Never opens an existing file: a resumed run gets a new one.
    pub fn create(dir: &Path) -> Result<Self, RunError> {
        fs::create_dir_all(dir)
            .map_err(|e| RunError::io(dir, format!("cannot create directory: {e}")))?;
        let now = wall_time_now();
        let host = hostname();
        let pid = std::process::id();
        loop {
            let n = FILE_COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = dir.join(format!(
                "events.out.tfevents.{}.{host}.{pid}.{n}",
                now as u64
            ));
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(file) => {
                    let mut writer = EventWriter {
                        path,
                        out: BufWriter::new(file),
                    };
                    writer.write_event(&Event {
                        wall_time: now,
                        step: 0,
                        body: EventBody::FileVersion(FILE_VERSION.to_string()),
                    })?;
                    writer.flush()?;
                    return Ok(writer);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(RunError::io(&path, format!("cannot create: {e}"))),
            }
        }
    }

    /// A new event file for a run resumed from the checkpoint at
    /// `resume_step`: after the header, a session-start event at
    /// `resume_step + 1` makes TensorBoard discard the points an earlier
    /// process logged after that checkpoint (the step-`resume_step` point
    /// itself is kept).
    pub fn resume(dir: &Path, resume_step: u64, checkpoint_path: &str) -> Result<Self, RunError> {
        let mut writer = Self::create(dir)?;
        writer.write_event(&Event {
            wall_time: wall_time_now(),
            step: step_i64(resume_step.saturating_add(1)),
            body: EventBody::SessionStart {
                checkpoint_path: checkpoint_path.to_string(),
            },
        })?;
        writer.flush()?;
        Ok(writer)
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one event.
    pub fn write_event(&mut self, event: &Event) -> Result<(), RunError> {
        let record = encode_record(&event.encode());
        self.out
            .write_all(&record)
            .map_err(|e| RunError::io(&self.path, format!("cannot write: {e}")))
    }

    /// Writes scalars for `step` at the current wall time, in one event.
    /// Values are stored as `f32`, as TensorBoard does.
    pub fn add_scalars<'a>(
        &mut self,
        step: u64,
        values: impl IntoIterator<Item = (&'a str, f64)>,
    ) -> Result<(), RunError> {
        self.add_scalars_at(step, wall_time_now(), values)
    }

    /// [`EventWriter::add_scalars`] with an explicit wall time.
    pub fn add_scalars_at<'a>(
        &mut self,
        step: u64,
        wall_time: f64,
        values: impl IntoIterator<Item = (&'a str, f64)>,
    ) -> Result<(), RunError> {
        let values: Vec<SummaryValue> = values
            .into_iter()
            .map(|(tag, v)| SummaryValue::Scalar {
                tag: tag.to_string(),
                value: v as f32,
            })
            .collect();
        if values.is_empty() {
            return Ok(());
        }
        self.write_event(&Event {
            wall_time,
            step: step_i64(step),
            body: EventBody::Summary(values),
        })
    }

    /// Writes a text entry (shown in TensorBoard's Text tab) for `step`.
    pub fn add_text(&mut self, step: u64, tag: &str, text: &str) -> Result<(), RunError> {
        self.write_event(&Event {
            wall_time: wall_time_now(),
            step: step_i64(step),
            body: EventBody::Summary(vec![SummaryValue::Text {
                tag: tag.to_string(),
                text: text.to_string(),
            }]),
        })
    }

    /// Pushes buffered records to the file.
    pub fn flush(&mut self) -> Result<(), RunError> {
        self.out
            .flush()
            .map_err(|e| RunError::io(&self.path, format!("cannot flush: {e}")))
    }
}

impl Drop for EventWriter {
    fn drop(&mut self) {
        // Errors cannot be reported from drop; `flush` reports them when
        // called explicitly.
        let _ = self.out.flush();
    }
}

fn step_i64(step: u64) -> i64 {
    i64::try_from(step).unwrap_or(i64::MAX)
}

// ---------------------------------------------------------------- reader ----

/// The events of one file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EventFile {
    /// Events in file order, header included.
    pub events: Vec<Event>,
    /// Bytes of an incomplete final record (0 for a cleanly closed file).
    pub trailing_partial_bytes: usize,
}

impl EventFile {
    /// Every scalar with tag `tag`, as (step, value), in file order.
    pub fn scalars(&self, tag: &str) -> Vec<(i64, f32)> {
        let mut out = Vec::new();
        for e in &self.events {
            if let EventBody::Summary(values) = &e.body {
                for v in values {
                    if let SummaryValue::Scalar { tag: t, value } = v
                        && t == tag
                    {
                        out.push((e.step, *value));
                    }
                }
            }
        }
        out
    }

    /// Every text entry with tag `tag`, as (step, text).
    pub fn texts(&self, tag: &str) -> Vec<(i64, String)> {
        let mut out = Vec::new();
        for e in &self.events {
            if let EventBody::Summary(values) = &e.body {
                for v in values {
                    if let SummaryValue::Text { tag: t, text } = v
                        && t == tag
                    {
                        out.push((e.step, text.clone()));
                    }
                }
            }
        }
        out
    }
}

/// Reads and verifies an event file: every CRC is checked, every record
/// parsed, and the first record must be the file-version header.
pub fn read_event_file(path: &Path) -> Result<EventFile, RunError> {
    let bytes = fs::read(path).map_err(|e| RunError::io(path, format!("cannot read: {e}")))?;
    let records = decode_records(&bytes, path)?;
    let mut events = Vec::with_capacity(records.records.len());
    for (i, r) in records.records.iter().enumerate() {
        let event = Event::decode(r)
            .map_err(|e| RunError::corrupt(path, format!("record {i} is not an Event: {e}")))?;
        events.push(event);
    }
    match events.first().map(|e| &e.body) {
        Some(EventBody::FileVersion(v)) if v.starts_with("brain.Event:") => {}
        None if records.trailing_partial_bytes > 0 || bytes.is_empty() => {}
        _ => {
            return Err(RunError::corrupt(
                path,
                "the first record is not a `brain.Event` file-version header",
            ));
        }
    }
    Ok(EventFile {
        events,
        trailing_partial_bytes: records.trailing_partial_bytes,
    })
}

/// The event files of a directory, in the order TensorBoard reads them.
pub fn event_files_in(dir: &Path) -> Result<Vec<PathBuf>, RunError> {
    let entries =
        fs::read_dir(dir).map_err(|e| RunError::io(dir, format!("cannot list directory: {e}")))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.contains("tfevents"))
        })
        .collect();
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_standard_check_value() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(b""), 0);
        // RFC 3720 B.4: 32 bytes of zeros.
        assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
    }

    #[test]
    fn varints_encode_as_protobuf_does() {
        let mut out = Vec::new();
        put_varint(&mut out, 300);
        assert_eq!(out, [0xAC, 0x02]);
        let mut f = Fields::new(&[0x08, 0xAC, 0x02]);
        match f.next() {
            Some(Ok((1, FieldValue::Varint(300)))) => {}
            _ => panic!("varint 300 not decoded"),
        }
    }
}
