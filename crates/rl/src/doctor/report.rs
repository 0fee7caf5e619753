//! Rendering of findings: a Markdown timeline for people and a JSON document
//! for tools.

use std::fmt::Write as _;

use serde_json::{Map, Value};

use super::{Finding, Severity, evidence_json};
use crate::format;
use crate::metrics::{RunEvent, event_kind};

/// Event kinds the report lists: what the live doctor logged and what the
/// trainer did about it (or about non-finite updates on its own).
const REPORTED_EVENT_KINDS: [&str; 5] = [
    event_kind::DOCTOR,
    event_kind::ROLLBACK,
    event_kind::STOP,
    event_kind::STOPPED,
    event_kind::NONFINITE,
];

/// The doctor's verdict on a run in one line, from the findings it logged
/// while training (`doctor` events): `no problems found`, or each warn/error
/// rule with its severity, first step and count. Informational findings do
/// not count (they are in `hlynr doctor`).
pub fn verdict(logged_events: &[(u64, &RunEvent)]) -> String {
    // (rule, worst severity, first step, count), in order of first appearance.
    let mut rules: Vec<(String, &str, u64, u32)> = Vec::new();
    for (step, e) in logged_events
        .iter()
        .filter(|(_, e)| e.kind == event_kind::DOCTOR)
    {
        let field = |k: &str| e.fields.get(k).and_then(Value::as_str).unwrap_or("");
        let severity = field("severity");
        if !matches!(severity, "warn" | "error") {
            continue;
        }
        match rules.iter_mut().find(|r| r.0 == field("rule")) {
            Some(r) => {
                r.3 += 1;
                if severity == "error" {
                    r.1 = "error";
                }
            }
            None => rules.push((field("rule").to_string(), severity, *step, 1)),
        }
    }
    if rules.is_empty() {
        return "doctor: no problems found".to_string();
    }
    let listed: Vec<String> = rules
        .iter()
        .map(|(rule, severity, first, n)| {
            let times = if *n == 1 {
                String::new()
            } else {
                format!(", {n} times")
            };
            format!("{rule} ({severity}, first at step {first}{times})")
        })
        .collect();
    format!("doctor: {}", listed.join("; "))
}

/// The findings as `{"findings": [{"rule", "severity", "step", "evidence",
/// "diagnosis", "suggestion", "action"}, ...]}`. Non-finite evidence values
/// are the strings `"NaN"`, `"Infinity"`, `"-Infinity"`.
pub fn to_json(findings: &[Finding]) -> Value {
    let list = findings
        .iter()
        .map(|f| {
            let mut m = Map::new();
            m.insert("rule".into(), Value::String(f.rule.clone()));
            m.insert("severity".into(), Value::String(f.severity.name().into()));
            m.insert("step".into(), Value::from(f.step));
            m.insert("evidence".into(), evidence_json(&f.evidence));
            m.insert("diagnosis".into(), Value::String(f.diagnosis.clone()));
            m.insert("suggestion".into(), Value::String(f.suggestion.clone()));
            m.insert("action".into(), Value::String(f.action.name().into()));
            Value::Object(m)
        })
        .collect();
    let mut doc = Map::new();
    doc.insert("findings".into(), Value::Array(list));
    Value::Object(doc)
}

/// A Markdown report: a summary line, the findings in step order with their
/// evidence, diagnosis and suggestion (or a line saying the run looks
/// healthy), then the doctor, rollback, stop and non-finite events the run
/// logged while training.
pub fn render_markdown(
    run_name: &str,
    findings: &[Finding],
    logged_events: &[(u64, &RunEvent)],
) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Doctor report: {run_name}\n");
    let count = |sev: Severity| findings.iter().filter(|f| f.severity == sev).count();
    if findings.is_empty() {
        s.push_str("Healthy: no rule fired on this run's metrics.\n");
    } else {
        let _ = writeln!(
            s,
            "{} finding{}: {} error, {} warning, {} info.\n",
            findings.len(),
            if findings.len() == 1 { "" } else { "s" },
            count(Severity::Error),
            count(Severity::Warn),
            count(Severity::Info)
        );
        s.push_str("## Timeline\n\n");
        let mut ordered: Vec<&Finding> = findings.iter().collect();
        ordered.sort_by_key(|f| f.step); // stable: keeps rule order within a step
        for f in ordered {
            let _ = writeln!(
                s,
                "### Step {}: {} `{}` (action: {})\n",
                f.step,
                f.severity.name().to_uppercase(),
                f.rule,
                f.action.name()
            );
            let _ = writeln!(s, "{}\n", f.diagnosis);
            if !f.evidence.is_empty() {
                let evidence: Vec<String> = f
                    .evidence
                    .iter()
                    .map(|(k, &v)| format!("`{k}` = {}", format::number(v)))
                    .collect();
                let _ = writeln!(s, "- Evidence: {}", evidence.join(", "));
            }
            let _ = writeln!(s, "- Suggestion: {}\n", f.suggestion);
        }
    }
    let events: Vec<&(u64, &RunEvent)> = logged_events
        .iter()
        .filter(|(_, e)| REPORTED_EVENT_KINDS.contains(&e.kind.as_str()))
        .collect();
    if !events.is_empty() {
        s.push_str("\n## Events logged during training\n\n");
        let rows: Vec<Vec<String>> = events
            .iter()
            .map(|(step, e)| {
                let field = |k: &str| match e.fields.get(k) {
                    Some(Value::String(x)) => x.clone(),
                    Some(v) => v.to_string(),
                    None => String::new(),
                };
                vec![
                    step.to_string(),
                    e.kind.clone(),
                    field("rule"),
                    field("severity"),
                    field("action"),
                    e.message.clone(),
                ]
            })
            .collect();
        use format::Align::{Left, Right};
        format::markdown_table(
            &mut s,
            &["step", "kind", "rule", "severity", "action", "message"],
            &[Right, Left, Left, Left, Left, Left],
            &rows,
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::doctor::DoctorAction;

    #[test]
    fn the_verdict_lists_warn_and_error_rules_once_with_their_first_step() {
        let event = |rule: &str, severity: &str| {
            RunEvent::new("doctor", "x")
                .with("rule", rule)
                .with("severity", severity)
        };
        let events = [
            event("entropy_stuck", "info"),
            event("kl_blowup", "warn"),
            event("nonfinite", "info"),
            event("kl_blowup", "error"),
            event("grad_norm_spike", "warn"),
        ];
        let logged: Vec<(u64, &RunEvent)> = [512u64, 1024, 1536, 2048, 4096]
            .into_iter()
            .zip(events.iter())
            .collect();
        assert_eq!(
            verdict(&logged),
            "doctor: kl_blowup (error, first at step 1024, 2 times); \
             grad_norm_spike (warn, first at step 4096)"
        );
        assert_eq!(verdict(&logged[..1]), "doctor: no problems found");
        let stop = RunEvent::new("stopped", "x");
        assert_eq!(verdict(&[(9, &stop)]), "doctor: no problems found");
    }

    fn finding(rule: &str, severity: Severity, step: u64) -> Finding {
        Finding {
            rule: rule.into(),
            severity,
            step,
            evidence: BTreeMap::from([
                ("train/approx_kl".to_string(), 2.00774e-7),
                ("train/value_loss".to_string(), f64::NAN),
            ]),
            diagnosis: format!("diagnosis of {rule}"),
            suggestion: "raise `ppo.learning_rate`".into(),
            action: DoctorAction::Warn,
        }
    }

    #[test]
    fn json_has_exactly_the_documented_fields() {
        let v = to_json(&[finding("frozen_policy", Severity::Warn, 7)]);
        let f = &v["findings"][0];
        let mut fields: Vec<&str> = f.as_object().unwrap().keys().map(String::as_str).collect();
        fields.sort_unstable();
        assert_eq!(
            fields,
            [
                "action",
                "diagnosis",
                "evidence",
                "rule",
                "severity",
                "step",
                "suggestion"
            ]
        );
        assert_eq!(f["severity"], "warn");
        assert_eq!(f["step"], 7);
        assert_eq!(f["evidence"]["train/approx_kl"], 2.00774e-7);
        assert_eq!(f["evidence"]["train/value_loss"], "NaN");
        assert_eq!(to_json(&[]), serde_json::json!({"findings": []}));
    }

    #[test]
    fn markdown_orders_findings_and_lists_the_runs_events() {
        let findings = [
            finding("success_collapse", Severity::Error, 900),
            finding("frozen_policy", Severity::Warn, 100),
        ];
        let doctor_event = RunEvent::new("doctor", "the policy froze")
            .with("rule", "frozen_policy")
            .with("severity", "warn")
            .with("action", "warn");
        let rollback = RunEvent::new("rollback", "restored checkpoints/step-000000800");
        let checkpoint = RunEvent::new("checkpoint", "new best evaluation");
        let events = [(100, &doctor_event), (900, &rollback), (50, &checkpoint)];
        let md = render_markdown("cartpole", &findings, &events);
        assert!(md.starts_with("# Doctor report: cartpole"), "{md}");
        assert!(
            md.contains("2 findings: 1 error, 1 warning, 0 info."),
            "{md}"
        );
        let frozen = md
            .find("Step 100: WARN `frozen_policy`")
            .expect("frozen listed");
        let collapse = md
            .find("Step 900: ERROR `success_collapse`")
            .expect("collapse listed");
        assert!(frozen < collapse, "timeline is in step order:\n{md}");
        assert!(md.contains("`train/approx_kl` = 2.008e-7"), "{md}");
        assert!(md.contains("| 100 | doctor | frozen_policy | warn | warn | the policy froze |"));
        assert!(md.contains("| 900 | rollback |"), "{md}");
        assert!(
            !md.contains("new best evaluation"),
            "checkpoints are not doctor business"
        );
        assert!(!md.contains("Healthy"));
    }

    #[test]
    fn markdown_says_healthy_without_findings() {
        let md = render_markdown("r", &[], &[]);
        assert!(md.contains("Healthy: no rule fired"), "{md}");
        assert!(!md.contains("Timeline") && !md.contains("Events"));
    }
}
