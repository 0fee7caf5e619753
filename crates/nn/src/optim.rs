//! Adam and AdamW with PyTorch's update rules, per-group learning rates, and
//! state that saves and restores exactly.
//!
//! One step for a parameter `p` with gradient `g` (step count `t` after
//! incrementing), exactly as `torch.optim.Adam`/`AdamW` (non-fused, no amsgrad):
//!
//! ```text
//! Adam  (L2):        g <- g + wd * p
//! AdamW (decoupled): p <- p * (1 - lr * wd)
//! m <- m + (1 - beta1) (g - m)
//! v <- beta2 v + (1 - beta2) g^2
//! p <- p - (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
//! ```
//!
//! `eps` is added outside the square root. Scalars are computed in `f64` and
//! applied in `f32`, as PyTorch does with Python floats on `float32` tensors.
//!
//! Parameters are matched to their optimizer state by name (the `state_dict`
//! names layers give), so the optimizer is independent of how a model stores
//! its parameters, and a parameter whose shape changed is an error rather than
//! a silent misuse of stale moments.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{NnError, Result};
use crate::io::{self, Loaded, TensorEntry};
use crate::param::NamedParamMut;
use crate::simd::{AdamStep, adam_update};
use crate::tensor::Tensor;

/// Whether weight decay is an L2 term on the gradient or decoupled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AdamKind {
    /// `torch.optim.Adam`: `weight_decay * p` is added to the gradient.
    Adam,
    /// `torch.optim.AdamW`: `p *= 1 - lr * weight_decay` before the Adam step.
    AdamW,
}

/// A set of parameters sharing a learning rate and weight decay.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ParamGroup {
    /// Label used in messages and for [`Adam::set_group_lr`] (e.g. `"actor"`).
    pub name: String,
    /// Names of the parameters in the group.
    pub params: Vec<String>,
    /// Learning rate; may be changed between steps for schedules.
    pub lr: f64,
    /// Weight decay coefficient (L2 for Adam, decoupled for AdamW).
    pub weight_decay: f64,
}

impl ParamGroup {
    /// A group of the named parameters, without weight decay.
    pub fn new<S: Into<String>>(
        name: impl Into<String>,
        params: impl IntoIterator<Item = S>,
        lr: f64,
    ) -> Self {
        Self {
            name: name.into(),
            params: params.into_iter().map(Into::into).collect(),
            lr,
            weight_decay: 0.0,
        }
    }

    /// The same group with weight decay `weight_decay`.
    pub fn with_weight_decay(mut self, weight_decay: f64) -> Self {
        self.weight_decay = weight_decay;
        self
    }
}

/// Hyperparameters shared by all groups.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdamConfig {
    /// Adam or AdamW.
    pub kind: AdamKind,
    /// Decay of the first moment (PyTorch default 0.9).
    pub beta1: f64,
    /// Decay of the second moment (PyTorch default 0.999).
    pub beta2: f64,
    /// Added to the denominator outside the square root (default 1e-8).
    pub eps: f64,
}

impl AdamConfig {
    /// PyTorch's defaults for `kind`.
    pub fn new(kind: AdamKind) -> Self {
        Self {
            kind,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        }
    }
}

/// Per-parameter optimizer state.
#[derive(Clone, Debug, PartialEq)]
struct Moments {
    step: u64,
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
}

/// The scalar part of the saved state (the tensors are saved alongside).
#[derive(Serialize, Deserialize)]
struct SavedScalars {
    config: AdamConfig,
    groups: Vec<ParamGroup>,
    steps: BTreeMap<String, u64>,
}

/// An optimizer's state as named tensors plus JSON scalars, ready for a
/// safetensors file (tensors as data, the JSON string as metadata).
#[derive(Clone, Debug, PartialEq)]
pub struct OptimizerState {
    /// `state.<param>.exp_avg` and `state.<param>.exp_avg_sq` for each
    /// parameter that has been stepped.
    pub tensors: BTreeMap<String, Tensor>,
    /// Hyperparameters, groups and per-parameter step counts, as JSON.
    pub scalars: String,
}

/// Metadata key under which the JSON scalars are stored in a safetensors file.
pub const OPTIMIZER_METADATA_KEY: &str = "hlynr.optimizer";

/// Adam / AdamW over named parameters in groups.
#[derive(Clone, Debug)]
pub struct Adam {
    config: AdamConfig,
    groups: Vec<ParamGroup>,
    /// Parameter name -> index of its group.
    group_of: BTreeMap<String, usize>,
    state: BTreeMap<String, Moments>,
}

impl Adam {
    /// An optimizer over `groups`; each parameter name may appear in one group only.
    pub fn new(config: AdamConfig, groups: Vec<ParamGroup>) -> Result<Self> {
        validate_config(&config)?;
        let mut group_of = BTreeMap::new();
        for (gi, g) in groups.iter().enumerate() {
            validate_group(g)?;
            for p in &g.params {
                if let Some(prev) = group_of.insert(p.clone(), gi) {
                    return Err(NnError::invalid(
                        "Adam",
                        format!(
                            "parameter `{p}` is in both group `{}` and group `{}`",
                            groups[prev].name, g.name
                        ),
                    ));
                }
            }
        }
        Ok(Self {
            config,
            groups,
            group_of,
            state: BTreeMap::new(),
        })
    }

    /// PyTorch defaults for `kind` and one group holding `params`
    /// (`torch.optim.Adam(params, lr, weight_decay=...)` or `AdamW(...)`).
    pub fn single_group<S: Into<String>>(
        kind: AdamKind,
        params: impl IntoIterator<Item = S>,
        lr: f64,
        weight_decay: f64,
    ) -> Result<Self> {
        Self::new(
            AdamConfig::new(kind),
            vec![ParamGroup::new("default", params, lr).with_weight_decay(weight_decay)],
        )
    }

    /// The hyperparameters.
    pub fn config(&self) -> &AdamConfig {
        &self.config
    }

    /// The parameter groups.
    pub fn groups(&self) -> &[ParamGroup] {
        &self.groups
    }

    /// Sets the learning rate of every group.
    pub fn set_lr(&mut self, lr: f64) -> Result<()> {
        check_lr("Adam::set_lr", lr)?;
        for g in &mut self.groups {
            g.lr = lr;
        }
        Ok(())
    }

    /// Sets the learning rate of the group called `group`.
    pub fn set_group_lr(&mut self, group: &str, lr: f64) -> Result<()> {
        check_lr("Adam::set_group_lr", lr)?;
        let names: Vec<String> = self.groups.iter().map(|g| g.name.clone()).collect();
        match self.groups.iter_mut().find(|g| g.name == group) {
            Some(g) => {
                g.lr = lr;
                Ok(())
            }
            None => Err(NnError::invalid(
                "Adam::set_group_lr",
                format!("no group named `{group}` (groups: {names:?})"),
            )),
        }
    }

    /// Step count of a parameter (0 before its first step).
    pub fn step_count(&self, param: &str) -> u64 {
        self.state.get(param).map_or(0, |m| m.step)
    }

    /// One optimizer step over `params`, using their accumulated gradients.
    ///
    /// Buffers and counters are skipped. Every trainable parameter must belong
    /// to a group; group members missing from `params` are left alone (their
    /// step counts do not advance). All checks happen before any parameter
    /// changes, so an error leaves the model and the optimizer untouched.
    pub fn step(&mut self, params: &mut [NamedParamMut<'_>]) -> Result<()> {
        let mut seen = BTreeSet::new();
        for (name, p) in params.iter() {
            if !p.is_trainable() {
                continue;
            }
            if !seen.insert(name.as_str()) {
                return Err(NnError::invalid(
                    "Adam::step",
                    format!("parameter `{name}` given twice"),
                ));
            }
            if !self.group_of.contains_key(name) {
                return Err(NnError::invalid(
                    "Adam::step",
                    format!("parameter `{name}` is in no parameter group of this optimizer"),
                ));
            }
            p.grad
                .expect_shape(&format!("Adam::step gradient of `{name}`"), p.value.shape())?;
            let stale = self
                .state
                .get(name)
                .filter(|m| m.exp_avg.shape() != p.value.shape());
            if let Some(m) = stale {
                return Err(NnError::shape(
                    format!(
                        "Adam::step: parameter `{name}` changed shape since its optimizer state was created"
                    ),
                    m.exp_avg.shape(),
                    p.value.shape(),
                ));
            }
        }

        let (beta1, beta2, eps) = (self.config.beta1, self.config.beta2, self.config.eps);
        for (name, p) in params.iter_mut() {
            if !p.is_trainable() {
                continue;
            }
            let group = &self.groups[self.group_of[name.as_str()]];
            let (lr, wd) = (group.lr, group.weight_decay);
            let m = self.state.entry(name.clone()).or_insert_with(|| Moments {
                step: 0,
                exp_avg: Tensor::zeros(p.value.shape()),
                exp_avg_sq: Tensor::zeros(p.value.shape()),
            });
            m.step += 1;
            let t = m.step as f64;
            let bias_correction1 = 1.0 - beta1.powf(t);
            let bias_correction2_sqrt = (1.0 - beta2.powf(t)).sqrt();
            let step_size = (lr / bias_correction1) as f32;
            let bc2 = bias_correction2_sqrt as f32;
            let (w1, b2, w2, eps) = (
                (1.0 - beta1) as f32,
                beta2 as f32,
                (1.0 - beta2) as f32,
                eps as f32,
            );
            let l2 = if self.config.kind == AdamKind::Adam {
                wd as f32
            } else {
                0.0
            };
            if self.config.kind == AdamKind::AdamW && wd != 0.0 {
                let decay = (1.0 - lr * wd) as f32;
                for v in p.value.data_mut() {
                    *v *= decay;
                }
            }
            let k = AdamStep {
                w1,
                b2,
                w2,
                bc2,
                eps,
                step_size,
                l2,
            };
            adam_update(
                p.value.data_mut(),
                p.grad.data(),
                m.exp_avg.data_mut(),
                m.exp_avg_sq.data_mut(),
                k,
            );
        }
        Ok(())
    }

    /// The full state: hyperparameters, groups, step counts and moments.
    pub fn state(&self) -> Result<OptimizerState> {
        let mut tensors = BTreeMap::new();
        let mut steps = BTreeMap::new();
        for (name, m) in &self.state {
            tensors.insert(format!("state.{name}.exp_avg"), m.exp_avg.clone());
            tensors.insert(format!("state.{name}.exp_avg_sq"), m.exp_avg_sq.clone());
            steps.insert(name.clone(), m.step);
        }
        let scalars = serde_json::to_string(&SavedScalars {
            config: self.config,
            groups: self.groups.clone(),
            steps,
        })
        .map_err(|e| NnError::invalid("Adam::state", format!("cannot serialise: {e}")))?;
        Ok(OptimizerState { tensors, scalars })
    }

    /// Rebuilds an optimizer from [`Adam::state`] output, exactly.
    pub fn from_state(state: &OptimizerState) -> Result<Self> {
        const CONTEXT: &str = "Adam::from_state";
        let saved: SavedScalars = serde_json::from_str(&state.scalars)
            .map_err(|e| NnError::invalid(CONTEXT, format!("bad scalar JSON: {e}")))?;
        let mut opt = Self::new(saved.config, saved.groups)?;
        let mut used = BTreeSet::new();
        for (name, step) in saved.steps {
            if !opt.group_of.contains_key(&name) {
                return Err(NnError::invalid(
                    CONTEXT,
                    format!("state for `{name}`, which is in no group"),
                ));
            }
            let mut get = |suffix: &str| -> Result<Tensor> {
                let key = format!("state.{name}.{suffix}");
                let t = state
                    .tensors
                    .get(&key)
                    .ok_or_else(|| NnError::invalid(CONTEXT, format!("missing tensor `{key}`")))?;
                used.insert(key);
                Ok(t.clone())
            };
            let exp_avg = get("exp_avg")?;
            let exp_avg_sq = get("exp_avg_sq")?;
            exp_avg_sq.expect_shape(
                &format!("{CONTEXT} `state.{name}.exp_avg_sq` (must match exp_avg)"),
                exp_avg.shape(),
            )?;
            opt.state.insert(
                name,
                Moments {
                    step,
                    exp_avg,
                    exp_avg_sq,
                },
            );
        }
        let unexpected: Vec<&String> = state
            .tensors
            .keys()
            .filter(|k| !used.contains(*k))
            .collect();
        if !unexpected.is_empty() {
            return Err(NnError::invalid(
                CONTEXT,
                format!("unexpected tensors {unexpected:?}"),
            ));
        }
        Ok(opt)
    }

    /// Writes the state to a safetensors file (atomically): moments as F32
    /// tensors, scalars as JSON under metadata key [`OPTIMIZER_METADATA_KEY`].
    pub fn save_safetensors(&self, path: &Path) -> Result<()> {
        let state = self.state()?;
        let entries: Vec<(String, TensorEntry<'_>)> = state
            .tensors
            .iter()
            .map(|(k, t)| (k.clone(), TensorEntry::F32(t)))
            .collect();
        let mut metadata = BTreeMap::new();
        metadata.insert(OPTIMIZER_METADATA_KEY.to_string(), state.scalars.clone());
        io::save_entries(path, &entries, &metadata)
    }

    /// Reads an optimizer written by [`Adam::save_safetensors`].
    pub fn load_safetensors(path: &Path) -> Result<Self> {
        let file = io::load_safetensors(path)?;
        let where_ = path.display().to_string();
        let scalars = file
            .metadata
            .get(OPTIMIZER_METADATA_KEY)
            .ok_or_else(|| NnError::Io {
                path: where_.clone(),
                message: format!("no `{OPTIMIZER_METADATA_KEY}` metadata (not an optimizer file?)"),
            })?
            .clone();
        let mut tensors = BTreeMap::new();
        for (name, t) in file.tensors {
            match t {
                Loaded::F32(t) => {
                    tensors.insert(name, t);
                }
                other => {
                    return Err(NnError::Io {
                        path: where_,
                        message: format!(
                            "tensor `{name}` has dtype {}, expected F32",
                            other.dtype()
                        ),
                    });
                }
            }
        }
        Self::from_state(&OptimizerState { tensors, scalars }).map_err(|e| NnError::Io {
            path: where_,
            message: e.to_string(),
        })
    }
}

fn check_lr(context: &str, lr: f64) -> Result<()> {
    if lr.is_finite() && lr >= 0.0 {
        Ok(())
    } else {
        Err(NnError::invalid(
            context,
            format!("learning rate must be finite and >= 0, got {lr}"),
        ))
    }
}

fn validate_config(c: &AdamConfig) -> Result<()> {
    let ok_beta = |b: f64| (0.0..1.0).contains(&b);
    if !ok_beta(c.beta1) || !ok_beta(c.beta2) {
        return Err(NnError::invalid(
            "Adam",
            format!("betas must lie in [0, 1), got ({}, {})", c.beta1, c.beta2),
        ));
    }
    if !(c.eps >= 0.0 && c.eps.is_finite()) {
        return Err(NnError::invalid(
            "Adam",
            format!("eps must be finite and >= 0, got {}", c.eps),
        ));
    }
    Ok(())
}

fn validate_group(g: &ParamGroup) -> Result<()> {
    check_lr(&format!("Adam group `{}`", g.name), g.lr)?;
    if !(g.weight_decay >= 0.0 && g.weight_decay.is_finite()) {
        return Err(NnError::invalid(
            format!("Adam group `{}`", g.name),
            format!(
                "weight_decay must be finite and >= 0, got {}",
                g.weight_decay
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::param::Param;

    fn param(values: &[f32], grads: &[f32]) -> Param {
        let mut p = Param::trainable(Tensor::from_slice(&[values.len()], values).unwrap());
        p.grad.data_mut().copy_from_slice(grads);
        p
    }

    #[test]
    fn first_adam_step_moves_by_lr_times_sign() {
        // After one step m_hat = g and v_hat = g^2, so p -= lr * g / (|g| + eps).
        let mut p = param(&[1.0, -2.0, 0.5], &[0.3, -4.0, 0.0]);
        let mut opt = Adam::single_group(AdamKind::Adam, ["w"], 0.1, 0.0).unwrap();
        opt.step(&mut [("w".to_string(), &mut p)]).unwrap();
        let want = [
            1.0 - 0.1 * 0.3 / (0.3 + 1e-8),
            -2.0 + 0.1 * 4.0 / (4.0 + 1e-8),
            0.5,
        ];
        for (a, b) in p.value.data().iter().zip(want) {
            assert!((*a as f64 - b).abs() < 1e-6, "{a} vs {b}");
        }
        assert_eq!(opt.step_count("w"), 1);
    }

    #[test]
    fn two_steps_match_hand_computation_with_weight_decay() {
        for kind in [AdamKind::Adam, AdamKind::AdamW] {
            let (lr, wd, b1, b2, eps) = (0.01f64, 0.1f64, 0.9f64, 0.999f64, 1e-8f64);
            let mut p = param(&[0.5], &[0.2]);
            let cfg = AdamConfig::new(kind);
            let mut opt = Adam::new(
                cfg,
                vec![ParamGroup::new("g", ["x"], lr).with_weight_decay(wd)],
            )
            .unwrap();
            let (mut x, mut m, mut v) = (0.5f64, 0.0f64, 0.0f64);
            for t in 1..=2 {
                let g = [0.2f64, -0.7][t - 1];
                p.grad.data_mut()[0] = g as f32;
                opt.step(&mut [("x".to_string(), &mut p)]).unwrap();
                let g = match kind {
                    AdamKind::Adam => g + wd * x,
                    AdamKind::AdamW => {
                        x *= 1.0 - lr * wd;
                        g
                    }
                };
                m = b1 * m + (1.0 - b1) * g;
                v = b2 * v + (1.0 - b2) * g * g;
                let mh = m / (1.0 - b1.powi(t as i32));
                let denom = (v / (1.0 - b2.powi(t as i32))).sqrt() + eps;
                x -= lr * mh / denom;
                assert!(
                    (p.value.data()[0] as f64 - x).abs() < 1e-6,
                    "{kind:?} step {t}: {} vs {x}",
                    p.value.data()[0]
                );
            }
        }
    }

    #[test]
    fn moments_of_a_gradient_gone_quiet_become_zero_not_subnormal() {
        // A tiny gradient, then none: the moments decay towards 0 through
        // the subnormal range, where they are flushed.
        let mut w = param(&[1.0, 1.0], &[1e-19, 1.0]);
        let mut opt = Adam::single_group(AdamKind::Adam, ["w"], 1e-3, 0.0).unwrap();
        opt.step(&mut [("w".into(), &mut w)]).unwrap();
        w.grad.data_mut().fill(0.0);
        let mut flushed = false;
        for _ in 0..2000 {
            opt.step(&mut [("w".into(), &mut w)]).unwrap();
            let state = opt.state().unwrap();
            for t in state.tensors.values() {
                for &v in t.data() {
                    assert!(
                        v == 0.0 || v.abs() >= f32::MIN_POSITIVE,
                        "subnormal moment {v:e}"
                    );
                }
            }
            flushed |= state.tensors["state.w.exp_avg_sq"].data()[0] == 0.0;
        }
        assert!(flushed, "the quiet moment reached 0");
        assert!(w.value.data().iter().all(|v| v.is_finite()));
    }

    #[test]
    fn groups_have_their_own_learning_rates() {
        let mut a = param(&[1.0], &[1.0]);
        let mut b = param(&[1.0], &[1.0]);
        let mut opt = Adam::new(
            AdamConfig::new(AdamKind::Adam),
            vec![
                ParamGroup::new("actor", ["a"], 0.1),
                ParamGroup::new("critic", ["b"], 0.01),
            ],
        )
        .unwrap();
        opt.step(&mut [("a".into(), &mut a), ("b".into(), &mut b)])
            .unwrap();
        assert!((a.value.data()[0] - 0.9).abs() < 1e-6 && (b.value.data()[0] - 0.99).abs() < 1e-6);
        opt.set_group_lr("critic", 0.0).unwrap();
        opt.step(&mut [("a".into(), &mut a), ("b".into(), &mut b)])
            .unwrap();
        assert!((b.value.data()[0] - 0.99).abs() < 1e-6);
        assert!(
            opt.set_group_lr("nope", 0.1)
                .unwrap_err()
                .to_string()
                .contains("actor")
        );
    }

    #[test]
    fn unknown_duplicate_and_reshaped_parameters_are_errors_without_side_effects() {
        let mut w = param(&[1.0, 2.0], &[1.0, 1.0]);
        let mut opt = Adam::single_group(AdamKind::Adam, ["w"], 0.1, 0.0).unwrap();
        let mut u = param(&[1.0], &[1.0]);
        let e = opt
            .step(&mut [("w".into(), &mut w), ("u".into(), &mut u)])
            .unwrap_err()
            .to_string();
        assert!(e.contains("`u`") && e.contains("no parameter group"), "{e}");
        assert_eq!(
            w.value.data(),
            &[1.0, 2.0],
            "error must leave parameters untouched"
        );
        opt.step(&mut [("w".into(), &mut w)]).unwrap();
        let mut w3 = param(&[1.0, 2.0, 3.0], &[1.0, 1.0, 1.0]);
        let e = opt
            .step(&mut [("w".into(), &mut w3)])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`w`") && e.contains("[2]") && e.contains("[3]"),
            "{e}"
        );
        assert!(
            Adam::new(
                AdamConfig::new(AdamKind::Adam),
                vec![
                    ParamGroup::new("a", ["x"], 0.1),
                    ParamGroup::new("b", ["x"], 0.1)
                ]
            )
            .is_err()
        );
        let mut buf = Param::buffer(Tensor::zeros(&[1]));
        opt.step(&mut [("running_mean".into(), &mut buf)]).unwrap();
    }

    #[test]
    fn state_round_trips_exactly_and_continues_identically() {
        let mut p1 = param(&[0.3, -0.2, 0.9], &[0.1, 0.5, -0.3]);
        let mut opt = Adam::single_group(AdamKind::AdamW, ["w"], 3e-4, 0.01).unwrap();
        for _ in 0..3 {
            opt.step(&mut [("w".into(), &mut p1)]).unwrap();
        }
        let dir = std::env::temp_dir().join(format!("hlynr-optim-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("optimizer.safetensors");
        opt.save_safetensors(&path).unwrap();
        let mut restored = Adam::load_safetensors(&path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(restored.state().unwrap(), opt.state().unwrap());
        let mut p2 = p1.clone();
        opt.step(&mut [("w".into(), &mut p1)]).unwrap();
        restored.step(&mut [("w".into(), &mut p2)]).unwrap();
        assert_eq!(p1.value, p2.value);
        assert_eq!(restored.step_count("w"), 4);
    }
}
