//! `gpu-net verify`: the numerical gradient, CPU backprop and GPU backprop
//! of one batch side by side; exit status 1 when they disagree.

use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;

use gpu_net::cpu::memory as cpu_memory;
use gpu_net::verify;

use super::args::{GpuArgs, LayerArgs, NetArgs, UsageError, check_batchnorm_batch, load_data};
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
    let data = load_data(&args.net.data)?;
    check_batchnorm_batch(args.layers.batchnorm, args.batch, "--batch")?;
    let arch = args.layers.arch(data.train.pixels(), &args.net)?;
    // The images come first: what they do not hold needs no cost estimate.
    anyhow::ensure!(
        args.batch <= data.train.len(),
        "--batch {} is more than the {} training images",
        args.batch,
        data.train.len()
    );
    // Without --sample, a check that would run for hours samples instead.
    let (sample, sampled_automatically) = match args.sample {
        Some(k) => (Some(k), false),
        None => match verify::automatic_coverage(&arch, args.batch) {
            verify::Coverage::All => (None, false),
            verify::Coverage::Sample { per_tensor, .. } => (Some(per_tensor), true),
            verify::Coverage::TooLarge { least_cost } => {
                return Err(UsageError(format!(
                    "--batch {} --hidden {}: even one element per tensor takes {least_cost:.1e} multiply-adds of numerical gradient, over verify's budget of {:.1e}; use a smaller --batch or --hidden, or --sample K to insist",
                    args.batch,
                    args.net.hidden().iter().map(|h| h.to_string()).collect::<Vec<_>>().join(","),
                    verify::CHECK_BUDGET
                ))
                .into());
            }
        },
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    cpu_memory::check(
        || format!("verify of {} at --batch {}", arch.shape(), args.batch),
        cpu_memory::verify_bytes(&arch, args.batch, threads),
    )?;
    let ctx = Arc::new(gpu_net::gpu::tune::open(&args.gpu.options())?);
    let cfg = verify::VerifyConfig {
        batch: args.batch,
        seed: args.net.seed,
        sample,
        sampled_automatically,
        init: args.net.init,
        weight_decay: args.layers.weight_decay,
        tolerance_scale: args.tolerance_scale,
    };
    // The numerical gradient takes seconds: say what is being computed.
    let elements: usize = arch
        .tensors()
        .iter()
        .map(|t| sample.map_or(t.len(), |k| t.len().min(k)))
        .sum();
    say_err!(
        "numerical gradient: {} elements, two losses of the batch each...",
        thousands(elements)
    );
    let report = verify::verify(ctx, &arch, &data.train, &cfg, None)?;
    if args.json {
        output::print(&format!("{}\n", serde_json::to_string_pretty(&report)?));
        for line in report.failures() {
            say_err!("FAIL {line}");
        }
    } else {
        output::print(&verify::render(&report));
    }
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// 39760 as `39,760`.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
