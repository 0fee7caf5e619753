//! Stacks the last k observations into one.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::env::{Env, Info, Step, from_state, to_state};
use crate::error::{EnvError, Result};
use crate::policy::{Policy, PolicyInput};
use crate::space::Space;
use crate::vec_env::{copy_f32_bits, f32_bits};

/// Observation = the last `k` inner observations concatenated, oldest first.
///
/// Gives a memoryless policy a short history (velocities from positions). On
/// reset every slot holds the first observation, so the stacked observation is
/// well defined from the first step. The stacked space repeats the inner one
/// `k` times: a `Box` of shape `[d...]` becomes a `Box` of shape `[k, d...]` with
/// the bounds repeated; `Discrete(n)` becomes `MultiDiscrete([n; k])`.
#[derive(Debug, Clone)]
pub struct FrameStack<E> {
    inner: E,
    k: usize,
    frame_dim: usize,
    observation_space: Space,
    /// `[k, frame_dim]`, oldest first.
    frames: Vec<f32>,
}

#[derive(Serialize, Deserialize)]
struct FrameStackState {
    k: usize,
    frames: Vec<u32>,
    inner: Value,
}

/// The space of `k` concatenated elements of `space`.
fn stacked_space(space: &Space, k: usize) -> Space {
    match space {
        Space::Box { low, high, shape } => {
            let mut stacked_shape = Vec::with_capacity(shape.len() + 1);
            stacked_shape.push(k);
            stacked_shape.extend_from_slice(shape);
            Space::Box {
                low: low.repeat(k),
                high: high.repeat(k),
                shape: stacked_shape,
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

impl<E: Env> FrameStack<E> {
    /// Wraps `inner`, stacking `k >= 1` observations.
    pub fn new(inner: E, k: usize) -> Result<Self> {
        if k == 0 {
            return Err(EnvError::invalid(
                "FrameStack",
                "k must be at least 1, got 0",
            ));
        }
        let frame_dim = inner.observation_space().flat_dim();
        let observation_space = stacked_space(inner.observation_space(), k);
        Ok(Self {
            inner,
            k,
            frame_dim,
            observation_space,
            frames: vec![0.0; k * frame_dim],
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
}

impl<E: Env> Env for FrameStack<E> {
    fn observation_space(&self) -> &Space {
        &self.observation_space
    }

    fn action_space(&self) -> &Space {
        self.inner.action_space()
    }

    fn reset(&mut self, seed: Option<u64>, obs: &mut [f32], info: &mut Info) -> Result<()> {
        let d = self.frame_dim;
        let (older, newest) = self.frames.split_at_mut((self.k - 1) * d);
        self.inner.reset(seed, newest, info)?;
        if d > 0 {
            for frame in older.chunks_exact_mut(d) {
                frame.copy_from_slice(newest);
            }
        }
        obs.copy_from_slice(&self.frames);
        Ok(())
    }

    #[inline]
    fn step(&mut self, action: &[f32], obs: &mut [f32], info: &mut Info) -> Result<Step> {
        // Drop the oldest frame, then let the inner env write the newest in place.
        self.frames.copy_within(self.frame_dim.., 0);
        let newest = (self.k - 1) * self.frame_dim;
        let step = self.inner.step(action, &mut self.frames[newest..], info)?;
        obs.copy_from_slice(&self.frames);
        Ok(step)
    }

    fn state(&self) -> Value {
        to_state(&FrameStackState {
            k: self.k,
            frames: f32_bits(&self.frames),
            inner: self.inner.state(),
        })
    }

    fn set_state(&mut self, state: &Value) -> Result<()> {
        let saved: FrameStackState = from_state("FrameStack", state)?;
        if saved.k != self.k || saved.frames.len() != self.frames.len() {
            return Err(EnvError::state(
                "FrameStack",
                format!(
                    "saved k = {} with {} values, this wrapper has k = {} with {}",
                    saved.k,
                    saved.frames.len(),
                    self.k,
                    self.frames.len()
                ),
            ));
        }
        self.inner.set_state(&saved.inner)?;
        copy_f32_bits(&saved.frames, &mut self.frames);
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
/// wrapper does (oldest first; every slot holds the first observation after
/// [`Policy::reset_rows`]). Evaluation uses it to run such a model beside
/// baselines that read the unwrapped observation and controller view.
#[derive(Debug, Clone)]
pub struct FrameStackPolicy<P> {
    inner: P,
    k: usize,
    frame_dim: usize,
    /// `[rows, k, frame_dim]`, oldest first per row.
    frames: Vec<f32>,
    /// Rows whose next observation starts an episode.
    fresh: Vec<bool>,
}

impl<P: Policy> FrameStackPolicy<P> {
    /// Wraps `inner`, which expects `k >= 1` stacked observations of
    /// `frame_dim` values each.
    pub fn new(inner: P, k: usize, frame_dim: usize) -> Result<Self> {
        if k == 0 {
            return Err(EnvError::invalid(
                "FrameStackPolicy",
                "k must be at least 1, got 0",
            ));
        }
        Ok(Self {
            inner,
            k,
            frame_dim,
            frames: Vec::new(),
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
            self.frames.resize(rows * self.k * self.frame_dim, 0.0);
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
        let (n, d) = (input.n, self.frame_dim);
        if input.obs.len() != n * d {
            return Err(format!(
                "frame stack of {} x {d} values: got {} observation values for {n} rows",
                self.k,
                input.obs.len()
            ));
        }
        self.ensure_rows(n);
        let stacked = self.k * d;
        for (row, obs) in input.obs.chunks_exact(d.max(1)).enumerate() {
            let frames = &mut self.frames[row * stacked..(row + 1) * stacked];
            if std::mem::take(&mut self.fresh[row]) {
                for frame in frames.chunks_exact_mut(d.max(1)) {
                    frame.copy_from_slice(obs);
                }
            } else {
                frames.copy_within(d.., 0);
                frames[stacked - d..].copy_from_slice(obs);
            }
        }
        let stacked_input = PolicyInput {
            n,
            obs: &self.frames[..n * stacked],
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
