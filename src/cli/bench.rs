//! `gpu-net bench`: training-step throughput over batch and hidden sizes,
//! the per-kernel profile, and the matmul alone.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use gpu_net::core::optim::StepRule;
use gpu_net::run::bench;
use gpu_net::run::device::{Device, DeviceChoice};

use super::args::{GpuArgs, LayerArgs, OptimizerArgs, load_data};
use super::net_args::{ConvArgs, list_says_its_own};
use super::output::{self, Output};
use super::values::{
    NetKind, Nets, UsizeList, parse_list, parse_matmul, parse_net, parse_nets, repeats, seconds,
    steps_per_submit,
};

#[derive(Args)]
pub struct BenchArgs {
    /// Batch sizes, comma separated.
    #[arg(long, default_value = "100,1000,8192", value_parser = parse_list)]
    pub batch: UsizeList,
    /// The network: two-layer (or mlp), multi-layer, simple-convnet, deep-convnet, a list of layers or a file holding one.
    #[arg(long, default_value = "mlp", value_parser = parse_net)]
    pub net: NetKind,
    /// A network to time, its hidden sizes as train takes them (64,32 is
    /// 784-64-32-10); give the flag again, or join networks with ';', for
    /// several [default: 50 and 1024 for mlp, 100 for simple-convnet].
    #[arg(long, value_parser = parse_nets, action = clap::ArgAction::Append)]
    pub hidden: Vec<Nets>,
    #[command(flatten)]
    pub conv: ConvArgs,
    /// Length of each timed run, in seconds (at most 3600).
    #[arg(long, default_value_t = 3.0, value_parser = seconds, allow_negative_numbers = true)]
    pub seconds: f64,
    /// Timed runs per configuration, 1 to 1000 (the median is reported).
    #[arg(long, default_value_t = 3, value_parser = repeats)]
    pub repeats: usize,
    /// Time the CPU reference path too.
    #[arg(long)]
    pub cpu: bool,
    /// Most GPU steps recorded into one submission (1 to 1024).
    #[arg(long, default_value_t = 16, value_parser = steps_per_submit)]
    pub steps_per_submit: usize,
    /// Time only the matmul kernel on C(M×N) over K, given as M,N,K
    /// (A·B), M,N,K,at (Aᵀ·B, the weight-gradient form) or M,N,K,bt (A·Bᵀ);
    /// repeatable.
    #[arg(long, value_parser = parse_matmul)]
    pub matmul: Vec<bench::MatmulBench>,
    /// With --matmul: split K into at most this many slices, 1 to 1024
    /// (chosen by the product's shape by default).
    #[arg(long, requires = "matmul", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub split_k: Option<u32>,
    #[command(flatten)]
    pub layers: LayerArgs,
    #[command(flatten)]
    pub optimizer: OptimizerArgs,
    #[command(flatten)]
    pub gpu: GpuArgs,
    /// Folder with the four MNIST-style IDX files; the bundled MNIST by default.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    let data = load_data(&args.data)?;
    let conv = args.conv.front(&args.net)?;
    let network = match args.net.list() {
        Some(text) => Some(args.conv.list_text(&text)?),
        None => None,
    };
    let hidden = match (args.hidden.is_empty(), &args.net) {
        (false, NetKind::List(_) | NetKind::DeepConvnet) => {
            return Err(list_says_its_own("hidden").into());
        }
        (false, _) => args.hidden.into_iter().flat_map(|n| n.0).collect(),
        (true, NetKind::Mlp) => vec![vec![50], vec![1024]],
        (true, NetKind::MultiLayer) => vec![vec![100; 6]],
        (true, NetKind::SimpleConvnet) => vec![vec![100]],
        (true, NetKind::List(_) | NetKind::DeepConvnet) => vec![vec![]],
    };
    let cfg = bench::BenchConfig {
        batches: args.batch.0,
        hidden,
        conv,
        seconds: args.seconds,
        repeats: args.repeats,
        cpu: args.cpu,
        gpu: args.matmul.is_empty(),
        steps_per_submit: args.steps_per_submit,
        matmul: args.matmul,
        split_k: args.split_k,
        rule: StepRule {
            optimizer: args.optimizer.optimizer(),
            weight_decay: args.layers.weight_decay,
            seed: 0,
        },
        batchnorm: args.layers.batchnorm,
        dropout: args.layers.dropout,
        network,
    };
    bench::check(&cfg, data.train.pixels())?;
    // Without a GPU, --cpu times the CPU path alone.
    let choice = if cfg.cpu {
        DeviceChoice::Auto
    } else {
        DeviceChoice::Gpu
    };
    let device = Device::open(choice, &args.gpu.options(), &mut |e| {
        say_err!("warning: {e}; timing the CPU path only")
    })?;
    // Each result as it is measured goes to stderr (progress); the table,
    // or the JSON, is the one thing on stdout.
    let out = Output::new(args.json);
    let report = bench::run(&device, &data, &cfg, &mut |line| say_err!("{line}"))?;
    out.object(&report, true)?;
    if !out.json {
        output::print(&format!("{}\n", bench::render(&report)));
    }
    Ok(ExitCode::SUCCESS)
}
