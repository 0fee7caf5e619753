//! Errors of the engine: every one names the tensor or layer and the shapes involved.

use thiserror::Error;

/// Everything that can go wrong in hlynr-nn.
#[derive(Debug, Error)]
pub enum NnError {
    /// An input or buffer had the wrong shape.
    #[error("{context}: expected shape {expected:?}, got {actual:?}")]
    Shape {
        context: String,
        expected: Vec<usize>,
        actual: Vec<usize>,
    },
    /// Data length does not match the product of the shape.
    #[error("{context}: shape {shape:?} needs {expected} values, got {actual}")]
    Length {
        context: String,
        shape: Vec<usize>,
        expected: usize,
        actual: usize,
    },
    /// A NaN or infinity where finite numbers are required.
    #[error("{context}: non-finite value {value} at flat index {index}")]
    NonFinite {
        context: String,
        index: usize,
        value: f32,
    },
    /// A configuration value outside its valid range.
    #[error("{context}: {message}")]
    Invalid { context: String, message: String },
    /// Problems reading or writing a weights file.
    #[error("{path}: {message}")]
    Io { path: String, message: String },
}

/// Result alias for the engine.
pub type Result<T> = std::result::Result<T, NnError>;

impl NnError {
    /// Shorthand for a shape mismatch.
    pub fn shape(context: impl Into<String>, expected: &[usize], actual: &[usize]) -> Self {
        NnError::Shape {
            context: context.into(),
            expected: expected.to_vec(),
            actual: actual.to_vec(),
        }
    }

    /// Shorthand for an invalid argument.
    pub fn invalid(context: impl Into<String>, message: impl Into<String>) -> Self {
        NnError::Invalid {
            context: context.into(),
            message: message.into(),
        }
    }
}
