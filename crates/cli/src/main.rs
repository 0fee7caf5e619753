//! The `hlynr` command with the built-in environments (see the library for
//! embedding it with more).

fn main() -> anyhow::Result<()> {
    hlynr_cli::run(&hlynr_cli::Registry::builtin())
}
