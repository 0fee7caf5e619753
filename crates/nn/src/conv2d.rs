//! 2-D convolution over NCHW images (im2col + one GEMM per pass) and `Flatten`.
//!
//! Equivalent to `torch.nn.Conv2d(in, out, kernel_size, stride, padding)` with
//! zero padding, dilation 1 and groups 1: weight `[O, C, kh, kw]`, bias `[O]`.
//!
//! Several samples are unfolded together into one matrix with a row per output
//! pixel, `[samples*OH*OW, C*kh*kw]`, so each GEMM is tall rather than `N` small
//! ones (and each kernel row unfolds as one contiguous block copy), while the chunk stays small enough (a quarter of a megabyte) to remain
//! in cache between the unfolding and the multiply: for the first layer of an
//! image network the whole batch's columns run to megabytes, and streaming them
//! through memory cost more than the arithmetic. The backward pass unfolds the
//! input again instead of keeping the columns.

use hlynr_rng::Rng;

use crate::error::{NnError, Result};
use crate::gemm::gemm;
use crate::init::uniform_fan_in;
use crate::layer::Layer;
use crate::param::{NamedParam, NamedParamMut, Param};
use crate::tensor::Tensor;
use crate::{helper, small_gemm};

/// Convolutions with at most this many output channels multiply their columns
/// in [`small_gemm`]: a product only that many columns wide leaves the `gemm`
/// crate's register tiles mostly empty.
const SKINNY_OUT_CHANNELS: usize = 16;

/// Geometry of a convolution: kernel, stride and zero padding per axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dSpec {
    /// Input channels `C`.
    pub in_channels: usize,
    /// Output channels `O`.
    pub out_channels: usize,
    /// Kernel `(height, width)`.
    pub kernel: (usize, usize),
    /// Stride `(vertical, horizontal)`.
    pub stride: (usize, usize),
    /// Zero padding `(rows added top and bottom, columns added left and right)`.
    pub padding: (usize, usize),
    /// Whether the layer has a bias.
    pub bias: bool,
}

impl Conv2dSpec {
    /// Square kernel `k`, stride `s`, no padding, with bias.
    pub fn new(in_channels: usize, out_channels: usize, kernel: usize, stride: usize) -> Self {
        Self {
            in_channels,
            out_channels,
            kernel: (kernel, kernel),
            stride: (stride, stride),
            padding: (0, 0),
            bias: true,
        }
    }

    /// The same spec with square zero padding `p`.
    pub fn with_padding(mut self, padding: usize) -> Self {
        self.padding = (padding, padding);
        self
    }

    /// The same spec with or without bias.
    pub fn with_bias(mut self, bias: bool) -> Self {
        self.bias = bias;
        self
    }

    /// `C * kh * kw`, the length of one unfolded receptive field.
    fn fan_in(&self) -> usize {
        self.in_channels * self.kernel.0 * self.kernel.1
    }

    /// Output spatial size for an `height x width` input, or an error when the
    /// (padded) input is smaller than the kernel.
    pub fn output_size(&self, height: usize, width: usize) -> Result<(usize, usize)> {
        let (kh, kw) = self.kernel;
        let (sh, sw) = self.stride;
        let (ph, pw) = self.padding;
        let (hp, wp) = (height + 2 * ph, width + 2 * pw);
        if hp < kh || wp < kw {
            return Err(NnError::invalid(
                "Conv2d input",
                format!(
                    "padded input {hp}x{wp} is smaller than the {kh}x{kw} kernel \
                     (input {height}x{width}, padding {ph}x{pw})"
                ),
            ));
        }
        Ok(((hp - kh) / sh + 1, (wp - kw) / sw + 1))
    }

    fn validate(&self) -> Result<()> {
        let ok = self.in_channels > 0
            && self.out_channels > 0
            && self.kernel.0 > 0
            && self.kernel.1 > 0
            && self.stride.0 > 0
            && self.stride.1 > 0;
        if ok {
            Ok(())
        } else {
            Err(NnError::invalid(
                "Conv2d",
                format!("channels, kernel and stride must be positive, got {self:?}"),
            ))
        }
    }
}

/// Budget for one chunk of unfolded columns: well inside a typical L2 cache,
/// next to the GEMM's own packing buffers.
const COLUMN_CHUNK_BYTES: usize = 256 * 1024;

/// Sizes of one forward pass, fixed by the input shape.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Geometry {
    n: usize,
    h: usize,
    w: usize,
    oh: usize,
    ow: usize,
}

/// 2-D convolution layer, NCHW.
#[derive(Clone, Debug)]
pub struct Conv2d {
    spec: Conv2dSpec,
    /// `[O, C, kh, kw]`, as in `torch.nn.Conv2d`.
    pub weight: Param,
    /// `[O]`, absent when built without bias.
    pub bias: Option<Param>,
    geom: Geometry,
    /// Unfolded input of one chunk of samples, `[chunk*OH*OW, C*kh*kw]`.
    cols: Tensor,
    /// Pixel-major scratch `[chunk*OH*OW, O]`: the output before, and the
    /// output gradient after, transposing to NCHW.
    pixel_major: Tensor,
    /// `cols` and `pixel_major` of the second chunk of a pair computed on
    /// two threads in the forward pass.
    spare_cols: Tensor,
    spare_pixel_major: Tensor,
    /// Column gradient of one chunk, `[chunk*OH*OW, C*kh*kw]`.
    grad_cols: Tensor,
    out: Tensor,
    grad_input: Tensor,
}

impl Conv2d {
    /// A convolution with PyTorch's default initialisation: weight and bias
    /// from `U(-1/sqrt(fan_in), 1/sqrt(fan_in))`, `fan_in = C*kh*kw`.
    pub fn new(spec: Conv2dSpec, rng: &mut Rng) -> Result<Self> {
        spec.validate()?;
        let (kh, kw) = spec.kernel;
        let fan_in = spec.fan_in();
        let mut w = Tensor::zeros(&[spec.out_channels, spec.in_channels, kh, kw]);
        uniform_fan_in(&mut w, fan_in, rng);
        let bias = spec.bias.then(|| {
            let mut b = Tensor::zeros(&[spec.out_channels]);
            uniform_fan_in(&mut b, fan_in, rng);
            Param::trainable(b)
        });
        Ok(Self {
            spec,
            weight: Param::trainable(w),
            bias,
            geom: Geometry::default(),
            cols: Tensor::default(),
            pixel_major: Tensor::default(),
            spare_cols: Tensor::default(),
            spare_pixel_major: Tensor::default(),
            grad_cols: Tensor::default(),
            out: Tensor::default(),
            grad_input: Tensor::default(),
        })
    }

    /// The layer's geometry.
    pub fn spec(&self) -> &Conv2dSpec {
        &self.spec
    }

    /// Samples unfolded at a time: as many as keep the column matrix within
    /// [`COLUMN_CHUNK_BYTES`] (at least one), so it stays in cache between
    /// being written and being multiplied.
    fn chunk_samples(&self) -> usize {
        let per_sample = self.spec.fan_in() * self.geom.oh * self.geom.ow * size_of::<f32>();
        (COLUMN_CHUNK_BYTES / per_sample.max(1)).max(1)
    }

    fn geometry(&self, input: &Tensor, context: &str) -> Result<Geometry> {
        let s = input.shape();
        let c = self.spec.in_channels;
        if s.len() != 4 || s[1] != c {
            let n = s.first().copied().unwrap_or(0);
            let h = s.get(2).copied().unwrap_or(0);
            let w = s.get(3).copied().unwrap_or(0);
            return Err(NnError::shape(
                format!("{context} [N, C, H, W]"),
                &[n, c, h, w],
                s,
            ));
        }
        let (oh, ow) = self.spec.output_size(s[2], s[3])?;
        Ok(Geometry {
            n: s[0],
            h: s[2],
            w: s[3],
            oh,
            ow,
        })
    }

    /// Adds the rows of `self.grad_cols` (samples `first..first + count`, laid
    /// out as [`im2col`] writes them) onto the input gradient.
    fn col2im(&mut self, first: usize, count: usize) {
        let Geometry { h, w, oh, ow, .. } = self.geom;
        let Conv2dSpec {
            in_channels: c,
            kernel: (kh, kw),
            stride: (sh, sw),
            padding: (ph, pw),
            ..
        } = self.spec;
        let k = c * kh * kw;
        let dx = self.grad_input.data_mut();
        let cols = self.grad_cols.data();
        let interior = interior_range(ow, sw, kw, pw, w);
        for (j, ni) in (first..first + count).enumerate() {
            for oy in 0..oh {
                let pix0 = (j * oh + oy) * ow;
                let in_rows = &cols[pix0 * k..(pix0 + ow) * k];
                for ci in 0..c {
                    let base = (ni * c + ci) * h * w;
                    for ki in 0..kh {
                        let off = (ci * kh + ki) * kw;
                        let iy = oy * sh + ki;
                        if iy < ph || iy - ph >= h {
                            continue;
                        }
                        let dst = &mut dx[base + (iy - ph) * w..base + (iy - ph + 1) * w];
                        for ox in (0..interior.start).chain(interior.end..ow) {
                            let seg = &in_rows[ox * k + off..ox * k + off + kw];
                            let kjs = valid_range(kw, 1, ox * sw, pw, w);
                            if !kjs.is_empty() {
                                let ix0 = ox * sw + kjs.start - pw;
                                for (d, &g) in dst[ix0..ix0 + kjs.len()].iter_mut().zip(&seg[kjs]) {
                                    *d += g;
                                }
                            }
                        }
                        if !interior.is_empty() {
                            let rows = &in_rows[interior.start * k..interior.end * k];
                            let dst = &mut dst[interior.start * sw - pw..];
                            fold_interior(rows, k, off, kw, dst, sw);
                        }
                    }
                }
            }
        }
    }
}

/// Unfolds samples `first..first + count` of `x` into `cols`, one row
/// per output pixel `(sample, oy, ox)` holding its receptive field in the
/// weight's `(c, ki, kj)` order. Each kernel row of a receptive field is a
/// contiguous run of an input row, so the unfolding is a sequence of short
/// block copies; the loops are ordered so that each input row is found once
/// per output row.
fn im2col(
    spec: &Conv2dSpec,
    geom: Geometry,
    x: &[f32],
    first: usize,
    count: usize,
    cols: &mut Tensor,
) {
    let Geometry { h, w, oh, ow, .. } = geom;
    let Conv2dSpec {
        in_channels: c,
        kernel: (kh, kw),
        stride: (sh, sw),
        padding: (ph, pw),
        ..
    } = *spec;
    let k = c * kh * kw;
    cols.resize(&[count * oh * ow, k]);
    let cols = cols.data_mut();
    let interior = interior_range(ow, sw, kw, pw, w);
    for (j, ni) in (first..first + count).enumerate() {
        for oy in 0..oh {
            let pix0 = (j * oh + oy) * ow;
            let out_rows = &mut cols[pix0 * k..(pix0 + ow) * k];
            for ci in 0..c {
                let plane = &x[(ni * c + ci) * h * w..(ni * c + ci + 1) * h * w];
                for ki in 0..kh {
                    let off = (ci * kh + ki) * kw;
                    let iy = oy * sh + ki;
                    if iy < ph || iy - ph >= h {
                        for row in out_rows.chunks_exact_mut(k) {
                            row[off..off + kw].fill(0.0);
                        }
                        continue;
                    }
                    let src = &plane[(iy - ph) * w..(iy - ph + 1) * w];
                    // Edge pixels, where the kernel row hangs over the padding.
                    for ox in (0..interior.start).chain(interior.end..ow) {
                        let seg = &mut out_rows[ox * k + off..ox * k + off + kw];
                        let kjs = valid_range(kw, 1, ox * sw, pw, w);
                        seg.fill(0.0);
                        if !kjs.is_empty() {
                            let ix0 = ox * sw + kjs.start - pw;
                            seg[kjs.clone()].copy_from_slice(&src[ix0..ix0 + kjs.len()]);
                        }
                    }
                    if !interior.is_empty() {
                        let rows = &mut out_rows[interior.start * k..interior.end * k];
                        let src = &src[interior.start * sw - pw..];
                        unfold_interior(rows, k, off, kw, src, sw);
                    }
                }
            }
        }
    }
}

/// Chunks of a forward pass whose multiply-adds reach this are computed two
/// at a time on two threads.
const PAIR_MIN_MACS: usize = 1 << 17;

/// What the forward pass of one chunk of samples reads.
struct ChunkForward<'a> {
    spec: &'a Conv2dSpec,
    geom: Geometry,
    weight: &'a [f32],
    bias: Option<&'a [f32]>,
    x: &'a [f32],
}

impl ChunkForward<'_> {
    /// Samples `first..first + count` into `out` (their NCHW outputs), with
    /// `cols` and `pixel_major` as scratch.
    fn run(
        &self,
        first: usize,
        count: usize,
        cols: &mut Tensor,
        pixel_major: &mut Tensor,
        out: &mut [f32],
    ) {
        let Geometry { oh, ow, .. } = self.geom;
        let o = self.spec.out_channels;
        let k = self.spec.fan_in();
        let plane = oh * ow;
        let pixels = count * plane;
        im2col(self.spec, self.geom, self.x, first, count, cols);
        // [pixels, K] x [K, O] -> pixel-major output of the chunk.
        pixel_major.resize(&[pixels, o]);
        if o <= SKINNY_OUT_CHANNELS && k <= small_gemm::MAX_DEPTH {
            // Few output channels: one dot product per output, no packing.
            small_gemm::gemm_nt(
                pixels,
                k,
                o,
                1.0,
                cols.data(),
                self.weight,
                0.0,
                pixel_major.data_mut(),
            );
        } else {
            gemm(
                pixels,
                k,
                o,
                1.0,
                cols.data(),
                false,
                self.weight,
                true,
                0.0,
                pixel_major.data_mut(),
            );
        }
        // Transpose each sample's [plane, O] to NCHW's [O, plane], adding the bias.
        let pm = pixel_major.data();
        for j in 0..count {
            let src = &pm[j * plane * o..(j + 1) * plane * o];
            for oi in 0..o {
                let b = self.bias.map_or(0.0, |b| b[oi]);
                let dst = &mut out[(j * o + oi) * plane..(j * o + oi + 1) * plane];
                for (p, d) in dst.iter_mut().enumerate() {
                    *d = src[p * o + oi] + b;
                }
            }
        }
    }
}

/// Output columns `ox` whose whole kernel row `ox*sw - pw .. ox*sw - pw + kw`
/// lies inside the input row of width `w`.
fn interior_range(ow: usize, sw: usize, kw: usize, pw: usize, w: usize) -> std::ops::Range<usize> {
    let lo = pw.div_ceil(sw);
    // ox*sw + kw <= w + pw
    let hi = if w + pw < kw {
        0
    } else {
        ((w + pw - kw) / sw + 1).min(ow)
    };
    lo.min(hi)..hi
}

/// Copies kernel row `src[t*sw .. t*sw + kw]` to `rows[t][off .. off + kw]`
/// for every row `t` (rows of length `k`). Common widths are dispatched to a
/// fixed-size copy the compiler turns into a few vector moves.
fn unfold_interior(rows: &mut [f32], k: usize, off: usize, kw: usize, src: &[f32], sw: usize) {
    fn fixed<const N: usize>(rows: &mut [f32], k: usize, off: usize, src: &[f32], sw: usize) {
        for (t, row) in rows.chunks_exact_mut(k).enumerate() {
            let d: &mut [f32; N] = (&mut row[off..off + N]).try_into().expect("N wide");
            let s: &[f32; N] = src[t * sw..t * sw + N].try_into().expect("N wide");
            *d = *s;
        }
    }
    match kw {
        1 => fixed::<1>(rows, k, off, src, sw),
        2 => fixed::<2>(rows, k, off, src, sw),
        3 => fixed::<3>(rows, k, off, src, sw),
        4 => fixed::<4>(rows, k, off, src, sw),
        5 => fixed::<5>(rows, k, off, src, sw),
        8 => fixed::<8>(rows, k, off, src, sw),
        _ => {
            for (t, row) in rows.chunks_exact_mut(k).enumerate() {
                row[off..off + kw].copy_from_slice(&src[t * sw..t * sw + kw]);
            }
        }
    }
}

/// Adjoint of [`unfold_interior`]: adds `rows[t][off .. off + kw]` onto
/// `dst[t*sw .. t*sw + kw]`, in increasing `t` (a fixed order, so results are
/// reproducible).
fn fold_interior(rows: &[f32], k: usize, off: usize, kw: usize, dst: &mut [f32], sw: usize) {
    fn fixed<const N: usize>(rows: &[f32], k: usize, off: usize, dst: &mut [f32], sw: usize) {
        for (t, row) in rows.chunks_exact(k).enumerate() {
            let s: &[f32; N] = row[off..off + N].try_into().expect("N wide");
            let d: &mut [f32; N] = (&mut dst[t * sw..t * sw + N]).try_into().expect("N wide");
            for (dv, &g) in d.iter_mut().zip(s) {
                *dv += g;
            }
        }
    }
    match kw {
        1 => fixed::<1>(rows, k, off, dst, sw),
        2 => fixed::<2>(rows, k, off, dst, sw),
        3 => fixed::<3>(rows, k, off, dst, sw),
        4 => fixed::<4>(rows, k, off, dst, sw),
        5 => fixed::<5>(rows, k, off, dst, sw),
        8 => fixed::<8>(rows, k, off, dst, sw),
        _ => {
            for (t, row) in rows.chunks_exact(k).enumerate() {
                for (dv, &g) in dst[t * sw..t * sw + kw].iter_mut().zip(&row[off..off + kw]) {
                    *dv += g;
                }
            }
        }
    }
}

/// Output positions `o` in `0..out_len` whose input index `o * stride + k - pad`
/// falls inside `0..in_len` (a contiguous range, possibly empty).
fn valid_range(
    out_len: usize,
    stride: usize,
    k: usize,
    pad: usize,
    in_len: usize,
) -> std::ops::Range<usize> {
    // o * stride + k >= pad  <=>  o >= ceil((pad - k) / stride).
    let lo = pad.saturating_sub(k).div_ceil(stride);
    // o * stride + k - pad < in_len  <=>  o * stride < in_len + pad - k.
    let limit = in_len + pad;
    let hi = if limit <= k {
        0
    } else {
        (limit - k).div_ceil(stride)
    };
    let hi = hi.min(out_len);
    lo.min(hi)..hi
}

impl Layer for Conv2d {
    fn kind(&self) -> &'static str {
        "Conv2d"
    }

    fn forward(&mut self, input: &Tensor) -> Result<&Tensor> {
        self.geom = self.geometry(input, "Conv2d input")?;
        let Geometry { n, oh, ow, .. } = self.geom;
        let o = self.spec.out_channels;
        let per_sample = o * oh * ow;
        let chunk = self.chunk_samples();
        let pair_worth_splitting = chunk * oh * ow * self.spec.fan_in() * o >= PAIR_MIN_MACS;
        self.out.resize(&[n, o, oh, ow]);
        let pass = ChunkForward {
            spec: &self.spec,
            geom: self.geom,
            weight: self.weight.value.data(),
            bias: self.bias.as_ref().map(|b| b.value.data()),
            x: input.data(),
        };
        let mut out = self.out.data_mut();
        let mut first = 0;
        while first < n {
            let count = chunk.min(n - first);
            let (here, rest) = out.split_at_mut(count * per_sample);
            let second = chunk.min(n - first - count);
            if second == 0 || !pair_worth_splitting {
                pass.run(first, count, &mut self.cols, &mut self.pixel_major, here);
                out = rest;
                first += count;
                continue;
            }
            // Two chunks at once, the second on the helper thread: each is
            // computed exactly as it would be alone.
            let (there, rest) = rest.split_at_mut(second * per_sample);
            let (cols, pixel_major) = (&mut self.spare_cols, &mut self.spare_pixel_major);
            helper::join(
                || pass.run(first, count, &mut self.cols, &mut self.pixel_major, here),
                || pass.run(first + count, second, cols, pixel_major, there),
            );
            out = rest;
            first += count + second;
        }
        Ok(&self.out)
    }

    fn backward(
        &mut self,
        input: &Tensor,
        grad_output: &Tensor,
        need_input_grad: bool,
    ) -> Result<&Tensor> {
        let geom = self.geometry(input, "Conv2d backward input")?;
        if geom != self.geom || self.out.is_empty() {
            return Err(NnError::invalid(
                "Conv2d backward",
                format!(
                    "input shape {:?} is not the one of the last forward pass",
                    input.shape()
                ),
            ));
        }
        let Geometry { n, h, w, oh, ow } = geom;
        let (o, k) = (self.spec.out_channels, self.spec.fan_in());
        let plane = oh * ow;
        grad_output.expect_shape("Conv2d grad_output", &[n, o, oh, ow])?;
        if need_input_grad {
            self.grad_input
                .resize_zeroed(&[n, self.spec.in_channels, h, w]);
        }
        let chunk = self.chunk_samples();
        let mut first = 0;
        while first < n {
            let count = chunk.min(n - first);
            let pixels = count * plane;
            // Transpose dY to pixel-major [pixels, O]; bias gradient on the way.
            self.pixel_major.resize(&[pixels, o]);
            {
                let pm = self.pixel_major.data_mut();
                let dy = grad_output.data();
                for j in 0..count {
                    let ni = first + j;
                    let dst = &mut pm[j * plane * o..(j + 1) * plane * o];
                    for oi in 0..o {
                        let src = &dy[(ni * o + oi) * plane..(ni * o + oi + 1) * plane];
                        for (p, &g) in src.iter().enumerate() {
                            dst[p * o + oi] = g;
                        }
                        if let Some(b) = &mut self.bias {
                            b.grad.data_mut()[oi] += src.iter().sum::<f32>();
                        }
                    }
                }
            }
            // The columns are rebuilt rather than kept from the forward pass:
            // a chunk's columns stay in cache, the whole batch's would not.
            im2col(
                &self.spec,
                self.geom,
                input.data(),
                first,
                count,
                &mut self.cols,
            );
            // dW += dY'^T cols : [O, pixels] x [pixels, K].
            gemm(
                o,
                pixels,
                k,
                1.0,
                self.pixel_major.data(),
                true,
                self.cols.data(),
                false,
                1.0,
                self.weight.grad.data_mut(),
            );
            if need_input_grad {
                // dcols = dY' W : [pixels, O] x [O, K].
                self.grad_cols.resize(&[pixels, k]);
                gemm(
                    pixels,
                    o,
                    k,
                    1.0,
                    self.pixel_major.data(),
                    false,
                    self.weight.value.data(),
                    false,
                    0.0,
                    self.grad_cols.data_mut(),
                );
                self.col2im(first, count);
            }
            first += count;
        }
        Ok(&self.grad_input)
    }

    fn output(&self) -> &Tensor {
        &self.out
    }

    fn input_grad(&self) -> &Tensor {
        &self.grad_input
    }

    fn params<'a>(&'a self, prefix: &str, out: &mut Vec<NamedParam<'a>>) {
        out.push((format!("{prefix}weight"), &self.weight));
        if let Some(b) = &self.bias {
            out.push((format!("{prefix}bias"), b));
        }
    }

    fn params_mut<'a>(&'a mut self, prefix: &str, out: &mut Vec<NamedParamMut<'a>>) {
        out.push((format!("{prefix}weight"), &mut self.weight));
        if let Some(b) = &mut self.bias {
            out.push((format!("{prefix}bias"), b));
        }
    }
}

/// `torch.nn.Flatten()`: `[N, d1, d2, ...]` to `[N, d1*d2*...]`. No parameters,
/// but it occupies an index in a `Sequential`, exactly as in PyTorch, so the
/// layers after it keep PyTorch's names.
#[derive(Clone, Debug, Default)]
pub struct Flatten {
    out: Tensor,
    grad_input: Tensor,
}

impl Flatten {
    /// A flatten layer.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Layer for Flatten {
    fn kind(&self) -> &'static str {
        "Flatten"
    }

    fn forward(&mut self, input: &Tensor) -> Result<&Tensor> {
        if input.ndim() < 2 {
            return Err(NnError::invalid(
                "Flatten input",
                format!(
                    "needs a batch dimension and at least one more, got shape {:?}",
                    input.shape()
                ),
            ));
        }
        self.out.resize(&[input.rows(), input.cols()]);
        self.out.data_mut().copy_from_slice(input.data());
        Ok(&self.out)
    }

    fn backward(
        &mut self,
        input: &Tensor,
        grad_output: &Tensor,
        need_input_grad: bool,
    ) -> Result<&Tensor> {
        grad_output.expect_shape("Flatten grad_output", &[input.rows(), input.cols()])?;
        if need_input_grad {
            self.grad_input.resize(input.shape());
            self.grad_input
                .data_mut()
                .copy_from_slice(grad_output.data());
        }
        Ok(&self.grad_input)
    }

    fn output(&self) -> &Tensor {
        &self.out
    }

    fn input_grad(&self) -> &Tensor {
        &self.grad_input
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::check_layer;

    /// Direct nested-loop convolution, the definition.
    fn naive(conv: &Conv2d, x: &Tensor) -> Tensor {
        let s = conv.spec;
        let [n, c, h, w] = x.shape().try_into().unwrap();
        let (oh, ow) = s.output_size(h, w).unwrap();
        let (kh, kw) = s.kernel;
        let mut out = Tensor::zeros(&[n, s.out_channels, oh, ow]);
        let wt = conv.weight.value.data();
        for ni in 0..n {
            for o in 0..s.out_channels {
                for oy in 0..oh {
                    for ox in 0..ow {
                        let mut acc = conv.bias.as_ref().map_or(0.0, |b| b.value.data()[o]);
                        for ci in 0..c {
                            for ki in 0..kh {
                                for kj in 0..kw {
                                    let iy = (oy * s.stride.0 + ki) as isize - s.padding.0 as isize;
                                    let ix = (ox * s.stride.1 + kj) as isize - s.padding.1 as isize;
                                    if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                                        continue;
                                    }
                                    acc += wt[((o * c + ci) * kh + ki) * kw + kj]
                                        * x.data()
                                            [((ni * c + ci) * h + iy as usize) * w + ix as usize];
                                }
                            }
                        }
                        out.data_mut()[((ni * s.out_channels + o) * oh + oy) * ow + ox] = acc;
                    }
                }
            }
        }
        out
    }

    fn random(shape: &[usize], rng: &mut Rng) -> Tensor {
        let mut t = Tensor::zeros(shape);
        for v in t.data_mut() {
            *v = rng.uniform_range_f32(-1.0, 1.0);
        }
        t
    }

    #[test]
    fn forward_matches_direct_convolution() {
        let mut rng = Rng::seed_from_u64(2);
        let specs = [
            Conv2dSpec::new(3, 4, 3, 1),
            Conv2dSpec::new(2, 5, 3, 2).with_padding(1),
            Conv2dSpec {
                kernel: (2, 3),
                stride: (1, 2),
                padding: (1, 0),
                ..Conv2dSpec::new(3, 2, 1, 1)
            },
            Conv2dSpec::new(2, 3, 4, 2).with_bias(false),
            // A kernel width without a specialised copy.
            Conv2dSpec {
                kernel: (2, 7),
                padding: (0, 1),
                ..Conv2dSpec::new(2, 2, 1, 1)
            },
        ];
        for spec in specs {
            let mut conv = Conv2d::new(spec, &mut rng).unwrap();
            let x = random(&[2, spec.in_channels, 7, 6], &mut rng);
            let want = naive(&conv, &x);
            let got = conv.forward(&x).unwrap();
            assert_eq!(got.shape(), want.shape());
            for (a, b) in got.data().iter().zip(want.data()) {
                assert!((a - b).abs() < 1e-5, "{spec:?}: {a} vs {b}");
            }
        }
        // Padding wider than the kernel's reach: whole output rows and columns
        // see only zeros.
        let mut conv = Conv2d::new(Conv2dSpec::new(2, 2, 2, 3).with_padding(3), &mut rng).unwrap();
        let x = random(&[1, 2, 2, 3], &mut rng);
        let want = naive(&conv, &x);
        let got = conv.forward(&x).unwrap();
        assert_eq!(got.shape(), want.shape());
        for (a, b) in got.data().iter().zip(want.data()) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
        check_layer(&mut conv, &[1, 2, 2, 3], &mut rng).unwrap();
    }

    #[test]
    fn chunks_computed_in_pairs_match_the_direct_convolution_and_each_sample_alone() {
        let mut rng = Rng::seed_from_u64(4);
        // One sample per chunk, each worth splitting: 5 samples make two
        // pairs and a last chunk alone. 20 channels take the `gemm` path.
        for spec in [Conv2dSpec::new(4, 8, 8, 4), Conv2dSpec::new(4, 20, 8, 4)] {
            let mut conv = Conv2d::new(spec, &mut rng).unwrap();
            let x = random(&[5, 4, 64, 64], &mut rng);
            assert_eq!(
                conv.forward(&x).unwrap().shape(),
                &[5, spec.out_channels, 15, 15]
            );
            assert_eq!(conv.chunk_samples(), 1);
            let got = conv.forward(&x).unwrap().clone();
            let want = naive(&conv, &x);
            for (a, b) in got.data().iter().zip(want.data()) {
                assert!((a - b).abs() < 1e-4, "{spec:?}: {a} vs {b}");
            }
            let per_sample = got.len() / 5;
            for i in 0..5 {
                let one = Tensor::from_vec(
                    &[1, 4, 64, 64],
                    x.data()[i * 4 * 64 * 64..(i + 1) * 4 * 64 * 64].to_vec(),
                )
                .unwrap();
                let alone = conv.forward(&one).unwrap();
                assert_eq!(
                    alone.data(),
                    &got.data()[i * per_sample..(i + 1) * per_sample],
                    "{spec:?}: sample {i}"
                );
            }
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        let mut rng = Rng::seed_from_u64(4);
        let mut a = Conv2d::new(Conv2dSpec::new(2, 3, 3, 2).with_padding(1), &mut rng).unwrap();
        check_layer(&mut a, &[2, 2, 5, 6], &mut rng).unwrap();
        let spec = Conv2dSpec {
            kernel: (3, 2),
            stride: (2, 1),
            padding: (0, 1),
            bias: false,
            ..Conv2dSpec::new(3, 2, 1, 1)
        };
        let mut b = Conv2d::new(spec, &mut rng).unwrap();
        check_layer(&mut b, &[3, 3, 6, 4], &mut rng).unwrap();
        let wide = Conv2dSpec {
            kernel: (1, 6),
            stride: (1, 2),
            padding: (1, 2),
            ..Conv2dSpec::new(2, 2, 1, 1)
        };
        let mut c = Conv2d::new(wide, &mut rng).unwrap();
        check_layer(&mut c, &[2, 2, 3, 9], &mut rng).unwrap();
    }

    #[test]
    fn default_init_is_bounded_by_fan_in() {
        let mut rng = Rng::seed_from_u64(5);
        let conv = Conv2d::new(Conv2dSpec::new(4, 8, 8, 4), &mut rng).unwrap();
        let bound = 1.0 / (4.0f32 * 64.0).sqrt();
        let w = conv.weight.value.data();
        assert!(w.iter().all(|v| v.abs() <= bound));
        // Spread close to the bound, not a tiny constant.
        assert!(w.iter().fold(0.0f32, |m, v| m.max(v.abs())) > 0.9 * bound);
        assert_eq!(conv.weight.value.shape(), &[8, 4, 8, 8]);
    }

    #[test]
    fn flatten_reshapes_and_passes_gradients_through() {
        let mut rng = Rng::seed_from_u64(6);
        let mut f = Flatten::new();
        let x = random(&[2, 3, 2, 2], &mut rng);
        let y = f.forward(&x).unwrap();
        assert_eq!(y.shape(), &[2, 12]);
        assert_eq!(y.data(), x.data());
        check_layer(&mut f, &[3, 2, 4], &mut rng).unwrap();
        let err = f.forward(&Tensor::zeros(&[5])).unwrap_err().to_string();
        assert!(err.contains("Flatten") && err.contains("[5]"), "{err}");
    }

    #[test]
    fn bad_inputs_are_named_errors() {
        let mut rng = Rng::seed_from_u64(0);
        let mut conv = Conv2d::new(Conv2dSpec::new(3, 4, 5, 1), &mut rng).unwrap();
        let err = conv
            .forward(&Tensor::zeros(&[2, 2, 8, 8]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("Conv2d input") && err.contains("[2, 2, 8, 8]"),
            "{err}"
        );
        let err = conv
            .forward(&Tensor::zeros(&[2, 3, 4, 8]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("smaller than the 5x5 kernel"), "{err}");
        let x = Tensor::zeros(&[2, 3, 8, 8]);
        conv.forward(&x).unwrap();
        let err = conv
            .backward(&x, &Tensor::zeros(&[2, 4, 3, 3]), true)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("Conv2d grad_output") && err.contains("[2, 4, 4, 4]"),
            "{err}"
        );
        let err = Conv2d::new(Conv2dSpec::new(3, 4, 3, 0), &mut rng)
            .unwrap_err()
            .to_string();
        assert!(err.contains("stride"), "{err}");
    }

    #[test]
    fn identical_runs_are_bitwise_equal() {
        let run = || {
            let mut rng = Rng::seed_from_u64(8);
            let mut conv =
                Conv2d::new(Conv2dSpec::new(2, 3, 3, 2).with_padding(1), &mut rng).unwrap();
            let x = random(&[2, 2, 7, 7], &mut rng);
            let y = conv.forward(&x).unwrap().clone();
            let r = random(y.shape(), &mut rng);
            let dx = conv.backward(&x, &r, true).unwrap().clone();
            (y, dx, conv.weight.grad.clone())
        };
        assert_eq!(run(), run());
    }
}
