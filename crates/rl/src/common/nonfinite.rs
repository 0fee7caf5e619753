//! The non-finite guard's first line: what a learner does with NaN or
//! infinite observations before acting on them.

/// Replaces NaN and infinite values by 0 and returns how many there were.
/// The network cannot act on them, and one broken observation must not end a
/// run: the learner acts on the cleaned values and skips the update.
pub fn zero_nonfinite(values: &mut [f32]) -> u64 {
    let mut count = 0;
    for v in values.iter_mut().filter(|v| !v.is_finite()) {
        *v = 0.0;
        count += 1;
    }
    count
}

/// True when every value is finite. Reads all of them without branching (the
/// exponent bits of each, or-ed together), so it runs at memory speed over a
/// network's weights after every optimiser step.
pub fn all_finite(values: &[f32]) -> bool {
    const EXPONENT: u32 = 0x7f80_0000;
    let any_nonfinite = values.iter().fold(0u32, |acc, v| {
        acc | u32::from(v.to_bits() & EXPONENT == EXPONENT)
    });
    any_nonfinite == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_finite_finds_every_kind_of_non_finite_value() {
        assert!(all_finite(&[0.0, -1.5, f32::MAX, f32::MIN_POSITIVE / 4.0]));
        assert!(all_finite(&[]));
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -f32::NAN] {
            let mut v = vec![1.0f32; 37];
            v[29] = bad;
            assert!(!all_finite(&v), "{bad}");
        }
    }
}
