//! What a checkpoint's `state.json` holds beside the algorithm's tensors: the
//! algorithm's name and own state, the driver's state, and the fingerprint of
//! the config the run was started with.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::algorithm::{AlgorithmState, PolicyRecord};
use crate::checkpoint::{Checkpoint, CheckpointPayload, ModelTensor};
use crate::error::{Result, TrainError};
use crate::eval::{EvalScore, EvalSummary};
use crate::run_config::EarlyStop;

/// Driver state saved beside the algorithm's in every checkpoint.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainerMeta {
    /// Training wall time of all segments so far (s).
    pub elapsed_s: f64,
    /// Best evaluation so far: `(success_rate, mean_return)`.
    pub best: Option<EvalScore>,
    /// The most recent evaluation.
    pub last_eval: Option<EvalSummary>,
    /// Current curriculum stage (0 without a curriculum).
    #[serde(default)]
    pub stage: usize,
    /// The training doctor's state (rule counters and histories).
    #[serde(default)]
    pub doctor: Option<Value>,
    /// Rollbacks to `best/` the doctor has made.
    #[serde(default)]
    pub rollbacks: u32,
    /// Where `run.early_stop` stands.
    #[serde(default, skip_serializing_if = "Plateau::is_empty")]
    pub plateau: Plateau,
}

/// The evaluations since the last improvement (`run.early_stop`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plateau {
    /// The score of the last improvement.
    pub reference: Option<EvalScore>,
    /// Env steps of that evaluation.
    #[serde(default)]
    pub reference_step: u64,
    /// Evaluations since, none of which improved on it.
    pub evaluations: u32,
}

impl Plateau {
    fn is_empty(&self) -> bool {
        *self == Plateau::default()
    }

    /// Counts an evaluation of `score` at `step`; returns whether
    /// `early_stop` now ends the run.
    pub fn observe(&mut self, score: EvalScore, step: u64, early_stop: &EarlyStop) -> bool {
        let improved = self
            .reference
            .is_none_or(|r| score.improves_on(&r, early_stop.min_delta));
        if improved {
            *self = Plateau {
                reference: Some(score),
                reference_step: step,
                evaluations: 0,
            };
        } else {
            self.evaluations += 1;
        }
        self.evaluations >= early_stop.patience
    }
}

/// Layout version of `state.json`. Version 1 held PPO's state under `ppo`;
/// version 2 holds any algorithm's under `algorithm_state`, named by
/// `algorithm`.
pub const TRAINER_STATE_VERSION: u32 = 2;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SavedState {
    version: u32,
    /// Fingerprint of the resolved config the run was started with.
    config_fingerprint: String,
    /// The algorithm's name (`ppo`).
    algorithm: String,
    /// The algorithm's own state ([`AlgorithmState::meta`]).
    algorithm_state: Value,
    /// What the policy needs to load without an env.
    policy: PolicyRecord,
    trainer: TrainerMeta,
}

/// A checkpoint's content split into its parts.
#[derive(Debug)]
pub struct SavedRun {
    /// The algorithm's name.
    pub algorithm: String,
    /// The algorithm's state.
    pub state: AlgorithmState,
    /// The policy's spaces, preprocessing and network description.
    pub policy: PolicyRecord,
    /// The driver's state.
    pub trainer: TrainerMeta,
    /// Fingerprint of the config the run was started with.
    pub config_fingerprint: String,
}

/// The checkpoint payload of `state` and `policy` (algorithm `algorithm`)
/// and the driver's.
pub fn payload_of(
    algorithm: &str,
    state: AlgorithmState,
    policy: PolicyRecord,
    trainer: &TrainerMeta,
    fingerprint: &str,
) -> Result<CheckpointPayload> {
    let saved = SavedState {
        version: TRAINER_STATE_VERSION,
        config_fingerprint: fingerprint.to_string(),
        algorithm: algorithm.to_string(),
        algorithm_state: state.meta,
        policy,
        trainer: trainer.clone(),
    };
    let state_json = serde_json::to_value(&saved)
        .map_err(|e| TrainError::invalid("checkpoint state", e.to_string()))?;
    Ok(CheckpointPayload {
        model: state
            .weights
            .into_iter()
            .map(|(k, t)| (k, ModelTensor::Value(t)))
            .collect(),
        optimizer: state.optimizer,
        state: state_json,
    })
}

/// Splits a checkpoint into the algorithm's state and the driver's.
pub fn saved_run(checkpoint: &Checkpoint) -> Result<SavedRun> {
    let context = || format!("checkpoint {}", checkpoint.path.display());
    let state = &checkpoint.payload.state;
    let version = state.get("version").and_then(Value::as_u64);
    if version != Some(u64::from(TRAINER_STATE_VERSION)) {
        let found = version.map_or_else(|| "no version".to_string(), |v| format!("version {v}"));
        return Err(TrainError::invalid(
            context(),
            format!(
                "its state.json has {found}; this hlynr reads version {TRAINER_STATE_VERSION} \
                 (checkpoints written before run-level `total_timesteps`/`n_envs` are version 1: \
                 train the run again with this version)"
            ),
        ));
    }
    let saved: SavedState = serde_json::from_value(state.clone())
        .map_err(|e| TrainError::invalid(context(), format!("state: {e}")))?;
    Ok(SavedRun {
        algorithm: saved.algorithm,
        state: AlgorithmState {
            weights: checkpoint
                .payload
                .model
                .iter()
                .map(|(k, t)| (k.clone(), t.tensor().clone()))
                .collect(),
            optimizer: checkpoint.payload.optimizer.clone(),
            meta: saved.algorithm_state,
        },
        policy: saved.policy,
        trainer: saved.trainer,
        config_fingerprint: saved.config_fingerprint,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkpoint(state: Value) -> Checkpoint {
        Checkpoint {
            path: "run/checkpoints/step-64".into(),
            env_steps: 64,
            payload: CheckpointPayload {
                model: Vec::new(),
                optimizer: hlynr_nn::OptimizerState {
                    tensors: Default::default(),
                    scalars: "{}".into(),
                },
                state,
            },
            resume_files: Default::default(),
        }
    }

    #[test]
    fn the_algorithm_state_round_trips_and_older_layouts_are_named() {
        let meta = TrainerMeta {
            stage: 2,
            rollbacks: 1,
            ..TrainerMeta::default()
        };
        let state = AlgorithmState {
            weights: Default::default(),
            optimizer: hlynr_nn::OptimizerState {
                tensors: Default::default(),
                scalars: "{}".into(),
            },
            meta: serde_json::json!({"counter": 7}),
        };
        let policy = PolicyRecord {
            observation_space: hlynr_env::Space::uniform_box(-1.0, 1.0, &[3]),
            action_space: hlynr_env::Space::Discrete { n: 2 },
            frame_stack: None,
            obs_normalizer: None,
            network: Value::Null,
        };
        let payload =
            payload_of("hill_climb", state.clone(), policy.clone(), &meta, "abc").unwrap();
        let saved = saved_run(&checkpoint(payload.state)).unwrap();
        assert_eq!(saved.algorithm, "hill_climb");
        assert_eq!(saved.policy, policy);
        assert_eq!(saved.state, state);
        assert_eq!(saved.trainer, meta);
        assert_eq!(saved.config_fingerprint, "abc");

        // A state without its policy record cannot be loaded without an env.
        let mut bare = payload_of("hill_climb", state, policy, &meta, "abc")
            .unwrap()
            .state;
        bare.as_object_mut().unwrap().remove("policy");
        let e = saved_run(&checkpoint(bare)).unwrap_err().to_string();
        assert!(e.contains("missing field `policy`"), "{e}");

        let v1 = serde_json::json!({"version": 1, "config_fingerprint": "abc", "ppo": {}, "trainer": {}});
        let e = saved_run(&checkpoint(v1)).unwrap_err().to_string();
        assert!(
            e.starts_with("checkpoint run/checkpoints/step-64: its state.json has version 1; this hlynr reads version 2"),
            "{e}"
        );
    }

    #[test]
    fn the_plateau_counts_evaluations_since_the_last_improvement() {
        let e = EarlyStop {
            patience: 2,
            min_delta: 1.0,
        };
        let s = |m: f64| EvalScore {
            stage: 0,
            success_rate: None,
            mean_return: m,
        };
        let mut p = Plateau::default();
        assert!(
            !p.observe(s(10.0), 100, &e),
            "the first evaluation is the reference"
        );
        assert!(!p.observe(s(10.5), 200, &e), "below min_delta");
        assert!(
            !p.observe(s(11.0), 300, &e),
            "a gain of 1.0 resets the count"
        );
        assert_eq!((p.reference_step, p.evaluations), (300, 0));
        assert!(!p.observe(s(5.0), 400, &e));
        assert!(
            p.observe(s(11.9), 500, &e),
            "two without a gain end the run"
        );
        assert_eq!(p.reference.map(|r| r.mean_return), Some(11.0));
    }
}
