//! Strict configuration loading shared by every hlynr config (scenarios, env
//! and training configs).
//!
//! The pipeline is YAML text -> `serde_json::Value` -> typed struct. Going
//! through a `Value` lets command-line overrides (`--set a.b=1`) edit the fully
//! resolved config (defaults filled in) before the final typed parse, and lets a
//! run write that resolved config to disk. Typed structs use
//! `#[serde(deny_unknown_fields)]`, and deserialisation runs through
//! `serde_path_to_error`, so every error names the full key path
//! (`radar.range_noise_m`); an unknown key also names the closest valid key.
//! Nothing is ever silently ignored.

use std::fmt;
use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use thiserror::Error;

/// Everything that can go wrong while loading or validating a config.
#[derive(Clone, Debug, Error, PartialEq)]
pub enum ConfigError {
    /// The text is not valid YAML.
    #[error("{source_name}: YAML syntax error: {message}")]
    Syntax {
        source_name: String,
        message: String,
    },
    /// A key that the config type does not have.
    #[error("{}", describe_unknown_key(path, suggestion.as_deref(), expected))]
    UnknownKey {
        /// Full path of the offending key, e.g. `radar.range_noise_mm`.
        path: String,
        /// The offending key itself.
        key: String,
        /// The closest valid key at that level, if any is close enough.
        suggestion: Option<String>,
        /// Every valid key at that level.
        expected: Vec<String>,
    },
    /// A value of the wrong type or shape, or otherwise invalid.
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
    /// A numeric value outside its allowed interval.
    #[error("{path} = {value} is out of range {range}")]
    OutOfRange {
        path: String,
        value: f64,
        range: Interval,
    },
    /// A malformed or inapplicable `--set key.path=value` override.
    #[error("--set {spec}: {message}")]
    Override { spec: String, message: String },
    /// A key the config no longer takes at this place: it moved or was renamed.
    #[error("`{from}` is now `{to}`: rename it{}", note_suffix(note))]
    Moved {
        /// The old key path.
        from: String,
        /// The new key path.
        to: String,
        /// Why, or what else changed with it.
        note: String,
    },
    /// An error inside a named file (displayed whole: not a `source`, so an
    /// error chain does not print the inner message twice).
    #[error("{file}: {inner}")]
    InFile {
        file: String,
        inner: Box<ConfigError>,
    },
}

impl ConfigError {
    /// Shorthand for an invalid value at `path`.
    pub fn invalid(path: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            path: display_path(&path.into()),
            message: message.into(),
        }
    }
}

fn display_path(path: &str) -> String {
    if path.is_empty() || path == "." {
        "<root>".to_string()
    } else {
        path.to_string()
    }
}

fn note_suffix(note: &str) -> String {
    if note.is_empty() {
        String::new()
    } else {
        format!(" ({note})")
    }
}

fn describe_unknown_key(path: &str, suggestion: Option<&str>, expected: &[String]) -> String {
    let mut s = format!("unknown key `{path}`");
    if let Some(best) = suggestion {
        s.push_str(&format!("; did you mean `{best}`?"));
    }
    if expected.is_empty() {
        s.push_str(" (this section takes no keys)");
    } else {
        s.push_str(&format!(" (valid keys here: {})", expected.join(", ")));
    }
    s
}

/// Types that check their own values after parsing. `path` is the key path of
/// `self` inside the enclosing config (empty at the root), so errors can name
/// the full path of the offending key.
pub trait Validate {
    /// Checks every value; the first violation is returned.
    fn validate(&self, path: &str) -> Result<(), ConfigError>;

    /// Keys this type used to take and now takes elsewhere: a config that
    /// still has one fails with [`ConfigError::Moved`], naming the new place,
    /// instead of a bare unknown-key error.
    fn moved_keys() -> &'static [MovedKey]
    where
        Self: Sized,
    {
        &[]
    }
}

/// A key that moved: its old and new paths from the config's root.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MovedKey {
    /// The old path, e.g. `ppo.total_timesteps`.
    pub from: &'static str,
    /// The new path, e.g. `total_timesteps`.
    pub to: &'static str,
    /// Why it moved (may be empty).
    pub note: &'static str,
}

impl MovedKey {
    fn error(&self) -> ConfigError {
        ConfigError::Moved {
            from: self.from.into(),
            to: self.to.into(),
            note: self.note.into(),
        }
    }
}

/// Fails with [`ConfigError::Moved`] when `value` has one of the `moved` keys.
pub fn check_moved(value: &Value, moved: &[MovedKey]) -> Result<(), ConfigError> {
    for m in moved {
        let mut node = Some(value);
        for segment in m.from.split('.') {
            node = node.and_then(|n| n.get(segment));
        }
        if node.is_some() {
            return Err(m.error());
        }
    }
    Ok(())
}

/// Fails when the `--set` override `spec` addresses one of the `moved` keys.
fn check_moved_override(spec: &str, moved: &[MovedKey]) -> Result<(), ConfigError> {
    let path = spec.split_once('=').map_or(spec, |(k, _)| k).trim();
    match moved
        .iter()
        .find(|m| path == m.from || path.starts_with(&format!("{}.", m.from)))
    {
        Some(m) => Err(ConfigError::Override {
            spec: spec.to_string(),
            message: m.error().to_string(),
        }),
        None => Ok(()),
    }
}

/// Joins a parent path and a key: `join_path("radar", "rate_hz")` is
/// `radar.rate_hz`; an empty parent gives the key alone.
pub fn join_path(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

/// Parses YAML text into a `Value`. An empty document is an empty mapping, so
/// an empty file means "all defaults".
pub fn parse_yaml(text: &str, source_name: &str) -> Result<Value, ConfigError> {
    let yaml: serde_norway::Value =
        serde_norway::from_str(text).map_err(|e| ConfigError::Syntax {
            source_name: source_name.to_string(),
            message: e.to_string(),
        })?;
    let value = yaml_to_json(&yaml, "")?;
    Ok(match value {
        Value::Null => Value::Object(serde_json::Map::new()),
        v => v,
    })
}

/// Converts parsed YAML into the JSON value the configs are read from. YAML
/// has `.nan` and `.inf`, JSON has no such numbers (a plain conversion turns
/// them into `null`, and the error then blames a "null" nobody wrote): no
/// config value may be non-finite, so they are refused here, by key.
fn yaml_to_json(yaml: &serde_norway::Value, path: &str) -> Result<Value, ConfigError> {
    use serde_norway::Value as Y;
    Ok(match yaml {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(*b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                let number = serde_json::Number::from_f64(f).ok_or_else(|| {
                    ConfigError::invalid(
                        path,
                        format!("`{n}` is not a finite number (config values must be finite)"),
                    )
                })?;
                Value::Number(number)
            }
        }
        Y::String(s) => Value::String(s.clone()),
        Y::Sequence(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| yaml_to_json(item, &format!("{path}[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        Y::Mapping(map) => {
            let mut out = serde_json::Map::new();
            for (k, v) in map {
                let key = match k {
                    Y::String(s) => s.clone(),
                    Y::Number(n) => n.to_string(),
                    Y::Bool(b) => b.to_string(),
                    other => {
                        return Err(ConfigError::invalid(
                            path,
                            format!("a mapping key must be a name, not {other:?}"),
                        ));
                    }
                };
                let child = yaml_to_json(v, &join_path(path, &key))?;
                out.insert(key, child);
            }
            Value::Object(out)
        }
        Y::Tagged(t) => yaml_to_json(&t.value, path)?,
    })
}

/// Deserialises `T` from a value a custom `Deserialize` implementation has
/// buffered, keeping the position of the problem inside it in the message
/// (serde cannot carry the inner path out through a custom error).
pub fn from_buffered<T: DeserializeOwned, E: serde::de::Error>(value: Value) -> Result<T, E> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let inner = e.inner().to_string();
        let path = e.path().to_string();
        // Unknown keys and values are named by the message itself, and the
        // caller's conversion recognises them by their first words.
        if path == "." || inner.starts_with("unknown field") || inner.starts_with("unknown variant")
        {
            E::custom(inner)
        } else {
            E::custom(format!("at `{path}`: {inner}"))
        }
    })
}

/// Deserialises a mapping with a `type` key (`{type: cnn, channels: [..]}`)
/// as the externally tagged `T` it mirrors (`{cnn: {channels: [..]}}`), so
/// that errors inside it name their key, which serde's internally tagged
/// enums cannot do. `types` are the valid `type` values, for the message.
pub fn from_typed_mapping<T: DeserializeOwned, E: serde::de::Error>(
    value: Value,
    what: &str,
    types: &[&str],
) -> Result<T, E> {
    let shape_error = || {
        E::custom(format!(
            "{what} is a mapping with `type` ({}), got {value}",
            types.join(", ")
        ))
    };
    let mut fields = value.as_object().cloned().ok_or_else(shape_error)?;
    let kind = match fields.remove("type") {
        Some(Value::String(kind)) => kind,
        _ => return Err(shape_error()),
    };
    if !types.contains(&kind.as_str()) {
        let hint = suggest(&kind, types.iter().copied())
            .map_or(String::new(), |best| format!("; did you mean `{best}`?"));
        return Err(E::custom(format!(
            "`type: {kind}` is not {what}{hint} (valid: {})",
            types.join(", ")
        )));
    }
    let mut tagged = serde_json::Map::new();
    tagged.insert(kind, Value::Object(fields));
    from_buffered(Value::Object(tagged))
}

/// Deserialises a `Value` into `T` strictly, with the full key path in every
/// error and a nearest-key suggestion for unknown keys.
pub fn from_value<T: DeserializeOwned>(value: &Value) -> Result<T, ConfigError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let message = e.inner().to_string();
        convert_serde_error(&path, &message)
    })
}

/// Serialises a typed config back into a `Value` (the resolved form, with every
/// default filled in).
pub fn to_value<T: Serialize>(config: &T) -> Result<Value, ConfigError> {
    serde_json::to_value(config).map_err(|e| ConfigError::invalid("", e.to_string()))
}

/// Parses YAML text strictly into `T` and validates it.
pub fn from_yaml_str<T: DeserializeOwned + Validate>(
    text: &str,
    source_name: &str,
) -> Result<T, ConfigError> {
    let value = parse_yaml(text, source_name)?;
    check_moved(&value, T::moved_keys())?;
    let config: T = from_value(&value)?;
    config.validate("")?;
    Ok(config)
}

/// The full loading pipeline: parse YAML strictly, fill in defaults, apply the
/// `--set` overrides to the resolved config, parse strictly again and validate.
/// Returns the typed config and its resolved `Value` (what a run writes to disk).
pub fn resolve<T, S>(
    text: &str,
    source_name: &str,
    overrides: &[S],
) -> Result<(T, Value), ConfigError>
where
    T: DeserializeOwned + Serialize + Validate,
    S: AsRef<str>,
{
    let value = parse_yaml(text, source_name)?;
    check_moved(&value, T::moved_keys())?;
    let first: T = from_value(&value)?;
    let mut resolved = to_value(&first)?;
    // Keys an override added (an optional section the resolved config leaves
    // out), with the error to give if the config type does not take them.
    let mut added: Vec<(String, ConfigError)> = Vec::new();
    for spec in overrides {
        let spec = spec.as_ref();
        check_moved_override(spec, T::moved_keys())?;
        if let Err(e) = apply_override(&mut resolved, spec) {
            match add_missing_leaf(&mut resolved, spec) {
                Some(path) => added.push((path, e)),
                None => return Err(e),
            }
        }
    }
    let config: T = match from_value(&resolved) {
        Err(ConfigError::UnknownKey { path, .. }) if added.iter().any(|(p, _)| *p == path) => {
            let at = added.iter().position(|(p, _)| *p == path).unwrap_or(0);
            return Err(added.swap_remove(at).1);
        }
        parsed => parsed?,
    };
    config.validate("")?;
    // Re-serialise so the returned value is canonical (e.g. `1` -> `1.0`).
    let resolved = to_value(&config)?;
    Ok((config, resolved))
}

/// Reads a YAML file and runs [`resolve`] on it; errors name the file.
pub fn resolve_file<T, S>(path: &Path, overrides: &[S]) -> Result<(T, Value), ConfigError>
where
    T: DeserializeOwned + Serialize + Validate,
    S: AsRef<str>,
{
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::InFile {
        file: file.clone(),
        inner: Box::new(ConfigError::invalid("", format!("cannot read: {e}"))),
    })?;
    resolve(&text, &file, overrides).map_err(|e| match e {
        // Syntax errors already carry the file name.
        e @ ConfigError::Syntax { .. } => e,
        e => ConfigError::InFile {
            file,
            inner: Box::new(e),
        },
    })
}

/// Turns serde's message into a typed error. Serde reports unknown fields as
/// "unknown field `k`, expected one of `a`, `b`" (or "expected `a` or `b`",
/// "expected `a`", "there are no fields"); the backtick-quoted names are the
/// offending key followed by the valid ones.
fn convert_serde_error(path: &str, message: &str) -> ConfigError {
    let is_unknown_field = message.starts_with("unknown field `");
    let is_unknown_variant = message.starts_with("unknown variant `");
    if is_unknown_field || is_unknown_variant {
        let quoted = backtick_tokens(message);
        if let Some((key, expected)) = quoted.split_first() {
            let expected: Vec<String> = expected.to_vec();
            let suggestion = suggest(key, expected.iter().map(String::as_str));
            if is_unknown_field {
                // serde_path_to_error normally ends the path with the unknown
                // key itself; append it only where it does not.
                let full = if path == "." || path == "?" || path.is_empty() {
                    key.clone()
                } else if path == key || path.ends_with(&format!(".{key}")) {
                    path.to_string()
                } else {
                    join_path(path, key)
                };
                return ConfigError::UnknownKey {
                    path: full,
                    key: key.clone(),
                    suggestion,
                    expected,
                };
            }
            let mut msg = format!("unknown value `{key}`");
            if let Some(best) = suggestion {
                msg.push_str(&format!("; did you mean `{best}`?"));
            }
            msg.push_str(&format!(" (valid values: {})", expected.join(", ")));
            return ConfigError::invalid(path, msg);
        }
    }
    ConfigError::invalid(path, message)
}

fn backtick_tokens(message: &str) -> Vec<String> {
    message
        .split('`')
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, s)| s.to_string())
        .collect()
}

/// Levenshtein edit distance (insertions, deletions, substitutions) over chars.
pub fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitution = prev[j] + usize::from(ca != cb);
            cur[j + 1] = substitution.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// The candidate closest to `key` by edit distance, if it is close enough to be
/// a plausible typo (at most a third of the longer name, and at least 2 edits
/// allowed). Ties go to the first candidate.
pub fn suggest<'a>(key: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        let d = levenshtein(key, c);
        if best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    best.and_then(|(d, c)| {
        let limit = (key.chars().count().max(c.chars().count()) / 3).max(2);
        (d <= limit).then(|| c.to_string())
    })
}

/// Applies one command-line override `a.b.c=value` to a resolved config. The
/// value is parsed as YAML (`3`, `0.5`, `true`, `[1, 2]`, `name`). The path must
/// already exist (the resolved config has every key), so a typo is an error
/// with a suggestion instead of a silently added key. List elements are
/// addressed by index (`stages.0.thrust_n=...`).
pub fn apply_override(config: &mut Value, spec: &str) -> Result<(), ConfigError> {
    let err = |message: String| ConfigError::Override {
        spec: spec.to_string(),
        message,
    };
    let (key_path, raw_value) = spec
        .split_once('=')
        .ok_or_else(|| err("expected `key.path=value`".to_string()))?;
    let key_path = key_path.trim();
    if key_path.is_empty() || key_path.split('.').any(str::is_empty) {
        return Err(err(format!("malformed key path `{key_path}`")));
    }
    let new_value: serde_norway::Value = serde_norway::from_str(raw_value.trim())
        .map_err(|e| err(format!("value is not valid YAML: {e}")))?;
    let new_value = yaml_to_json(&new_value, key_path).map_err(|e| err(e.to_string()))?;

    let mut node = config;
    let mut walked = String::new();
    for segment in key_path.split('.') {
        let here = join_path(&walked, segment);
        node = match node {
            Value::Object(map) => {
                if !map.contains_key(segment) {
                    let mut msg = format!("no key `{here}` in the config");
                    if let Some(best) = suggest(segment, map.keys().map(String::as_str)) {
                        msg.push_str(&format!("; did you mean `{}`?", join_path(&walked, &best)));
                    }
                    let mut keys: Vec<&str> = map.keys().map(String::as_str).collect();
                    keys.sort_unstable();
                    msg.push_str(&format!(" (valid keys here: {})", keys.join(", ")));
                    return Err(err(msg));
                }
                map.get_mut(segment)
                    .ok_or_else(|| err(format!("no key `{here}`")))?
            }
            Value::Array(items) => {
                let len = items.len();
                let index: usize = segment.parse().map_err(|_| {
                    err(format!(
                        "`{walked}` is a list; address an element by index, not `{segment}`"
                    ))
                })?;
                items.get_mut(index).ok_or_else(|| {
                    err(format!(
                        "index {index} out of bounds for `{walked}` (length {len})"
                    ))
                })?
            }
            _ => {
                return Err(err(format!(
                    "`{walked}` is a value, not a section; it has no key `{segment}`"
                )));
            }
        };
        walked = here;
    }
    *node = new_value;
    Ok(())
}

/// For an override `a.b.c=v` whose parents exist as sections but whose last
/// key is absent (an optional section the resolved config does not write
/// out), adds it and returns its path; `None` when the spec does not have
/// that shape. The typed parse that follows decides whether the key exists.
fn add_missing_leaf(config: &mut Value, spec: &str) -> Option<String> {
    let (key_path, raw_value) = spec.split_once('=')?;
    let key_path = key_path.trim();
    let yaml: serde_norway::Value = serde_norway::from_str(raw_value.trim()).ok()?;
    let value = yaml_to_json(&yaml, key_path).ok()?;
    let (parents, leaf) = match key_path.rsplit_once('.') {
        Some((parents, leaf)) => (Some(parents), leaf),
        None => (None, key_path),
    };
    let mut node = config;
    for segment in parents.into_iter().flat_map(|p| p.split('.')) {
        node = node.as_object_mut()?.get_mut(segment)?;
    }
    let map = node.as_object_mut()?;
    if leaf.is_empty() || map.contains_key(leaf) {
        return None;
    }
    map.insert(leaf.to_string(), value);
    Some(key_path.to_string())
}

/// An interval of allowed values, with each end open or closed (either end may
/// be infinite). Displayed in the usual notation, e.g. `(0, 1000]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Interval {
    pub lo: f64,
    pub hi: f64,
    pub lo_closed: bool,
    pub hi_closed: bool,
}

impl Interval {
    /// `[lo, hi]`.
    pub const fn closed(lo: f64, hi: f64) -> Self {
        Self {
            lo,
            hi,
            lo_closed: true,
            hi_closed: true,
        }
    }
    /// `(lo, hi)`.
    pub const fn open(lo: f64, hi: f64) -> Self {
        Self {
            lo,
            hi,
            lo_closed: false,
            hi_closed: false,
        }
    }
    /// `(lo, hi]`.
    pub const fn open_closed(lo: f64, hi: f64) -> Self {
        Self {
            lo,
            hi,
            lo_closed: false,
            hi_closed: true,
        }
    }
    /// `[lo, hi)`.
    pub const fn closed_open(lo: f64, hi: f64) -> Self {
        Self {
            lo,
            hi,
            lo_closed: true,
            hi_closed: false,
        }
    }
    /// `(0, inf)`: strictly positive and finite.
    pub const POSITIVE: Interval = Interval::open(0.0, f64::INFINITY);
    /// `[0, inf)`: non-negative and finite.
    pub const NON_NEGATIVE: Interval = Interval::closed_open(0.0, f64::INFINITY);

    /// True when `value` lies in the interval (NaN never does; infinities only
    /// at a closed infinite end, which the constructors above never produce).
    pub fn contains(&self, value: f64) -> bool {
        let above = if self.lo_closed {
            value >= self.lo
        } else {
            value > self.lo
        };
        let below = if self.hi_closed {
            value <= self.hi
        } else {
            value < self.hi
        };
        above && below
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let open = if self.lo_closed { '[' } else { '(' };
        let close = if self.hi_closed { ']' } else { ')' };
        let end = |x: f64| {
            if x == f64::INFINITY {
                "inf".to_string()
            } else if x == f64::NEG_INFINITY {
                "-inf".to_string()
            } else {
                format!("{x}")
            }
        };
        write!(f, "{open}{}, {}{close}", end(self.lo), end(self.hi))
    }
}

/// Checks that `value` (the config value at `path`) lies in `interval`; returns
/// it unchanged so checks can be chained into conversions.
pub fn ensure_range(path: &str, value: f64, interval: Interval) -> Result<f64, ConfigError> {
    if interval.contains(value) {
        Ok(value)
    } else {
        Err(ConfigError::OutOfRange {
            path: display_path(path),
            value,
            range: interval,
        })
    }
}

/// Checks a `[low, high]` pair at `path`: both ends in `interval` and
/// `low <= high`.
pub fn ensure_span(path: &str, low: f64, high: f64, interval: Interval) -> Result<(), ConfigError> {
    ensure_range(&format!("{path}[0]"), low, interval)?;
    ensure_range(&format!("{path}[1]"), high, interval)?;
    if low > high {
        return Err(ConfigError::invalid(
            path,
            format!("range [{low}, {high}] has its low end above its high end"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize, Serialize, PartialEq)]
    #[serde(deny_unknown_fields, default)]
    struct Radar {
        range_noise_m: f64,
        update_rate_hz: f64,
        angles: Vec<f64>,
    }

    impl Default for Radar {
        fn default() -> Self {
            Self {
                range_noise_m: 5.0,
                update_rate_hz: 20.0,
                angles: vec![0.5, 1.0],
            }
        }
    }

    #[derive(Debug, Deserialize, Serialize, PartialEq)]
    #[serde(rename_all = "snake_case")]
    enum Mode {
        Fast,
        Careful,
    }

    #[derive(Debug, Deserialize, Serialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Top {
        name: String,
        #[serde(default)]
        radar: Radar,
        #[serde(default = "default_mode")]
        mode: Mode,
    }

    fn default_mode() -> Mode {
        Mode::Fast
    }

    impl Validate for Top {
        fn validate(&self, path: &str) -> Result<(), ConfigError> {
            let radar = join_path(path, "radar");
            ensure_range(
                &join_path(&radar, "update_rate_hz"),
                self.radar.update_rate_hz,
                Interval::open_closed(0.0, 1000.0),
            )?;
            ensure_range(
                &join_path(&radar, "range_noise_m"),
                self.radar.range_noise_m,
                Interval::NON_NEGATIVE,
            )?;
            Ok(())
        }

        fn moved_keys() -> &'static [MovedKey] {
            &[MovedKey {
                from: "radar.rate_hz",
                to: "radar.update_rate_hz",
                note: "",
            }]
        }
    }

    #[test]
    fn a_moved_key_names_its_new_place_in_files_and_overrides() {
        let e = load("name: a\nradar: {rate_hz: 5}\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "`radar.rate_hz` is now `radar.update_rate_hz`: rename it"
        );
        let e = resolve::<Top, _>("name: a\n", "t", &["radar.rate_hz=5"])
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("--set radar.rate_hz=5: `radar.rate_hz` is now `radar.update_rate_hz`"),
            "{e}"
        );
        // The new key itself loads.
        load("name: a\nradar: {update_rate_hz: 5}\n").unwrap();
    }

    fn load(text: &str) -> Result<Top, ConfigError> {
        from_yaml_str(text, "test.yaml")
    }

    #[test]
    fn valid_config_parses_with_defaults() {
        let top = load("name: a\nradar:\n  range_noise_m: 2.5\n").unwrap();
        assert_eq!(top.radar.range_noise_m, 2.5);
        assert_eq!(top.radar.update_rate_hz, 20.0);
        assert_eq!(top.mode, Mode::Fast);
    }

    #[test]
    fn unknown_top_level_key_is_named_with_suggestion() {
        let err = load("name: a\nrader:\n  range_noise_m: 1\n").unwrap_err();
        match &err {
            ConfigError::UnknownKey {
                path,
                key,
                suggestion,
                expected,
            } => {
                assert_eq!(path, "rader");
                assert_eq!(key, "rader");
                assert_eq!(suggestion.as_deref(), Some("radar"));
                assert_eq!(expected, &["name", "radar", "mode"]);
            }
            other => panic!("expected UnknownKey, got {other:?}"),
        }
        let msg = err.to_string();
        assert!(
            msg.contains("`rader`") && msg.contains("did you mean `radar`"),
            "{msg}"
        );
    }

    #[test]
    fn a_key_given_twice_is_an_error_naming_it() {
        // The second value would otherwise silently replace the first.
        let err = load("name: a\nmode: fast\nmode: slow\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("duplicate") && err.contains("mode"), "{err}");
    }

    #[test]
    fn non_finite_numbers_are_refused_by_key() {
        for bad in [".nan", ".inf", "-.inf"] {
            let err = load(&format!("name: a\nradar:\n  range_noise_m: {bad}\n"))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("radar.range_noise_m") && err.contains("not a finite number"),
                "{err}"
            );
        }
        let mut v = parse_yaml("radar: {range_noise_m: 1.0}\n", "t").unwrap();
        let err = apply_override(&mut v, "radar.range_noise_m=.nan")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a finite number"), "{err}");
    }

    #[test]
    fn unknown_nested_key_carries_full_path_and_suggestion() {
        let err = load("name: a\nradar:\n  range_noise_mm: 1\n").unwrap_err();
        match &err {
            ConfigError::UnknownKey {
                path, suggestion, ..
            } => {
                assert_eq!(path, "radar.range_noise_mm");
                assert_eq!(suggestion.as_deref(), Some("range_noise_m"));
            }
            other => panic!("expected UnknownKey, got {other:?}"),
        }
    }

    #[test]
    fn far_away_key_gets_no_suggestion() {
        let err = load("name: a\nradar:\n  completely_different: 1\n").unwrap_err();
        match err {
            ConfigError::UnknownKey { suggestion, .. } => assert_eq!(suggestion, None),
            other => panic!("expected UnknownKey, got {other:?}"),
        }
    }

    #[test]
    fn wrong_type_names_the_path() {
        let err = load("name: a\nradar:\n  update_rate_hz: fast\n").unwrap_err();
        match &err {
            ConfigError::Invalid { path, message } => {
                assert_eq!(path, "radar.update_rate_hz");
                assert!(message.contains("invalid type"), "{message}");
            }
            other => panic!("expected Invalid, got {other:?}"),
        }
        let err = load("name: a\nradar:\n  angles: [1, x]\n").unwrap_err();
        assert!(
            err.to_string().starts_with("radar.angles[1]")
                || err.to_string().starts_with("radar.angles.1"),
            "{err}"
        );
    }

    #[test]
    fn unknown_enum_value_suggests_nearest() {
        let err = load("name: a\nmode: carefull\n").unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("mode:"), "{msg}");
        assert!(msg.contains("did you mean `careful`"), "{msg}");
    }

    #[test]
    fn missing_required_key_is_reported() {
        let err = load("radar: {}\n").unwrap_err();
        assert!(err.to_string().contains("missing field `name`"), "{err}");
    }

    #[test]
    fn syntax_error_names_the_source() {
        let err = load("name: [unclosed\n").unwrap_err();
        assert!(matches!(err, ConfigError::Syntax { .. }));
        assert!(err.to_string().starts_with("test.yaml"), "{err}");
    }

    #[test]
    fn range_check_message_names_key_value_and_interval() {
        let err = load("name: a\nradar:\n  update_rate_hz: 0\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "radar.update_rate_hz = 0 is out of range (0, 1000]"
        );
        assert!(ensure_range("x", f64::NAN, Interval::closed(0.0, 1.0)).is_err());
        assert!(ensure_range("x", 1.0, Interval::closed(0.0, 1.0)).is_ok());
        assert!(ensure_range("x", 1.0, Interval::closed_open(0.0, 1.0)).is_err());
        assert!(ensure_span("s", 2.0, 1.0, Interval::NON_NEGATIVE).is_err());
        assert!(ensure_span("s", 1.0, 2.0, Interval::NON_NEGATIVE).is_ok());
    }

    #[test]
    fn override_changes_the_value_and_resolves() {
        let (top, resolved): (Top, Value) = resolve(
            "name: a\n",
            "t",
            &[
                "radar.update_rate_hz=50",
                "radar.angles=[1, 2, 3]",
                "mode=careful",
            ],
        )
        .unwrap();
        assert_eq!(top.radar.update_rate_hz, 50.0);
        assert_eq!(top.radar.angles, vec![1.0, 2.0, 3.0]);
        assert_eq!(top.mode, Mode::Careful);
        // The resolved value carries defaults that were never written.
        assert_eq!(resolved["radar"]["range_noise_m"], Value::from(5.0));
        let (top, _): (Top, Value) = resolve("name: a\n", "t", &["radar.angles.1=7.5"]).unwrap();
        assert_eq!(top.radar.angles, vec![0.5, 7.5]);
    }

    #[test]
    fn override_rejects_unknown_paths_with_suggestion() {
        let err = resolve::<Top, _>("name: a\n", "t", &["radar.update_rate=50"]).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, ConfigError::Override { .. }));
        assert!(msg.contains("no key `radar.update_rate`"), "{msg}");
        assert!(msg.contains("did you mean `radar.update_rate_hz`"), "{msg}");
        assert!(resolve::<Top, _>("name: a\n", "t", &["name.x=1"]).is_err());
        assert!(resolve::<Top, _>("name: a\n", "t", &["radar.angles.5=1"]).is_err());
        assert!(resolve::<Top, _>("name: a\n", "t", &["no_equals_sign"]).is_err());
    }

    #[test]
    fn override_with_wrong_type_or_range_fails_on_reparse() {
        let err = resolve::<Top, _>("name: a\n", "t", &["radar.update_rate_hz=abc"]).unwrap_err();
        assert!(err.to_string().starts_with("radar.update_rate_hz"), "{err}");
        let err = resolve::<Top, _>("name: a\n", "t", &["radar.update_rate_hz=5000"]).unwrap_err();
        assert!(matches!(err, ConfigError::OutOfRange { .. }), "{err}");
    }

    #[test]
    fn levenshtein_matches_known_distances() {
        assert_eq!(levenshtein("kitten", "sitting"), 3);
        assert_eq!(levenshtein("", "abc"), 3);
        assert_eq!(levenshtein("abc", "abc"), 0);
        assert_eq!(levenshtein("flaw", "lawn"), 2);
        assert_eq!(
            suggest("mas_kg", ["mass_kg", "diameter_m"]).as_deref(),
            Some("mass_kg")
        );
    }

    #[test]
    fn empty_document_means_all_defaults() {
        let r: Radar = from_value(&parse_yaml("", "t").unwrap()).unwrap();
        assert_eq!(r, Radar::default());
    }
}
