//! The `hlynr` command.

use clap::{Parser, Subcommand};

/// Reinforcement-learning training, evaluation and benchmarks.
#[derive(Debug, Parser)]
#[command(name = "hlynr", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Measures engine and environment throughput.
    Bench,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Bench => Ok(()),
    }
}
