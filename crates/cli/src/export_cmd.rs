//! `hlynr export`: a run's deterministic policy as a file other runtimes load.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, ValueEnum};

/// Export formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// An ONNX model (opset 17): observation in, environment action out.
    Onnx,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The run directory (its checkpoints/best, else checkpoints/last) or
    /// one checkpoint (RUN_DIR/checkpoints/NAME).
    pub model: PathBuf,
    /// What to write.
    #[arg(long, value_enum, default_value = "onnx")]
    pub format: ExportFormat,
    /// Output file; default RUN_DIR/export/<checkpoint>.onnx.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn run(args: &ExportArgs) -> anyhow::Result<()> {
    let (run_dir, checkpoint) = hlynr_rl::trainer::locate_model(&args.model)?;
    let model = hlynr_rl::trainer::load_model(&run_dir, &checkpoint)?;
    let ExportFormat::Onnx = args.format;
    let exported = hlynr_rl::export::export_onnx(&model)?;
    let out = match &args.out {
        Some(p) => p.clone(),
        None => {
            let name = checkpoint
                .file_name()
                .map_or("model".into(), |n| n.to_string_lossy().into_owned());
            run_dir.join("export").join(format!("{name}.onnx"))
        }
    };
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    hlynr_nn::io::write_atomic(&out, &exported.bytes)?;
    println!(
        "wrote {} ({} bytes): the deterministic policy of {} ({} env steps)",
        out.display(),
        exported.bytes.len(),
        checkpoint.display(),
        model.env_steps
    );
    for line in &exported.signature {
        println!("  {line}");
    }
    Ok(())
}
