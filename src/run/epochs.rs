//! A training run's loop: the library's one epoch loop (`epoch_loop::train_from`)
//! with what happens at each epoch's end (the report, a metrics row, a
//! checkpoint, a point of the curves) and its progress told to the caller;
//! the curves drawn at the end.
//!
//! Part of `run`: imports `checkpoint`, `config`, `data`, `error`,
//! `limits`, `metrics`, `plot`, `epoch_loop`.

use std::ops::ControlFlow;
use std::path::PathBuf;

use crate::core::config::RunConfig;
use crate::core::data::Mnist;
use crate::core::error::{Context, Error, Result};
use crate::core::limits;
use crate::report::plot::Curves;
use crate::run::checkpoint::{Checkpoint, RunState};
use crate::run::epoch_loop::{
    self, EpochReport, LoopEvent, Precision, TrainConfig, TrainSummary, Trainer,
};
use crate::run::metrics::MetricsCsv;

use super::advice::{Origin, with_hint};
use super::report::{TrainPlan, TrainReport};
use super::request::TrainRequest;

/// What the loop needs to know of the run besides the trainer.
pub(super) struct RunRecord {
    /// The settings as the checkpoint records them (data and size given).
    pub(super) config: RunConfig,
    pub(super) iters: usize,
    pub(super) lr_schedule: Vec<(u64, f32)>,
    pub(super) slots: usize,
    pub(super) per_epoch: usize,
    /// Where checkpoints go: `save`, or the checkpoint resumed.
    pub(super) save: Option<PathBuf>,
    pub(super) origin: Origin,
}

/// The loop, with what happens at each epoch's end, and the curves drawn.
pub(super) fn train_loop(
    req: &TrainRequest,
    run: &RunRecord,
    trainer: &mut dyn Trainer,
    data: &Mnist,
    start: Option<epoch_loop::Resume>,
    report: &mut dyn TrainReport,
) -> Result<TrainSummary> {
    let config = &run.config;
    let cfg = TrainConfig {
        iters: run.iters,
        batch: config.batch,
        lr: config.lr,
        seed: config.seed,
    };
    let done = start.map_or(0, |s| s.done);
    let metrics = match &req.metrics {
        Some(path) => Some(MetricsCsv::open(path, start.map(|s| s.done)).context("--metrics")?),
        None => None,
    };
    let name = run.save.as_ref().and_then(|p| p.file_stem());
    let name = name.map_or(String::new(), |s| s.to_string_lossy().into_owned());
    report.start(&TrainPlan {
        iters: run.iters,
        done,
        batch: config.batch,
        per_epoch: run.per_epoch,
    });
    let mut end = EpochEnd {
        metrics,
        run,
        curves: Curves::named(name),
    };
    // Hand the device a few submissions' worth of steps at a time.
    let steps_per_call = limits::steps_per_call(cfg.batch, run.slots);
    let report = std::cell::RefCell::new(report);
    let summary = epoch_loop::train_from(
        trainer,
        data.train.len(),
        &cfg,
        steps_per_call,
        start,
        &mut |r, trainer, position| end.epoch(r, trainer, position, &mut **report.borrow_mut()),
        &mut |event| on_event(event, &mut **report.borrow_mut()),
    );
    let report = report.into_inner();
    let summary = summary.map_err(|e| with_hint(e, config, run.origin))?;
    report.finish();
    if let Some(path) = &req.plot {
        // A resumed run's metrics CSV holds the epochs before it too.
        let curves = match &req.metrics {
            Some(csv) if done > 0 => Curves {
                name: end.curves.name.clone(),
                ..crate::report::plot::read_metrics(csv)?
            },
            _ => end.curves,
        };
        crate::report::plot::draw(std::slice::from_ref(&curves), path)?;
        report.say(&format!("learning curves written to {}", path.display()));
    }
    Ok(summary)
}

/// The loop's progress, told to `report`; a stop it asks for ends the run
/// after the steps handed over.
fn on_event(event: LoopEvent, report: &mut dyn TrainReport) -> ControlFlow<()> {
    match event {
        LoopEvent::Steps(done) => {
            report.steps(done);
            if report.stop() {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        }
        LoopEvent::Evaluating(split) => {
            report.evaluating(split);
            ControlFlow::Continue(())
        }
    }
}

/// Each epoch's report, metrics row, checkpoint and point of the curves.
struct EpochEnd<'a> {
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
        report: &mut dyn TrainReport,
    ) -> Result<()> {
        (self.curves).push(r.epoch, r.loss, r.train_accuracy, r.test_accuracy);
        report.epoch(r);
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

    /// The run as it stands, refused when its parameters are no longer
    /// finite (the file keeps the last good state).
    fn checkpoint(
        &self,
        r: &EpochReport,
        trainer: &mut dyn Trainer,
        position: u128,
    ) -> Result<Checkpoint> {
        let params = trainer.params()?;
        let finite = params
            .values
            .iter()
            .chain(&params.running)
            .all(|v| v.is_finite());
        if !finite {
            let file = self.run.save.as_ref();
            return Err(Error::Failed(format!(
                "the parameters are not finite after iteration {} (try a lower --lr); {} keeps its previous contents",
                r.iter,
                file.map_or("the checkpoint".into(), |p| p.display().to_string())
            )));
        }
        let state = RunState {
            optimizer_state: trainer.optimizer_state()?,
            iterations: trainer.steps_done(),
            planned_iterations: Some(self.run.iters as u64),
            lr_schedule: self.run.lr_schedule.clone(),
            sampler_position: position,
            test_accuracy: Some(r.test_accuracy),
        };
        let f64_values = trainer.precision() == Precision::F64;
        Ok(Checkpoint::new(
            params,
            self.run.config.clone(),
            state,
            f64_values,
        ))
    }
}
