//! A trained policy loaded from a run directory for Python, without
//! building any environment: it takes the bare env's observations (a frame
//! stack, when the run trained with one, is kept per row here, as
//! evaluation keeps it) and applies the run's frozen observation
//! normaliser.

use std::path::PathBuf;
use std::sync::Mutex;

use hlynr_env::PolicyInput;
use hlynr_rl::trainer::{bare_policy, load_model, locate_model};
use pyo3::prelude::*;
use pyo3::types::PyByteArray;

use crate::{f32_bytes, lock, read_f32, runtime_error, value_error};

struct PolicyState {
    policy: Box<dyn hlynr_env::Policy>,
    obs: Vec<f32>,
    actions: Vec<f32>,
}

/// A trained policy (see the module docs).
#[pyclass(module = "hlynr._hlynr")]
pub struct Policy {
    state: Mutex<PolicyState>,
    observation_space: hlynr_env::Space,
    action_space: hlynr_env::Space,
    env_id: String,
    checkpoint: PathBuf,
    env_steps: u64,
}

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policy")
            .field("env_id", &self.env_id)
            .field("checkpoint", &self.checkpoint)
            .finish_non_exhaustive()
    }
}

#[pymethods]
impl Policy {
    /// The policy of `path`: a run directory (its `best` checkpoint, else
    /// `last`) or `RUN_DIR/checkpoints/NAME`.
    #[new]
    fn new(path: PathBuf) -> PyResult<Self> {
        let (run_dir, checkpoint) = locate_model(&path).map_err(value_error)?;
        let model = load_model(&run_dir, &checkpoint).map_err(value_error)?;
        let record = &model.record;
        let observation_space = match record.frame_stack {
            Some(k) => {
                hlynr_env::unstacked_space(&record.observation_space, k).ok_or_else(|| {
                    value_error(format!(
                        "checkpoint {}: its observation space is not a stack of {k}",
                        model.checkpoint.display()
                    ))
                })?
            }
            None => record.observation_space.clone(),
        };
        let action_space = record.action_space.clone();
        let policy = bare_policy(model.policy, record).map_err(value_error)?;
        Ok(Self {
            state: Mutex::new(PolicyState {
                policy,
                obs: Vec::new(),
                actions: Vec::new(),
            }),
            observation_space,
            action_space,
            env_id: model.config.env.id.clone(),
            checkpoint: model.checkpoint,
            env_steps: model.env_steps,
        })
    }

    /// The observation space (one bare observation) as JSON.
    #[getter]
    fn observation_space(&self) -> String {
        serde_json::to_string(&self.observation_space).expect("spaces serialise")
    }

    /// The action space as JSON.
    #[getter]
    fn action_space(&self) -> String {
        serde_json::to_string(&self.action_space).expect("spaces serialise")
    }

    /// The id of the environment the run trained on.
    #[getter]
    fn env_id(&self) -> &str {
        &self.env_id
    }

    /// The checkpoint directory loaded.
    #[getter]
    fn checkpoint(&self) -> PathBuf {
        self.checkpoint.clone()
    }

    /// Env steps of that checkpoint.
    #[getter]
    fn env_steps(&self) -> u64 {
        self.env_steps
    }

    /// Actions (`[n, act_dim]`, native-endian `float32` bytes) for `n`
    /// observations given as their value lane (`float32` bytes) and byte
    /// lane.
    fn act<'py>(
        &self,
        py: Python<'py>,
        values: &[u8],
        bytes: &[u8],
        n: usize,
        deterministic: bool,
    ) -> PyResult<Bound<'py, PyByteArray>> {
        let (obs_dim, byte_dim) = (
            self.observation_space.flat_dim(),
            self.observation_space.byte_dim(),
        );
        if bytes.len() != n * byte_dim {
            return Err(value_error(format!(
                "observation bytes: expected {} for {n} observation(s), got {}",
                n * byte_dim,
                bytes.len()
            )));
        }
        let mut guard = lock(&self.state);
        let s = &mut *guard;
        read_f32(values, n * obs_dim, "observations", &mut s.obs)?;
        s.actions.clear();
        s.actions.resize(n * self.action_space.flat_dim(), 0.0);
        let input = PolicyInput {
            n,
            obs: &s.obs,
            obs_bytes: bytes,
            controller_view: &[],
        };
        py.detach(|| s.policy.act(&input, deterministic, &mut s.actions))
            .map_err(runtime_error)?;
        Ok(f32_bytes(py, &s.actions))
    }

    /// Forgets the memory (recurrent state, frame stack) of `rows`, whose
    /// next observation starts an episode.
    fn reset_rows(&self, rows: Vec<usize>) {
        let mut guard = lock(&self.state);
        guard.policy.reset_rows(&rows);
    }
}
