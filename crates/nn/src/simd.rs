//! Vectorised elementwise math: `exp`, `ln`, `tanh`, `sigmoid`, `softplus` and
//! the activations' backward passes over slices.
//!
//! The standard library's `f32::tanh`/`f32::exp` are scalar calls into libm, and on
//! the small networks RL uses they dominate the time of a forward pass. Here each
//! function is a branch-free polynomial or rational approximation (range
//! reduction plus minimax polynomials, the classic single-precision constructions)
//! written with selects instead of branches, so LLVM turns every loop into SIMD
//! code. Each slice kernel is compiled twice: for the baseline target (SSE2 on
//! x86-64) and with AVX2+FMA enabled; the latter is chosen at run time when the
//! CPU has it (detected once and cached).
//!
//! Both code paths perform exactly the same IEEE operations in the same order
//! (no fused multiply-adds are requested and LLVM never contracts without being
//! told to), so results are bitwise identical whichever path runs: a run is
//! reproducible across machines as well as on one.
//!
//! Accuracy (checked in the tests against `f64` over dense grids): `tanh` is
//! within 2e-7 absolute everywhere, and within a few ulp relative; `exp`,
//! `sigmoid` and `ln` are within a few ulp relative. NaN inputs give NaN outputs.

#[cfg(target_arch = "x86_64")]
use std::sync::OnceLock;

/// True when the AVX2+FMA versions of the kernels may run on this CPU.
#[cfg(target_arch = "x86_64")]
#[inline]
pub fn has_avx2_fma() -> bool {
    static DETECTED: OnceLock<bool> = OnceLock::new();
    *DETECTED.get_or_init(|| is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"))
}

/// True when the AVX2+FMA versions of the kernels may run on this CPU.
#[cfg(not(target_arch = "x86_64"))]
#[inline]
pub fn has_avx2_fma() -> bool {
    false
}

// ---------------------------------------------------------------------------
// Scalar approximations. Always inlined so that each slice kernel below gets its
// own copy, compiled for that kernel's target features.
// ---------------------------------------------------------------------------

const LOG2_E: f32 = std::f32::consts::LOG2_E;
// ln 2 split into a part with few mantissa bits (exact products with small n)
// and a correction, for Cody-Waite range reduction.
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;

/// `2^n` for an integer `n` in `[-126, 127]`, built from its bits.
#[inline(always)]
fn pow2i(n: i32) -> f32 {
    f32::from_bits(((n + 127) as u32) << 23)
}

/// Adding and subtracting `1.5 * 2^23` rounds an `f32` of magnitude below
/// `2^22` to the nearest integer (ties to even) without a libm call, and the
/// low bits of the sum hold that integer.
const ROUND_MAGIC: f32 = 12_582_912.0;

/// `e^x` in single precision, branch-free.
///
/// `x = n ln2 + r` with `|r| <= ln2/2`, `e^r` from a degree-7 minimax
/// polynomial, and `2^n` applied as two factors so that results in the
/// subnormal range and overflow to infinity come out right.
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    // Beyond these bounds the result is 0 or +inf anyway; clamping keeps the
    // integer arithmetic in range.
    let xc = x.clamp(-104.0, 89.0);
    let t = xc * LOG2_E + ROUND_MAGIC;
    let n = t - ROUND_MAGIC;
    let ni = (t.to_bits() as i32) - (ROUND_MAGIC.to_bits() as i32);
    let r = xc - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4_f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let er = p * (r * r) + r + 1.0;
    // n in [-150, 129]; split so each factor is a normal power of two.
    let n1 = ni >> 1;
    let n2 = ni - n1;
    let y = er * pow2i(n1) * pow2i(n2);
    if x.is_nan() { x } else { y }
}

/// Natural logarithm in single precision, branch-free. Zero gives `-inf`,
/// negative numbers and NaN give NaN, `+inf` gives `+inf`.
#[inline(always)]
pub fn ln_f32(x: f32) -> f32 {
    // Scale subnormals up by 2^24 so the exponent extraction below is valid.
    let tiny = x < f32::MIN_POSITIVE;
    let xs = if tiny { x * 16_777_216.0 } else { x };
    let bits = xs.to_bits();
    let e_raw = ((bits >> 23) & 0xff) as i32 - 126;
    // Mantissa in [0.5, 1).
    let m = f32::from_bits((bits & 0x007f_ffff) | 0x3f00_0000);
    let small = m < std::f32::consts::FRAC_1_SQRT_2;
    let e = (e_raw - i32::from(small)) as f32 - if tiny { 24.0 } else { 0.0 };
    let f = if small { m + m - 1.0 } else { m - 1.0 };
    let z = f * f;
    let mut p = 7.037_683_6e-2_f32;
    p = p * f - 1.151_461e-1;
    p = p * f + 1.167_699_9e-1;
    p = p * f - 1.242_014_1e-1;
    p = p * f + 1.424_932_3e-1;
    p = p * f - 1.666_805_8e-1;
    p = p * f + 2.000_071_4e-1;
    p = p * f - 2.499_999_4e-1;
    p = p * f + 3.333_333e-1;
    let mut y = p * f * z;
    y += e * LN2_LO;
    y -= 0.5 * z;
    let r = f + y + e * LN2_HI;
    if x.is_nan() || x < 0.0 {
        f32::NAN
    } else if x == 0.0 {
        f32::NEG_INFINITY
    } else if x == f32::INFINITY {
        x
    } else {
        r
    }
}

/// `ln(1 + x)` for `x >= 0`, accurate also when `x` is tiny: with `w = 1 + x`
/// rounded, `ln(w) * x / (w - 1)` cancels the rounding of `w` to first order.
#[inline(always)]
fn ln_1p_nonneg(x: f32) -> f32 {
    let w = 1.0 + x;
    let d = w - 1.0;
    let r = ln_f32(w) * (x / d);
    if d == 0.0 {
        x
    } else if w == f32::INFINITY {
        w
    } else {
        r
    }
}

/// `tanh(x)` in single precision, branch-free: a rational minimax
/// approximation (odd degree 13 over even degree 6, the coefficients Eigen
/// publishes for its float tanh) on `[-c, c]`, where `c = 7.9053` is where
/// `tanh` rounds to one in `f32`; `x` itself below `4e-4`, where `tanh(x) = x`
/// to `f32` precision (this keeps `-0` and subnormals exact). One division and
/// no exponential, so the loop vectorises into a handful of instructions per
/// lane; NaN propagates through the clamp.
#[inline(always)]
pub fn tanh_f32(x: f32) -> f32 {
    let xc = x.clamp(-7.905_311, 7.905_311);
    let x2 = xc * xc;
    let mut p = -2.760_768_5e-16_f32;
    p = p * x2 + 2.000_188e-13;
    p = p * x2 - 8.604_672e-11;
    p = p * x2 + 5.122_297e-8;
    p = p * x2 + 1.485_722_4e-5;
    p = p * x2 + 6.372_619_3e-4;
    p = p * x2 + 4.893_524_6e-3;
    let mut q = 1.198_258_4e-6_f32;
    q = q * x2 + 1.185_347_1e-4;
    q = q * x2 + 2.268_434_6e-3;
    q = q * x2 + 4.893_525e-3;
    let r = xc * p / q;
    if x.abs() < 4e-4 { x } else { r }
}

/// Logistic sigmoid `1 / (1 + e^{-x})` in single precision, branch-free.
#[inline(always)]
pub fn sigmoid_f32(x: f32) -> f32 {
    1.0 / (1.0 + exp_f32(-x))
}

/// `ln(1 + e^x)` computed without overflow: `max(x, 0) + ln(1 + e^{-|x|})`.
#[inline(always)]
pub fn softplus_unit_f32(x: f32) -> f32 {
    let m = if x > 0.0 { x } else { 0.0 };
    let y = m + ln_1p_nonneg(exp_f32(-x.abs()));
    if x.is_nan() { x } else { y }
}

/// PyTorch's `Softplus(beta, threshold)`: `ln(1 + e^{beta x}) / beta`, and `x`
/// itself where `beta x > threshold` (where the two agree to f32 precision).
#[inline(always)]
pub fn softplus_f32(x: f32, beta: f32, threshold: f32) -> f32 {
    let bx = x * beta;
    let soft = softplus_unit_f32(bx) / beta;
    if bx > threshold { x } else { soft }
}

// ---------------------------------------------------------------------------
// Slice kernels with run-time dispatch.
// ---------------------------------------------------------------------------

/// Defines a slice kernel `$name` that runs its body through an AVX2+FMA
/// compiled copy when the CPU supports it and the baseline copy otherwise, plus
/// `$base`, which always runs the baseline copy (used by tests to check that
/// both paths agree bit for bit).
macro_rules! kernel {
    ($(#[$doc:meta])* $name:ident, $base:ident, ($($arg:ident : $ty:ty),*) $body:block) => {
        $(#[$doc])*
        #[inline]
        pub fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                unsafe fn wide($($arg: $ty),*) {
                    $base::body($($arg),*)
                }
                if has_avx2_fma() {
                    // SAFETY: the CPU supports AVX2 and FMA (detected at run time),
                    // the only requirement of a `target_feature` function.
                    unsafe { wide($($arg),*) };
                    return;
                }
            }
            $base::body($($arg),*)
        }

        #[doc(hidden)]
        #[allow(non_snake_case)]
        pub mod $base {
            #[allow(unused_imports)]
            use super::*;
            /// The baseline (no AVX2) version of the kernel of the same name.
            #[inline(always)]
            pub fn body($($arg: $ty),*) $body
        }
    };
}

/// Panics with a clear message when two slices that must match do not. Slice
/// kernels are called by layers after their shapes were validated, so a
/// mismatch here is a bug in the caller, not bad user input.
#[inline(always)]
fn same_len(what: &str, a: usize, b: usize) {
    assert!(a == b, "{what}: slices of different lengths ({a} and {b})");
}

kernel!(
    /// `out[i] = e^{x[i]}`.
    exp_slice, exp_slice_baseline, (x: &[f32], out: &mut [f32]) {
        same_len("exp_slice", x.len(), out.len());
        for (o, &v) in out.iter_mut().zip(x) {
            *o = exp_f32(v);
        }
    }
);

kernel!(
    /// `x[i] = e^{x[i]}`.
    exp_inplace, exp_inplace_baseline, (x: &mut [f32]) {
        for v in x.iter_mut() {
            *v = exp_f32(*v);
        }
    }
);

kernel!(
    /// `out[i] = ln(x[i])`.
    ln_slice, ln_slice_baseline, (x: &[f32], out: &mut [f32]) {
        same_len("ln_slice", x.len(), out.len());
        for (o, &v) in out.iter_mut().zip(x) {
            *o = ln_f32(v);
        }
    }
);

kernel!(
    /// `out[i] = tanh(x[i])`.
    tanh_slice, tanh_slice_baseline, (x: &[f32], out: &mut [f32]) {
        same_len("tanh_slice", x.len(), out.len());
        for (o, &v) in out.iter_mut().zip(x) {
            *o = tanh_f32(v);
        }
    }
);

kernel!(
    /// `x[i] = tanh(x[i])`.
    tanh_inplace, tanh_inplace_baseline, (x: &mut [f32]) {
        for v in x.iter_mut() {
            *v = tanh_f32(*v);
        }
    }
);

kernel!(
    /// Backward of tanh from its output: `dx[i] = dy[i] * (1 - y[i]^2)`.
    tanh_backward, tanh_backward_baseline, (y: &[f32], dy: &[f32], dx: &mut [f32]) {
        same_len("tanh_backward", y.len(), dy.len());
        same_len("tanh_backward", y.len(), dx.len());
        for ((d, &yv), &g) in dx.iter_mut().zip(y).zip(dy) {
            *d = g * (1.0 - yv * yv);
        }
    }
);

kernel!(
    /// `out[i] = 1 / (1 + e^{-x[i]})`.
    sigmoid_slice, sigmoid_slice_baseline, (x: &[f32], out: &mut [f32]) {
        same_len("sigmoid_slice", x.len(), out.len());
        for (o, &v) in out.iter_mut().zip(x) {
            *o = sigmoid_f32(v);
        }
    }
);

kernel!(
    /// `x[i] = 1 / (1 + e^{-x[i]})`.
    sigmoid_inplace, sigmoid_inplace_baseline, (x: &mut [f32]) {
        for v in x.iter_mut() {
            *v = sigmoid_f32(*v);
        }
    }
);

kernel!(
    /// Backward of the sigmoid from its output: `dx[i] = dy[i] * y[i] * (1 - y[i])`.
    sigmoid_backward, sigmoid_backward_baseline, (y: &[f32], dy: &[f32], dx: &mut [f32]) {
        same_len("sigmoid_backward", y.len(), dy.len());
        same_len("sigmoid_backward", y.len(), dx.len());
        for ((d, &yv), &g) in dx.iter_mut().zip(y).zip(dy) {
            *d = g * (yv * (1.0 - yv));
        }
    }
);

kernel!(
    /// `out[i] = max(x[i], 0)`; NaN stays NaN.
    relu_slice, relu_slice_baseline, (x: &[f32], out: &mut [f32]) {
        same_len("relu_slice", x.len(), out.len());
        for (o, &v) in out.iter_mut().zip(x) {
            *o = if v < 0.0 { 0.0 } else { v };
        }
    }
);

kernel!(
    /// `x[i] = max(x[i], 0)`; NaN stays NaN.
    relu_inplace, relu_inplace_baseline, (x: &mut [f32]) {
        for v in x.iter_mut() {
            *v = if *v < 0.0 { 0.0 } else { *v };
        }
    }
);

kernel!(
    /// Backward of ReLU from its output: `dx[i] = dy[i]` where `y[i] > 0`, else 0.
    relu_backward, relu_backward_baseline, (y: &[f32], dy: &[f32], dx: &mut [f32]) {
        same_len("relu_backward", y.len(), dy.len());
        same_len("relu_backward", y.len(), dx.len());
        for ((d, &yv), &g) in dx.iter_mut().zip(y).zip(dy) {
            *d = if yv > 0.0 { g } else { 0.0 };
        }
    }
);

kernel!(
    /// `out[i] = x[i]` where `x[i] > 0`, else `slope * x[i]`.
    leaky_relu_slice, leaky_relu_slice_baseline, (x: &[f32], slope: f32, out: &mut [f32]) {
        same_len("leaky_relu_slice", x.len(), out.len());
        for (o, &v) in out.iter_mut().zip(x) {
            *o = if v > 0.0 { v } else { v * slope };
        }
    }
);

kernel!(
    /// Backward of leaky ReLU from its input: `dx = dy` where `x > 0`, else `slope * dy`.
    leaky_relu_backward, leaky_relu_backward_baseline,
    (x: &[f32], slope: f32, dy: &[f32], dx: &mut [f32]) {
        same_len("leaky_relu_backward", x.len(), dy.len());
        same_len("leaky_relu_backward", x.len(), dx.len());
        for ((d, &xv), &g) in dx.iter_mut().zip(x).zip(dy) {
            *d = if xv > 0.0 { g } else { g * slope };
        }
    }
);

kernel!(
    /// PyTorch `Softplus(beta, threshold)` over a slice.
    softplus_slice, softplus_slice_baseline,
    (x: &[f32], beta: f32, threshold: f32, out: &mut [f32]) {
        same_len("softplus_slice", x.len(), out.len());
        for (o, &v) in out.iter_mut().zip(x) {
            *o = softplus_f32(v, beta, threshold);
        }
    }
);

kernel!(
    /// Backward of Softplus from its input: `dx = dy * sigmoid(beta x)`, and
    /// `dx = dy` where `beta x > threshold` (the linear region).
    softplus_backward, softplus_backward_baseline,
    (x: &[f32], beta: f32, threshold: f32, dy: &[f32], dx: &mut [f32]) {
        same_len("softplus_backward", x.len(), dy.len());
        same_len("softplus_backward", x.len(), dx.len());
        for ((d, &xv), &g) in dx.iter_mut().zip(x).zip(dy) {
            let bx = xv * beta;
            let s = sigmoid_f32(bx);
            *d = if bx > threshold { g } else { g * s };
        }
    }
);

/// The constants of one Adam step on one parameter (see `optim.rs`).
#[derive(Clone, Copy, Debug)]
pub struct AdamStep {
    /// `1 - beta1`.
    pub w1: f32,
    /// `beta2` and `1 - beta2`.
    pub b2: f32,
    pub w2: f32,
    /// `sqrt(1 - beta2^t)`.
    pub bc2: f32,
    pub eps: f32,
    /// `lr / (1 - beta1^t)`.
    pub step_size: f32,
    /// L2 weight decay added to the gradient (Adam; 0 for AdamW).
    pub l2: f32,
}

/// `x`, or a zero of its sign when it is subnormal (all exponent bits 0).
/// Written on the bits, without a branch, so the update loop stays vectorised.
#[inline(always)]
pub fn flush_subnormal(x: f32) -> f32 {
    let bits = x.to_bits();
    let normal = u32::from(bits & 0x7f80_0000 != 0);
    f32::from_bits(bits & (0x8000_0000 | normal.wrapping_neg()))
}

kernel!(
    /// One Adam step over a parameter's values with its gradient and moments
    /// (PyTorch's formula: `m += (1 - b1)(g - m)`, `v = b2 v + (1 - b2) g^2`,
    /// `x -= step_size * m / (sqrt(v) / bc2 + eps)`). Moments of parameters
    /// whose gradient stays 0 (dead ReLUs, Q-values of actions not taken)
    /// decay into subnormal floats, on which x86 arithmetic runs ~100x
    /// slower; at `f32` precision they change no update, so they become 0.
    adam_update, adam_update_baseline,
    (value: &mut [f32], grad: &[f32], exp_avg: &mut [f32], exp_avg_sq: &mut [f32], k: AdamStep) {
        same_len("adam_update", value.len(), grad.len());
        same_len("adam_update", value.len(), exp_avg.len());
        same_len("adam_update", value.len(), exp_avg_sq.len());
        for (((v, &g), ma), va) in value
            .iter_mut()
            .zip(grad)
            .zip(exp_avg.iter_mut())
            .zip(exp_avg_sq.iter_mut())
        {
            let g = if k.l2 != 0.0 { g + k.l2 * *v } else { g };
            *ma += k.w1 * (g - *ma);
            *va = *va * k.b2 + k.w2 * (g * g);
            *ma = flush_subnormal(*ma);
            *va = flush_subnormal(*va);
            let denom = va.sqrt() / k.bc2 + k.eps;
            *v += -k.step_size * (*ma / denom);
        }
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    /// Dense grid over [-lo, hi] plus special values.
    fn grid(lo: f32, hi: f32, n: usize) -> Vec<f32> {
        let mut v: Vec<f32> = (0..=n)
            .map(|i| lo + (hi - lo) * (i as f32 / n as f32))
            .collect();
        v.extend([
            0.0, -0.0, 1e-30, -1e-30, 1e-8, -1e-8, 0.625, -0.625, 0.6249999,
        ]);
        v
    }

    fn ulp_distance(a: f32, b: f64) -> f64 {
        let bf = b as f32;
        let ulp = (f32::from_bits(bf.abs().to_bits() + 1) - bf.abs()) as f64;
        (a as f64 - b).abs() / ulp
    }

    #[test]
    fn tanh_is_within_5e_7_absolute_and_8_ulp() {
        let xs = grid(-30.0, 30.0, 2_000_000);
        let mut out = vec![0.0; xs.len()];
        tanh_slice(&xs, &mut out);
        let (mut max_abs, mut max_ulp) = (0.0f64, 0.0f64);
        for (&x, &y) in xs.iter().zip(&out) {
            let want = (x as f64).tanh();
            max_abs = max_abs.max((y as f64 - want).abs());
            max_ulp = max_ulp.max(ulp_distance(y, want));
        }
        assert!(max_abs <= 5e-7, "max abs error {max_abs:e}");
        // The rational approximation trades a few ulp (measured 6.9) for a
        // 2x faster kernel than exp-based forms; 5e-7 absolute is far below
        // anything a network can resolve.
        assert!(max_ulp <= 8.0, "max ulp error {max_ulp}");
        // Saturation and huge arguments.
        for (x, want) in [
            (1e30f32, 1.0f32),
            (-1e30, -1.0),
            (f32::INFINITY, 1.0),
            (f32::NEG_INFINITY, -1.0),
            (9.5, 1.0),
        ] {
            assert_eq!(tanh_f32(x), want, "tanh({x})");
        }
    }

    #[test]
    fn signed_zero_and_nan_propagate() {
        assert!(tanh_f32(-0.0).is_sign_negative() && tanh_f32(-0.0) == 0.0);
        assert!(tanh_f32(0.0).is_sign_positive());
        for f in [tanh_f32, exp_f32, sigmoid_f32, ln_f32, softplus_unit_f32] {
            assert!(f(f32::NAN).is_nan());
        }
        let mut v = [f32::NAN, 1.0];
        tanh_inplace(&mut v);
        assert!(v[0].is_nan() && (v[1] - 0.761_594_2).abs() < 1e-7);
        let mut r = [f32::NAN, -1.0, 2.0];
        relu_inplace(&mut r);
        assert!(r[0].is_nan());
        assert_eq!(&r[1..], &[0.0, 2.0]);
    }

    #[test]
    fn exp_is_within_few_ulp_including_subnormal_and_overflow() {
        let xs = grid(-87.0, 88.7, 1_000_000);
        let mut out = vec![0.0; xs.len()];
        exp_slice(&xs, &mut out);
        let mut max_ulp = 0.0f64;
        for (&x, &y) in xs.iter().zip(&out) {
            max_ulp = max_ulp.max(ulp_distance(y, (x as f64).exp()));
        }
        assert!(max_ulp <= 3.0, "max ulp error {max_ulp}");
        assert_eq!(exp_f32(89.0), f32::INFINITY);
        assert_eq!(exp_f32(f32::INFINITY), f32::INFINITY);
        assert_eq!(exp_f32(-200.0), 0.0);
        assert_eq!(exp_f32(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp_f32(0.0), 1.0);
        // Subnormal results: relative error grows as bits are lost, absolute stays tiny.
        let sub = exp_f32(-100.0) as f64;
        assert!((sub - (-100.0f64).exp()).abs() < 2e-45, "{sub:e}");
    }

    #[test]
    fn ln_and_softplus_are_accurate() {
        let mut max_ulp = 0.0f64;
        for i in 0..200_000 {
            let x = 10f32.powf(-40.0 + 78.0 * i as f32 / 200_000.0);
            max_ulp = max_ulp.max(ulp_distance(ln_f32(x), (x as f64).ln()));
        }
        assert!(max_ulp <= 3.0, "ln max ulp {max_ulp}");
        assert_eq!(ln_f32(0.0), f32::NEG_INFINITY);
        assert!(ln_f32(-1.0).is_nan());
        assert_eq!(ln_f32(f32::INFINITY), f32::INFINITY);
        assert_eq!(ln_f32(1.0), 0.0);

        let xs = grid(-90.0, 90.0, 400_000);
        let mut max_rel = 0.0f64;
        for &x in &xs {
            let want = (x as f64).exp().ln_1p();
            let got = softplus_unit_f32(x) as f64;
            if want > 1e-37 {
                max_rel = max_rel.max((got - want).abs() / want);
            }
        }
        assert!(max_rel <= 4e-7, "softplus max rel {max_rel:e}");
    }

    #[test]
    fn sigmoid_is_accurate() {
        let xs = grid(-80.0, 80.0, 1_000_000);
        let mut out = vec![0.0; xs.len()];
        sigmoid_slice(&xs, &mut out);
        let mut max_ulp = 0.0f64;
        for (&x, &y) in xs.iter().zip(&out) {
            let want = 1.0 / (1.0 + (-(x as f64)).exp());
            max_ulp = max_ulp.max(ulp_distance(y, want));
        }
        assert!(max_ulp <= 4.0, "max ulp {max_ulp}");
        assert_eq!(sigmoid_f32(-200.0), 0.0);
        assert_eq!(sigmoid_f32(200.0), 1.0);
    }

    #[test]
    fn dispatched_and_baseline_kernels_agree_bitwise() {
        let xs: Vec<f32> = (0..10_007)
            .map(|i| ((i as f32) * 0.731).sin() * 25.0)
            .collect();
        let dy: Vec<f32> = (0..xs.len()).map(|i| ((i as f32) * 0.37).cos()).collect();
        let (mut a, mut b) = (vec![0.0; xs.len()], vec![0.0; xs.len()]);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();

        tanh_slice(&xs, &mut a);
        tanh_slice_baseline::body(&xs, &mut b);
        assert_eq!(bits(&a), bits(&b));
        exp_slice(&xs, &mut a);
        exp_slice_baseline::body(&xs, &mut b);
        assert_eq!(bits(&a), bits(&b));
        sigmoid_slice(&xs, &mut a);
        sigmoid_slice_baseline::body(&xs, &mut b);
        assert_eq!(bits(&a), bits(&b));
        softplus_slice(&xs, 1.5, 20.0, &mut a);
        softplus_slice_baseline::body(&xs, 1.5, 20.0, &mut b);
        assert_eq!(bits(&a), bits(&b));
        softplus_backward(&xs, 1.5, 20.0, &dy, &mut a);
        softplus_backward_baseline::body(&xs, 1.5, 20.0, &dy, &mut b);
        assert_eq!(bits(&a), bits(&b));
        let pos: Vec<f32> = xs.iter().map(|x| x.abs()).collect();
        ln_slice(&pos, &mut a);
        ln_slice_baseline::body(&pos, &mut b);
        assert_eq!(bits(&a), bits(&b));
        for l2 in [0.0, 0.01] {
            let k = AdamStep {
                w1: 0.1,
                b2: 0.999,
                w2: 0.001,
                bc2: 0.05,
                eps: 1e-8,
                step_size: 1e-3,
                l2,
            };
            let (mut va, mut vb) = (xs.clone(), xs.clone());
            let (mut ma, mut mb) = (dy.clone(), dy.clone());
            let tiny: Vec<f32> = dy.iter().map(|d| d * d * 1e-38).collect();
            let (mut sa, mut sb) = (tiny.clone(), tiny);
            adam_update(&mut va, &dy, &mut ma, &mut sa, k);
            adam_update_baseline::body(&mut vb, &dy, &mut mb, &mut sb, k);
            assert_eq!(
                (bits(&va), bits(&ma), bits(&sa)),
                (bits(&vb), bits(&mb), bits(&sb))
            );
        }
    }

    #[test]
    fn backward_helpers_match_formulas() {
        let y = [0.5f32, -0.25, 0.9];
        let dy = [2.0f32, 1.0, -1.0];
        let mut dx = [0.0; 3];
        tanh_backward(&y, &dy, &mut dx);
        let y2 = y[2];
        assert_eq!(dx, [2.0 * 0.75, 1.0 - 0.0625, -(1.0 - y2 * y2)]);
        sigmoid_backward(&y, &dy, &mut dx);
        assert_eq!(dx, [0.5, -0.25 * 1.25, -(y2 * (1.0 - y2))]);
        relu_backward(&y, &dy, &mut dx);
        assert_eq!(dx, [2.0, 0.0, -1.0]);
        leaky_relu_backward(&y, 0.1, &dy, &mut dx);
        assert_eq!(dx, [2.0, 0.1, -1.0]);
    }
}
