//! Environment errors.

use thiserror::Error;

/// Everything that can go wrong when building or stepping environments.
#[derive(Debug, Error)]
pub enum EnvError {
    /// An action outside the action space or not finite.
    #[error("env {env_index}: invalid action: {message}")]
    InvalidAction { env_index: usize, message: String },
    /// A buffer or batch with the wrong size.
    #[error("{context}: expected {expected} values, got {actual}")]
    Shape {
        context: String,
        expected: usize,
        actual: usize,
    },
    /// A constructor or configuration argument out of range.
    #[error("{context}: {message}")]
    Invalid { context: String, message: String },
    /// The environment itself failed: a simulator fault, a dropped
    /// connection to a remote env.
    #[error("{context} failed: {message}")]
    Failed { context: String, message: String },
    /// A saved state that does not fit the environment it is loaded into.
    #[error("cannot restore {context} state: {message}")]
    State { context: String, message: String },
}

impl EnvError {
    /// Shorthand for an invalid argument.
    pub fn invalid(context: impl Into<String>, message: impl Into<String>) -> Self {
        EnvError::Invalid {
            context: context.into(),
            message: message.into(),
        }
    }

    /// Shorthand for an environment failure.
    pub fn failed(context: impl Into<String>, message: impl std::fmt::Display) -> Self {
        EnvError::Failed {
            context: context.into(),
            message: message.to_string(),
        }
    }

    /// Shorthand for a state that cannot be restored.
    pub fn state(context: impl Into<String>, message: impl std::fmt::Display) -> Self {
        EnvError::State {
            context: context.into(),
            message: message.to_string(),
        }
    }
}

/// Result alias for environment operations.
pub type Result<T> = std::result::Result<T, EnvError>;
