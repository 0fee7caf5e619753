//! A run's deterministic policy as an ONNX model (`hlynr export --format
//! onnx`), for runtimes outside hlynr (onnxruntime, TensorRT, game engines).
//!
//! The graph is the whole path from the network's observation to the
//! environment's action, as `hlynr eval` runs it deterministically:
//!
//! ```text
//! obs (float [N, D]) --normaliser, frozen--+
//!                                          +--> network --> action (float [N, A])
//! obs_bytes (uint8 [N, B]) ----------------+       ^  \
//!                       h_in, c_in ([N, H]) -------+   +--> h_out, c_out
//! ```
//!
//! - `obs`: the observation values the network takes (with `env.frame_stack`,
//!   the last `k` frames side by side, oldest first); present when the
//!   observation has values. The run's observation normaliser is inside
//!   the graph, computed in `double` as hlynr computes it.
//! - `obs_bytes`: the byte lane (camera frames), when the observation has one.
//! - `h_in`, `c_in` / `h_out`, `c_out`: the actor LSTM's state of a recurrent
//!   policy: zeros at the start of an episode, then each step's outputs fed
//!   back as the next step's inputs.
//! - `action`: the flat action hlynr sends to the environment: a `Box` as
//!   the (clipped or tanh-squashed) Gaussian mean, each categorical as the
//!   index of its most likely choice, as a float, in the action space's
//!   order; for the DQN family the greedy action's index.
//! - `q_values` (DQN family): `Q(s, a)` of every action, the mean over the
//!   quantiles of a distributional network (an IQN's policy fractions are
//!   fixed midpoints, so its quantile embedding is a constant of the graph);
//!   noisy layers act on their means, as in evaluation.
//!
//! The model's metadata carries the spaces (JSON), the frame stack, the
//! algorithm and the checkpoint's env steps.

use hlynr_nn::onnx::{Dim, ElemType, OnnxGraph};

use crate::error::{Result, TrainError};
use crate::policy::PolicyError;
use crate::policy::onnx::{OnnxLstmState, OnnxObs, actor_critic_actor, q_network_greedy};
use crate::policy::{QNetwork, QOutputs};
use crate::trainer::LoadedModel;

/// The batch axis's name in the graph's inputs and outputs.
const BATCH: &str = "batch";

/// An exported model: its bytes and a description of its inputs and outputs.
#[derive(Clone, Debug)]
pub struct OnnxModel {
    /// The serialised `ModelProto`.
    pub bytes: Vec<u8>,
    /// One line per input and output: name, type and shape, meaning.
    pub signature: Vec<String>,
}

/// Records the inputs and outputs of a graph as they are declared.
struct Signature {
    graph: OnnxGraph,
    lines: Vec<String>,
}

impl Signature {
    fn dims(width: usize) -> [Dim; 2] {
        [Dim::Named(BATCH.into()), Dim::Fixed(width)]
    }

    fn input(&mut self, name: &str, ty: ElemType, width: usize, doc: &str) -> Built<String> {
        self.lines.push(format!(
            "input  {name}: {} [{BATCH}, {width}]  {doc}",
            ty.name()
        ));
        Ok(self.graph.input(name, ty, &Self::dims(width), doc)?)
    }

    fn output(&mut self, value: &str, name: &str, width: usize, doc: &str) -> Built<()> {
        let ty = ElemType::F32;
        self.lines.push(format!(
            "output {name}: {} [{BATCH}, {width}]  {doc}",
            ty.name()
        ));
        Ok(self
            .graph
            .output(value, name, ty, &Self::dims(width), doc)?)
    }
}

/// What building the graph can fail with.
type Built<T> = std::result::Result<T, PolicyError>;

/// The deterministic policy of `model` as an ONNX model (see the module docs).
pub fn export_onnx(model: &LoadedModel) -> Result<OnnxModel> {
    let record = &model.record;
    record.check()?;
    let mut sig = Signature {
        graph: OnnxGraph::new("hlynr_policy"),
        lines: Vec::new(),
    };
    let built = match model.algorithm.as_str() {
        "ppo" => {
            let config = crate::ppo::algorithm::record_policy_config(record)?;
            actor_critic_graph(&mut sig, model, &config)
        }
        "dqn" => {
            let (mut q, outputs) = crate::dqn::network_from_record(record, &model.weights)?;
            q_network_graph(&mut sig, model, &mut q, &outputs)
        }
        other => {
            return Err(TrainError::invalid(
                "export --format onnx",
                format!("cannot export a policy of algorithm `{other}` (known: ppo, dqn)"),
            ));
        }
    };
    built.map_err(|e| TrainError::invalid("export --format onnx", e.to_string()))?;
    let json = |s: &hlynr_env::Space| serde_json::to_string(s).unwrap_or_default();
    let metadata = [
        ("hlynr.algorithm", model.algorithm.clone()),
        ("hlynr.env_steps", model.env_steps.to_string()),
        ("hlynr.observation_space", json(&record.observation_space)),
        ("hlynr.action_space", json(&record.action_space)),
        (
            "hlynr.frame_stack",
            record.frame_stack.map_or("none".into(), |k| k.to_string()),
        ),
    ];
    let bytes = sig.graph.to_bytes(
        env!("CARGO_PKG_VERSION"),
        "the deterministic policy of an hlynr run: observation in, environment action out",
        &metadata,
    );
    Ok(OnnxModel {
        bytes,
        signature: sig.lines,
    })
}

/// Declares the observation inputs of `model` (`obs` through the frozen
/// normaliser when the run has one, `obs_bytes`) and returns the values the
/// network reads.
fn observation_inputs(
    sig: &mut Signature,
    model: &LoadedModel,
) -> Built<(Option<String>, Option<String>)> {
    let record = &model.record;
    let space = &record.observation_space;
    let (values_dim, bytes_dim) = (space.flat_dim(), space.byte_dim());
    let values = if values_dim > 0 {
        let raw = sig.input(
            "obs",
            ElemType::F32,
            values_dim,
            "observation values, raw (the run's normaliser is inside the model)",
        )?;
        Some(match &record.obs_normalizer {
            Some(n) => normalise(&mut sig.graph, &raw, n)?,
            None => raw,
        })
    } else {
        None
    };
    let bytes = if bytes_dim > 0 {
        Some(sig.input(
            "obs_bytes",
            ElemType::U8,
            bytes_dim,
            "observation bytes (frames)",
        )?)
    } else {
        None
    };
    Ok((values, bytes))
}

fn actor_critic_graph(
    sig: &mut Signature,
    model: &LoadedModel,
    config: &crate::policy::PolicyConfig,
) -> Built<()> {
    let record = &model.record;
    let (values, bytes) = observation_inputs(sig, model)?;
    let state = match config.recurrent_hidden_size() {
        Some(h) => Some(OnnxLstmState {
            h: sig.input(
                "h_in",
                ElemType::F32,
                h,
                "actor LSTM h: zeros at an episode's start, then h_out",
            )?,
            c: sig.input(
                "c_in",
                ElemType::F32,
                h,
                "actor LSTM c: zeros at an episode's start, then c_out",
            )?,
        }),
        None => None,
    };
    let obs = OnnxObs {
        values: values.as_deref(),
        bytes: bytes.as_deref(),
    };
    let (action, next) = actor_critic_actor(
        &mut sig.graph,
        &record.observation_space,
        &record.action_space,
        config,
        &model.weights,
        obs,
        state.as_ref(),
    )?;
    let act_dim = record.action_space.flat_dim();
    sig.output(
        &action,
        "action",
        act_dim,
        "the action sent to the environment",
    )?;
    if let (Some(next), Some(h)) = (next, config.recurrent_hidden_size()) {
        sig.output(&next.h, "h_out", h, "the LSTM h to feed back as h_in")?;
        sig.output(&next.c, "c_out", h, "the LSTM c to feed back as c_in")?;
    }
    Ok(())
}

fn q_network_graph(
    sig: &mut Signature,
    model: &LoadedModel,
    q: &mut QNetwork,
    outputs: &QOutputs,
) -> Built<()> {
    let (values, bytes) = observation_inputs(sig, model)?;
    let obs = OnnxObs {
        values: values.as_deref(),
        bytes: bytes.as_deref(),
    };
    let (action, q_values) = q_network_greedy(
        &mut sig.graph,
        &model.record.observation_space,
        q,
        outputs,
        &model.weights,
        obs,
    )?;
    sig.output(
        &action,
        "action",
        1,
        "the greedy action's index, as a float",
    )?;
    sig.output(
        &q_values,
        "q_values",
        q.n_actions(),
        "Q(s, a) of every action (the mean over quantiles of a distributional network)",
    )?;
    Ok(())
}

/// `clip((x - mean) / sqrt(var + eps), -clip, clip)` in `double`, as
/// [`hlynr_env::ObsNormalizer::normalize`] computes it, back to `float`.
fn normalise(g: &mut OnnxGraph, x: &str, n: &hlynr_env::ObsNormalizer) -> Built<String> {
    let dim = n.dim();
    let stats = n.stats();
    let std: Vec<f64> = stats
        .var()
        .iter()
        .map(|v| (v + n.epsilon()).sqrt())
        .collect();
    let mean = g.const_f64("obs_mean", &[dim], stats.mean())?;
    let std = g.const_f64("obs_std", &[dim], &std)?;
    let clip = f64::from(n.clip_obs());
    let lo = g.const_f64("obs_clip_low", &[], &[-clip])?;
    let hi = g.const_f64("obs_clip_high", &[], &[clip])?;
    let x64 = g.cast(x, ElemType::F64);
    let centred = g.op("Sub", &[&x64, &mean], &[]);
    let z = g.op("Div", &[&centred, &std], &[]);
    let upper = g.op("Min", &[&z, &hi], &[]);
    let clipped = g.op("Max", &[&upper, &lo], &[]);
    Ok(g.cast(&clipped, ElemType::F32))
}
