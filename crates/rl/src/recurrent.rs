//! The LSTM front end of recurrent policies, and the rollout-side storage of
//! the sequences recurrent PPO trains on.
//!
//! # Network
//!
//! ```text
//! obs -> lstm_actor  -> pi MLP -> action head
//! obs -> lstm_critic -> vf MLP -> value head      (shared_lstm: false)
//! obs -> lstm_actor -+-> pi ... / -> vf ...       (shared_lstm: true)
//! ```
//!
//! Separate actor and critic LSTMs (the default, as sb3-contrib's
//! `RecurrentPPO`) keep a badly scaled value loss from wrecking the policy's
//! memory; a shared LSTM halves the cost and trains the memory on both losses.
//! Parameter names follow PyTorch (`lstm_actor.weight_ih_l0`, ...).
//!
//! # Carried state
//!
//! During rollouts and evaluation the LSTMs run one step at a time on a
//! *carried* `(h, c)` per environment row. The state of a row is zeroed as
//! soon as its episode ends (before the next observation, which belongs to a
//! new episode, is processed), so the network never mixes two episodes.
//!
//! # Training sequences
//!
//! A rollout of `n_steps` steps per env is cut into chunks of `bptt_length`
//! steps (truncated backpropagation through time). A *sequence* is one chunk
//! of one env: it starts from the carried state recorded when the rollout
//! reached the chunk, and carries an episode-start mask so the state is zeroed
//! inside the chunk wherever an episode began (the same convention as
//! [`hlynr_nn::Lstm::forward_sequence`]). Minibatches are sets of whole
//! sequences, laid out time-major: row `t * B + b` is step `t` of sequence `b`.

use hlynr_nn::{Lstm, LstmSaturation, NamedParam, NamedParamMut, NnError, Tensor};
use hlynr_rng::Rng;
use serde::{Deserialize, Serialize};

/// Name prefix of the actor (or shared) LSTM's parameters.
pub const ACTOR_LSTM_PREFIX: &str = "lstm_actor.";
/// Name prefix of the critic LSTM's parameters.
pub const CRITIC_LSTM_PREFIX: &str = "lstm_critic.";

/// A minibatch of training sequences: initial states and episode-start masks.
#[derive(Clone, Debug, Default)]
pub struct SequenceBatch {
    /// Steps per sequence (`T`).
    pub steps: usize,
    /// Sequences (`B`).
    pub batch: usize,
    /// `[T * B]`, time-major: 1.0 where an episode starts at step `t` of sequence `b`.
    pub reset: Vec<f32>,
    /// Initial actor state, `[B, H]` each.
    pub h0_actor: Tensor,
    /// See `h0_actor`.
    pub c0_actor: Tensor,
    /// Initial critic state, `[B, H]` each (empty with a shared LSTM).
    pub h0_critic: Tensor,
    /// See `h0_critic`.
    pub c0_critic: Tensor,
}

/// The carried LSTM state of every env row, as saved in a checkpoint. Values
/// are stored as `f32` bit patterns so a resumed run continues bit for bit.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CarriedState {
    /// Env rows.
    pub rows: usize,
    /// Hidden size.
    pub hidden: usize,
    /// `h` of the actor (or shared) LSTM, `[rows, hidden]`.
    pub h_actor: Vec<u32>,
    /// `c` of the actor LSTM.
    pub c_actor: Vec<u32>,
    /// `h` of the critic LSTM (empty when shared).
    pub h_critic: Vec<u32>,
    /// `c` of the critic LSTM (empty when shared).
    pub c_critic: Vec<u32>,
}

fn to_bits(t: &Tensor) -> Vec<u32> {
    t.data().iter().map(|v| v.to_bits()).collect()
}

fn from_bits(dst: &mut Tensor, rows: usize, hidden: usize, bits: &[u32]) -> Result<(), String> {
    if bits.len() != rows * hidden {
        return Err(format!(
            "{} values for a [{rows}, {hidden}] state",
            bits.len()
        ));
    }
    dst.resize(&[rows, hidden]);
    for (d, &b) in dst.data_mut().iter_mut().zip(bits) {
        *d = f32::from_bits(b);
    }
    Ok(())
}

/// The LSTM(s) in front of the policy and value MLPs, with the carried state
/// of the env rows they are stepping.
#[derive(Clone, Debug)]
pub struct RecurrentCore {
    actor: Lstm,
    /// `None` when the actor's LSTM is shared with the critic.
    critic: Option<Lstm>,
    h_actor: Tensor,
    c_actor: Tensor,
    h_critic: Tensor,
    c_critic: Tensor,
    // Scratch.
    x_seq: Tensor,
    feat_actor: Tensor,
    feat_critic: Tensor,
    peek_h: Tensor,
    peek_c: Tensor,
    grad_seq: Tensor,
    /// Gradient of the loss with respect to the sequence inputs, `[T * B, I]`.
    grad_input: Tensor,
}

impl RecurrentCore {
    /// LSTM(s) from `obs_dim` inputs to `hidden` features with PyTorch's
    /// default initialisation drawn from `rng` (actor first).
    pub fn new(obs_dim: usize, hidden: usize, shared: bool, rng: &mut Rng) -> Self {
        let actor = Lstm::new(obs_dim, hidden, rng);
        let critic = (!shared).then(|| Lstm::new(obs_dim, hidden, rng));
        Self {
            actor,
            critic,
            h_actor: Tensor::zeros(&[0, hidden]),
            c_actor: Tensor::zeros(&[0, hidden]),
            h_critic: Tensor::zeros(&[0, hidden]),
            c_critic: Tensor::zeros(&[0, hidden]),
            x_seq: Tensor::default(),
            feat_actor: Tensor::default(),
            feat_critic: Tensor::default(),
            peek_h: Tensor::default(),
            peek_c: Tensor::default(),
            grad_seq: Tensor::default(),
            grad_input: Tensor::default(),
        }
    }

    /// Hidden size `H` (the width of the features the MLPs receive).
    pub fn hidden_size(&self) -> usize {
        self.actor.hidden_size()
    }

    /// True when actor and critic share one LSTM.
    pub fn is_shared(&self) -> bool {
        self.critic.is_none()
    }

    /// Appends the parameters with their PyTorch names.
    pub fn params<'a>(&'a self, out: &mut Vec<NamedParam<'a>>) {
        self.actor.params(ACTOR_LSTM_PREFIX, out);
        if let Some(c) = &self.critic {
            c.params(CRITIC_LSTM_PREFIX, out);
        }
    }

    /// Mutable counterpart of [`RecurrentCore::params`].
    pub fn params_mut<'a>(&'a mut self, out: &mut Vec<NamedParamMut<'a>>) {
        self.actor.params_mut(ACTOR_LSTM_PREFIX, out);
        if let Some(c) = &mut self.critic {
            c.params_mut(CRITIC_LSTM_PREFIX, out);
        }
    }

    /// Number of env rows whose state is carried.
    pub fn rows(&self) -> usize {
        self.h_actor.rows()
    }

    /// Makes the carried state `n` rows, zeroed, unless it already is.
    pub fn ensure_rows(&mut self, n: usize) {
        if self.rows() == n {
            return;
        }
        let h = self.hidden_size();
        for t in [
            &mut self.h_actor,
            &mut self.c_actor,
            &mut self.h_critic,
            &mut self.c_critic,
        ] {
            t.resize_zeroed(&[n, h]);
        }
    }

    /// Zeroes the carried state of `rows` (episodes starting there). Rows
    /// outside the carried state are ignored.
    pub fn reset_rows(&mut self, rows: &[usize]) {
        for &r in rows {
            self.zero_row(r);
        }
    }

    /// Zeroes the carried state of every row whose `ended` flag is set.
    pub fn reset_ended(&mut self, ended: &[bool]) {
        for (r, _) in ended.iter().enumerate().filter(|(_, e)| **e) {
            self.zero_row(r);
        }
    }

    /// Zeroes row `r` of every carried tensor (nothing when out of range).
    fn zero_row(&mut self, r: usize) {
        if r >= self.rows() {
            return;
        }
        let h = self.hidden_size();
        for t in [
            &mut self.h_actor,
            &mut self.c_actor,
            &mut self.h_critic,
            &mut self.c_critic,
        ] {
            t.data_mut()[r * h..(r + 1) * h].fill(0.0);
        }
    }

    /// One step on `obs` (`[n, obs_dim]`, one row per carried env row),
    /// advancing the carried state; returns the actor and critic features
    /// (`[n, H]` each; the same tensor twice with a shared LSTM).
    pub fn step(&mut self, obs: &Tensor) -> Result<(&Tensor, &Tensor), NnError> {
        self.ensure_rows(obs.rows());
        self.actor.step(obs, &mut self.h_actor, &mut self.c_actor)?;
        match &mut self.critic {
            Some(c) => {
                c.step(obs, &mut self.h_critic, &mut self.c_critic)?;
                Ok((&self.h_actor, &self.h_critic))
            }
            None => Ok((&self.h_actor, &self.h_actor)),
        }
    }

    /// Critic features of one step on `obs` (`[k, obs_dim]`) from the carried
    /// state of `rows` (`k` indices), *without* advancing it: the value of an
    /// observation that is not followed by an action (a truncated episode's
    /// final observation, the observation after a rollout's last step).
    pub fn peek_critic(&mut self, obs: &Tensor, rows: &[usize]) -> Result<&Tensor, NnError> {
        let h = self.hidden_size();
        if obs.rows() != rows.len() || rows.iter().any(|&r| r >= self.rows()) {
            return Err(NnError::invalid(
                "RecurrentCore::peek_critic",
                format!(
                    "{} observation rows for rows {rows:?} of a {}-row carried state",
                    obs.rows(),
                    self.rows()
                ),
            ));
        }
        let (hs, cs, lstm) = match &mut self.critic {
            Some(c) => (&self.h_critic, &self.c_critic, c),
            None => (&self.h_actor, &self.c_actor, &mut self.actor),
        };
        self.peek_h.resize(&[rows.len(), h]);
        self.peek_c.resize(&[rows.len(), h]);
        for (k, &r) in rows.iter().enumerate() {
            self.peek_h.data_mut()[k * h..(k + 1) * h].copy_from_slice(hs.row(r));
            self.peek_c.data_mut()[k * h..(k + 1) * h].copy_from_slice(cs.row(r));
        }
        lstm.step(obs, &mut self.peek_h, &mut self.peek_c)?;
        Ok(&self.peek_h)
    }

    /// Runs the training sequences `seq` over `obs` (`[T * B, obs_dim]`,
    /// time-major) and caches them for [`RecurrentCore::backward_sequence`];
    /// returns actor and critic features, `[T * B, H]` each.
    pub fn forward_sequence(
        &mut self,
        obs: &Tensor,
        seq: &SequenceBatch,
    ) -> Result<(&Tensor, &Tensor), NnError> {
        let (t, b, h) = (seq.steps, seq.batch, self.hidden_size());
        let d = obs.cols();
        if obs.rows() != t * b || seq.reset.len() != t * b {
            return Err(NnError::invalid(
                "RecurrentCore::forward_sequence",
                format!(
                    "{} observation rows and {} reset flags for {t} steps x {b} sequences",
                    obs.rows(),
                    seq.reset.len()
                ),
            ));
        }
        self.x_seq.resize(&[t, b, d]);
        self.x_seq.data_mut().copy_from_slice(obs.data());
        let out = self.actor.forward_sequence(
            &self.x_seq,
            &seq.h0_actor,
            &seq.c0_actor,
            Some(&seq.reset),
        )?;
        self.feat_actor.resize(&[t * b, h]);
        self.feat_actor.data_mut().copy_from_slice(out.data());
        match &mut self.critic {
            Some(c) => {
                let out = c.forward_sequence(
                    &self.x_seq,
                    &seq.h0_critic,
                    &seq.c0_critic,
                    Some(&seq.reset),
                )?;
                self.feat_critic.resize(&[t * b, h]);
                self.feat_critic.data_mut().copy_from_slice(out.data());
                Ok((&self.feat_actor, &self.feat_critic))
            }
            None => Ok((&self.feat_actor, &self.feat_actor)),
        }
    }

    /// Backpropagation through time of the last
    /// [`RecurrentCore::forward_sequence`], given the gradients of the actor
    /// and critic features (`[T * B, H]` each; summed when shared). Parameter
    /// gradients are added into each `Param::grad`; with `need_input_grad`
    /// the gradient with respect to the inputs (`[T * B, I]`, both LSTMs'
    /// summed) is returned, for a features extractor in front.
    pub fn backward_sequence(
        &mut self,
        grad_actor: &Tensor,
        grad_critic: &Tensor,
        need_input_grad: bool,
    ) -> Result<Option<&Tensor>, NnError> {
        let (t, b, h) = (self.actor_steps(), self.actor_batch(), self.hidden_size());
        grad_actor.expect_shape("RecurrentCore actor feature gradient", &[t * b, h])?;
        grad_critic.expect_shape("RecurrentCore critic feature gradient", &[t * b, h])?;
        self.grad_seq.resize(&[t, b, h]);
        // The critic's own LSTM first; a shared one takes both gradients.
        let critic_took_input = match &mut self.critic {
            Some(c) => {
                self.grad_seq.data_mut().copy_from_slice(grad_critic.data());
                let x = c
                    .backward_sequence(&self.grad_seq, None, None, need_input_grad)?
                    .x;
                if need_input_grad {
                    self.grad_input.copy_from(x);
                }
                self.grad_seq.data_mut().copy_from_slice(grad_actor.data());
                true
            }
            None => {
                for ((g, &a), &c) in self
                    .grad_seq
                    .data_mut()
                    .iter_mut()
                    .zip(grad_actor.data())
                    .zip(grad_critic.data())
                {
                    *g = a + c;
                }
                false
            }
        };
        let x = self
            .actor
            .backward_sequence(&self.grad_seq, None, None, need_input_grad)?
            .x;
        if need_input_grad {
            if critic_took_input {
                for (g, &v) in self.grad_input.data_mut().iter_mut().zip(x.data()) {
                    *g += v;
                }
            } else {
                self.grad_input.copy_from(x);
            }
        }
        if !need_input_grad {
            return Ok(None);
        }
        // `[T, B, I]` time-major is the row order of the inputs, `[T * B, I]`.
        let i = self.grad_input.len() / (t * b).max(1);
        self.grad_input.reshape(&[t * b, i])?;
        Ok(Some(&self.grad_input))
    }

    /// Actor and critic features of the last
    /// [`RecurrentCore::forward_sequence`] (the same tensor twice when shared).
    pub fn features(&self) -> [&Tensor; 2] {
        if self.is_shared() {
            [&self.feat_actor, &self.feat_actor]
        } else {
            [&self.feat_actor, &self.feat_critic]
        }
    }

    fn actor_steps(&self) -> usize {
        self.actor.output().shape().first().copied().unwrap_or(0)
    }

    fn actor_batch(&self) -> usize {
        self.actor.output().shape().get(1).copied().unwrap_or(0)
    }

    /// Saturation of the last training forward pass: the worse of the actor's
    /// and critic's LSTMs.
    pub fn saturation(&self) -> LstmSaturation {
        let a = self.actor.saturation();
        match &self.critic {
            Some(c) => {
                let s = c.saturation();
                LstmSaturation {
                    hidden: a.hidden.max(s.hidden),
                    gates: a.gates.max(s.gates),
                }
            }
            None => a,
        }
    }

    /// The carried state (actor `h`, `c`, critic `h`, `c`), `[rows, H]` each
    /// (the critic pair is unused when shared).
    pub fn carried(&self) -> [&Tensor; 4] {
        [&self.h_actor, &self.c_actor, &self.h_critic, &self.c_critic]
    }

    /// The carried state for a checkpoint.
    pub fn carried_state(&self) -> CarriedState {
        let shared = self.is_shared();
        CarriedState {
            rows: self.rows(),
            hidden: self.hidden_size(),
            h_actor: to_bits(&self.h_actor),
            c_actor: to_bits(&self.c_actor),
            h_critic: if shared {
                Vec::new()
            } else {
                to_bits(&self.h_critic)
            },
            c_critic: if shared {
                Vec::new()
            } else {
                to_bits(&self.c_critic)
            },
        }
    }

    /// Restores a carried state saved by [`RecurrentCore::carried_state`].
    /// Nothing changes on error.
    pub fn set_carried_state(&mut self, s: &CarriedState) -> Result<(), String> {
        let h = self.hidden_size();
        if s.hidden != h {
            return Err(format!(
                "carried LSTM state has hidden size {}, the network {h}",
                s.hidden
            ));
        }
        let mut next = self.clone_state_buffers();
        from_bits(&mut next[0], s.rows, h, &s.h_actor)?;
        from_bits(&mut next[1], s.rows, h, &s.c_actor)?;
        if self.is_shared() {
            if !s.h_critic.is_empty() || !s.c_critic.is_empty() {
                return Err("carried state has a critic LSTM state, the network shares one".into());
            }
            next[2].resize_zeroed(&[s.rows, h]);
            next[3].resize_zeroed(&[s.rows, h]);
        } else {
            from_bits(&mut next[2], s.rows, h, &s.h_critic)?;
            from_bits(&mut next[3], s.rows, h, &s.c_critic)?;
        }
        let [a, b, c, d] = next;
        self.h_actor = a;
        self.c_actor = b;
        self.h_critic = c;
        self.c_critic = d;
        Ok(())
    }

    fn clone_state_buffers(&self) -> [Tensor; 4] {
        [
            self.h_actor.clone(),
            self.c_actor.clone(),
            self.h_critic.clone(),
            self.c_critic.clone(),
        ]
    }
}

/// Where each training sequence of a rollout starts: its carried state and
/// the episode-start flags of every step.
#[derive(Clone, Debug)]
pub struct SequenceStore {
    bptt: usize,
    n_envs: usize,
    hidden: usize,
    shared: bool,
    /// `[n_steps * n_envs]`, row `t * n_envs + i`: 1.0 when the observation
    /// of env `i` at step `t` is the first of an episode.
    starts: Vec<f32>,
    /// Carried states entering each chunk, `[chunks * n_envs, H]`, row
    /// `chunk * n_envs + i`.
    h_actor: Vec<f32>,
    c_actor: Vec<f32>,
    h_critic: Vec<f32>,
    c_critic: Vec<f32>,
}

impl SequenceStore {
    /// Storage for rollouts of `n_steps` (a multiple of `bptt`) steps of
    /// `n_envs` envs.
    pub fn new(n_steps: usize, n_envs: usize, bptt: usize, hidden: usize, shared: bool) -> Self {
        let chunks = n_steps / bptt.max(1);
        let state = vec![0.0; chunks * n_envs * hidden];
        Self {
            bptt,
            n_envs,
            hidden,
            shared,
            starts: vec![0.0; n_steps * n_envs],
            h_actor: state.clone(),
            c_actor: state.clone(),
            h_critic: if shared { Vec::new() } else { state.clone() },
            c_critic: if shared { Vec::new() } else { state },
        }
    }

    /// Sequence length.
    pub fn bptt(&self) -> usize {
        self.bptt
    }

    /// Number of sequences in a rollout (`chunks * n_envs`).
    pub fn num_sequences(&self) -> usize {
        self.starts.len() / self.bptt.max(1)
    }

    /// Records step `t`'s episode-start flags (`[n_envs]`) and, at a chunk
    /// boundary, the carried state of `core` (the state entering step `t`).
    pub fn record_step(&mut self, t: usize, starts: &[f32], core: &RecurrentCore) {
        let n = self.n_envs;
        self.starts[t * n..(t + 1) * n].copy_from_slice(starts);
        if t.is_multiple_of(self.bptt) {
            let at = (t / self.bptt) * n * self.hidden;
            let len = n * self.hidden;
            let [ha, ca, hc, cc] = core.carried();
            self.h_actor[at..at + len].copy_from_slice(ha.data());
            self.c_actor[at..at + len].copy_from_slice(ca.data());
            if !self.shared {
                self.h_critic[at..at + len].copy_from_slice(hc.data());
                self.c_critic[at..at + len].copy_from_slice(cc.data());
            }
        }
    }

    /// Fills `out` for the sequences `seqs` (ids `chunk * n_envs + env`) and
    /// writes into `rows` the rollout-buffer row of every minibatch row, in
    /// the time-major order of the minibatch.
    pub fn gather(&self, seqs: &[usize], out: &mut SequenceBatch, rows: &mut Vec<usize>) {
        let (n, l, h, b) = (self.n_envs, self.bptt, self.hidden, seqs.len());
        out.steps = l;
        out.batch = b;
        out.reset.clear();
        rows.clear();
        for t in 0..l {
            for &s in seqs {
                let (chunk, env) = (s / n, s % n);
                let row = (chunk * l + t) * n + env;
                rows.push(row);
                out.reset.push(self.starts[row]);
            }
        }
        let copy = |dst: &mut Tensor, src: &[f32]| {
            dst.resize(&[b, h]);
            for (k, &s) in seqs.iter().enumerate() {
                dst.data_mut()[k * h..(k + 1) * h].copy_from_slice(&src[s * h..(s + 1) * h]);
            }
        };
        copy(&mut out.h0_actor, &self.h_actor);
        copy(&mut out.c0_actor, &self.c_actor);
        if self.shared {
            out.h0_critic.resize(&[0, h]);
            out.c0_critic.resize(&[0, h]);
        } else {
            copy(&mut out.h0_critic, &self.h_critic);
            copy(&mut out.c0_critic, &self.c_critic);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(rows: usize, d: usize, seed: u64) -> Tensor {
        let mut rng = Rng::seed_from_u64(seed);
        let mut t = Tensor::zeros(&[rows, d]);
        for v in t.data_mut() {
            *v = rng.normal() as f32;
        }
        t
    }

    #[test]
    fn stepping_matches_the_sequence_pass_with_resets() {
        // Two envs, four steps; env 1 starts a new episode at step 2.
        let (n, d, h, steps) = (2, 3, 5, 4);
        for shared in [false, true] {
            let mut core = RecurrentCore::new(d, h, shared, &mut Rng::seed_from_u64(3));
            let mut store = SequenceStore::new(steps, n, steps, h, shared);
            let xs: Vec<Tensor> = (0..steps).map(|t| obs(n, d, 10 + t as u64)).collect();
            let mut stepped_a = Vec::new();
            let mut stepped_c = Vec::new();
            core.ensure_rows(n);
            let mut starts = vec![1.0f32, 1.0];
            for (t, x) in xs.iter().enumerate() {
                if t == 2 {
                    core.reset_ended(&[false, true]);
                    starts = vec![0.0, 1.0];
                }
                store.record_step(t, &starts, &core);
                let (a, c) = core.step(x).unwrap();
                stepped_a.extend_from_slice(a.data());
                stepped_c.extend_from_slice(c.data());
                starts = vec![0.0, 0.0];
            }
            let mut seq = SequenceBatch::default();
            let mut rows = Vec::new();
            store.gather(&[0, 1], &mut seq, &mut rows);
            assert_eq!(rows, [0, 1, 2, 3, 4, 5, 6, 7]);
            assert_eq!(seq.reset, [1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0]);
            let mut flat = Tensor::zeros(&[steps * n, d]);
            for (t, x) in xs.iter().enumerate() {
                flat.data_mut()[t * n * d..(t + 1) * n * d].copy_from_slice(x.data());
            }
            let (a, c) = core.forward_sequence(&flat, &seq).unwrap();
            for (u, v) in a.data().iter().zip(&stepped_a) {
                assert!((u - v).abs() < 1e-5, "shared {shared}: {u} vs {v}");
            }
            for (u, v) in c.data().iter().zip(&stepped_c) {
                assert!((u - v).abs() < 1e-5, "shared {shared}: {u} vs {v}");
            }
        }
    }

    #[test]
    fn peeking_does_not_advance_the_carried_state() {
        let mut core = RecurrentCore::new(3, 4, false, &mut Rng::seed_from_u64(1));
        let x = obs(2, 3, 5);
        core.step(&x).unwrap();
        let before = core.carried_state();
        let peek_row = obs(1, 3, 6);
        let v = core.peek_critic(&peek_row, &[1]).unwrap().clone();
        assert_eq!(core.carried_state(), before);
        // The peek equals a real step of that row's critic.
        let mut full = Tensor::zeros(&[2, 3]);
        full.data_mut()[3..].copy_from_slice(peek_row.data());
        full.data_mut()[..3].copy_from_slice(x.row(0));
        let (_, c) = core.step(&full).unwrap();
        for (u, w) in v.data().iter().zip(c.row(1)) {
            assert!((u - w).abs() < 1e-6);
        }
        assert!(core.peek_critic(&peek_row, &[2]).is_err());
    }

    #[test]
    fn carried_state_round_trips_exactly_and_rejects_mismatches() {
        let mut core = RecurrentCore::new(3, 4, false, &mut Rng::seed_from_u64(1));
        core.step(&obs(2, 3, 5)).unwrap();
        let s = core.carried_state();
        let mut other = RecurrentCore::new(3, 4, false, &mut Rng::seed_from_u64(2));
        other.set_carried_state(&s).unwrap();
        assert_eq!(other.carried_state(), s);
        let mut wrong = s.clone();
        wrong.h_actor.pop();
        assert!(other.set_carried_state(&wrong).is_err());
        assert_eq!(other.carried_state(), s, "nothing changes on error");
        let mut shared = RecurrentCore::new(3, 4, true, &mut Rng::seed_from_u64(2));
        assert!(shared.set_carried_state(&s).is_err());
    }

    #[test]
    fn reset_rows_zeroes_only_those_rows() {
        let mut core = RecurrentCore::new(3, 4, true, &mut Rng::seed_from_u64(1));
        core.step(&obs(3, 3, 5)).unwrap();
        core.reset_rows(&[1, 7]);
        let [h, c, _, _] = core.carried();
        assert!(h.row(1).iter().chain(c.row(1)).all(|&v| v == 0.0));
        assert!(h.row(0).iter().any(|&v| v != 0.0) && h.row(2).iter().any(|&v| v != 0.0));
    }
}
