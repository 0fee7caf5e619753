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
//!   order.
//!
//! The model's metadata carries the spaces (JSON), the frame stack, the
//! algorithm and the checkpoint's env steps.

use hlynr_nn::onnx::{Dim, ElemType, OnnxGraph};

use crate::error::{Result, TrainError};
use crate::policy::PolicyError;
use crate::policy::onnx::{OnnxLstmState, OnnxObs, actor_critic_actor};
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
            type_name(ty)
        ));
        Ok(self.graph.input(name, ty, &Self::dims(width), doc)?)
    }

    fn output(&mut self, value: &str, name: &str, width: usize, doc: &str) -> Built<()> {
        let ty = ElemType::F32;
        self.lines.push(format!(
            "output {name}: {} [{BATCH}, {width}]  {doc}",
            type_name(ty)
        ));
        Ok(self
            .graph
            .output(value, name, ty, &Self::dims(width), doc)?)
    }
}

fn type_name(ty: ElemType) -> &'static str {
    match ty {
        ElemType::F32 => "float",
        ElemType::U8 => "uint8",
        ElemType::I64 => "int64",
        ElemType::F64 => "double",
    }
}

/// What building the graph can fail with.
type Built<T> = std::result::Result<T, PolicyError>;

/// The deterministic policy of `model` as an ONNX model (see the module docs).
pub fn export_onnx(model: &LoadedModel) -> Result<OnnxModel> {
    model.record.check()?;
    if model.algorithm != "ppo" {
        return Err(TrainError::invalid(
            "export --format onnx",
            format!(
                "exports PPO policies (MLP and LSTM); this checkpoint holds a `{}` policy",
                model.algorithm
            ),
        ));
    }
    let config = crate::ppo::algorithm::record_policy_config(&model.record)?;
    actor_critic_model(model, &config)
        .map_err(|e| TrainError::invalid("export --format onnx", e.to_string()))
}

fn actor_critic_model(
    model: &LoadedModel,
    config: &crate::policy::PolicyConfig,
) -> Built<OnnxModel> {
    let record = &model.record;
    let obs_space = &record.observation_space;
    let (values_dim, bytes_dim) = (obs_space.flat_dim(), obs_space.byte_dim());
    let act_dim = record.action_space.flat_dim();
    let mut sig = Signature {
        graph: OnnxGraph::new("hlynr_policy"),
        lines: Vec::new(),
    };
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
        obs_space,
        &record.action_space,
        config,
        &model.weights,
        obs,
        state.as_ref(),
    )?;
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
    let json = |s: &hlynr_env::Space| serde_json::to_string(s).unwrap_or_default();
    let metadata = [
        ("hlynr.algorithm", model.algorithm.clone()),
        ("hlynr.env_steps", model.env_steps.to_string()),
        ("hlynr.observation_space", json(obs_space)),
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
