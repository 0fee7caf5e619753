//! Allocation-free products `C = alpha * A W^T + beta * C` for the small
//! batches of inference.
//!
//! A policy evaluated during a rollout multiplies a handful of observations
//! (`A`, one row per environment) by each layer's weight matrix (`W`, stored as
//! PyTorch stores it: one row per output feature). The `gemm` crate allocates
//! packing scratch on every such call once the output has more than 256
//! entries, so a rollout would touch the heap at every step. This kernel needs
//! no scratch at all: both operands are already contiguous along the summed
//! dimension `k`, so every output is a dot product of a row of `A` with a row of
//! `W`.
//!
//! Each kernel computes a block of 16 outputs at once (4 rows x 4 columns, 2 x
//! 8, or 1 x 16, whichever fits the rows left), keeps one vector accumulator per
//! output running along `k` (16 lanes with AVX-512, 8 with AVX2), and at the end
//! sums the lanes of all accumulators together with a shuffle tree that leaves
//! the block's outputs in one register, ready to store. Columns are processed
//! in panels small enough that the panel of `W` stays in the L1 cache while
//! every row block of `A` passes over it.
//!
//! Determinism: every output is summed in an order that depends only on `k` and
//! the instruction set picked at run time (lane `l` accumulates the terms with
//! index `l` modulo the vector width, then the lanes are added in a fixed
//! tree), never on the batch size, the row's position in the batch, or the
//! block shape. A given observation therefore produces bitwise the same
//! activations whether it is evaluated alone or in a batch of 64.

#[cfg(target_arch = "x86_64")]
use std::sync::OnceLock;

/// Most rows of `A` (batch size) this kernel handles; larger batches are
/// training products, where packing pays off and the `gemm` crate is faster.
pub const MAX_ROWS: usize = 64;

/// Largest summed dimension `k` (layer input width) this kernel handles.
pub const MAX_DEPTH: usize = 1024;

/// Largest number of columns `n` (layer output width) this kernel handles.
pub const MAX_COLS: usize = 2048;

/// True when a product of this shape runs here rather than in the `gemm` crate.
#[inline]
pub fn handles(m: usize, k: usize, n: usize) -> bool {
    m <= MAX_ROWS && k <= MAX_DEPTH && n <= MAX_COLS
}

/// Instruction sets the kernel has a code path for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    /// 16-lane vectors (AVX-512F), 4 x 4 output blocks.
    Avx512,
    /// 8-lane vectors with fused multiply-add (AVX2 + FMA), 2 x 4 output blocks.
    Avx2Fma,
    /// Portable Rust, 8 independent partial sums per output.
    Portable,
}

/// The fastest instruction set this CPU supports (detected once and cached).
pub fn best_isa() -> Isa {
    #[cfg(target_arch = "x86_64")]
    {
        static DETECTED: OnceLock<Isa> = OnceLock::new();
        *DETECTED.get_or_init(|| {
            if is_x86_feature_detected!("avx512f") {
                Isa::Avx512
            } else if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                Isa::Avx2Fma
            } else {
                Isa::Portable
            }
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        Isa::Portable
    }
}

/// `C = alpha * A W^T + beta * C` with the best code path for this CPU.
///
/// `A` is `m x k`, `W` is `n x k` and `C` is `m x n`, all row-major. With
/// `beta == 0` the previous contents of `C` are not read (a stale NaN cannot
/// leak in). Panics, naming the operand, when a slice is too short: callers
/// validate shapes first, so that is a bug in the caller.
#[allow(clippy::too_many_arguments)]
#[inline]
pub fn gemm_nt(
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: &[f32],
    w: &[f32],
    beta: f32,
    c: &mut [f32],
) {
    gemm_nt_with(best_isa(), m, k, n, alpha, a, w, beta, c);
}

/// [`gemm_nt`] on a chosen code path; an instruction set the CPU lacks falls
/// back to the best one it has (so tests can name every path on any machine).
#[allow(clippy::too_many_arguments)]
pub fn gemm_nt_with(
    isa: Isa,
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: &[f32],
    w: &[f32],
    beta: f32,
    c: &mut [f32],
) {
    check_len("A", a.len(), m, k);
    check_len("W", w.len(), n, k);
    check_len("C", c.len(), m, n);
    if m == 0 || n == 0 {
        return;
    }
    let shape = Shape {
        m,
        k,
        n,
        alpha,
        beta,
    };
    let isa = match (isa, best_isa()) {
        (Isa::Avx512, Isa::Avx2Fma | Isa::Portable) => best_isa(),
        (Isa::Avx2Fma, Isa::Portable) => Isa::Portable,
        (chosen, _) => chosen,
    };
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU supports AVX-512F (checked by `best_isa` above), and
        // the slices hold the `m x k`, `n x k` and `m x n` values the kernel
        // reads and writes (checked by `check_len` above).
        Isa::Avx512 => unsafe { avx512::gemm_nt(shape, a, w, c) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above, for AVX2 and FMA.
        Isa::Avx2Fma => unsafe { avx2::gemm_nt(shape, a, w, c) },
        _ => portable::gemm_nt(shape, a, w, c),
    }
}

fn check_len(what: &str, len: usize, rows: usize, cols: usize) {
    assert!(
        len >= rows * cols,
        "small gemm: {what} has {len} values, needs {rows} x {cols} = {}",
        rows * cols
    );
}

/// Dimensions and scalars of one product.
#[derive(Clone, Copy, Debug)]
struct Shape {
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    beta: f32,
}

/// Columns per panel: enough that a panel of `W` (`panel x k` values) takes
/// about 16 KiB, a third of a typical L1 data cache, and a multiple of 16 so
/// every block shape tiles it.
fn panel_width(k: usize) -> usize {
    ((4096 / k.max(1)) / 16 * 16).max(16)
}

/// Output block shape (rows, columns) for the rows left in the batch; rows x
/// columns is always the accumulator count the reduction tree expects.
fn block_rows(rows_left: usize, max_rows: usize) -> usize {
    if rows_left >= max_rows - max_rows / 4 {
        max_rows
    } else if rows_left >= 2 {
        2
    } else {
        1
    }
}

/// Block width for the columns left: `full` while at least that many remain,
/// else the smallest of 4, 8, 16 that covers them (fewer wasted dot products).
fn narrowest_width(full: usize, cols_left: usize) -> usize {
    if cols_left >= full {
        full
    } else if cols_left <= 4 {
        4
    } else if cols_left <= 8 {
        8.min(full)
    } else {
        full
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{Shape, block_rows, narrowest_width, panel_width};
    use std::arch::x86_64::*;

    /// `iota[i] = i`; a window starting at `s` is the permutation that moves
    /// lanes `s..s + 16` to the front.
    static IOTA: [i32; 32] = {
        let mut t = [0; 32];
        let mut i = 0;
        while i < 32 {
            t[i] = i as i32;
            i += 1;
        }
        t
    };

    /// Lane `v` of the result is the sum of all lanes of `v[v]`.
    ///
    /// Four levels, each adding two shuffles of a pair of vectors: adjacent
    /// lanes within 128-bit blocks, then pairs of lanes, then blocks across
    /// the two halves, then the remaining block pairs. Every input vector's
    /// lanes are combined in the same order whatever its position.
    #[target_feature(enable = "avx512f")]
    #[inline]
    fn reduce16(v: &[__m512; 16]) -> __m512 {
        let mut l1 = [_mm512_setzero_ps(); 8];
        for (i, out) in l1.iter_mut().enumerate() {
            let (x, y) = (v[2 * i], v[2 * i + 1]);
            *out = _mm512_add_ps(_mm512_unpacklo_ps(x, y), _mm512_unpackhi_ps(x, y));
        }
        let mut l2 = [_mm512_setzero_ps(); 4];
        for (i, out) in l2.iter_mut().enumerate() {
            let (s, t) = (_mm512_castps_pd(l1[2 * i]), _mm512_castps_pd(l1[2 * i + 1]));
            *out = _mm512_add_ps(
                _mm512_castpd_ps(_mm512_unpacklo_pd(s, t)),
                _mm512_castpd_ps(_mm512_unpackhi_pd(s, t)),
            );
        }
        let u01 = _mm512_add_ps(
            _mm512_shuffle_f32x4::<0x44>(l2[0], l2[1]),
            _mm512_shuffle_f32x4::<0xEE>(l2[0], l2[1]),
        );
        let u23 = _mm512_add_ps(
            _mm512_shuffle_f32x4::<0x44>(l2[2], l2[3]),
            _mm512_shuffle_f32x4::<0xEE>(l2[2], l2[3]),
        );
        _mm512_add_ps(
            _mm512_shuffle_f32x4::<0x88>(u01, u23),
            _mm512_shuffle_f32x4::<0xDD>(u01, u23),
        )
    }

    /// Dot products of `R` rows of `A` with `C` rows of `W` (`R * C <= 16`),
    /// returned with the output of row `r`, column `c` in lane `r * C + c`
    /// (lanes past `R * C` hold zero).
    ///
    /// SAFETY: every pointer must be valid for reading `k` values.
    #[target_feature(enable = "avx512f")]
    unsafe fn block<const R: usize, const C: usize>(
        k: usize,
        a_rows: &[*const f32; R],
        w_rows: &[*const f32; C],
    ) -> __m512 {
        let mut acc = [[_mm512_setzero_ps(); C]; R];
        let mut p = 0;
        while p + 16 <= k {
            let mut av = [_mm512_setzero_ps(); R];
            for (v, row) in av.iter_mut().zip(a_rows) {
                // SAFETY: p + 16 <= k values are readable from `row`.
                *v = unsafe { _mm512_loadu_ps(row.add(p)) };
            }
            for (c, row) in w_rows.iter().enumerate() {
                // SAFETY: as above.
                let wv = unsafe { _mm512_loadu_ps(row.add(p)) };
                for r in 0..R {
                    acc[r][c] = _mm512_fmadd_ps(av[r], wv, acc[r][c]);
                }
            }
            p += 16;
        }
        if p < k {
            // Masked-off lanes are not read, so the tail never leaves the rows.
            let mask = ((1u32 << (k - p)) - 1) as __mmask16;
            let mut av = [_mm512_setzero_ps(); R];
            for (v, row) in av.iter_mut().zip(a_rows) {
                // SAFETY: the unmasked lanes p..k are readable.
                *v = unsafe { _mm512_maskz_loadu_ps(mask, row.add(p)) };
            }
            for (c, row) in w_rows.iter().enumerate() {
                // SAFETY: as above.
                let wv = unsafe { _mm512_maskz_loadu_ps(mask, row.add(p)) };
                for r in 0..R {
                    acc[r][c] = _mm512_fmadd_ps(av[r], wv, acc[r][c]);
                }
            }
        }
        let mut flat = [_mm512_setzero_ps(); 16];
        for r in 0..R {
            for c in 0..C {
                flat[r * C + c] = acc[r][c];
            }
        }
        reduce16(&flat)
    }

    /// Computes and stores the outputs of rows `i0..i0 + rows` and columns
    /// `j0..j0 + cols` (`rows <= R`, `cols <= C`). Missing rows and columns
    /// repeat the first one (their results are discarded), which keeps the
    /// inner loop free of branches.
    ///
    /// SAFETY: the block must lie inside the `m x n` output and the operands
    /// must hold `m x k` and `n x k` values.
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn block_store<const R: usize, const C: usize>(
        s: Shape,
        a: *const f32,
        w: *const f32,
        c: *mut f32,
        i0: usize,
        rows: usize,
        j0: usize,
        cols: usize,
    ) {
        let mut a_rows = [a; R];
        for (r, ptr) in a_rows.iter_mut().enumerate() {
            // SAFETY: rows i0..i0 + rows lie inside A.
            *ptr = unsafe { a.add((i0 + if r < rows { r } else { 0 }) * s.k) };
        }
        let mut w_rows = [w; C];
        for (col, ptr) in w_rows.iter_mut().enumerate() {
            // SAFETY: rows j0..j0 + cols lie inside W.
            *ptr = unsafe { w.add((j0 + if col < cols { col } else { 0 }) * s.k) };
        }
        // SAFETY: every pointer is valid for k values (see above).
        let sums = unsafe { block::<R, C>(s.k, &a_rows, &w_rows) };
        let cmask = ((1u32 << cols) - 1) as __mmask16;
        let alpha = _mm512_set1_ps(s.alpha);
        let beta = _mm512_set1_ps(s.beta);
        for r in 0..rows {
            let row = if r == 0 {
                sums
            } else {
                // SAFETY: r * C + 16 <= 32 entries of IOTA.
                let idx = unsafe { _mm512_loadu_si512(IOTA.as_ptr().add(r * C).cast()) };
                _mm512_permutexvar_ps(idx, sums)
            };
            // SAFETY: the `cols` unmasked lanes lie in row i0 + r of C.
            let dst = unsafe { c.add((i0 + r) * s.n + j0) };
            let out = if s.beta == 0.0 {
                _mm512_mul_ps(alpha, row)
            } else {
                // SAFETY: as above; masked lanes are not read.
                let old = unsafe { _mm512_maskz_loadu_ps(cmask, dst) };
                _mm512_fmadd_ps(alpha, row, _mm512_mul_ps(beta, old))
            };
            // SAFETY: as above; masked lanes are not written.
            unsafe { _mm512_mask_storeu_ps(dst, cmask, out) };
        }
    }

    /// SAFETY: the CPU supports AVX-512F; `a`, `w`, `c` hold at least
    /// `m x k`, `n x k` and `m x n` values.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn gemm_nt(s: Shape, a: &[f32], w: &[f32], c: &mut [f32]) {
        let (ap, wp, cp) = (a.as_ptr(), w.as_ptr(), c.as_mut_ptr());
        let panel = panel_width(s.k);
        let mut p0 = 0;
        while p0 < s.n {
            let p1 = (p0 + panel).min(s.n);
            let mut i0 = 0;
            while i0 < s.m {
                let shape_rows = block_rows(s.m - i0, 4);
                let rows = shape_rows.min(s.m - i0);
                let mut j0 = p0;
                while j0 < p1 {
                    // Full-width blocks, then the narrowest block that covers
                    // the last columns (an output head of 1-3 actions).
                    let width = narrowest_width(16 / shape_rows, p1 - j0);
                    let cols = width.min(p1 - j0);
                    // SAFETY: rows i0..i0 + rows < m and columns j0..j0 + cols
                    // < n lie inside the product (the caller's contract).
                    unsafe {
                        match (shape_rows, width) {
                            (4, _) => block_store::<4, 4>(s, ap, wp, cp, i0, rows, j0, cols),
                            (2, 8) => block_store::<2, 8>(s, ap, wp, cp, i0, rows, j0, cols),
                            (2, _) => block_store::<2, 4>(s, ap, wp, cp, i0, rows, j0, cols),
                            (_, 16) => block_store::<1, 16>(s, ap, wp, cp, i0, rows, j0, cols),
                            (_, 8) => block_store::<1, 8>(s, ap, wp, cp, i0, rows, j0, cols),
                            _ => block_store::<1, 4>(s, ap, wp, cp, i0, rows, j0, cols),
                        }
                    }
                    j0 += cols;
                }
                i0 += rows;
            }
            p0 = p1;
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{Shape, block_rows, panel_width};
    use std::arch::x86_64::*;

    /// Lane `v` of the result is the sum of all lanes of `v[v]`: the same
    /// tree as the AVX-512 path, one level shorter.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn reduce8(v: &[__m256; 8]) -> __m256 {
        let mut l1 = [_mm256_setzero_ps(); 4];
        for (i, out) in l1.iter_mut().enumerate() {
            let (x, y) = (v[2 * i], v[2 * i + 1]);
            *out = _mm256_add_ps(_mm256_unpacklo_ps(x, y), _mm256_unpackhi_ps(x, y));
        }
        let mut l2 = [_mm256_setzero_ps(); 2];
        for (i, out) in l2.iter_mut().enumerate() {
            let (s, t) = (_mm256_castps_pd(l1[2 * i]), _mm256_castps_pd(l1[2 * i + 1]));
            *out = _mm256_add_ps(
                _mm256_castpd_ps(_mm256_unpacklo_pd(s, t)),
                _mm256_castpd_ps(_mm256_unpackhi_pd(s, t)),
            );
        }
        _mm256_add_ps(
            _mm256_permute2f128_ps::<0x20>(l2[0], l2[1]),
            _mm256_permute2f128_ps::<0x31>(l2[0], l2[1]),
        )
    }

    /// Dot products of `R` rows of `A` with `C` rows of `W` (`R * C == 8`),
    /// returned with row `r`, column `c` in lane `r * C + c`.
    ///
    /// SAFETY: every pointer must be valid for reading `k` values.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn block<const R: usize, const C: usize>(
        k: usize,
        a_rows: &[*const f32; R],
        w_rows: &[*const f32; C],
    ) -> __m256 {
        let mut acc = [[_mm256_setzero_ps(); C]; R];
        let mut p = 0;
        while p + 8 <= k {
            let mut av = [_mm256_setzero_ps(); R];
            for (v, row) in av.iter_mut().zip(a_rows) {
                // SAFETY: p + 8 <= k values are readable from `row`.
                *v = unsafe { _mm256_loadu_ps(row.add(p)) };
            }
            for (c, row) in w_rows.iter().enumerate() {
                // SAFETY: as above.
                let wv = unsafe { _mm256_loadu_ps(row.add(p)) };
                for r in 0..R {
                    acc[r][c] = _mm256_fmadd_ps(av[r], wv, acc[r][c]);
                }
            }
            p += 8;
        }
        if p < k {
            // Lanes whose mask is clear are not read.
            let left = _mm256_set1_epi32((k - p) as i32);
            let mask = _mm256_cmpgt_epi32(left, _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
            let mut av = [_mm256_setzero_ps(); R];
            for (v, row) in av.iter_mut().zip(a_rows) {
                // SAFETY: the unmasked lanes p..k are readable.
                *v = unsafe { _mm256_maskload_ps(row.add(p), mask) };
            }
            for (c, row) in w_rows.iter().enumerate() {
                // SAFETY: as above.
                let wv = unsafe { _mm256_maskload_ps(row.add(p), mask) };
                for r in 0..R {
                    acc[r][c] = _mm256_fmadd_ps(av[r], wv, acc[r][c]);
                }
            }
        }
        let mut flat = [_mm256_setzero_ps(); 8];
        for r in 0..R {
            for c in 0..C {
                flat[r * C + c] = acc[r][c];
            }
        }
        reduce8(&flat)
    }

    /// As the AVX-512 `block_store`, for 8-output blocks.
    ///
    /// SAFETY: the block must lie inside the `m x n` output and the operands
    /// must hold `m x k` and `n x k` values.
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn block_store<const R: usize, const C: usize>(
        s: Shape,
        a: *const f32,
        w: *const f32,
        c: *mut f32,
        i0: usize,
        rows: usize,
        j0: usize,
        cols: usize,
    ) {
        let mut a_rows = [a; R];
        for (r, ptr) in a_rows.iter_mut().enumerate() {
            // SAFETY: rows i0..i0 + rows lie inside A.
            *ptr = unsafe { a.add((i0 + if r < rows { r } else { 0 }) * s.k) };
        }
        let mut w_rows = [w; C];
        for (col, ptr) in w_rows.iter_mut().enumerate() {
            // SAFETY: rows j0..j0 + cols lie inside W.
            *ptr = unsafe { w.add((j0 + if col < cols { col } else { 0 }) * s.k) };
        }
        // SAFETY: every pointer is valid for k values (see above).
        let sums = unsafe { block::<R, C>(s.k, &a_rows, &w_rows) };
        let mut lanes = [0.0f32; 8];
        // SAFETY: `lanes` holds 8 values.
        unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), sums) };
        for r in 0..rows {
            for (col, &v) in lanes[r * C..r * C + cols].iter().enumerate() {
                // SAFETY: row i0 + r < m, column j0 + col < n.
                let dst = unsafe { &mut *c.add((i0 + r) * s.n + j0 + col) };
                *dst = if s.beta == 0.0 {
                    s.alpha * v
                } else {
                    s.alpha.mul_add(v, s.beta * *dst)
                };
            }
        }
    }

    /// SAFETY: the CPU supports AVX2 and FMA; `a`, `w`, `c` hold at least
    /// `m x k`, `n x k` and `m x n` values.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn gemm_nt(s: Shape, a: &[f32], w: &[f32], c: &mut [f32]) {
        let (ap, wp, cp) = (a.as_ptr(), w.as_ptr(), c.as_mut_ptr());
        let panel = panel_width(s.k);
        let mut p0 = 0;
        while p0 < s.n {
            let p1 = (p0 + panel).min(s.n);
            let mut i0 = 0;
            while i0 < s.m {
                let shape_rows = block_rows(s.m - i0, 2);
                let rows = shape_rows.min(s.m - i0);
                let mut j0 = p0;
                while j0 < p1 {
                    let cols = (8 / shape_rows).min(p1 - j0);
                    // SAFETY: the block lies inside the product (caller's contract).
                    unsafe {
                        if shape_rows == 2 {
                            block_store::<2, 4>(s, ap, wp, cp, i0, rows, j0, cols);
                        } else {
                            block_store::<1, 8>(s, ap, wp, cp, i0, rows, j0, cols);
                        }
                    }
                    j0 += cols;
                }
                i0 += rows;
            }
            p0 = p1;
        }
    }
}

mod portable {
    use super::Shape;

    /// Partial sums per output; independent chains let LLVM use SIMD lanes
    /// without reassociating the sum.
    const LANES: usize = 8;

    /// Dot product in the same order as the vector paths' lane structure:
    /// lane `l` sums the terms `l, l + 8, ...`, then a fixed pairwise tree.
    #[inline]
    fn dot(a: &[f32], w: &[f32]) -> f32 {
        let mut lanes = [0.0f32; LANES];
        let mut ac = a.chunks_exact(LANES);
        let mut wc = w.chunks_exact(LANES);
        for (x, y) in (&mut ac).zip(&mut wc) {
            for l in 0..LANES {
                lanes[l] += x[l] * y[l];
            }
        }
        for (l, (x, y)) in ac.remainder().iter().zip(wc.remainder()).enumerate() {
            lanes[l] += x * y;
        }
        let q = [
            lanes[0] + lanes[2],
            lanes[1] + lanes[3],
            lanes[4] + lanes[6],
            lanes[5] + lanes[7],
        ];
        (q[0] + q[1]) + (q[2] + q[3])
    }

    pub(super) fn gemm_nt(s: Shape, a: &[f32], w: &[f32], c: &mut [f32]) {
        for (i, c_row) in c.chunks_exact_mut(s.n).take(s.m).enumerate() {
            let a_row = &a[i * s.k..(i + 1) * s.k];
            for (j, out) in c_row.iter_mut().enumerate() {
                let v = dot(a_row, &w[j * s.k..(j + 1) * s.k]);
                *out = if s.beta == 0.0 {
                    s.alpha * v
                } else {
                    s.alpha * v + s.beta * *out
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hlynr_rng::Rng;

    fn random(len: usize, rng: &mut Rng) -> Vec<f32> {
        (0..len).map(|_| rng.normal_f32()).collect()
    }

    /// `alpha * A W^T + beta * C` in f64, and the bound `sum |a w|` on the
    /// rounding error of any summation order.
    #[allow(clippy::too_many_arguments)]
    fn reference(
        m: usize,
        k: usize,
        n: usize,
        alpha: f32,
        a: &[f32],
        w: &[f32],
        beta: f32,
        c: &[f32],
    ) -> (Vec<f64>, Vec<f64>) {
        let mut out = vec![0.0; m * n];
        let mut mag = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                let (mut s, mut t) = (0.0f64, 0.0f64);
                for p in 0..k {
                    let prod = a[i * k + p] as f64 * w[j * k + p] as f64;
                    s += prod;
                    t += prod.abs();
                }
                let old = if beta == 0.0 {
                    0.0
                } else {
                    beta as f64 * c[i * n + j] as f64
                };
                out[i * n + j] = alpha as f64 * s + old;
                mag[i * n + j] = (alpha as f64).abs() * t + old.abs();
            }
        }
        (out, mag)
    }

    const ISAS: [Isa; 3] = [Isa::Avx512, Isa::Avx2Fma, Isa::Portable];

    #[test]
    fn every_path_matches_f64_reference_on_edge_shapes() {
        let mut rng = Rng::seed_from_u64(11);
        let ms = [1, 2, 3, 4, 5, 7, 8, 13, 16, 33, 64];
        let ks = [1, 4, 7, 15, 16, 17, 31, 32, 100, 128, 257];
        let ns = [1, 3, 4, 5, 8, 15, 16, 17, 33, 64, 130];
        for isa in ISAS {
            for (t, &m) in ms.iter().enumerate() {
                for (u, &k) in ks.iter().enumerate() {
                    // A diagonal walk plus a few extra columns keeps the test fast.
                    for &n in [ns[(t + u) % ns.len()], ns[(3 * t + u + 5) % ns.len()]].iter() {
                        let a = random(m * k, &mut rng);
                        let w = random(n * k, &mut rng);
                        let c0 = random(m * n, &mut rng);
                        for (alpha, beta) in [(1.0, 0.0), (1.0, 1.0), (-0.5, 2.0)] {
                            let mut c = c0.clone();
                            gemm_nt_with(isa, m, k, n, alpha, &a, &w, beta, &mut c);
                            let (want, mag) = reference(m, k, n, alpha, &a, &w, beta, &c0);
                            for idx in 0..m * n {
                                // Any summation order is within k+2 roundings of |terms|.
                                let tol = (k as f64 + 2.0) * f32::EPSILON as f64 * mag[idx] + 1e-30;
                                let err = (c[idx] as f64 - want[idx]).abs();
                                assert!(
                                    err <= tol,
                                    "{isa:?} m={m} k={k} n={n} alpha={alpha} beta={beta} \
                                     [{idx}]: {} vs {} (tol {tol:e})",
                                    c[idx],
                                    want[idx]
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn beta_zero_ignores_nan_and_beta_one_accumulates_exactly() {
        let mut rng = Rng::seed_from_u64(3);
        let (m, k, n) = (6, 9, 7);
        let a = random(m * k, &mut rng);
        let w = random(n * k, &mut rng);
        for isa in ISAS {
            let mut fresh = vec![f32::NAN; m * n];
            gemm_nt_with(isa, m, k, n, 1.0, &a, &w, 0.0, &mut fresh);
            assert!(fresh.iter().all(|v| v.is_finite()), "{isa:?}: NaN leaked");
            // C starts as a bias: one more product on top adds it once, rounded once.
            let bias: Vec<f32> = (0..m * n).map(|i| i as f32 * 0.25).collect();
            let mut acc = bias.clone();
            gemm_nt_with(isa, m, k, n, 1.0, &a, &w, 1.0, &mut acc);
            for i in 0..m * n {
                assert_eq!(acc[i], fresh[i] + bias[i], "{isa:?} [{i}]");
            }
        }
    }

    #[test]
    fn rows_are_bitwise_independent_of_batch_size_and_position() {
        let mut rng = Rng::seed_from_u64(5);
        let (k, n) = (37, 23);
        let w = random(n * k, &mut rng);
        let batch = random(64 * k, &mut rng);
        for isa in ISAS {
            let mut full = vec![0.0; 64 * n];
            gemm_nt_with(isa, 64, k, n, 1.0, &batch, &w, 0.0, &mut full);
            for (start, len) in [(0, 1), (5, 1), (63, 1), (3, 2), (10, 3), (17, 5), (30, 9)] {
                let mut part = vec![0.0; len * n];
                let rows = &batch[start * k..(start + len) * k];
                gemm_nt_with(isa, len, k, n, 1.0, rows, &w, 0.0, &mut part);
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(
                    bits(&part),
                    bits(&full[start * n..(start + len) * n]),
                    "{isa:?} rows {start}..{}",
                    start + len
                );
            }
        }
    }

    #[test]
    fn repeated_calls_are_bitwise_identical_and_leave_other_entries_alone() {
        let mut rng = Rng::seed_from_u64(9);
        let (m, k, n) = (7, 50, 19);
        let a = random(m * k, &mut rng);
        let w = random(n * k, &mut rng);
        let mut first = vec![0.0; m * n + 5];
        first[m * n..].fill(42.0);
        let mut second = first.clone();
        gemm_nt(m, k, n, 1.0, &a, &w, 0.0, &mut first);
        gemm_nt(m, k, n, 1.0, &a, &w, 0.0, &mut second);
        assert_eq!(
            first.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            second.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        );
        assert!(
            first[m * n..].iter().all(|&v| v == 42.0),
            "wrote past m x n"
        );
    }

    #[test]
    fn empty_and_zero_depth_products() {
        for isa in ISAS {
            let mut c = vec![3.0; 6];
            gemm_nt_with(isa, 2, 0, 3, 1.0, &[], &[], 0.0, &mut c);
            assert_eq!(c, vec![0.0; 6], "{isa:?}");
            let mut c = vec![3.0; 6];
            gemm_nt_with(isa, 2, 0, 3, 1.0, &[], &[], 0.5, &mut c);
            assert_eq!(c, vec![1.5; 6], "{isa:?}");
            gemm_nt_with(isa, 0, 4, 3, 1.0, &[], &[0.0; 12], 0.0, &mut []);
        }
    }

    #[test]
    #[should_panic(expected = "W has 5 values, needs 2 x 3 = 6")]
    fn short_operand_names_itself() {
        gemm_nt(1, 3, 2, 1.0, &[0.0; 3], &[0.0; 5], 0.0, &mut [0.0; 2]);
    }
}
