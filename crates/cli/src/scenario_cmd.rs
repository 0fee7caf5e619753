//! `hlynr scenario`: sanity checks of interception scenarios.
//!
//! A scenario is *degenerate* when doing nothing intercepts (the geometry
//! flies the threat into the interceptor: success then measures nothing), and
//! *infeasible* when the reference law, ZEM-PN on tracker estimates, almost
//! never intercepts (a learner gets no success signal to climb). `check` runs
//! both policies on identical seeds and warns on either.

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use hlynr_intercept::ScenarioConfig;
use hlynr_intercept::scenario::SHIPPED_SCENARIOS;
use hlynr_rl::eval::EvalConfig;
use hlynr_rl::eval::report::PolicyReport;
use hlynr_rl::format;

use crate::eval_cmd::{run_intercept, thread_pool};

/// Policy whose success must stay low.
const ZERO_POLICY: &str = "zero";
/// Reference law whose success must not vanish.
const REFERENCE_POLICY: &str = "zem-pn";

/// Subcommands of `hlynr scenario`.
#[derive(Debug, Subcommand)]
pub enum ScenarioCommand {
    /// Runs zero action and ZEM-PN and warns when a scenario is degenerate
    /// (zero action intercepts) or infeasible (ZEM-PN almost never does).
    Check(CheckArgs),
    /// Lists the scenarios shipped with hlynr.
    List,
}

/// Arguments of `hlynr scenario check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Scenario names (easy, medium, ...) or YAML files.
    #[arg(required = true)]
    pub scenarios: Vec<String>,
    /// Episodes per policy.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=hlynr_rl::eval::MAX_EVAL_EPISODES))]
    pub episodes: u64,
    /// Base seed of the episodes.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Scenario override `key=value` (repeatable), applied to every scenario.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Warn when zero action succeeds in more than this fraction of episodes.
    #[arg(long, default_value_t = 0.05)]
    pub max_zero_success: f64,
    /// Warn when ZEM-PN succeeds in less than this fraction of episodes.
    #[arg(long, default_value_t = 0.05)]
    pub min_pn_success: f64,
    /// Exit with an error status when any scenario draws a warning.
    #[arg(long)]
    pub strict: bool,
    /// Worker threads (default: one per core).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub threads: Option<u64>,
}

/// Runs `hlynr scenario ...`.
pub fn run(command: &ScenarioCommand) -> Result<()> {
    match command {
        ScenarioCommand::List => {
            for (name, _) in SHIPPED_SCENARIOS {
                println!("{name}");
            }
            Ok(())
        }
        ScenarioCommand::Check(args) => check(args),
    }
}

/// The verdict on one scenario.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckOutcome {
    /// Scenario name.
    pub scenario: String,
    /// Zero-action success rate.
    pub zero_success: f64,
    /// ZEM-PN success rate.
    pub pn_success: f64,
    /// Human-readable warnings (empty when the scenario is fine).
    pub warnings: Vec<String>,
}

fn check(args: &CheckArgs) -> Result<()> {
    for (flag, value) in [
        ("--max-zero-success", args.max_zero_success),
        ("--min-pn-success", args.min_pn_success),
    ] {
        if !(0.0..=1.0).contains(&value) {
            bail!("{flag} is a fraction of episodes in [0, 1], got {value}");
        }
    }
    let pool = thread_pool(args.threads)?;
    let mut warned = Vec::new();
    for name in &args.scenarios {
        let outcome = pool.install(|| check_scenario(name, args))?;
        if !outcome.warnings.is_empty() {
            warned.push(outcome.scenario.clone());
        }
    }
    if args.strict && !warned.is_empty() {
        bail!("scenario check warned for: {}", warned.join(", "));
    }
    Ok(())
}

/// Checks one scenario, printing its numbers and verdict.
pub fn check_scenario(name: &str, args: &CheckArgs) -> Result<CheckOutcome> {
    let (scenario, _) = ScenarioConfig::load_resolved(name, &args.overrides)
        .with_context(|| format!("loading scenario `{name}`"))?;
    let names = [ZERO_POLICY.to_string(), REFERENCE_POLICY.to_string()];
    let config = EvalConfig::new(args.episodes, args.seed);
    let (results, _) = run_intercept(&scenario, &names, None, &config, 0)?;
    let spec = hlynr_envs::intercept::report_spec();
    let zero = PolicyReport::from_episodes(&results[0], &spec)?;
    let pn = PolicyReport::from_episodes(&results[1], &spec)?;
    println!(
        "scenario {} ({} episodes per policy, seed {}, kill radius {} m)",
        scenario.name, args.episodes, args.seed, scenario.kill_radius_m
    );
    for (policy, report) in [(ZERO_POLICY, &zero), (REFERENCE_POLICY, &pn)] {
        println!("  {}", policy_line(policy, report));
    }
    let zero_success = zero.success_rate.unwrap_or(0.0);
    let pn_success = pn.success_rate.unwrap_or(0.0);
    let mut warnings = Vec::new();
    if zero_success > args.max_zero_success {
        warnings.push(format!(
            "degenerate: zero action intercepts in {:.1}% of episodes (limit {:.1}%); \
             the geometry brings the threat to the interceptor",
            100.0 * zero_success,
            100.0 * args.max_zero_success
        ));
    }
    if pn_success < args.min_pn_success {
        warnings.push(format!(
            "infeasible: ZEM-PN intercepts in only {:.1}% of episodes (limit {:.1}%)",
            100.0 * pn_success,
            100.0 * args.min_pn_success
        ));
    }
    if warnings.is_empty() {
        println!("  ok");
    }
    for w in &warnings {
        println!("  WARNING: {w}");
    }
    Ok(CheckOutcome {
        scenario: scenario.name.clone(),
        zero_success,
        pn_success,
        warnings,
    })
}

fn policy_line(policy: &str, report: &PolicyReport) -> String {
    let success = match (report.success_rate, report.success_ci95) {
        (Some(r), Some([lo, hi])) => format!(
            "success {:5.1}% [{:.1}, {:.1}]",
            100.0 * r,
            100.0 * lo,
            100.0 * hi
        ),
        _ => "success -".to_string(),
    };
    let miss = report
        .metrics
        .get("miss_distance_m")
        .and_then(|s| s.median)
        .map_or("-".to_string(), format::number);
    let reasons: Vec<String> = report
        .termination_reasons
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    format!(
        "{policy:<7} {success}  median miss {miss} m  ends: {}",
        reasons.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(scenarios: &[&str]) -> CheckArgs {
        CheckArgs {
            scenarios: scenarios.iter().map(|s| s.to_string()).collect(),
            episodes: 6,
            seed: 0,
            overrides: Vec::new(),
            max_zero_success: 0.05,
            min_pn_success: 0.05,
            strict: false,
            threads: Some(1),
        }
    }

    #[test]
    fn thresholds_decide_the_warnings() {
        // Impossible thresholds force both warnings; permissive ones none.
        let mut a = args(&["easy"]);
        a.max_zero_success = -1.0;
        a.min_pn_success = 2.0;
        let outcome = check_scenario("easy", &a).unwrap();
        assert_eq!(outcome.warnings.len(), 2, "{outcome:?}");
        assert!(outcome.warnings[0].starts_with("degenerate"));
        assert!(outcome.warnings[1].starts_with("infeasible"));
        a.max_zero_success = 1.0;
        a.min_pn_success = 0.0;
        assert!(check_scenario("easy", &a).unwrap().warnings.is_empty());
    }

    #[test]
    fn strict_mode_fails_on_warnings_and_bad_thresholds_are_rejected() {
        // A 1 mm kill radius makes ZEM-PN "infeasible" whatever the draw.
        let mut a = args(&["easy"]);
        a.overrides = vec!["kill_radius_m=0.001".to_string()];
        assert!(
            check(&a).is_ok(),
            "warnings alone do not fail without --strict"
        );
        a.strict = true;
        let e = check(&a).unwrap_err().to_string();
        assert!(e.contains("warned for: easy"), "{e}");
        a.max_zero_success = 1.5;
        let e = check(&a).unwrap_err().to_string();
        assert!(e.contains("--max-zero-success") && e.contains("1.5"), "{e}");
    }

    #[test]
    fn unknown_scenario_lists_the_shipped_ones() {
        let e = format!("{:#}", check(&args(&["hrad"])).unwrap_err());
        assert!(e.contains("did you mean `hard`?"), "{e}");
        assert!(e.contains("easy, medium, hard, extreme, legacy"), "{e}");
    }
}
