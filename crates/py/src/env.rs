//! hlynr environments for Python: one env ([`Env`], behind Gymnasium's
//! `Env`) and a batch stepped in Rust ([`VecEnv`], behind Gymnasium's
//! `VectorEnv`), both built by id from the same registry the command uses,
//! so an id and its settings mean the same environment everywhere.

use std::sync::Mutex;

use hlynr_env::{BatchEnv, Info, ObsMut};
use hlynr_envs::Registry;
use hlynr_rl::trainer::EnvFactory;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyDict};
use serde_json::{Value, json};

use crate::{f32_bytes, info_dict, lock, read_f32, runtime_error, value_error};

/// Every environment id the registry knows.
#[pyfunction]
pub fn env_ids() -> Vec<String> {
    Registry::builtin()
        .known_ids()
        .into_iter()
        .map(String::from)
        .collect()
}

/// The factory of environment `id` with `settings` (a JSON mapping), read
/// as a run config's `env` section would be: unknown settings are errors
/// naming the closest known key.
fn factory(
    id: &str,
    settings_json: &str,
    frame_stack: Option<usize>,
    max_episode_steps: Option<u64>,
) -> PyResult<Box<dyn EnvFactory>> {
    let settings: Value = serde_json::from_str(settings_json).map_err(value_error)?;
    let mut env = json!({"id": id, "settings": settings});
    if let Some(k) = frame_stack {
        env["frame_stack"] = json!(k);
    }
    if let Some(m) = max_episode_steps {
        env["max_episode_steps"] = json!(m);
    }
    let config = hlynr_envs::standalone_config(env).map_err(value_error)?;
    Registry::builtin()
        .factory_for(&config)
        .map_err(value_error)
}

fn space_json(space: &hlynr_env::Space) -> String {
    serde_json::to_string(space).expect("spaces serialise to JSON")
}

/// One environment and its buffers.
struct EnvState {
    env: Box<dyn hlynr_env::Env>,
    values: Vec<f32>,
    bytes: Vec<u8>,
    action: Vec<f32>,
    info: Info,
}

/// One hlynr environment with Gymnasium semantics (no automatic reset).
#[pyclass(module = "hlynr._hlynr")]
pub struct Env {
    state: Mutex<EnvState>,
    observation_space: String,
    action_space: String,
}

impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Env")
            .field("observation_space", &self.observation_space)
            .field("action_space", &self.action_space)
            .finish_non_exhaustive()
    }
}

type ObsTuple<'py> = (Bound<'py, PyByteArray>, Bound<'py, PyByteArray>);

#[pymethods]
impl Env {
    /// Environment `id` with `settings` (JSON), optionally behind a frame
    /// stack and with another episode step limit.
    #[new]
    #[pyo3(signature = (id, settings_json="{}", frame_stack=None, max_episode_steps=None))]
    fn new(
        id: &str,
        settings_json: &str,
        frame_stack: Option<usize>,
        max_episode_steps: Option<u64>,
    ) -> PyResult<Self> {
        let env = factory(id, settings_json, frame_stack, max_episode_steps)?
            .make_eval()
            .map_err(value_error)?;
        let space = env.observation_space();
        let (values, bytes) = (vec![0.0; space.flat_dim()], vec![0; space.byte_dim()]);
        Ok(Self {
            observation_space: space_json(space),
            action_space: space_json(env.action_space()),
            state: Mutex::new(EnvState {
                values,
                bytes,
                action: Vec::new(),
                info: Info::default(),
                env,
            }),
        })
    }

    /// The observation space as JSON (hlynr's `Space` encoding).
    #[getter]
    fn observation_space(&self) -> &str {
        &self.observation_space
    }

    /// The action space as JSON.
    #[getter]
    fn action_space(&self) -> &str {
        &self.action_space
    }

    /// Starts an episode (reseeding when `seed` is given); returns the
    /// observation's value and byte lanes and the info.
    #[pyo3(signature = (seed=None))]
    fn reset<'py>(
        &self,
        py: Python<'py>,
        seed: Option<u64>,
    ) -> PyResult<(
        Bound<'py, PyByteArray>,
        Bound<'py, PyByteArray>,
        Bound<'py, PyDict>,
    )> {
        let mut guard = lock(&self.state);
        let s = &mut *guard;
        s.info.clear();
        s.env
            .reset(seed, ObsMut::new(&mut s.values, &mut s.bytes), &mut s.info)
            .map_err(runtime_error)?;
        let (values, bytes) = obs(py, s);
        Ok((values, bytes, info_dict(py, &s.info)?))
    }

    /// Steps with `action` (native-endian `float32` bytes in hlynr's flat
    /// action encoding); returns the observation's lanes, the reward, the
    /// terminated and truncated flags and the info. An action outside the
    /// action space is a `ValueError` naming it.
    #[allow(clippy::type_complexity)]
    fn step<'py>(
        &self,
        py: Python<'py>,
        action: &[u8],
    ) -> PyResult<(
        Bound<'py, PyByteArray>,
        Bound<'py, PyByteArray>,
        f64,
        bool,
        bool,
        Bound<'py, PyDict>,
    )> {
        let mut guard = lock(&self.state);
        let s = &mut *guard;
        let dim = s.env.action_space().flat_dim();
        read_f32(action, dim, "action", &mut s.action)?;
        let step = hlynr_env::checked_step(
            &mut s.env,
            &s.action,
            ObsMut::new(&mut s.values, &mut s.bytes),
            &mut s.info,
        )
        .map_err(|e| match e {
            hlynr_env::EnvError::InvalidAction { message, .. } => value_error(format!(
                "action {:?} is not in the action space: {message}",
                s.action
            )),
            e => runtime_error(e),
        })?;
        let (values, bytes) = obs(py, s);
        Ok((
            values,
            bytes,
            step.reward,
            step.terminated,
            step.truncated,
            info_dict(py, &s.info)?,
        ))
    }
}

/// A batch's infos as columns, so Python assembles Gymnasium's vector info
/// with array operations instead of one dict per env: every field present
/// in at least one info maps to `(present, values)`, a mask of one byte per
/// env and the values as native-endian `f64` (0 where absent). The fields
/// are `is_success` (1 or 0), `episode.r` and `episode.l` (see
/// [`crate::info_dict`]) and the environment's metrics by name.
fn info_columns<'py>(py: Python<'py>, infos: &[Info]) -> PyResult<Bound<'py, PyDict>> {
    let n = infos.len();
    let mut columns: Vec<(&str, Vec<u8>, Vec<f64>)> = Vec::new();
    let mut put = |key: &'static str, i: usize, value: f64| {
        let at = match columns.iter().position(|(k, _, _)| *k == key) {
            Some(at) => at,
            None => {
                columns.push((key, vec![0; n], vec![0.0; n]));
                columns.len() - 1
            }
        };
        columns[at].1[i] = 1;
        columns[at].2[i] = value;
    };
    for (i, info) in infos.iter().enumerate() {
        if let Some(success) = info.is_success {
            put("is_success", i, f64::from(u8::from(success)));
        }
        if let Some(e) = &info.episode {
            put("episode.r", i, e.episode_return);
            put("episode.l", i, e.episode_length as f64);
        }
        for &(key, value) in &info.metrics {
            put(key, i, value);
        }
    }
    let dict = PyDict::new(py);
    for (key, present, values) in columns {
        let values: Vec<u8> = values.iter().flat_map(|v| v.to_ne_bytes()).collect();
        dict.set_item(
            key,
            (
                PyByteArray::new(py, &present),
                PyByteArray::new(py, &values),
            ),
        )?;
    }
    Ok(dict)
}

fn obs<'py>(py: Python<'py>, s: &EnvState) -> ObsTuple<'py> {
    (f32_bytes(py, &s.values), PyByteArray::new(py, &s.bytes))
}

/// A batch of environments stepped together in Rust, with same-step
/// automatic reset (see `hlynr_env::vec_env`).
#[pyclass(module = "hlynr._hlynr")]
pub struct VecEnv {
    state: Mutex<(Box<dyn BatchEnv>, Vec<f32>)>,
    num_envs: usize,
    observation_space: String,
    action_space: String,
}

impl std::fmt::Debug for VecEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VecEnv")
            .field("num_envs", &self.num_envs)
            .field("observation_space", &self.observation_space)
            .field("action_space", &self.action_space)
            .finish_non_exhaustive()
    }
}

#[pymethods]
impl VecEnv {
    /// `num_envs` copies of environment `id` (see [`Env::new`]), each with
    /// episode statistics.
    #[new]
    #[pyo3(signature = (id, num_envs, settings_json="{}", frame_stack=None, max_episode_steps=None))]
    fn new(
        id: &str,
        num_envs: usize,
        settings_json: &str,
        frame_stack: Option<usize>,
        max_episode_steps: Option<u64>,
    ) -> PyResult<Self> {
        if num_envs == 0 {
            return Err(value_error("num_envs must be at least 1"));
        }
        let envs = factory(id, settings_json, frame_stack, max_episode_steps)?
            .make_train(num_envs)
            .map_err(value_error)?;
        if envs.active().is_some() {
            // Rows that fill and empty (agent slots) have no Gymnasium
            // vector-env meaning: refuse rather than hand out masked rows.
            return Err(value_error(format!(
                "`{id}` batches agent slots, not independent envs, which a Gymnasium vector env \
                 cannot express; use the single env (one whole game) or train with `hlynr train`"
            )));
        }
        Ok(Self {
            observation_space: space_json(envs.observation_space()),
            action_space: space_json(envs.action_space()),
            num_envs,
            state: Mutex::new((envs, Vec::new())),
        })
    }

    /// Number of environments.
    #[getter]
    fn num_envs(&self) -> usize {
        self.num_envs
    }

    /// One environment's observation space as JSON.
    #[getter]
    fn observation_space(&self) -> &str {
        &self.observation_space
    }

    /// One environment's action space as JSON.
    #[getter]
    fn action_space(&self) -> &str {
        &self.action_space
    }

    /// Reseeds every environment (env `i` gets a seed derived from `seed`
    /// and `i`) and resets it; returns the observations' lanes.
    fn reset<'py>(&self, py: Python<'py>, seed: u64) -> PyResult<ObsTuple<'py>> {
        let mut guard = lock(&self.state);
        let envs = &mut guard.0;
        py.detach(|| envs.reset(seed)).map_err(runtime_error)?;
        Ok((
            f32_bytes(py, envs.obs()),
            PyByteArray::new(py, envs.obs_bytes()),
        ))
    }

    /// Steps every environment with the `[num_envs, act_dim]` actions
    /// (native-endian `float32` bytes) and resets finished ones. Returns the
    /// observations' lanes, rewards (`float32`), terminated and truncated
    /// flags (one byte each), the infos as columns (see [`info_columns`]),
    /// and the indices of the finished environments with their final
    /// observations' lanes (`[k, dim]`, in index order).
    #[allow(clippy::type_complexity)]
    fn step<'py>(
        &self,
        py: Python<'py>,
        actions: &[u8],
    ) -> PyResult<(
        Bound<'py, PyByteArray>,
        Bound<'py, PyByteArray>,
        Bound<'py, PyByteArray>,
        Bound<'py, PyByteArray>,
        Bound<'py, PyByteArray>,
        Bound<'py, PyDict>,
        Vec<usize>,
        Bound<'py, PyByteArray>,
        Bound<'py, PyByteArray>,
    )> {
        let mut guard = lock(&self.state);
        let (envs, buffer) = &mut *guard;
        read_f32(actions, self.num_envs * envs.act_dim(), "actions", buffer)?;
        py.detach(|| envs.step(buffer)).map_err(|e| match e {
            e @ hlynr_env::EnvError::InvalidAction { .. } => value_error(e),
            e => runtime_error(e),
        })?;
        let flags = |f: &[bool]| f.iter().map(|&b| u8::from(b)).collect::<Vec<u8>>();
        let (mut finished, mut final_values, mut final_bytes) =
            (Vec::new(), Vec::new(), Vec::new());
        for i in 0..self.num_envs {
            if let Some(values) = envs.final_observation(i) {
                finished.push(i);
                final_values.extend_from_slice(values);
                final_bytes.extend_from_slice(envs.final_observation_bytes(i).unwrap_or_default());
            }
        }
        Ok((
            f32_bytes(py, envs.obs()),
            PyByteArray::new(py, envs.obs_bytes()),
            f32_bytes(py, envs.rewards()),
            PyByteArray::new(py, &flags(envs.terminated())),
            PyByteArray::new(py, &flags(envs.truncated())),
            info_columns(py, envs.infos())?,
            finished,
            f32_bytes(py, &final_values),
            PyByteArray::new(py, &final_bytes),
        ))
    }
}
