//! `gpu-net eval`: a checkpoint's loss and accuracy on the test set, per
//! class, and the confusion matrix.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use gpu_net::run::{self, EvalRequest};

use super::args::{DeviceArg, GpuArgs};
use super::output::{self, Output};

#[derive(Args)]
pub struct EvalArgs {
    /// The checkpoint (`train --save`).
    #[arg(long)]
    pub model: PathBuf,
    /// Folder with the four MNIST-style IDX files; the bundled MNIST by default.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// cpu, gpu, or auto (GPU when there is an adapter).
    #[arg(long, value_enum, ignore_case = true, default_value_t = DeviceArg::Auto)]
    pub device: DeviceArg,
    #[command(flatten)]
    pub gpu: GpuArgs,
    /// Print one JSON object (accuracy, loss, per_class, confusion, ...) instead.
    #[arg(long)]
    pub json: bool,
    /// Draw the first 20 misclassified test digits, each with its label and
    /// the network's answer, to this picture (PNG, JPEG, BMP or PGM), as the
    /// book's ch08/misclassified_mnist.py.
    #[arg(long, value_name = "FILE")]
    pub misclassified: Option<PathBuf>,
}

/// The book's printout of the figure: `{view index: (label, inference), ...}`.
fn misclassified_lines(
    misses: &[gpu_net::report::misclassified::Miss],
    path: &std::path::Path,
) -> String {
    let pairs: Vec<String> = misses
        .iter()
        .enumerate()
        .map(|(i, m)| format!("{}: ({}, {})", i + 1, m.label, m.predicted))
        .collect();
    format!(
        "\n======= misclassified result =======\n{{view index: (label, inference), ...}}\n{{{}}}\ndrawn to {}\n",
        pairs.join(", "),
        path.display()
    )
}

pub fn run(args: EvalArgs) -> anyhow::Result<ExitCode> {
    let req = EvalRequest {
        model: args.model.clone(),
        data: args.data.clone(),
        device: args.device.into(),
        gpu: args.gpu.options(),
        misclassified: args.misclassified.clone(),
    };
    let report = run::eval(&req, &mut |line| say_err!("{line}"))?;
    let out = Output::new(args.json);
    out.object(&report, true)?;
    if !out.json {
        output::print(&gpu_net::run::evaluation::render(&report));
    }
    if let (Some(path), false) = (&args.misclassified, out.json) {
        output::print(&misclassified_lines(&report.misclassified, path));
    }
    Ok(ExitCode::SUCCESS)
}
