//! The common hosted case stepped from Rust: an env whose observation is one
//! numeric `Box` and whose action is one `Discrete`. There the cost of a
//! Python loop around `env.step` shows against a fast env (CartPole steps in
//! about 7 us), so Rust calls each env's `step` itself and reads the
//! observation's bytes, with the checks the Python codec makes (type, dtype,
//! shape; its error message on failure). Every other space goes through the
//! Python loop in `_host.py`.

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};

/// The element type of the observation, as NumPy's dtype code names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Elem {
    F32,
    F64,
    I8,
    I16,
    I32,
    I64,
    U8,
    U16,
    U32,
    U64,
}

impl Elem {
    /// A native-endian dtype code (`"f4"`, `"u1"`, ...) the direct path reads.
    fn parse(code: &str) -> Option<Self> {
        Some(match code {
            "f4" => Elem::F32,
            "f8" => Elem::F64,
            "i1" => Elem::I8,
            "i2" => Elem::I16,
            "i4" => Elem::I32,
            "i8" => Elem::I64,
            "u1" => Elem::U8,
            "u2" => Elem::U16,
            "u4" => Elem::U32,
            "u8" => Elem::U64,
            _ => return None,
        })
    }

    /// Appends the values of `raw` (native-endian elements) as `f32`.
    fn push_f32(self, raw: &[u8], out: &mut Vec<f32>) {
        macro_rules! convert {
            ($t:ty) => {
                out.extend(
                    raw.chunks_exact(std::mem::size_of::<$t>())
                        .map(|c| <$t>::from_ne_bytes(c.try_into().expect("chunk size")) as f32),
                )
            };
        }
        match self {
            Elem::F32 => convert!(f32),
            Elem::F64 => convert!(f64),
            Elem::I8 => convert!(i8),
            Elem::I16 => convert!(i16),
            Elem::I32 => convert!(i32),
            Elem::I64 => convert!(i64),
            Elem::U8 => convert!(u8),
            Elem::U16 => convert!(u16),
            Elem::U32 => convert!(u32),
            Elem::U64 => convert!(u64),
        }
    }
}

/// Where one step's observations go: the lane of the next observations or
/// of the final ones.
pub struct Lanes<'a> {
    pub values: &'a mut Vec<f32>,
    pub bytes: &'a mut Vec<u8>,
}

/// What a direct step reports besides the observations.
#[derive(Debug, Default)]
pub struct DirectStep {
    pub rewards: Vec<f64>,
    pub terminated: Vec<bool>,
    pub truncated: Vec<bool>,
    /// Envs that finished and were reset (automatic reset only).
    pub finished: Vec<usize>,
    /// `(env, is_success)` for finished envs whose info says.
    pub success: Vec<(usize, bool)>,
}

/// What `Host.direct()` returns: the envs, the observation's dtype, shape
/// and dtype code, the action's start, and the error-raising function.
type Plan = (Vec<Py<PyAny>>, Py<PyAny>, Py<PyAny>, String, i64, Py<PyAny>);

/// The envs and what checking their observations takes.
pub struct Direct {
    envs: Vec<Py<PyAny>>,
    ndarray: Py<PyAny>,
    dtype: Py<PyAny>,
    shape: Py<PyAny>,
    elem: Elem,
    /// The Gymnasium action's `start`.
    start: i64,
    /// Raises the codec's error for a bad observation: `refuse(obs, env)`.
    refuse: Py<PyAny>,
    autoreset: bool,
}

impl Direct {
    /// The direct path for `host` (a `hlynr._host.Host`), where its spaces
    /// allow one (`Host.direct()` says).
    pub fn for_host(host: &Bound<'_, PyAny>, autoreset: bool) -> PyResult<Option<Self>> {
        let py = host.py();
        let plan = host.call_method0("direct")?;
        if plan.is_none() {
            return Ok(None);
        }
        let (envs, dtype, shape, code, start, refuse): Plan = plan.extract()?;
        let Some(elem) = Elem::parse(&code) else {
            return Ok(None);
        };
        let ndarray = py.import("numpy")?.getattr("ndarray")?.unbind();
        Ok(Some(Self {
            envs,
            ndarray,
            dtype,
            shape,
            elem,
            start,
            refuse,
            autoreset,
        }))
    }

    /// Checks `obs` as the Python codec does and appends it to `lanes`.
    fn encode(&self, obs: &Bound<'_, PyAny>, env: usize, lanes: &mut Lanes<'_>) -> PyResult<()> {
        let py = obs.py();
        let fits = obs.get_type().is(self.ndarray.bind(py))
            && obs.getattr(intern!(py, "dtype"))?.eq(self.dtype.bind(py))?
            && obs.getattr(intern!(py, "shape"))?.eq(self.shape.bind(py))?;
        if !fits {
            self.refuse.call1(py, (obs, env))?;
            return Err(pyo3::exceptions::PyValueError::new_err(
                "observation outside its space",
            ));
        }
        let raw = obs.call_method0(intern!(py, "tobytes"))?;
        let raw = raw.cast::<PyBytes>()?.as_bytes();
        match self.elem {
            Elem::U8 => lanes.bytes.extend_from_slice(raw),
            elem => elem.push_f32(raw, lanes.values),
        }
        Ok(())
    }

    /// Steps every env with its action index (`actions`, one per env),
    /// writing the observations to `next` and, for envs that finished and
    /// were reset, their final observations to `finals` (both cleared
    /// first).
    pub fn step(
        &self,
        py: Python<'_>,
        actions: &[f32],
        next: &mut Lanes<'_>,
        finals: &mut Lanes<'_>,
        out: &mut DirectStep,
    ) -> PyResult<()> {
        next.values.clear();
        next.bytes.clear();
        finals.values.clear();
        finals.bytes.clear();
        out.rewards.clear();
        out.terminated.clear();
        out.truncated.clear();
        out.finished.clear();
        out.success.clear();
        for (i, env) in self.envs.iter().enumerate() {
            let action = actions[i] as i64 + self.start;
            let reply = env.call_method1(py, intern!(py, "step"), (action,))?;
            let reply = reply.bind(py).cast::<PyTuple>()?;
            if reply.len() != 5 {
                return Err(pyo3::exceptions::PyValueError::new_err(format!(
                    "env {i}'s step returned {} values, not (obs, reward, terminated, truncated, info)",
                    reply.len()
                )));
            }
            let obs = reply.get_item(0)?;
            out.rewards.push(reply.get_item(1)?.extract()?);
            let terminated = reply.get_item(2)?.is_truthy()?;
            let truncated = reply.get_item(3)?.is_truthy()?;
            out.terminated.push(terminated);
            out.truncated.push(truncated);
            if !(terminated || truncated) {
                self.encode(&obs, i, next)?;
                continue;
            }
            let info = reply.get_item(4)?;
            let key = intern!(py, "is_success");
            if info.contains(key)? {
                out.success.push((i, info.get_item(key)?.is_truthy()?));
            }
            if self.autoreset {
                self.encode(&obs, i, finals)?;
                out.finished.push(i);
                let reset = env.call_method0(py, intern!(py, "reset"))?;
                self.encode(&reset.bind(py).get_item(0)?, i, next)?;
            } else {
                self.encode(&obs, i, next)?;
            }
        }
        Ok(())
    }
}
