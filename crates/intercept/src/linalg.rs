//! Small fixed-size `f64` matrices for the tracker and sensor models.
//!
//! Matrices are plain row-major arrays `[[f64; C]; R]`, so they are `Copy`, live on
//! the stack and serialise with serde's array support. Filters whose active size
//! varies at run time (a 6-state CV or 9-state Singer model in the same storage, a
//! 2- to 4-component measurement) use the `*_n` functions, which work on the
//! leading `n x n` block and leave the rest untouched. Nothing here allocates.

// Index loops mirror the matrix formulas and are clearer than iterator chains here.
#![allow(clippy::needless_range_loop)]

/// A row-major `R x C` matrix.
pub type Mat<const R: usize, const C: usize> = [[f64; C]; R];

/// The `R x C` zero matrix.
#[inline]
pub const fn zeros<const R: usize, const C: usize>() -> Mat<R, C> {
    [[0.0; C]; R]
}

/// The `N x N` identity.
#[inline]
pub fn identity<const N: usize>() -> Mat<N, N> {
    let mut m = zeros::<N, N>();
    for (i, row) in m.iter_mut().enumerate() {
        row[i] = 1.0;
    }
    m
}

/// Matrix product `a b`.
#[inline]
pub fn mul<const R: usize, const K: usize, const C: usize>(
    a: &Mat<R, K>,
    b: &Mat<K, C>,
) -> Mat<R, C> {
    let mut out = zeros::<R, C>();
    for i in 0..R {
        for k in 0..K {
            let aik = a[i][k];
            if aik == 0.0 {
                continue;
            }
            for j in 0..C {
                out[i][j] += aik * b[k][j];
            }
        }
    }
    out
}

/// Transpose.
#[inline]
pub fn transpose<const R: usize, const C: usize>(a: &Mat<R, C>) -> Mat<C, R> {
    let mut out = zeros::<C, R>();
    for i in 0..R {
        for j in 0..C {
            out[j][i] = a[i][j];
        }
    }
    out
}

/// Element-wise sum `a + b`.
#[inline]
pub fn add<const R: usize, const C: usize>(a: &Mat<R, C>, b: &Mat<R, C>) -> Mat<R, C> {
    let mut out = *a;
    for i in 0..R {
        for j in 0..C {
            out[i][j] += b[i][j];
        }
    }
    out
}

/// Scalar multiple `s a`.
#[inline]
pub fn scale<const R: usize, const C: usize>(a: &Mat<R, C>, s: f64) -> Mat<R, C> {
    let mut out = *a;
    for row in out.iter_mut() {
        for v in row.iter_mut() {
            *v *= s;
        }
    }
    out
}

/// Replaces the leading `n x n` block by its symmetric part `(A + A^T)/2`.
///
/// Covariance updates accumulate round-off asymmetry; symmetrising after every
/// update keeps Cholesky factorisations and quadratic forms well defined.
#[inline]
pub fn symmetrize_n<const N: usize>(a: &mut Mat<N, N>, n: usize) {
    for i in 0..n {
        for j in (i + 1)..n {
            let m = 0.5 * (a[i][j] + a[j][i]);
            a[i][j] = m;
            a[j][i] = m;
        }
    }
}

/// Largest `|a_ij - a_ji|` over the leading `n x n` block.
pub fn max_asymmetry_n<const N: usize>(a: &Mat<N, N>, n: usize) -> f64 {
    let mut worst = 0.0_f64;
    for i in 0..n {
        for j in (i + 1)..n {
            worst = worst.max((a[i][j] - a[j][i]).abs());
        }
    }
    worst
}

/// Trace of the `n x n` block starting at row/column `start`.
#[inline]
pub fn block_trace<const N: usize>(a: &Mat<N, N>, start: usize, n: usize) -> f64 {
    (start..start + n).map(|i| a[i][i]).sum()
}

/// Lower Cholesky factor `L` (with `L L^T = A`) of the leading `n x n` block.
///
/// Returns `None` when the block is not (numerically) positive definite, i.e. a
/// pivot is not strictly positive and finite.
pub fn cholesky_n<const N: usize>(a: &Mat<N, N>, n: usize) -> Option<Mat<N, N>> {
    let mut l = zeros::<N, N>();
    for j in 0..n {
        let mut d = a[j][j];
        for k in 0..j {
            d -= l[j][k] * l[j][k];
        }
        if !(d > 0.0 && d.is_finite()) {
            return None;
        }
        let djj = d.sqrt();
        l[j][j] = djj;
        let inv = 1.0 / djj;
        for i in (j + 1)..n {
            let mut s = a[i][j];
            for k in 0..j {
                s -= l[i][k] * l[j][k];
            }
            l[i][j] = s * inv;
        }
    }
    Some(l)
}

/// Solves `L L^T x = b` in place for the leading `n` entries of `b`, given the
/// Cholesky factor from [`cholesky_n`].
pub fn cholesky_solve_n<const N: usize>(l: &Mat<N, N>, n: usize, b: &mut [f64; N]) {
    // Forward: L y = b.
    for i in 0..n {
        let mut s = b[i];
        for k in 0..i {
            s -= l[i][k] * b[k];
        }
        b[i] = s / l[i][i];
    }
    // Backward: L^T x = y.
    for i in (0..n).rev() {
        let mut s = b[i];
        for k in (i + 1)..n {
            s -= l[k][i] * b[k];
        }
        b[i] = s / l[i][i];
    }
}

/// `v^T A^-1 v` over the leading `n x n` block of a symmetric positive definite
/// `A`, or `None` if `A` is not positive definite.
pub fn quad_form_inv_n<const N: usize>(a: &Mat<N, N>, n: usize, v: &[f64; N]) -> Option<f64> {
    let l = cholesky_n(a, n)?;
    // With L y = v, v^T A^-1 v = |y|^2.
    let mut y = *v;
    let mut q = 0.0;
    for i in 0..n {
        let mut s = y[i];
        for k in 0..i {
            s -= l[i][k] * y[k];
        }
        y[i] = s / l[i][i];
        q += y[i] * y[i];
    }
    Some(q)
}

/// Inverse of the leading `n x n` block of a symmetric positive definite matrix
/// (through Cholesky), or `None` if it is not positive definite.
pub fn inverse_spd_n<const N: usize>(a: &Mat<N, N>, n: usize) -> Option<Mat<N, N>> {
    let l = cholesky_n(a, n)?;
    let mut inv = zeros::<N, N>();
    for j in 0..n {
        let mut e = [0.0; N];
        e[j] = 1.0;
        cholesky_solve_n(&l, n, &mut e);
        for i in 0..n {
            inv[i][j] = e[i];
        }
    }
    symmetrize_n(&mut inv, n);
    Some(inv)
}

/// Maximum absolute row sum (the induced infinity norm).
pub fn norm_inf<const R: usize, const C: usize>(a: &Mat<R, C>) -> f64 {
    a.iter()
        .map(|row| row.iter().map(|v| v.abs()).sum::<f64>())
        .fold(0.0, f64::max)
}

/// Matrix exponential by scaling and squaring with an 18-term Taylor series.
///
/// Accurate to f64 round-off for the small, well-conditioned generator matrices of
/// linear motion models (used to derive and check their discretisations); not a
/// general-purpose `expm` for stiff or defective matrices of large norm.
pub fn expm<const N: usize>(a: &Mat<N, N>) -> Mat<N, N> {
    let norm = norm_inf(a);
    let mut squarings = 0u32;
    let mut s = 1.0;
    while norm * s > 0.5 {
        s *= 0.5;
        squarings += 1;
    }
    let scaled = scale(a, s);
    // Horner form of sum_{k=0}^{18} A^k / k!.
    let mut result = identity::<N>();
    for k in (1..=18).rev() {
        result = mul(&scaled, &result);
        result = scale(&result, 1.0 / k as f64);
        for (i, row) in result.iter_mut().enumerate() {
            row[i] += 1.0;
        }
    }
    for _ in 0..squarings {
        result = mul(&result, &result);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spd3() -> Mat<3, 3> {
        [[4.0, 1.0, 0.5], [1.0, 3.0, 0.2], [0.5, 0.2, 2.0]]
    }

    #[test]
    fn cholesky_reconstructs_and_inverse_is_inverse() {
        let a = spd3();
        let l = cholesky_n(&a, 3).expect("spd");
        let llt = mul(&l, &transpose(&l));
        for i in 0..3 {
            for j in 0..3 {
                assert!((llt[i][j] - a[i][j]).abs() < 1e-14);
            }
        }
        let inv = inverse_spd_n(&a, 3).expect("spd");
        let eye = mul(&a, &inv);
        for (i, row) in eye.iter().enumerate() {
            for (j, v) in row.iter().enumerate() {
                let want = if i == j { 1.0 } else { 0.0 };
                assert!((v - want).abs() < 1e-14, "{i} {j} {v}");
            }
        }
        let v = [1.0, -2.0, 0.5];
        let q = quad_form_inv_n(&a, 3, &v).expect("spd");
        let direct: f64 = (0..3)
            .map(|i| (0..3).map(|j| v[i] * inv[i][j] * v[j]).sum::<f64>())
            .sum();
        assert!((q - direct).abs() < 1e-13);
    }

    #[test]
    fn cholesky_rejects_indefinite_and_uses_leading_block_only() {
        let a: Mat<3, 3> = [[1.0, 2.0, 0.0], [2.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
        assert!(cholesky_n(&a, 3).is_none());
        // The leading 1x1 block is positive definite.
        assert!(cholesky_n(&a, 1).is_some());
        let mut b = spd3();
        b[2][2] = f64::NAN;
        assert!(cholesky_n(&b, 2).is_some());
        assert!(cholesky_n(&b, 3).is_none());
    }

    #[test]
    fn expm_matches_closed_forms() {
        // Nilpotent double integrator: exp([[0,T],[0,0]]) = [[1,T],[0,1]].
        let e = expm(&[[0.0, 3.0], [0.0, 0.0]]);
        assert_eq!(e, [[1.0, 3.0], [0.0, 1.0]]);
        // Rotation generator: exp([[0,-w],[w,0]]) = rotation by w (large norm: squaring).
        let w = 2.5;
        let r = expm(&[[0.0, -w], [w, 0.0]]);
        assert!((r[0][0] - w.cos()).abs() < 1e-13);
        assert!((r[1][0] - w.sin()).abs() < 1e-13);
        // Diagonal decay.
        let d = expm(&[[-0.7, 0.0], [0.0, 0.0]]);
        assert!((d[0][0] - (-0.7f64).exp()).abs() < 1e-15);
    }

    #[test]
    fn symmetrize_only_touches_the_leading_block() {
        let mut a: Mat<3, 3> = [[1.0, 2.0, 9.0], [4.0, 1.0, 0.0], [5.0, 0.0, 1.0]];
        symmetrize_n(&mut a, 2);
        assert_eq!(a[0][1], 3.0);
        assert_eq!(a[1][0], 3.0);
        assert_eq!(a[0][2], 9.0);
        assert_eq!(max_asymmetry_n(&a, 2), 0.0);
        assert_eq!(max_asymmetry_n(&a, 3), 4.0);
    }
}
