//! The book's training loop (`ch05/train_neuralnet.py`), for either device:
//! random minibatches drawn with replacement, an update rule (SGD by
//! default), and per epoch the loss and the accuracy on the training and
//! test sets (whole, or as the caller's hook takes it; every epoch, or as
//! [`Evaluate`] says). Every training run goes through [`run_loop`]: `train`,
//! the book's Trainer, `train-convnet` and the chapter 6 scripts. The
//! [`Trainer`] trait is what each device implements (`cpu::trainer`,
//! `gpu::trainer`); this module knows neither.
//!
//! May import: core (the trainer trait, which it re-exports, model, error).

use std::ops::ControlFlow;
use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::core::error::{Error, Result};

pub use crate::core::trainer::{Precision, Split, Trainer};

/// The book's configuration by default.
#[derive(Clone, Debug)]
pub struct TrainConfig {
    pub iters: usize,
    pub batch: usize,
    pub lr: f32,
    pub seed: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            iters: 10_000,
            batch: 100,
            lr: 0.1,
            seed: 0,
        }
    }
}

/// Iterations per epoch, as the book counts them: `max(train_size / batch, 1)`.
pub fn iters_per_epoch(train_size: usize, batch: usize) -> usize {
    (train_size / batch).max(1)
}

/// Minibatch indices: uniform with replacement, as `np.random.choice`, from
/// ChaCha8 on its own stream so the order does not depend on the weights.
pub struct Sampler {
    rng: ChaCha8Rng,
    n: u32,
}

impl Sampler {
    pub fn new(seed: u64, n: usize) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(1);
        Sampler { rng, n: n as u32 }
    }

    /// A sampler continuing from `position` ([`Sampler::position`]).
    pub fn at(seed: u64, n: usize, position: u128) -> Self {
        let mut s = Sampler::new(seed, n);
        s.rng.set_word_pos(position);
        s
    }

    /// Where the generator stands: with the seed, all a resumed run needs to
    /// draw the same minibatches as an uninterrupted one.
    pub fn position(&self) -> u128 {
        self.rng.get_word_pos()
    }

    pub fn batch(&mut self, size: usize) -> Vec<u32> {
        (0..size)
            .map(|_| self.rng.random_range(0..self.n))
            .collect()
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct EpochReport {
    pub epoch: usize,
    pub iter: usize,
    pub loss: f64,
    pub train_accuracy: f64,
    pub test_accuracy: f64,
    /// Seconds of training in this epoch (without the evaluation).
    pub seconds: f64,
    pub samples_per_sec: f64,
    /// Whether the accuracies were taken: always with
    /// [`Evaluate::EpochEnds`]; not for an epoch cut short with
    /// [`Evaluate::WholeEpochs`], nor for the steps after the last
    /// evaluation point with [`Evaluate::AfterFirstStep`]. The accuracies
    /// are then NaN.
    #[serde(skip)]
    pub evaluated: bool,
    /// Each step's loss, in order, where the trainer logs them
    /// ([`Trainer::take_step_losses`]); else empty.
    #[serde(skip)]
    pub step_losses: Vec<f64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct TrainSummary {
    pub device: String,
    /// Iterations done when the loop ended: the planned ones, or fewer when
    /// it was `interrupted`.
    pub iters: usize,
    /// Iterations done before this run (a resumed run's checkpoint's): this
    /// run's `seconds` and `samples_per_sec` are of `iters - first_iter`.
    pub first_iter: usize,
    /// Whether the caller stopped the loop before its planned end.
    pub interrupted: bool,
    /// Seconds of training (the steps, without evaluation or setup).
    pub seconds: f64,
    /// Seconds of the per-epoch evaluations (both splits, every epoch
    /// evaluated).
    pub eval_seconds: f64,
    /// Seconds the device took to get ready before the first step
    /// (compiling kernels, making buffers), kept out of `seconds` and
    /// samples/s; 0 unless the caller measured it.
    pub setup_seconds: f64,
    pub samples_per_sec: f64,
    pub final_loss: f64,
    pub train_accuracy: f64,
    pub test_accuracy: f64,
}

/// Runs the loop, calling `report` at the end of each epoch (and after the
/// last iteration if it falls mid-epoch). `steps_per_call` batches are handed
/// to the device at a time (the GPU records them into one submission).
pub fn train(
    trainer: &mut dyn Trainer,
    train_size: usize,
    cfg: &TrainConfig,
    steps_per_call: usize,
    report: &mut dyn FnMut(&EpochReport),
) -> Result<TrainSummary> {
    train_from(
        trainer,
        train_size,
        cfg,
        steps_per_call,
        None,
        &mut |r, _, _| {
            report(r);
            Ok(())
        },
        &mut |_| ControlFlow::Continue(()),
    )
}

/// What the training loop is doing, for a caller showing progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoopEvent {
    /// This many iterations have been handed to the device.
    Steps(usize),
    /// The epoch's steps are done; this split is being evaluated.
    Evaluating(Split),
}

/// Where a resumed run starts: iterations done and the sampler's position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resume {
    pub done: usize,
    pub sampler_position: u128,
}

/// An accuracy on a split, computed the caller's way (see [`LoopHooks`]).
pub type Accuracy<'a> = dyn FnMut(&mut dyn Trainer, Split) -> Result<f64> + 'a;

/// What the loop hands its caller at an epoch's end: the report, the
/// trainer and the sampler's position (to write a checkpoint); `Break`
/// ends the run there.
pub type EpochEnd<'a> =
    dyn FnMut(&EpochReport, &mut dyn Trainer, u128) -> Result<ControlFlow<()>> + 'a;

/// What the loop asks of its caller (see [`run_loop`]).
pub struct LoopHooks<'a> {
    /// Told of each epoch's end; may end the run there.
    pub epoch_end: &'a mut EpochEnd<'a>,
    /// Told what the loop is doing (for progress): the iterations handed to
    /// the device so far, and each evaluation as it starts.
    pub events: &'a mut dyn FnMut(LoopEvent) -> ControlFlow<()>,
    /// The accuracy on a split at an epoch's end, when not the trainer's own
    /// over the whole split: on its first images, as the book's Trainer
    /// with `evaluate_sample_num_per_epoch`.
    pub accuracy: Option<&'a mut Accuracy<'a>>,
    /// Where the epochs end and which are evaluated.
    pub evaluate: Evaluate,
    /// Whether a loss that is not a number ends the run (with
    /// [`Error::Diverged`]), or is reported as any other: the chapter 6
    /// scripts show what a bad setting does, divergence included.
    pub nan_ends_run: bool,
}

/// Where the loop's epochs end, and which of them it evaluates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Evaluate {
    /// Every `iter_per_epoch` steps, and at the run's end (`train`).
    EpochEnds,
    /// Every `iter_per_epoch` steps, but an epoch cut short by the run's end
    /// or a stop is not evaluated (the book's `Trainer`).
    WholeEpochs,
    /// After the first step of each epoch (the chapter 6 scripts' `if i %
    /// iter_per_epoch == 0`), and not at the run's end unless one falls there.
    AfterFirstStep,
}

impl Evaluate {
    /// The steps past a multiple of `iter_per_epoch` where an epoch ends.
    fn offset(self) -> usize {
        match self {
            Evaluate::AfterFirstStep => 1,
            Evaluate::EpochEnds | Evaluate::WholeEpochs => 0,
        }
    }

    /// The first epoch's end after `done` steps.
    fn next_end(self, done: usize, per_epoch: usize) -> usize {
        let o = self.offset();
        match done.checked_sub(o) {
            Some(past) => (past / per_epoch + 1) * per_epoch + o,
            None => o,
        }
    }

    /// Whether the epoch that ended at `done` is evaluated.
    fn evaluates(self, done: usize, per_epoch: usize, interrupted: bool) -> bool {
        let at_an_end = done >= self.offset() && (done - self.offset()).is_multiple_of(per_epoch);
        match self {
            Evaluate::EpochEnds => true,
            Evaluate::WholeEpochs => at_an_end && !interrupted,
            Evaluate::AfterFirstStep => at_an_end,
        }
    }
}

/// [`run_loop`] evaluating the whole splits: [`train`], optionally
/// continuing from `resume`, with `epoch_end` and `events` as in
/// [`LoopHooks`].
pub fn train_from(
    trainer: &mut dyn Trainer,
    train_size: usize,
    cfg: &TrainConfig,
    steps_per_call: usize,
    resume: Option<Resume>,
    epoch_end: &mut dyn FnMut(&EpochReport, &mut dyn Trainer, u128) -> Result<()>,
    events: &mut dyn FnMut(LoopEvent) -> ControlFlow<()>,
) -> Result<TrainSummary> {
    let mut epoch_end = |r: &EpochReport, t: &mut dyn Trainer, at: u128| {
        epoch_end(r, t, at).map(ControlFlow::Continue)
    };
    let hooks = LoopHooks {
        epoch_end: &mut epoch_end,
        events,
        accuracy: None,
        evaluate: Evaluate::EpochEnds,
        nan_ends_run: true,
    };
    run_loop(trainer, train_size, cfg, steps_per_call, resume, hooks)
}

/// The epoch loop of every training run: steps handed to the device
/// `steps_per_call` at a time, optionally continuing from `resume` (the
/// trainer already restored), and at each epoch's end (and after the last
/// iteration if it falls mid-epoch) the mean loss, the accuracies and the
/// report to `hooks`. When `hooks.events` answers `Break` to
/// [`LoopEvent::Steps`] the loop stops there: the steps handed over are
/// finished and end a last, partial epoch (reported as any other, evaluated
/// as `hooks.evaluate` says), and the summary says it was interrupted; an
/// epoch end answering `Break` ends the run after that epoch. The
/// summary's accuracies are the last epoch's (NaN where it was not
/// evaluated).
pub fn run_loop(
    trainer: &mut dyn Trainer,
    train_size: usize,
    cfg: &TrainConfig,
    steps_per_call: usize,
    resume: Option<Resume>,
    hooks: LoopHooks<'_>,
) -> Result<TrainSummary> {
    let per_epoch = iters_per_epoch(train_size, cfg.batch);
    let (mut sampler, mut done) = match resume {
        Some(r) => (
            Sampler::at(cfg.seed, train_size, r.sampler_position),
            r.done,
        ),
        None => (Sampler::new(cfg.seed, train_size), 0),
    };
    let first_iter = done;
    let mut epoch = done / per_epoch;
    let (mut train_seconds, mut eval_seconds) = (0.0, 0.0);
    let mut last = None;
    let mut interrupted = false;
    let LoopHooks {
        epoch_end,
        events,
        mut accuracy,
        evaluate,
        nan_ends_run,
    } = hooks;
    while done < cfg.iters && !interrupted {
        let stop = evaluate.next_end(done, per_epoch).min(cfg.iters);
        let (started, first) = (Instant::now(), done);
        let hand_over = (&mut sampler, steps_per_call);
        (done, interrupted) = epoch_steps(trainer, cfg, hand_over, events, (done, stop))?;
        let (loss, step_losses) = epoch_loss(trainer)?;
        if nan_ends_run && !loss.is_finite() {
            let (from, to, lr) = (first + 1, done, cfg.lr);
            return Err(Error::Diverged { loss, from, to, lr });
        }
        let seconds = started.elapsed().as_secs_f64();
        train_seconds += seconds;
        epoch += 1;
        let evaluating = Instant::now();
        let evaluated = evaluate.evaluates(done, per_epoch, interrupted);
        let (train_accuracy, test_accuracy) = match evaluated {
            true => accuracies(trainer, events, &mut accuracy)?,
            false => (f64::NAN, f64::NAN),
        };
        eval_seconds += evaluating.elapsed().as_secs_f64();
        let r = EpochReport {
            epoch,
            iter: done,
            loss,
            train_accuracy,
            test_accuracy,
            seconds,
            samples_per_sec: ((done - first) * cfg.batch) as f64 / seconds,
            evaluated,
            step_losses,
        };
        let asked = epoch_end(&r, trainer, sampler.position())?;
        interrupted = interrupted || (asked.is_break() && done < cfg.iters);
        last = Some(r);
    }
    let last = last.ok_or_else(|| {
        let iters = cfg.iters;
        Error::Usage(format!(
            "{iters} iterations are no more than the {first_iter} already done"
        ))
    })?;
    let seconds = (train_seconds, eval_seconds);
    Ok(summary(
        trainer,
        cfg,
        &last,
        (first_iter, done, interrupted),
        seconds,
    ))
}

/// What a loop that ran from `first_iter` to `done` steps came to, its last
/// epoch's report `last`.
fn summary(
    trainer: &dyn Trainer,
    cfg: &TrainConfig,
    last: &EpochReport,
    (first_iter, done, interrupted): (usize, usize, bool),
    (train_seconds, eval_seconds): (f64, f64),
) -> TrainSummary {
    TrainSummary {
        device: trainer.device(),
        iters: done,
        first_iter,
        interrupted,
        seconds: train_seconds,
        eval_seconds,
        setup_seconds: 0.0,
        samples_per_sec: ((done - first_iter) * cfg.batch) as f64 / train_seconds,
        final_loss: last.loss,
        train_accuracy: last.train_accuracy,
        test_accuracy: last.test_accuracy,
    }
}

/// The mean loss of the epoch's steps (waiting for them), and each step's
/// where the trainer logs them; the first loss that is not a number in
/// place of the mean, if there is one.
fn epoch_loss(trainer: &mut dyn Trainer) -> Result<(f64, Vec<f64>)> {
    let (loss, each) = match trainer.take_step_losses()? {
        Some(each) => {
            let bad = each.iter().copied().find(|l| !l.is_finite());
            let mean = each.iter().sum::<f64>() / each.len().max(1) as f64;
            (bad.unwrap_or(mean), each)
        }
        None => (trainer.take_mean_loss()?, vec![]),
    };
    Ok((loss, each))
}

/// Hands the device the steps from `done` to `stop` (one epoch's, or what
/// is left of it), `steps_per_call` at a time, with `events` told after
/// each; returns where the steps got to and whether `events` asked to stop
/// before the run's end.
fn epoch_steps<'e>(
    trainer: &mut dyn Trainer,
    cfg: &TrainConfig,
    (sampler, steps_per_call): (&mut Sampler, usize),
    events: &mut (dyn FnMut(LoopEvent) -> ControlFlow<()> + 'e),
    (mut done, stop): (usize, usize),
) -> Result<(usize, bool)> {
    while done < stop {
        let n = steps_per_call.min(stop - done);
        let batches: Vec<Vec<u32>> = (0..n).map(|_| sampler.batch(cfg.batch)).collect();
        trainer.train_steps(&batches, cfg.lr)?;
        done += n;
        if events(LoopEvent::Steps(done)).is_break() {
            return Ok((done, done < cfg.iters));
        }
    }
    Ok((done, false))
}

/// The accuracy on the training set, then on the test set (by `accuracy`
/// when given, else the trainer's own), each evaluation told to `events`
/// as it starts.
fn accuracies<'e>(
    trainer: &mut dyn Trainer,
    events: &mut (dyn FnMut(LoopEvent) -> ControlFlow<()> + 'e),
    accuracy: &mut Option<&mut Accuracy<'_>>,
) -> Result<(f64, f64)> {
    let mut one = |split| {
        let _ = events(LoopEvent::Evaluating(split));
        match accuracy {
            Some(f) => f(trainer, split),
            None => trainer.evaluate(split).map(|(_, a)| a),
        }
    };
    Ok((one(Split::Train)?, one(Split::Test)?))
}
