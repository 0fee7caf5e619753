//! The `hlynr` command as a library: [`run`] parses the command line and runs
//! it with an environment [`Registry`]. The `hlynr` binary runs it with the
//! built-in environments; a program that embeds hlynr registers its own Rust
//! environments and gets the whole command (train, resume, eval, ...) for
//! them:
//!
//! ```no_run
//! # use hlynr_envs::Registry;
//! # fn my_factory(c: &hlynr_rl::trainer::RunConfig) -> hlynr_rl::trainer::Result<Box<dyn hlynr_rl::trainer::EnvFactory>> { unimplemented!() }
//! let mut registry = Registry::builtin();
//! registry.register("MyRobot-v0", my_factory).unwrap();
//! hlynr_cli::run(&registry).unwrap();
//! ```

mod bench;
mod compare_cmd;
mod doctor_cmd;
mod eval_cmd;
mod export_cmd;
mod monitor_cmd;
mod python_env;
mod resume_cmd;
mod scenario_cmd;
mod serve_cmd;
mod train_cmd;

use clap::{Parser, Subcommand};
pub use hlynr_envs::Registry;
pub use resume_cmd::resume_run;
pub use train_cmd::{NewRun, start_run};

/// Reinforcement-learning training, evaluation and benchmarks.
#[derive(Debug, Parser)]
#[command(name = "hlynr", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Measures engine and environment throughput (see docs/benchmarks.md).
    Bench {
        /// Number of timed batches per workload; the median is reported.
        #[arg(long, default_value_t = 9, value_parser = clap::value_parser!(u64).range(1..=1000))]
        repeats: u64,
    },
    /// Trains an agent (PPO or DQN) from a config into a new run directory (see docs/runs.md).
    Train(train_cmd::TrainArgs),
    /// Continues a run from its newest valid checkpoint.
    Resume(resume_cmd::ResumeArgs),
    /// Evaluates policies side by side on identical seeded episodes (see docs/eval.md).
    Eval(eval_cmd::EvalArgs),
    /// Compares runs side by side: config differences, results, learning curves (see docs/runs.md).
    Compare(compare_cmd::CompareArgs),
    /// Watches a run in the terminal: progress, health sparklines, alerts (see docs/runs.md).
    Monitor(monitor_cmd::MonitorArgs),
    /// Diagnoses a run from its metrics: what went wrong when, and which
    /// config keys to change.
    Doctor(doctor_cmd::DoctorArgs),
    /// Serves a run's policy over HTTP/JSON: batched actions, per-episode
    /// sessions, health and Prometheus metrics (see docs/serving.md).
    Serve(serve_cmd::ServeArgs),
    /// Writes a run's deterministic policy (PPO or DQN family) for other runtimes: ONNX (see
    /// docs/serving.md).
    Export(export_cmd::ExportArgs),
    /// Inspects interception scenarios.
    Scenario {
        #[command(subcommand)]
        command: scenario_cmd::ScenarioCommand,
    },
}

/// Parses the process's command line and runs it; environments are built
/// through `registry`.
pub fn run(registry: &Registry) -> anyhow::Result<()> {
    run_args(std::env::args_os(), registry)
}

/// Parses `args` (the program name first) as the command line and runs it;
/// `--help` and argument errors print and exit as the command does.
pub fn run_args<I, T>(args: I, registry: &Registry) -> anyhow::Result<()>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = Cli::parse_from(args);
    match cli.command {
        Command::Bench { repeats } => bench::run(repeats as usize),
        Command::Train(args) => train_cmd::run(&args, registry),
        Command::Resume(args) => resume_cmd::run(&args, registry),
        Command::Eval(args) => eval_cmd::run(&args, registry),
        Command::Doctor(args) => doctor_cmd::run(&args),
        Command::Compare(args) => compare_cmd::run(&args),
        Command::Monitor(args) => monitor_cmd::run(&args),
        Command::Serve(args) => serve_cmd::run(&args),
        Command::Export(args) => export_cmd::run(&args),
        Command::Scenario { command } => scenario_cmd::run(&command),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_error(args: &[&str]) -> String {
        match Cli::try_parse_from(args) {
            Ok(cli) => panic!("expected a parse error, got {cli:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn eval_parses_the_documented_command_line() {
        let cli = Cli::try_parse_from([
            "hlynr",
            "eval",
            "--env",
            "intercept",
            "--scenario",
            "medium",
            "--policy",
            "zem-pn,apn,pursuit",
            "--episodes",
            "1000",
            "--seed",
            "7",
            "--out",
            "o",
            "--plots",
            "p",
            "--oracle",
            "--threads",
            "2",
        ])
        .unwrap();
        let Command::Eval(a) = cli.command else {
            panic!("not eval");
        };
        assert_eq!(a.policy, ["zem-pn", "apn", "pursuit"]);
        assert_eq!((a.episodes, a.seed, a.threads), (1000, 7, Some(2)));
        assert!(a.oracle && a.out.is_some() && a.plots.is_some());
        assert_eq!(a.scenario.as_deref(), Some("medium"));
    }

    #[test]
    fn eval_argument_errors_are_clear() {
        let e = parse_error(&["hlynr", "eval", "--scenario", "easy"]);
        assert!(e.contains("--policy"), "{e}");
        let e = parse_error(&["hlynr", "eval", "--policy", "zem-pn", "--episodes", "0"]);
        assert!(e.contains("--episodes") && e.contains('0'), "{e}");
        let e = parse_error(&["hlynr", "eval", "--policy", "zem-pn", "--threads", "0"]);
        assert!(e.contains("--threads"), "{e}");
        // Numbers that would exhaust memory or threads are refused up front.
        let huge = "18446744073709551615";
        for flag in ["--episodes", "--threads", "--trajectories"] {
            let e = parse_error(&["hlynr", "eval", "--policy", "zem-pn", flag, huge]);
            assert!(e.contains(flag) && e.contains("not in"), "{e}");
        }
        let e = parse_error(&["hlynr", "scenario", "check", "easy", "--episodes", huge]);
        assert!(e.contains("--episodes") && e.contains("not in"), "{e}");
        let e = parse_error(&["hlynr", "bench", "--repeats", "0"]);
        assert!(e.contains("--repeats"), "{e}");
        let e = parse_error(&["hlynr", "eval", "--policy", "zem-pn", "--seed=-1"]);
        assert!(e.contains("--seed"), "{e}");
        let e = parse_error(&["hlynr", "eval", "--policy", "zem-pn", "--episode", "5"]);
        assert!(e.contains("--episodes"), "tip for a misspelt flag: {e}");
    }

    #[test]
    fn scenario_check_needs_a_scenario() {
        let e = parse_error(&["hlynr", "scenario", "check"]);
        assert!(e.contains("<SCENARIOS>"), "{e}");
        let cli = Cli::try_parse_from(["hlynr", "scenario", "check", "easy", "hard", "--strict"])
            .unwrap();
        let Command::Scenario {
            command: scenario_cmd::ScenarioCommand::Check(a),
        } = cli.command
        else {
            panic!("not scenario check");
        };
        assert_eq!(a.scenarios, ["easy", "hard"]);
        assert!(a.strict);
        assert_eq!(a.episodes, 300);
    }
}
