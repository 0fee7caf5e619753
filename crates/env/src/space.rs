//! Observation and action spaces, and their flat encoding.
//!
//! Every observation and action travels as flat buffers so that a batch of N is
//! one contiguous `[N, dim]` array. An element has two lanes: `f32` *values*
//! and `u8` *bytes* (only `Box` spaces of dtype `u8`, such as camera frames,
//! use the byte lane, so a 64x64 frame costs 4 KiB, not 16 KiB). The encoding
//! of each space:
//! - `Box` (`f32`): its values, row-major, in the value lane.
//! - `Box` (`u8`): its values, row-major, in the byte lane.
//! - `Discrete(n)`: one slot holding the index as an exact integer `0..n`.
//! - `MultiDiscrete(nvec)`: one slot per component, each an index.
//! - `Tuple`: the encodings of its parts, concatenated (e.g. a hybrid action is
//!   `[move_x, move_y, choice]`).

use hlynr_rng::Rng;
use serde::{Deserialize, Serialize};

/// A Gymnasium-style space. Serialised (checkpoints record the spaces of
/// their policy) as `{"box": {"low": [..], "high": [..], "shape": [..]}}`
/// (with `"dtype": "u8"` for byte boxes), `{"discrete": {"n": 2}}`, ...;
/// infinite bounds as `"inf"` / `"-inf"`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Space {
    /// A box of reals (or of bytes, see [`Dtype`]); `low`/`high` have one
    /// entry per element (may be infinite for `f32`).
    Box {
        #[serde(with = "bounds")]
        low: Vec<f32>,
        #[serde(with = "bounds")]
        high: Vec<f32>,
        shape: Vec<usize>,
        /// Element type; `f32` unless stated.
        #[serde(default, skip_serializing_if = "Dtype::is_f32")]
        dtype: Dtype,
    },
    /// One of `n` choices.
    Discrete { n: usize },
    /// Several independent choices with `nvec[i]` options each.
    MultiDiscrete { nvec: Vec<usize> },
    /// A product of spaces (hybrid actions).
    Tuple { spaces: Vec<Space> },
}

/// Element type of a `Box`: which lane of the flat encoding it travels in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dtype {
    /// 32-bit floats, in the value lane.
    #[default]
    F32,
    /// Bytes `0..=255` (camera frames), in the byte lane: stored, stacked and
    /// replayed as bytes; networks scale them to `[0, 1]` on input.
    U8,
}

impl Dtype {
    fn is_f32(&self) -> bool {
        *self == Dtype::F32
    }
}

/// Box bounds in JSON, which has no infinities: those are the strings
/// `"inf"` and `"-inf"`.
mod bounds {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    #[serde(untagged)]
    enum Bound {
        Finite(f32),
        Named(String),
    }

    pub fn serialize<S: Serializer>(values: &[f32], s: S) -> Result<S::Ok, S::Error> {
        let out: Vec<Bound> = values
            .iter()
            .map(|&v| match v {
                v if v.is_finite() => Bound::Finite(v),
                v if v > 0.0 => Bound::Named("inf".into()),
                v if v < 0.0 => Bound::Named("-inf".into()),
                _ => Bound::Named("nan".into()),
            })
            .collect();
        out.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f32>, D::Error> {
        Vec::<Bound>::deserialize(d)?
            .into_iter()
            .map(|b| match b {
                Bound::Finite(v) => Ok(v),
                Bound::Named(n) if n == "inf" => Ok(f32::INFINITY),
                Bound::Named(n) if n == "-inf" => Ok(f32::NEG_INFINITY),
                Bound::Named(n) => Err(serde::de::Error::custom(format!(
                    "a box bound is a number, \"inf\" or \"-inf\", not \"{n}\""
                ))),
            })
            .collect()
    }
}

impl Space {
    /// A box with the same bounds on every element.
    pub fn uniform_box(low: f32, high: f32, shape: &[usize]) -> Self {
        let n = shape.iter().product();
        Space::Box {
            low: vec![low; n],
            high: vec![high; n],
            shape: shape.to_vec(),
            dtype: Dtype::F32,
        }
    }

    /// A box of bytes `0..=255` (e.g. `[channels, height, width]` frames).
    pub fn byte_box(shape: &[usize]) -> Self {
        let n = shape.iter().product();
        Space::Box {
            low: vec![0.0; n],
            high: vec![255.0; n],
            shape: shape.to_vec(),
            dtype: Dtype::U8,
        }
    }

    /// A 1-D box with per-element bounds.
    pub fn box_1d(low: Vec<f32>, high: Vec<f32>) -> Self {
        assert_eq!(low.len(), high.len(), "Box bounds must have equal length");
        let n = low.len();
        Space::Box {
            low,
            high,
            shape: vec![n],
            dtype: Dtype::F32,
        }
    }

    /// Number of `f32` slots in the flat encoding (the value lane).
    pub fn flat_dim(&self) -> usize {
        match self {
            Space::Box {
                dtype: Dtype::U8, ..
            } => 0,
            Space::Box { shape, .. } => shape.iter().product(),
            Space::Discrete { .. } => 1,
            Space::MultiDiscrete { nvec } => nvec.len(),
            Space::Tuple { spaces } => spaces.iter().map(Space::flat_dim).sum(),
        }
    }

    /// Number of `u8` slots in the flat encoding (the byte lane).
    pub fn byte_dim(&self) -> usize {
        match self {
            Space::Box {
                dtype: Dtype::U8,
                shape,
                ..
            } => shape.iter().product(),
            Space::Tuple { spaces } => spaces.iter().map(Space::byte_dim).sum(),
            _ => 0,
        }
    }

    /// The shapes of the byte boxes, in byte-lane order.
    pub fn byte_shapes(&self) -> Vec<Vec<usize>> {
        let mut out = Vec::new();
        self.collect_byte_shapes(&mut out);
        out
    }

    fn collect_byte_shapes(&self, out: &mut Vec<Vec<usize>>) {
        match self {
            Space::Box {
                dtype: Dtype::U8,
                shape,
                ..
            } => out.push(shape.clone()),
            Space::Tuple { spaces } => spaces.iter().for_each(|s| s.collect_byte_shapes(out)),
            _ => {}
        }
    }

    /// Checks that `bytes` is a valid byte lane: right length and inside the
    /// bounds. The message names the first offending byte.
    pub fn check_bytes(&self, bytes: &[u8]) -> Result<(), String> {
        if bytes.len() != self.byte_dim() {
            return Err(format!(
                "expected {} bytes, got {}",
                self.byte_dim(),
                bytes.len()
            ));
        }
        self.check_bytes_at(bytes, 0)
    }

    fn check_bytes_at(&self, bytes: &[u8], offset: usize) -> Result<(), String> {
        match self {
            Space::Box {
                dtype: Dtype::U8,
                low,
                high,
                ..
            } => {
                for (i, ((&v, &lo), &hi)) in bytes.iter().zip(low).zip(high).enumerate() {
                    if f32::from(v) < lo || f32::from(v) > hi {
                        return Err(format!("byte {} = {v} is outside [{lo}, {hi}]", offset + i));
                    }
                }
                Ok(())
            }
            Space::Tuple { spaces } => {
                let mut at = 0;
                for s in spaces {
                    let d = s.byte_dim();
                    s.check_bytes_at(&bytes[at..at + d], offset + at)?;
                    at += d;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Checks that `x` is a valid flat element: right length, finite, inside the
    /// bounds (boxes) and an in-range integer (discrete). The message names the
    /// first offending slot.
    pub fn check(&self, x: &[f32]) -> Result<(), String> {
        if x.len() != self.flat_dim() {
            return Err(format!(
                "expected {} values, got {}",
                self.flat_dim(),
                x.len()
            ));
        }
        self.check_at(x, 0)
    }

    fn check_at(&self, x: &[f32], offset: usize) -> Result<(), String> {
        match self {
            Space::Box {
                dtype: Dtype::U8, ..
            } => Ok(()),
            Space::Box { low, high, .. } => {
                for (i, ((&v, &lo), &hi)) in x.iter().zip(low).zip(high).enumerate() {
                    if !v.is_finite() {
                        return Err(format!("slot {} is {v}", offset + i));
                    }
                    if v < lo || v > hi {
                        return Err(format!("slot {} = {v} is outside [{lo}, {hi}]", offset + i));
                    }
                }
                Ok(())
            }
            Space::Discrete { n } => check_index(x[0], *n, offset),
            Space::MultiDiscrete { nvec } => {
                for (i, (&v, &n)) in x.iter().zip(nvec).enumerate() {
                    check_index(v, n, offset + i)?;
                }
                Ok(())
            }
            Space::Tuple { spaces } => {
                let mut at = 0;
                for s in spaces {
                    let d = s.flat_dim();
                    s.check_at(&x[at..at + d], offset + at)?;
                    at += d;
                }
                Ok(())
            }
        }
    }

    /// Draws a uniform element's value lane into `out` (boxes with infinite
    /// bounds draw a standard normal in the unbounded directions, as
    /// Gymnasium does). Byte boxes have no values and draw nothing.
    pub fn sample(&self, rng: &mut Rng, out: &mut [f32]) {
        debug_assert_eq!(out.len(), self.flat_dim());
        match self {
            Space::Box {
                dtype: Dtype::U8, ..
            } => {}
            Space::Box { low, high, .. } => {
                for ((o, &lo), &hi) in out.iter_mut().zip(low).zip(high) {
                    *o = match (lo.is_finite(), hi.is_finite()) {
                        (true, true) => rng.uniform_range_f32(lo, hi),
                        (true, false) => lo + rng.exponential(1.0) as f32,
                        (false, true) => hi - rng.exponential(1.0) as f32,
                        (false, false) => rng.normal_f32(),
                    };
                }
            }
            Space::Discrete { n } => out[0] = rng.below(*n as u64) as f32,
            Space::MultiDiscrete { nvec } => {
                for (o, &n) in out.iter_mut().zip(nvec) {
                    *o = rng.below(n as u64) as f32;
                }
            }
            Space::Tuple { spaces } => {
                let mut at = 0;
                for s in spaces {
                    let d = s.flat_dim();
                    s.sample(rng, &mut out[at..at + d]);
                    at += d;
                }
            }
        }
    }

    /// Shape of a `Box` space (the flat dimension as `[d]` for the others).
    pub fn shape(&self) -> Vec<usize> {
        match self {
            Space::Box { shape, .. } => shape.clone(),
            other => vec![other.flat_dim()],
        }
    }
}

fn check_index(v: f32, n: usize, slot: usize) -> Result<(), String> {
    if !v.is_finite() || v.fract() != 0.0 || v < 0.0 || v >= n as f32 {
        Err(format!(
            "slot {slot} = {v} is not an integer index in 0..{n}"
        ))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn spaces_round_trip_through_json_with_infinite_bounds() {
        let spaces = [
            Space::box_1d(vec![f32::NEG_INFINITY, -1.5], vec![f32::INFINITY, 2.0]),
            Space::Discrete { n: 3 },
            Space::Tuple {
                spaces: vec![
                    Space::uniform_box(-1.0, 1.0, &[2, 2]),
                    Space::MultiDiscrete { nvec: vec![2, 5] },
                ],
            },
        ];
        for space in spaces {
            let text = serde_json::to_string(&space).unwrap();
            let back: Space = serde_json::from_str(&text).unwrap();
            assert_eq!(back, space, "{text}");
        }
        let text =
            serde_json::to_string(&Space::box_1d(vec![f32::NEG_INFINITY], vec![1.0])).unwrap();
        assert_eq!(text, r#"{"box":{"low":["-inf"],"high":[1.0],"shape":[1]}}"#);
        let e =
            serde_json::from_str::<Space>(r#"{"box":{"low":["huge"],"high":[1.0],"shape":[1]}}"#)
                .unwrap_err()
                .to_string();
        assert!(e.contains("not \"huge\""), "{e}");
    }
    use super::*;

    fn hybrid() -> Space {
        Space::Tuple {
            spaces: vec![
                Space::uniform_box(-1.0, 1.0, &[2]),
                Space::Discrete { n: 3 },
            ],
        }
    }

    #[test]
    fn flat_dims() {
        assert_eq!(Space::uniform_box(0.0, 1.0, &[4, 3]).flat_dim(), 12);
        assert_eq!(Space::Discrete { n: 5 }.flat_dim(), 1);
        assert_eq!(Space::MultiDiscrete { nvec: vec![2, 3] }.flat_dim(), 2);
        assert_eq!(hybrid().flat_dim(), 3);
    }

    #[test]
    fn check_names_the_bad_slot() {
        let s = hybrid();
        assert!(s.check(&[0.5, -0.5, 2.0]).is_ok());
        assert!(
            s.check(&[0.5, f32::NAN, 2.0])
                .unwrap_err()
                .contains("slot 1")
        );
        assert!(s.check(&[0.5, 0.5, 3.0]).unwrap_err().contains("slot 2"));
        assert!(s.check(&[0.5, 0.5, 1.5]).unwrap_err().contains("slot 2"));
        assert!(s.check(&[2.0, 0.5, 1.0]).unwrap_err().contains("outside"));
        assert!(s.check(&[0.5]).unwrap_err().contains("expected 3"));
    }

    #[test]
    fn samples_lie_in_the_space() {
        let mut rng = Rng::seed_from_u64(0);
        let spaces = [
            hybrid(),
            Space::MultiDiscrete { nvec: vec![2, 7] },
            Space::box_1d(vec![-2.0, 0.0], vec![2.0, 10.0]),
        ];
        for s in spaces {
            let mut x = vec![0.0; s.flat_dim()];
            for _ in 0..1000 {
                s.sample(&mut rng, &mut x);
                s.check(&x).unwrap();
            }
        }
    }
}
