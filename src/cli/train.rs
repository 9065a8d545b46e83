//! `gpu-net train`: the book's `ch05/train_neuralnet.py` on a device. The
//! run's settings come from the flags, or from the checkpoint it resumes with
//! the flags laid over them; then the data, the network, the device and its
//! trainer; then the loop, with a checkpoint, a metrics row and a line per
//! epoch, and the learning curves at the end.

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
use gpu_net::metrics::MetricsCsv;
use gpu_net::model::{Arch, Init, Params};
use gpu_net::plot::Curves;
use gpu_net::train::{self, EpochReport, Precision, TrainConfig, Trainer};
use gpu_net::{limits, optim::StepRule};

use super::args::{
    DeviceArg, GpuArgs, LayerArgs, NetArgs, OptimizerArgs, UsageError, batch_size,
    check_batchnorm_batch, iterations, positive_f32, positive_usize, steps_per_submit,
    up_to_max_epochs,
};
use super::output::{Output, Progress};

#[derive(Args)]
pub struct TrainArgs {
    /// cpu, gpu, or auto (GPU when there is an adapter).
    #[arg(long, value_enum, default_value_t = DeviceArg::Auto)]
    pub device: DeviceArg,
    /// Training iterations (minibatch steps), 1 to 10^9; the book's 10000 by default.
    #[arg(long, value_parser = iterations, conflicts_with = "epochs")]
    pub iters: Option<usize>,
    /// Epochs of train_size / batch iterations (1 to 100000), instead of --iters.
    #[arg(long, value_parser = up_to_max_epochs)]
    pub epochs: Option<usize>,
    /// Minibatch size; batches are drawn at random with replacement, as the book does.
    #[arg(long, default_value_t = 100, value_parser = batch_size)]
    pub batch: usize,
    /// Learning rate (the same default for every optimizer: Adam usually wants 0.001).
    #[arg(long, default_value_t = 0.1, value_parser = positive_f32)]
    pub lr: f32,
    /// Train on the first N training images only (the book's overfitting experiments use 300).
    #[arg(long, value_parser = positive_usize)]
    pub train_size: Option<usize>,
    #[command(flatten)]
    pub layers: LayerArgs,
    #[command(flatten)]
    pub optimizer: OptimizerArgs,
    /// GPU steps recorded into one submission (1 to 1024; never more than the run takes).
    #[arg(long, default_value_t = 8, value_parser = steps_per_submit)]
    pub steps_per_submit: usize,
    #[command(flatten)]
    pub net: NetArgs,
    #[command(flatten)]
    pub gpu: GpuArgs,
    /// Write a checkpoint (safetensors) here at the end of every epoch and of the run.
    #[arg(long)]
    pub save: Option<PathBuf>,
    /// Continue the run in this checkpoint: --iters and --epochs count the whole run.
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// Append one CSV row per epoch here as the run goes.
    #[arg(long)]
    pub metrics: Option<PathBuf>,
    /// At the end, draw the run's learning curves (accuracy and loss per epoch) as SVG here.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// End with one JSON object on stdout (human output goes to stderr).
    #[arg(long)]
    pub json: bool,
}

impl TrainArgs {
    /// The run's settings as the flags give them.
    fn config(&self) -> RunConfig {
        RunConfig {
            hidden: self.net.hidden.0.clone(),
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
        }
    }
}

/// A run resumed from its checkpoint.
struct Resumed {
    path: PathBuf,
    checkpoint: Checkpoint,
}

pub fn run(args: TrainArgs, given: &dyn Fn(&str) -> bool) -> anyhow::Result<ExitCode> {
    let out = Output::new(args.json);
    let resumed = match &args.resume {
        Some(path) => Some(resume(path, &args, given)?),
        None => None,
    };
    let config = resumed
        .as_ref()
        .map_or_else(|| args.config(), |r| r.checkpoint.config.clone());
    check_outputs(&args)?;
    let (data, data_dir, all_images) = training_data(&args, &config)?;
    check_batchnorm_batch(config.batchnorm, config.batch, "--batch")?;
    let arch = config.arch(data.train.pixels())?;
    let per_epoch = train::iters_per_epoch(data.train.len(), config.batch);
    let iters = planned_iterations(&args, per_epoch)?;
    let done = match &resumed {
        Some(r) => check_resume_fits(r, &arch, iters, data.train.pixels())?,
        None => 0,
    };
    let params = match &resumed {
        Some(r) => r.checkpoint.params.clone(),
        None => Params::init_with(&arch, config.init, config.seed),
    };
    // Never more steps per submission than the run will take.
    let slots = limits::submit_slots(config.batch, args.steps_per_submit, iters - done);
    let device = Device::open(args.device.into(), &args.gpu.options(), &mut |e| {
        out.say(&format!("warning: {e}; training on the CPU instead"))
    })?;
    let mut trainer = trainer(&device, &params, &data, &config, slots)?;
    out.say(&format!("device: {}", trainer.device()));
    out.say(&format!(
        "network {:?}, {} parameters; {iters} iterations of batch {} ({per_epoch} per epoch), lr {}, seed {}",
        arch.sizes,
        arch.param_count(),
        config.batch,
        config.lr,
        config.seed
    ));
    if !is_the_books_run(&config, &arch, all_images) {
        out.say(&format!(
            "layers: {}; init {}; optimizer {}; weight decay {}; {} training images",
            arch.describe(),
            config.init,
            config.optimizer.describe(),
            config.weight_decay,
            data.train.len()
        ));
    }
    let start = match &resumed {
        Some(r) => Some(restore(r, trainer.as_mut(), out)?),
        None => None,
    };
    let run = RunRecord {
        config: RunConfig {
            train_size: Some(data.train.len()),
            data: Some(data_dir.display().to_string()),
            ..config
        },
        iters,
        slots,
    };
    let summary = train_loop(&args, &run, trainer.as_mut(), &data, start, out)?;
    out.say(&format!(
        "done: {} iterations in {:.1} s ({:.0} samples/s), final test accuracy {:.4}",
        summary.iters, summary.seconds, summary.samples_per_sec, summary.test_accuracy
    ));
    out.object(&summary, false)?;
    Ok(ExitCode::SUCCESS)
}

/// Reads the checkpoint and lays the flags the user gave over its settings;
/// a flag that says otherwise is a usage error naming both values.
fn resume(path: &Path, args: &TrainArgs, given: &dyn Fn(&str) -> bool) -> anyhow::Result<Resumed> {
    let mut checkpoint = Checkpoint::read(path)?;
    let fields = RunConfig::field_names();
    let given: Vec<&str> = fields
        .iter()
        .map(String::as_str)
        .filter(|f| given(f))
        .collect();
    checkpoint.config = match checkpoint.config.overlay(&args.config(), &given) {
        Ok(c) => c,
        Err(ConfigError::Contradicts(conflicts)) => {
            let said: Vec<String> = conflicts
                .iter()
                .map(|c| {
                    let flag = c.field.replace('_', "-");
                    format!(
                        "--{flag} {} contradicts the checkpoint's {}",
                        c.given, c.stored
                    )
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

/// The files the run will write can be written, before it trains.
fn check_outputs(args: &TrainArgs) -> anyhow::Result<()> {
    if let Some(path) = &args.save {
        checkpoint::check_writable(path).context("--save")?;
    }
    if let Some(path) = &args.plot {
        checkpoint::check_writable(path).context("--plot")?;
    }
    Ok(())
}

/// The data (its training set cut to `train_size`), the folder it came from,
/// and whether the training set is whole.
fn training_data(args: &TrainArgs, config: &RunConfig) -> anyhow::Result<(Mnist, PathBuf, bool)> {
    // The flag's own path (not its text) when given, else the checkpoint's.
    let dir = args
        .net
        .data
        .clone()
        .or_else(|| config.data.as_ref().map(PathBuf::from))
        .unwrap_or_else(data::bundled_dir);
    let mut data = data::load_dir(&dir)?;
    let all = data.train.len();
    if let Some(n) = config.train_size {
        if n > all {
            let why = format!("--train-size {n}: the training set has only {all} images");
            return Err(UsageError(why).into());
        }
        data.train = data.train.first(n);
    }
    let whole = data.train.len() == all;
    Ok((data, dir, whole))
}

/// `--iters`, or `--epochs` of the epoch's iterations, or the book's 10000.
fn planned_iterations(args: &TrainArgs, per_epoch: usize) -> anyhow::Result<usize> {
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
        (None, None) => 10_000,
    })
}

/// The checkpoint's network fits the data and it has iterations left;
/// returns the iterations it has done.
fn check_resume_fits(
    r: &Resumed,
    arch: &Arch,
    iters: usize,
    pixels: usize,
) -> anyhow::Result<usize> {
    let ck = &r.checkpoint;
    if &ck.params.arch != arch {
        return Err(UsageError(format!(
            "--resume {}: the checkpoint's network {:?} does not fit the data's {pixels} inputs",
            r.path.display(),
            ck.params.arch.sizes,
        ))
        .into());
    }
    if ck.iterations as usize >= iters {
        return Err(UsageError(format!(
            "--iters {iters}: the checkpoint has already done {} iterations (--iters and --epochs count the whole run)",
            ck.iterations
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
                    "training {:?} with {} at --batch {}",
                    arch.sizes, rule.optimizer.kind, config.batch
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
                "setting up the GPU for batch {} and network {:?}",
                config.batch, arch.sizes
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
    slots: usize,
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
        save: args.save.as_deref(),
        config,
        curves: Curves::named(
            args.save
                .as_ref()
                .and_then(|p| p.file_stem())
                .map_or("train".into(), |s| s.to_string_lossy().into_owned()),
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
        &mut |done| progress.at(done),
    )
    .map_err(with_flags)?;
    progress.finish();
    if let Some(path) = &args.plot {
        gpu_net::plot::draw(std::slice::from_ref(&end.curves), path)?;
        out.say(&format!("learning curves written to {}", path.display()));
    }
    Ok(summary)
}

/// The library's errors, with the flag that would change them.
fn with_flags(e: Error) -> anyhow::Error {
    match e {
        Error::Diverged { lr, .. } => anyhow::anyhow!("{e}; try a lower --lr (it is {lr})"),
        e => e.into(),
    }
}

/// Each epoch's line, metrics row, checkpoint and point of the curves.
struct EpochEnd<'a> {
    progress: &'a Progress,
    metrics: Option<MetricsCsv>,
    save: Option<&'a Path>,
    config: &'a RunConfig,
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
        self.progress.say(&format!(
            "epoch {:>3}  iter {:>6}  loss {:.4}  train acc {:.4}  test acc {:.4}  {:>9.0} samples/s",
            r.epoch, r.iter, r.loss, r.train_accuracy, r.test_accuracy, r.samples_per_sec
        ));
        self.progress.epoch(format!(
            "epoch {}  loss {:.4}  test acc {:.4}",
            r.epoch, r.loss, r.test_accuracy
        ));
        if let Some(m) = &mut self.metrics {
            m.row(r)?;
        }
        match self.save {
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
                self.save
                    .map_or("the checkpoint".into(), |p| p.display().to_string())
            )));
        }
        Ok(Checkpoint {
            params,
            config: self.config.clone(),
            optimizer_state: trainer.optimizer_state()?,
            iterations: trainer.steps_done(),
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
    /// configuration gives that configuration.
    #[test]
    fn every_field_is_a_flag_that_sets_it() {
        let want = RunConfig {
            hidden: vec![7, 5],
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
            argv.push(format!("--{}", field.replace('_', "-")));
            if !value.is_boolean() {
                argv.push(value_text(&value));
            }
        }
        let matches = Cli::command()
            .try_get_matches_from(&argv)
            .unwrap_or_else(|e| panic!("{argv:?}: {e}"));
        let args = Cli::from_arg_matches(&matches).unwrap().train;
        assert_eq!(args.config(), want);
        for field in RunConfig::field_names() {
            let source = matches.value_source(&field);
            assert_eq!(
                source,
                Some(clap::parser::ValueSource::CommandLine),
                "{field}"
            );
        }
    }
}
