//! `hlynr._hlynr`, the compiled half of the `hlynr` Python package.
//!
//! It exposes hlynr's environments (one env, and a batch stepped in Rust),
//! training runs, trained policies and metric logs through a deliberately
//! narrow interface: arrays cross as `bytearray`s of native-endian `f32`
//! or `u8` (NumPy views them without a copy), spaces and infos as JSON or
//! plain dicts. The Python half (`python/hlynr`) turns these into
//! Gymnasium spaces and NumPy arrays, so every rule about spaces lives in
//! one place on each side: the Rust `Space` and its JSON form.

mod env;
mod host;
mod host_direct;
mod policy;
mod runs;

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyDict};

/// The environment registry of runs started from Python: the built-in
/// environments, plus Python Gymnasium ones (`env.python`) hosted here.
fn registry() -> hlynr_envs::Registry {
    let mut registry = hlynr_envs::Registry::builtin();
    registry.host_python(host::factory);
    registry
}

/// Bad input from the caller (a config, a setting, an action): `ValueError`.
fn value_error(e: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(e.to_string())
}

/// A failure of hlynr itself or of an environment: `RuntimeError`.
fn runtime_error(e: impl std::fmt::Display) -> PyErr {
    PyRuntimeError::new_err(e.to_string())
}

/// The lock's data, also after a panic in another holder (the state is
/// buffers a panic cannot leave half-meaningful for the next call).
fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `values` as native-endian `f32` bytes, the lane encoding on the wire.
fn f32_ne_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_ne_bytes()).collect()
}

/// `values` as a `bytearray` of native-endian `f32`.
fn f32_bytes<'py>(py: Python<'py>, values: &[f32]) -> Bound<'py, PyByteArray> {
    PyByteArray::new(py, &f32_ne_bytes(values))
}

/// Decodes native-endian `f32` bytes into `out` (cleared first).
fn decode_f32(bytes: &[u8], out: &mut Vec<f32>) {
    out.clear();
    out.extend(
        bytes
            .chunks_exact(4)
            .map(|c| f32::from_ne_bytes([c[0], c[1], c[2], c[3]])),
    );
}

/// Reads native-endian `f32`s from `bytes` into `out` (cleared first); the
/// length must be a whole number of `expected` values.
fn read_f32(bytes: &[u8], expected: usize, what: &str, out: &mut Vec<f32>) -> PyResult<()> {
    if bytes.len() != expected * 4 {
        return Err(value_error(format!(
            "{what}: expected {expected} float32 values ({} bytes), got {} bytes",
            expected * 4,
            bytes.len()
        )));
    }
    decode_f32(bytes, out);
    Ok(())
}

/// An env step's [`hlynr_env::Info`] as a Gymnasium info dict: `is_success`
/// when the episode ended with a verdict, `episode: {r, l}` (as Gymnasium's
/// `RecordEpisodeStatistics` writes it) when it ended, and the
/// environment's metrics under their own names.
fn info_dict<'py>(py: Python<'py>, info: &hlynr_env::Info) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    if let Some(success) = info.is_success {
        dict.set_item("is_success", success)?;
    }
    if let Some(e) = &info.episode {
        let episode = PyDict::new(py);
        episode.set_item("r", e.episode_return)?;
        episode.set_item("l", e.episode_length)?;
        dict.set_item("episode", episode)?;
    }
    for &(key, value) in &info.metrics {
        dict.set_item(key, value)?;
    }
    Ok(dict)
}

/// The seed a batch reset with `seed` gives environment `index`
/// (`hlynr_rng::derive_seed`).
#[pyfunction]
fn derive_seed(seed: u64, index: u64) -> u64 {
    hlynr_rng::derive_seed(seed, index)
}

/// The `hlynr._hlynr` module.
#[pymodule]
fn _hlynr(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<env::Env>()?;
    m.add_class::<env::VecEnv>()?;
    m.add_class::<policy::Policy>()?;
    m.add_function(wrap_pyfunction!(env::env_ids, m)?)?;
    m.add_function(wrap_pyfunction!(runs::train, m)?)?;
    m.add_function(wrap_pyfunction!(runs::resume, m)?)?;
    m.add_function(wrap_pyfunction!(runs::read_metrics, m)?)?;
    m.add_function(wrap_pyfunction!(runs::cli, m)?)?;
    m.add_function(wrap_pyfunction!(runs::run_config, m)?)?;
    m.add_function(wrap_pyfunction!(runs::resolve_config, m)?)?;
    m.add_function(wrap_pyfunction!(derive_seed, m)?)?;
    m.add_function(wrap_pyfunction!(host::bench_hosted, m)?)?;
    Ok(())
}
