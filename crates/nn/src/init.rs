//! Weight initialisation.

use hlynr_rng::Rng;

use crate::error::{NnError, Result};
use crate::tensor::Tensor;

/// PyTorch's default for `nn.Linear`/`nn.Conv2d` weights and biases:
/// `U(-1/sqrt(fan_in), 1/sqrt(fan_in))` (kaiming-uniform with `a = sqrt(5)`
/// reduces to this bound).
pub fn uniform_fan_in(tensor: &mut Tensor, fan_in: usize, rng: &mut Rng) {
    let bound = if fan_in > 0 {
        1.0 / (fan_in as f32).sqrt()
    } else {
        0.0
    };
    for x in tensor.data_mut() {
        *x = rng.uniform_range_f32(-bound, bound);
    }
}

/// Orthogonal initialisation (Saxe et al. 2014) as `torch.nn.init.orthogonal_`:
/// the tensor viewed as `[rows, cols]` (`rows = shape[0]`, `cols` the product of
/// the rest) becomes `gain * Q`, where `Q` has orthonormal rows (when
/// `rows <= cols`) or orthonormal columns (when `rows >= cols`).
///
/// `Q` is the orthogonal factor of the QR decomposition of a standard Gaussian
/// matrix (transposed first when it is wide), with the sign of each column fixed
/// so that `R` has a positive diagonal; this makes `Q` uniformly (Haar)
/// distributed. The factorisation runs in `f64` with modified Gram-Schmidt plus
/// one reorthogonalisation pass, which yields that positive-diagonal factor
/// directly.
pub fn orthogonal(tensor: &mut Tensor, gain: f32, rng: &mut Rng) -> Result<()> {
    if tensor.ndim() < 2 {
        return Err(NnError::invalid(
            "orthogonal init",
            format!(
                "needs a tensor of 2 or more dimensions, got {:?}",
                tensor.shape()
            ),
        ));
    }
    if !gain.is_finite() {
        return Err(NnError::invalid(
            "orthogonal init",
            format!("gain must be finite, got {gain}"),
        ));
    }
    let rows = tensor.shape()[0];
    let cols = tensor.len() / rows.max(1);
    if rows == 0 || cols == 0 {
        return Ok(());
    }
    // Factorise the tall orientation: m >= n, columns of `a` orthonormalised.
    let (m, n) = if rows >= cols {
        (rows, cols)
    } else {
        (cols, rows)
    };
    // Column-major m x n: column j is a[j*m..(j+1)*m].
    let mut a = vec![0.0f64; m * n];
    for j in 0..n {
        loop {
            let col = &mut a[j * m..(j + 1) * m];
            for v in col.iter_mut() {
                *v = rng.normal();
            }
            let (done, rest) = a.split_at_mut(j * m);
            let col = &mut rest[..m];
            // Two passes of modified Gram-Schmidt against the finished columns.
            for _ in 0..2 {
                for q in done.chunks_exact(m) {
                    let dot: f64 = q.iter().zip(col.iter()).map(|(x, y)| x * y).sum();
                    for (c, &qv) in col.iter_mut().zip(q) {
                        *c -= dot * qv;
                    }
                }
            }
            let norm = col.iter().map(|x| x * x).sum::<f64>().sqrt();
            // A Gaussian column in the span of the previous ones has probability
            // zero; redraw rather than divide by (almost) nothing.
            if norm > 1e-10 {
                for c in col.iter_mut() {
                    *c /= norm;
                }
                break;
            }
        }
    }
    let out = tensor.data_mut();
    for r in 0..rows {
        for c in 0..cols {
            // Tall: W[r, c] = Q[r, c]; wide: W = Q^T, W[r, c] = Q[c, r].
            let q = if rows >= cols {
                a[c * m + r]
            } else {
                a[r * m + c]
            };
            out[r * cols + c] = (gain as f64 * q) as f32;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Max deviation of `W W^T` (or `W^T W`, the smaller side) from `gain^2 I`.
    fn orthogonality_error(w: &Tensor, gain: f32) -> f64 {
        let rows = w.shape()[0];
        let cols = w.len() / rows;
        let d = w.data();
        let at = |r: usize, c: usize| d[r * cols + c] as f64;
        let g2 = (gain as f64).powi(2);
        let mut worst = 0.0f64;
        if rows <= cols {
            for i in 0..rows {
                for j in 0..rows {
                    let s: f64 = (0..cols).map(|k| at(i, k) * at(j, k)).sum();
                    let want = if i == j { g2 } else { 0.0 };
                    worst = worst.max((s - want).abs());
                }
            }
        } else {
            for i in 0..cols {
                for j in 0..cols {
                    let s: f64 = (0..rows).map(|k| at(k, i) * at(k, j)).sum();
                    let want = if i == j { g2 } else { 0.0 };
                    worst = worst.max((s - want).abs());
                }
            }
        }
        worst
    }

    #[test]
    fn orthogonal_is_orthogonal_for_tall_wide_square_and_conv_shapes() {
        let mut rng = Rng::seed_from_u64(9);
        let gain = std::f32::consts::SQRT_2;
        for shape in [
            vec![64, 16],
            vec![16, 64],
            vec![32, 32],
            vec![8, 3, 3, 3],
            vec![1, 5],
            vec![5, 1],
        ] {
            let mut w = Tensor::zeros(&shape);
            orthogonal(&mut w, gain, &mut rng).unwrap();
            let err = orthogonality_error(&w, gain);
            assert!(err < 1e-5, "{shape:?}: {err}");
        }
    }

    #[test]
    fn orthogonal_is_reproducible_and_rejects_vectors() {
        let mut a = Tensor::zeros(&[6, 4]);
        let mut b = Tensor::zeros(&[6, 4]);
        orthogonal(&mut a, 1.0, &mut Rng::seed_from_u64(1)).unwrap();
        orthogonal(&mut b, 1.0, &mut Rng::seed_from_u64(1)).unwrap();
        assert_eq!(a, b);
        // Not the identity or any fixed pattern: a different seed differs.
        orthogonal(&mut b, 1.0, &mut Rng::seed_from_u64(2)).unwrap();
        assert_ne!(a, b);
        let err = orthogonal(&mut Tensor::zeros(&[4]), 1.0, &mut Rng::seed_from_u64(0));
        assert!(err.unwrap_err().to_string().contains("[4]"));
    }

    #[test]
    fn uniform_fan_in_respects_bound() {
        let mut t = Tensor::zeros(&[100, 16]);
        uniform_fan_in(&mut t, 16, &mut Rng::seed_from_u64(0));
        assert!(t.data().iter().all(|v| v.abs() <= 0.25));
        assert!(t.data().iter().any(|v| v.abs() > 0.2));
    }
}
