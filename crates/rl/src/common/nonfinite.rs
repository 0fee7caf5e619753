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
