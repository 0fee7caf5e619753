//! The error of a training run, shared by the trainer, the algorithms it
//! drives and model loading.

use hlynr_env::EnvError;
use hlynr_env::config::ConfigError;
use thiserror::Error;

use crate::eval::EvalError;
use crate::policy::PolicyError;
use crate::run::RunError;

/// Errors of a training run.
#[derive(Debug, Error)]
pub enum TrainError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The algorithm failed (its own error type, e.g. `PpoError`).
    #[error(transparent)]
    Algorithm(Box<dyn std::error::Error + Send + Sync>),
    /// The run directory, metrics or checkpoints failed.
    #[error(transparent)]
    Run(#[from] RunError),
    /// Evaluation failed.
    #[error(transparent)]
    Eval(#[from] EvalError),
    /// An environment failed.
    #[error(transparent)]
    Env(#[from] EnvError),
    /// Anything else, with its context.
    #[error("{context}: {message}")]
    Invalid { context: String, message: String },
}

impl TrainError {
    /// Shorthand for [`TrainError::Invalid`].
    pub fn invalid(context: impl Into<String>, message: impl Into<String>) -> Self {
        TrainError::Invalid {
            context: context.into(),
            message: message.into(),
        }
    }
}

/// Result alias of a training run.
pub type Result<T> = std::result::Result<T, TrainError>;

/// A network error is the algorithm's.
impl From<PolicyError> for TrainError {
    fn from(e: PolicyError) -> Self {
        TrainError::Algorithm(Box::new(e))
    }
}
