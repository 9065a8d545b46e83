//! `gpu-net experiment train-convnet` and `train-deepnet`: the book's
//! `ch07/train_convnet.py` and `ch08/train_deepnet.py`. Its `SimpleConvNet`
//! (30 filters of 5×5, hidden 100; weights drawn with std 0.01), or its
//! `DeepConvNet` (He's), trained by its `Trainer` for 20 epochs of batch
//! 100 with Adam at lr 0.001, the
//! accuracies after each epoch on the first 1,000 images of each split
//! (`evaluate_sample_num_per_epoch=1000`), then the whole test set's.
//! Each epoch prints the script's line and adds a row with the columns of
//! `train --metrics`, so `--plot` and `gpu-net plot` draw the learning
//! curves the script plots. The script's `train loss` line for every
//! step is left out: the table keeps each epoch's mean loss.
//!
//! May import: core, report (the metrics' columns), run (the device and the
//! loop), and the rest of book.

use std::ops::ControlFlow;

use serde_json::json;

use crate::book::first_images::FirstImages;
use crate::book::table::{Rows, Table};
use crate::book::trainer::STEPS_PER_SUBMIT;
use crate::core::conv::ConvFront;
use crate::core::data::{CLASSES, Mnist};
use crate::core::error::{Error, Result};
use crate::core::limits::submit_slots;
use crate::core::model::{Arch, Init, Params};
use crate::core::network::Network;
use crate::core::optim::{Optimizer, OptimizerKind, StepRule};
use crate::run::device::{Device, Workspace};
use crate::run::epoch_loop::{Evaluate, LoopHooks, Split, TrainConfig, iters_per_epoch, run_loop};

/// `evaluate_sample_num_per_epoch`.
const EVAL_SAMPLES: usize = 1000;

/// The seed, the epochs (the script's 20 when `None`) and a CSV file the
/// rows also go to as they come.
type Sizes<'a> = (u64, Option<usize>, Option<&'a std::path::Path>);

/// `ch07/train_convnet.py`'s run.
pub fn train_convnet(
    device: &Device,
    data: &Mnist,
    sizes: Sizes,
    say: &mut dyn FnMut(String),
) -> Result<Table> {
    let arch = Arch::simple_convnet(ConvFront::book(), &[100], CLASSES)?;
    let params = Params::init(&arch, sizes.0);
    let header = format!("{} ({})", arch.describe(), ConvFront::book().describe());
    train_script(device, data, (params, header), sizes, say)
}

/// `ch08/train_deepnet.py`'s run.
pub fn train_deepnet(
    device: &Device,
    data: &Mnist,
    sizes: Sizes,
    say: &mut dyn FnMut(String),
) -> Result<Table> {
    let arch = Arch::from_network(Network::deep_convnet())?;
    let params = Params::init_with(&arch, Init::He, sizes.0);
    let header = format!("DeepConvNet ({})", arch.describe());
    train_script(device, data, (params, header), sizes, say)
}

/// The book's `Trainer` run of both scripts from `params`, said first
/// after `header`.
fn train_script(
    device: &Device,
    data: &Mnist,
    (params, header): (Params, String),
    (seed, epochs, csv): Sizes,
    say: &mut dyn FnMut(String),
) -> Result<Table> {
    let (inputs, pixels) = (params.arch.inputs(), data.train.pixels());
    if inputs != pixels {
        return Err(Error::Usage(format!(
            "--data: the script's network takes images of {inputs} pixels (1×28×28), but the data's have {pixels}"
        )));
    }
    let (batch, lr) = (100, 0.001);
    let rule = StepRule {
        optimizer: Optimizer::new(OptimizerKind::Adam),
        weight_decay: 0.0,
        seed,
    };
    let per_epoch = iters_per_epoch(data.train.len(), batch);
    let epochs = epochs.unwrap_or(20);
    say(format!(
        "{header}; {epochs} epoch(s) of {per_epoch} iterations, batch {batch}, Adam lr {lr}"
    ));
    let slots = submit_slots(batch, STEPS_PER_SUBMIT, per_epoch);
    let mut trainer = device.trainer(&params, data, Workspace { batch, slots }, lr, &rule)?;
    let first = FirstImages::new(device, &params, data, EVAL_SAMPLES)?;
    let mut rows = Rows::new(csv, &crate::report::book_figures::METRICS_COLUMNS)?;
    let mut current = None;
    let cfg = TrainConfig {
        iters: epochs * per_epoch,
        batch,
        lr,
        seed,
    };
    let hooks = LoopHooks {
        epoch_end: &mut |r, _, _| {
            say(format!(
                "=== epoch:{}, train acc:{}, test acc:{} === (mean loss {:.4}, {:.0} samples/s)",
                r.epoch, r.train_accuracy, r.test_accuracy, r.loss, r.samples_per_sec
            ));
            rows.push(vec![
                json!(r.epoch),
                json!(r.iter),
                json!(r.loss),
                json!(r.train_accuracy),
                json!(r.test_accuracy),
                json!(r.seconds),
                json!(r.samples_per_sec),
            ])?;
            Ok(ControlFlow::Continue(()))
        },
        events: &mut |_| ControlFlow::Continue(()),
        // The parameters read once an epoch: the loop asks for the
        // training split, then the test split.
        accuracy: Some(&mut |trainer, split| {
            if split == Split::Train {
                current = Some(trainer.params()?);
            }
            first.accuracy(current.as_ref().expect("train split first"), split)
        }),
        evaluate: Evaluate::EpochEnds,
        nan_ends_run: true,
    };
    run_loop(trainer.as_mut(), data.train.len(), &cfg, slots, None, hooks)?;
    let test_acc = trainer.evaluate(Split::Test)?.1;
    say("=============== Final Test Accuracy ===============".into());
    say(format!("test acc:{test_acc}"));
    Ok(rows.table(json!({ "test_acc": test_acc, "epochs": epochs })))
}
