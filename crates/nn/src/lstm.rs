//! Single-layer LSTM over whole sequences, with episode-reset masks and full
//! backpropagation through time.
//!
//! Equivalent to `torch.nn.LSTM(input_size, hidden_size, num_layers=1,
//! batch_first=False)`: the same parameter names, layouts, gate order
//! (input, forget, cell, output) and default initialisation, so weights move
//! between the two unchanged.
//!
//! Recurrent RL trains on sequences cut from rollouts that cross episode
//! boundaries. A reset mask `[T, B]` marks the steps where a new episode starts:
//! the carried state is zeroed *before* such a step, and no gradient flows back
//! across it. Getting this convention wrong (masking after the step, or with the
//! done flag of the previous step) is a classic source of silent bugs, so it is
//! spelled out once here and tested against step-by-step PyTorch runs.
//!
//! Speed comes from batching: the input projection of all `T * B` rows is one
//! GEMM, each step adds one `[B, H] x [H, 4H]` GEMM, and the backward pass
//! accumulates both weight gradients with one GEMM each over all steps.

use hlynr_rng::Rng;

use crate::error::{NnError, Result};
use crate::gemm::gemm;
use crate::param::{NamedParam, NamedParamMut, Param};
use crate::simd::{sigmoid_inplace, tanh_inplace, tanh_slice};
use crate::tensor::Tensor;

/// Applies the gate nonlinearities to pre-activations laid out `[rows, 4H]`
/// in PyTorch's gate order: sigmoid for i, f and o, tanh for g.
fn activate_gates(gates: &mut [f32], hidden: usize) {
    for row in gates.chunks_exact_mut(4 * hidden) {
        let (i_f, g_o) = row.split_at_mut(2 * hidden);
        let (g, o) = g_o.split_at_mut(hidden);
        sigmoid_inplace(i_f);
        tanh_inplace(g);
        sigmoid_inplace(o);
    }
}

/// Gradients with respect to the inputs of a sequence, returned by
/// [`Lstm::backward_sequence`].
#[derive(Clone, Copy, Debug)]
pub struct LstmInputGrads<'a> {
    /// `dL/dx`, `[T, B, I]` (unspecified when not requested).
    pub x: &'a Tensor,
    /// `dL/dh0`, `[B, H]`; zero for rows whose first step is a reset.
    pub h0: &'a Tensor,
    /// `dL/dc0`, `[B, H]`; zero for rows whose first step is a reset.
    pub c0: &'a Tensor,
}

/// How saturated the LSTM was in its last [`Lstm::forward_sequence`].
///
/// A hidden state pinned near +-1 (or gates pinned near 0 or 1) passes almost
/// no gradient; a rising fraction is an early sign of recurrent training
/// instability.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LstmSaturation {
    /// Fraction of hidden-state values `h_t` with `|h| > 0.99`.
    pub hidden: f32,
    /// Fraction of sigmoid gate values (i, f, o) below 0.01 or above 0.99.
    pub gates: f32,
}

/// Single-layer LSTM, sequence-major (`[T, B, features]`).
#[derive(Clone, Debug)]
pub struct Lstm {
    /// `[4H, I]`, rows in gate order i, f, g, o (`weight_ih_l0`).
    pub weight_ih: Param,
    /// `[4H, H]` (`weight_hh_l0`).
    pub weight_hh: Param,
    /// `[4H]` (`bias_ih_l0`).
    pub bias_ih: Param,
    /// `[4H]` (`bias_hh_l0`).
    pub bias_hh: Param,
    /// Sequence length and batch of the cached forward pass.
    steps: usize,
    batch: usize,
    /// Copy of the last input sequence, `[T, B, I]` (backward needs it).
    input: Tensor,
    /// Per-step keep factors `1 - reset`, `[T * B]`.
    keep: Vec<f32>,
    /// Activated gates per step, `[T, B, 4H]`.
    gates: Tensor,
    /// State entering each step after masking, `[T, B, H]`.
    h_prev: Tensor,
    c_prev: Tensor,
    /// `tanh(c_t)` per step, `[T, B, H]`.
    tanh_c: Tensor,
    /// Outputs `h_t`, `[T, B, H]`.
    out: Tensor,
    /// Final state after the last step, `[B, H]`.
    h_final: Tensor,
    c_final: Tensor,
    /// Backward buffers.
    grad_gates: Tensor,
    grad_x: Tensor,
    grad_h0: Tensor,
    grad_c0: Tensor,
    grad_h: Tensor,
    /// Single-step scratch.
    step_gates: Tensor,
    step_h: Tensor,
    step_c: Tensor,
    step_tanh_c: Tensor,
}

impl Lstm {
    /// An LSTM with PyTorch's default initialisation: every weight and bias
    /// drawn from `U(-1/sqrt(H), 1/sqrt(H))`.
    pub fn new(input_size: usize, hidden_size: usize, rng: &mut Rng) -> Self {
        let h4 = 4 * hidden_size;
        let bound = if hidden_size > 0 {
            1.0 / (hidden_size as f32).sqrt()
        } else {
            0.0
        };
        let mut draw = |shape: &[usize]| {
            let mut t = Tensor::zeros(shape);
            for v in t.data_mut() {
                *v = rng.uniform_range_f32(-bound, bound);
            }
            Param::trainable(t)
        };
        let weight_ih = draw(&[h4, input_size]);
        let weight_hh = draw(&[h4, hidden_size]);
        let bias_ih = draw(&[h4]);
        let bias_hh = draw(&[h4]);
        Self {
            weight_ih,
            weight_hh,
            bias_ih,
            bias_hh,
            steps: 0,
            batch: 0,
            input: Tensor::default(),
            keep: Vec::new(),
            gates: Tensor::default(),
            h_prev: Tensor::default(),
            c_prev: Tensor::default(),
            tanh_c: Tensor::default(),
            out: Tensor::default(),
            h_final: Tensor::default(),
            c_final: Tensor::default(),
            grad_gates: Tensor::default(),
            grad_x: Tensor::default(),
            grad_h0: Tensor::default(),
            grad_c0: Tensor::default(),
            grad_h: Tensor::default(),
            step_gates: Tensor::default(),
            step_h: Tensor::default(),
            step_c: Tensor::default(),
            step_tanh_c: Tensor::default(),
        }
    }

    /// Input width `I`.
    pub fn input_size(&self) -> usize {
        self.weight_ih.value.shape()[1]
    }

    /// Hidden width `H`.
    pub fn hidden_size(&self) -> usize {
        self.weight_hh.value.shape()[1]
    }

    /// Validates `x`, `h0`, `c0` and the mask; returns `(T, B)`.
    fn check_sequence_inputs(
        &self,
        x: &Tensor,
        h0: &Tensor,
        c0: &Tensor,
        reset: Option<&[f32]>,
    ) -> Result<(usize, usize)> {
        let (i, h) = (self.input_size(), self.hidden_size());
        let s = x.shape();
        if s.len() != 3 || s[2] != i {
            return Err(NnError::shape(
                "Lstm input x [T, B, input_size]",
                &[
                    s.first().copied().unwrap_or(0),
                    s.get(1).copied().unwrap_or(0),
                    i,
                ],
                s,
            ));
        }
        let (t, b) = (s[0], s[1]);
        h0.expect_shape("Lstm initial hidden state h0 [B, hidden_size]", &[b, h])?;
        c0.expect_shape("Lstm initial cell state c0 [B, hidden_size]", &[b, h])?;
        if let Some(mask) = reset {
            if mask.len() != t * b {
                return Err(NnError::Length {
                    context: "Lstm reset mask [T, B]".into(),
                    shape: vec![t, b],
                    expected: t * b,
                    actual: mask.len(),
                });
            }
            if let Some(k) = mask.iter().position(|&r| r != 0.0 && r != 1.0) {
                return Err(NnError::invalid(
                    "Lstm reset mask",
                    format!(
                        "values must be 0.0 or 1.0, got {} at step {}, batch row {}",
                        mask[k],
                        k / b.max(1),
                        k % b.max(1)
                    ),
                ));
            }
        }
        x.check_finite("Lstm input x")?;
        h0.check_finite("Lstm initial state h0")?;
        c0.check_finite("Lstm initial state c0")?;
        Ok((t, b))
    }

    /// Runs the LSTM over a sequence.
    ///
    /// `x` is `[T, B, I]`; `h0` and `c0` are `[B, H]`. `reset`, when given, is
    /// `[T, B]` row-major with `1.0` where an episode starts at step `t`: the
    /// carried `(h, c)` of that batch row is zeroed before step `t` (so a reset
    /// at `t = 0` ignores `h0`/`c0`). Returns the outputs `h_t`, `[T, B, H]`;
    /// the final state is available from [`Lstm::final_state`].
    pub fn forward_sequence(
        &mut self,
        x: &Tensor,
        h0: &Tensor,
        c0: &Tensor,
        reset: Option<&[f32]>,
    ) -> Result<&Tensor> {
        let (t_len, b) = self.check_sequence_inputs(x, h0, c0, reset)?;
        let (i_sz, h) = (self.input_size(), self.hidden_size());
        let h4 = 4 * h;
        let rows = t_len * b;
        self.steps = t_len;
        self.batch = b;
        self.input.copy_from(x);
        self.keep.clear();
        match reset {
            Some(mask) => self.keep.extend(mask.iter().map(|&r| 1.0 - r)),
            None => self.keep.resize(rows, 1.0),
        }

        // Pre-activations of every step from the input: bias + x W_ih^T.
        self.gates.resize(&[t_len, b, h4]);
        {
            let gates = self.gates.data_mut();
            let (bi, bh) = (self.bias_ih.value.data(), self.bias_hh.value.data());
            for row in gates.chunks_exact_mut(h4) {
                for ((g, &u), &v) in row.iter_mut().zip(bi).zip(bh) {
                    *g = u + v;
                }
            }
            gemm(
                rows,
                i_sz,
                h4,
                1.0,
                x.data(),
                false,
                self.weight_ih.value.data(),
                true,
                1.0,
                gates,
            );
        }

        self.h_prev.resize(&[t_len, b, h]);
        self.c_prev.resize(&[t_len, b, h]);
        self.tanh_c.resize(&[t_len, b, h]);
        self.out.resize(&[t_len, b, h]);
        self.h_final.copy_from(h0);
        self.c_final.copy_from(c0);
        let bh = b * h;
        for t in 0..t_len {
            let step = t * bh..(t + 1) * bh;
            let keep = &self.keep[t * b..(t + 1) * b];
            let h_prev = &mut self.h_prev.data_mut()[step.clone()];
            let c_prev = &mut self.c_prev.data_mut()[step.clone()];
            masked_copy(h_prev, self.h_final.data(), keep, h);
            masked_copy(c_prev, self.c_final.data(), keep, h);
            let gates = &mut self.gates.data_mut()[t * b * h4..(t + 1) * b * h4];
            cell_step(
                gates,
                h_prev,
                c_prev,
                self.weight_hh.value.data(),
                b,
                h,
                self.c_final.data_mut(),
                &mut self.tanh_c.data_mut()[step.clone()],
                &mut self.out.data_mut()[step.clone()],
            );
            self.h_final
                .data_mut()
                .copy_from_slice(&self.out.data()[step]);
        }
        Ok(&self.out)
    }

    /// The outputs `h_t` of the last forward pass, `[T, B, H]`.
    pub fn output(&self) -> &Tensor {
        &self.out
    }

    /// The state `(h_T, c_T)` after the last step of the last forward pass,
    /// each `[B, H]`, ready to carry into the next sequence.
    pub fn final_state(&self) -> (&Tensor, &Tensor) {
        (&self.h_final, &self.c_final)
    }

    /// Saturation statistics of the last forward pass (zeros before any).
    pub fn saturation(&self) -> LstmSaturation {
        let h = self.hidden_size();
        let hidden_n = self.out.len();
        let hidden = if hidden_n > 0 {
            self.out.data().iter().filter(|v| v.abs() > 0.99).count() as f32 / hidden_n as f32
        } else {
            0.0
        };
        let mut sat = 0usize;
        let mut total = 0usize;
        for row in self.gates.data().chunks_exact(4 * h) {
            for (k, &v) in row.iter().enumerate() {
                // Skip the tanh block g (indices 2H..3H).
                if (2 * h..3 * h).contains(&k) {
                    continue;
                }
                total += 1;
                if !(0.01..=0.99).contains(&v) {
                    sat += 1;
                }
            }
        }
        let gates = if total > 0 {
            sat as f32 / total as f32
        } else {
            0.0
        };
        LstmSaturation { hidden, gates }
    }

    /// Backpropagation through time over the last forward pass.
    ///
    /// `grad_outputs` is `dL/dh_t` for every step, `[T, B, H]`; `grad_h_final`
    /// and `grad_c_final` are gradients flowing into the final state (from a
    /// loss on it or from a later sequence), `[B, H]`, zero when `None`.
    /// Parameter gradients are added into each `Param::grad`. Returns
    /// `dL/dx` (computed only when `need_input_grad`), `dL/dh0` and `dL/dc0`;
    /// nothing flows back across a reset.
    pub fn backward_sequence(
        &mut self,
        grad_outputs: &Tensor,
        grad_h_final: Option<&Tensor>,
        grad_c_final: Option<&Tensor>,
        need_input_grad: bool,
    ) -> Result<LstmInputGrads<'_>> {
        let (t_len, b) = (self.steps, self.batch);
        let (i_sz, h) = (self.input_size(), self.hidden_size());
        let h4 = 4 * h;
        let rows = t_len * b;
        if self.out.shape() != [t_len, b, h] {
            return Err(NnError::invalid(
                "Lstm backward_sequence",
                "called before forward_sequence",
            ));
        }
        grad_outputs.expect_shape("Lstm grad_outputs [T, B, hidden_size]", &[t_len, b, h])?;
        self.grad_h.resize(&[b, h]);
        self.grad_c0.resize(&[b, h]);
        match grad_h_final {
            Some(g) => {
                g.expect_shape("Lstm grad_h_final [B, hidden_size]", &[b, h])?;
                self.grad_h.data_mut().copy_from_slice(g.data());
            }
            None => self.grad_h.fill_zero(),
        }
        // grad_c0 doubles as the running cell gradient while walking back.
        match grad_c_final {
            Some(g) => {
                g.expect_shape("Lstm grad_c_final [B, hidden_size]", &[b, h])?;
                self.grad_c0.data_mut().copy_from_slice(g.data());
            }
            None => self.grad_c0.fill_zero(),
        }
        self.grad_gates.resize(&[t_len, b, h4]);
        self.grad_h0.resize(&[b, h]);
        let bh = b * h;
        for t in (0..t_len).rev() {
            let step = t * bh..(t + 1) * bh;
            let gstep = t * b * h4..(t + 1) * b * h4;
            let dh = self.grad_h.data_mut();
            for (d, &g) in dh.iter_mut().zip(&grad_outputs.data()[step.clone()]) {
                *d += g;
            }
            cell_step_backward(
                &self.gates.data()[gstep.clone()],
                &self.c_prev.data()[step.clone()],
                &self.tanh_c.data()[step],
                dh,
                self.grad_c0.data_mut(),
                &mut self.grad_gates.data_mut()[gstep.clone()],
                h,
            );
            // dh_{t-1} = dgates_t W_hh, then cut at resets.
            gemm(
                b,
                h4,
                h,
                1.0,
                &self.grad_gates.data()[gstep],
                false,
                self.weight_hh.value.data(),
                false,
                0.0,
                self.grad_h0.data_mut(),
            );
            let keep = &self.keep[t * b..(t + 1) * b];
            scale_rows(self.grad_h0.data_mut(), keep, h);
            scale_rows(self.grad_c0.data_mut(), keep, h);
            std::mem::swap(&mut self.grad_h, &mut self.grad_h0);
        }
        // After the last swap `grad_h` holds dL/dh0 (or dL/dh_T when T == 0).
        std::mem::swap(&mut self.grad_h, &mut self.grad_h0);

        let dg = self.grad_gates.data();
        // dW_ih += dG^T X, dW_hh += dG^T H_prev over all steps at once.
        gemm(
            h4,
            rows,
            i_sz,
            1.0,
            dg,
            true,
            self.input.data(),
            false,
            1.0,
            self.weight_ih.grad.data_mut(),
        );
        gemm(
            h4,
            rows,
            h,
            1.0,
            dg,
            true,
            self.h_prev.data(),
            false,
            1.0,
            self.weight_hh.grad.data_mut(),
        );
        {
            let dbi = self.bias_ih.grad.data_mut();
            for row in dg.chunks_exact(h4) {
                for (g, &d) in dbi.iter_mut().zip(row) {
                    *g += d;
                }
            }
        }
        {
            let dbh = self.bias_hh.grad.data_mut();
            for row in dg.chunks_exact(h4) {
                for (g, &d) in dbh.iter_mut().zip(row) {
                    *g += d;
                }
            }
        }
        if need_input_grad {
            self.grad_x.resize(&[t_len, b, i_sz]);
            gemm(
                rows,
                h4,
                i_sz,
                1.0,
                dg,
                false,
                self.weight_ih.value.data(),
                false,
                0.0,
                self.grad_x.data_mut(),
            );
        }
        Ok(LstmInputGrads {
            x: &self.grad_x,
            h0: &self.grad_h0,
            c0: &self.grad_c0,
        })
    }

    /// One step for rollouts: `x` is `[B, I]`; `h` and `c` (`[B, H]`) are read
    /// as the carried state and overwritten with the new one. Caches nothing
    /// for backward and gives the same numbers as [`Lstm::forward_sequence`] up
    /// to rounding (the GEMM kernels may sum in another order for other matrix
    /// shapes). Zero rows of `h`/`c` first to start episodes.
    pub fn step(&mut self, x: &Tensor, h: &mut Tensor, c: &mut Tensor) -> Result<()> {
        let (i_sz, hs) = (self.input_size(), self.hidden_size());
        let h4 = 4 * hs;
        let b = x.expect_matrix("Lstm step input x [B, input_size]", i_sz)?;
        h.expect_shape("Lstm step hidden state h [B, hidden_size]", &[b, hs])?;
        c.expect_shape("Lstm step cell state c [B, hidden_size]", &[b, hs])?;
        self.step_gates.resize(&[b, h4]);
        let gates = self.step_gates.data_mut();
        let (bi, bh) = (self.bias_ih.value.data(), self.bias_hh.value.data());
        for row in gates.chunks_exact_mut(h4) {
            for ((g, &u), &v) in row.iter_mut().zip(bi).zip(bh) {
                *g = u + v;
            }
        }
        gemm(
            b,
            i_sz,
            h4,
            1.0,
            x.data(),
            false,
            self.weight_ih.value.data(),
            true,
            1.0,
            gates,
        );
        // The new state overwrites `h`/`c`, so the old values go to scratch
        // first. Separate scratch keeps a cached sequence intact for backward.
        self.step_h.copy_from(h);
        self.step_c.copy_from(c);
        self.step_tanh_c.resize(&[b, hs]);
        cell_step(
            gates,
            self.step_h.data(),
            self.step_c.data(),
            self.weight_hh.value.data(),
            b,
            hs,
            c.data_mut(),
            self.step_tanh_c.data_mut(),
            h.data_mut(),
        );
        Ok(())
    }

    /// Zeroes the rows of a carried state `(h, c)` (`[B, H]` each) where
    /// `reset` (`[B]`) is 1.0, i.e. where a new episode starts at the next
    /// [`Lstm::step`]: the same convention as the mask of
    /// [`Lstm::forward_sequence`].
    pub fn reset_state_rows(h: &mut Tensor, c: &mut Tensor, reset: &[f32]) -> Result<()> {
        let b = reset.len();
        let hs = h.cols();
        if h.ndim() != 2 || h.rows() != b {
            return Err(NnError::shape(
                "Lstm reset_state_rows h [B, hidden_size]",
                &[b, hs],
                h.shape(),
            ));
        }
        c.expect_shape("Lstm reset_state_rows c [B, hidden_size]", h.shape())?;
        if let Some(k) = reset.iter().position(|&r| r != 0.0 && r != 1.0) {
            return Err(NnError::invalid(
                "Lstm reset_state_rows",
                format!(
                    "reset values must be 0.0 or 1.0, got {} at row {k}",
                    reset[k]
                ),
            ));
        }
        for (row, &r) in reset.iter().enumerate() {
            if r == 1.0 {
                h.data_mut()[row * hs..(row + 1) * hs].fill(0.0);
                c.data_mut()[row * hs..(row + 1) * hs].fill(0.0);
            }
        }
        Ok(())
    }

    /// Appends `weight_ih_l0`, `weight_hh_l0`, `bias_ih_l0`, `bias_hh_l0`
    /// (PyTorch's `state_dict` order), names prefixed by `prefix`.
    pub fn params<'a>(&'a self, prefix: &str, out: &mut Vec<NamedParam<'a>>) {
        out.push((format!("{prefix}weight_ih_l0"), &self.weight_ih));
        out.push((format!("{prefix}weight_hh_l0"), &self.weight_hh));
        out.push((format!("{prefix}bias_ih_l0"), &self.bias_ih));
        out.push((format!("{prefix}bias_hh_l0"), &self.bias_hh));
    }

    /// Mutable counterpart of [`Lstm::params`], same order.
    pub fn params_mut<'a>(&'a mut self, prefix: &str, out: &mut Vec<NamedParamMut<'a>>) {
        out.push((format!("{prefix}weight_ih_l0"), &mut self.weight_ih));
        out.push((format!("{prefix}weight_hh_l0"), &mut self.weight_hh));
        out.push((format!("{prefix}bias_ih_l0"), &mut self.bias_ih));
        out.push((format!("{prefix}bias_hh_l0"), &mut self.bias_hh));
    }

    /// Clears the gradients of all four parameters.
    pub fn zero_grad(&mut self) {
        self.weight_ih.zero_grad();
        self.weight_hh.zero_grad();
        self.bias_ih.zero_grad();
        self.bias_hh.zero_grad();
    }
}

/// `dst[b] = src[b] * keep[b]` row by row (rows of width `h`).
fn masked_copy(dst: &mut [f32], src: &[f32], keep: &[f32], h: usize) {
    for ((d, s), &k) in dst.chunks_exact_mut(h).zip(src.chunks_exact(h)).zip(keep) {
        if k == 1.0 {
            d.copy_from_slice(s);
        } else {
            for (dv, &sv) in d.iter_mut().zip(s) {
                *dv = sv * k;
            }
        }
    }
}

/// Multiplies row `b` (width `h`) by `keep[b]`.
fn scale_rows(x: &mut [f32], keep: &[f32], h: usize) {
    for (row, &k) in x.chunks_exact_mut(h).zip(keep) {
        if k != 1.0 {
            for v in row {
                *v *= k;
            }
        }
    }
}

/// One LSTM step on `b` rows. `gates` holds `bias + x W_ih^T` on entry and the
/// activated gates on exit; writes `c_t` to `c_out`, `tanh(c_t)` and `h_t`.
#[allow(clippy::too_many_arguments)]
fn cell_step(
    gates: &mut [f32],
    h_prev: &[f32],
    c_prev: &[f32],
    w_hh: &[f32],
    b: usize,
    h: usize,
    c_out: &mut [f32],
    tanh_c: &mut [f32],
    h_out: &mut [f32],
) {
    let h4 = 4 * h;
    gemm(b, h, h4, 1.0, h_prev, false, w_hh, true, 1.0, gates);
    activate_gates(gates, h);
    for (r, row) in gates.chunks_exact(h4).enumerate() {
        let (ig, rest) = row.split_at(h);
        let (fg, rest) = rest.split_at(h);
        let gg = &rest[..h];
        let span = r * h..(r + 1) * h;
        for ((c, &cp), ((&i, &f), &g)) in c_out[span.clone()]
            .iter_mut()
            .zip(&c_prev[span])
            .zip(ig.iter().zip(fg).zip(gg))
        {
            *c = f * cp + i * g;
        }
    }
    tanh_slice(&c_out[..b * h], &mut tanh_c[..b * h]);
    for (r, row) in gates.chunks_exact(h4).enumerate() {
        let og = &row[3 * h..];
        let span = r * h..(r + 1) * h;
        for ((ho, &o), &tc) in h_out[span.clone()].iter_mut().zip(og).zip(&tanh_c[span]) {
            *ho = o * tc;
        }
    }
}

/// Backward of one step. On entry `dh` is `dL/dh_t` and `dc` is the cell
/// gradient arriving from step `t + 1`; on exit `dc` is `dL/dc_{t-1}` (before
/// reset masking) and `dgates` holds the pre-activation gate gradients.
fn cell_step_backward(
    gates: &[f32],
    c_prev: &[f32],
    tanh_c: &[f32],
    dh: &[f32],
    dc: &mut [f32],
    dgates: &mut [f32],
    h: usize,
) {
    let h4 = 4 * h;
    for (r, (row, drow)) in gates
        .chunks_exact(h4)
        .zip(dgates.chunks_exact_mut(h4))
        .enumerate()
    {
        let span = r * h..(r + 1) * h;
        let (cp, tc, dhr) = (
            &c_prev[span.clone()],
            &tanh_c[span.clone()],
            &dh[span.clone()],
        );
        let dcr = &mut dc[span];
        for k in 0..h {
            let (ig, fg, gg, og) = (row[k], row[h + k], row[2 * h + k], row[3 * h + k]);
            let d_o = dhr[k] * tc[k];
            let dct = dcr[k] + dhr[k] * og * (1.0 - tc[k] * tc[k]);
            let d_i = dct * gg;
            let d_g = dct * ig;
            let d_f = dct * cp[k];
            drow[k] = d_i * ig * (1.0 - ig);
            drow[h + k] = d_f * fg * (1.0 - fg);
            drow[2 * h + k] = d_g * (1.0 - gg * gg);
            drow[3 * h + k] = d_o * og * (1.0 - og);
            dcr[k] = dct * fg;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::GradCheck;

    fn random(shape: &[usize], rng: &mut Rng) -> Tensor {
        let mut t = Tensor::zeros(shape);
        for v in t.data_mut() {
            *v = rng.uniform_range_f32(-1.0, 1.0);
        }
        t
    }

    fn dot(a: &Tensor, b: &Tensor) -> f64 {
        a.data()
            .iter()
            .zip(b.data())
            .map(|(&x, &y)| x as f64 * y as f64)
            .sum()
    }

    /// Loss = sum(out * R) + sum(h_T * Rh) + sum(c_T * Rc).
    struct Setup {
        x: Tensor,
        h0: Tensor,
        c0: Tensor,
        reset: Vec<f32>,
        r: Tensor,
        rh: Tensor,
        rc: Tensor,
    }

    impl Setup {
        fn new(t: usize, b: usize, i: usize, h: usize, rng: &mut Rng) -> Self {
            let mut reset = vec![0.0; t * b];
            // Row 0 starts a new episode at step 0 (h0/c0 ignored), row 1 in
            // the middle of the sequence, row 2 never.
            reset[0] = 1.0;
            reset[2 * b + 1] = 1.0;
            Self {
                x: random(&[t, b, i], rng),
                h0: random(&[b, h], rng),
                c0: random(&[b, h], rng),
                reset,
                r: random(&[t, b, h], rng),
                rh: random(&[b, h], rng),
                rc: random(&[b, h], rng),
            }
        }

        fn loss(&self, lstm: &mut Lstm, x: &Tensor, h0: &Tensor, c0: &Tensor) -> f64 {
            let out = lstm.forward_sequence(x, h0, c0, Some(&self.reset)).unwrap();
            let mut l = dot(out, &self.r);
            let (hf, cf) = lstm.final_state();
            l += dot(hf, &self.rh) + dot(cf, &self.rc);
            l
        }
    }

    #[test]
    fn gradients_match_finite_differences_with_resets_and_final_state() {
        let mut rng = Rng::seed_from_u64(7);
        let (t, b, i, h) = (5, 3, 3, 4);
        let mut lstm = Lstm::new(i, h, &mut rng);
        let s = Setup::new(t, b, i, h, &mut rng);
        lstm.forward_sequence(&s.x, &s.h0, &s.c0, Some(&s.reset))
            .unwrap();
        lstm.zero_grad();
        let g = lstm
            .backward_sequence(&s.r, Some(&s.rh), Some(&s.rc), true)
            .unwrap();
        let (gx, gh0, gc0) = (g.x.clone(), g.h0.clone(), g.c0.clone());
        // Row 0 resets at t = 0: no gradient reaches its initial state.
        assert!(gh0.row(0).iter().all(|&v| v == 0.0));
        assert!(gc0.row(0).iter().all(|&v| v == 0.0));
        assert!(gh0.row(2).iter().any(|&v| v != 0.0));

        let cfg = GradCheck {
            max_checks: 200,
            ..GradCheck::default()
        };
        let mut xs = s.x.data().to_vec();
        cfg.check_slice("Lstm dL/dx", &mut xs, gx.data(), &mut rng, |v| {
            let x = Tensor::from_slice(&[t, b, i], v).unwrap();
            s.loss(&mut lstm.clone(), &x, &s.h0, &s.c0)
        })
        .unwrap();
        let mut hs = s.h0.data().to_vec();
        cfg.check_slice("Lstm dL/dh0", &mut hs, gh0.data(), &mut rng, |v| {
            let h0 = Tensor::from_slice(&[b, h], v).unwrap();
            s.loss(&mut lstm.clone(), &s.x, &h0, &s.c0)
        })
        .unwrap();
        let mut cs = s.c0.data().to_vec();
        cfg.check_slice("Lstm dL/dc0", &mut cs, gc0.data(), &mut rng, |v| {
            let c0 = Tensor::from_slice(&[b, h], v).unwrap();
            s.loss(&mut lstm.clone(), &s.x, &s.h0, &c0)
        })
        .unwrap();
        for pi in 0..4 {
            let (name, mut values, analytic) = {
                let mut ps = Vec::new();
                lstm.params("", &mut ps);
                let (n, p) = &ps[pi];
                (n.clone(), p.value.data().to_vec(), p.grad.data().to_vec())
            };
            let mut probe = lstm.clone();
            cfg.check_slice(&name, &mut values, &analytic, &mut rng, |v| {
                {
                    let mut ps = Vec::new();
                    probe.params_mut("", &mut ps);
                    ps[pi].1.value.data_mut().copy_from_slice(v);
                }
                s.loss(&mut probe, &s.x, &s.h0, &s.c0)
            })
            .unwrap();
        }
    }

    #[test]
    fn parameter_gradients_accumulate_across_backward_calls() {
        let mut rng = Rng::seed_from_u64(3);
        let mut lstm = Lstm::new(2, 3, &mut rng);
        let s = Setup::new(3, 3, 2, 3, &mut rng);
        lstm.forward_sequence(&s.x, &s.h0, &s.c0, None).unwrap();
        lstm.backward_sequence(&s.r, None, None, false).unwrap();
        let once = lstm.weight_hh.grad.clone();
        lstm.backward_sequence(&s.r, None, None, false).unwrap();
        for (&a, &b) in lstm.weight_hh.grad.data().iter().zip(once.data()) {
            assert!((a - 2.0 * b).abs() <= 1e-6 * b.abs().max(1.0));
        }
    }

    /// The single-step path and the sequence path multiply matrices of
    /// different shapes, for which the GEMM kernels may sum in a different
    /// order, so they agree to rounding rather than bit for bit.
    #[test]
    fn step_matches_forward_sequence_including_resets() {
        let mut rng = Rng::seed_from_u64(11);
        let (t, b, i, h) = (6, 4, 5, 7);
        let mut lstm = Lstm::new(i, h, &mut rng);
        let s = Setup::new(t, b, i, h, &mut rng);
        let out = lstm
            .forward_sequence(&s.x, &s.h0, &s.c0, Some(&s.reset))
            .unwrap()
            .clone();
        let (hf, cf) = (lstm.final_state().0.clone(), lstm.final_state().1.clone());
        let (mut hs, mut cs) = (s.h0.clone(), s.c0.clone());
        for step in 0..t {
            Lstm::reset_state_rows(&mut hs, &mut cs, &s.reset[step * b..(step + 1) * b]).unwrap();
            let x =
                Tensor::from_slice(&[b, i], &s.x.data()[step * b * i..(step + 1) * b * i]).unwrap();
            lstm.step(&x, &mut hs, &mut cs).unwrap();
            assert_close(hs.data(), &out.data()[step * b * h..(step + 1) * b * h]);
        }
        assert_close(hs.data(), hf.data());
        assert_close(cs.data(), cf.data());
    }

    fn assert_close(a: &[f32], b: &[f32]) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() <= 1e-6 * (1.0 + y.abs()), "{x} vs {y}");
        }
    }

    #[test]
    fn reset_at_first_step_makes_output_independent_of_initial_state() {
        let mut rng = Rng::seed_from_u64(5);
        let mut lstm = Lstm::new(3, 4, &mut rng);
        let s = Setup::new(4, 3, 3, 4, &mut rng);
        let a = lstm
            .forward_sequence(&s.x, &s.h0, &s.c0, Some(&s.reset))
            .unwrap()
            .clone();
        let mut h0 = s.h0.clone();
        h0.data_mut().iter_mut().for_each(|v| *v += 0.5);
        let b = lstm
            .forward_sequence(&s.x, &h0, &s.c0, Some(&s.reset))
            .unwrap()
            .clone();
        for step in 0..4 {
            // Row 0 was reset at t = 0: identical; row 2 carries h0: differs.
            assert_eq!(
                &a.data()[step * 12..step * 12 + 4],
                &b.data()[step * 12..step * 12 + 4]
            );
        }
        assert_ne!(&a.data()[8..12], &b.data()[8..12]);
    }

    #[test]
    fn non_finite_inputs_are_errors_naming_the_tensor() {
        let mut rng = Rng::seed_from_u64(9);
        let mut lstm = Lstm::new(2, 3, &mut rng);
        let mut x = Tensor::zeros(&[2, 1, 2]);
        x.data_mut()[3] = f32::NAN;
        let h = Tensor::zeros(&[1, 3]);
        let err = lstm
            .forward_sequence(&x, &h, &h, None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("Lstm input x") && err.contains("index 3"),
            "{err}"
        );
        let mut c = Tensor::zeros(&[1, 3]);
        c.data_mut()[0] = f32::INFINITY;
        let err = lstm
            .forward_sequence(&Tensor::zeros(&[2, 1, 2]), &h, &c, None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("c0"), "{err}");
    }

    #[test]
    fn identical_runs_are_bitwise_equal() {
        let run = || {
            let mut rng = Rng::seed_from_u64(42);
            let mut lstm = Lstm::new(4, 6, &mut rng);
            let s = Setup::new(5, 3, 4, 6, &mut rng);
            let out = lstm
                .forward_sequence(&s.x, &s.h0, &s.c0, Some(&s.reset))
                .unwrap()
                .clone();
            let g = lstm
                .backward_sequence(&s.r, Some(&s.rh), None, true)
                .unwrap();
            let gx = g.x.clone();
            (
                out,
                gx,
                lstm.weight_hh.grad.clone(),
                lstm.bias_ih.grad.clone(),
            )
        };
        assert_eq!(run(), run());
    }

    #[test]
    fn bad_shapes_and_masks_are_named_errors() {
        let mut rng = Rng::seed_from_u64(0);
        let mut lstm = Lstm::new(4, 6, &mut rng);
        let (h0, c0) = (Tensor::zeros(&[3, 6]), Tensor::zeros(&[3, 6]));
        let err = lstm
            .forward_sequence(&Tensor::zeros(&[5, 3, 2]), &h0, &c0, None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("Lstm input") && err.contains("[5, 3, 2]"),
            "{err}"
        );
        let x = Tensor::zeros(&[5, 3, 4]);
        let err = lstm
            .forward_sequence(&x, &Tensor::zeros(&[2, 6]), &c0, None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("h0") && err.contains("[3, 6]") && err.contains("[2, 6]"),
            "{err}"
        );
        let err = lstm
            .forward_sequence(&x, &h0, &c0, Some(&[0.0; 14]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("reset mask") && err.contains("15") && err.contains("14"),
            "{err}"
        );
        let mut mask = vec![0.0; 15];
        mask[4] = 0.5;
        let err = lstm
            .forward_sequence(&x, &h0, &c0, Some(&mask))
            .unwrap_err()
            .to_string();
        assert!(err.contains("reset mask") && err.contains("0.5"), "{err}");
        let err = lstm
            .backward_sequence(&x, None, None, true)
            .unwrap_err()
            .to_string();
        assert!(err.contains("before forward_sequence"), "{err}");
        lstm.forward_sequence(&x, &h0, &c0, None).unwrap();
        let err = lstm
            .backward_sequence(&Tensor::zeros(&[5, 3, 5]), None, None, true)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("grad_outputs") && err.contains("[5, 3, 5]"),
            "{err}"
        );
        let err = lstm
            .step(
                &Tensor::zeros(&[3, 4]),
                &mut Tensor::zeros(&[3, 5]),
                &mut c0.clone(),
            )
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("step hidden state") && err.contains("[3, 5]"),
            "{err}"
        );
    }

    #[test]
    fn saturation_reflects_hidden_state_magnitude() {
        let mut rng = Rng::seed_from_u64(9);
        let mut lstm = Lstm::new(3, 4, &mut rng);
        let x = random(&[20, 2, 3], &mut rng);
        let z = Tensor::zeros(&[2, 4]);
        lstm.forward_sequence(&x, &z, &z, None).unwrap();
        let calm = lstm.saturation();
        assert_eq!(calm.hidden, 0.0);
        // Huge positive biases: gates pinned at 1, cell grows, h -> tanh(c) -> 1.
        lstm.bias_ih.value.data_mut().fill(20.0);
        lstm.forward_sequence(&x, &z, &z, None).unwrap();
        let hot = lstm.saturation();
        assert!(hot.hidden > 0.85 && hot.gates == 1.0, "{hot:?}");
    }
}
