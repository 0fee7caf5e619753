//! Side-by-side comparison of finished (or running) training runs: what was
//! configured differently, what each achieved, and their learning curves.
//!
//! Everything is read from the run directories (`config.yaml`,
//! `manifest.json`, `metrics.jsonl`; see [`crate::run`]), never from the
//! processes that wrote them, so runs can be compared while they train and
//! long after.
//!
//! **Which numbers.** A run's success rate and return come from its
//! deterministic evaluations (`eval/success_rate`, `eval/mean_reward`) when it
//! has any, since those are measured on fixed seeds and comparable between
//! runs; otherwise from the training rollouts (`rollout/success_rate`,
//! `rollout/ep_rew_mean`). Each summary says which key it used, so a table
//! never silently mixes the two. "Best" ranks success rate first and breaks
//! ties by return (the same order `best/` is kept by), and "steps to best" is
//! the first env step at which that best was reached: how quickly a setting
//! learns, not only how far.

mod curves;
mod render;
mod summary;

pub use curves::learning_curves_svg;
pub use render::{render_table_markdown, to_json};
pub use summary::{
    IGNORED_CONFIG_KEYS, MetricSummary, RunSummary, available_metrics, config_differences,
    default_metric, flatten_config, return_metric,
};

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use serde_json::{Value, json};

    use crate::metrics::{MetricsLog, MetricsRecord, keys};
    use crate::run::{CONFIG_FILE, MANIFEST_FILE, METRICS_FILE};

    use super::curves::*;
    use super::render::*;
    use super::summary::*;
    use crate::metrics::{Metrics, RunEvent};

    fn scalars(step: u64, time_s: f64, values: &[(&str, f64)]) -> MetricsRecord {
        MetricsRecord::Scalars {
            step,
            time_s,
            values: values
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect::<Metrics>(),
        }
    }

    fn event(step: u64, kind: &str) -> MetricsRecord {
        MetricsRecord::Event {
            step,
            time_s: step as f64 / 1000.0,
            event: RunEvent::new(kind, "m"),
        }
    }

    fn summary(name: &str, config: Value, records: Vec<MetricsRecord>) -> RunSummary {
        let log = MetricsLog {
            records,
            truncated_tail: None,
        };
        RunSummary::from_parts(name.into(), Path::new(name), None, &config, log)
    }

    /// A run with rollout metrics every 5k steps and evaluations every 10k.
    fn eval_run() -> RunSummary {
        let r = |step, sr, ret, fps| {
            scalars(
                step,
                step as f64 / 100.0,
                &[
                    (keys::SUCCESS_RATE, sr),
                    (keys::EP_REW_MEAN, ret),
                    (keys::FPS, fps),
                ],
            )
        };
        let e = |step, sr, ret| {
            scalars(
                step,
                step as f64 / 100.0 + 1.0,
                &[(keys::EVAL_SUCCESS_RATE, sr), (keys::EVAL_MEAN_REWARD, ret)],
            )
        };
        summary(
            "eval",
            json!({"ppo": {"learning_rate": 0.001}}),
            vec![
                r(5_000, 0.9, 10.0, 100.0),
                r(10_000, 0.95, 20.0, 300.0),
                e(10_000, 0.2, 5.0),
                event(10_000, "doctor"),
                r(15_000, 0.99, 30.0, 200.0),
                r(20_000, 0.5, 40.0, f64::NAN),
                e(20_000, 0.8, 50.0),
                e(30_000, 0.8, 70.0),
                event(30_000, "checkpoint"),
                e(40_000, 0.5, 90.0),
                event(40_000, "doctor"),
            ],
        )
    }

    #[test]
    fn evaluations_are_preferred_and_best_breaks_ties_by_return() {
        let s = eval_run();
        let success = s.success.as_ref().expect("success");
        assert_eq!(success.key, keys::EVAL_SUCCESS_RATE);
        assert_eq!(success.final_value, 0.5);
        assert_eq!(success.best_value, 0.8);
        assert_eq!(success.best_step, Some(20_000));
        assert_eq!(success.points, 4);
        let ret = s.episode_return.as_ref().expect("return");
        assert_eq!(ret.key, keys::EVAL_MEAN_REWARD);
        assert_eq!((ret.final_value, ret.best_value), (90.0, 90.0));
        // 0.8 is reached at 20k and again at 30k with a higher return.
        assert_eq!(s.steps_to_best, Some(30_000));
        assert_eq!(s.total_steps, 40_000);
        // fps 100, 300, 200 (NaN skipped): median 200.
        assert_eq!(s.median_steps_per_s, Some(200.0));
        assert_eq!(s.wall_time_s, Some(401.0));
        assert_eq!(s.doctor_events, 2);
    }

    #[test]
    fn without_evaluations_the_rollout_metrics_are_used() {
        let s = summary(
            "rollout",
            json!({}),
            vec![
                scalars(
                    100,
                    1.0,
                    &[(keys::SUCCESS_RATE, 0.5), (keys::EP_REW_MEAN, 3.0)],
                ),
                scalars(
                    200,
                    2.0,
                    &[(keys::SUCCESS_RATE, 0.5), (keys::EP_REW_MEAN, 3.0)],
                ),
                scalars(
                    300,
                    3.0,
                    &[(keys::SUCCESS_RATE, f64::NAN), (keys::EP_REW_MEAN, 9.0)],
                ),
            ],
        );
        let success = s.success.as_ref().expect("success");
        assert_eq!(success.key, keys::SUCCESS_RATE);
        assert!(
            success.final_value.is_nan(),
            "the last value is reported as is"
        );
        assert_eq!(success.best_value, 0.5);
        assert_eq!(
            s.episode_return.as_ref().map(|r| r.key.as_str()),
            Some(keys::EP_REW_MEAN)
        );
        // Equal (success, return) at 100 and 200: the first counts; the NaN
        // success at 300 ranks below any finite one despite its return.
        assert_eq!(s.steps_to_best, Some(100));
        assert_eq!(s.median_steps_per_s, None);
        assert_eq!(s.doctor_events, 0);
    }

    #[test]
    fn without_a_success_rate_the_best_is_the_best_return() {
        let s = summary(
            "cartpole",
            json!({}),
            vec![
                scalars(100, 1.0, &[(keys::EP_REW_MEAN, 20.0)]),
                scalars(200, 2.0, &[(keys::EP_REW_MEAN, 80.0)]),
                scalars(300, 3.0, &[(keys::EP_REW_MEAN, 50.0)]),
            ],
        );
        assert!(s.success.is_none());
        assert_eq!(s.steps_to_best, Some(200));
        let empty = summary("empty", json!({}), Vec::new());
        assert_eq!((empty.steps_to_best, empty.total_steps), (None, 0));
        assert!(empty.episode_return.is_none() && empty.wall_time_s.is_none());
    }

    #[test]
    fn config_differences_list_only_differing_keys() {
        let config = |lr: f64, extra: Option<i64>| {
            let mut c = json!({
                "seed": 0,
                "ppo": {"learning_rate": {"type": "linear", "initial": lr},
                        "policy": {"net_arch": [64, 64]}},
                "env": {"id": "CartPole-v1"},
            });
            if let Some(x) = extra {
                c["run"] = json!({ "keep_last_n": x });
            }
            c
        };
        let a = summary("a", config(1e-3, None), Vec::new());
        let b = summary("b", config(3e-4, Some(2)), Vec::new());
        let c = summary("c", config(1e-3, None), Vec::new());
        assert_eq!(
            a.config.get("ppo.policy.net_arch"),
            Some(&json!([64, 64])),
            "lists are leaves"
        );
        let diffs = config_differences(&[a.clone(), b.clone(), c]);
        assert_eq!(
            diffs,
            vec![
                (
                    "ppo.learning_rate.initial".to_string(),
                    vec![
                        Some("0.001".into()),
                        Some("0.0003".into()),
                        Some("0.001".into())
                    ]
                ),
                (
                    "run.keep_last_n".to_string(),
                    vec![None, Some("2".into()), None]
                ),
            ]
        );
        assert!(config_differences(std::slice::from_ref(&a)).is_empty());
        assert!(config_differences(&[a.clone(), a]).is_empty());
    }

    /// Checks that every tag is closed in order (enough XML to catch a
    /// broken writer) and returns the element names in document order.
    fn balanced_elements(svg: &str) -> Result<Vec<String>, String> {
        let mut stack: Vec<String> = Vec::new();
        let mut names = Vec::new();
        let mut rest = svg;
        while let Some(open) = rest.find('<') {
            let close = rest[open..]
                .find('>')
                .ok_or_else(|| "unterminated tag".to_string())?
                + open;
            let tag = &rest[open + 1..close];
            if tag.contains('<') {
                return Err(format!("`<` inside tag {tag}"));
            }
            if let Some(name) = tag.strip_prefix('/') {
                match stack.pop() {
                    Some(top) if top == name.trim() => {}
                    other => return Err(format!("</{name}> closes {other:?}")),
                }
            } else {
                let name: String = tag
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric())
                    .collect();
                names.push(name.clone());
                if !tag.ends_with('/') {
                    stack.push(name);
                }
            }
            rest = &rest[close + 1..];
        }
        if stack.is_empty() {
            Ok(names)
        } else {
            Err(format!("unclosed: {stack:?}"))
        }
    }

    #[test]
    fn the_element_checker_rejects_broken_markup() {
        assert!(balanced_elements("<svg><g></svg>").is_err());
        assert!(balanced_elements("<svg><text>a</text>").is_err());
        assert!(balanced_elements("<svg><line/></svg>").is_ok());
    }

    #[test]
    fn learning_curves_are_well_formed_with_one_line_per_run() {
        let mut other = eval_run();
        other.name = "run <b> & co".into();
        let no_data = summary("nothing", json!({}), Vec::new());
        let runs = vec![eval_run(), other, no_data];
        assert_eq!(default_metric(&runs), keys::EVAL_SUCCESS_RATE);
        assert_eq!(return_metric(&runs), keys::EVAL_MEAN_REWARD);
        let svg = learning_curves_svg(&runs, keys::EVAL_SUCCESS_RATE);
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.trim_end().ends_with("</svg>"));
        let names = balanced_elements(&svg).expect("balanced");
        assert_eq!(names.iter().filter(|n| *n == "polyline").count(), 2);
        assert!(svg.contains("run &lt;b&gt; &amp; co"));
        assert!(svg.contains("nothing (no data)"));
        assert!(svg.contains("eval/success_rate vs env steps"));
        // Step ticks in thousands, success on 0..1.
        assert!(svg.contains(">40k<") && svg.contains(">0.8<"), "{svg}");

        // A flat curve gets a readable band around its value.
        let flat = summary(
            "flat",
            json!({}),
            vec![
                scalars(1, 0.0, &[(keys::EP_REW_MEAN, 500.0)]),
                scalars(2, 0.0, &[(keys::EP_REW_MEAN, 500.0)]),
            ],
        );
        let svg = learning_curves_svg(&[flat], keys::EP_REW_MEAN);
        assert!(svg.contains(">460<") && svg.contains(">540<"), "{svg}");

        let rollout = learning_curves_svg(&runs[..1], keys::FPS);
        let names = balanced_elements(&rollout).expect("balanced");
        assert_eq!(names.iter().filter(|n| *n == "polyline").count(), 1);
        assert!(rollout.contains("1 non-finite left out"));
    }

    #[test]
    fn tables_have_one_column_per_run() {
        let a = eval_run();
        let mut b = eval_run();
        b.name = "b|pipe".into();
        b.config.insert("ppo.learning_rate".into(), json!(0.0003));
        let md = render_table_markdown(&[a, b]);
        assert!(
            md.contains("| ppo.learning_rate | 0.001 | 0.0003 |"),
            "{md}"
        );
        assert!(md.contains("b\\|pipe"));
        assert!(
            md.contains("| success rate (best) | 80.0% | 80.0% |"),
            "{md}"
        );
        assert!(md.contains("| steps to best | 30,000 | 30,000 |"), "{md}");
        assert!(
            md.contains("| success rate source | eval/success_rate |"),
            "{md}"
        );
        for line in md.lines().filter(|l| l.starts_with('|')) {
            let cells = line.replace("\\|", "").matches('|').count();
            assert_eq!(cells, 4, "three cells per row: {line}");
        }
        let single = render_table_markdown(&[eval_run()]);
        assert!(single.contains("one run"));
    }

    #[test]
    fn json_keeps_non_finite_values_and_differences() {
        let mut s = eval_run();
        s.success.as_mut().expect("success").final_value = f64::NAN;
        let mut t = eval_run();
        t.config.insert("seed".into(), json!(1));
        let v = to_json(&[s, t]);
        assert_eq!(v["runs"][0]["success_rate"]["final"], json!("NaN"));
        assert_eq!(v["runs"][0]["steps_to_best"], json!(30_000));
        assert_eq!(v["runs"][1]["config"]["seed"], json!(1));
        assert_eq!(v["config_differences"]["seed"], json!([null, "1"]));
    }

    fn scratch(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("hlynr-compare-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        dir
    }

    #[test]
    fn load_reads_a_run_directory_and_names_what_is_missing() {
        let dir = scratch("load");
        let err = RunSummary::load(&dir).expect_err("empty dir");
        let text = err.to_string();
        assert!(
            text.contains(&dir.display().to_string()) && text.contains(CONFIG_FILE),
            "{text}"
        );
        crate::run::write_config(&dir.join(CONFIG_FILE), &json!({"ppo": {"n_steps": 8}}))
            .expect("config");
        let err = RunSummary::load(&dir).expect_err("no metrics");
        assert!(err.to_string().contains(METRICS_FILE), "{err}");
        let lines = [
            scalars(64, 0.5, &[(keys::EP_REW_MEAN, 12.0), (keys::FPS, 128.0)]),
            event(64, "doctor"),
        ]
        .map(|r| r.to_line() + "\n")
        .concat();
        std::fs::write(dir.join(METRICS_FILE), lines).expect("metrics");
        let s = RunSummary::load(&dir).expect("loads");
        assert_eq!(s.config.get("ppo.n_steps"), Some(&json!(8)));
        assert_eq!((s.total_steps, s.doctor_events), (64, 1));
        assert!(s.manifest.is_none());
        std::fs::write(dir.join(MANIFEST_FILE), "{").expect("manifest");
        let err = RunSummary::load(&dir).expect_err("bad manifest");
        assert!(err.to_string().contains(MANIFEST_FILE), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
