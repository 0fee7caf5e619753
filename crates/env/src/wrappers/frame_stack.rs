//! Stacks the last k observations into one.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::env::{Env, Info, Step, from_state, to_state};
use crate::error::{EnvError, Result};
use crate::obs::ObsMut;
use crate::policy::{Policy, PolicyInput};
use crate::space::Space;
use crate::vec_env::{copy_f32_bits, f32_bits};

/// The last `k` frames of one lane of the observation, oldest first.
#[derive(Debug, Clone)]
struct Frames<T> {
    frame_len: usize,
    /// `[k, frame_len]`.
    data: Vec<T>,
}

impl<T: Copy + Default> Frames<T> {
    fn new(k: usize, frame_len: usize) -> Self {
        Self {
            frame_len,
            data: vec![T::default(); k * frame_len],
        }
    }

    /// The newest frame, to be written by the inner environment.
    fn newest_mut(&mut self) -> &mut [T] {
        let at = self.data.len() - self.frame_len;
        &mut self.data[at..]
    }

    /// Drops the oldest frame; the newest slot keeps stale data until written.
    fn shift(&mut self) {
        self.data.copy_within(self.frame_len.., 0);
    }

    /// Copies the newest frame into every older slot (a fresh episode).
    fn fill_with_newest(&mut self) {
        let d = self.frame_len;
        if d == 0 {
            return;
        }
        let at = self.data.len() - d;
        let (older, newest) = self.data.split_at_mut(at);
        for frame in older.chunks_exact_mut(d) {
            frame.copy_from_slice(newest);
        }
    }

    /// Pushes `frame` as row `row`'s newest of `[rows, k, frame_len]` storage
    /// `all`; a fresh row gets it in every slot.
    fn push_row(all: &mut [T], stacked: usize, row: usize, frame: &[T], fresh: bool) {
        let d = frame.len();
        let frames = &mut all[row * stacked..(row + 1) * stacked];
        if d == 0 {
            return;
        }
        if fresh {
            for slot in frames.chunks_exact_mut(d) {
                slot.copy_from_slice(frame);
            }
        } else {
            frames.copy_within(d.., 0);
            frames[stacked - d..].copy_from_slice(frame);
        }
    }
}

/// Observation = the last `k` inner observations concatenated, oldest first
/// (each lane on its own: values after values, bytes after bytes).
///
/// Gives a memoryless policy a short history (velocities from positions, motion
/// from camera frames). On reset every slot holds the first observation, so the
/// stacked observation is well defined from the first step. The stacked space
/// repeats the inner one `k` times: a `Box` of shape `[d...]` becomes a `Box` of
/// shape `[k, d...]` with the bounds repeated and the dtype kept (four `u8`
/// frames of 64x64 are 16 KiB); `Discrete(n)` becomes `MultiDiscrete([n; k])`.
#[derive(Debug, Clone)]
pub struct FrameStack<E> {
    inner: E,
    k: usize,
    observation_space: Space,
    values: Frames<f32>,
    bytes: Frames<u8>,
}

#[derive(Serialize, Deserialize)]
struct FrameStackState {
    k: usize,
    frames: Vec<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty", with = "crate::hex")]
    bytes: Vec<u8>,
    inner: Value,
}

/// The space of `k` concatenated elements of `space`.
fn stacked_space(space: &Space, k: usize) -> Space {
    match space {
        Space::Box {
            low,
            high,
            shape,
            dtype,
        } => {
            let mut stacked_shape = Vec::with_capacity(shape.len() + 1);
            stacked_shape.push(k);
            stacked_shape.extend_from_slice(shape);
            Space::Box {
                low: low.repeat(k),
                high: high.repeat(k),
                shape: stacked_shape,
                dtype: *dtype,
            }
        }
        Space::Discrete { n } => Space::MultiDiscrete { nvec: vec![*n; k] },
        Space::MultiDiscrete { nvec } => Space::MultiDiscrete {
            nvec: nvec.repeat(k),
        },
        Space::Tuple { spaces } => Space::Tuple {
            spaces: (0..k).flat_map(|_| spaces.iter().cloned()).collect(),
        },
    }
}

/// The space of one element of `stacked`, the space of `k` stacked
/// elements ([`FrameStack`]'s inverse): what a policy trained behind a frame
/// stack is fed one observation at a time. `None` when `stacked` cannot be
/// such a space. A stacked `MultiDiscrete` of `k` entries unstacks to
/// `Discrete` (the two stack alike).
pub fn unstacked_space(stacked: &Space, k: usize) -> Option<Space> {
    if k == 0 {
        return None;
    }
    match stacked {
        Space::Box {
            low,
            high,
            shape,
            dtype,
        } => {
            let (&first, rest) = shape.split_first()?;
            let n: usize = rest.iter().product();
            (first == k).then(|| Space::Box {
                low: low[..n].to_vec(),
                high: high[..n].to_vec(),
                shape: rest.to_vec(),
                dtype: *dtype,
            })
        }
        Space::MultiDiscrete { nvec } if nvec.len() == k => Some(Space::Discrete { n: nvec[0] }),
        Space::MultiDiscrete { nvec } if nvec.len().is_multiple_of(k) => {
            Some(Space::MultiDiscrete {
                nvec: nvec[..nvec.len() / k].to_vec(),
            })
        }
        Space::Tuple { spaces } if !spaces.is_empty() && spaces.len().is_multiple_of(k) => {
            Some(Space::Tuple {
                spaces: spaces[..spaces.len() / k].to_vec(),
            })
        }
        _ => None,
    }
    .filter(|one| stacked_space(one, k) == *stacked)
}

impl<E: Env> FrameStack<E> {
    /// Wraps `inner`, stacking `k >= 1` observations.
    pub fn new(inner: E, k: usize) -> Result<Self> {
        if k == 0 {
            return Err(EnvError::invalid(
                "FrameStack",
                "k must be at least 1, got 0",
            ));
        }
        let space = inner.observation_space();
        let observation_space = stacked_space(space, k);
        Ok(Self {
            values: Frames::new(k, space.flat_dim()),
            bytes: Frames::new(k, space.byte_dim()),
            inner,
            k,
            observation_space,
        })
    }

    /// Number of stacked observations.
    pub fn k(&self) -> usize {
        self.k
    }

    /// The wrapped environment.
    pub fn inner(&self) -> &E {
        &self.inner
    }

    /// The wrapped environment, mutably.
    pub fn inner_mut(&mut self) -> &mut E {
        &mut self.inner
    }

    /// Unwraps the environment.
    pub fn into_inner(self) -> E {
        self.inner
    }

    fn write(&self, obs: ObsMut<'_>) {
        obs.values.copy_from_slice(&self.values.data);
        obs.bytes.copy_from_slice(&self.bytes.data);
    }
}

impl<E: Env> Env for FrameStack<E> {
    fn observation_space(&self) -> &Space {
        &self.observation_space
    }

    fn action_space(&self) -> &Space {
        self.inner.action_space()
    }

    fn reset(&mut self, seed: Option<u64>, obs: ObsMut<'_>, info: &mut Info) -> Result<()> {
        let newest = ObsMut::new(self.values.newest_mut(), self.bytes.newest_mut());
        self.inner.reset(seed, newest, info)?;
        self.values.fill_with_newest();
        self.bytes.fill_with_newest();
        self.write(obs);
        Ok(())
    }

    #[inline]
    fn step(&mut self, action: &[f32], obs: ObsMut<'_>, info: &mut Info) -> Result<Step> {
        // Drop the oldest frame, then let the inner env write the newest in place.
        self.values.shift();
        self.bytes.shift();
        let newest = ObsMut::new(self.values.newest_mut(), self.bytes.newest_mut());
        let step = self.inner.step(action, newest, info)?;
        self.write(obs);
        Ok(step)
    }

    fn state(&self) -> Value {
        to_state(&FrameStackState {
            k: self.k,
            frames: f32_bits(&self.values.data),
            bytes: self.bytes.data.clone(),
            inner: self.inner.state(),
        })
    }

    fn set_state(&mut self, state: &Value) -> Result<()> {
        let saved: FrameStackState = from_state("FrameStack", state)?;
        if saved.k != self.k
            || saved.frames.len() != self.values.data.len()
            || saved.bytes.len() != self.bytes.data.len()
        {
            return Err(EnvError::state(
                "FrameStack",
                format!(
                    "saved k = {} with {} values and {} bytes, this wrapper has k = {} with {} and {}",
                    saved.k,
                    saved.frames.len(),
                    saved.bytes.len(),
                    self.k,
                    self.values.data.len(),
                    self.bytes.data.len()
                ),
            ));
        }
        self.inner.set_state(&saved.inner)?;
        copy_f32_bits(&saved.frames, &mut self.values.data);
        self.bytes.data.copy_from_slice(&saved.bytes);
        Ok(())
    }

    fn controller_view_dim(&self) -> usize {
        self.inner.controller_view_dim()
    }

    fn write_controller_view(&self, out: &mut [f64]) {
        self.inner.write_controller_view(out)
    }
}

/// A policy trained behind [`FrameStack`], acting on the bare environment: it
/// stacks the last `k` observations of each row itself, exactly as the
/// wrapper does (oldest first, lane by lane; every slot holds the first
/// observation after [`Policy::reset_rows`]). Evaluation uses it to run such a
/// model beside baselines that read the unwrapped observation and controller
/// view.
#[derive(Debug, Clone)]
pub struct FrameStackPolicy<P> {
    inner: P,
    k: usize,
    frame_dim: usize,
    frame_bytes: usize,
    /// `[rows, k, frame_dim]`, oldest first per row.
    values: Vec<f32>,
    /// `[rows, k, frame_bytes]`, oldest first per row.
    bytes: Vec<u8>,
    /// Rows whose next observation starts an episode.
    fresh: Vec<bool>,
}

impl<P: Policy> FrameStackPolicy<P> {
    /// Wraps `inner`, which acts on `stacked_space`, the space of `k >= 1`
    /// stacked observations (the [`FrameStack`] wrapper's space).
    pub fn new(inner: P, k: usize, stacked_space: &Space) -> Result<Self> {
        let (values, bytes) = (stacked_space.flat_dim(), stacked_space.byte_dim());
        if k == 0 || !values.is_multiple_of(k) || !bytes.is_multiple_of(k) {
            return Err(EnvError::invalid(
                "FrameStackPolicy",
                format!("cannot split {values} values and {bytes} bytes into k = {k} frames"),
            ));
        }
        Ok(Self {
            inner,
            k,
            frame_dim: values / k,
            frame_bytes: bytes / k,
            values: Vec::new(),
            bytes: Vec::new(),
            fresh: Vec::new(),
        })
    }

    /// The wrapped policy.
    pub fn inner(&self) -> &P {
        &self.inner
    }

    /// Makes room for `rows` rows; new rows start fresh.
    fn ensure_rows(&mut self, rows: usize) {
        if self.fresh.len() < rows {
            self.fresh.resize(rows, true);
            self.values.resize(rows * self.k * self.frame_dim, 0.0);
            self.bytes.resize(rows * self.k * self.frame_bytes, 0);
        }
    }
}

impl<P: Policy> Policy for FrameStackPolicy<P> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn act(
        &mut self,
        input: &PolicyInput<'_>,
        deterministic: bool,
        actions: &mut [f32],
    ) -> std::result::Result<(), String> {
        let (n, d, b) = (input.n, self.frame_dim, self.frame_bytes);
        if input.obs.len() != n * d || input.obs_bytes.len() != n * b {
            return Err(format!(
                "frame stack of {} x ({d} values, {b} bytes): got {} observation values and {} bytes for {n} rows",
                self.k,
                input.obs.len(),
                input.obs_bytes.len()
            ));
        }
        self.ensure_rows(n);
        let (stacked_values, stacked_bytes) = (self.k * d, self.k * b);
        for row in 0..n {
            let fresh = std::mem::take(&mut self.fresh[row]);
            let frame = input.obs_row(row);
            Frames::push_row(&mut self.values, stacked_values, row, frame.values, fresh);
            Frames::push_row(&mut self.bytes, stacked_bytes, row, frame.bytes, fresh);
        }
        let stacked_input = PolicyInput {
            n,
            obs: &self.values[..n * stacked_values],
            obs_bytes: &self.bytes[..n * stacked_bytes],
            controller_view: input.controller_view,
        };
        self.inner.act(&stacked_input, deterministic, actions)
    }

    fn reset_rows(&mut self, rows: &[usize]) {
        if let Some(&max) = rows.iter().max() {
            self.ensure_rows(max + 1);
        }
        for &row in rows {
            self.fresh[row] = true;
        }
        self.inner.reset_rows(rows);
    }
}
