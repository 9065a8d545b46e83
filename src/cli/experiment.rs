//! `gpu-net experiment NAME`: one of the book's chapter 6 experiments,
//! chapter 7's `train_convnet.py` and chapter 8's `train_deepnet.py`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use gpu_net::book::experiment;
use gpu_net::run::device::Device;

use super::args::{DeviceArg, GpuArgs, UsageError, load_data};
use super::output::Output;
use super::values::{up_to_max_epochs, weight_scales};

#[derive(Args)]
pub struct ExperimentArgs {
    /// optimizer-compare, weight-init-compare, batch-norm, weight-decay, dropout, hyperparameter-search, train-convnet or train-deepnet.
    #[arg(value_parser = experiment::Experiment::parse)]
    pub name: experiment::Experiment,
    /// cpu, gpu, or auto (GPU when there is an adapter).
    #[arg(long, value_enum, ignore_case = true, default_value_t = DeviceArg::Auto)]
    pub device: DeviceArg,
    /// Seed for the weights, the minibatches and the search.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Folder with the four MNIST-style IDX files; the bundled MNIST by default.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Write the curves the book plots to DIR/NAME.csv.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Draw the figure the script shows (SVG) here at the end.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Iterations of optimizer-compare and weight-init-compare instead of the book's 2000.
    #[arg(long, value_parser = up_to_max_epochs)]
    pub iters: Option<usize>,
    /// Epochs instead of the script's (batch-norm 20, weight-decay 201, dropout 301, hyperparameter-search 50, train-convnet and train-deepnet 20).
    #[arg(long, value_parser = up_to_max_epochs)]
    pub epochs: Option<usize>,
    /// Trials of hyperparameter-search instead of 100.
    #[arg(long, value_parser = up_to_max_epochs)]
    pub trials: Option<usize>,
    /// Run only the first K (1 to 16) of batch-norm's 16 weight scales.
    #[arg(long, value_parser = weight_scales)]
    pub stds: Option<usize>,
    #[command(flatten)]
    pub gpu: GpuArgs,
    /// End with one JSON object on stdout (the script's lines go to stderr).
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: ExperimentArgs) -> anyhow::Result<ExitCode> {
    check_sizes_apply(&args)?;
    let out = Output::new(args.json);
    let mut say = |line: String| out.say(&line);
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("--out {}: cannot create the folder", dir.display()))?;
    }
    if let Some(path) = &args.plot {
        gpu_net::report::plot::check_output(path).context("--plot")?;
    }
    let data = load_data(&args.data)?;
    let device = Device::open(args.device.into(), &args.gpu.options(), &mut |e| {
        say_err!("warning: {e}; training on the CPU instead")
    })?;
    if let Some(note) = gpu_net::run::software_adapter_note(&device, args.name.convolutional()) {
        say(note.into());
    }
    let csv = args
        .out
        .as_ref()
        .map(|dir| dir.join(format!("{}.csv", args.name.name())));
    let cfg = experiment::ExperimentConfig {
        seed: args.seed,
        iters: args.iters,
        epochs: args.epochs,
        trials: args.trials,
        stds: args.stds,
        csv: csv.clone(),
    };
    let report = experiment::run(args.name, &device, &data, &cfg, &mut say)?;
    if let Some(path) = &csv {
        say(format!("curves written to {}", path.display()));
    }
    if let Some(path) = &args.plot {
        let rows: Vec<Vec<String>> = report
            .rows
            .iter()
            .map(|r| r.iter().map(gpu_net::core::config::value_text).collect())
            .collect();
        let figure = gpu_net::report::plot::table_figure(args.name.name(), &report.columns, &rows)
            .map_err(|why| anyhow::anyhow!("--plot {}: {why}", path.display()))?;
        gpu_net::report::plot::write(&figure, path)?;
        say(format!("figure written to {}", path.display()));
    }
    out.object(&report, false)?;
    Ok(ExitCode::SUCCESS)
}

/// A size flag the experiment does not take is a usage error naming those
/// it does: `weight-decay --iters 5` would otherwise run the whole script.
fn check_sizes_apply(args: &ExperimentArgs) -> Result<(), UsageError> {
    let takes = args.name.takes();
    let given = [
        ("iters", args.iters.is_some()),
        ("epochs", args.epochs.is_some()),
        ("trials", args.trials.is_some()),
        ("stds", args.stds.is_some()),
    ];
    for (flag, is_given) in given {
        if is_given && !takes.contains(&flag) {
            let its: Vec<String> = takes.iter().map(|f| format!("--{f}")).collect();
            return Err(UsageError(format!(
                "--{flag} does not apply to {} (it takes {})",
                args.name.name(),
                its.join(" and ")
            )));
        }
    }
    Ok(())
}
