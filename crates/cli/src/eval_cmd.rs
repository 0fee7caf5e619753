//! `hlynr eval`: runs policies side by side on identical seeded episodes and
//! prints (and optionally writes) the comparison.
//!
//! Interception (`--env intercept`) evaluates the guidance baselines of
//! `hlynr-intercept` (and `random`) on a scenario; classic-control ids
//! (`--env CartPole-v1`, ...) evaluate `random`, with the registered time
//! limit; `--env racing` evaluates its scripted driver (and `random`), with
//! `--set` changing its settings. The engine, statistics and report format
//! live in `hlynr_rl::eval`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use hlynr_env::{Env, Info, Policy, Step};
use hlynr_envs::intercept::plots::{TrajectorySeries, trajectory_svg};
use hlynr_intercept::policies::POLICY_NAMES;
use hlynr_intercept::{InterceptEnv, ScenarioConfig, make_policy};
use hlynr_rl::eval::plot::{HistogramSeries, miss_histogram_svg};
use hlynr_rl::eval::report::{
    EvalReport, ReportContext, default_columns, terminal_table, write_atomic,
};
use hlynr_rl::eval::{
    EpisodeProbe, EvalConfig, NoProbe, PolicyEpisodes, RandomPolicy, evaluate_with_probes,
};

/// The env id of the interception simulator.
use hlynr_envs::racing::plots::RacingPlots;
use hlynr_envs::{INTERCEPT, RACING, Registry};

/// Name of the uniform-random baseline, available on every env.
pub const RANDOM_POLICY: &str = "random";

/// Seed stream index of the random baseline's generator (distinct from the
/// episode seeds, which use indices `0..episodes`).
const RANDOM_POLICY_STREAM: u64 = u64::MAX;

/// Arguments of `hlynr eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Environment: `intercept`, or a classic-control id (`CartPole-v1`,
    /// `Pendulum-v1`, `MountainCarContinuous-v0`, `CartPoleNoVel-v1`) or
    /// `racing`.
    #[arg(long, default_value = INTERCEPT)]
    pub env: String,
    /// Interception scenario: a shipped name (easy, medium, hard, extreme,
    /// legacy) or a YAML file. Default: medium.
    #[arg(long)]
    pub scenario: Option<String>,
    /// Scenario override `key=value` (repeatable), e.g. `--set kill_radius_m=5`;
    /// for racing, a setting, e.g. `--set track=oval` (also with `--model`:
    /// `--set track=held_out` evaluates on tracks the run never saw).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Comma-separated policies. Interception: zero, pursuit, ppn, tpn,
    /// zem-pn, apn, ogl, random. Racing: pure-pursuit, random. Classic
    /// envs: random.
    #[arg(long, value_delimiter = ',', required_unless_present = "model")]
    pub policy: Vec<String>,
    /// A trained model: a run directory (its `best` checkpoint, else `last`)
    /// or `RUN_DIR/checkpoints/NAME`. It is evaluated on the run's own
    /// environment config with its saved normaliser statistics, beside any
    /// `--policy` baselines. Without `--out` the report goes to `RUN_DIR/eval/`.
    #[arg(long, value_name = "RUN_DIR[/checkpoints/NAME]")]
    pub model: Option<PathBuf>,
    /// Episodes per policy.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=hlynr_rl::eval::MAX_EVAL_EPISODES))]
    pub episodes: u64,
    /// Base seed: episode k of every policy is reset with a seed derived from
    /// (seed, k).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Writes DIR/report.json and DIR/report.md.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Writes plots into DIR. Interception: the miss-distance histogram and
    /// trajectory SVGs of the first episodes. Racing: the track with every
    /// policy's driven line, and GIFs of the camera and of a top-down view
    /// following the car, for the first episodes.
    #[arg(long, value_name = "DIR")]
    pub plots: Option<PathBuf>,
    /// Episodes drawn with `--plots` (one trajectory SVG each; racing: one
    /// track SVG and two GIFs per policy each).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(0..=100))]
    pub trajectories: u64,
    /// Baselines read the true threat state instead of the tracker estimate
    /// (a perfect-information upper bound; interception only).
    #[arg(long)]
    pub oracle: bool,
    /// Worker threads (default: one per core). Results do not depend on it.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub threads: Option<u64>,
}

/// Runs `hlynr eval`.
pub fn run(args: &EvalArgs, registry: &Registry) -> Result<()> {
    let pool = thread_pool(args.threads)?;
    let started = Instant::now();
    let evaluation = pool.install(|| evaluate_args(args, registry))?;
    let elapsed_s = started.elapsed().as_secs_f64();
    let report = &evaluation.report;
    let title = match &report.scenario {
        Some(s) => format!("{} / {s}", report.env),
        None => report.env.clone(),
    };
    println!(
        "{title}: {} episodes per policy, seed {}{}\n",
        report.episodes,
        report.seed,
        if report.oracle {
            ", oracle (true state)"
        } else {
            ""
        }
    );
    print!("{}", terminal_table(report, &default_columns(report)));
    eprintln!("\nevaluated in {elapsed_s:.1} s");
    let model_out = evaluation.model_out.clone();
    if let Some(dir) = args.out.as_ref().or(model_out.as_ref()) {
        report
            .write(dir)
            .with_context(|| format!("writing the report into {}", dir.display()))?;
        println!(
            "wrote {} and {}",
            dir.join("report.json").display(),
            dir.join("report.md").display()
        );
    }
    if let (Some(dir), Some(plots)) = (&args.plots, &evaluation.plots) {
        let written = plots.write(dir)?;
        println!("wrote {} plots into {}", written, dir.display());
    }
    if let (Some(dir), Some(plots)) = (&args.plots, &evaluation.racing_plots) {
        print!("{}", hlynr_envs::racing::plots::summary(plots));
        let written = plots
            .write(dir)
            .with_context(|| format!("writing plots into {}", dir.display()))?;
        println!("wrote {} plots into {}", written, dir.display());
    }
    Ok(())
}

/// A finished evaluation: the report and, for interception, what to plot.
#[derive(Debug)]
pub struct Evaluation {
    /// The report (also the terminal table's source).
    pub report: EvalReport,
    /// Plot data, when the env is interception.
    pub plots: Option<InterceptPlots>,
    /// Recorded episodes, when the env is racing and plots are asked for.
    pub racing_plots: Option<RacingPlots>,
    /// Default report directory of a `--model` evaluation (`RUN_DIR/eval/...`).
    pub model_out: Option<PathBuf>,
}

/// Validates the arguments, runs the evaluation and builds the report.
pub fn evaluate_args(args: &EvalArgs, registry: &Registry) -> Result<Evaluation> {
    if let Some(model) = &args.model {
        return evaluate_model(args, model, registry);
    }
    let names = normalise_policy_names(&args.policy)?;
    let config = EvalConfig::new(args.episodes, args.seed);
    if args.env == INTERCEPT {
        let scenario_name = args.scenario.as_deref().unwrap_or("medium");
        let (mut scenario, _) = ScenarioConfig::load_resolved(scenario_name, &args.overrides)
            .with_context(|| format!("loading scenario `{scenario_name}`"))?;
        scenario.oracle = args.oracle;
        let outcome = run_intercept(&scenario, &names, None, &config, recorded_episodes(args))?;
        return intercept_evaluation(args, &scenario, &config, outcome, None);
    }

    let env_id = args.env.as_str();
    for (flag, given) in [
        ("--scenario", args.scenario.is_some()),
        ("--plots", args.plots.is_some() && env_id != RACING),
        ("--oracle", args.oracle),
    ] {
        if given {
            bail!("{flag} applies only to --env {INTERCEPT}, not to {env_id}");
        }
    }
    let settings = hlynr_envs::eval_settings(env_id, &args.overrides)?;
    let env_config: hlynr_rl::trainer::RunConfig = hlynr_env::config::from_value(
        &serde_json::json!({ "env": { "id": env_id, "settings": settings } }),
    )?;
    let factory = registry.factory_for(&env_config)?;
    let make_env = || factory.make_eval();
    let probe_env = make_env()?;
    let mut policies = env_policies(&names, &env_config, probe_env.action_space(), args.seed)?;
    let (results, _) = evaluate_with_probes(&make_env, &mut policies, &config, |_| NoProbe)?;
    let racing_plots = match args.plots {
        Some(_) => Some(racing_plots(&env_config, &names, None, args)?),
        None => None,
    };
    let context = ReportContext {
        env: env_id.to_string(),
        scenario: None,
        seed: args.seed,
        episodes: args.episodes,
        deterministic: config.deterministic,
        oracle: false,
        spec: hlynr_envs::report_spec(env_id),
    };
    Ok(Evaluation {
        report: EvalReport::new(&context, &results)?,
        plots: None,
        racing_plots,
        model_out: None,
    })
}

/// `--model`: the run's trained policy on the run's own environment config
/// (and frozen normaliser statistics), beside the `--policy` baselines.
pub fn evaluate_model(args: &EvalArgs, model: &Path, registry: &Registry) -> Result<Evaluation> {
    let (run_dir, checkpoint) = hlynr_rl::trainer::locate_model(model)?;
    let loaded = hlynr_rl::trainer::load_model(&run_dir, &checkpoint)
        .with_context(|| format!("loading model {}", model.display()))?;
    crate::python_env::ensure_hosted(&loaded.config, registry)?;
    if let Some((index, name)) = &loaded.stage {
        eprintln!(
            "model evaluated on curriculum stage {index} `{name}` (the final stage's environment)"
        );
    }
    let env_id = loaded.config.env.id.clone();
    if args.env != INTERCEPT && args.env != env_id {
        bail!(
            "--env {} does not match the model's env `{env_id}` (from its config.yaml)",
            args.env
        );
    }
    for (flag, given) in [
        ("--scenario", args.scenario.is_some()),
        ("--set", !args.overrides.is_empty() && env_id != RACING),
    ] {
        if given {
            bail!(
                "{flag} cannot be combined with --model: the model is evaluated on its run's own environment config"
            );
        }
    }
    let mut loaded = loaded;
    if !args.overrides.is_empty() {
        // Racing models may be evaluated elsewhere than they trained: on the
        // held-out tracks, another track, another car.
        loaded.config.env.settings =
            hlynr_envs::racing::settings_of(&loaded.config, &args.overrides)?;
        eprintln!(
            "model evaluated with env.settings overrides: {}",
            args.overrides.join(", ")
        );
    }
    let names = if args.policy.is_empty() {
        Vec::new()
    } else {
        normalise_policy_names(&args.policy)?
    };
    let mut model_policy = loaded.policy;
    if names.contains(&model_policy.name().to_string()) {
        model_policy.set_name(format!("model:{}", model_policy.name()));
    }
    let config = EvalConfig::new(args.episodes, args.seed);
    let ckpt_name = checkpoint
        .file_name()
        .map_or_else(|| "model".to_string(), |n| n.to_string_lossy().into_owned());
    let model_out = Some(
        run_dir
            .join("eval")
            .join(format!("{ckpt_name}-seed{}", args.seed)),
    );
    if env_id == INTERCEPT {
        let settings = hlynr_envs::ScenarioSettings::parse(&loaded.config.env.settings)?;
        let (mut scenario, _) = hlynr_envs::resolve_scenario(&settings)?;
        scenario.oracle = args.oracle;
        // The baselines read the bare env; a model trained behind a frame
        // stack stacks its own frames.
        let model = hlynr_rl::trainer::bare_policy(model_policy, &loaded.record)?;
        let outcome = run_intercept(
            &scenario,
            &names,
            Some(model),
            &config,
            recorded_episodes(args),
        )?;
        return intercept_evaluation(args, &scenario, &config, outcome, model_out);
    }
    for (flag, given) in [
        ("--plots", args.plots.is_some() && env_id != RACING),
        ("--oracle", args.oracle),
    ] {
        if given {
            bail!("{flag} applies only to {INTERCEPT} and {RACING} models, not to {env_id}");
        }
    }
    let racing_plots = match args.plots {
        Some(_) => {
            // The recording feeds the bare env's frames: the model stacks its own.
            let again = hlynr_rl::trainer::load_model(&run_dir, &checkpoint)?;
            let model = hlynr_rl::trainer::bare_policy(again.policy, &again.record)?;
            Some(racing_plots(&loaded.config, &names, Some(model), args)?)
        }
        None => None,
    };
    let factory = registry.factory_for(&loaded.config)?;
    let make_env = || factory.make_eval();
    let probe_env = make_env()?;
    let mut policies = env_policies(&names, &loaded.config, probe_env.action_space(), args.seed)?;
    policies.push(Box::new(model_policy));
    let (results, _) = evaluate_with_probes(&make_env, &mut policies, &config, |_| NoProbe)?;
    let context = ReportContext {
        env: env_id.clone(),
        scenario: None,
        seed: args.seed,
        episodes: args.episodes,
        deterministic: config.deterministic,
        oracle: false,
        spec: hlynr_envs::report_spec(&env_id),
    };
    Ok(Evaluation {
        report: EvalReport::new(&context, &results)?,
        plots: None,
        racing_plots,
        model_out,
    })
}

/// The uniform-random baseline, its generator derived from the eval seed.
fn random_policy(action_space: &hlynr_env::Space, seed: u64) -> Box<dyn Policy> {
    Box::new(RandomPolicy::new(
        action_space.clone(),
        hlynr_rng::derive_seed(seed, RANDOM_POLICY_STREAM),
    ))
}

/// Records the first `--trajectories` episodes of each policy (then
/// `model`) on the racing env of `config`, each reset with its evaluation
/// seed.
fn racing_plots(
    config: &hlynr_rl::trainer::RunConfig,
    names: &[String],
    model: Option<Box<dyn Policy>>,
    args: &EvalArgs,
) -> Result<RacingPlots> {
    let factory = hlynr_envs::RacingFactory::new(config)?;
    let probe_env = hlynr_rl::trainer::EnvFactory::make_eval(&factory)?;
    let mut policies = env_policies(names, config, probe_env.action_space(), args.seed)?;
    policies.extend(model);
    let mut plots = RacingPlots::default();
    for policy in &mut policies {
        for k in 0..args.trajectories {
            let seed = hlynr_rl::eval::episode_seed(args.seed, k);
            let rec = factory
                .record(policy.as_mut(), seed)
                .with_context(|| format!("recording {} episode {k}", policy.name()))?;
            plots.recordings.push((policy.name().to_string(), k, rec));
        }
    }
    Ok(plots)
}

/// The `--policy` baselines of an environment other than interception:
/// `random` and the environment's own scripted ones.
fn env_policies(
    names: &[String],
    config: &hlynr_rl::trainer::RunConfig,
    action_space: &hlynr_env::Space,
    seed: u64,
) -> Result<Vec<Box<dyn Policy>>> {
    let id = config.env.id.as_str();
    let mut available = vec![RANDOM_POLICY];
    available.extend(hlynr_envs::baselines(id));
    names
        .iter()
        .map(|name| -> Result<Box<dyn Policy>> {
            if name == RANDOM_POLICY {
                return Ok(random_policy(action_space, seed));
            }
            match hlynr_envs::make_baseline(config, name)? {
                Some(policy) => Ok(policy),
                None => bail!(unknown_policy_message(name, &available, id)),
            }
        })
        .collect()
}

/// Trims and lower-cases `--policy` values; empty or repeated names are errors.
pub fn normalise_policy_names(raw: &[String]) -> Result<Vec<String>> {
    let mut names: Vec<String> = Vec::with_capacity(raw.len());
    for r in raw {
        let name = r.trim().to_ascii_lowercase();
        if name.is_empty() {
            bail!("--policy: empty policy name in {:?}", raw.join(","));
        }
        if names.contains(&name) {
            bail!("--policy: `{name}` is listed twice");
        }
        names.push(name);
    }
    Ok(names)
}

/// "unknown policy `x`; did you mean `y`? (available for ENV: ...)".
pub fn unknown_policy_message(name: &str, available: &[&str], env: &str) -> String {
    let mut message = format!("unknown policy `{name}`");
    if let Some(s) = hlynr_env::config::suggest(name, available.iter().copied()) {
        message.push_str(&format!("; did you mean `{s}`?"));
    }
    message.push_str(&format!(" (available for {env}: {})", available.join(", ")));
    message
}

/// Builds the interception policies named in `names` (already normalised).
pub fn intercept_policies(
    names: &[String],
    scenario: &ScenarioConfig,
    action_space: &hlynr_env::Space,
    seed: u64,
) -> Result<Vec<Box<dyn Policy>>> {
    let mut available: Vec<&str> = POLICY_NAMES.to_vec();
    available.push(RANDOM_POLICY);
    names
        .iter()
        .map(|name| -> Result<Box<dyn Policy>> {
            if name == RANDOM_POLICY {
                return Ok(random_policy(action_space, seed));
            }
            if !POLICY_NAMES.contains(&name.as_str()) {
                bail!(unknown_policy_message(name, &available, INTERCEPT));
            }
            make_policy(name, scenario).with_context(|| {
                format!("building policy `{name}` for scenario `{}`", scenario.name)
            })
        })
        .collect()
}

/// Runs the named policies, then `extra` (a trained model), on `scenario`,
/// recording the trajectories of the first `recorded_episodes` episodes of each.
pub fn run_intercept(
    scenario: &ScenarioConfig,
    names: &[String],
    extra: Option<Box<dyn Policy>>,
    config: &EvalConfig,
    recorded_episodes: u64,
) -> Result<(Vec<PolicyEpisodes>, Vec<InterceptProbe>)> {
    let make_env = || InterceptEnv::new(scenario);
    let env = make_env().with_context(|| format!("building scenario `{}`", scenario.name))?;
    let mut policies = intercept_policies(names, scenario, env.action_space(), config.seed)?;
    policies.extend(extra);
    let outcome = evaluate_with_probes(&make_env, &mut policies, config, |_| {
        InterceptProbe::new(recorded_episodes)
    })?;
    Ok(outcome)
}

/// Episodes whose trajectories are recorded: only when plots are asked for.
fn recorded_episodes(args: &EvalArgs) -> u64 {
    if args.plots.is_some() {
        args.trajectories
    } else {
        0
    }
}

/// The report and plot data of an interception evaluation.
fn intercept_evaluation(
    args: &EvalArgs,
    scenario: &ScenarioConfig,
    config: &EvalConfig,
    (results, probes): (Vec<PolicyEpisodes>, Vec<InterceptProbe>),
    model_out: Option<PathBuf>,
) -> Result<Evaluation> {
    let context = ReportContext {
        env: INTERCEPT.to_string(),
        scenario: Some(scenario.name.clone()),
        seed: args.seed,
        episodes: args.episodes,
        deterministic: config.deterministic,
        oracle: args.oracle,
        spec: hlynr_envs::intercept::report_spec(),
    };
    let report = EvalReport::new(&context, &results)?;
    let plots = InterceptPlots {
        scenario: scenario.name.clone(),
        kill_radius_m: scenario.kill_radius_m,
        seed: args.seed,
        results,
        probes,
    };
    Ok(Evaluation {
        report,
        plots: Some(plots),
        racing_plots: None,
        model_out,
    })
}

/// Positions of one recorded engagement, one sample per decision step.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RecordedTrajectory {
    /// Interceptor positions, ENU (m).
    pub interceptor_m: Vec<[f64; 3]>,
    /// Threat positions, ENU (m).
    pub threat_m: Vec<[f64; 3]>,
}

/// Interception probe: names termination reasons from the env, drops the
/// reason code from the metrics, records the first episodes' trajectories.
#[derive(Debug)]
pub struct InterceptProbe {
    recorded_episodes: u64,
    /// Trajectory of episode `k` at index `k`.
    pub trajectories: Vec<RecordedTrajectory>,
}

impl InterceptProbe {
    /// A probe recording the first `recorded_episodes` episodes.
    pub fn new(recorded_episodes: u64) -> Self {
        Self {
            recorded_episodes,
            trajectories: Vec::new(),
        }
    }
}

impl EpisodeProbe<InterceptEnv> for InterceptProbe {
    fn on_step(&mut self, episode: u64, step: u64, env: &InterceptEnv) {
        if episode >= self.recorded_episodes {
            return;
        }
        if step == 0 {
            self.trajectories.push(RecordedTrajectory::default());
        }
        let e = env.engagement();
        let m = e.interceptor.position_m();
        let t = e.threat.state.position_m;
        if let Some(tr) = self.trajectories.last_mut() {
            tr.interceptor_m.push([m.x, m.y, m.z]);
            tr.threat_m.push([t.x, t.y, t.z]);
        }
    }

    fn termination_reason(&self, env: &InterceptEnv, _info: &Info, _step: &Step) -> String {
        env.termination_reason().name().to_string()
    }

    fn keep_metric(&self, key: &str) -> bool {
        // The numeric reason code is counted by name in `termination_reasons`.
        key != "termination_reason"
    }
}

/// What `--plots` draws for an interception evaluation.
#[derive(Debug)]
pub struct InterceptPlots {
    scenario: String,
    kill_radius_m: f64,
    seed: u64,
    results: Vec<PolicyEpisodes>,
    probes: Vec<InterceptProbe>,
}

impl InterceptPlots {
    /// Writes `miss_distance.svg` and `trajectory_epNNN.svg` into `dir`;
    /// returns how many files were written.
    pub fn write(&self, dir: &Path) -> Result<usize> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let episodes = self.results.first().map_or(0, |r| r.episodes.len());
        let series: Vec<HistogramSeries> = self
            .results
            .iter()
            .map(|r| {
                let successes = r
                    .episodes
                    .iter()
                    .filter(|e| e.is_success == Some(true))
                    .count();
                HistogramSeries {
                    label: format!(
                        "{} ({:.1}% within {} m)",
                        r.policy,
                        100.0 * successes as f64 / r.episodes.len().max(1) as f64,
                        self.kill_radius_m
                    ),
                    values: r
                        .episodes
                        .iter()
                        .filter_map(|e| e.metric("miss_distance_m"))
                        .collect(),
                }
            })
            .collect();
        let svg = miss_histogram_svg(
            &format!(
                "Miss distance, scenario {}: {episodes} episodes per policy, seed {}",
                self.scenario, self.seed
            ),
            "closest-approach miss distance (m, log scale)",
            &series,
            Some((
                self.kill_radius_m,
                &format!("kill radius {} m", self.kill_radius_m),
            )),
            5,
        );
        write_atomic(&dir.join("miss_distance.svg"), svg.as_bytes())?;
        let mut written = 1;
        let recorded = self
            .probes
            .iter()
            .map(|p| p.trajectories.len())
            .min()
            .unwrap_or(0);
        for k in 0..recorded {
            let series: Vec<TrajectorySeries> = self
                .results
                .iter()
                .zip(&self.probes)
                .map(|(r, p)| {
                    let e = &r.episodes[k];
                    TrajectorySeries {
                        label: r.policy.clone(),
                        interceptor_m: p.trajectories[k].interceptor_m.clone(),
                        threat_m: p.trajectories[k].threat_m.clone(),
                        miss_distance_m: e.metric("miss_distance_m"),
                        success: e.is_success,
                    }
                })
                .collect();
            let reasons: Vec<String> = self
                .results
                .iter()
                .map(|r| format!("{}: {}", r.policy, r.episodes[k].termination_reason))
                .collect();
            let svg = trajectory_svg(
                &format!(
                    "Scenario {}, episode {k} (seed {}); end: {}",
                    self.scenario,
                    self.seed,
                    reasons.join(", ")
                ),
                &series,
            );
            write_atomic(
                &dir.join(format!("trajectory_ep{k:03}.svg")),
                svg.as_bytes(),
            )?;
            written += 1;
        }
        Ok(written)
    }
}

/// A rayon pool with `threads` workers (default: rayon's choice, one per core).
pub fn thread_pool(threads: Option<u64>) -> Result<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads.unwrap_or(0) as usize)
        .build()
        .context("starting the evaluation thread pool")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(env: &str, policies: &[&str]) -> EvalArgs {
        EvalArgs {
            env: env.to_string(),
            scenario: None,
            overrides: Vec::new(),
            policy: policies.iter().map(|s| s.to_string()).collect(),
            episodes: 3,
            seed: 1,
            out: None,
            plots: None,
            trajectories: 2,
            oracle: false,
            threads: Some(1),
            model: None,
        }
    }

    fn error_of(args: &EvalArgs) -> String {
        match evaluate_args(args, &Registry::builtin()) {
            Ok(_) => panic!("expected an error for {args:?}"),
            Err(e) => format!("{e:#}"),
        }
    }

    #[test]
    fn unknown_policy_suggests_the_closest_name() {
        let e = error_of(&args(INTERCEPT, &["zem-pm"]));
        assert!(
            e.contains("unknown policy `zem-pm`; did you mean `zem-pn`?"),
            "{e}"
        );
        assert!(e.contains("random"), "{e}");
        let e = error_of(&args("CartPole-v1", &["zem-pn"]));
        assert!(e.contains("available for CartPole-v1: random"), "{e}");
    }

    #[test]
    fn unknown_scenario_and_env_are_listed() {
        let mut a = args(INTERCEPT, &["zem-pn"]);
        a.scenario = Some("meduim".into());
        let e = error_of(&a);
        assert!(
            e.contains("did you mean `medium`?") && e.contains("easy"),
            "{e}"
        );
        let e = error_of(&args("CartPol-v1", &["random"]));
        assert!(
            e.contains("did you mean `CartPole-v1`") && e.contains("intercept"),
            "{e}"
        );
    }

    #[test]
    fn intercept_only_flags_are_rejected_on_classic_envs() {
        let mut a = args("CartPole-v1", &["random"]);
        a.oracle = true;
        assert!(error_of(&a).contains("--oracle applies only to --env intercept"));
        let mut a = args("CartPole-v1", &["random"]);
        a.plots = Some(PathBuf::from("plots"));
        assert!(error_of(&a).contains("--plots"));
    }

    #[test]
    fn duplicate_and_empty_policy_names_are_rejected() {
        let e = error_of(&args(INTERCEPT, &["zem-pn", "ZEM-PN"]));
        assert!(e.contains("`zem-pn` is listed twice"), "{e}");
        let e = error_of(&args(INTERCEPT, &["zem-pn", " "]));
        assert!(e.contains("empty policy name"), "{e}");
    }

    #[test]
    fn classic_random_evaluation_is_reproducible() {
        let a = args("CartPole-v1", &["random"]);
        let first = evaluate_args(&a, &Registry::builtin()).unwrap().report;
        let second = evaluate_args(&a, &Registry::builtin()).unwrap().report;
        assert_eq!(first.to_json(), second.to_json());
        let p = first.policies.get("random").unwrap();
        assert_eq!(p.episodes, 3);
        // A random CartPole policy falls within about 10 to 60 steps.
        assert!(p.episode_length.mean.unwrap() < 100.0);
        assert!(p.success_rate.is_none());
    }

    #[test]
    fn intercept_evaluation_writes_reports_and_plots() {
        let dir = std::env::temp_dir().join(format!("hlynr-eval-test-{}", std::process::id()));
        let mut a = args(INTERCEPT, &["zem-pn", "zero"]);
        a.scenario = Some("easy".into());
        a.out = Some(dir.join("report"));
        a.plots = Some(dir.join("plots"));
        a.episodes = 4;
        run(&a, &Registry::builtin()).unwrap();
        let json = std::fs::read_to_string(dir.join("report/report.json")).unwrap();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        let zem = &value["policies"]["zem-pn"];
        assert!(zem["success_rate"].is_number(), "{json}");
        assert!(zem["miss_distance_m"]["median"].is_number(), "{json}");
        assert!(
            zem.get("termination_reason").is_none(),
            "the reason code is not a metric"
        );
        assert!(dir.join("report/report.md").is_file());
        assert!(dir.join("plots/miss_distance.svg").is_file());
        assert!(dir.join("plots/trajectory_ep000.svg").is_file());
        assert!(dir.join("plots/trajectory_ep001.svg").is_file());
        assert!(!dir.join("plots/trajectory_ep002.svg").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
