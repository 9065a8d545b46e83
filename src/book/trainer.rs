//! The book's `common/trainer.py` (`Trainer.train()`) on the GPU: the data
//! uploaded once, minibatches drawn with replacement (as `np.random.choice`),
//! every step's loss logged on the GPU and read back once an epoch, the
//! accuracies after each epoch on the first `evaluate_sample_num_per_epoch`
//! images of each split (all of them without it), the test accuracy over
//! the whole test set at the end. What the Python bindings' `Trainer` runs.
//!
//! Where it differs from the book, it does as `gpu-net train` does: a
//! step's logged loss is the training-form loss of its minibatch before its
//! update (the book computes another forward after it), and the
//! accuracies are taken at the end of each epoch (the book's first comes
//! after one step).
//!
//! May import: core, gpu (the trainer), run (the device and the loop), and
//! the rest of book.

use std::sync::Arc;

use std::ops::ControlFlow;

use crate::book::first_images::FirstImages;
use crate::core::data::Mnist;
use crate::core::error::Result;
use crate::core::limits::{steps_per_call, submit_slots};
use crate::core::model::Params;
use crate::core::optim::StepRule;
use crate::gpu::GpuContext;
use crate::run::device::{Device, Workspace, gpu_trainer};
use crate::run::epoch_loop::{
    EpochReport, Evaluate, LoopHooks, Split, TrainConfig, Trainer, iters_per_epoch, run_loop,
};

/// Steps recorded into one submission, as `gpu-net train`'s default.
pub const STEPS_PER_SUBMIT: usize = 8;

/// A `Trainer(...)`'s settings.
#[derive(Clone, Debug)]
pub struct BookTrainerConfig {
    /// Steps in all: the book's `int(epochs * iter_per_epoch)`.
    pub max_iter: usize,
    /// `mini_batch_size`.
    pub batch: usize,
    /// `optimizer_param['lr']`.
    pub lr: f32,
    /// The optimizer, weight decay and Dropout's seed.
    pub rule: StepRule,
    /// `evaluate_sample_num_per_epoch`: `None` evaluates whole splits.
    pub eval_samples: Option<usize>,
    /// Seeds the minibatch sampler.
    pub seed: u64,
}

/// What one epoch adds to the lists.
#[derive(Clone, Debug, PartialEq)]
pub struct EpochLog {
    /// 1-based.
    pub epoch: usize,
    /// Each step's mean minibatch loss, in order.
    pub losses: Vec<f64>,
    /// (train, test) accuracy; none after a last epoch cut short by
    /// `max_iter`, which the book does not evaluate either.
    pub accuracies: Option<(f64, f64)>,
}

/// The trained parameters and the book's lists.
#[derive(Clone, Debug)]
pub struct BookTrainerResult {
    pub params: Params,
    pub train_loss: Vec<f64>,
    pub train_acc: Vec<f64>,
    pub test_acc: Vec<f64>,
    /// Over the whole test set; `None` when stopped early.
    pub final_test_acc: Option<f64>,
    pub steps: u64,
    /// Seconds of the steps (without the evaluations and setup).
    pub seconds: f64,
    /// Whether `stop` answered true: the run then ended at that submission
    /// or epoch's end (all `max_iter` steps may be done), and the whole
    /// test set is not evaluated.
    pub stopped: bool,
}

/// Runs `Trainer.train()` through the one epoch loop: `on_epoch` hears each
/// epoch's log; `stop` is asked after every submission (and as each
/// evaluation starts) and after each epoch's log, and ends the run there
/// when it answers true. An epoch a stop cuts short is logged without
/// accuracies; one whose steps all ran is evaluated as any other.
pub fn train_book(
    ctx: Arc<GpuContext>,
    params: &Params,
    data: &Mnist,
    cfg: &BookTrainerConfig,
    on_epoch: &mut dyn FnMut(&EpochLog),
    stop: &mut dyn FnMut() -> bool,
) -> Result<BookTrainerResult> {
    let per_epoch = iters_per_epoch(data.train.len(), cfg.batch);
    let slots = submit_slots(cfg.batch, STEPS_PER_SUBMIT, cfg.max_iter);
    // A fresh optimizer, as the book's Trainer makes: Adam's t and Dropout's
    // step numbers count from 1, as in a `gpu-net train` run.
    let (lr, rule) = (cfg.lr, &cfg.rule);
    let workspace = Workspace {
        batch: cfg.batch,
        slots,
    };
    let mut trainer = gpu_trainer(
        ctx.clone(),
        params,
        data,
        workspace,
        (lr, rule),
        Some(per_epoch),
    )?;
    let device = Device::Gpu(ctx);
    let first = match cfg.eval_samples {
        Some(n) => Some(FirstImages::new(&device, params, data, n)?),
        None => None,
    };
    let (mut out, mut current) = (BookTrainerResult::new(params), None);
    let loop_cfg = TrainConfig {
        iters: cfg.max_iter,
        batch: cfg.batch,
        lr,
        seed: cfg.seed,
    };
    let mut accuracy = |trainer: &mut dyn Trainer, split| {
        let Some(first) = &first else {
            return trainer.evaluate(split).map(|(_, a)| a);
        };
        if split == Split::Train {
            current = Some(trainer.params()?);
        }
        first.accuracy(current.as_ref().expect("train split first"), split)
    };
    // Asked by two hooks, one at a time.
    let stop = std::cell::RefCell::new(stop);
    let hooks = LoopHooks {
        epoch_end: &mut |r, _, _| Ok(out.record(r, on_epoch, || stop.borrow_mut()())),
        events: &mut |_| match stop.borrow_mut()() {
            true => ControlFlow::Break(()),
            false => ControlFlow::Continue(()),
        },
        accuracy: Some(&mut accuracy),
        evaluate: Evaluate::WholeEpochs,
        nan_ends_run: true,
    };
    let call = steps_per_call(cfg.batch, slots);
    let summary = run_loop(
        trainer.as_mut(),
        data.train.len(),
        &loop_cfg,
        call,
        None,
        hooks,
    )?;
    out.steps = summary.iters as u64;
    out.seconds = summary.seconds;
    out.stopped = out.stopped || summary.interrupted;
    if !out.stopped {
        out.final_test_acc = Some(trainer.evaluate(Split::Test)?.1);
    }
    out.params = trainer.params()?;
    Ok(out)
}

impl BookTrainerResult {
    fn new(params: &Params) -> Self {
        BookTrainerResult {
            params: params.clone(),
            train_loss: vec![],
            train_acc: vec![],
            test_acc: vec![],
            final_test_acc: None,
            steps: 0,
            seconds: 0.0,
            stopped: false,
        }
    }

    /// An epoch's end: its losses and accuracies onto the lists, its log to
    /// `on_epoch`; `Break` where the run was stopped, before (an epoch cut
    /// short) or after the log (`stop_after`, asked of `stop` then).
    fn record(
        &mut self,
        r: &EpochReport,
        on_epoch: &mut dyn FnMut(&EpochLog),
        mut stop_after: impl FnMut() -> bool,
    ) -> ControlFlow<()> {
        self.train_loss.extend(&r.step_losses);
        if r.evaluated {
            self.train_acc.push(r.train_accuracy);
            self.test_acc.push(r.test_accuracy);
        }
        on_epoch(&EpochLog {
            epoch: r.epoch,
            losses: r.step_losses.clone(),
            accuracies: r.evaluated.then_some((r.train_accuracy, r.test_accuracy)),
        });
        self.stopped = self.stopped || stop_after();
        match self.stopped {
            true => ControlFlow::Break(()),
            false => ControlFlow::Continue(()),
        }
    }
}
