//! The `gpu-net` command line: parse, call the library, print.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

use gpu_net::checkpoint::{self, Checkpoint};
use gpu_net::cpu::memory as cpu_memory;
use gpu_net::data;
use gpu_net::gpu::kernels::{MatmulAlgo, SplitK};
use gpu_net::gpu::{self, GpuContext, GpuOptions};
use gpu_net::model::{Arch, Init, Params};
use gpu_net::optim::{Optimizer, OptimizerKind, StepRule};
use gpu_net::train::{self, CpuTrainer, EpochReport, TrainConfig, Trainer};
use gpu_net::{bench, experiment, limits, verify};

#[derive(Parser)]
#[command(
    name = "gpu-net",
    version,
    about = "Train an MLP on MNIST with WGSL compute shaders, checked against a CPU reference"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train on MNIST (or any IDX dataset) and report loss and accuracy per epoch.
    Train(TrainArgs),
    /// Numerical, CPU and GPU gradients of one batch side by side; exit 1 when they disagree.
    Verify(VerifyArgs),
    /// Training-step throughput over batch and hidden sizes, GPU (and CPU with --cpu).
    Bench(BenchArgs),
    /// Run one of the book's chapter 6 experiments (optimizer-compare, weight-init-compare, batch-norm, weight-decay, dropout, hyperparameter-search).
    Experiment(ExperimentArgs),
    /// A checkpoint's loss and accuracy on the test set, per class, and the confusion matrix.
    Eval(EvalArgs),
    /// Classify your own images of digits (PNG, JPEG, BMP, PGM) with a checkpoint.
    Predict(PredictArgs),
    /// Draw the first layer's weights as a grid of 28×28 images, one per hidden unit (PNG).
    ShowWeights(ShowWeightsArgs),
    /// Draw learning curves (accuracy and loss against epoch) from `train --metrics` CSV files as SVG.
    Plot(PlotArgs),
    /// List the GPU adapters wgpu can see, numbered as --adapter takes them.
    Devices(DevicesArgs),
}

#[derive(Args)]
struct PredictArgs {
    /// The checkpoint (`train --save`).
    #[arg(long)]
    model: PathBuf,
    /// Image files.
    #[arg(required = true)]
    images: Vec<PathBuf>,
    /// Take each image as it is: already 28×28, light digit on dark, as MNIST.
    #[arg(long)]
    raw: bool,
    /// Print the 28×28 input the network saw, as text.
    #[arg(long)]
    show: bool,
    /// Print a JSON list of {file, label, probabilities} instead.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct ShowWeightsArgs {
    /// The checkpoint (`train --save`).
    #[arg(long)]
    model: PathBuf,
    /// The PNG to write.
    #[arg(short, long)]
    out: PathBuf,
}

#[derive(Args)]
struct PlotArgs {
    /// `train --metrics` CSV files, one curve each (the legend names the file).
    #[arg(required = true)]
    csv: Vec<PathBuf>,
    /// The SVG to write.
    #[arg(short, long)]
    out: PathBuf,
}

#[derive(Args)]
struct EvalArgs {
    /// The checkpoint (`train --save`).
    #[arg(long)]
    model: PathBuf,
    /// Folder with the four MNIST-style IDX files; the bundled MNIST by default.
    #[arg(long)]
    data: Option<PathBuf>,
    /// cpu, gpu, or auto (GPU when there is an adapter).
    #[arg(long, value_enum, default_value_t = DeviceChoice::Auto)]
    device: DeviceChoice,
    #[command(flatten)]
    gpu: GpuArgs,
    /// Print one JSON object (accuracy, loss, per_class, confusion, ...) instead.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum DeviceChoice {
    /// The GPU when an adapter exists, else the CPU with a warning.
    Auto,
    /// The GPU, or an error saying how to get a driver.
    Gpu,
    /// The CPU reference path (f64).
    Cpu,
}

#[derive(Args)]
struct DevicesArgs {
    /// Only these backends (as --backend of the other commands): the list
    /// is then numbered as `--backend B --adapter N` counts.
    #[arg(long, value_parser = gpu::adapter::parse_backends)]
    backend: Option<wgpu::Backends>,
}

#[derive(Args, Clone)]
struct GpuArgs {
    /// Only this backend: vulkan, metal, dx12 or gl (or several, comma
    /// separated); WGPU_BACKEND's when not given.
    #[arg(long, value_parser = gpu::adapter::parse_backends)]
    backend: Option<wgpu::Backends>,
    /// Adapter index from `gpu-net devices` (given the same --backend);
    /// when not given, the first adapter whose name contains
    /// WGPU_ADAPTER_NAME, else the best one.
    #[arg(long)]
    adapter: Option<usize>,
    /// Matmul implementation: tiled (for GPUs), vec4 (for CPU adapters such
    /// as lavapipe, operands copied into textures) or vec4-buffers (the same
    /// kernel reading the buffers); chosen by the adapter's type by default.
    #[arg(long, value_enum)]
    matmul_kernel: Option<MatmulKernel>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum MatmulKernel {
    Tiled,
    Vec4,
    /// The vec4 kernel reading its operands straight from the buffers,
    /// not from texture copies.
    Vec4Buffers,
}

impl GpuArgs {
    fn options(&self) -> GpuOptions {
        GpuOptions {
            backend: self.backend,
            adapter: self.adapter,
            matmul: self.matmul_kernel.map(|k| match k {
                MatmulKernel::Tiled => MatmulAlgo::Tiled,
                MatmulKernel::Vec4 => MatmulAlgo::Vec4,
                MatmulKernel::Vec4Buffers => MatmulAlgo::Vec4Buffers,
            }),
        }
    }
}

#[derive(Args, Clone)]
struct NetArgs {
    /// Hidden layer sizes, comma separated (e.g. 50 or 64,32).
    #[arg(long, default_value = "50", value_parser = parse_hidden)]
    hidden: Hidden,
    /// Seed for the weights and the minibatch order.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Folder with the four MNIST-style IDX files (gzipped or not); the bundled MNIST by default.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Weight initialisation: a standard deviation (the book's 0.01), xavier (√(1/n)) or he (√(2/n)).
    #[arg(long, default_value = "0.01", value_parser = Init::parse)]
    init: Init,
}

/// What sits between the layers, and weight decay.
#[derive(Args, Clone)]
struct LayerArgs {
    /// Batch Normalization between each hidden Affine and its Relu.
    #[arg(long)]
    batchnorm: bool,
    /// Dropout ratio after each hidden Relu, in [0, 1) (the book's form, not inverted).
    #[arg(long, default_value_t = 0.0, value_parser = dropout_ratio)]
    dropout: f32,
    /// Weight decay λ: ½λ·ΣW² added to the loss (weights only, not biases, gamma or beta).
    #[arg(long, default_value_t = 0.0, value_parser = non_negative_f64)]
    weight_decay: f64,
}

impl LayerArgs {
    fn arch(&self, inputs: usize, hidden: &[usize]) -> anyhow::Result<Arch> {
        Ok(Arch::mlp(inputs, hidden, data::CLASSES)?
            .with_batchnorm(self.batchnorm)
            .with_dropout(self.dropout)?)
    }
}

/// The update rule and its hyperparameters (the book's defaults).
#[derive(Args, Clone)]
struct OptimizerArgs {
    /// sgd, momentum, nesterov, adagrad, rmsprop or adam.
    #[arg(long, default_value = "sgd", value_parser = OptimizerKind::parse)]
    optimizer: OptimizerKind,
    /// Momentum and Nesterov's momentum, in [0, 1).
    #[arg(long, default_value_t = 0.9, value_parser = unit_interval)]
    momentum: f64,
    /// Adam's β1, in [0, 1).
    #[arg(long, default_value_t = 0.9, value_parser = unit_interval)]
    beta1: f64,
    /// Adam's β2, in [0, 1).
    #[arg(long, default_value_t = 0.999, value_parser = unit_interval)]
    beta2: f64,
    /// RMSprop's decay rate, in [0, 1).
    #[arg(long, default_value_t = 0.99, value_parser = unit_interval)]
    decay_rate: f64,
}

impl OptimizerArgs {
    fn optimizer(&self) -> Optimizer {
        Optimizer {
            kind: self.optimizer,
            momentum: self.momentum,
            beta1: self.beta1,
            beta2: self.beta2,
            decay_rate: self.decay_rate,
        }
    }
}

fn dropout_ratio(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(v) if (0.0..1.0).contains(&v) => Ok(v),
        _ => Err(format!("{s:?} is not a ratio in [0, 1)")),
    }
}

fn non_negative_f64(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!("{s:?} is not a finite number >= 0")),
    }
}

fn unit_interval(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..1.0).contains(&v) => Ok(v),
        _ => Err(format!("{s:?} is not a number in [0, 1)")),
    }
}

/// A flag whose value is wrong only in the light of the data or the other
/// flags: reported like clap's errors, with exit status 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct UsageError(String);

/// Batch Normalization over one sample divides 0 by √ε: refuse it.
fn check_batchnorm_batch(batchnorm: bool, batch: usize, flag: &str) -> anyhow::Result<()> {
    if batchnorm && batch < 2 {
        return Err(UsageError(format!(
            "{flag} {batch} with --batchnorm: one sample's variance is 0, so Batch Normalization would output beta whatever the input; use a batch of 2 or more"
        ))
        .into());
    }
    Ok(())
}

/// The hidden sizes as one value (clap would split a `Vec` into many).
#[derive(Clone, Debug)]
struct Hidden(Vec<usize>);

fn parse_hidden(s: &str) -> Result<Hidden, String> {
    Arch::parse_hidden(s)
        .map(Hidden)
        .map_err(|e| e.to_string().trim_start_matches("--hidden: ").to_string())
}

// The numeric flags' ranges (src/limits.rs says why each bound is what it is).

fn positive_usize(s: &str) -> Result<usize, String> {
    limits::count(s, 1, usize::MAX)
}

fn batch_size(s: &str) -> Result<usize, String> {
    limits::count(s, 1, limits::MAX_BATCH)
}

fn iterations(s: &str) -> Result<usize, String> {
    limits::count(s, 1, limits::MAX_ITERS)
}

/// `--epochs`, `--trials` and the experiments' `--iters`.
fn up_to_max_epochs(s: &str) -> Result<usize, String> {
    limits::count(s, 1, limits::MAX_EPOCHS)
}

fn steps_per_submit(s: &str) -> Result<usize, String> {
    limits::count(s, 1, limits::MAX_STEPS_PER_SUBMIT)
}

fn repeats(s: &str) -> Result<usize, String> {
    limits::count(s, 1, limits::MAX_REPEATS)
}

fn weight_scales(s: &str) -> Result<usize, String> {
    limits::count(s, 1, limits::MAX_STDS)
}

/// More elements than a tensor has checks all of it; no network has more
/// than `MAX_PARAMS`.
fn sample_size(s: &str) -> Result<usize, String> {
    limits::count(s, 1, gpu_net::model::MAX_PARAMS)
}

fn positive_f32(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("{s:?} is not a positive number")),
    }
}

#[derive(Args)]
struct TrainArgs {
    /// cpu, gpu, or auto (GPU when there is an adapter).
    #[arg(long, value_enum, default_value_t = DeviceChoice::Auto)]
    device: DeviceChoice,
    /// Training iterations (minibatch steps), 1 to 10^9; the book's 10000 by default.
    #[arg(long, value_parser = iterations, conflicts_with = "epochs")]
    iters: Option<usize>,
    /// Epochs of train_size / batch iterations (1 to 100000), instead of --iters.
    #[arg(long, value_parser = up_to_max_epochs)]
    epochs: Option<usize>,
    /// Minibatch size; batches are drawn at random with replacement, as the book does.
    #[arg(long, default_value_t = 100, value_parser = batch_size)]
    batch: usize,
    /// Learning rate (the same default for every optimizer: Adam usually wants 0.001).
    #[arg(long, default_value_t = 0.1, value_parser = positive_f32)]
    lr: f32,
    /// Train on the first N training images only (the book's overfitting experiments use 300).
    #[arg(long, value_parser = positive_usize)]
    train_size: Option<usize>,
    #[command(flatten)]
    layers: LayerArgs,
    #[command(flatten)]
    optimizer: OptimizerArgs,
    /// GPU steps recorded into one submission (1 to 1024; never more than the run takes).
    #[arg(long, default_value_t = 8, value_parser = steps_per_submit)]
    steps_per_submit: usize,
    #[command(flatten)]
    net: NetArgs,
    #[command(flatten)]
    gpu: GpuArgs,
    /// Write a checkpoint (safetensors) here at the end of every epoch and of the run.
    #[arg(long)]
    save: Option<PathBuf>,
    /// Continue the run in this checkpoint: --iters and --epochs count the whole run.
    #[arg(long)]
    resume: Option<PathBuf>,
    /// Append one CSV row per epoch here as the run goes.
    #[arg(long)]
    metrics: Option<PathBuf>,
    /// At the end, draw the run's learning curves (accuracy and loss per epoch) as SVG here.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// End with one JSON object on stdout (human output goes to stderr).
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct VerifyArgs {
    /// Check the first N training images.
    #[arg(long, default_value_t = 3, value_parser = batch_size)]
    batch: usize,
    /// Check K random elements per tensor instead of all of them (without
    /// it, verify samples when checking everything would take too long).
    #[arg(long, value_parser = sample_size)]
    sample: Option<usize>,
    /// Multiply every tolerance by S, in (0, 1]: stricter than each side's
    /// precision promises, to see the margin (verify never loosens them).
    #[arg(long, default_value_t = 1.0, value_parser = tolerance_scale)]
    tolerance_scale: f64,
    #[command(flatten)]
    net: NetArgs,
    #[command(flatten)]
    layers: LayerArgs,
    #[command(flatten)]
    gpu: GpuArgs,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct BenchArgs {
    /// Batch sizes, comma separated.
    #[arg(long, default_value = "100,1000,8192", value_parser = parse_list)]
    batch: UsizeList,
    /// Networks to time, comma separated, each a hidden size (784-H-10) or
    /// several joined with ':' for deeper ones (64:32 is 784-64-32-10).
    #[arg(long, default_value = "50,1024", value_parser = parse_nets)]
    hidden: Nets,
    /// Length of each timed run, in seconds (at most 3600).
    #[arg(long, default_value_t = 3.0, value_parser = seconds)]
    seconds: f64,
    /// Timed runs per configuration, 1 to 1000 (the median is reported).
    #[arg(long, default_value_t = 3, value_parser = repeats)]
    repeats: usize,
    /// Time the CPU reference path too.
    #[arg(long)]
    cpu: bool,
    /// Most GPU steps recorded into one submission (1 to 1024).
    #[arg(long, default_value_t = 16, value_parser = steps_per_submit)]
    steps_per_submit: usize,
    /// Time only the matmul kernel on C(M×N) over K, given as M,N,K
    /// (A·B), M,N,K,at (Aᵀ·B, the weight-gradient form) or M,N,K,bt (A·Bᵀ);
    /// repeatable.
    #[arg(long, value_parser = parse_matmul)]
    matmul: Vec<bench::MatmulBench>,
    /// With --matmul: split K into at most this many slices, 1 to 1024
    /// (chosen by the product's shape by default).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1024))]
    split_k: Option<u32>,
    #[command(flatten)]
    layers: LayerArgs,
    #[command(flatten)]
    optimizer: OptimizerArgs,
    #[command(flatten)]
    gpu: GpuArgs,
    /// Folder with the four MNIST-style IDX files; the bundled MNIST by default.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct ExperimentArgs {
    /// optimizer-compare, weight-init-compare, batch-norm, weight-decay, dropout or hyperparameter-search.
    #[arg(value_parser = experiment::Experiment::parse)]
    name: experiment::Experiment,
    /// cpu, gpu, or auto (GPU when there is an adapter).
    #[arg(long, value_enum, default_value_t = DeviceChoice::Auto)]
    device: DeviceChoice,
    /// Seed for the weights, the minibatches and the search.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Folder with the four MNIST-style IDX files; the bundled MNIST by default.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Write the curves the book plots to DIR/NAME.csv.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Iterations of optimizer-compare and weight-init-compare instead of the book's 2000.
    #[arg(long, value_parser = up_to_max_epochs)]
    iters: Option<usize>,
    /// Epochs instead of the script's (batch-norm 20, weight-decay 201, dropout 301, hyperparameter-search 50).
    #[arg(long, value_parser = up_to_max_epochs)]
    epochs: Option<usize>,
    /// Trials of hyperparameter-search instead of 100.
    #[arg(long, value_parser = up_to_max_epochs)]
    trials: Option<usize>,
    /// Run only the first K (1 to 16) of batch-norm's 16 weight scales.
    #[arg(long, value_parser = weight_scales)]
    stds: Option<usize>,
    #[command(flatten)]
    gpu: GpuArgs,
    /// End with one JSON object on stdout (the script's lines go to stderr).
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Debug)]
struct UsizeList(Vec<usize>);

#[derive(Clone, Debug)]
struct Nets(Vec<Vec<usize>>);

fn parse_list(s: &str) -> Result<UsizeList, String> {
    s.split(',')
        .map(|v| batch_size(v.trim()))
        .collect::<Result<_, _>>()
        .map(UsizeList)
}

fn parse_nets(s: &str) -> Result<Nets, String> {
    s.split(',')
        .map(|net| parse_hidden(&net.replace(':', ",")).map(|h| h.0))
        .collect::<Result<_, _>>()
        .map(Nets)
}

fn parse_matmul(s: &str) -> Result<bench::MatmulBench, String> {
    use bench::MatmulForm::*;
    let (sizes, form) = match s.rsplit_once(',') {
        Some((sizes, "at")) => (sizes, Atb),
        Some((sizes, "bt")) => (sizes, Abt),
        _ => (s, Ab),
    };
    match parse_list(sizes)?.0[..] {
        [m, n, k] => Ok(bench::MatmulBench { m, n, k, form }),
        _ => Err(format!(
            "{s:?}: expected M,N,K (three sizes), optionally followed by ,at or ,bt"
        )),
    }
}

fn tolerance_scale(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 1.0 => Ok(v),
        _ => Err(format!("{s:?} is not a factor in (0, 1]")),
    }
}

fn seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v <= limits::MAX_SECONDS => Ok(v),
        _ => Err(format!(
            "{s:?} is not a number of seconds in (0, {}]",
            limits::MAX_SECONDS
        )),
    }
}

/// Mesa's drivers print "XDG_RUNTIME_DIR is invalid or not set" on a
/// headless machine where the variable is missing, which a new user reads as
/// an error. Give them the system's temporary folder instead; a valid
/// setting is left alone.
fn quiet_headless_drivers() {
    let valid = std::env::var_os("XDG_RUNTIME_DIR")
        .map(|d| std::path::Path::new(&d).is_dir())
        .unwrap_or(false);
    if !valid {
        // SAFETY: called first thing in main, before any other thread exists.
        unsafe { std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir()) };
    }
}

fn main() -> ExitCode {
    quiet_headless_drivers();
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    if let Some((_, sub)) = matches.subcommand() {
        note_cpu_ignores_gpu_flags(sub);
    }
    let result = match cli.command {
        Command::Train(args) => {
            let train = matches
                .subcommand_matches("train")
                .expect("the train subcommand");
            let given =
                |id: &str| train.value_source(id) == Some(clap::parser::ValueSource::CommandLine);
            run_train(args, &given)
        }
        Command::Verify(args) => run_verify(args),
        Command::Bench(args) => run_bench(args),
        Command::Experiment(args) => run_experiment(args),
        Command::Eval(args) => run_eval(args),
        Command::Plot(args) => run_plot(args),
        Command::Predict(args) => run_predict(args),
        Command::ShowWeights(args) => run_show_weights(args),
        Command::Devices(args) => run_devices(args),
    };
    match result {
        Ok(code) => code,
        Err(e) if is_usage_error(&e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// Exit status 2: a flag, or a wgpu variable (`WGPU_BACKEND`, ...), that
/// cannot mean anything.
fn is_usage_error(e: &anyhow::Error) -> bool {
    e.downcast_ref::<UsageError>().is_some()
        || matches!(
            e.downcast_ref::<gpu::GpuError>(),
            Some(gpu::GpuError::BadEnv { .. })
        )
}

/// Flags that steer only the GPU.
const GPU_ONLY_FLAGS: [&str; 4] = ["backend", "adapter", "matmul_kernel", "steps_per_submit"];

/// `--device cpu` runs no GPU code: the GPU's flags given with it are named
/// in one line, so a user does not believe they took effect.
fn note_cpu_ignores_gpu_flags(sub: &clap::ArgMatches) {
    use clap::parser::ValueSource;
    let cpu = sub.ids().any(|id| id.as_str() == "device")
        && sub.get_one::<DeviceChoice>("device") == Some(&DeviceChoice::Cpu);
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
        eprintln!("note: --device cpu ignores {} (GPU only)", given.join(", "));
    }
}

fn load_data(dir: &Option<PathBuf>) -> anyhow::Result<data::Mnist> {
    let dir = dir.clone().unwrap_or_else(data::bundled_dir);
    Ok(data::load_dir(&dir)?)
}

/// Opens the GPU for `--device`; `None` means use the CPU.
fn open_device(
    choice: DeviceChoice,
    gpu: &GpuArgs,
    say: &dyn Fn(String),
) -> anyhow::Result<Option<Arc<GpuContext>>> {
    match choice {
        DeviceChoice::Cpu => Ok(None),
        DeviceChoice::Gpu => Ok(Some(Arc::new(GpuContext::new(&gpu.options())?))),
        DeviceChoice::Auto => match GpuContext::new(&gpu.options()) {
            Ok(ctx) => Ok(Some(Arc::new(ctx))),
            Err(e @ gpu::GpuError::NoAdapter(_)) => {
                say(format!("warning: {e}; training on the CPU instead"));
                Ok(None)
            }
            Err(e) => Err(e.into()),
        },
    }
}

/// Takes the run's settings from its checkpoint; a flag given on the command
/// line that says otherwise is a usage error naming both values.
fn apply_checkpoint(
    args: &mut TrainArgs,
    ck: &Checkpoint,
    path: &std::path::Path,
    given: &dyn Fn(&str) -> bool,
) -> anyhow::Result<()> {
    let arch = &ck.params.arch;
    let o = &ck.optimizer;
    let join = |v: &[usize]| {
        v.iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    let train_size = args.train_size.map_or("all".into(), |n| n.to_string());
    // (flag id, the command line's value, the checkpoint's)
    let pairs: [(&str, String, String); 14] = [
        ("hidden", join(&args.net.hidden.0), join(arch.hidden())),
        (
            "batchnorm",
            args.layers.batchnorm.to_string(),
            arch.batchnorm.to_string(),
        ),
        (
            "dropout",
            args.layers.dropout.to_string(),
            arch.dropout.to_string(),
        ),
        (
            "weight_decay",
            args.layers.weight_decay.to_string(),
            ck.weight_decay.to_string(),
        ),
        (
            "optimizer",
            args.optimizer.optimizer.to_string(),
            o.kind.to_string(),
        ),
        (
            "momentum",
            args.optimizer.momentum.to_string(),
            o.momentum.to_string(),
        ),
        (
            "beta1",
            args.optimizer.beta1.to_string(),
            o.beta1.to_string(),
        ),
        (
            "beta2",
            args.optimizer.beta2.to_string(),
            o.beta2.to_string(),
        ),
        (
            "decay_rate",
            args.optimizer.decay_rate.to_string(),
            o.decay_rate.to_string(),
        ),
        ("lr", args.lr.to_string(), ck.lr.to_string()),
        ("batch", args.batch.to_string(), ck.batch.to_string()),
        ("seed", args.net.seed.to_string(), ck.seed.to_string()),
        ("init", args.net.init.to_string(), ck.init.to_string()),
        ("train_size", train_size, ck.train_size.to_string()),
    ];
    let conflicts: Vec<String> = pairs
        .iter()
        .filter(|(id, ours, theirs)| given(id) && ours != theirs)
        .map(|(id, ours, theirs)| {
            format!(
                "--{} {ours} contradicts the checkpoint's {theirs}",
                id.replace('_', "-")
            )
        })
        .collect();
    if !conflicts.is_empty() {
        return Err(UsageError(format!(
            "--resume {}: {}",
            path.display(),
            conflicts.join("; ")
        ))
        .into());
    }
    args.net.hidden = Hidden(arch.hidden().to_vec());
    args.layers.batchnorm = arch.batchnorm;
    args.layers.dropout = arch.dropout;
    args.layers.weight_decay = ck.weight_decay;
    args.optimizer = OptimizerArgs {
        optimizer: o.kind,
        momentum: o.momentum,
        beta1: o.beta1,
        beta2: o.beta2,
        decay_rate: o.decay_rate,
    };
    args.lr = ck.lr;
    args.batch = ck.batch;
    args.net.seed = ck.seed;
    args.net.init = ck.init;
    args.train_size = Some(ck.train_size);
    // The run's own data, unless --data says otherwise (not checked: the
    // same files can have two names).
    if args.net.data.is_none() {
        args.net.data = Some(PathBuf::from(&ck.data));
    }
    Ok(())
}

/// Appends one row per epoch, flushed as it goes (a crash keeps the rows so far).
struct MetricsCsv {
    file: std::fs::File,
    path: PathBuf,
}

impl MetricsCsv {
    const HEADER: &'static str =
        "epoch,iteration,loss,train_accuracy,test_accuracy,seconds,samples_per_sec";

    /// A new file with the header, or (continuing a run) the existing one.
    fn open(path: &std::path::Path, append: bool) -> anyhow::Result<Self> {
        let exists = path.metadata().map(|m| m.len() > 0).unwrap_or(false);
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(append)
            .truncate(!append)
            .open(path)
            .with_context(|| format!("--metrics {}: cannot write it", path.display()))?;
        if !(append && exists) {
            use std::io::Write;
            writeln!(file, "{}", Self::HEADER)
                .with_context(|| format!("--metrics {}", path.display()))?;
        }
        Ok(MetricsCsv {
            file,
            path: path.to_path_buf(),
        })
    }

    fn row(&mut self, r: &EpochReport) -> anyhow::Result<()> {
        use std::io::Write;
        writeln!(
            self.file,
            "{},{},{},{},{},{},{}",
            r.epoch,
            r.iter,
            r.loss,
            r.train_accuracy,
            r.test_accuracy,
            r.seconds,
            r.samples_per_sec
        )
        .and_then(|_| self.file.flush())
        .with_context(|| format!("--metrics {}", self.path.display()))
    }
}

fn run_train(mut args: TrainArgs, given: &dyn Fn(&str) -> bool) -> anyhow::Result<ExitCode> {
    let resumed = match args.resume.clone() {
        Some(path) => {
            let ck = Checkpoint::read(&path)?;
            apply_checkpoint(&mut args, &ck, &path, given)?;
            Some(ck)
        }
        None => None,
    };
    if let Some(path) = &args.save {
        checkpoint::check_writable(path).context("--save")?;
    }
    if let Some(path) = &args.plot {
        checkpoint::check_writable(path).context("--plot")?;
    }
    let json = args.json;
    // With --json, stdout carries only the final object.
    let say = move |line: String| {
        if json {
            eprintln!("{line}")
        } else {
            println!("{line}")
        }
    };
    let mut data = load_data(&args.net.data)?;
    let full_train_size = data.train.len();
    if let Some(n) = args.train_size {
        if n > data.train.len() {
            return Err(UsageError(format!(
                "--train-size {n}: the training set has only {} images",
                data.train.len()
            ))
            .into());
        }
        data.train = data.train.first(n);
    }
    check_batchnorm_batch(args.layers.batchnorm, args.batch, "--batch")?;
    let arch = args.layers.arch(data.train.pixels(), &args.net.hidden.0)?;
    let rule = StepRule {
        optimizer: args.optimizer.optimizer(),
        weight_decay: args.layers.weight_decay,
        seed: args.net.seed,
    };
    let per_epoch = train::iters_per_epoch(data.train.len(), args.batch);
    let iters = match (args.iters, args.epochs) {
        (Some(i), _) => i,
        (None, Some(e)) => match e.checked_mul(per_epoch) {
            Some(i) if i <= limits::MAX_ITERS => i,
            _ => {
                return Err(UsageError(format!(
                    "--epochs {e}: {e} × {per_epoch} iterations per epoch is over the limit of {} iterations",
                    limits::MAX_ITERS
                ))
                .into());
            }
        },
        (None, None) => 10_000,
    };
    let cfg = TrainConfig {
        iters,
        batch: args.batch,
        lr: args.lr,
        seed: args.net.seed,
    };
    if let Some(ck) = &resumed {
        if ck.params.arch != arch {
            return Err(UsageError(format!(
                "--resume {}: the checkpoint's network {:?} does not fit the data's {} inputs",
                args.resume.as_ref().unwrap().display(),
                ck.params.arch.sizes,
                data.train.pixels()
            ))
            .into());
        }
        if ck.iterations as usize >= cfg.iters {
            return Err(UsageError(format!(
                "--iters {}: the checkpoint has already done {} iterations (--iters and --epochs count the whole run)",
                cfg.iters, ck.iterations
            ))
            .into());
        }
    }
    let params = match &resumed {
        Some(ck) => ck.params.clone(),
        None => Params::init_with(&arch, args.net.init, cfg.seed),
    };
    // Never more steps per submission than the run will take.
    let done = resumed.as_ref().map_or(0, |ck| ck.iterations as usize);
    let slots = limits::submit_slots(cfg.batch, args.steps_per_submit, cfg.iters - done);
    let ctx = open_device(args.device, &args.gpu, &say)?;
    if ctx.is_none() {
        cpu_memory::check(
            || {
                format!(
                    "training {:?} with {} at --batch {}",
                    arch.sizes, rule.optimizer.kind, cfg.batch
                )
            },
            cpu_memory::training_bytes(&arch, cfg.batch, rule.optimizer.kind.state_arrays()),
        )?;
    }
    let mut trainer: Box<dyn Trainer> = match ctx {
        Some(ctx) => Box::new(
            gpu::GpuTrainer::new(ctx, &params, &data, cfg.batch, slots, cfg.lr, &rule)
                .with_context(|| {
                    format!(
                        "setting up the GPU for batch {} and network {:?}",
                        cfg.batch, arch.sizes
                    )
                })?,
        ),
        None => Box::new(CpuTrainer::new(&arch, params, &data, &rule)),
    };
    say(format!("device: {}", trainer.device()));
    say(format!(
        "network {:?}, {} parameters; {} iterations of batch {} ({} per epoch), lr {}, seed {}",
        arch.sizes,
        arch.param_count(),
        cfg.iters,
        cfg.batch,
        per_epoch,
        cfg.lr,
        cfg.seed
    ));
    // Only for runs that use chapter 6: the book's runs print as they always did.
    let plain = !arch.batchnorm
        && arch.dropout == 0.0
        && rule
            == StepRule {
                seed: rule.seed,
                ..StepRule::default()
            }
        && args.net.init == Init::default()
        && data.train.len() == full_train_size;
    if !plain {
        say(format!(
            "layers: {}; init {}; optimizer {}; weight decay {}; {} training images",
            arch.describe(),
            args.net.init,
            rule.optimizer.describe(),
            rule.weight_decay,
            data.train.len()
        ));
    }
    let resume = match &resumed {
        Some(ck) => {
            trainer.restore(&ck.optimizer_state, ck.iterations)?;
            let f64_device = trainer.device().starts_with("cpu");
            if ck.f64_values != f64_device {
                say(format!(
                    "note: the checkpoint was trained in {}, this run continues in {}: it will not repeat the original run's bits",
                    if ck.f64_values {
                        "f64 (CPU)"
                    } else {
                        "f32 (GPU)"
                    },
                    if f64_device { "f64 (CPU)" } else { "f32 (GPU)" }
                ));
            }
            say(format!(
                "resuming {} at iteration {}",
                args.resume.as_ref().unwrap().display(),
                ck.iterations
            ));
            Some(train::Resume {
                done: ck.iterations as usize,
                sampler_position: ck.sampler_position,
            })
        }
        None => None,
    };
    let mut metrics = match &args.metrics {
        Some(path) => Some(MetricsCsv::open(path, resumed.is_some())?),
        None => None,
    };
    let on_cpu = trainer.device().starts_with("cpu");
    // A progress bar on a terminal only: logs, pipes and --json stay clean.
    use std::io::IsTerminal;
    let bar = (!json && std::io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new(cfg.iters as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:30} iter {pos}/{len}  {prefix}  {msg}  {eta} left",
            )
            .expect("a valid template"),
        );
        bar.set_position(resumed.as_ref().map_or(0, |ck| ck.iterations));
        bar
    });
    // Lines go above the bar, not through it.
    let say = |line: String| match &bar {
        Some(b) => b.suspend(|| say(line)),
        None => say(line),
    };
    let data_dir = args.net.data.clone().unwrap_or_else(data::bundled_dir);
    let mut curves = gpu_net::plot::Curves {
        name: args
            .save
            .as_ref()
            .and_then(|p| p.file_stem())
            .map_or("train".into(), |s| s.to_string_lossy().into_owned()),
        epoch: vec![],
        loss: vec![],
        train_accuracy: vec![],
        test_accuracy: vec![],
    };
    let mut epoch_end = |r: &EpochReport, trainer: &mut dyn Trainer, position: u128| {
        curves.epoch.push(r.epoch as f64);
        curves.loss.push(r.loss);
        curves.train_accuracy.push(r.train_accuracy);
        curves.test_accuracy.push(r.test_accuracy);
        say(format!(
            "epoch {:>3}  iter {:>6}  loss {:.4}  train acc {:.4}  test acc {:.4}  {:>9.0} samples/s",
            r.epoch, r.iter, r.loss, r.train_accuracy, r.test_accuracy, r.samples_per_sec
        ));
        if let Some(b) = &bar {
            b.set_prefix(format!(
                "epoch {}  loss {:.4}  test acc {:.4}",
                r.epoch, r.loss, r.test_accuracy
            ));
        }
        if let Some(m) = &mut metrics {
            m.row(r)?;
        }
        if let Some(path) = &args.save {
            let params = trainer.params()?;
            anyhow::ensure!(
                params
                    .values
                    .iter()
                    .chain(&params.running)
                    .all(|v| v.is_finite()),
                "the parameters are not finite after iteration {} (try a lower --lr); {} keeps its previous contents",
                r.iter,
                path.display()
            );
            let ck = Checkpoint {
                params,
                optimizer: rule.optimizer,
                optimizer_state: trainer.optimizer_state()?,
                weight_decay: rule.weight_decay,
                init: args.net.init,
                seed: cfg.seed,
                lr: cfg.lr,
                batch: cfg.batch,
                iterations: trainer.steps_done(),
                sampler_position: position,
                data: data_dir.display().to_string(),
                train_size: data.train.len(),
                test_accuracy: Some(r.test_accuracy),
                f64_values: on_cpu,
            };
            ck.write(path)?;
        }
        Ok(())
    };
    // Hand the device a few submissions' worth of steps at a time.
    let steps_per_call = limits::steps_per_call(cfg.batch, slots);
    let summary = train::train_from(
        trainer.as_mut(),
        data.train.len(),
        &cfg,
        steps_per_call,
        resume,
        &mut epoch_end,
        &mut |done| {
            if let Some(b) = &bar {
                b.set_position(done as u64);
                b.set_message(format!("{:.0} samples/s", b.per_sec() * cfg.batch as f64));
            }
        },
    )?;
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    if let Some(path) = &args.plot {
        gpu_net::plot::draw(std::slice::from_ref(&curves), path)?;
        say(format!("learning curves written to {}", path.display()));
    }
    say(format!(
        "done: {} iterations in {:.1} s ({:.0} samples/s), final test accuracy {:.4}",
        summary.iters, summary.seconds, summary.samples_per_sec, summary.test_accuracy
    ));
    if json {
        println!("{}", serde_json::to_string(&summary)?);
    }
    Ok(ExitCode::SUCCESS)
}

fn run_verify(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let data = load_data(&args.net.data)?;
    check_batchnorm_batch(args.layers.batchnorm, args.batch, "--batch")?;
    let arch = args.layers.arch(data.train.pixels(), &args.net.hidden.0)?;
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
                    args.net.hidden.0.iter().map(|h| h.to_string()).collect::<Vec<_>>().join(","),
                    verify::CHECK_BUDGET
                ))
                .into());
            }
        },
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    cpu_memory::check(
        || format!("verify of {:?} at --batch {}", arch.sizes, args.batch),
        cpu_memory::verify_bytes(&arch, args.batch, threads),
    )?;
    let ctx = Arc::new(GpuContext::new(&args.gpu.options())?);
    let cfg = verify::VerifyConfig {
        batch: args.batch,
        seed: args.net.seed,
        sample,
        sampled_automatically,
        init: args.net.init,
        weight_decay: args.layers.weight_decay,
        tolerance_scale: args.tolerance_scale,
    };
    let report = verify::verify(ctx, &arch, &data.train, &cfg, None)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        for line in report.failures() {
            eprintln!("FAIL {line}");
        }
    } else {
        print!("{}", verify::render(&report));
    }
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn run_bench(args: BenchArgs) -> anyhow::Result<ExitCode> {
    let data = load_data(&args.data)?;
    let cfg = bench::BenchConfig {
        batches: args.batch.0,
        hidden: args.hidden.0,
        seconds: args.seconds,
        repeats: args.repeats,
        cpu: args.cpu,
        gpu: args.matmul.is_empty(),
        steps_per_submit: args.steps_per_submit,
        matmul: args.matmul,
        split_k: args.split_k.map_or(SplitK::Auto, SplitK::Slices),
        rule: StepRule {
            optimizer: args.optimizer.optimizer(),
            weight_decay: args.layers.weight_decay,
            seed: 0,
        },
        batchnorm: args.layers.batchnorm,
        dropout: args.layers.dropout,
    };
    for &b in &cfg.batches {
        check_batchnorm_batch(cfg.batchnorm, b, "--batch")?;
        // The CPU path's memory, for every network it will time.
        for hidden in cfg.hidden.iter().take(if cfg.cpu { usize::MAX } else { 0 }) {
            let arch = Arch::mlp(data.train.pixels(), hidden, data::CLASSES)?
                .with_batchnorm(cfg.batchnorm)
                .with_dropout(cfg.dropout)?;
            cpu_memory::check(
                || format!("bench --cpu of {:?} at --batch {b}", arch.sizes),
                cpu_memory::training_bytes(&arch, b, cfg.rule.optimizer.kind.state_arrays()),
            )?;
        }
    }
    let ctx = match GpuContext::new(&args.gpu.options()) {
        Ok(ctx) => Some(Arc::new(ctx)),
        Err(e @ gpu::GpuError::NoAdapter(_)) if cfg.cpu => {
            eprintln!("warning: {e}; timing the CPU path only");
            None
        }
        Err(e) => return Err(e.into()),
    };
    let json = args.json;
    let report = bench::run(ctx, &data, &cfg, &mut |line| {
        if json {
            eprintln!("{line}")
        } else {
            println!("{line}")
        }
    })?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("\n{}", bench::render(&report));
    }
    Ok(ExitCode::SUCCESS)
}

fn run_experiment(args: ExperimentArgs) -> anyhow::Result<ExitCode> {
    let json = args.json;
    let mut say = move |line: String| {
        if json {
            eprintln!("{line}")
        } else {
            println!("{line}")
        }
    };
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("--out {}: cannot create the folder", dir.display()))?;
    }
    let data = load_data(&args.data)?;
    let device = match open_device(args.device, &args.gpu, &|l| eprintln!("{l}"))? {
        Some(ctx) => experiment::Device::Gpu(ctx),
        None => experiment::Device::Cpu,
    };
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
    if json {
        println!("{}", serde_json::to_string(&report)?);
    }
    Ok(ExitCode::SUCCESS)
}

fn run_eval(args: EvalArgs) -> anyhow::Result<ExitCode> {
    let ck = Checkpoint::read(&args.model)?;
    let data = load_data(&args.data)?;
    let arch = &ck.params.arch;
    anyhow::ensure!(
        arch.inputs() == data.test.pixels() && arch.outputs() == data::CLASSES,
        "{}: the network {:?} does not fit the data's {} pixels and {} classes",
        args.model.display(),
        arch.sizes,
        data.test.pixels(),
        data::CLASSES
    );
    let rule = StepRule {
        optimizer: ck.optimizer,
        weight_decay: ck.weight_decay,
        seed: ck.seed,
    };
    let ctx = open_device(args.device, &args.gpu, &|l| eprintln!("{l}"))?;
    if ctx.is_none() {
        cpu_memory::check(
            || format!("evaluating {} ({:?})", args.model.display(), arch.sizes),
            cpu_memory::training_bytes(arch, 0, ck.optimizer.kind.state_arrays()),
        )?;
    }
    let mut trainer: Box<dyn Trainer> = match ctx {
        // A step workspace of batch 2 and one slot: eval never trains.
        Some(ctx) => Box::new(gpu::GpuTrainer::new(
            ctx, &ck.params, &data, 2, 1, ck.lr, &rule,
        )?),
        None => Box::new(CpuTrainer::new(arch, ck.params.clone(), &data, &rule)),
    };
    let report = gpu_net::eval::evaluate(
        trainer.as_mut(),
        &data.test.labels,
        data::CLASSES,
        &args.model.display().to_string(),
    )?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", gpu_net::eval::render(&report));
    }
    Ok(ExitCode::SUCCESS)
}

fn run_predict(args: PredictArgs) -> anyhow::Result<ExitCode> {
    use gpu_net::predict;
    let ck = Checkpoint::read(&args.model)?;
    let arch = &ck.params.arch;
    anyhow::ensure!(
        arch.inputs() == predict::SIDE * predict::SIDE && arch.outputs() == data::CLASSES,
        "{}: the network {:?} does not take 28×28 images into 10 classes",
        args.model.display(),
        arch.sizes
    );
    // A handful of images: the f64 reference path, in evaluation form.
    let net = gpu_net::cpu::Net::new(arch);
    let (mut results, mut failed) = (Vec::new(), 0);
    for path in &args.images {
        let pixels = match predict::load(path, args.raw) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("error: {e}");
                failed += 1;
                continue;
            }
        };
        let x: Vec<f64> = pixels.iter().map(|&v| v as f64 / 255.0).collect();
        let p = predict::probabilities(&net.predict(&ck.params, &x, 1));
        let order = predict::ranked(&p);
        if !args.json {
            let top: Vec<String> = order[..3]
                .iter()
                .map(|&c| format!("{c} ({:.3})", p[c]))
                .collect();
            println!("{}: {}", path.display(), top.join("  "));
            if args.show {
                print!("{}", predict::show(&pixels));
            }
        }
        results.push(serde_json::json!({
            "file": path.display().to_string(),
            "label": order[0],
            "probabilities": p,
        }));
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    }
    Ok(if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn run_show_weights(args: ShowWeightsArgs) -> anyhow::Result<ExitCode> {
    let ck = Checkpoint::read(&args.model)?;
    let arch = &ck.params.arch;
    let side = gpu_net::predict::SIDE;
    anyhow::ensure!(
        arch.inputs() == side * side,
        "{}: the first layer takes {} inputs, not 28×28 images",
        args.model.display(),
        arch.inputs()
    );
    let w1 = &arch.tensors()[0];
    let img = gpu_net::predict::weight_grid(ck.params.tensor(w1), arch.inputs(), w1.shape[1]);
    img.save(&args.out)
        .with_context(|| format!("-o {}: writing the image failed", args.out.display()))?;
    println!(
        "{} units of W1 drawn to {} ({}×{})",
        w1.shape[1],
        args.out.display(),
        img.width(),
        img.height()
    );
    Ok(ExitCode::SUCCESS)
}

fn run_plot(args: PlotArgs) -> anyhow::Result<ExitCode> {
    let runs = args
        .csv
        .iter()
        .map(|p| gpu_net::plot::read_metrics(p))
        .collect::<Result<Vec<_>, _>>()?;
    gpu_net::plot::draw(&runs, &args.out)?;
    println!("{} curves written to {}", runs.len(), args.out.display());
    Ok(ExitCode::SUCCESS)
}

fn run_devices(args: DevicesArgs) -> anyhow::Result<ExitCode> {
    let (choice, adapters) = gpu::context::list_adapters(args.backend)?;
    if adapters.is_empty() {
        return Err(choice.nothing_found().into());
    }
    if args.backend.is_none() {
        if let Some(by) = &choice.named_by {
            eprintln!("note: {by}: only those backends are listed");
        }
    }
    for (i, info) in adapters.iter().enumerate() {
        println!(
            "{i}: {} [{:?}]",
            gpu::context::describe(info),
            info.device_type
        );
    }
    Ok(ExitCode::SUCCESS)
}
