//! Python Gymnasium environments hosted by the trainer (`env.python` in a
//! run config), when hlynr runs inside Python (`python -m hlynr train`,
//! `hlynr.train`).
//!
//! The batch is one Python object (`hlynr._host.Host`). For one `Box`
//! observation and a `Discrete` action, the common case, the loop over
//! environments runs here (`host_direct.rs`); for every other space it runs
//! in Python, called once per step. Either way the observations' types,
//! dtypes and shapes are checked as the Python codec checks them, the
//! observations arrive as the two flat lanes every hlynr buffer uses, and
//! their bounds, finiteness and discrete ranges are checked here against
//! hlynr's space. Errors raised by the Python environment fail the step with
//! the Python traceback; the trainer then ends the run with its last
//! checkpoint intact, as for any environment failure.
//!
//! Python environments keep no snapshots: a resumed run starts fresh
//! episodes (seeded from the run's seed and the number of restarts), so it
//! continues, but not bitwise.

use hlynr_env::{BatchEnv, EnvError, EpisodeStats, Info, ObsMut, Space, Step};
use hlynr_rl::trainer::{EnvFactory, RunConfig, TrainError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::host_direct::{Direct, DirectStep, Lanes};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The environment factory of a config whose `env.python` names the env.
pub fn factory(config: &RunConfig) -> hlynr_rl::trainer::Result<Box<dyn EnvFactory>> {
    let spec = config.env.python.clone().unwrap_or_default();
    if config.env.frame_stack.is_some() {
        return Err(TrainError::invalid(
            "env.frame_stack",
            "is not available for Python envs; stack in Python (gymnasium.wrappers.FrameStackObservation \
             in a `module:callable` that builds the env)",
        ));
    }
    let mut kwargs = config.env.settings.clone();
    if let Some(limit) = config.env.max_episode_steps {
        if !spec.starts_with("gymnasium:") {
            return Err(TrainError::invalid(
                "env.max_episode_steps",
                format!("applies to `gymnasium:` envs; `{spec}` sets its own limit"),
            ));
        }
        kwargs["max_episode_steps"] = Value::from(limit);
    }
    let factory = PythonEnvFactory {
        spec,
        kwargs: kwargs.to_string(),
    };
    // Build one env now, so an unknown env or an unmappable space fails
    // before the run directory exists.
    Hosted::new(&factory, 1, false)
        .map_err(|e| TrainError::invalid("env.python", e.to_string()))?;
    Ok(Box::new(factory))
}

/// Builds hosted batches of one Python environment.
#[derive(Debug)]
struct PythonEnvFactory {
    spec: String,
    kwargs: String,
}

impl EnvFactory for PythonEnvFactory {
    fn make_train(&self, n_envs: usize) -> hlynr_rl::trainer::Result<Box<dyn BatchEnv>> {
        Ok(Box::new(Hosted::new(self, n_envs, true)?))
    }

    fn make_eval(&self) -> hlynr_env::Result<Box<dyn hlynr_env::Env>> {
        Ok(Box::new(HostedEnv(Hosted::new(self, 1, false)?)))
    }
}

/// What a hosted batch saves in checkpoints: not the envs (Python envs keep
/// no snapshots) but how to start fresh episodes on resume.
#[derive(Debug, Default, Serialize, Deserialize)]
struct HostedState {
    seed: u64,
    restarts: u64,
}

/// A batch of Python environments (see the module docs).
struct Hosted {
    host: Py<PyAny>,
    spec: String,
    n: usize,
    observation_space: Space,
    /// The Gymnasium observation space as its users write it, for messages.
    observation_name: String,
    action_space: Space,
    state: HostedState,
    obs: Vec<f32>,
    obs_bytes: Vec<u8>,
    rewards: Vec<f32>,
    /// Undiscounted return and length of each env's episode so far.
    returns: Vec<f64>,
    lengths: Vec<u64>,
    terminated: Vec<bool>,
    truncated: Vec<bool>,
    infos: Vec<Info>,
    /// Per env: where its final observation starts in `finals`, if it
    /// finished on the last step.
    final_at: Vec<Option<usize>>,
    finals: Vec<f32>,
    final_bytes: Vec<u8>,
    /// The loop over envs run from Rust, where the spaces allow it.
    direct: Option<Direct>,
}

impl std::fmt::Debug for Hosted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hosted")
            .field("spec", &self.spec)
            .field("n", &self.n)
            .finish_non_exhaustive()
    }
}

/// How errors name the env `spec`.
fn context(spec: &str) -> String {
    format!("Python env {spec}")
}

/// The Python exception `e` with its traceback, as the interpreter prints it.
fn traceback(py: Python<'_>, e: &PyErr) -> String {
    let formatted = (|| -> PyResult<String> {
        let tb = py.import("traceback")?;
        let lines = tb.call_method1(
            "format_exception",
            (e.get_type(py), e.value(py), e.traceback(py)),
        )?;
        let text: Vec<String> = lines.extract()?;
        Ok(text.concat())
    })();
    formatted.unwrap_or_else(|_| e.to_string())
}

/// Bytes of one flag each (0 or 1) into `out`.
fn decode_flags(bytes: &[u8], out: &mut Vec<bool>) {
    out.clear();
    out.extend(bytes.iter().map(|&b| b != 0));
}

/// What `Host.step` returns (see `_host.py`); the byte strings are read in
/// place, not copied element by element.
type StepReply<'py> = (
    Bound<'py, PyBytes>,
    Bound<'py, PyBytes>,
    Vec<f64>,
    Bound<'py, PyBytes>,
    Bound<'py, PyBytes>,
    Vec<usize>,
    Bound<'py, PyBytes>,
    Bound<'py, PyBytes>,
    Vec<(usize, bool)>,
);

impl Hosted {
    fn new(factory: &PythonEnvFactory, n: usize, autoreset: bool) -> hlynr_env::Result<Self> {
        let spec = factory.spec.clone();
        Python::attach(|py| -> PyResult<Self> {
            let host = py.import("hlynr._host")?.getattr("Host")?.call1((
                &factory.spec,
                &factory.kwargs,
                n,
                autoreset,
            ))?;
            let (obs_json, act_json, observation_name): (String, String, String) =
                host.call_method0("spaces")?.extract()?;
            let parse = |json: &str| -> PyResult<Space> {
                serde_json::from_str(json).map_err(crate::runtime_error)
            };
            let (observation_space, action_space) = (parse(&obs_json)?, parse(&act_json)?);
            let direct = Direct::for_host(&host, autoreset)?;
            Ok(Self {
                direct,
                obs: vec![0.0; n * observation_space.flat_dim()],
                obs_bytes: vec![0; n * observation_space.byte_dim()],
                rewards: vec![0.0; n],
                returns: vec![0.0; n],
                lengths: vec![0; n],
                terminated: vec![false; n],
                truncated: vec![false; n],
                infos: vec![Info::default(); n],
                final_at: vec![None; n],
                finals: Vec::new(),
                final_bytes: Vec::new(),
                observation_space,
                observation_name,
                action_space,
                host: host.unbind(),
                spec: spec.clone(),
                n,
                state: HostedState::default(),
            })
        })
        .map_err(|e| Python::attach(|py| EnvError::failed(context(&spec), traceback(py, &e))))
    }

    fn fail(&self, py: Python<'_>, e: PyErr) -> EnvError {
        EnvError::failed(context(&self.spec), traceback(py, &e))
    }

    /// Checks observations (`rows` of them, env `who(k)` for row `k`)
    /// against the observation space: bounds, finiteness, discrete ranges.
    fn check_rows(&self, values: &[f32], who: impl Fn(usize) -> usize) -> hlynr_env::Result<()> {
        let d = self.observation_space.flat_dim();
        if d == 0 {
            return Ok(());
        }
        for (k, row) in values.chunks_exact(d).enumerate() {
            self.observation_space.check(row).map_err(|message| {
                EnvError::failed(
                    context(&self.spec),
                    format!(
                        "env {}'s observation is outside {}: {message} (hlynr's flat encoding)",
                        who(k),
                        self.observation_name
                    ),
                )
            })?;
        }
        Ok(())
    }

    fn reset_with(&mut self, seed: Option<u64>) -> hlynr_env::Result<()> {
        Python::attach(|py| {
            let reply = self
                .host
                .call_method1(py, intern!(py, "reset"), (seed,))
                .and_then(|r| {
                    r.into_bound(py)
                        .extract::<(Bound<'_, PyBytes>, Bound<'_, PyBytes>)>()
                });
            let (values, bytes) = reply.map_err(|e| self.fail(py, e))?;
            crate::decode_f32(values.as_bytes(), &mut self.obs);
            self.check_rows(&self.obs, |k| k)?;
            self.obs_bytes.clear();
            self.obs_bytes.extend_from_slice(bytes.as_bytes());
            self.returns.fill(0.0);
            self.lengths.fill(0);
            self.infos.iter_mut().for_each(Info::clear);
            self.final_at.fill(None);
            Ok(())
        })
    }

    fn step_with(&mut self, actions: &[f32]) -> hlynr_env::Result<()> {
        hlynr_env::check_action_batch(&self.action_space, self.n, actions)?;
        Python::attach(|py| {
            let direct = self.direct.take();
            let stepped = match &direct {
                Some(d) => self.step_direct(py, d, actions),
                None => self.step_python(py, actions),
            };
            self.direct = direct;
            let (rewards, finished, success) = stepped.map_err(|e| self.fail(py, e))?;
            self.infos.iter_mut().for_each(Info::clear);
            self.rewards.clear();
            for (i, &reward) in rewards.iter().enumerate() {
                self.rewards.push(reward as f32);
                self.returns[i] += reward;
                self.lengths[i] += 1;
                if self.terminated[i] || self.truncated[i] {
                    self.infos[i].episode = Some(EpisodeStats {
                        episode_return: std::mem::take(&mut self.returns[i]),
                        episode_length: std::mem::take(&mut self.lengths[i]),
                    });
                }
            }
            for (i, ok) in success {
                self.infos[i].is_success = Some(ok);
            }
            self.final_at.fill(None);
            for (k, &i) in finished.iter().enumerate() {
                self.final_at[i] = Some(k);
            }
            self.check_rows(&self.obs, |k| k)?;
            self.check_rows(&self.finals, |k| finished[k])?;
            debug_assert_eq!(
                self.finals.len(),
                finished.len() * self.observation_space.flat_dim()
            );
            Ok(())
        })
    }

    /// One step through `Host.step`: observations, flags and final
    /// observations into `self`; returns the rewards, the envs that finished
    /// (and were reset) and their successes.
    fn step_python(&mut self, py: Python<'_>, actions: &[f32]) -> PyResult<StepOutcome> {
        let raw = crate::f32_ne_bytes(actions);
        let reply = self
            .host
            .call_method1(py, intern!(py, "step"), (PyBytes::new(py, &raw),))?
            .into_bound(py);
        let (values, bytes, rewards, terminated, truncated, finished, finals, final_bytes, success) =
            reply.extract::<StepReply<'_>>()?;
        crate::decode_f32(values.as_bytes(), &mut self.obs);
        self.obs_bytes.clear();
        self.obs_bytes.extend_from_slice(bytes.as_bytes());
        decode_flags(terminated.as_bytes(), &mut self.terminated);
        decode_flags(truncated.as_bytes(), &mut self.truncated);
        crate::decode_f32(finals.as_bytes(), &mut self.finals);
        self.final_bytes.clear();
        self.final_bytes.extend_from_slice(final_bytes.as_bytes());
        Ok((rewards, finished, success))
    }

    /// [`Self::step_python`] with the loop over envs run here (see
    /// `host_direct.rs`).
    fn step_direct(
        &mut self,
        py: Python<'_>,
        direct: &Direct,
        actions: &[f32],
    ) -> PyResult<StepOutcome> {
        let mut out = DirectStep::default();
        direct.step(
            py,
            actions,
            &mut Lanes {
                values: &mut self.obs,
                bytes: &mut self.obs_bytes,
            },
            &mut Lanes {
                values: &mut self.finals,
                bytes: &mut self.final_bytes,
            },
            &mut out,
        )?;
        self.terminated.clone_from(&out.terminated);
        self.truncated.clone_from(&out.truncated);
        Ok((out.rewards, out.finished, out.success))
    }
}

/// Rewards, the envs that finished and were reset, and `(env, is_success)`.
type StepOutcome = (Vec<f64>, Vec<usize>, Vec<(usize, bool)>);

impl Drop for Hosted {
    fn drop(&mut self) {
        Python::attach(|py| {
            let _ = self.host.call_method0(py, "close");
        });
    }
}

impl BatchEnv for Hosted {
    fn num_envs(&self) -> usize {
        self.n
    }
    fn observation_space(&self) -> &Space {
        &self.observation_space
    }
    fn action_space(&self) -> &Space {
        &self.action_space
    }
    fn reset(&mut self, seed: u64) -> hlynr_env::Result<()> {
        self.state = HostedState { seed, restarts: 0 };
        self.reset_with(Some(seed))
    }
    fn step(&mut self, actions: &[f32]) -> hlynr_env::Result<()> {
        self.step_with(actions)
    }
    fn obs(&self) -> &[f32] {
        &self.obs
    }
    fn obs_bytes(&self) -> &[u8] {
        &self.obs_bytes
    }
    fn rewards(&self) -> &[f32] {
        &self.rewards
    }
    fn terminated(&self) -> &[bool] {
        &self.terminated
    }
    fn truncated(&self) -> &[bool] {
        &self.truncated
    }
    fn infos(&self) -> &[Info] {
        &self.infos
    }
    fn final_observation(&self, i: usize) -> Option<&[f32]> {
        let d = self.observation_space.flat_dim();
        self.final_at
            .get(i)
            .copied()
            .flatten()
            .map(|k| &self.finals[k * d..(k + 1) * d])
    }
    fn final_observation_bytes(&self, i: usize) -> Option<&[u8]> {
        let d = self.observation_space.byte_dim();
        self.final_at
            .get(i)
            .copied()
            .flatten()
            .map(|k| &self.final_bytes[k * d..(k + 1) * d])
    }
    fn state(&self) -> Value {
        hlynr_env::env::to_state(&self.state)
    }
    /// Python envs keep no snapshots: restoring starts fresh episodes
    /// from a seed derived from the saved one and the restart count.
    fn set_state(&mut self, state: &Value) -> hlynr_env::Result<()> {
        let saved: HostedState = hlynr_env::env::from_state("Python env batch", state)?;
        let restarts = saved.restarts + 1;
        self.reset_with(Some(hlynr_rng::derive_seed(saved.seed, restarts)))?;
        self.state = HostedState {
            seed: saved.seed,
            restarts,
        };
        Ok(())
    }
}

/// One hosted Python env without automatic reset: the evaluation env.
#[derive(Debug)]
struct HostedEnv(Hosted);

impl hlynr_env::Env for HostedEnv {
    fn observation_space(&self) -> &Space {
        &self.0.observation_space
    }
    fn action_space(&self) -> &Space {
        &self.0.action_space
    }
    fn reset(
        &mut self,
        seed: Option<u64>,
        obs: ObsMut<'_>,
        info: &mut Info,
    ) -> hlynr_env::Result<()> {
        self.0.reset_with(seed)?;
        obs.values.copy_from_slice(&self.0.obs);
        obs.bytes.copy_from_slice(&self.0.obs_bytes);
        info.clear();
        Ok(())
    }
    fn step(
        &mut self,
        action: &[f32],
        obs: ObsMut<'_>,
        info: &mut Info,
    ) -> hlynr_env::Result<Step> {
        self.0.step_with(action)?;
        obs.values.copy_from_slice(&self.0.obs);
        obs.bytes.copy_from_slice(&self.0.obs_bytes);
        *info = self.0.infos[0].clone();
        Ok(Step {
            reward: f64::from(self.0.rewards[0]),
            terminated: self.0.terminated[0],
            truncated: self.0.truncated[0],
        })
    }
}

/// Steps `num_envs` hosted copies of the Python env `spec` for `steps`
/// batch steps with uniformly random actions, as the trainer steps them,
/// and returns the seconds taken: the measure of hosting's cost against a
/// plain Python loop over the same envs (`scripts/bench_python_bridge.py`).
#[pyfunction]
pub fn bench_hosted(
    py: Python<'_>,
    spec: String,
    kwargs_json: String,
    num_envs: usize,
    steps: usize,
    seed: u64,
) -> PyResult<f64> {
    let factory = PythonEnvFactory {
        spec,
        kwargs: kwargs_json,
    };
    let mut batch = Hosted::new(&factory, num_envs, true).map_err(crate::value_error)?;
    py.detach(|| {
        let mut rng = hlynr_rng::Rng::seed_from_u64(seed);
        let dim = batch.action_space.flat_dim();
        let mut actions = vec![0.0; num_envs * dim];
        batch.reset(seed)?;
        let start = std::time::Instant::now();
        for _ in 0..steps {
            for row in actions.chunks_exact_mut(dim) {
                batch.action_space.sample(&mut rng, row);
            }
            batch.step(&actions)?;
        }
        Ok(start.elapsed().as_secs_f64())
    })
    .map_err(|e: EnvError| crate::runtime_error(e))
}
