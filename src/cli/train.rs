//! `gpu-net train`: the flags, parsed into the library's training request
//! (`gpu_net::run::train`), and the run printed (`train_print`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use gpu_net::core::config::RunConfig;
use gpu_net::core::optim::OptimizerKind;
use gpu_net::run::{self, TrainOutcome, TrainRequest};

use super::args::{DeviceArg, GpuArgs, LayerArgs, OptimizerArgs, UsageError};
use super::interrupt;
use super::net_args::{CONV_FLAGS, NetArgs};
use super::output::Output;
use super::train_print::{Printer, say_how_it_ended};
use super::values::{
    NetKind, batch_size, iterations, positive_f32, positive_usize, steps_per_submit,
    up_to_max_epochs,
};

#[derive(Args)]
pub struct TrainArgs {
    /// cpu, gpu, or auto (GPU when there is an adapter).
    #[arg(long, help_heading = "Device", value_enum, ignore_case = true, default_value_t = DeviceArg::Auto)]
    pub device: DeviceArg,
    /// Training iterations (minibatch steps), 1 to 10^9; the book's 10000 by default (with --resume, the end the run planned).
    #[arg(long, help_heading = "Training", value_parser = iterations, conflicts_with = "epochs")]
    pub iters: Option<usize>,
    /// Epochs of train_size / batch iterations (1 to 100000), instead of --iters.
    #[arg(long, help_heading = "Training", value_parser = up_to_max_epochs)]
    pub epochs: Option<usize>,
    /// Minibatch size; batches are drawn at random with replacement, as the book does.
    #[arg(long, help_heading = "Training", default_value_t = 100, value_parser = batch_size)]
    pub batch: usize,
    /// Learning rate (the same default for every optimizer: Adam usually wants 0.001); with --resume, the rate from here on.
    #[arg(long, help_heading = "Optimizer", default_value_t = 0.1, value_parser = positive_f32, allow_negative_numbers = true)]
    pub lr: f32,
    /// Train on the first N training images only (the book's overfitting experiments use 300).
    #[arg(long, help_heading = "Data", value_parser = positive_usize)]
    pub train_size: Option<usize>,
    #[command(flatten)]
    pub layers: LayerArgs,
    #[command(flatten)]
    pub optimizer: OptimizerArgs,
    /// GPU steps recorded into one submission (1 to 1024; never more than the run takes).
    #[arg(long, help_heading = "Device", default_value_t = 8, value_parser = steps_per_submit)]
    pub steps_per_submit: usize,
    #[command(flatten)]
    pub net: NetArgs,
    #[command(flatten)]
    pub gpu: GpuArgs,
    /// Write a checkpoint (safetensors) here at the end of every epoch and of the run.
    #[arg(long, help_heading = "Output")]
    pub save: Option<PathBuf>,
    /// Let --save replace a file that holds another run's checkpoint (or no
    /// checkpoint at all); continuing the run it holds needs no leave.
    #[arg(long, help_heading = "Output")]
    pub overwrite: bool,
    /// Continue the run in this checkpoint (saving to it unless --save says otherwise): --iters and --epochs count the whole run.
    #[arg(long, help_heading = "Output")]
    pub resume: Option<PathBuf>,
    /// Append one CSV row per epoch here as the run goes.
    #[arg(long, help_heading = "Output")]
    pub metrics: Option<PathBuf>,
    /// At the end, draw the run's learning curves (accuracy and loss per epoch) as SVG here.
    #[arg(long, help_heading = "Output")]
    pub plot: Option<PathBuf>,
    /// End with one JSON object on stdout (human output goes to stderr).
    #[arg(long, help_heading = "Output")]
    pub json: bool,
}

impl TrainArgs {
    /// The run's settings as the flags give them.
    fn config(&self) -> anyhow::Result<RunConfig> {
        let config = RunConfig {
            weight_decay: self.layers.weight_decay,
            init: self.net.init(),
            optimizer: self.optimizer.optimizer(),
            lr: self.lr,
            batch: self.batch,
            seed: self.net.seed,
            train_size: self.train_size,
            data: self.net.data.as_ref().map(|d| d.display().to_string()),
            ..RunConfig::default()
        };
        self.net.fill(&self.layers, config)
    }
}

/// The request the flags make; `given` says which flags the user gave.
fn request(args: &TrainArgs, given: &dyn Fn(&str) -> bool) -> anyhow::Result<TrainRequest> {
    // `conv` is one field set by several flags; `--net` sets `network` too
    // (a list's text, none for the other presets).
    let conv_given = given("net") || CONV_FLAGS.iter().any(|f| given(f));
    if args.resume.is_some()
        && !given("net")
        && let Some(flag) = CONV_FLAGS.iter().find(|f| given(f))
    {
        return Err(UsageError(format!(
            "--{} is a setting of the convolution, which a resumed run takes from its checkpoint: drop it",
            flag.replace('_', "-")
        ))
        .into());
    }
    let given_fields = RunConfig::field_names()
        .into_iter()
        .filter(|f| given(f) || (f == "conv" && conv_given) || (f == "network" && given("net")))
        .collect();
    let mut config = args.config()?;
    if args.net.net == NetKind::DeepConvnet {
        // The book's ch08/train_deepnet.py, where no flag says otherwise.
        if !given("optimizer") {
            config.optimizer.kind = OptimizerKind::Adam;
        }
        if !given("lr") {
            config.lr = 0.001;
        }
    }
    Ok(TrainRequest {
        device: args.device.into(),
        gpu: args.gpu.options(),
        config,
        given: given_fields,
        iters: args.iters,
        epochs: args.epochs,
        steps_per_submit: args.steps_per_submit,
        data: args.net.data.clone(),
        save: args.save.clone(),
        overwrite: args.overwrite,
        resume: args.resume.clone(),
        metrics: args.metrics.clone(),
        plot: args.plot.clone(),
    })
}

pub fn run(args: TrainArgs, given: &dyn Fn(&str) -> bool) -> anyhow::Result<ExitCode> {
    let out = Output::new(args.json);
    interrupt::install();
    let req = request(&args, given)?;
    let mut printer = Printer::new(out);
    match run::train(&req, &mut printer)? {
        TrainOutcome::StoppedBeforeStart => {
            out.say("interrupted before training started; nothing was written");
            Ok(ExitCode::from(interrupt::EXIT_STATUS))
        }
        TrainOutcome::Ran { summary, save } => say_how_it_ended(&summary, save.as_deref(), out),
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, FromArgMatches};
    use gpu_net::core::config::{RunConfig, value_text};

    use super::TrainArgs;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        train: TrainArgs,
    }

    /// Every setting of a run is a flag of the same name, and the flag
    /// lands in its field: parsing `--F V` for each field F of a
    /// configuration gives that configuration. (`conv` is `--net
    /// simple-convnet` with the flags of its `conv_param`; `network`, a
    /// list given to `--net`, is the other network there can be, parsed
    /// after.)
    #[test]
    fn every_field_is_a_flag_that_sets_it() {
        let front = gpu_net::core::conv::ConvFront {
            input_dim: [1, 14, 56],
            filter_num: 3,
            filter_size: 3,
            pad: 1,
            stride: 2,
        };
        let want = RunConfig {
            hidden: vec![7, 5],
            conv: Some(front),
            network: None,
            batchnorm: true,
            dropout: 0.25,
            weight_decay: 0.125,
            init: gpu_net::core::model::Init::He,
            optimizer: gpu_net::core::optim::Optimizer {
                kind: gpu_net::core::optim::OptimizerKind::Adam,
                momentum: 0.5,
                beta1: 0.75,
                beta2: 0.875,
                decay_rate: 0.625,
            },
            lr: 0.003,
            batch: 17,
            seed: 9,
            train_size: Some(300),
            data: Some("somewhere".into()),
        };
        let mut argv = vec!["train".to_string()];
        for (field, value) in want.fields() {
            if field == "network" {
                continue;
            }
            if field == "conv" {
                let conv = "--net simple-convnet --input-dim 1,14,56 --filter-num 3 --filter-size 3 --pad 1 --stride 2";
                argv.extend(conv.split(' ').map(String::from));
                continue;
            }
            argv.push(format!("--{}", field.replace('_', "-")));
            if !value.is_boolean() {
                argv.push(value_text(&value));
            }
        }
        let matches = Cli::command()
            .try_get_matches_from(&argv)
            .unwrap_or_else(|e| panic!("{argv:?}: {e}"));
        let args = Cli::from_arg_matches(&matches).unwrap().train;
        assert_eq!(args.config().unwrap(), want);
        let flags =
            (RunConfig::field_names().into_iter()).filter(|f| f != "conv" && f != "network");
        let conv_flags = super::CONV_FLAGS.iter().map(|f| f.to_string());
        for field in flags.chain(conv_flags).chain(["net".to_string()]) {
            let source = matches.value_source(&field);
            assert_eq!(
                source,
                Some(clap::parser::ValueSource::CommandLine),
                "{field}"
            );
        }
        let list = ["train", "--net", "conv 2 3x3, relu, pool 2x2, affine 10"];
        let matches = Cli::command().try_get_matches_from(list).unwrap();
        let args = Cli::from_arg_matches(&matches).unwrap().train;
        let text = "input 1x28x28, conv 2 3x3, relu, pool 2x2, affine 10, softmax";
        assert_eq!(args.config().unwrap().network.as_deref(), Some(text));
    }
}
