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
}

pub fn run(args: EvalArgs) -> anyhow::Result<ExitCode> {
    let req = EvalRequest {
        model: args.model.clone(),
        data: args.data.clone(),
        device: args.device.into(),
        gpu: args.gpu.options(),
    };
    let report = run::eval(&req, &mut |line| say_err!("{line}"))?;
    let out = Output::new(args.json);
    out.object(&report, true)?;
    if !out.json {
        output::print(&gpu_net::run::evaluation::render(&report));
    }
    Ok(ExitCode::SUCCESS)
}
