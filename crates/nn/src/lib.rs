//! hlynr-nn: a small, fast CPU engine for the networks reinforcement learning uses.
//!
//! RL networks are small (tens of thousands of parameters) and are evaluated
//! millions of times on tiny batches, where general frameworks spend their time in
//! dispatch, allocation and scalar math rather than in arithmetic. hlynr-nn has no
//! graph and no autograd: each layer implements its own forward and backward over
//! buffers it owns and reuses, GEMMs come from the `gemm` crate, and elementwise
//! math is vectorised. Every backward pass is checked against finite differences
//! ([`gradcheck`]) and the common layers against PyTorch fixtures.
//!
//! Parameters are named and laid out as PyTorch names and lays them out, so
//! weights saved here load with `load_state_dict`.

pub mod activation;
pub mod batch_norm;
pub mod clip;
pub mod conv2d;
pub mod cosine_embedding;
pub mod distributions;
pub mod error;
pub mod gemm;
pub mod gradcheck;
pub mod helper;
pub mod init;
pub mod io;
pub mod layer;
pub mod layer_norm;
pub mod linear;
pub mod loss;
pub mod lstm;
pub mod noisy_linear;
pub mod onnx;
pub mod optim;
pub mod param;
pub mod sequential;
pub mod simd;
pub mod small_gemm;
pub mod tensor;

pub use activation::{LeakyReLU, ReLU, Sigmoid, Softplus, Tanh};
pub use batch_norm::{BatchNorm1d, BatchNorm2d};
pub use clip::{clip_grad_norm, grad_norm};
pub use conv2d::{Conv2d, Conv2dSpec, Flatten};
pub use cosine_embedding::{CosineEmbedding, EmbeddingActivation};
pub use distributions::{Categorical, DiagGaussian};
pub use error::{NnError, Result};
pub use io::{LoadReport, Loaded, SafeTensors, load_into, load_safetensors, save_safetensors};
pub use layer::Layer;
pub use layer_norm::LayerNorm;
pub use linear::Linear;
pub use loss::{huber_loss, mse_loss, quantile_huber_loss};
pub use lstm::{Lstm, LstmInputGrads, LstmSaturation};
pub use noisy_linear::NoisyLinear;
pub use optim::{Adam, AdamConfig, AdamKind, OptimizerState, ParamGroup};
pub use param::{NamedParam, NamedParamMut, Param, ParamKind};
pub use sequential::Sequential;
pub use tensor::Tensor;
