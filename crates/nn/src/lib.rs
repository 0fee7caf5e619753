//! hlynr-nn: a small, fast CPU engine for the networks reinforcement learning uses.
//!
//! RL networks are small (tens of thousands of parameters) and are evaluated
//! millions of times on tiny batches, where general frameworks spend their time in
//! dispatch, allocation and scalar math rather than in arithmetic. hlynr-nn has no
//! graph and no autograd: each layer implements its own forward and backward over
//! buffers it owns and reuses, GEMMs come from `matrixmultiply`, and elementwise
//! math is vectorised. Every backward pass is checked against finite differences
//! ([`gradcheck`]) and the common layers against PyTorch fixtures.
//!
//! Parameters are named and laid out as PyTorch names and lays them out, so
//! weights saved here load with `load_state_dict`.

pub mod error;
pub mod gemm;
pub mod gradcheck;
pub mod init;
pub mod layer;
pub mod linear;
pub mod param;
pub mod sequential;
pub mod tensor;

pub use error::{NnError, Result};
pub use layer::Layer;
pub use linear::Linear;
pub use param::{NamedParam, NamedParamMut, Param, ParamKind};
pub use sequential::Sequential;
pub use tensor::Tensor;
