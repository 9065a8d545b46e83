//! `train`: the book's `ch05/train_neuralnet.py` on a device, as a job. The
//! run's settings come from the request, or from the checkpoint it resumes
//! with the settings given laid over them; then the data, the network, the
//! device and its trainer; then the loop (`epochs`).
//!
//! Part of `run`: imports its `advice`, `epochs`, `paths`, `report`,
//! `request` and `resume`, and `config`, `cpu::memory`, `data`, `device`,
//! `error`, `limits`, `model`, `epoch_loop`.

use std::path::PathBuf;

use crate::core::config::RunConfig;
use crate::core::data::Mnist;
use crate::core::error::{Context, Error, Result};
use crate::core::limits;
use crate::core::model::{Arch, Params};
use crate::cpu::memory as cpu_memory;
use crate::run::device::{Device, Workspace};
use crate::run::epoch_loop::{self, Trainer};

use super::advice::{Origin, advice, run_lines};
use super::epochs::{RunRecord, train_loop};
use super::paths::{absolute, check_distinct, check_outputs, training_data};
use super::report::{TrainOutcome, TrainReport};
use super::request::{TrainRequest, check_batchnorm_batch};
use super::resume::{
    Resumed, check_fits, lr_schedule, planned_iterations, replaced_run, restore, resume,
};

/// Runs `req`, telling `report` what happens.
pub fn train(req: &TrainRequest, report: &mut dyn TrainReport) -> Result<TrainOutcome> {
    let p = prepare(req, report)?;
    let (config, arch, data) = (&p.config, &p.arch, &p.data);
    let params = match &p.resumed {
        Some(r) => r.checkpoint.params.clone(),
        None => Params::init_with(arch, config.init, config.seed),
    };
    // Never more steps per submission than the run will take.
    let slots = limits::submit_slots(config.batch, req.steps_per_submit, p.iters - p.done);
    let (device, mut trainer, setup) = open_trainer(req, &params, data, config, slots, report)?;
    let train = (data.train.len(), p.all_images);
    for line in run_lines(config, arch, p.iters, p.per_epoch, train) {
        report.say(&line);
    }
    let given = |f: &str| req.given(f);
    for line in advice(&device, config, p.resumed.is_some(), &given) {
        report.say(&line);
    }
    let (start, lr_schedule) = match &p.resumed {
        Some(r) => {
            let start = restore(r, trainer.as_mut(), &mut |l| report.say(l))?;
            (Some(start), lr_schedule(r, &mut |l| report.say(l)))
        }
        None => (None, vec![(0, config.lr)]),
    };
    if report.stop() {
        return Ok(TrainOutcome::StoppedBeforeStart);
    }
    let resumed = p.resumed.is_some();
    let run = RunRecord {
        config: RunConfig {
            train_size: Some(data.train.len()),
            // Absolute, so a resume from another folder finds it.
            data: Some(absolute(&p.data_dir).display().to_string()),
            ..config.clone()
        },
        iters: p.iters,
        lr_schedule,
        slots,
        per_epoch: p.per_epoch,
        save: p.save.clone(),
        origin: Origin {
            resumed,
            lr_from_checkpoint: resumed && !req.given("lr"),
        },
    };
    let mut summary = train_loop(req, &run, trainer.as_mut(), data, start, report)?;
    summary.setup_seconds = setup;
    Ok(TrainOutcome::Ran {
        summary,
        save: run.save,
    })
}

/// A run's settings, files, data and length, checked before a device is
/// opened.
struct Prepared {
    resumed: Option<Resumed>,
    config: RunConfig,
    /// Where checkpoints go: `save`, or the checkpoint resumed.
    save: Option<PathBuf>,
    data: Mnist,
    data_dir: PathBuf,
    /// Whether the training set is whole (no `train_size` cut it).
    all_images: bool,
    arch: Arch,
    per_epoch: usize,
    iters: usize,
    /// Iterations done before (resumed).
    done: usize,
}

/// The settings (a resumed checkpoint's with the request's laid over
/// them), the outputs checked, the data read, and the run's length.
fn prepare(req: &TrainRequest, report: &mut dyn TrainReport) -> Result<Prepared> {
    let resumed = match &req.resume {
        Some(path) => Some(resume(path, req)?),
        None => None,
    };
    let config = match &resumed {
        Some(r) => r.checkpoint.config.clone(),
        None => req.config.clone(),
    };
    let save = save_path(req, resumed.as_ref(), report);
    check_outputs(req, save.as_deref())?;
    let (data, data_dir, all_images) = training_data(req, &config, &mut |l| report.warn(l))?;
    check_distinct(req, save.as_deref(), &data_dir)?;
    // A resumed run's batch is the checkpoint's (a contradicting --batch is refused).
    let batch_said = match &resumed {
        Some(_) => "the checkpoint's batch",
        None => "--batch",
    };
    check_batchnorm_batch(config.batchnorm, config.batch, batch_said)?;
    if config.batchnorm && data.train.len() < 2 {
        return Err(Error::Usage(
            "a training set of 1 image with Batch Normalization (--batchnorm): every batch is that image repeated, whose variance is 0, so Batch Normalization would output beta whatever the input; train on 2 or more images (--train-size)".into(),
        ));
    }
    let arch = config.arch(data.train.pixels())?;
    let per_epoch = epoch_loop::iters_per_epoch(data.train.len(), config.batch);
    let iters = planned_iterations(req, per_epoch, resumed.as_ref())?;
    let said = req.iters.or(req.epochs).is_some();
    let done = match &resumed {
        Some(r) => check_fits(r, &arch, (iters, said), data.train.pixels())?,
        None => 0,
    };
    let run = (&config, &arch, iters);
    check_replaced(req, save.as_deref(), resumed.as_ref(), run, report)?;
    Ok(Prepared {
        resumed,
        config,
        save,
        data,
        data_dir,
        all_images,
        arch,
        per_epoch,
        iters,
        done,
    })
}

/// `save`, or else the checkpoint being resumed (said in one line).
fn save_path(
    req: &TrainRequest,
    resumed: Option<&Resumed>,
    report: &mut dyn TrainReport,
) -> Option<PathBuf> {
    match (&req.save, resumed) {
        (Some(p), _) => Some(p.clone()),
        (None, Some(r)) => {
            report.say(&format!(
                "saving to {} (the checkpoint resumed; --save PATH writes elsewhere)",
                r.path.display()
            ));
            Some(r.path.clone())
        }
        (None, None) => None,
    }
}

/// Refuses to replace another run's checkpoint (or a file that is none)
/// unless `overwrite` says so, and then says what is replaced.
fn check_replaced(
    req: &TrainRequest,
    save: Option<&std::path::Path>,
    resumed: Option<&Resumed>,
    (config, arch, iters): (&RunConfig, &Arch, usize),
    report: &mut dyn TrainReport,
) -> Result<()> {
    let Some(path) = save else { return Ok(()) };
    match (
        replaced_run(path, resumed, config, arch, iters),
        req.overwrite,
    ) {
        (Some(what), true) => {
            report.say(&format!("note: --save {} replaces {what}", path.display()));
            Ok(())
        }
        (Some(what), false) => Err(Error::Usage(format!(
            "--save {} holds {what}: give --overwrite to replace it, or save elsewhere",
            path.display()
        ))),
        (None, _) => Ok(()),
    }
}

/// The device and its trainer, said in one line (and in another when
/// setting up the GPU took long enough to notice), and the seconds that
/// setup took.
fn open_trainer<'a>(
    req: &TrainRequest,
    params: &Params,
    data: &'a Mnist,
    config: &RunConfig,
    slots: usize,
    report: &mut dyn TrainReport,
) -> Result<(Device, Box<dyn Trainer + 'a>, f64)> {
    let device = Device::open(req.device, &req.gpu, &mut |e| {
        report.say(&format!("warning: {e}; training on the CPU instead"))
    })?;
    let gpu = matches!(device, Device::Gpu(_));
    report.setting_up(&device);
    let setup = std::time::Instant::now();
    let trainer = trainer(&device, params, data, config, slots);
    report.set_up();
    let trainer = trainer?;
    report.say(&format!("device: {}", trainer.device()));
    let setup = setup.elapsed().as_secs_f64();
    if gpu && setup > 2.0 {
        report.say(&format!(
            "note: setting up the GPU took {setup:.1} s (compiling the kernels for this adapter; not counted in samples/s)"
        ));
    }
    Ok((device, trainer, setup))
}

/// The device's trainer, after the CPU path's memory check.
fn trainer<'a>(
    device: &Device,
    params: &Params,
    data: &'a Mnist,
    config: &RunConfig,
    slots: usize,
) -> Result<Box<dyn Trainer + 'a>> {
    let arch = &params.arch;
    let rule = config.rule();
    if let Device::Cpu = device {
        let state = rule.optimizer.kind.state_arrays();
        let what = || {
            let kind = rule.optimizer.kind;
            format!(
                "training {} with {kind} at --batch {}",
                arch.shape(),
                config.batch
            )
        };
        cpu_memory::check(what, cpu_memory::training_bytes(arch, config.batch, state))?;
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
