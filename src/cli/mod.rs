//! The `gpu-net` command line: the only part of gpu-net that knows clap,
//! anyhow, the terminal and stdout. One module per command, each with its
//! `XArgs` and `run`; `args` holds the flags they share, `output` how they
//! print. Errors come back here to become exit statuses: 2 for a usage
//! error (a flag or variable that cannot mean anything), 1 for a failure.
//!
//! May import: the gpu_net library, and its own modules.

/// `eprintln!` that never panics: a closed or full stderr (`2>&1 | head`)
/// loses the line, not the run, so a `--save` still saves. Every line for
/// stderr in `src/cli` goes through it.
macro_rules! say_err {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

mod args;
mod bench;
mod devices;
mod eval;
mod experiment;
mod interrupt;
mod net_args;
mod output;
mod plot;
mod predict;
mod train;
mod train_print;
mod values;
mod verify;

use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use args::{DeviceArg, UsageError};

#[derive(Parser)]
#[command(
    name = "gpu-net",
    version,
    about = "Train the book's networks (Deep Learning from Scratch, chapters 5 to 8) on MNIST with WGSL compute shaders, checked against a CPU reference"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train on MNIST (or any IDX dataset) and report loss and accuracy per epoch.
    Train(train::TrainArgs),
    /// Numerical, CPU and GPU gradients of one batch side by side; exit 1 when they disagree.
    Verify(verify::VerifyArgs),
    /// Training-step throughput over batch and hidden sizes, GPU (and CPU with --cpu).
    Bench(bench::BenchArgs),
    /// Run one of the book's experiments: chapter 6's optimizer-compare, weight-init-compare, batch-norm, weight-decay, dropout, hyperparameter-search; chapter 7's train-convnet; or chapter 8's train-deepnet.
    Experiment(experiment::ExperimentArgs),
    /// A checkpoint's loss and accuracy on the test set, per class, and the confusion matrix.
    Eval(eval::EvalArgs),
    /// Classify your own images of digits (PNG, JPEG, BMP, PGM) with a checkpoint.
    Predict(predict::PredictArgs),
    /// Draw the first layer's weights as a grid of 28×28 images, one per hidden unit (PNG).
    ShowWeights(predict::ShowWeightsArgs),
    /// Draw learning curves (accuracy and loss against epoch) from `train --metrics` CSV files as SVG.
    Plot(plot::PlotArgs),
    /// List the GPU adapters wgpu can see, numbered as --adapter takes them.
    Devices(devices::DevicesArgs),
}

/// Parses the command line, runs the command, and gives its exit status.
pub fn run() -> ExitCode {
    let matches = match Cli::command().try_get_matches() {
        Ok(m) => m,
        Err(e) => {
            let hint = flag_hint(&e);
            let _ = e.print();
            if let Some(hint) = hint {
                say_err!("{hint}");
            }
            return ExitCode::from(e.exit_code() as u8);
        }
    };
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let Some((_, sub)) = matches.subcommand() else {
        unreachable!("clap requires a subcommand")
    };
    note_cpu_ignores_gpu_flags(sub);
    let given = |id: &str| sub.value_source(id) == Some(ValueSource::CommandLine);
    let result = match cli.command {
        Command::Train(args) => train::run(args, &given),
        Command::Verify(args) => verify::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Experiment(args) => experiment::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Plot(args) => plot::run(args),
        Command::Predict(args) => predict::run(args),
        Command::ShowWeights(args) => predict::run_show_weights(args),
        Command::Devices(args) => devices::run(args),
    };
    if let (Ok(_), Some(why)) = (&result, output::stdout_failure()) {
        say_err!("error: {why}");
        return ExitCode::FAILURE;
    }
    match result {
        Ok(code) => code,
        Err(e) => {
            say_err!("error: {e:#}");
            ExitCode::from(if is_usage_error(&e) { 2 } else { 1 })
        }
    }
}

/// For a file given where a flag was due (`eval model.safetensors`,
/// `show-weights --model m.st w.png`), the flag it needs.
fn flag_hint(e: &clap::Error) -> Option<String> {
    use clap::error::{ContextKind, ContextValue};
    if e.kind() != clap::error::ErrorKind::UnknownArgument {
        return None;
    }
    let Some(ContextValue::String(arg)) = e.get(ContextKind::InvalidArg) else {
        return None;
    };
    if arg.starts_with('-') {
        return None;
    }
    let command = std::env::args().nth(1)?;
    let picture = gpu_net::report::predict::image_format(std::path::Path::new(arg)).is_ok();
    let flag = match command.as_str() {
        "eval" => "--model",
        "show-weights" if picture => "-o",
        "show-weights" => "--model",
        _ => return None,
    };
    Some(format!(
        "hint: `gpu-net {command}` takes {arg} as `{flag} {arg}`"
    ))
}

/// Exit status 2: a flag, or a variable (`WGPU_BACKEND`,
/// `GPU_NET_IDX_LIMIT`, ...), that cannot mean anything, or a network the
/// limits refuse.
fn is_usage_error(e: &anyhow::Error) -> bool {
    e.downcast_ref::<UsageError>().is_some() || e.chain().any(gpu_net::run::is_usage)
}

/// Flags that steer only the GPU.
const GPU_ONLY_FLAGS: [&str; 4] = ["backend", "adapter", "matmul_kernel", "steps_per_submit"];

/// `--device cpu` runs no GPU code: the GPU's flags given with it are named
/// in one line, so a user does not believe they took effect.
fn note_cpu_ignores_gpu_flags(sub: &clap::ArgMatches) {
    let cpu = sub.ids().any(|id| id.as_str() == "device")
        && sub.get_one::<DeviceArg>("device") == Some(&DeviceArg::Cpu);
    if !cpu {
        return;
    }
    // value_source panics (in debug builds) on an id the subcommand does
    // not define, and not every subcommand has every GPU flag: ask only
    // about the ids its matches hold.
    let present: Vec<&str> = sub.ids().map(|id| id.as_str()).collect();
    let given: Vec<String> = GPU_ONLY_FLAGS
        .iter()
        .filter(|id| present.contains(id))
        .filter(|id| sub.value_source(id) == Some(ValueSource::CommandLine))
        .map(|id| format!("--{}", id.replace('_', "-")))
        .collect();
    if !given.is_empty() {
        say_err!("note: --device cpu ignores {} (GPU only)", given.join(", "));
    }
}
