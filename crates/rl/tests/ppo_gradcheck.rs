//! Finite-difference checks of the full PPO loss gradient with respect to
//! every network parameter, for every head type and value-loss variant.

use hlynr_env::Space;
use hlynr_nn::Tensor;
use hlynr_rl::policy::{
    ActorCritic, CnnConfig, FeaturesConfig, NetArch, PolicyConfig, PolicyKind, Squash,
};
use hlynr_rl::ppo::update::{LossSettings, LossWorkspace, Minibatch, ppo_backward, ppo_loss};
use hlynr_rl::ppo::{ValueClip, ValueClipLoss, ValueLoss};
use hlynr_rl::recurrent::SequenceBatch;
use hlynr_rng::Rng;

const OBS: usize = 3;
const B: usize = 6;

/// `rows` random observations' value and byte lanes.
fn observations(net: &ActorCritic, rows: usize, rng: &mut Rng) -> (Tensor, Vec<u8>) {
    let od = net.obs_dim();
    let obs = Tensor::from_vec(
        &[rows, od],
        (0..rows * od).map(|_| rng.normal_f32()).collect(),
    )
    .unwrap();
    let bytes = (0..rows * net.obs_bytes())
        .map(|_| rng.below(256) as u8)
        .collect();
    (obs, bytes)
}

fn batch(net: &mut ActorCritic, rng: &mut Rng) -> Minibatch {
    let (obs, obs_bytes) = observations(net, B, rng);
    // Actions sampled from the network itself, old log-probs near the current
    // ones so that some ratios fall inside and some outside the clip range.
    let ad = net.act_dim();
    let (mut raw, mut env) = (vec![0.0; B * ad], vec![0.0; B * ad]);
    let (mut lp, mut v) = (vec![0.0; B], vec![0.0; B]);
    net.act(
        hlynr_env::ObsRef::new(obs.data(), &obs_bytes),
        B,
        false,
        rng,
        &mut raw,
        &mut env,
        &mut lp,
        &mut v,
    )
    .unwrap();
    let old_log_prob = lp.iter().map(|&l| l + 0.3 * rng.normal_f32()).collect();
    Minibatch {
        obs,
        obs_bytes,
        actions: Tensor::from_vec(&[B, ad], raw).unwrap(),
        old_log_prob,
        advantages: (0..B).map(|_| rng.normal_f32()).collect(),
        returns: (0..B).map(|_| 2.0 * rng.normal_f32()).collect(),
        old_values: v.iter().map(|&x| x + 0.5 * rng.normal_f32()).collect(),
        sequences: None,
    }
}

/// Sequences for a recurrent network: `T = 3` steps of 2 sequences with
/// non-zero initial states and an episode start inside sequence 1.
fn sequence_batch(net: &mut ActorCritic, space: &Space, rng: &mut Rng) -> Minibatch {
    let (t, b) = (3, 2);
    let rows = t * b;
    let h = net.recurrent().expect("recurrent").hidden_size();
    let state = |rng: &mut Rng| {
        Tensor::from_vec(
            &[b, h],
            (0..b * h).map(|_| 0.5 * rng.normal_f32()).collect(),
        )
        .unwrap()
    };
    let shared = net.recurrent().is_some_and(|r| r.is_shared());
    let seq = SequenceBatch {
        steps: t,
        batch: b,
        // Time-major: step 2 of sequence 1 starts an episode.
        reset: vec![0.0, 0.0, 0.0, 0.0, 0.0, 1.0],
        h0_actor: state(rng),
        c0_actor: state(rng),
        h0_critic: if shared {
            Tensor::zeros(&[0, h])
        } else {
            state(rng)
        },
        c0_critic: if shared {
            Tensor::zeros(&[0, h])
        } else {
            state(rng)
        },
    };
    let (obs, obs_bytes) = observations(net, rows, rng);
    let ad = net.act_dim();
    let mut raw = vec![0.0f32; rows * ad];
    match space {
        Space::Discrete { n } => {
            for a in &mut raw {
                *a = rng.below(*n as u64) as f32;
            }
        }
        _ => {
            for a in &mut raw {
                *a = 0.5 * rng.normal_f32();
            }
        }
    }
    let actions = Tensor::from_vec(&[rows, ad], raw).unwrap();
    net.forward(&obs, &obs_bytes, Some(&seq)).unwrap();
    let mut lp = vec![0.0; rows];
    net.evaluate(&actions, &mut lp).unwrap();
    let v = net.values().to_vec();
    Minibatch {
        obs,
        obs_bytes,
        actions,
        old_log_prob: lp.iter().map(|&l| l + 0.3 * rng.normal_f32()).collect(),
        advantages: (0..rows).map(|_| rng.normal_f32()).collect(),
        returns: (0..rows).map(|_| 2.0 * rng.normal_f32()).collect(),
        old_values: v.iter().map(|&x| x + 0.5 * rng.normal_f32()).collect(),
        sequences: Some(seq),
    }
}

fn loss(net: &mut ActorCritic, mb: &Minibatch, s: &LossSettings) -> f64 {
    ppo_loss(net, mb, s, &mut LossWorkspace::default())
        .unwrap()
        .loss
}

/// Compares analytic and central-difference gradients on every parameter
/// entry; returns the number of entries checked.
fn check(space: &Space, policy: PolicyConfig, s: &LossSettings, seed: u64) -> usize {
    check_with(
        &Space::uniform_box(-5.0, 5.0, &[OBS]),
        space,
        policy,
        s,
        seed,
    )
}

/// [`check`] for observations of `observation_space`.
fn check_with(
    observation_space: &Space,
    space: &Space,
    policy: PolicyConfig,
    s: &LossSettings,
    seed: u64,
) -> usize {
    let mut rng = Rng::seed_from_u64(seed);
    let mut net = ActorCritic::new(observation_space, space, &policy, &mut rng).unwrap();
    // Larger-than-default head weights so every term has a visible gradient.
    for (name, p) in net.named_params_mut() {
        if name.starts_with("action_net") || name.starts_with("value_net") {
            for v in p.value.data_mut() {
                *v = 0.5 * rng.normal_f32();
            }
        }
    }
    let mb = if net.recurrent().is_some() {
        sequence_batch(&mut net, space, &mut rng)
    } else {
        batch(&mut net, &mut rng)
    };
    let mut ws = LossWorkspace::default();
    ppo_loss(&mut net, &mb, s, &mut ws).unwrap();
    net.zero_grad();
    ppo_backward(&mut net, &mb, &ws).unwrap();
    let grads: Vec<(String, Vec<f32>)> = net
        .named_params()
        .into_iter()
        .map(|(n, p)| (n, p.grad.data().to_vec()))
        .collect();
    let eps = 2e-3f32;
    let base = loss(&mut net, &mb, s);
    let (mut checked, mut kinks) = (0, 0);
    for (pi, (name, grad)) in grads.iter().enumerate() {
        for (j, &g) in grad.iter().enumerate() {
            let set = |net: &mut ActorCritic, delta: f32| {
                let mut params = net.named_params_mut();
                params[pi].1.value.data_mut()[j] += delta;
            };
            set(&mut net, eps);
            let up = loss(&mut net, &mb, s);
            set(&mut net, -2.0 * eps);
            let down = loss(&mut net, &mb, s);
            set(&mut net, eps);
            let numeric = (up - down) / (2.0 * eps as f64);
            let analytic = g as f64;
            let tol = 1e-3 + 2e-2 * numeric.abs().max(analytic.abs());
            // A kink (clip boundary, Huber threshold, ReLU) within eps makes the
            // one-sided slopes disagree; central differences are meaningless there.
            let (fwd, bwd) = ((up - base) / eps as f64, (base - down) / eps as f64);
            if (fwd - bwd).abs() > 2.0 * tol {
                kinks += 1;
                continue;
            }
            assert!(
                (numeric - analytic).abs() <= tol,
                "{name}[{j}]: analytic {analytic} vs numeric {numeric} ({s:?}, {space:?})"
            );
            checked += 1;
        }
    }
    assert!(
        kinks * 6 <= checked,
        "{kinks} kinks for {checked} checked entries"
    );
    checked
}

fn settings(n_components: usize) -> LossSettings {
    LossSettings {
        clip_range: 0.2,
        ent_coefs: (0..n_components).map(|c| 0.05 * (c + 1) as f64).collect(),
        vf_coef: 0.5,
        value_clip: ValueClip::None,
        clip_range_vf: 0.3,
        value_clip_loss: ValueClipLoss::Clipped,
        value_loss: ValueLoss::Mse,
        huber_delta: 1.0,
    }
}

fn small_policy(shared: bool, squash: Squash) -> PolicyConfig {
    PolicyConfig {
        net_arch: NetArch {
            shared: if shared { vec![5] } else { vec![] },
            pi: vec![4],
            vf: vec![4],
        },
        squash,
        log_std_init: -0.3,
        ..PolicyConfig::default()
    }
}

#[test]
fn gaussian_head_all_value_variants() {
    let space = Space::uniform_box(-1.0, 1.0, &[2]);
    let mut total = 0;
    for (i, (clip, comb)) in [
        (ValueClip::None, ValueClipLoss::Clipped),
        (ValueClip::Absolute, ValueClipLoss::Clipped),
        (ValueClip::Absolute, ValueClipLoss::Max),
        (ValueClip::Relative, ValueClipLoss::Clipped),
        (ValueClip::Relative, ValueClipLoss::Max),
        (ValueClip::SquaredErrorCap, ValueClipLoss::Clipped),
    ]
    .into_iter()
    .enumerate()
    {
        for (k, kind) in [ValueLoss::Mse, ValueLoss::Huber, ValueLoss::MseHuber]
            .into_iter()
            .enumerate()
        {
            let s = LossSettings {
                value_clip: clip,
                value_clip_loss: comb,
                value_loss: kind,
                clip_range_vf: if clip == ValueClip::SquaredErrorCap {
                    2.0
                } else {
                    0.3
                },
                ..settings(1)
            };
            total += check(
                &space,
                small_policy(false, Squash::Clip),
                &s,
                (i * 3 + k) as u64,
            );
        }
    }
    assert!(total > 500, "{total}");
}

#[test]
fn tanh_squashed_gaussian_with_shared_trunk() {
    let space = Space::box_1d(vec![-2.0, 0.0], vec![2.0, 1.0]);
    check(&space, small_policy(true, Squash::Tanh), &settings(1), 11);
}

#[test]
fn categorical_and_multi_discrete_heads() {
    check(
        &Space::Discrete { n: 3 },
        small_policy(false, Squash::Clip),
        &settings(1),
        12,
    );
    let md = Space::MultiDiscrete { nvec: vec![2, 3] };
    check(&md, small_policy(true, Squash::Clip), &settings(2), 13);
}

#[test]
fn hybrid_gaussian_plus_categorical_with_per_head_entropy() {
    let space = Space::Tuple {
        spaces: vec![
            Space::uniform_box(-1.0, 1.0, &[2]),
            Space::Discrete { n: 3 },
        ],
    };
    let s = LossSettings {
        value_clip: ValueClip::Absolute,
        value_clip_loss: ValueClipLoss::Max,
        value_loss: ValueLoss::MseHuber,
        ..settings(2)
    };
    check(&space, small_policy(false, Squash::Clip), &s, 14);
    let mut relu = small_policy(true, Squash::Tanh);
    relu.activation = hlynr_rl::policy::Activation::LeakyRelu;
    relu.layer_norm = true;
    check(&space, relu, &settings(2), 15);
}

#[test]
fn recurrent_policies_separate_and_shared_lstm() {
    for (shared, space, seed) in [
        (false, Space::uniform_box(-1.0, 1.0, &[2]), 21),
        (true, Space::Discrete { n: 3 }, 22),
    ] {
        let policy = PolicyConfig {
            kind: PolicyKind::Lstm,
            lstm_hidden_size: Some(4),
            shared_lstm: shared,
            ..small_policy(false, Squash::Clip)
        };
        let checked = check(&space, policy, &settings(1), seed);
        // LSTM weights (4 tensors per LSTM) dominate the parameter count.
        assert!(checked > 150, "{checked}");
    }
}

/// A two-frame stack of 2x9x9 byte images beside two values, through a small
/// CNN: the gradient reaches every convolution and the linear layer.
fn camera() -> Space {
    Space::Tuple {
        spaces: vec![
            Space::byte_box(&[2, 2, 9, 9]),
            Space::uniform_box(-5.0, 5.0, &[2]),
        ],
    }
}

fn cnn_policy(kind: PolicyKind, shared: bool) -> PolicyConfig {
    PolicyConfig {
        kind,
        lstm_hidden_size: (kind == PolicyKind::Lstm).then_some(3),
        features: FeaturesConfig::Cnn(CnnConfig {
            channels: vec![3, 2],
            kernels: vec![3, 2],
            strides: vec![2, 1],
            features_dim: 4,
        }),
        ..small_policy(shared, Squash::Clip)
    }
}

#[test]
fn cnn_features_of_byte_frames_with_a_side_input() {
    let mut total = 0;
    for (seed, shared) in [(40, false), (41, true)] {
        let action = Space::Discrete { n: 3 };
        total += check_with(
            &camera(),
            &action,
            cnn_policy(PolicyKind::Mlp, shared),
            &settings(1),
            seed,
        );
    }
    let mut rng = Rng::seed_from_u64(0);
    let net = ActorCritic::new(
        &camera(),
        &Space::Discrete { n: 3 },
        &cnn_policy(PolicyKind::Mlp, false),
        &mut rng,
    )
    .unwrap();
    let names: Vec<String> = net.named_params().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names[..6],
        [
            "features_extractor.cnn.0.weight",
            "features_extractor.cnn.0.bias",
            "features_extractor.cnn.2.weight",
            "features_extractor.cnn.2.bias",
            "features_extractor.linear.0.weight",
            "features_extractor.linear.0.bias",
        ]
    );
    assert!(total > 150, "{total}");
}

#[test]
fn cnn_features_under_an_lstm() {
    let action = Space::uniform_box(-1.0, 1.0, &[2]);
    let total = check_with(
        &camera(),
        &action,
        cnn_policy(PolicyKind::Lstm, false),
        &settings(1),
        42,
    );
    assert!(total > 100, "{total}");
}

#[test]
fn cnn_configs_that_cannot_work_are_refused() {
    let mut rng = Rng::seed_from_u64(0);
    let action = Space::Discrete { n: 2 };
    // No byte box to convolve.
    let e = ActorCritic::new(
        &Space::uniform_box(0.0, 1.0, &[4]),
        &action,
        &cnn_policy(PolicyKind::Mlp, false),
        &mut rng,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("byte boxes of shape"), "{e}");
    // Frames smaller than the kernels.
    let tiny = Space::byte_box(&[1, 2, 2]);
    let e = ActorCritic::new(
        &tiny,
        &action,
        &cnn_policy(PolicyKind::Mlp, false),
        &mut rng,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("too small"), "{e}");
    // Lists of different lengths.
    let mut bad = cnn_policy(PolicyKind::Mlp, false);
    if let FeaturesConfig::Cnn(c) = &mut bad.features {
        c.strides.push(1);
    }
    let e = ActorCritic::new(&camera(), &action, &bad, &mut rng)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("strides") && e.contains("one per convolution"),
        "{e}"
    );
}
