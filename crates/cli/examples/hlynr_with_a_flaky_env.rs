//! The `hlynr` command with one more environment, as a program embedding
//! hlynr registers its own: `FlakyCartPole-v0`, CartPole whose connection
//! drops. While the file `env.settings.outage_file` exists, env 1 of the
//! training batch fails on its `env.settings.fail_at_step`-th step with
//! "connection reset by peer", as a remote simulator would; without the file
//! it is plain CartPole. The command-line tests use it to check that such a
//! failure ends `hlynr train` cleanly and that `hlynr resume` picks the run
//! up once the link is back.

use std::path::PathBuf;

use hlynr_cli::Registry;
use hlynr_env::{BatchEnv, Env, EnvError, EpisodeStatistics, TimeLimit, VecEnv, classic};
use hlynr_rl::trainer::{EnvFactory, Result, RunConfig, TrainError};
use hlynr_testkit::tampered::Tampered;

#[derive(Debug)]
struct Flaky {
    fail_at_step: u64,
    outage_file: PathBuf,
}

fn cartpole() -> hlynr_env::Result<EpisodeStatistics<TimeLimit<Box<dyn Env>>>> {
    Ok(EpisodeStatistics::new(TimeLimit::new(
        classic::make("CartPole-v1")?,
        500,
    )?))
}

impl EnvFactory for Flaky {
    fn make_train(&self, n_envs: usize) -> Result<Box<dyn BatchEnv>> {
        let envs = (0..n_envs)
            .map(|i| {
                let (at, outage) = (self.fail_at_step, self.outage_file.clone());
                Ok(Tampered::new(
                    cartpole()?,
                    Box::new(move |step, _, _| {
                        if i == 1 && step == at && outage.exists() {
                            return Err(EnvError::failed(
                                "cartpole link",
                                "connection reset by peer",
                            ));
                        }
                        Ok(())
                    }),
                ))
            })
            .collect::<hlynr_env::Result<Vec<_>>>()?;
        Ok(Box::new(VecEnv::new(envs)?))
    }

    fn make_eval(&self) -> hlynr_env::Result<Box<dyn Env>> {
        Ok(Box::new(cartpole()?))
    }
}

fn flaky(config: &RunConfig) -> Result<Box<dyn EnvFactory>> {
    let settings = &config.env.settings;
    let fail_at_step = settings["fail_at_step"].as_u64();
    let outage_file = settings["outage_file"].as_str();
    match (fail_at_step, outage_file) {
        (Some(fail_at_step), Some(file)) => Ok(Box::new(Flaky {
            fail_at_step,
            outage_file: file.into(),
        })),
        _ => Err(TrainError::invalid(
            "env.settings",
            "FlakyCartPole-v0 needs `fail_at_step` (a step count) and `outage_file` (a path)",
        )),
    }
}

fn main() -> anyhow::Result<()> {
    let mut registry = Registry::builtin();
    registry.register("FlakyCartPole-v0", flaky)?;
    hlynr_cli::run(&registry)
}
