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
//! Imports `data`, `error`, `gpu`, `limits`, `model`, `optim` and `run::epoch_loop`.

use std::sync::Arc;

use crate::core::data::{Dataset, Mnist};
use crate::core::error::Result;
use crate::core::limits::{steps_per_call, submit_slots};
use crate::core::model::Params;
use crate::core::optim::StepRule;
use crate::gpu::{GpuContext, GpuEvaluator, GpuTrainer};
use crate::run::epoch_loop::{Sampler, Split, Trainer, iters_per_epoch};

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
}

/// Evaluation on the first `n` images of each split (or the trainer's own,
/// over whole splits).
enum Sampled {
    Whole,
    First(Box<[GpuEvaluator; 2]>),
}

impl Sampled {
    fn new(ctx: &Arc<GpuContext>, params: &Params, data: &Mnist, n: Option<usize>) -> Result<Self> {
        let Some(n) = n else {
            return Ok(Sampled::Whole);
        };
        let first = |d: &Dataset| d.first(n.min(d.len()));
        Ok(Sampled::First(Box::new([
            GpuEvaluator::new(ctx.clone(), params, &first(&data.train))?,
            GpuEvaluator::new(ctx.clone(), params, &first(&data.test))?,
        ])))
    }

    /// (train accuracy, test accuracy) of the trainer's current parameters.
    fn accuracies(&self, trainer: &mut GpuTrainer) -> Result<(f64, f64)> {
        match self {
            Sampled::Whole => Ok((
                trainer.evaluate(Split::Train)?.1,
                trainer.evaluate(Split::Test)?.1,
            )),
            Sampled::First(evals) => {
                let p = Trainer::params(trainer)?;
                let mut acc = [0.0; 2];
                for (a, e) in acc.iter_mut().zip(evals.iter()) {
                    e.net.write_arena(&p);
                    e.net.write_running(&p.running);
                    *a = e.evaluate()?.1;
                }
                Ok((acc[0], acc[1]))
            }
        }
    }
}

/// Runs `Trainer.train()`: `on_epoch` hears each epoch's log; `stop` is
/// asked after every submission and ends the run there when it answers true.
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
    let rule = &cfg.rule;
    // A fresh optimizer, as the book's Trainer makes: Adam's t and Dropout's
    // step numbers count from 1, as in a `gpu-net train` run.
    let mut trainer = GpuTrainer::new(ctx.clone(), params, data, cfg.batch, slots, cfg.lr, rule)?;
    trainer.log_losses(per_epoch);
    let sampled = Sampled::new(&ctx, params, data, cfg.eval_samples)?;
    let mut sampler = Sampler::new(cfg.seed, data.train.len());
    let call = steps_per_call(cfg.batch, slots);
    let mut out = BookTrainerResult {
        params: params.clone(),
        train_loss: vec![],
        train_acc: vec![],
        test_acc: vec![],
        final_test_acc: None,
        steps: 0,
        seconds: 0.0,
    };
    let (mut stopped, mut epoch) = (false, 0);
    while (out.steps as usize) < cfg.max_iter && !stopped {
        let steps = per_epoch.min(cfg.max_iter - out.steps as usize);
        let started = std::time::Instant::now();
        let mut done = 0;
        while done < steps && !stopped {
            let n = call.min(steps - done);
            let batches: Vec<Vec<u32>> = (0..n).map(|_| sampler.batch(cfg.batch)).collect();
            trainer.train_steps(&batches, cfg.lr)?;
            done += n;
            stopped = stop();
        }
        let losses = trainer.take_losses()?; // waits for the steps
        // As `gpu-net train`: a step whose loss is not finite ends the run.
        if let Some(&loss) = losses.iter().find(|l| !l.is_finite()) {
            let from = out.steps as usize + 1;
            return Err(crate::core::error::Error::Diverged {
                loss,
                from,
                to: from + losses.len() - 1,
                lr: cfg.lr,
            });
        }
        out.seconds += started.elapsed().as_secs_f64();
        out.steps += losses.len() as u64;
        out.train_loss.extend(&losses);
        epoch += 1;
        let accuracies = if steps == per_epoch && !stopped {
            let (train, test) = sampled.accuracies(&mut trainer)?;
            out.train_acc.push(train);
            out.test_acc.push(test);
            Some((train, test))
        } else {
            None
        };
        on_epoch(&EpochLog {
            epoch,
            losses,
            accuracies,
        });
        stopped = stopped || stop(); // on_epoch may have asked to stop
    }
    if !stopped {
        out.final_test_acc = Some(trainer.evaluate(Split::Test)?.1);
    }
    out.params = Trainer::params(&mut trainer)?;
    Ok(out)
}
