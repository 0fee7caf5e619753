//! The doctor on synthetic metric streams that reproduce collapsed runs from
//! users' post-mortems (value loss 9,030 and rising; success 22% at 200k
//! steps then 0% by 10M; KL ~2e-7 with nothing clipped and explained variance
//! -143; Q-values falling to -40,000; NaN; gradient spikes; saturated LSTMs;
//! reward farming), and on healthy streams, which must raise nothing.

use std::collections::BTreeSet;

use hlynr_rl::doctor::{Doctor, DoctorConfig, Finding, RULE_NAMES, Severity, analyze};
use hlynr_rl::metrics::{Metrics, MetricsLog, MetricsRecord};
use hlynr_rng::Rng;

/// Env steps per PPO update in the streams (16 envs x 2048 steps).
const STEPS_PER_UPDATE: u64 = 32_768;

/// One record per update: (step, values).
type Stream = Vec<(u64, Metrics)>;

/// A healthy PPO update `i` of `n` on a CartPole-like task: return and
/// success rising, KL ~0.01, 10% clipped, explained variance rising to 0.9,
/// entropy falling slowly, small steady gradients.
fn healthy_update(i: usize, n: usize, rng: &mut Rng) -> Metrics {
    let p = i as f64 / (n - 1) as f64;
    let learned = 1.0 - (-5.0 * p).exp();
    let noise = |rng: &mut Rng, s: f64| 1.0 + s * rng.normal();
    let mut m = Metrics::new();
    let mut put = |k: &str, v: f64| {
        m.insert(k.to_string(), v);
    };
    put(
        "rollout/ep_rew_mean",
        (20.0 + 480.0 * learned) * noise(rng, 0.02),
    );
    put("rollout/ep_len_mean", 20.0 + 480.0 * learned);
    put(
        "rollout/success_rate",
        (0.05 + 0.9 * p + 0.02 * rng.normal()).clamp(0.0, 1.0),
    );
    put(
        "train/value_loss",
        (5.0 + 30.0 * (-3.0 * p).exp()) * noise(rng, 0.1),
    );
    put("train/policy_gradient_loss", -0.01 * noise(rng, 0.3));
    put("train/entropy_loss", -(0.69 - 0.39 * p) * noise(rng, 0.005));
    put("train/approx_kl", 0.01 * noise(rng, 0.2));
    put("train/clip_fraction", 0.1 * noise(rng, 0.2));
    put("train/explained_variance", -0.2 + 1.1 * learned);
    put("train/grad_norm", 0.5 * noise(rng, 0.1));
    put("train/nonfinite_skip", 0.0);
    put("train/nonfinite_skips", 0.0);
    put("train/learning_rate", 3e-4);
    put("time/iterations", (i + 1) as f64);
    m
}

/// `n` healthy updates, with an evaluation record after every 20th.
fn healthy_stream(n: usize, seed: u64) -> Stream {
    let mut rng = Rng::seed_from_u64(seed);
    let mut out = Vec::new();
    for i in 0..n {
        let step = (i as u64 + 1) * STEPS_PER_UPDATE;
        out.push((step, healthy_update(i, n, &mut rng)));
        if (i + 1) % 20 == 0 {
            let p = i as f64 / (n - 1) as f64;
            let eval = Metrics::from([
                ("eval/mean_reward".to_string(), 20.0 + 480.0 * p),
                ("eval/success_rate".to_string(), (0.1 + 0.9 * p).min(1.0)),
            ]);
            out.push((step, eval));
        }
    }
    out
}

/// A healthy stream whose updates are edited by `edit(update index, values)`.
fn edited(n: usize, seed: u64, mut edit: impl FnMut(usize, &mut Metrics)) -> Stream {
    let mut rng = Rng::seed_from_u64(seed);
    (0..n)
        .map(|i| {
            let mut m = healthy_update(i, n, &mut rng);
            edit(i, &mut m);
            ((i as u64 + 1) * STEPS_PER_UPDATE, m)
        })
        .collect()
}

fn run(stream: &Stream, config: &DoctorConfig) -> Vec<Finding> {
    let mut d = Doctor::new(config.clone());
    stream.iter().flat_map(|(s, m)| d.observe(*s, m)).collect()
}

/// Findings as JSON text: equality that treats NaN evidence as equal to
/// itself (bitwise-identical runs log the same NaN).
fn same(findings: &[Finding]) -> String {
    serde_json::to_string(findings).unwrap()
}

fn rules(findings: &[Finding]) -> BTreeSet<&str> {
    findings.iter().map(|f| f.rule.as_str()).collect()
}

fn count(findings: &[Finding], rule: &str) -> usize {
    findings.iter().filter(|f| f.rule == rule).count()
}

/// Asserts `rule` fired and every rule that fired is in `allowed`.
fn assert_fired(findings: &[Finding], rule: &str, allowed: &[&str]) {
    assert!(
        count(findings, rule) >= 1,
        "{rule} did not fire: {findings:#?}"
    );
    for f in findings {
        assert!(
            allowed.contains(&f.rule.as_str()),
            "unexpected {} at step {}: {}",
            f.rule,
            f.step,
            f.diagnosis
        );
    }
}

fn set(m: &mut Metrics, k: &str, v: f64) {
    m.insert(k.to_string(), v);
}

#[test]
fn healthy_runs_raise_nothing() {
    for seed in 0..5 {
        let findings = run(&healthy_stream(300, seed), &DoctorConfig::default());
        assert!(findings.is_empty(), "seed {seed}: {findings:#?}");
    }
}

#[test]
fn value_loss_9030_and_rising_is_an_explosion() {
    // Returns around +1000; the value loss sits near 1,000, then climbs by 20%
    // per update to 9,030 (and beyond).
    let stream = edited(60, 1, |i, m| {
        set(m, "rollout/ep_rew_mean", 1000.0 + 20.0 * (i as f64).sin());
        let vl = if i < 40 {
            1000.0
        } else {
            9030.0 * 1.2f64.powi(i as i32 - 50)
        };
        set(m, "train/value_loss", vl);
    });
    let findings = run(&stream, &DoctorConfig::default());
    // A loss of thousands against a policy loss of 0.01 also dominates.
    assert_fired(
        &findings,
        "value_loss_explosion",
        &["value_loss_explosion", "value_loss_dominates"],
    );
    assert_eq!(count(&findings, "value_loss_explosion"), 1, "{findings:#?}");
    let f = findings
        .iter()
        .find(|f| f.rule == "value_loss_explosion")
        .unwrap();
    assert_eq!(f.severity, Severity::Error);
    assert!(f.evidence["train/value_loss"] > 2000.0 && f.evidence["train/value_loss"] <= 9030.0);
    assert!(
        f.suggestion.contains("ppo.normalize_returns"),
        "{}",
        f.suggestion
    );
    // The same loss without the rise is no explosion.
    let flat = edited(60, 1, |i, m| {
        set(m, "rollout/ep_rew_mean", 1000.0 + 20.0 * (i as f64).sin());
        set(m, "train/value_loss", 9030.0);
    });
    assert_eq!(
        count(
            &run(&flat, &DoctorConfig::default()),
            "value_loss_explosion"
        ),
        0
    );
}

#[test]
fn a_value_loss_thousands_of_times_the_policy_loss_dominates() {
    let stream = edited(40, 2, |_, m| {
        set(m, "train/value_loss", 9030.0);
        set(m, "rollout/ep_rew_mean", 33_000.0);
    });
    let findings = run(&stream, &DoctorConfig::default());
    assert_fired(&findings, "value_loss_dominates", &["value_loss_dominates"]);
    assert_eq!(count(&findings, "value_loss_dominates"), 1);
    let f = &findings[0];
    assert_eq!(
        f.step,
        20 * STEPS_PER_UPDATE,
        "fires after the 20-update window"
    );
    assert!(f.suggestion.contains("ppo.vf_coef"), "{}", f.suggestion);
}

#[test]
fn success_22_percent_at_200k_then_0_by_10m_is_a_collapse() {
    // Rollout success: 22% peak at ~230k steps, 17-20% to 690k, 12-17% to 3M,
    // then down to 0-1% from 8M to 10M; the return follows (+1100 to -1000).
    let n = 305; // 10M steps
    let success = |i: usize| -> f64 {
        let steps = i as f64 * STEPS_PER_UPDATE as f64;
        if steps <= 229_376.0 {
            0.1 + 0.12 * steps / 229_376.0 // update 7: the 22% peak
        } else if steps < 690e3 {
            0.20 - 0.03 * (steps - 230e3) / 460e3
        } else if steps < 3e6 {
            0.17 - 0.05 * (steps - 690e3) / 2.31e6
        } else if steps < 8e6 {
            0.12 - 0.11 * (steps - 3e6) / 5e6
        } else {
            0.005
        }
    };
    let stream = edited(n, 3, |i, m| {
        let s = success(i);
        set(m, "rollout/success_rate", s);
        set(m, "rollout/ep_rew_mean", -1000.0 + 2100.0 * s / 0.22);
    });
    let findings = run(&stream, &DoctorConfig::default());
    assert_fired(&findings, "success_collapse", &["success_collapse"]);
    assert_eq!(count(&findings, "success_collapse"), 1, "{findings:#?}");
    let f = &findings[0];
    assert_eq!(f.severity, Severity::Error);
    assert!(
        (f.evidence["best_success_rate"] - 0.22).abs() < 0.01,
        "{f:?}"
    );
    assert!(f.evidence["rollout/success_rate"] < 0.11);
    assert!(f.step > 3_000_000 && f.step < 10_000_000, "{}", f.step);
    assert_eq!(f.action.name(), "rollback");
    assert!(f.diagnosis.contains("22.0%"), "{}", f.diagnosis);
}

#[test]
fn an_evaluation_collapse_is_reported_from_eval_records() {
    let mut stream = healthy_stream(100, 4);
    let mut k = 0;
    for (_, m) in &mut stream {
        if let Some(s) = m.get_mut("eval/success_rate") {
            *s = if k < 2 { 0.6 } else { 0.05 };
            k += 1;
        }
    }
    let findings = run(&stream, &DoctorConfig::default());
    assert_fired(&findings, "success_collapse", &["success_collapse"]);
    assert!(findings[0].evidence.contains_key("eval/success_rate"));
}

#[test]
fn kl_2e7_with_nothing_clipped_and_explained_variance_minus_143_is_a_frozen_policy() {
    // The predator-prey post-mortem: KL 2.00774e-7, 0% clipped, entropy 9.6,
    // explained variance -143.673, value loss 0.27, return falling linearly.
    let stream = edited(80, 5, |i, m| {
        set(
            m,
            "train/approx_kl",
            2.00774e-7 * (1.0 + 0.1 * (i as f64).sin()),
        );
        set(m, "train/clip_fraction", 0.0);
        set(m, "train/entropy_loss", -9.60289);
        set(m, "train/explained_variance", -143.673);
        set(m, "train/value_loss", 0.270569);
        set(m, "rollout/ep_rew_mean", 50.0 - 0.5 * i as f64);
        m.remove("rollout/success_rate");
    });
    let findings = run(&stream, &DoctorConfig::default());
    let allowed = [
        "frozen_policy",
        "explained_variance_negative",
        "entropy_stuck",
    ];
    assert_fired(&findings, "frozen_policy", &allowed);
    assert_fired(&findings, "explained_variance_negative", &allowed);
    assert_fired(&findings, "entropy_stuck", &allowed);
    let frozen = findings.iter().find(|f| f.rule == "frozen_policy").unwrap();
    assert_eq!(frozen.step, 5 * STEPS_PER_UPDATE);
    assert_eq!(frozen.evidence["train/clip_fraction"], 0.0);
    assert!(frozen.evidence["train/approx_kl"] < 1e-6);
    let ev = findings
        .iter()
        .find(|f| f.rule == "explained_variance_negative")
        .unwrap();
    assert_eq!(ev.step, 15 * STEPS_PER_UPDATE, "10 warm-up updates, then 5");
    assert_eq!(ev.evidence["train/explained_variance"], -143.673);
    for r in RULE_NAMES {
        assert!(count(&findings, r) <= 1, "{r} fired more than once");
    }
}

#[test]
fn q_values_drifting_to_minus_40000_diverge_and_healthy_q_growth_does_not() {
    // One record per 10 episodes: Q 0 -> 10 (episodes 0-400), 10 -> -1000
    // (400-600), -1000 -> -40,000 (600-1000).
    let q = |e: f64| -> f64 {
        if e < 400.0 {
            10.0 * e / 400.0
        } else if e < 600.0 {
            10.0 - 1010.0 * (e - 400.0) / 200.0
        } else {
            -1000.0 - 39_000.0 * (e - 600.0) / 400.0
        }
    };
    let dqn = |q: &dyn Fn(f64) -> f64, episodes: usize| -> Stream {
        (0..episodes / 10)
            .map(|k| {
                let e = (k * 10) as f64;
                let m = Metrics::from([
                    ("train/q_mean".to_string(), q(e)),
                    ("train/loss".to_string(), 3.0),
                    (
                        "rollout/exploration_rate".to_string(),
                        (1.0 - e / 1000.0).max(0.01),
                    ),
                ]);
                (k as u64 * 10_000, m)
            })
            .collect()
    };
    let findings = run(&dqn(&q, 1000), &DoctorConfig::default());
    assert_fired(&findings, "q_divergence", &["q_divergence"]);
    assert_eq!(count(&findings, "q_divergence"), 1, "{findings:#?}");
    let f = &findings[0];
    assert!(f.evidence["train/q_mean"] < -100.0, "{f:?}");
    assert!(
        f.step <= 600 * 1000,
        "caught before the catastrophic phase: {}",
        f.step
    );

    // The working run: Q rises steadily 0 -> 50 over 2500 episodes.
    let healthy = dqn(&|e| 50.0 * (1.0 - (-e / 800.0).exp()), 2500);
    assert!(run(&healthy, &DoctorConfig::default()).is_empty());

    // With a return bound (|r| <= 1, gamma 0.99: |Q| <= 100), exceeding it fires.
    let mut config = DoctorConfig::default();
    config.q_divergence.max_abs_reward = Some(1.0);
    config.q_divergence.gamma = Some(0.99);
    let over = dqn(&|e| if e < 500.0 { 50.0 } else { 150.0 }, 1000);
    let findings = run(&over, &config);
    assert_eq!(count(&findings, "q_divergence"), 1);
    assert!((findings[0].evidence["q_bound"] - 100.0).abs() < 1e-9);
    assert_eq!(findings[0].step, 50 * 10_000);
}

#[test]
fn nan_metrics_raise_one_error_and_nothing_else() {
    let stream = edited(100, 6, |i, m| {
        if i == 50 {
            set(m, "train/value_loss", f64::NAN);
            set(m, "train/grad_norm", f64::INFINITY);
            set(m, "train/nonfinite_skip", 1.0);
        }
        if i >= 50 {
            set(m, "train/nonfinite_skips", 1.0);
        }
    });
    let findings = run(&stream, &DoctorConfig::default());
    assert_eq!(
        rules(&findings),
        BTreeSet::from(["nonfinite"]),
        "{findings:#?}"
    );
    assert_eq!(findings.len(), 1);
    let f = &findings[0];
    assert_eq!(f.step, 51 * STEPS_PER_UPDATE);
    assert!(f.evidence["train/value_loss"].is_nan());
    assert_eq!(f.evidence["train/grad_norm"], f64::INFINITY);
    assert!(f.diagnosis.contains("train/value_loss"), "{}", f.diagnosis);

    // Three skipped updates in a row fire even when every logged value is finite.
    let skips = edited(40, 7, |i, m| {
        if (20..23).contains(&i) {
            set(m, "train/nonfinite_skip", 1.0);
        }
    });
    // The first two are recorded as informational (each already recovered).
    let findings = run(&skips, &DoctorConfig::default());
    let seen: Vec<(&str, Severity, u64)> = findings
        .iter()
        .map(|f| (f.rule.as_str(), f.severity, f.step))
        .collect();
    assert_eq!(
        seen,
        [
            ("nonfinite", Severity::Info, 21 * STEPS_PER_UPDATE),
            ("nonfinite", Severity::Info, 22 * STEPS_PER_UPDATE),
            ("nonfinite", Severity::Error, 23 * STEPS_PER_UPDATE),
        ],
        "{findings:#?}"
    );
}

#[test]
fn gradient_spikes_fire_once_per_spike() {
    let stream = edited(150, 8, |i, m| {
        if i == 60 || i == 61 || i == 120 {
            set(m, "train/grad_norm", 20.0);
        }
    });
    let findings = run(&stream, &DoctorConfig::default());
    assert_fired(&findings, "grad_norm_spike", &["grad_norm_spike"]);
    let steps: Vec<u64> = findings.iter().map(|f| f.step).collect();
    assert_eq!(steps, [61 * STEPS_PER_UPDATE, 121 * STEPS_PER_UPDATE]);
    assert!(findings[0].evidence["factor"] > 10.0);
}

#[test]
fn lstm_saturation_fires_after_its_window_and_only_when_logged() {
    let stream = edited(100, 9, |i, m| {
        set(m, "train/lstm_saturation", if i < 50 { 0.1 } else { 0.8 });
    });
    let findings = run(&stream, &DoctorConfig::default());
    assert_fired(&findings, "lstm_saturation", &["lstm_saturation"]);
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0].step, 55 * STEPS_PER_UPDATE);
    assert_eq!(findings[0].evidence["train/lstm_saturation"], 0.8);
}

#[test]
fn return_rising_while_success_falls_is_reward_farming() {
    let stream = edited(80, 10, |i, m| {
        if i >= 30 {
            let t = (i - 30) as f64 / 49.0;
            set(m, "rollout/ep_rew_mean", 300.0 + 300.0 * t);
            set(m, "rollout/success_rate", 0.6 - 0.4 * t);
        } else {
            set(m, "rollout/ep_rew_mean", 300.0);
            set(m, "rollout/success_rate", 0.6);
        }
    });
    let findings = run(&stream, &DoctorConfig::default());
    // Success also fell below half its best by the end: a collapse too.
    assert_fired(
        &findings,
        "reward_farming",
        &["reward_farming", "success_collapse"],
    );
    let f = findings
        .iter()
        .find(|f| f.rule == "reward_farming")
        .unwrap();
    assert!(f.evidence["return_change"] > 0.0 && f.evidence["success_change"] < 0.0);
    assert_eq!(count(&findings, "reward_farming"), 1);
}

#[test]
fn entropy_collapsing_within_a_few_updates_is_flagged() {
    let stream = edited(60, 11, |i, m| {
        if i >= 30 {
            let h = (0.69 - 0.15 * (i - 29) as f64).max(0.02);
            set(m, "train/entropy_loss", -h);
        }
    });
    let findings = run(&stream, &DoctorConfig::default());
    assert_fired(&findings, "entropy_collapse", &["entropy_collapse"]);
    assert_eq!(count(&findings, "entropy_collapse"), 1);
}

#[test]
fn a_long_condition_gives_one_finding_and_a_new_episode_another() {
    // Frozen on updates 20..80 and 100..130, healthy in between.
    let frozen = |i: usize| (20..80).contains(&i) || (100..130).contains(&i);
    let stream = edited(150, 12, |i, m| {
        if frozen(i) {
            set(m, "train/approx_kl", 1e-7);
            set(m, "train/clip_fraction", 0.0);
        }
    });
    let findings = run(&stream, &DoctorConfig::default());
    let steps: Vec<u64> = findings.iter().map(|f| f.step).collect();
    assert_eq!(rules(&findings), BTreeSet::from(["frozen_policy"]));
    assert_eq!(steps, [25 * STEPS_PER_UPDATE, 105 * STEPS_PER_UPDATE]);

    // A single healthy update inside the episode does not re-arm the rule.
    let flicker = edited(150, 12, |i, m| {
        if (20..80).contains(&i) && i != 50 {
            set(m, "train/approx_kl", 1e-7);
            set(m, "train/clip_fraction", 0.0);
        }
    });
    assert_eq!(run(&flicker, &DoctorConfig::default()).len(), 1);
}

/// Every failure at once: the stream the state round trip is tested on.
fn troubled_stream() -> Stream {
    edited(200, 13, |i, m| {
        if (20..60).contains(&i) {
            set(m, "train/approx_kl", 1e-7);
            set(m, "train/clip_fraction", 0.0);
        }
        if i == 70 || i == 150 {
            set(m, "train/grad_norm", 50.0);
        }
        if i == 90 {
            set(m, "train/value_loss", f64::NAN);
        }
        set(m, "train/lstm_saturation", if i > 120 { 0.9 } else { 0.2 });
        if i > 100 {
            set(m, "rollout/success_rate", 0.02);
        }
    })
}

#[test]
fn a_resumed_doctor_continues_exactly() {
    let stream = troubled_stream();
    let config = DoctorConfig::default();
    let whole = run(&stream, &config);
    assert!(rules(&whole).len() >= 4, "{:?}", rules(&whole));
    for cut in [1, 57, 100, 121, 199] {
        let mut first = Doctor::new(config.clone());
        let mut findings: Vec<Finding> = stream[..cut]
            .iter()
            .flat_map(|(s, m)| first.observe(*s, m))
            .collect();
        let saved = serde_json::to_string(&first.state()).unwrap();
        let mut second = Doctor::new(config.clone());
        second
            .set_state(&serde_json::from_str(&saved).unwrap())
            .unwrap();
        findings.extend(
            stream[cut..]
                .iter()
                .flat_map(|(s, m)| second.observe(*s, m)),
        );
        assert_eq!(same(&findings), same(&whole), "cut at {cut}");
        let mut through = Doctor::new(config.clone());
        for (s, m) in &stream {
            through.observe(*s, m);
        }
        assert_eq!(second.state(), through.state(), "cut at {cut}");
    }
}

#[test]
fn analyze_replays_the_scalar_records_of_a_log() {
    let stream = troubled_stream();
    let mut log = MetricsLog::default();
    for (step, values) in &stream {
        log.records.push(MetricsRecord::Scalars {
            step: *step,
            time_s: 0.0,
            values: values.clone(),
        });
        log.records.push(MetricsRecord::Event {
            step: *step,
            time_s: 0.0,
            event: hlynr_rl::metrics::RunEvent::new("checkpoint", "saved"),
        });
    }
    let config = DoctorConfig::default();
    let replayed = analyze(&log, &config);
    assert!(replayed.len() >= 4);
    assert_eq!(same(&replayed), same(&run(&stream, &config)));
    assert_eq!(
        same(&analyze(&log, &config)),
        same(&replayed),
        "deterministic"
    );
}

#[test]
fn rules_with_custom_thresholds_follow_the_config() {
    let stream = healthy_stream(200, 14);
    let mut config = DoctorConfig::default();
    // Healthy KL ~0.01 is a blow-up when the threshold is 0.005.
    config.kl_blowup.kl_above = 0.005;
    let findings = run(&stream, &config);
    assert_fired(&findings, "kl_blowup", &["kl_blowup"]);
    assert_eq!(
        findings[0].step,
        u64::from(config.kl_blowup.window) * STEPS_PER_UPDATE
    );
}

#[test]
fn entropy_stuck_is_reported_once_per_run_however_often_it_recurs() {
    // Entropy flat for 400 updates, the return alternating between flat
    // stretches and brief rises, so the condition clears and returns again.
    let stream = edited(400, 9, |i, m| {
        set(m, "train/entropy_loss", -1.2);
        let bump = if (i / 40) % 2 == 0 {
            0.0
        } else {
            (i % 40) as f64
        };
        set(m, "rollout/ep_rew_mean", 10.0 + bump);
        m.remove("rollout/success_rate");
    });
    let findings = run(&stream, &DoctorConfig::default());
    assert_eq!(count(&findings, "entropy_stuck"), 1, "{findings:#?}");
}
