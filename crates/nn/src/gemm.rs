//! Matrix products on row-major slices.
//!
//! Two engines sit behind [`gemm`]:
//!
//! - The small-batch inference product `A W^T` (a batch of at most
//!   [`small_gemm::MAX_ROWS`] rows against a weight matrix stored one row per
//!   output, the layout of every `Linear` forward pass and LSTM step) runs in
//!   [`small_gemm`], which needs no scratch memory, so rollouts never touch the
//!   heap. A single row (batch 1) takes the `gemm` crate's vector path, which
//!   is faster there and needs no scratch either.
//! - Everything else (the training products: large batches, transposed
//!   operands) goes to the `gemm` crate, which picks AVX2/FMA or AVX-512 code
//!   paths at run time and packs operands into cache-friendly panels. On the
//!   project's reference machine it made the PPO update workload (W1) 1.5x
//!   faster than `matrixmultiply` (`docs/benchmarks.md`). It allocates its
//!   packing scratch on every call, which is negligible next to a large product.
//!
//! A product of at least [`PARALLEL_MIN_MACS`] multiply-adds is computed as
//! two halves of rows, the second on a helper thread ([`helper`]); each row
//! of `C` is computed exactly as in the unsplit product, so the split changes
//! the wall-clock only.
//!
//! Results are deterministic for a given machine and call shape; kernels for
//! different shapes (or different CPUs) may sum in a different order, so equal
//! mathematical products can differ in the last bits across shapes.

use crate::{helper, small_gemm};

/// `C = alpha * op(A) * op(B) + beta * C`, all row-major.
///
/// `op(A)` is `m x k` and `op(B)` is `k x n`. With `a_t` set, `A` is stored as
/// `k x m` and used transposed; likewise `b_t` for `B` stored as `n x k`.
/// With `beta == 0` the previous contents of `C` are ignored (even NaN).
#[allow(clippy::too_many_arguments)]
#[inline]
pub fn gemm(
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: &[f32],
    a_t: bool,
    b: &[f32],
    b_t: bool,
    beta: f32,
    c: &mut [f32],
) {
    assert!(
        a.len() >= m * k,
        "gemm: A has {} values, needs {}",
        a.len(),
        m * k
    );
    assert!(
        b.len() >= k * n,
        "gemm: B has {} values, needs {}",
        b.len(),
        k * n
    );
    assert!(
        c.len() >= m * n,
        "gemm: C has {} values, needs {}",
        c.len(),
        m * n
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if beta == 0.0 {
            c[..m * n].fill(0.0);
        } else if beta != 1.0 {
            for x in &mut c[..m * n] {
                *x *= beta;
            }
        }
        return;
    }
    // A single row goes to the gemm crate's vector path (faster there, and it
    // needs no scratch either).
    let engine = if !a_t && b_t && m > 1 && small_gemm::handles(m, k, n) {
        Engine::SmallNt
    } else {
        Engine::Crate
    };
    let p = Product {
        m,
        k,
        n,
        alpha,
        a,
        a_t,
        b,
        b_t,
        beta,
    };
    if m >= 2 && m * k * n >= PARALLEL_MIN_MACS {
        // Rows of C are independent: each half is computed exactly as it
        // would be alone, and the split depends on the shape only, never on
        // the number of threads, so results do not depend on the machine's
        // core count.
        let half = m / 2;
        let (top, bottom) = c[..m * n].split_at_mut(half * n);
        helper::join(
            || p.rows(engine, 0, half, top),
            || p.rows(engine, half, m, bottom),
        );
    } else {
        p.rows(engine, 0, m, c);
    }
}

/// Products with at least this many multiply-adds are split in two halves of
/// rows computed on two threads. A training product of a 256-wide layer on a
/// batch of 64 (4.2M) takes a few hundred microseconds on one core, far more
/// than handing half of it to a pool thread (a few microseconds); a rollout's
/// small products stay on the calling thread.
pub const PARALLEL_MIN_MACS: usize = 1 << 20;

/// Which kernel computes a product (chosen on the whole product's shape, so a
/// split product uses the same kernel for both halves).
#[derive(Clone, Copy)]
enum Engine {
    SmallNt,
    Crate,
}

/// The operands of one product, shapes checked.
struct Product<'a> {
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: &'a [f32],
    a_t: bool,
    b: &'a [f32],
    b_t: bool,
    beta: f32,
}

impl Product<'_> {
    /// Rows `r0..r1` of `C` into `c` (those rows only).
    fn rows(&self, engine: Engine, r0: usize, r1: usize, c: &mut [f32]) {
        let (k, n) = (self.k, self.n);
        let rows = r1 - r0;
        match engine {
            Engine::SmallNt => small_gemm::gemm_nt(
                rows,
                k,
                n,
                self.alpha,
                &self.a[r0 * k..r1 * k],
                self.b,
                self.beta,
                c,
            ),
            Engine::Crate => {
                // op(A)'s row r starts at r * k (stored m x k) or at r (stored
                // k x m, read down a column).
                let (a_offset, rsa, csa) = if self.a_t {
                    (r0, 1, self.m as isize)
                } else {
                    (r0 * k, k as isize, 1)
                };
                let (rsb, csb) = if self.b_t {
                    (1, k as isize)
                } else {
                    (n as isize, 1)
                };
                // The kernel computes dst = alpha' dst + beta' lhs rhs, and does
                // not read dst at all when told not to (so a stale NaN in C
                // cannot leak in).
                // SAFETY: every index the kernel touches lies inside the slices:
                // `gemm` asserted their lengths for the whole product, rows
                // `r0..r1` of op(A) start at `a_offset` with the strides above,
                // and `c` holds exactly these rows; `c` is borrowed mutably so
                // it cannot alias `a` or `b`.
                unsafe {
                    gemm::gemm(
                        rows,
                        n,
                        k,
                        c.as_mut_ptr(),
                        1,
                        n as isize,
                        self.beta != 0.0,
                        self.a.as_ptr().add(a_offset),
                        csa,
                        rsa,
                        self.b.as_ptr(),
                        csb,
                        rsb,
                        self.beta,
                        self.alpha,
                        false,
                        false,
                        false,
                        gemm::Parallelism::None,
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(m: usize, k: usize, n: usize, a: &[f32], a_t: bool, b: &[f32], b_t: bool) -> Vec<f32> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                let mut s = 0.0;
                for p in 0..k {
                    let av = if a_t { a[p * m + i] } else { a[i * k + p] };
                    let bv = if b_t { b[j * k + p] } else { b[p * n + j] };
                    s += av * bv;
                }
                c[i * n + j] = s;
            }
        }
        c
    }

    #[test]
    fn all_transpose_combinations_match_naive() {
        let (m, k, n) = (5, 7, 3);
        let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.11).cos()).collect();
        for a_t in [false, true] {
            for b_t in [false, true] {
                let mut c = vec![f32::NAN; m * n];
                gemm(m, k, n, 1.0, &a, a_t, &b, b_t, 0.0, &mut c);
                let want = naive(m, k, n, &a, a_t, &b, b_t);
                for (x, y) in c.iter().zip(&want) {
                    assert!((x - y).abs() < 1e-5, "a_t={a_t} b_t={b_t}: {x} vs {y}");
                }
            }
        }
    }

    #[test]
    fn both_engines_match_naive_across_the_dispatch_boundary() {
        let (k, n) = (33, 20);
        for m in [small_gemm::MAX_ROWS, small_gemm::MAX_ROWS + 1] {
            let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.11).cos()).collect();
            let mut c = vec![f32::NAN; m * n];
            gemm(m, k, n, 1.0, &a, false, &b, true, 0.0, &mut c);
            let want = naive(m, k, n, &a, false, &b, true);
            for (x, y) in c.iter().zip(&want) {
                assert!((x - y).abs() < 1e-4, "m={m}: {x} vs {y}");
            }
        }
    }

    #[test]
    fn split_products_equal_their_unsplit_rows_bitwise() {
        let (m, k, n) = (64, 256, 128);
        assert!(m * k * n >= PARALLEL_MIN_MACS);
        let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.11).cos()).collect();
        for (a_t, b_t) in [(false, true), (true, false), (false, false), (true, true)] {
            let mut split = vec![f32::NAN; m * n];
            gemm(m, k, n, 1.0, &a, a_t, &b, b_t, 0.0, &mut split);
            let engine = if !a_t && b_t {
                Engine::SmallNt
            } else {
                Engine::Crate
            };
            let p = Product {
                m,
                k,
                n,
                alpha: 1.0,
                a: &a,
                a_t,
                b: &b,
                b_t,
                beta: 0.0,
            };
            let mut whole = vec![f32::NAN; m * n];
            p.rows(engine, 0, m, &mut whole);
            assert!(
                split
                    .iter()
                    .zip(&whole)
                    .all(|(x, y)| x.to_bits() == y.to_bits()),
                "a_t={a_t} b_t={b_t}"
            );
            let want = naive(m, k, n, &a, a_t, &b, b_t);
            for (x, y) in split.iter().zip(&want) {
                assert!((x - y).abs() < 1e-3, "a_t={a_t} b_t={b_t}: {x} vs {y}");
            }
        }
    }

    #[test]
    fn beta_one_accumulates() {
        let a = [1.0, 2.0];
        let b = [3.0, 4.0];
        let mut c = [10.0];
        gemm(1, 2, 1, 1.0, &a, false, &b, false, 1.0, &mut c);
        assert_eq!(c[0], 21.0);
    }
}
