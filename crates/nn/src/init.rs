//! Weight initialisation.

use hlynr_rng::Rng;

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
