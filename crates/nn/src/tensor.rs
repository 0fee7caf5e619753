//! A dense, row-major `f32` tensor that owns its storage.
//!
//! Layers keep their outputs and gradients in `Tensor`s that are resized, never
//! reallocated, once they have reached their working size, so layer buffers
//! cost nothing after the first minibatch. (The GEMM kernels still allocate a
//! small packing scratch per call; see `crates/rl/tests/ppo_rollout_alloc.rs`.)

use crate::error::{NnError, Result};

/// Dense row-major `f32` tensor.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Tensor {
    shape: Vec<usize>,
    data: Vec<f32>,
}

impl Tensor {
    /// A tensor of zeros.
    pub fn zeros(shape: &[usize]) -> Self {
        Self {
            shape: shape.to_vec(),
            data: vec![0.0; shape.iter().product()],
        }
    }

    /// A tensor filled with `value`.
    pub fn full(shape: &[usize], value: f32) -> Self {
        Self {
            shape: shape.to_vec(),
            data: vec![value; shape.iter().product()],
        }
    }

    /// Wraps `data` as a tensor of `shape`; errors if the lengths disagree.
    pub fn from_vec(shape: &[usize], data: Vec<f32>) -> Result<Self> {
        let expected: usize = shape.iter().product();
        if expected != data.len() {
            return Err(NnError::Length {
                context: "Tensor::from_vec".into(),
                shape: shape.to_vec(),
                expected,
                actual: data.len(),
            });
        }
        Ok(Self {
            shape: shape.to_vec(),
            data,
        })
    }

    /// Copies `data` into a new tensor of `shape`.
    pub fn from_slice(shape: &[usize], data: &[f32]) -> Result<Self> {
        Self::from_vec(shape, data.to_vec())
    }

    /// The shape.
    #[inline]
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Number of dimensions.
    #[inline]
    pub fn ndim(&self) -> usize {
        self.shape.len()
    }

    /// Number of elements.
    #[inline]
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// True when the tensor holds no elements.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The elements, row-major.
    #[inline]
    pub fn data(&self) -> &[f32] {
        &self.data
    }

    /// The elements, row-major, mutable.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [f32] {
        &mut self.data
    }

    /// Consumes the tensor, returning its elements.
    pub fn into_vec(self) -> Vec<f32> {
        self.data
    }

    /// Size of dimension 0 (the batch), or 1 for a scalar.
    #[inline]
    pub fn rows(&self) -> usize {
        self.shape.first().copied().unwrap_or(1)
    }

    /// Product of all dimensions after the first.
    #[inline]
    pub fn cols(&self) -> usize {
        self.shape.iter().skip(1).product()
    }

    /// Row `i` of the tensor viewed as `[rows, cols]`.
    #[inline]
    pub fn row(&self, i: usize) -> &[f32] {
        let c = self.cols();
        &self.data[i * c..(i + 1) * c]
    }

    /// Changes the shape in place, keeping the allocation. Contents are left
    /// unspecified when the size changes; callers overwrite them.
    #[inline]
    pub fn resize(&mut self, shape: &[usize]) {
        if self.shape != shape {
            self.shape.clear();
            self.shape.extend_from_slice(shape);
        }
        let n = shape.iter().product();
        if self.data.len() != n {
            self.data.resize(n, 0.0);
        }
    }

    /// Resizes like [`Tensor::resize`] and sets every element to zero.
    #[inline]
    pub fn resize_zeroed(&mut self, shape: &[usize]) {
        self.resize(shape);
        self.data.fill(0.0);
    }

    /// Reinterprets the data with a new shape of equal size.
    pub fn reshape(&mut self, shape: &[usize]) -> Result<()> {
        let n: usize = shape.iter().product();
        if n != self.data.len() {
            return Err(NnError::Length {
                context: "Tensor::reshape".into(),
                shape: shape.to_vec(),
                expected: n,
                actual: self.data.len(),
            });
        }
        self.shape.clear();
        self.shape.extend_from_slice(shape);
        Ok(())
    }

    /// Makes `self` an exact copy of `other`, reusing the allocation.
    pub fn copy_from(&mut self, other: &Tensor) {
        self.resize(other.shape());
        self.data.copy_from_slice(other.data());
    }

    /// Sets every element to zero.
    #[inline]
    pub fn fill_zero(&mut self) {
        self.data.fill(0.0);
    }

    /// Errors with the index of the first NaN or infinity, naming `context`.
    pub fn check_finite(&self, context: &str) -> Result<()> {
        // A branch-free scan of 64-value blocks (the compiler vectorises it)
        // finds the block; the first bad index is then looked up in it.
        let block = self.data.chunks(64).position(|b| {
            b.iter()
                .fold(0u32, |worst, x| worst.max(x.to_bits() & 0x7f80_0000))
                == 0x7f80_0000
        });
        let found = block.and_then(|k| {
            self.data[k * 64..]
                .iter()
                .position(|x| !x.is_finite())
                .map(|i| k * 64 + i)
        });
        match found {
            None => Ok(()),
            Some(index) => Err(NnError::NonFinite {
                context: context.into(),
                index,
                value: self.data[index],
            }),
        }
    }

    /// Errors unless the shape equals `expected`.
    pub fn expect_shape(&self, context: &str, expected: &[usize]) -> Result<()> {
        if self.shape == expected {
            Ok(())
        } else {
            Err(NnError::shape(context, expected, &self.shape))
        }
    }

    /// Errors unless the tensor is 2-D with `cols` columns; returns the row count.
    pub fn expect_matrix(&self, context: &str, cols: usize) -> Result<usize> {
        if self.shape.len() == 2 && self.shape[1] == cols {
            Ok(self.shape[0])
        } else {
            Err(NnError::shape(
                context,
                &[self.shape.first().copied().unwrap_or(0), cols],
                &self.shape,
            ))
        }
    }

    /// Sum of squares of the elements, accumulated in `f64`.
    pub fn sum_squares(&self) -> f64 {
        self.data.iter().map(|&x| (x as f64) * (x as f64)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_vec_rejects_wrong_length_with_shape_in_message() {
        let err = Tensor::from_vec(&[2, 3], vec![0.0; 5]).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("[2, 3]") && msg.contains('5'), "{msg}");
    }

    #[test]
    fn resize_keeps_capacity_and_reports_rows_cols() {
        let mut t = Tensor::zeros(&[4, 8]);
        let ptr = t.data().as_ptr();
        t.resize(&[2, 8]);
        assert_eq!((t.rows(), t.cols()), (2, 8));
        t.resize(&[4, 8]);
        assert_eq!(t.data().as_ptr(), ptr);
    }

    #[test]
    fn check_finite_names_first_bad_index() {
        let t = Tensor::from_vec(&[3], vec![1.0, f32::NAN, f32::INFINITY]).unwrap();
        match t.check_finite("obs") {
            Err(NnError::NonFinite { index, .. }) => assert_eq!(index, 1),
            other => panic!("{other:?}"),
        }
        // In long tensors, past the first block and in a partial last block,
        // every kind of non-finite value; the largest finite values pass.
        for len in [64, 65, 200, 1000] {
            let mut data = vec![f32::MAX; len];
            data[0] = f32::MIN;
            assert!(
                Tensor::from_vec(&[len], data.clone())
                    .unwrap()
                    .check_finite("x")
                    .is_ok()
            );
            for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
                for at in [0, 63, len / 2, len - 1] {
                    let mut d = data.clone();
                    d[at] = bad;
                    d[len - 1 - (len - 1 - at) / 2] = bad;
                    let first = at.min(len - 1 - (len - 1 - at) / 2);
                    match Tensor::from_vec(&[len], d).unwrap().check_finite("x") {
                        Err(NnError::NonFinite { index, .. }) => assert_eq!(index, first),
                        other => panic!("{other:?}"),
                    }
                }
            }
        }
    }
}
