//! `gpu-net train`: the book's `ch05/train_neuralnet.py` on a device. The
//! run's settings come from the flags, or from the checkpoint it resumes with
//! the flags laid over them; then the data, the network, the device and its
//! trainer; then the loop, with a checkpoint, a metrics row and a line per
//! epoch, and the learning curves at the end.

use std::io::{IsTerminal, Write};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use gpu_net::checkpoint::{self, Checkpoint};
use gpu_net::config::{ConfigError, RunConfig};
use gpu_net::cpu::memory as cpu_memory;
use gpu_net::data::{self, Mnist};
use gpu_net::device::{Device, Workspace};
use gpu_net::error::Error;
use gpu_net::files;
use gpu_net::metrics::MetricsCsv;
use gpu_net::model::{Arch, Init, Params};
use gpu_net::plot::Curves;
use gpu_net::train::{self, EpochReport, LoopEvent, Precision, Split, TrainConfig, Trainer};
use gpu_net::{limits, optim::StepRule};

use super::args::{
    CONV_FLAGS, DeviceArg, GpuArgs, LayerArgs, NetArgs, OptimizerArgs, UsageError, batch_size,
    check_batchnorm_batch, iterations, positive_f32, positive_usize, steps_per_submit,
    up_to_max_epochs,
};
use super::interrupt;
use super::output::{Output, Progress};

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
        Ok(RunConfig {
            hidden: self.net.hidden(),
            conv: self.net.conv()?,
            batchnorm: self.layers.batchnorm,
            dropout: self.layers.dropout,
            weight_decay: self.layers.weight_decay,
            init: self.net.init,
            optimizer: self.optimizer.optimizer(),
            lr: self.lr,
            batch: self.batch,
            seed: self.net.seed,
            train_size: self.train_size,
            data: self.net.data.as_ref().map(|d| d.display().to_string()),
        })
    }
}

/// The book's `iters_num`, when neither the flags nor a resumed checkpoint
/// say how long the run is.
const DEFAULT_ITERS: usize = 10_000;

/// A run resumed from its checkpoint.
struct Resumed {
    path: PathBuf,
    checkpoint: Checkpoint,
}

pub fn run(args: TrainArgs, given: &dyn Fn(&str) -> bool) -> anyhow::Result<ExitCode> {
    let out = Output::new(args.json);
    interrupt::install();
    let resumed = match &args.resume {
        Some(path) => Some(resume(path, &args, given)?),
        None => None,
    };
    let config = match &resumed {
        Some(r) => r.checkpoint.config.clone(),
        None => args.config()?,
    };
    let save = save_path(&args, resumed.as_ref(), out);
    check_outputs(&args, save.as_deref())?;
    let (data, data_dir, all_images) = training_data(&args, &config)?;
    check_distinct(&args, save.as_deref(), &data_dir)?;
    // A resumed run's batch is the checkpoint's (a contradicting --batch is refused).
    let batch_said = match &resumed {
        Some(_) => "the checkpoint's batch",
        None => "--batch",
    };
    check_batchnorm_batch(config.batchnorm, config.batch, batch_said)?;
    let arch = config.arch(data.train.pixels())?;
    let per_epoch = train::iters_per_epoch(data.train.len(), config.batch);
    let iters = planned_iterations(&args, per_epoch, resumed.as_ref())?;
    let done = match &resumed {
        Some(r) => {
            let flags_say = args.iters.is_some() || args.epochs.is_some();
            check_resume_fits(r, &arch, (iters, flags_say), data.train.pixels())?
        }
        None => 0,
    };
    if let Some(path) = &save {
        let replaced = replaced_run(path, resumed.as_ref(), &config, &arch, iters);
        match (replaced, args.overwrite) {
            (Some(what), true) => {
                out.say(&format!("note: --save {} replaces {what}", path.display()))
            }
            (Some(what), false) => {
                return Err(UsageError(format!(
                    "--save {} holds {what}: give --overwrite to replace it, or save elsewhere",
                    path.display()
                ))
                .into());
            }
            (None, _) => {}
        }
    }
    let params = match &resumed {
        Some(r) => r.checkpoint.params.clone(),
        None => Params::init_with(&arch, config.init, config.seed),
    };
    // Never more steps per submission than the run will take.
    let slots = limits::submit_slots(config.batch, args.steps_per_submit, iters - done);
    let (device, mut trainer, setup) = open_trainer(&args, &params, &data, &config, slots, out)?;
    for line in run_lines(
        &config,
        &arch,
        iters,
        per_epoch,
        (data.train.len(), all_images),
    ) {
        out.say(&line);
    }
    for line in advice(&device, &config, resumed.is_some(), given) {
        out.say(&line);
    }
    let (start, lr_schedule) = match &resumed {
        Some(r) => (
            Some(restore(r, trainer.as_mut(), out)?),
            lr_schedule(r, out),
        ),
        None => (None, vec![(0, config.lr)]),
    };
    if interrupt::requested() {
        out.say("interrupted before training started; nothing was written");
        return Ok(ExitCode::from(interrupt::EXIT_STATUS));
    }
    let run = RunRecord {
        config: RunConfig {
            train_size: Some(data.train.len()),
            // Absolute, so a resume from another folder finds it.
            data: Some(absolute(&data_dir).display().to_string()),
            ..config
        },
        iters,
        lr_schedule,
        slots,
        per_epoch,
        save,
        lr_from_checkpoint: resumed.is_some() && !given("lr"),
    };
    let mut summary = train_loop(&args, &run, trainer.as_mut(), &data, start, out)?;
    summary.setup_seconds = setup;
    say_how_it_ended(&summary, &run, out)
}

/// The device and its trainer, said in one line (and in another when
/// setting up the GPU took long enough to notice), and the seconds that
/// setup took.
fn open_trainer<'a>(
    args: &TrainArgs,
    params: &Params,
    data: &'a Mnist,
    config: &RunConfig,
    slots: usize,
    out: Output,
) -> anyhow::Result<(Device, Box<dyn Trainer + 'a>, f64)> {
    let device = Device::open(args.device.into(), &args.gpu.options(), &mut |e| {
        out.say(&format!("warning: {e}; training on the CPU instead"))
    })?;
    let gpu = matches!(device, Device::Gpu(_));
    // On a terminal, a line that stands while the driver compiles the
    // kernels (seconds on a cold shader cache), erased when it is done.
    let waiting = gpu && !out.json && std::io::stderr().is_terminal();
    if let (true, Device::Gpu(ctx)) = (waiting, &device) {
        let _ = write!(std::io::stderr(), "{}\r", compiling_note(ctx.info.backend));
    }
    let setup = std::time::Instant::now();
    let trainer = trainer(&device, params, data, config, slots);
    if waiting {
        let _ = write!(std::io::stderr(), "\x1b[2K");
    }
    let trainer = trainer?;
    out.say(&format!("device: {}", trainer.device()));
    let setup = setup.elapsed().as_secs_f64();
    if gpu && setup > 2.0 {
        out.say(&format!(
            "note: setting up the GPU took {setup:.1} s (compiling the kernels for this adapter; not counted in samples/s)"
        ));
    }
    Ok((device, trainer, setup))
}

/// What the run is: the network and its length, and how it differs from
/// the book's chapter 5 run when it does. `train` is the training images
/// and whether they are the whole set.
fn run_lines(
    config: &RunConfig,
    arch: &Arch,
    iters: usize,
    per_epoch: usize,
    train: (usize, bool),
) -> Vec<String> {
    let mut lines = vec![format!(
        "network {}, {} parameters; {} of batch {} ({per_epoch} per epoch), lr {}, seed {}",
        arch.shape(),
        arch.param_count(),
        count(iters, "iteration"),
        config.batch,
        config.lr,
        config.seed
    )];
    if !is_the_books_run(config, arch, train.1) {
        lines.push(format!(
            "layers: {}; init {}; optimizer {}; weight decay {}; {} training images",
            arch.describe(),
            config.init,
            config.optimizer.describe(),
            config.weight_decay,
            train.0
        ));
    }
    lines
}

/// One line each for what usually goes wrong with these settings: the
/// default rate with Adam or RMSprop, the book's 0.01 init in a deeper net
/// (flags the user gave, or a resumed run, are taken as meant), and a
/// software adapter that may be slower than `--device cpu`.
fn advice(
    device: &Device,
    config: &RunConfig,
    resumed: bool,
    given: &dyn Fn(&str) -> bool,
) -> Vec<String> {
    use gpu_net::optim::OptimizerKind;
    let mut lines = vec![];
    let kind = config.optimizer.kind;
    if !resumed && !given("lr") && matches!(kind, OptimizerKind::Adam | OptimizerKind::RmsProp) {
        lines.push(format!(
            "note: {kind} at the default --lr {} often learns badly: the book uses --lr 0.001 for Adam and RMSprop",
            config.lr
        ));
    }
    let deep = config.hidden.len() >= 2;
    if !resumed && !given("init") && deep && config.init == Init::default() && !config.batchnorm {
        lines.push(format!(
            "note: the book's --init {} keeps a net of {} hidden layers from learning; --init he is the usual choice",
            config.init,
            config.hidden.len()
        ));
    }
    lines.extend(super::output::software_adapter_note(device).map(String::from));
    lines
}

/// `path` made absolute (symbolic links resolved) when it exists.
fn absolute(path: &Path) -> PathBuf {
    path.canonicalize().unwrap_or_else(|_| path.to_path_buf())
}

/// `1 iteration`, `2 iterations`.
fn count(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// The last lines: the summary, where the checkpoint is, and (interrupted)
/// how to continue; exit status 130 when interrupted.
fn say_how_it_ended(
    summary: &train::TrainSummary,
    run: &RunRecord,
    out: Output,
) -> anyhow::Result<ExitCode> {
    if summary.interrupted {
        let saved = match &run.save {
            Some(p) => format!(
                "saved {}; continue with `gpu-net train --resume {}`",
                p.display(),
                p.display()
            ),
            None => "nothing saved (--save PATH keeps a run)".into(),
        };
        out.say(&format!(
            "interrupted at iteration {}; {saved}",
            summary.iters
        ));
    } else {
        out.say(&format!(
            "done: {} in {:.1} s ({:.0} samples/s) and {:.1} s of evaluation, final test accuracy {:.4}",
            count(summary.iters, "iteration"),
            summary.seconds,
            summary.samples_per_sec,
            summary.eval_seconds,
            summary.test_accuracy
        ));
        if let Some(p) = &run.save {
            out.say(&format!(
                "saved {} (iteration {}, test accuracy {:.4})",
                p.display(),
                summary.iters,
                summary.test_accuracy
            ));
        }
    }
    out.object(summary, false)?;
    Ok(if summary.interrupted {
        ExitCode::from(interrupt::EXIT_STATUS)
    } else {
        ExitCode::SUCCESS
    })
}

/// `--save`, or else the checkpoint being resumed (said in one line).
fn save_path(args: &TrainArgs, resumed: Option<&Resumed>, out: Output) -> Option<PathBuf> {
    match (&args.save, resumed) {
        (Some(p), _) => Some(p.clone()),
        (None, Some(r)) => {
            out.say(&format!(
                "saving to {} (the checkpoint resumed; --save PATH writes elsewhere)",
                r.path.display()
            ));
            Some(r.path.clone())
        }
        (None, None) => None,
    }
}

/// What `path` holds that the run would replace and that is not an earlier
/// state of this run: a checkpoint of another seed, network or rule, a
/// longer run, or a file that is no checkpoint at all. None for nothing,
/// the checkpoint being resumed, or an earlier state of the same run.
fn replaced_run(
    path: &Path,
    resumed: Option<&Resumed>,
    config: &RunConfig,
    arch: &Arch,
    iters: usize,
) -> Option<String> {
    let same_file = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if !path.is_file() || resumed.is_some_and(|r| same_file(&r.path, path)) {
        return None;
    }
    let old = match Checkpoint::read(path) {
        Ok(old) => old,
        Err(e) => return Some(format!("a file that is not a gpu-net checkpoint ({e})")),
    };
    let c = &old.config;
    let another_run = c.seed != config.seed
        || &old.params.arch != arch
        || c.optimizer.kind != config.optimizer.kind;
    let longer = old.iterations as usize > iters;
    (another_run || longer).then(|| {
        format!(
            "the checkpoint of {} (network {}, {}, seed {}, {}{})",
            if another_run {
                "another run"
            } else {
                "a longer run"
            },
            old.params.arch.shape(),
            c.optimizer.kind,
            c.seed,
            count(old.iterations as usize, "iteration"),
            old.test_accuracy
                .map_or(String::new(), |a| format!(", test accuracy {a:.4}")),
        )
    })
}

/// The checkpoint's learning rates, with the one this run trains at added
/// (and said) when a flag changed it.
fn lr_schedule(r: &Resumed, out: Output) -> Vec<(u64, f32)> {
    let mut schedule = r.checkpoint.lr_schedule.clone();
    let lr = r.checkpoint.config.lr;
    let at = r.checkpoint.iterations;
    let previous = schedule.last().map(|&(_, lr)| lr);
    if previous != Some(lr) {
        out.say(&format!(
            "learning rate {} → {lr} from iteration {at}",
            previous.map_or("?".into(), |p| p.to_string())
        ));
        // Resumed twice at one iteration: the later rate is the one used.
        schedule.retain(|&(i, _)| i < at);
        schedule.push((at, lr));
    }
    schedule
}

/// Reads the checkpoint and lays the flags the user gave over its settings;
/// a flag that says otherwise is a usage error naming both values.
fn resume(path: &Path, args: &TrainArgs, given: &dyn Fn(&str) -> bool) -> anyhow::Result<Resumed> {
    let mut checkpoint = Checkpoint::read(path)?;
    let fields = RunConfig::field_names();
    // `conv` is one field set by several flags.
    let conv_given = given("net") || CONV_FLAGS.iter().any(|f| given(f));
    let given: Vec<&str> = fields
        .iter()
        .map(String::as_str)
        .filter(|f| given(f) || (*f == "conv" && conv_given))
        .collect();
    checkpoint.config = match checkpoint.config.overlay(&args.config()?, &given) {
        Ok(c) => c,
        Err(ConfigError::Contradicts(conflicts)) => {
            let said: Vec<String> = conflicts
                .iter()
                .map(|c| match c.field.as_str() {
                    "conv" => format!(
                        "--net {} contradicts the checkpoint's {}",
                        net_text(&c.given),
                        net_text(&c.stored)
                    ),
                    _ => format!(
                        "--{} {} contradicts the checkpoint's {}",
                        c.field.replace('_', "-"),
                        c.given,
                        c.stored
                    ),
                })
                .collect();
            let why = format!("--resume {}: {}", path.display(), said.join("; "));
            return Err(UsageError(why).into());
        }
        Err(e) => return Err(e).with_context(|| format!("--resume {}", path.display())),
    };
    Ok(Resumed {
        path: path.to_path_buf(),
        checkpoint,
    })
}

/// A `conv` field's text as `--net` names it: `mlp`, or `simple-convnet`
/// with its settings.
fn net_text(conv: &str) -> String {
    match serde_json::from_str::<Option<gpu_net::conv::ConvFront>>(conv) {
        Ok(Some(front)) => format!("simple-convnet ({})", front.describe()),
        _ if conv == "none" => "mlp".into(),
        _ => conv.into(),
    }
}

/// The files the run will write can be written, before it trains.
fn check_outputs(args: &TrainArgs, save: Option<&Path>) -> anyhow::Result<()> {
    if let Some(path) = save {
        let flag = if args.save.is_some() {
            "--save"
        } else {
            "--resume"
        };
        checkpoint::check_writable(path).context(flag)?;
    }
    if let Some(path) = &args.plot {
        gpu_net::plot::check_output(path).context("--plot")?;
    }
    Ok(())
}

/// No two of the files the run reads and writes are one file (a metrics
/// CSV appended to the checkpoint, a figure over the dataset), except a
/// resumed checkpoint saved back to itself.
fn check_distinct(args: &TrainArgs, save: Option<&Path>, data_dir: &Path) -> anyhow::Result<()> {
    let save_flag = if args.save.is_some() {
        "--save"
    } else {
        "--resume"
    };
    let mut named: Vec<(String, &Path)> = vec![];
    named.extend(save.map(|p| (save_flag.to_string(), p)));
    named.extend(
        args.metrics
            .as_deref()
            .map(|p| ("--metrics".to_string(), p)),
    );
    named.extend(args.plot.as_deref().map(|p| ("--plot".to_string(), p)));
    let writes = named.len();
    named.extend(args.resume.as_deref().map(|p| ("--resume".to_string(), p)));
    let data_files = data::files_read(data_dir);
    named.extend(
        data_files
            .iter()
            .map(|p| ("--data".to_string(), p.as_path())),
    );
    for (i, (flag, path)) in named.iter().enumerate().take(writes) {
        for (other, other_path) in &named[i + 1..] {
            let resaved = flag == "--save" && other == "--resume" || flag == other;
            if !resaved && files::same_file(path, other_path) {
                return Err(UsageError(format!(
                    "{flag} {} and {other} {} are one file: the run would overwrite what it {}",
                    path.display(),
                    other_path.display(),
                    if other == "--data" || other == "--resume" {
                        "reads"
                    } else {
                        "writes"
                    }
                ))
                .into());
            }
        }
    }
    Ok(())
}

/// The line that stands while the driver compiles the kernels: Vulkan,
/// Metal and DX12 drivers keep what they compiled, GL compiles every run.
fn compiling_note(backend: wgpu::Backend) -> &'static str {
    if backend == wgpu::Backend::Gl {
        "compiling shaders (GL compiles them on every run)..."
    } else {
        "compiling shaders (first run only; the driver caches them)..."
    }
}

/// The data (its training set cut to `train_size`), the folder it came from,
/// and whether the training set is whole.
fn training_data(args: &TrainArgs, config: &RunConfig) -> anyhow::Result<(Mnist, PathBuf, bool)> {
    // The flag's own path (not its text) when given, else the checkpoint's
    // while it exists, else where the data is found.
    let stored = config.data.as_ref().map(PathBuf::from);
    let dir = match (&args.net.data, stored) {
        (Some(d), _) => d.clone(),
        (None, Some(d)) if d.is_dir() => d,
        (None, Some(d)) => {
            let found = data::default_dir().with_context(|| {
                format!("the checkpoint's data folder {} is not here", d.display())
            })?;
            let note = format!(
                "note: the checkpoint's data folder {} is not here; reading {} (--data DIR says otherwise)",
                d.display(),
                found.display()
            );
            say_err!("{note}");
            found
        }
        (None, None) => data::default_dir()?,
    };
    let mut data = data::load_dir(&dir)?;
    let all = data.train.len();
    if let Some(n) = config.train_size {
        if n > all {
            let said = match args.train_size {
                Some(_) => "--train-size".to_string(),
                None => "the checkpoint's train_size".to_string(),
            };
            let why = format!(
                "{said} {n}: the training set in {} has only {all} images",
                dir.display()
            );
            return Err(UsageError(why).into());
        }
        data.train = data.train.first(n);
    }
    let whole = data.train.len() == all;
    Ok((data, dir, whole))
}

/// `--iters`, or `--epochs` of the epoch's iterations, or else the planned
/// end of the run resumed, or the book's 10000.
fn planned_iterations(
    args: &TrainArgs,
    per_epoch: usize,
    resumed: Option<&Resumed>,
) -> anyhow::Result<usize> {
    Ok(match (args.iters, args.epochs) {
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
        (None, None) => resumed
            .and_then(|r| r.checkpoint.planned_iterations)
            .map_or(DEFAULT_ITERS, |n| n as usize),
    })
}

/// The checkpoint's network fits the data and it has iterations left of
/// `planned` (the iterations, and whether a flag said so); returns the
/// iterations it has done.
fn check_resume_fits(
    r: &Resumed,
    arch: &Arch,
    planned: (usize, bool),
    pixels: usize,
) -> anyhow::Result<usize> {
    let (iters, flags_say) = planned;
    let ck = &r.checkpoint;
    if &ck.params.arch != arch {
        return Err(UsageError(format!(
            "--resume {}: the checkpoint's network {} does not fit the data's {pixels} inputs",
            r.path.display(),
            ck.params.arch.shape(),
        ))
        .into());
    }
    if ck.iterations as usize >= iters && !flags_say {
        return Err(UsageError(format!(
            "--resume {}: the run is complete ({} of its {iters} iterations); --iters or --epochs past that continues it",
            r.path.display(),
            ck.iterations
        ))
        .into());
    }
    if ck.iterations as usize >= iters {
        return Err(UsageError(format!(
            "--iters {iters}: the checkpoint has already done {} (--iters and --epochs count the whole run)",
            count(ck.iterations as usize, "iteration")
        ))
        .into());
    }
    Ok(ck.iterations as usize)
}

/// The device's trainer, after the CPU path's memory check.
fn trainer<'a>(
    device: &Device,
    params: &Params,
    data: &'a Mnist,
    config: &RunConfig,
    slots: usize,
) -> anyhow::Result<Box<dyn Trainer + 'a>> {
    let arch = &params.arch;
    let rule = config.rule();
    if let Device::Cpu = device {
        let state = rule.optimizer.kind.state_arrays();
        cpu_memory::check(
            || {
                format!(
                    "training {} with {} at --batch {}",
                    arch.shape(),
                    rule.optimizer.kind,
                    config.batch
                )
            },
            cpu_memory::training_bytes(arch, config.batch, state),
        )?;
    }
    let workspace = Workspace {
        batch: config.batch,
        slots,
    };
    device
        .trainer(params, data, workspace, config.lr, &rule)
        .with_context(|| {
            format!(
                "setting up the GPU for batch {} and network {}",
                config.batch,
                arch.shape()
            )
        })
}

/// The book's chapter 5 run (whatever the seed) prints as it always did;
/// any run that uses chapter 6 says how.
fn is_the_books_run(config: &RunConfig, arch: &Arch, all_images: bool) -> bool {
    let rule = config.rule();
    !arch.batchnorm
        && arch.dropout == 0.0
        && rule
            == StepRule {
                seed: rule.seed,
                ..StepRule::default()
            }
        && config.init == Init::default()
        && all_images
}

/// Puts the checkpoint's optimizer state and step count into the trainer;
/// where the loop starts.
fn restore(r: &Resumed, trainer: &mut dyn Trainer, out: Output) -> anyhow::Result<train::Resume> {
    let ck = &r.checkpoint;
    trainer.restore(&ck.optimizer_state, ck.iterations)?;
    let stored = if ck.f64_values {
        Precision::F64
    } else {
        Precision::F32
    };
    if stored != trainer.precision() {
        out.say(&format!(
            "note: the checkpoint was trained in {}, this run continues in {}: it will not repeat the original run's bits",
            stored.describe(),
            trainer.precision().describe()
        ));
    }
    out.say(&format!(
        "resuming {} at iteration {}",
        r.path.display(),
        ck.iterations
    ));
    Ok(train::Resume {
        done: ck.iterations as usize,
        sampler_position: ck.sampler_position,
    })
}

/// What the loop needs to know of the run besides the trainer.
struct RunRecord {
    /// The settings as the checkpoint records them (data and size given).
    config: RunConfig,
    iters: usize,
    lr_schedule: Vec<(u64, f32)>,
    slots: usize,
    per_epoch: usize,
    /// Where checkpoints go: `--save`, or the checkpoint resumed.
    save: Option<PathBuf>,
    /// Resumed, and `--lr` not given: the rate is the checkpoint's.
    lr_from_checkpoint: bool,
}

/// The loop, with what happens at each epoch's end, and the curves drawn.
fn train_loop(
    args: &TrainArgs,
    run: &RunRecord,
    trainer: &mut dyn Trainer,
    data: &Mnist,
    start: Option<train::Resume>,
    out: Output,
) -> anyhow::Result<train::TrainSummary> {
    let config = &run.config;
    let cfg = TrainConfig {
        iters: run.iters,
        batch: config.batch,
        lr: config.lr,
        seed: config.seed,
    };
    let done = start.map_or(0, |s| s.done);
    let progress = Progress::new(out, run.iters, done, config.batch);
    let metrics = match &args.metrics {
        Some(path) => Some(MetricsCsv::open(path, start.is_some()).context("--metrics")?),
        None => None,
    };
    let mut end = EpochEnd {
        progress: &progress,
        metrics,
        run,
        curves: Curves::named(
            run.save
                .as_ref()
                .and_then(|p| p.file_stem())
                .map_or(String::new(), |s| s.to_string_lossy().into_owned()),
        ),
    };
    // Hand the device a few submissions' worth of steps at a time.
    let steps_per_call = limits::steps_per_call(cfg.batch, run.slots);
    let summary = train::train_from(
        trainer,
        data.train.len(),
        &cfg,
        steps_per_call,
        start,
        &mut |r, trainer, position| end.epoch(r, trainer, position),
        &mut |event| match event {
            LoopEvent::Steps(done) => {
                progress.at(done);
                if interrupt::requested() {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            }
            LoopEvent::Evaluating(split) => {
                progress.evaluating(match split {
                    Split::Train => "the training set",
                    Split::Test => "the test set",
                });
                ControlFlow::Continue(())
            }
        },
    )
    .map_err(|e| with_flags(e, run, start.is_some()))?;
    progress.finish();
    if let Some(path) = &args.plot {
        gpu_net::plot::draw(std::slice::from_ref(&end.curves), path)?;
        out.say(&format!("learning curves written to {}", path.display()));
    }
    Ok(summary)
}

/// The library's errors, with the setting most likely to blame: an init
/// or weight decay far past any usual value, else the learning rate.
fn with_flags(e: Error, run: &RunRecord, resumed: bool) -> anyhow::Error {
    let Error::Diverged { lr, .. } = e else {
        return e.into();
    };
    let config = &run.config;
    let from = if resumed {
        " (from the checkpoint)"
    } else {
        ""
    };
    let std = match config.init {
        Init::Std(s) => s,
        _ => 0.0,
    };
    if std > 1.0 {
        anyhow::anyhow!(
            "{e}; try a smaller --init{from} (it is {}; the book uses 0.01, or he)",
            config.init
        )
    } else if config.weight_decay > 1.0 {
        anyhow::anyhow!(
            "{e}; try a smaller --weight-decay{from} (it is {}; the book uses 0.1)",
            config.weight_decay
        )
    } else {
        let from = if run.lr_from_checkpoint {
            " (from the checkpoint)"
        } else {
            ""
        };
        anyhow::anyhow!("{e}; try a lower --lr{from} (it is {lr})")
    }
}

/// Each epoch's line, metrics row, checkpoint and point of the curves.
struct EpochEnd<'a> {
    progress: &'a Progress,
    metrics: Option<MetricsCsv>,
    run: &'a RunRecord,
    curves: Curves,
}

impl EpochEnd<'_> {
    fn epoch(
        &mut self,
        r: &EpochReport,
        trainer: &mut dyn Trainer,
        position: u128,
    ) -> gpu_net::error::Result<()> {
        (self.curves).push(r.epoch, r.loss, r.train_accuracy, r.test_accuracy);
        let per_epoch = self.run.per_epoch;
        let partial = match r.iter % per_epoch {
            0 => String::new(),
            n => format!("  (partial: {n} of {per_epoch} iterations)"),
        };
        self.progress.say(&format!(
            "epoch {:>3}  iter {:>6}  loss {:.4}  train acc {:.4}  test acc {:.4}  {:>9.0} samples/s{partial}",
            r.epoch, r.iter, r.loss, r.train_accuracy, r.test_accuracy, r.samples_per_sec
        ));
        self.progress.epoch(format!(
            "epoch {} loss {:.3} acc {:.3}",
            r.epoch, r.loss, r.test_accuracy
        ));
        if let Some(m) = &mut self.metrics {
            m.row(r)?;
        }
        match &self.run.save {
            Some(path) => self
                .checkpoint(r, trainer, position)?
                .write(path)
                .map_err(Error::from),
            None => Ok(()),
        }
    }

    fn checkpoint(
        &self,
        r: &EpochReport,
        trainer: &mut dyn Trainer,
        position: u128,
    ) -> gpu_net::error::Result<Checkpoint> {
        let params = trainer.params()?;
        let finite = params
            .values
            .iter()
            .chain(&params.running)
            .all(|v| v.is_finite());
        if !finite {
            return Err(Error::Failed(format!(
                "the parameters are not finite after iteration {} (try a lower --lr); {} keeps its previous contents",
                r.iter,
                self.run
                    .save
                    .as_ref()
                    .map_or("the checkpoint".into(), |p| p.display().to_string())
            )));
        }
        Ok(Checkpoint {
            params,
            config: self.run.config.clone(),
            optimizer_state: trainer.optimizer_state()?,
            iterations: trainer.steps_done(),
            planned_iterations: Some(self.run.iters as u64),
            lr_schedule: self.run.lr_schedule.clone(),
            sampler_position: position,
            test_accuracy: Some(r.test_accuracy),
            f64_values: trainer.precision() == Precision::F64,
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, FromArgMatches};
    use gpu_net::config::{RunConfig, value_text};

    use super::TrainArgs;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        train: TrainArgs,
    }

    /// Every setting of a run is a flag of the same name, and the flag
    /// lands in its field: parsing `--F V` for each field F of a
    /// configuration gives that configuration. (`conv` is `--net
    /// simple-convnet` with the flags of its `conv_param`.)
    #[test]
    fn every_field_is_a_flag_that_sets_it() {
        let front = gpu_net::conv::ConvFront {
            input_dim: [1, 14, 56],
            filter_num: 3,
            filter_size: 3,
            pad: 1,
            stride: 2,
        };
        let want = RunConfig {
            hidden: vec![7, 5],
            conv: Some(front),
            batchnorm: true,
            dropout: 0.25,
            weight_decay: 0.125,
            init: gpu_net::model::Init::He,
            optimizer: gpu_net::optim::Optimizer {
                kind: gpu_net::optim::OptimizerKind::Adam,
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
        let flags = RunConfig::field_names().into_iter().filter(|f| f != "conv");
        let conv_flags = super::CONV_FLAGS.iter().map(|f| f.to_string());
        for field in flags.chain(conv_flags).chain(["net".to_string()]) {
            let source = matches.value_source(&field);
            assert_eq!(
                source,
                Some(clap::parser::ValueSource::CommandLine),
                "{field}"
            );
        }
    }
}
