//! PPO's loss pinned to hand-computed values.
//!
//! `ppo_gradcheck.rs` proves that the backward pass differentiates whatever
//! `ppo_loss` computes; this file fixes what it computes. The network is set
//! up so that every quantity has a closed form: no hidden layers, a zero
//! policy weight matrix and logits bias `[0, ln 2, ln 5]` (probabilities
//! `[1/8, 2/8, 5/8]` whatever the observation), and a value head that reads
//! the first observation entry (`V = obs[0]`). Old log-probabilities are
//! chosen to give each sample a known ratio.
//!
//! The five samples, with clip range 0.2:
//!
//! | n | action | ratio | advantage | `min(rA, clip(r)A)` | branch    |
//! |---|--------|-------|-----------|---------------------|-----------|
//! | 0 | 2      | 1.1   | +1        | 1.1                 | inside    |
//! | 1 | 1      | 1.5   | +2        | min(3.0, 2.4) = 2.4 | clipped   |
//! | 2 | 0      | 0.5   | -1        | min(-0.5, -0.8)     | clipped   |
//! | 3 | 2      | 1.5   | -0.5      | min(-0.75, -0.6)    | unclipped |
//! | 4 | 1      | 0.5   | +1        | min(0.5, 0.8)       | unclipped |
//!
//! Samples 3 and 4 lie outside the clip range but on the pessimistic side,
//! so their unclipped term is the minimum and carries gradient; samples 1
//! and 2 are clipped and carry none.

use hlynr_env::Space;
use hlynr_nn::Tensor;
use hlynr_rl::policy::{ActorCritic, NetArch, PolicyConfig};
use hlynr_rl::ppo::update::{LossSettings, LossWorkspace, Minibatch, ppo_backward, ppo_loss};
use hlynr_rl::ppo::{ValueClip, ValueClipLoss, ValueLoss};
use hlynr_rng::Rng;

const PROBS: [f64; 3] = [0.125, 0.25, 0.625];
const ACTIONS: [usize; 5] = [2, 1, 0, 2, 1];
const RATIOS: [f64; 5] = [1.1, 1.5, 0.5, 1.5, 0.5];
const ADVANTAGES: [f32; 5] = [1.0, 2.0, -1.0, -0.5, 1.0];
/// `V = obs[0]`: the values of the five samples.
const VALUES: [f32; 5] = [1.0, 2.0, 0.0, -1.0, 0.5];
const RETURNS: [f32; 5] = [1.5, 1.0, 0.0, 0.0, 0.5];
const ENT_COEF: f64 = 0.01;
const VF_COEF: f64 = 0.5;

/// A categorical actor-critic with the closed-form outputs described above.
fn network() -> ActorCritic {
    let policy = PolicyConfig {
        net_arch: NetArch {
            shared: vec![],
            pi: vec![],
            vf: vec![],
        },
        ..PolicyConfig::default()
    };
    let mut net = ActorCritic::new(
        &Space::uniform_box(-5.0, 5.0, &[2]),
        &Space::Discrete { n: 3 },
        &policy,
        &mut Rng::seed_from_u64(0),
    )
    .unwrap();
    for (name, p) in net.named_params_mut() {
        let values: &[f32] = match name.as_str() {
            "action_net.weight" => &[0.0; 6],
            "action_net.bias" => &[0.0, 2f32.ln(), 5f32.ln()],
            "value_net.weight" => &[1.0, 0.0],
            "value_net.bias" => &[0.0],
            other => panic!("unexpected parameter {other}"),
        };
        p.value.data_mut().copy_from_slice(values);
    }
    net
}

fn settings(ent_coef: f64) -> LossSettings {
    LossSettings {
        clip_range: 0.2,
        ent_coefs: vec![ent_coef],
        vf_coef: VF_COEF,
        value_clip: ValueClip::None,
        clip_range_vf: 0.0,
        value_clip_loss: ValueClipLoss::Clipped,
        value_loss: ValueLoss::Mse,
        huber_delta: 1.0,
    }
}

/// The minibatch of the samples `rows` of the table.
fn minibatch(rows: &[usize]) -> Minibatch {
    let b = rows.len();
    let obs: Vec<f32> = rows.iter().flat_map(|&n| [VALUES[n], 0.3]).collect();
    let actions: Vec<f32> = rows.iter().map(|&n| ACTIONS[n] as f32).collect();
    // The network's own log-probabilities (f32), shifted by -ln(ratio).
    let old_log_prob = rows
        .iter()
        .map(|&n| ((PROBS[ACTIONS[n]] as f32).ln() as f64 - RATIOS[n].ln()) as f32)
        .collect();
    Minibatch {
        obs: Tensor::from_vec(&[b, 2], obs).unwrap(),
        obs_bytes: Vec::new(),
        actions: Tensor::from_vec(&[b, 1], actions).unwrap(),
        old_log_prob,
        advantages: rows.iter().map(|&n| ADVANTAGES[n]).collect(),
        returns: rows.iter().map(|&n| RETURNS[n]).collect(),
        // Unused without value clipping.
        old_values: vec![0.0; b],
        sequences: None,
    }
}

fn close(what: &str, got: f64, expected: f64) {
    assert!(
        (got - expected).abs() <= 2e-6 * expected.abs().max(1.0),
        "{what}: {got} != {expected}"
    );
}

/// Gradients by parameter name after `ppo_loss` + `ppo_backward`.
fn gradients(net: &mut ActorCritic, mb: &Minibatch, s: &LossSettings) -> Vec<(String, Vec<f32>)> {
    let mut ws = LossWorkspace::default();
    ppo_loss(net, mb, s, &mut ws).unwrap();
    net.zero_grad();
    ppo_backward(net, mb, &ws).unwrap();
    net.named_params()
        .into_iter()
        .map(|(n, p)| (n, p.grad.data().to_vec()))
        .collect()
}

fn grad<'a>(grads: &'a [(String, Vec<f32>)], name: &str) -> &'a [f32] {
    &grads.iter().find(|(n, _)| n == name).unwrap().1
}

#[test]
fn loss_terms_match_the_hand_computed_minibatch() {
    let mut net = network();
    let mb = minibatch(&[0, 1, 2, 3, 4]);
    let st = ppo_loss(
        &mut net,
        &mb,
        &settings(ENT_COEF),
        &mut LossWorkspace::default(),
    )
    .unwrap();
    // -(1.1 + 2.4 - 0.8 - 0.75 + 0.5) / 5
    close("pg_loss", st.pg_loss, -0.49);
    // Errors V - R = [-0.5, 1, 0, -1, 0]: mean square 2.25 / 5.
    close("value_loss", st.value_loss, 0.45);
    // -(1/8 ln 1/8 + 1/4 ln 1/4 + 5/8 ln 5/8)
    close("entropy", st.entropy, 0.900_256_051_268_536_9);
    // mean((r - 1) - ln r) over [1.1, 1.5, 0.5, 1.5, 0.5]
    close("approx_kl", st.approx_kl, 0.116_010_793_019_847_37);
    // Four of five ratios are more than 0.2 from 1.
    close("clip_fraction", st.clip_fraction, 0.8);
    // -0.49 + 0.5 * 0.45 - 0.01 * 0.9002560...
    close("loss", st.loss, -0.274_002_560_512_685_4);
    assert_eq!(st.value_clip_fraction, 0.0);
}

#[test]
fn gradient_matches_the_hand_computed_minibatch() {
    let mut net = network();
    let g = gradients(&mut net, &minibatch(&[0, 1, 2, 3, 4]), &settings(ENT_COEF));
    // d/d logit_k = -1/5 sum over unclipped n of r_n A_n (1[k = a_n] - p_k)
    //             + c_ent p_k (ln p_k + H); samples 1 and 2 contribute nothing.
    let expected = [
        0.019_776_018_136_985_88,
        -0.058_715_095_774_628_37,
        0.038_939_077_637_642_504,
    ];
    for (k, (&got, want)) in grad(&g, "action_net.bias").iter().zip(expected).enumerate() {
        close(&format!("d loss / d logit {k}"), got as f64, want);
    }
    // The logits do not depend on the observation here, but the weights see it.
    assert!(grad(&g, "action_net.weight").iter().any(|&w| w != 0.0));
    // Value: vf_coef * 2/5 * sum(V - R) = 0.5 * 0.4 * -0.5; the weight on obs[0]
    // is vf_coef * 2/5 * sum((V - R) obs0) = 0.2 * (-0.5 + 2 + 0 + 1 + 0).
    close(
        "d / d value bias",
        grad(&g, "value_net.bias")[0] as f64,
        -0.1,
    );
    close(
        "d / d value weight 0",
        grad(&g, "value_net.weight")[0] as f64,
        0.5,
    );
}

#[test]
fn clipped_samples_carry_no_policy_gradient() {
    let mut net = network();
    // Only the two clipped samples, no entropy bonus: the policy receives
    // exactly zero gradient, the critic does not.
    let g = gradients(&mut net, &minibatch(&[1, 2]), &settings(0.0));
    assert!(
        grad(&g, "action_net.bias").iter().all(|&v| v == 0.0),
        "{g:?}"
    );
    assert!(
        grad(&g, "action_net.weight").iter().all(|&v| v == 0.0),
        "{g:?}"
    );
    assert!(grad(&g, "value_net.bias")[0] != 0.0);
    // The two unclipped out-of-range samples alone do move the policy.
    let g = gradients(&mut net, &minibatch(&[3, 4]), &settings(0.0));
    assert!(
        grad(&g, "action_net.bias").iter().all(|&v| v != 0.0),
        "{g:?}"
    );
}

#[test]
fn the_entropy_bonus_lowers_the_loss_and_pushes_toward_uniform() {
    let mut net = network();
    let mb = minibatch(&[0]);
    let mut ws = LossWorkspace::default();
    let without = ppo_loss(&mut net, &mb, &settings(0.0), &mut ws)
        .unwrap()
        .loss;
    let with = ppo_loss(&mut net, &mb, &settings(0.5), &mut ws)
        .unwrap()
        .loss;
    close(
        "entropy term",
        without - with,
        0.5 * 0.900_256_051_268_536_9,
    );
    // Gradient descent on -c H raises the least likely logit and lowers the
    // most likely one.
    let g0 = gradients(&mut net, &mb, &settings(0.0));
    let g1 = gradients(&mut net, &mb, &settings(0.5));
    let d: Vec<f32> = grad(&g1, "action_net.bias")
        .iter()
        .zip(grad(&g0, "action_net.bias"))
        .map(|(a, b)| a - b)
        .collect();
    assert!(d[0] < 0.0 && d[2] > 0.0, "{d:?}");
}
