//! `gpu-net experiment train-convnet`: the book's `ch07/train_convnet.py`.
//! Its `SimpleConvNet` (30 filters of 5×5, hidden 100) trained by its
//! `Trainer` for 20 epochs of batch 100 with Adam at lr 0.001, the
//! accuracies after each epoch on the first 1,000 images of each split
//! (`evaluate_sample_num_per_epoch=1000`), then the whole test set's.
//! Each epoch prints the script's line and adds a row with the columns of
//! `train --metrics`, so `--plot` and `gpu-net plot` draw the learning
//! curves the script plots. The script's `train loss` line for every
//! step is left out: the table keeps each epoch's mean loss.
//!
//! May import: book_figures, book_trainer, conv, cpu, data, device, error,
//! experiment_table, gpu, limits, model, optim, train.

use serde_json::json;

use crate::book_trainer::STEPS_PER_SUBMIT;
use crate::conv::ConvFront;
use crate::cpu::Net;
use crate::data::{CLASSES, Dataset, Mnist};
use crate::device::{Device, Workspace};
use crate::error::Result;
use crate::experiment_table::{Rows, Table};
use crate::gpu::GpuEvaluator;
use crate::limits::submit_slots;
use crate::model::{Arch, Params};
use crate::optim::{Optimizer, OptimizerKind, StepRule};
use crate::train::{Sampler, Split, iters_per_epoch};

/// `evaluate_sample_num_per_epoch`.
const EVAL_SAMPLES: usize = 1000;

/// The accuracy on the first [`EVAL_SAMPLES`] images of each split.
enum FirstImages {
    Gpu(Box<[GpuEvaluator; 2]>),
    Cpu([Dataset; 2]),
}

impl FirstImages {
    fn new(device: &Device, params: &Params, data: &Mnist) -> Result<Self> {
        let first = |d: &Dataset| d.first(EVAL_SAMPLES.min(d.len()));
        let sets = [first(&data.train), first(&data.test)];
        Ok(match device {
            Device::Gpu(ctx) => {
                let [train, test] = &sets;
                FirstImages::Gpu(Box::new([
                    GpuEvaluator::new(ctx.clone(), params, train)?,
                    GpuEvaluator::new(ctx.clone(), params, test)?,
                ]))
            }
            Device::Cpu => FirstImages::Cpu(sets),
        })
    }

    /// (train, test) accuracy of `params`.
    fn accuracies(&self, params: &Params) -> Result<(f64, f64)> {
        let mut acc = [0.0; 2];
        match self {
            FirstImages::Gpu(evals) => {
                for (a, e) in acc.iter_mut().zip(evals.iter()) {
                    e.net.write_arena(params);
                    *a = e.evaluate()?.1;
                }
            }
            FirstImages::Cpu(sets) => {
                let net = Net::new(&params.arch);
                for (a, d) in acc.iter_mut().zip(sets) {
                    let all: Vec<usize> = (0..d.len()).collect();
                    *a = net.accuracy(params, &d.batch_f64(&all), &d.labels);
                }
            }
        }
        Ok((acc[0], acc[1]))
    }
}

/// The script's run from `seed`; `epochs` replaces its 20; the rows go to
/// `csv` too as they come.
pub fn train_convnet(
    device: &Device,
    data: &Mnist,
    (seed, epochs, csv): (u64, Option<usize>, Option<&std::path::Path>),
    say: &mut dyn FnMut(String),
) -> Result<Table> {
    let arch = Arch::simple_convnet(ConvFront::book(), &[100], CLASSES)?;
    let (batch, lr) = (100, 0.001);
    let rule = StepRule {
        optimizer: Optimizer::new(OptimizerKind::Adam),
        weight_decay: 0.0,
        seed,
    };
    let per_epoch = iters_per_epoch(data.train.len(), batch);
    let epochs = epochs.unwrap_or(20);
    say(format!(
        "{} ({}); {epochs} epoch(s) of {per_epoch} iterations, batch {batch}, Adam lr {lr}",
        arch.describe(),
        ConvFront::book().describe()
    ));
    let params = Params::init(&arch, seed);
    let slots = submit_slots(batch, STEPS_PER_SUBMIT, per_epoch);
    let mut trainer = device.trainer(&params, data, Workspace { batch, slots }, lr, &rule)?;
    let first = FirstImages::new(device, &params, data)?;
    let mut sampler = Sampler::new(seed, data.train.len());
    let mut rows = Rows::new(csv, &crate::book_figures::METRICS_COLUMNS)?;
    for epoch in 1..=epochs {
        let clock = std::time::Instant::now();
        let mut done = 0;
        while done < per_epoch {
            let n = slots.min(per_epoch - done);
            let batches: Vec<Vec<u32>> = (0..n).map(|_| sampler.batch(batch)).collect();
            trainer.train_steps(&batches, lr)?;
            done += n;
        }
        let loss = trainer.take_mean_loss()?;
        let seconds = clock.elapsed().as_secs_f64();
        let (train_acc, test_acc) = first.accuracies(&trainer.params()?)?;
        say(format!(
            "=== epoch:{epoch}, train acc:{train_acc}, test acc:{test_acc} === (mean loss {loss:.4}, {:.0} samples/s)",
            (per_epoch * batch) as f64 / seconds
        ));
        rows.push(vec![
            json!(epoch),
            json!(epoch * per_epoch),
            json!(loss),
            json!(train_acc),
            json!(test_acc),
            json!(seconds),
            json!((per_epoch * batch) as f64 / seconds),
        ])?;
    }
    let test_acc = trainer.evaluate(Split::Test)?.1;
    say("=============== Final Test Accuracy ===============".into());
    say(format!("test acc:{test_acc}"));
    Ok(rows.table(json!({ "test_acc": test_acc, "epochs": epochs })))
}
