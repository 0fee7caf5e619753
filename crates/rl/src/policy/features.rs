//! The features extractor: how an observation's two lanes (values and bytes,
//! see [`hlynr_env::space`]) become the one feature vector the trunks read.
//! Actor-critics and Q-networks share it.
//!
//! ```text
//! bytes --/255--> [flatten | CNN] --+
//!                                   +--> features = [byte features, values]
//! values ---------------------------+
//! ```
//!
//! - `flatten` (the default): bytes scaled to `[0, 1]` and appended as they
//!   are. With no bytes this is the identity, so vector observations reach
//!   the trunk untouched. Images (byte boxes of two or more axes) are refused:
//!   they need the CNN.
//! - `cnn`: a stack of `Conv2d + ReLU` over the byte boxes (a `[C, H, W]`
//!   frame, or `[k, C, H, W]` or `k` such boxes behind a frame stack, read
//!   as `k*C` channels),
//!   flattened, then `Linear + ReLU` to `features_dim`; the value lane (speed,
//!   gear, ...) is appended unchanged. The defaults are the Atari network of
//!   Mnih et al. (2015): 32, 64, 64 channels, kernels 8, 4, 3, strides 4, 2,
//!   1, 512 features.
//!
//! Bytes are scaled to `f32` only here, per batch, in a scratch tensor:
//! everything that stores observations (rollouts, replay, frame stacks) keeps
//! them as bytes. Parameters are named as Stable-Baselines3's `NatureCNN`
//! under `features_extractor.` (`features_extractor.cnn.0.weight`,
//! `features_extractor.linear.0.bias`).

use hlynr_env::Space;
use hlynr_env::config::{ConfigError, Interval, Validate, ensure_range, join_path};
use hlynr_nn::{
    Conv2d, Conv2dSpec, Flatten, Layer, Linear, NamedParam, NamedParamMut, ReLU, Sequential,
    Tensor, init,
};
use hlynr_rng::Rng;
use serde::{Deserialize, Serialize};

use super::PolicyError;

/// The `policy.features` section: `{type: flatten}` or `{type: cnn, ...}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FeaturesConfig {
    /// Values as they are, bytes scaled to `[0, 1]` and appended.
    #[default]
    Flatten,
    /// A convolutional network over the byte box.
    Cnn(CnnConfig),
}

/// [`FeaturesConfig`] as read, keyed by its `type`.
#[derive(Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum FeaturesSpec {
    Flatten {},
    Cnn(CnnConfig),
}

impl<'de> Deserialize<'de> for FeaturesConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(d)?;
        let spec: FeaturesSpec = hlynr_env::config::from_typed_mapping(
            value,
            "a features extractor",
            &["flatten", "cnn"],
        )?;
        Ok(match spec {
            FeaturesSpec::Flatten {} => FeaturesConfig::Flatten,
            FeaturesSpec::Cnn(c) => FeaturesConfig::Cnn(c),
        })
    }
}

impl FeaturesConfig {
    /// True for the default, which configs leave unwritten.
    pub fn is_flatten(&self) -> bool {
        *self == FeaturesConfig::Flatten
    }
}

/// Layers of the `cnn` extractor (one entry per convolution in each list).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CnnConfig {
    /// Output channels of each convolution; default `[32, 64, 64]`.
    #[serde(default = "default_channels")]
    pub channels: Vec<usize>,
    /// Square kernel size of each convolution; default `[8, 4, 3]`.
    #[serde(default = "default_kernels")]
    pub kernels: Vec<usize>,
    /// Stride of each convolution; default `[4, 2, 1]`.
    #[serde(default = "default_strides")]
    pub strides: Vec<usize>,
    /// Width of the linear layer after the convolutions; default 512.
    #[serde(default = "default_features_dim")]
    pub features_dim: usize,
}

fn default_channels() -> Vec<usize> {
    vec![32, 64, 64]
}
fn default_kernels() -> Vec<usize> {
    vec![8, 4, 3]
}
fn default_strides() -> Vec<usize> {
    vec![4, 2, 1]
}
fn default_features_dim() -> usize {
    512
}

impl Default for CnnConfig {
    fn default() -> Self {
        Self {
            channels: default_channels(),
            kernels: default_kernels(),
            strides: default_strides(),
            features_dim: default_features_dim(),
        }
    }
}

impl Validate for FeaturesConfig {
    fn validate(&self, path: &str) -> Result<(), ConfigError> {
        let FeaturesConfig::Cnn(cnn) = self else {
            return Ok(());
        };
        let layers = cnn.channels.len();
        if layers == 0 || layers > 8 {
            return Err(ConfigError::invalid(
                join_path(path, "channels"),
                format!("needs 1 to 8 convolutions, got {layers}"),
            ));
        }
        for (name, list) in [("kernels", &cnn.kernels), ("strides", &cnn.strides)] {
            if list.len() != layers {
                return Err(ConfigError::invalid(
                    join_path(path, name),
                    format!(
                        "has {} entries; `channels` has {layers} (one per convolution)",
                        list.len()
                    ),
                ));
            }
        }
        for (name, list, max) in [
            ("channels", &cnn.channels, 4096.0),
            ("kernels", &cnn.kernels, 64.0),
            ("strides", &cnn.strides, 64.0),
        ] {
            for (i, &v) in list.iter().enumerate() {
                ensure_range(
                    &format!("{}[{i}]", join_path(path, name)),
                    v as f64,
                    Interval::closed(1.0, max),
                )?;
            }
        }
        ensure_range(
            &join_path(path, "features_dim"),
            cnn.features_dim as f64,
            Interval::closed(1.0, 65536.0),
        )?;
        Ok(())
    }
}

/// The convolutional part of a `cnn` extractor.
#[derive(Debug)]
struct Cnn {
    /// `[channels, height, width]` of one observation's bytes.
    image: [usize; 3],
    features_dim: usize,
    conv: Sequential,
    linear: Sequential,
    grad_linear: Tensor,
}

/// The `[channels, height, width]` image the byte lane holds: the byte boxes
/// in lane order, each `[.., height, width]` (leading axes are channels), as
/// one stack of channels. `None` without bytes or when the frames differ in
/// height or width.
pub(super) fn byte_image(shapes: &[Vec<usize>]) -> Option<[usize; 3]> {
    let mut image: Option<[usize; 3]> = None;
    for shape in shapes {
        let (lead, hw) = shape.split_at(shape.len().checked_sub(2)?);
        let channels: usize = lead.iter().product();
        image = match image {
            None => Some([channels, hw[0], hw[1]]),
            Some([c, h, w]) if [h, w] == hw => Some([c + channels, h, w]),
            Some(_) => return None,
        };
    }
    image
}

/// Observation lanes to features (see the module docs).
#[derive(Debug)]
pub struct FeaturesExtractor {
    values_dim: usize,
    bytes_dim: usize,
    cnn: Option<Cnn>,
    /// The bytes of the batch scaled to `[0, 1]`: `[B, bytes]` or `[B, C, H, W]`.
    scaled: Tensor,
    out: Tensor,
}

impl FeaturesExtractor {
    /// The extractor `config` asks for, for observations of `space`.
    /// `ortho_init` gives hidden layers orthogonal weights of gain `sqrt(2)`
    /// and zero biases, as the rest of the network.
    pub fn new(
        space: &Space,
        config: &FeaturesConfig,
        ortho_init: bool,
        rng: &mut Rng,
    ) -> Result<Self, PolicyError> {
        config.validate("policy.features")?;
        let (values_dim, bytes_dim) = (space.flat_dim(), space.byte_dim());
        let cnn = match config {
            FeaturesConfig::Flatten => {
                let shapes = space.byte_shapes();
                if shapes.iter().any(|s| s.len() >= 2) {
                    return Err(PolicyError::invalid(
                        "policy.features",
                        format!(
                            "the observation holds images (byte boxes {shapes:?}), which an MLP cannot read well from flattened pixels; set `features: {{type: cnn}}`"
                        ),
                    ));
                }
                None
            }
            FeaturesConfig::Cnn(c) => Some(Self::cnn(space, c, ortho_init, rng)?),
        };
        Ok(Self {
            values_dim,
            bytes_dim,
            cnn,
            scaled: Tensor::default(),
            out: Tensor::default(),
        })
    }

    fn cnn(
        space: &Space,
        config: &CnnConfig,
        ortho_init: bool,
        rng: &mut Rng,
    ) -> Result<Cnn, PolicyError> {
        let shapes = space.byte_shapes();
        let image = byte_image(&shapes).ok_or_else(|| {
            PolicyError::invalid(
                "policy.features",
                format!(
                    "`type: cnn` needs byte boxes of shape [channels, height, width] (or [height, width]) that share height and width; this observation has byte boxes {shapes:?}"
                ),
            )
        })?;
        let gain = std::f32::consts::SQRT_2;
        let mut conv = Sequential::new();
        let (mut channels, mut height, mut width) = (image[0], image[1], image[2]);
        for ((&out, &k), &s) in config
            .channels
            .iter()
            .zip(&config.kernels)
            .zip(&config.strides)
        {
            let spec = Conv2dSpec::new(channels, out, k, s);
            (height, width) = spec.output_size(height, width).map_err(|e| {
                PolicyError::invalid(
                    "policy.features",
                    format!("the {image:?} frames are too small for the convolutions: {e}"),
                )
            })?;
            let mut layer = Conv2d::new(spec, rng)?;
            if ortho_init {
                init::orthogonal(&mut layer.weight.value, gain, rng)?;
                if let Some(b) = &mut layer.bias {
                    b.value.fill_zero();
                }
            }
            conv.push(layer);
            conv.push(ReLU::new());
            channels = out;
        }
        conv.push(Flatten::new());
        let mut lin = Linear::new(channels * height * width, config.features_dim, rng);
        if ortho_init {
            super::mlp::orthogonal_linear(&mut lin, gain, rng)?;
        }
        let mut linear = Sequential::new();
        linear.push(lin);
        linear.push(ReLU::new());
        Ok(Cnn {
            image,
            features_dim: config.features_dim,
            conv,
            linear,
            grad_linear: Tensor::default(),
        })
    }

    /// True when the features are the value lane itself (no bytes, no
    /// layers): callers use the observations directly.
    pub fn is_identity(&self) -> bool {
        self.cnn.is_none() && self.bytes_dim == 0
    }

    /// True when the extractor has parameters to train.
    pub fn has_params(&self) -> bool {
        self.cnn.is_some()
    }

    /// Width of the byte lane it reads.
    pub fn bytes_dim(&self) -> usize {
        self.bytes_dim
    }

    /// Width of the features.
    pub fn out_dim(&self) -> usize {
        let bytes_out = match &self.cnn {
            Some(c) => c.features_dim,
            None => self.bytes_dim,
        };
        bytes_out + self.values_dim
    }

    /// Features of `B` observations: the values themselves when the
    /// extractor is the identity, else [`FeaturesExtractor::forward`].
    pub fn extract<'a>(
        &'a mut self,
        values: &'a Tensor,
        bytes: &[u8],
    ) -> Result<&'a Tensor, PolicyError> {
        if self.is_identity() {
            Ok(values)
        } else {
            self.forward(values, bytes)
        }
    }

    /// The features of the last [`FeaturesExtractor::extract`] of `values`.
    pub fn extracted<'a>(&'a self, values: &'a Tensor) -> &'a Tensor {
        if self.is_identity() {
            values
        } else {
            &self.out
        }
    }

    /// Features `[B, out_dim]` of `B` observations: values `[B, values_dim]`
    /// and bytes `[B * bytes_dim]`.
    pub fn forward(&mut self, values: &Tensor, bytes: &[u8]) -> Result<&Tensor, PolicyError> {
        let b = values.expect_matrix("observation values", self.values_dim)?;
        if bytes.len() != b * self.bytes_dim {
            return Err(PolicyError::invalid(
                "observation bytes",
                format!(
                    "{} bytes for {b} observations of {} bytes",
                    bytes.len(),
                    self.bytes_dim
                ),
            ));
        }
        match &self.cnn {
            Some(c) => self.scaled.resize(&[b, c.image[0], c.image[1], c.image[2]]),
            None => self.scaled.resize(&[b, self.bytes_dim]),
        }
        for (s, &v) in self.scaled.data_mut().iter_mut().zip(bytes) {
            *s = f32::from(v) / 255.0;
        }
        let byte_features: &Tensor = match &mut self.cnn {
            Some(c) => {
                let flat = c.conv.forward(&self.scaled)?;
                c.linear.forward(flat)?
            }
            None => &self.scaled,
        };
        let (bw, vd) = (byte_features.cols(), self.values_dim);
        let width = bw + vd;
        self.out.resize(&[b, width]);
        let (f, v) = (byte_features.data(), values.data());
        for (i, row) in self
            .out
            .data_mut()
            .chunks_exact_mut(width.max(1))
            .enumerate()
        {
            row[..bw].copy_from_slice(&f[i * bw..(i + 1) * bw]);
            row[bw..].copy_from_slice(&v[i * vd..(i + 1) * vd]);
        }
        Ok(&self.out)
    }

    /// Adds the parameter gradients of the last [`FeaturesExtractor::forward`]
    /// given the gradient of its output, `[B, out_dim]`. Inputs get no
    /// gradient (they are data).
    pub fn backward(&mut self, grad_out: &Tensor) -> Result<(), PolicyError> {
        let Some(c) = &mut self.cnn else {
            return Ok(());
        };
        let b = grad_out.expect_matrix("features gradient", self.out.cols())?;
        let fd = c.features_dim;
        c.grad_linear.resize(&[b, fd]);
        for (dst, src) in c
            .grad_linear
            .data_mut()
            .chunks_exact_mut(fd)
            .zip(grad_out.data().chunks_exact(self.out.cols()))
        {
            dst.copy_from_slice(&src[..fd]);
        }
        let g = c.linear.backward(c.conv.output(), &c.grad_linear, true)?;
        c.conv.backward(&self.scaled, g, false)?;
        Ok(())
    }

    /// Parameters with their PyTorch names.
    pub fn params<'a>(&'a self, out: &mut Vec<NamedParam<'a>>) {
        if let Some(c) = &self.cnn {
            c.conv.params("features_extractor.cnn.", out);
            c.linear.params("features_extractor.linear.", out);
        }
    }

    /// Mutable counterpart of [`FeaturesExtractor::params`].
    pub fn params_mut<'a>(&'a mut self, out: &mut Vec<NamedParamMut<'a>>) {
        if let Some(c) = &mut self.cnn {
            c.conv.params_mut("features_extractor.cnn.", out);
            c.linear.params_mut("features_extractor.linear.", out);
        }
    }
}
