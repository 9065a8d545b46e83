//! `gpu-net verify`: the numerical gradient, CPU backprop and GPU backprop
//! of one batch side by side; exit status 1 when they disagree.

use std::process::ExitCode;

use clap::Args;

use gpu_net::core::config::RunConfig;
use gpu_net::run::{self, VerifyRequest};

use super::args::{GpuArgs, LayerArgs};
use super::net_args::NetArgs;
use super::output;
use super::values::{batch_size, sample_size, tolerance_scale};

#[derive(Args)]
pub struct VerifyArgs {
    /// Check the first N training images.
    #[arg(long, default_value_t = 3, value_parser = batch_size)]
    pub batch: usize,
    /// Check K random elements per tensor instead of all of them (without
    /// it, verify samples when checking everything would take too long).
    #[arg(long, value_parser = sample_size)]
    pub sample: Option<usize>,
    /// Multiply every tolerance by S, in (0, 1]: stricter than each side's
    /// precision promises, to see the margin (verify never loosens them).
    #[arg(long, default_value_t = 1.0, value_parser = tolerance_scale, allow_negative_numbers = true)]
    pub tolerance_scale: f64,
    #[command(flatten)]
    pub net: NetArgs,
    #[command(flatten)]
    pub layers: LayerArgs,
    #[command(flatten)]
    pub gpu: GpuArgs,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let req = VerifyRequest {
        config: args.net.fill(
            &args.layers,
            RunConfig {
                weight_decay: args.layers.weight_decay,
                init: args.net.init(),
                seed: args.net.seed,
                ..RunConfig::default()
            },
        )?,
        data: args.net.data.clone(),
        batch: args.batch,
        sample: args.sample,
        tolerance_scale: args.tolerance_scale,
        gpu: args.gpu.options(),
    };
    // The numerical gradient takes seconds: what it computes is said first.
    let report = run::verify(&req, &mut |line| say_err!("{line}"))?;
    if args.json {
        output::print(&format!("{}\n", serde_json::to_string_pretty(&report)?));
        for line in report.failures() {
            say_err!("FAIL {line}");
        }
    } else {
        output::print(&gpu_net::run::gradient_check::render(&report));
    }
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
