//! Views of one observation's two lanes (see [`crate::space`]): `f32` values
//! and `u8` bytes. Environments without byte boxes see an empty byte lane.

/// One observation being written by [`crate::Env::reset`] or
/// [`crate::Env::step`].
#[derive(Debug)]
pub struct ObsMut<'a> {
    /// The value lane, `observation_space().flat_dim()` slots.
    pub values: &'a mut [f32],
    /// The byte lane, `observation_space().byte_dim()` slots.
    pub bytes: &'a mut [u8],
}

impl<'a> ObsMut<'a> {
    /// Both lanes.
    pub fn new(values: &'a mut [f32], bytes: &'a mut [u8]) -> Self {
        Self { values, bytes }
    }

    /// A value-only observation (the byte lane is empty).
    pub fn values(values: &'a mut [f32]) -> Self {
        Self {
            values,
            bytes: &mut [],
        }
    }

    /// A shorter-lived view of the same lanes, for passing on while keeping
    /// this one.
    pub fn reborrow(&mut self) -> ObsMut<'_> {
        ObsMut {
            values: self.values,
            bytes: self.bytes,
        }
    }
}

/// One observation (or a batch of them, row-major), read-only.
#[derive(Clone, Copy, Debug, Default)]
pub struct ObsRef<'a> {
    /// The value lane.
    pub values: &'a [f32],
    /// The byte lane.
    pub bytes: &'a [u8],
}

impl<'a> ObsRef<'a> {
    /// Both lanes.
    pub fn new(values: &'a [f32], bytes: &'a [u8]) -> Self {
        Self { values, bytes }
    }

    /// A value-only observation.
    pub fn values(values: &'a [f32]) -> Self {
        Self { values, bytes: &[] }
    }

    /// Row `i` of a batch of `n` rows.
    pub fn row(&self, i: usize, n: usize) -> ObsRef<'a> {
        let n = n.max(1);
        let (vd, bd) = (self.values.len() / n, self.bytes.len() / n);
        ObsRef {
            values: &self.values[i * vd..(i + 1) * vd],
            bytes: &self.bytes[i * bd..(i + 1) * bd],
        }
    }
}

impl<'a> From<&'a mut [f32]> for ObsMut<'a> {
    fn from(values: &'a mut [f32]) -> Self {
        Self::values(values)
    }
}

impl<'a, const N: usize> From<&'a mut [f32; N]> for ObsMut<'a> {
    fn from(values: &'a mut [f32; N]) -> Self {
        Self::values(values)
    }
}

impl<'a> From<&'a mut Vec<f32>> for ObsMut<'a> {
    fn from(values: &'a mut Vec<f32>) -> Self {
        Self::values(values)
    }
}
