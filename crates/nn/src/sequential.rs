//! A chain of layers, named like `torch.nn.Sequential` (`0.weight`, `2.bias`, ...).

use crate::error::Result;
use crate::layer::Layer;
use crate::param::{NamedParam, NamedParamMut, Param};
use crate::tensor::Tensor;

/// Layers applied in order; child `i`'s parameters are named `"{i}.{name}"`.
#[derive(Debug, Default)]
pub struct Sequential {
    layers: Vec<Box<dyn Layer>>,
    empty: Tensor,
}

impl Sequential {
    /// An empty chain (the identity).
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a layer.
    pub fn push(&mut self, layer: impl Layer + 'static) -> &mut Self {
        self.layers.push(Box::new(layer));
        self
    }

    /// Appends a layer that is already boxed (chosen at run time).
    pub fn push_boxed(&mut self, layer: Box<dyn Layer>) -> &mut Self {
        self.layers.push(layer);
        self
    }

    /// Builder form of [`Sequential::push`].
    pub fn with(mut self, layer: impl Layer + 'static) -> Self {
        self.layers.push(Box::new(layer));
        self
    }

    /// Number of layers.
    pub fn len(&self) -> usize {
        self.layers.len()
    }

    /// True when there are no layers.
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }

    /// The layers.
    pub fn layers(&self) -> &[Box<dyn Layer>] {
        &self.layers
    }

    /// Every trainable parameter, mutable, in `state_dict` order.
    pub fn trainable_params_mut(&mut self) -> Vec<&mut Param> {
        let mut all = Vec::new();
        self.params_mut("", &mut all);
        all.into_iter()
            .map(|(_, p)| p)
            .filter(|p| p.is_trainable())
            .collect()
    }

    /// Clears every parameter gradient.
    pub fn zero_grad(&mut self) {
        for p in self.trainable_params_mut() {
            p.zero_grad();
        }
    }
}

impl Layer for Sequential {
    fn kind(&self) -> &'static str {
        "Sequential"
    }

    /// Rejects a non-finite input with an error naming the first bad index, so
    /// a NaN from an environment or a user policy is reported at the network's
    /// entry instead of silently propagating through every layer.
    fn forward(&mut self, input: &Tensor) -> Result<&Tensor> {
        input.check_finite("Sequential input")?;
        let Some((first, rest)) = self.layers.split_first_mut() else {
            self.empty.copy_from(input);
            return Ok(&self.empty);
        };
        let mut x = first.forward(input)?;
        for layer in rest {
            x = layer.forward(x)?;
        }
        Ok(x)
    }

    fn backward(
        &mut self,
        input: &Tensor,
        grad_output: &Tensor,
        need_input_grad: bool,
    ) -> Result<&Tensor> {
        let n = self.layers.len();
        if n == 0 {
            self.empty.copy_from(grad_output);
            return Ok(&self.empty);
        }
        for i in (0..n).rev() {
            let (before, rest) = self.layers.split_at_mut(i);
            let (current, after) = rest.split_at_mut(1);
            let layer_input = if i == 0 {
                input
            } else {
                before[i - 1].output()
            };
            let grad = if i + 1 == n {
                grad_output
            } else {
                after[0].input_grad()
            };
            current[0].backward(layer_input, grad, i > 0 || need_input_grad)?;
        }
        Ok(self.layers[0].input_grad())
    }

    fn output(&self) -> &Tensor {
        self.layers.last().map_or(&self.empty, |l| l.output())
    }

    fn input_grad(&self) -> &Tensor {
        self.layers.first().map_or(&self.empty, |l| l.input_grad())
    }

    fn params<'a>(&'a self, prefix: &str, out: &mut Vec<NamedParam<'a>>) {
        for (i, layer) in self.layers.iter().enumerate() {
            layer.params(&format!("{prefix}{i}."), out);
        }
    }

    fn params_mut<'a>(&'a mut self, prefix: &str, out: &mut Vec<NamedParamMut<'a>>) {
        for (i, layer) in self.layers.iter_mut().enumerate() {
            layer.params_mut(&format!("{prefix}{i}."), out);
        }
    }

    fn set_training(&mut self, training: bool) {
        for layer in &mut self.layers {
            layer.set_training(training);
        }
    }

    fn resample_noise(&mut self, rng: &mut hlynr_rng::Rng) {
        for layer in &mut self.layers {
            layer.resample_noise(rng);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::check_layer;
    use crate::linear::Linear;
    use hlynr_rng::Rng;

    #[test]
    fn names_follow_pytorch_sequential() {
        let mut rng = Rng::seed_from_u64(0);
        let net = Sequential::new()
            .with(Linear::new(3, 4, &mut rng))
            .with(Linear::new(4, 2, &mut rng));
        let mut ps = Vec::new();
        net.params("", &mut ps);
        let names: Vec<&str> = ps.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["0.weight", "0.bias", "1.weight", "1.bias"]);
    }

    #[test]
    fn non_finite_input_is_an_error_naming_the_index() {
        let mut rng = Rng::seed_from_u64(0);
        let mut net = Sequential::new().with(Linear::new(2, 2, &mut rng));
        let x = Tensor::from_vec(&[2, 2], vec![0.0, 1.0, f32::NAN, 2.0]).unwrap();
        let err = net.forward(&x).unwrap_err().to_string();
        assert!(
            err.contains("Sequential input") && err.contains("index 2"),
            "{err}"
        );
        let x = Tensor::from_vec(&[1, 2], vec![f32::INFINITY, 0.0]).unwrap();
        assert!(net.forward(&x).is_err());
    }

    #[test]
    fn chained_gradients_match_finite_differences() {
        let mut rng = Rng::seed_from_u64(2);
        let mut net = Sequential::new()
            .with(Linear::new(4, 6, &mut rng))
            .with(Linear::new(6, 3, &mut rng));
        check_layer(&mut net, &[5, 4], &mut rng).unwrap();
    }
}
