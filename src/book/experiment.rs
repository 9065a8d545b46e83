//! `gpu-net experiment NAME`: the book's chapter 6 experiments, chapter
//! 7's `train_convnet.py` and chapter 8's `train_deepnet.py`
//! (`train_convnet`), each with
//! its script's configuration (network, batch, iterations, learning rates,
//! training-set size), printing what the script prints and keeping the
//! curves the book plots as a table (written as CSV or JSON by the CLI).
//!
//! Where the scripts draw fresh random weights per network, every network
//! here starts from the same seed (a fairer comparison, and repeatable).
//! Evaluation points follow the scripts: after the update of every
//! iteration `i` with `i % iter_per_epoch == 0`, starting at `i = 0`.

use std::ops::ControlFlow;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use serde_json::{Value, json};

use crate::book::table::{Rows, Table, csv_line};
use crate::core::data::{CLASSES, Dataset, Mnist};
use crate::core::error::{Error, Result};
use crate::core::model::{Arch, Init, Params};
use crate::core::optim::{Optimizer, OptimizerKind, StepRule};
use crate::report::book_figures::{BATCH_NORM_COLUMNS, LOSS_COLUMNS, SEARCH_COLUMNS};
use crate::run::device::{Device, Workspace};
use crate::run::epoch_loop::{
    EpochReport, Evaluate, LoopHooks, Sampler, Split, TrainConfig, Trainer, iters_per_epoch,
    run_loop,
};

/// The experiments, by their command-line names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Experiment {
    OptimizerCompare,
    WeightInitCompare,
    BatchNorm,
    WeightDecay,
    Dropout,
    HyperparameterSearch,
    TrainConvnet,
    TrainDeepnet,
}

impl Experiment {
    pub const ALL: [Experiment; 8] = [
        Experiment::OptimizerCompare,
        Experiment::WeightInitCompare,
        Experiment::BatchNorm,
        Experiment::WeightDecay,
        Experiment::Dropout,
        Experiment::HyperparameterSearch,
        Experiment::TrainConvnet,
        Experiment::TrainDeepnet,
    ];

    pub fn name(&self) -> &'static str {
        match self {
            Experiment::OptimizerCompare => "optimizer-compare",
            Experiment::WeightInitCompare => "weight-init-compare",
            Experiment::BatchNorm => "batch-norm",
            Experiment::WeightDecay => "weight-decay",
            Experiment::Dropout => "dropout",
            Experiment::HyperparameterSearch => "hyperparameter-search",
            Experiment::TrainConvnet => "train-convnet",
            Experiment::TrainDeepnet => "train-deepnet",
        }
    }

    /// The book's script this reproduces.
    pub fn script(&self) -> &'static str {
        match self {
            Experiment::OptimizerCompare => "ch06/optimizer_compare_mnist.py",
            Experiment::WeightInitCompare => "ch06/weight_init_compare.py",
            Experiment::BatchNorm => "ch06/batch_norm_test.py",
            Experiment::WeightDecay => "ch06/overfit_weight_decay.py",
            Experiment::Dropout => "ch06/overfit_dropout.py",
            Experiment::HyperparameterSearch => "ch06/hyperparameter_optimization.py",
            Experiment::TrainConvnet => "ch07/train_convnet.py",
            Experiment::TrainDeepnet => "ch08/train_deepnet.py",
        }
    }

    /// The size flags (of [`ExperimentConfig`]) this experiment takes:
    /// `iters`, `epochs`, `trials`, `stds`.
    pub fn takes(&self) -> &'static [&'static str] {
        match self {
            Experiment::OptimizerCompare | Experiment::WeightInitCompare => &["iters"],
            Experiment::BatchNorm => &["epochs", "stds"],
            Experiment::WeightDecay
            | Experiment::Dropout
            | Experiment::TrainConvnet
            | Experiment::TrainDeepnet => &["epochs"],
            Experiment::HyperparameterSearch => &["epochs", "trials"],
        }
    }

    /// Whether it trains a convolutional network (whose f64 reference on
    /// the CPU is many times slower than even a software GPU).
    pub fn convolutional(&self) -> bool {
        matches!(self, Experiment::TrainConvnet | Experiment::TrainDeepnet)
    }

    pub fn parse(s: &str) -> std::result::Result<Self, String> {
        Experiment::ALL
            .into_iter()
            .find(|e| e.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Experiment::ALL.iter().map(|e| e.name()).collect();
                format!("{s:?} is not one of {}", names.join(", "))
            })
    }
}

/// The scripts' sizes, each of which can be made smaller (or larger) for a
/// quick look; `None` keeps the book's.
#[derive(Clone, Debug, Default)]
pub struct ExperimentConfig {
    pub seed: u64,
    /// Iterations of the two comparisons (2000).
    pub iters: Option<usize>,
    /// Epochs of the others (20, 201, 301, 50).
    pub epochs: Option<usize>,
    /// Trials of the hyperparameter search (100).
    pub trials: Option<usize>,
    /// How many of batch-norm's 16 weight scales to run, from 1 down.
    pub stds: Option<usize>,
    /// Write the table here as CSV, row by row as the run goes (batch-norm's
    /// rows once each weight scale's two networks are trained).
    pub csv: Option<std::path::PathBuf>,
}

/// What an experiment measured: the curves as a table, and a summary.
#[derive(Clone, Debug, Serialize)]
pub struct ExperimentReport {
    pub experiment: &'static str,
    pub script: &'static str,
    pub device: String,
    pub columns: Vec<&'static str>,
    pub rows: Vec<Vec<Value>>,
    pub summary: Value,
}

impl ExperimentReport {
    /// The table as CSV: a header, then one line per row.
    pub fn csv(&self) -> String {
        let mut s = self.columns.join(",") + "\n";
        for row in &self.rows {
            s += &csv_line(row);
            s.push('\n');
        }
        s
    }
}

/// One network under training: its device's trainer and learning rate.
struct Run<'a> {
    trainer: Box<dyn Trainer + 'a>,
    lr: f32,
}

impl Run<'_> {
    fn step(&mut self, batch: &[u32]) -> Result<()> {
        self.trainer.train_steps(&[batch.to_vec()], self.lr)
    }
}

/// The chapter 6 scripts' loop for one network: `iters` steps of `batch`
/// from the sampler seeded `seed`, and after the first step of each epoch
/// (`if i % iter_per_epoch == 0`) the loss since the last such point and
/// the accuracies, to `epoch_end`: on the training split, and on the test
/// split where `test` (else NaN).
fn script_loop(
    run: &mut Run<'_>,
    train_size: usize,
    (iters, batch, seed, test): (usize, usize, u64, bool),
    epoch_end: &mut dyn FnMut(&EpochReport) -> Result<()>,
) -> Result<()> {
    let cfg = TrainConfig {
        iters,
        batch,
        lr: run.lr,
        seed,
    };
    let mut accuracy = |t: &mut dyn Trainer, split| match split {
        Split::Test if !test => Ok(f64::NAN),
        _ => t.evaluate(split).map(|(_, a)| a),
    };
    let hooks = LoopHooks {
        epoch_end: &mut |r, _, _| {
            if r.evaluated {
                epoch_end(r)?;
            }
            Ok(ControlFlow::Continue(()))
        },
        events: &mut |_| ControlFlow::Continue(()),
        accuracy: Some(&mut accuracy),
        evaluate: Evaluate::AfterFirstStep,
        nan_ends_run: false,
    };
    // One step per call, as `start` reserves.
    run_loop(&mut *run.trainer, train_size, &cfg, 1, None, hooks)?;
    Ok(())
}

fn start<'a>(
    device: &Device,
    arch: &Arch,
    init: Init,
    data: &'a Mnist,
    batch: usize,
    lr: f32,
    rule: &StepRule,
) -> Result<Run<'a>> {
    let params = Params::init_with(arch, init, rule.seed);
    // One step per submission: `Run::step` hands over one batch at a
    // time, so more slots would be buffers and dispatches never used.
    let trainer = device.trainer(&params, data, Workspace { batch, slots: 1 }, lr, rule)?;
    Ok(Run { trainer, lr })
}

/// Runs one experiment, calling `say` with each line the script prints.
pub fn run(
    which: Experiment,
    device: &Device,
    data: &Mnist,
    cfg: &ExperimentConfig,
    say: &mut dyn FnMut(String),
) -> Result<ExperimentReport> {
    say(format!(
        "{} ({}), on {}",
        which.name(),
        which.script(),
        device.describe()
    ));
    let (columns, rows, summary) = match which {
        Experiment::OptimizerCompare => optimizer_compare(device, data, cfg, say)?,
        Experiment::WeightInitCompare => weight_init_compare(device, data, cfg, say)?,
        Experiment::BatchNorm => batch_norm(device, data, cfg, say)?,
        Experiment::WeightDecay => overfit(which, device, data, cfg, say)?,
        Experiment::Dropout => overfit(which, device, data, cfg, say)?,
        Experiment::HyperparameterSearch => hyperparameter_search(device, data, cfg, say)?,
        Experiment::TrainConvnet => {
            let sizes = (cfg.seed, cfg.epochs, cfg.csv.as_deref());
            crate::book::train_convnet::train_convnet(device, data, sizes, say)?
        }
        Experiment::TrainDeepnet => {
            let sizes = (cfg.seed, cfg.epochs, cfg.csv.as_deref());
            crate::book::train_convnet::train_deepnet(device, data, sizes, say)?
        }
    };
    Ok(ExperimentReport {
        experiment: which.name(),
        script: which.script(),
        device: device.describe(),
        columns,
        rows,
        summary,
    })
}

fn mlp(data: &Mnist, hidden: &[usize]) -> Result<Arch> {
    Ok(Arch::mlp(data.train.pixels(), hidden, CLASSES)?)
}

/// A split of `data` with `train` as the training set and `test` as the test set.
fn split(train: Dataset, test: Dataset) -> Mnist {
    Mnist { train, test }
}

/// Both comparisons: 784-100×4-10 networks trained side by side on the
/// same minibatches of 128 for 2000 iterations, each `(name, init, rule,
/// lr)`, the loss of each printed every 100 iterations.
fn side_by_side(
    device: &Device,
    data: &Mnist,
    cfg: &ExperimentConfig,
    networks: &[(&str, Init, OptimizerKind, f32)],
    say: &mut dyn FnMut(String),
) -> Result<Table> {
    let arch = mlp(data, &[100; 4])?;
    let (batch, iters) = (128, cfg.iters.unwrap_or(2000));
    let mut runs = Vec::new();
    for &(name, init, kind, lr) in networks {
        let rule = StepRule {
            optimizer: Optimizer::new(kind),
            weight_decay: 0.0,
            seed: cfg.seed,
        };
        runs.push((name, start(device, &arch, init, data, batch, lr, &rule)?));
    }
    let mut sampler = Sampler::new(cfg.seed, data.train.len());
    let mut rows = Rows::new(cfg.csv.as_deref(), &LOSS_COLUMNS)?;
    let mut last: Vec<Vec<f64>> = vec![vec![]; runs.len()];
    for i in 0..iters {
        let b = sampler.batch(batch);
        if i % 100 == 0 {
            say(format!("===========iteration:{i}==========="));
        }
        for (k, (name, run)) in runs.iter_mut().enumerate() {
            run.step(&b)?;
            // The batch's loss as the step computed it (before its update;
            // the script evaluates it again after).
            let loss = run.trainer.take_mean_loss()?;
            rows.push(vec![json!(name), json!(i), json!(loss)])?;
            if i % 100 == 0 {
                // As f32: the GPU's loss has no more digits than that.
                say(format!("{name}:{}", loss as f32));
            }
            last[k].push(loss);
            if last[k].len() > 100 {
                last[k].remove(0);
            }
        }
    }
    let summary: Vec<Value> = runs
        .iter()
        .zip(&last)
        .map(|((name, _), l)| {
            let mean = l.iter().sum::<f64>() / l.len().max(1) as f64;
            say(format!(
                "mean loss over the last {} iterations, {name}: {mean:.4}",
                l.len()
            ));
            json!({ "series": name, "mean_loss_last_100": mean })
        })
        .collect();
    Ok(rows.table(json!(summary)))
}

fn optimizer_compare(
    device: &Device,
    data: &Mnist,
    cfg: &ExperimentConfig,
    say: &mut dyn FnMut(String),
) -> Result<Table> {
    let networks = [
        ("SGD", Init::He, OptimizerKind::Sgd, 0.01),
        ("Momentum", Init::He, OptimizerKind::Momentum, 0.01),
        ("AdaGrad", Init::He, OptimizerKind::AdaGrad, 0.01),
        ("Adam", Init::He, OptimizerKind::Adam, 0.001),
    ];
    side_by_side(device, data, cfg, &networks, say)
}

fn weight_init_compare(
    device: &Device,
    data: &Mnist,
    cfg: &ExperimentConfig,
    say: &mut dyn FnMut(String),
) -> Result<Table> {
    let networks = [
        ("std=0.01", Init::Std(0.01), OptimizerKind::Sgd, 0.01),
        ("Xavier", Init::Xavier, OptimizerKind::Sgd, 0.01),
        ("He", Init::He, OptimizerKind::Sgd, 0.01),
    ];
    side_by_side(device, data, cfg, &networks, say)
}

/// numpy's `logspace(0, -4, num=16)`.
fn weight_scales() -> Vec<f64> {
    (0..16)
        .map(|i| 10f64.powf(-4.0 * i as f64 / 15.0))
        .collect()
}

fn batch_norm(
    device: &Device,
    data: &Mnist,
    cfg: &ExperimentConfig,
    say: &mut dyn FnMut(String),
) -> Result<Table> {
    let train = data.train.first(1000);
    // Only the training accuracy is plotted: the test split is not needed.
    let data = split(train.clone(), train);
    let (batch, epochs) = (100, cfg.epochs.unwrap_or(20));
    let per_epoch = iters_per_epoch(data.train.len(), batch);
    let scales = weight_scales();
    let count = cfg.stds.unwrap_or(16).min(16);
    let plain = mlp(&data, &[100; 5])?;
    let with_bn = plain.clone().with_batchnorm(true);
    let rule = StepRule {
        seed: cfg.seed,
        ..Default::default()
    };
    let mut rows = Rows::new(cfg.csv.as_deref(), &BATCH_NORM_COLUMNS)?;
    let mut summary = Vec::new();
    for (k, &w) in scales.iter().take(count).enumerate() {
        say(format!("============== {}/16 ==============", k + 1));
        // The script steps both networks on each minibatch; trained one
        // after the other on the same minibatches, they end the same.
        // Only the training accuracy is plotted.
        let plan = ((epochs.max(1) - 1) * per_epoch + 1, batch, cfg.seed, false);
        let mut accuracies = [vec![], vec![]];
        for (arch, acc) in [&plain, &with_bn].into_iter().zip(&mut accuracies) {
            let mut run = start(device, arch, Init::Std(w), &data, batch, 0.01, &rule)?;
            let mut epoch_end = |r: &EpochReport| {
                acc.push(r.train_accuracy);
                Ok(())
            };
            script_loop(&mut run, data.train.len(), plan, &mut epoch_end)?;
        }
        for (epoch, (&acc, &bn_acc)) in accuracies[0].iter().zip(&accuracies[1]).enumerate() {
            say(format!("epoch:{epoch} | {acc} - {bn_acc}"));
            rows.push(vec![json!(w), json!("plain"), json!(epoch), json!(acc)])?;
            rows.push(vec![
                json!(w),
                json!("batchnorm"),
                json!(epoch),
                json!(bn_acc),
            ])?;
        }
        let last = |a: &[f64]| a.last().copied().unwrap_or(0.0);
        let (plain_acc, bn_acc) = (last(&accuracies[0]), last(&accuracies[1]));
        summary.push(json!({ "weight_std": w, "plain": plain_acc, "batchnorm": bn_acc }));
    }
    Ok(rows.table(json!(summary)))
}

/// Weight decay and Dropout: a deep network on 300 images, accuracy on
/// those and on the whole test set per epoch.
fn overfit(
    which: Experiment,
    device: &Device,
    data: &Mnist,
    cfg: &ExperimentConfig,
    say: &mut dyn FnMut(String),
) -> Result<Table> {
    let data = split(data.train.first(300), data.test.clone());
    let batch = 100;
    let per_epoch = iters_per_epoch(data.train.len(), batch);
    let mut arch = mlp(&data, &[100; 6])?;
    let mut rule = StepRule {
        seed: cfg.seed,
        ..Default::default()
    };
    // overfit_weight_decay.py loops until its 201st evaluation; the
    // Trainer of overfit_dropout.py runs epochs × iter_per_epoch steps.
    let steps = match which {
        Experiment::WeightDecay => {
            rule.weight_decay = 0.1;
            (cfg.epochs.unwrap_or(201).max(1) - 1) * per_epoch + 1
        }
        _ => {
            arch = arch.with_dropout(0.2)?;
            cfg.epochs.unwrap_or(301) * per_epoch
        }
    };
    let mut run = start(device, &arch, Init::He, &data, batch, 0.01, &rule)?;
    let mut rows = Rows::new(
        cfg.csv.as_deref(),
        &crate::report::book_figures::METRICS_COLUMNS,
    )?;
    let (mut epoch, mut last) = (0, (0.0, 0.0));
    let mut epoch_end = |r: &EpochReport| {
        let (train_acc, test_acc) = (r.train_accuracy, r.test_accuracy);
        // The columns of `train --metrics`, so `gpu-net plot` draws these too.
        rows.push(vec![
            json!(epoch),
            json!(r.iter),
            json!(r.loss),
            json!(train_acc),
            json!(test_acc),
            json!(r.seconds),
            json!(r.samples_per_sec),
        ])?;
        last = (train_acc, test_acc);
        say(match which {
            Experiment::WeightDecay => {
                format!("epoch:{epoch}, train acc:{train_acc}, test acc:{test_acc}")
            }
            _ => format!(
                "=== epoch:{}, train acc:{train_acc}, test acc:{test_acc} ===",
                epoch + 1
            ),
        });
        epoch += 1;
        Ok(())
    };
    let plan = (steps, batch, cfg.seed, true);
    script_loop(&mut run, data.train.len(), plan, &mut epoch_end)?;
    if which == Experiment::Dropout {
        say("=============== Final Test Accuracy ===============".into());
        say(format!("test acc:{}", last.1));
    }
    say(format!(
        "after {epoch} evaluations: train acc {:.4}, test acc {:.4}, gap {:.4}",
        last.0,
        last.1,
        last.0 - last.1
    ));
    Ok(rows.table(json!({ "train_acc": last.0, "test_acc": last.1, "gap": last.0 - last.1 })))
}

// Longer than a screen on purpose: it follows the book's
// `hyperparameter_optimization.py` line by line.
fn hyperparameter_search(
    device: &Device,
    data: &Mnist,
    cfg: &ExperimentConfig,
    say: &mut dyn FnMut(String),
) -> Result<Table> {
    // The first 500 images, shuffled; 20% held out for validation.
    let first = data.train.first(500);
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    rng.set_stream(3);
    let mut order: Vec<usize> = (0..first.len()).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, rng.random_range(0..=i));
    }
    let val_num = first.len() / 5;
    if val_num == 0 {
        return Err(Error::Usage(format!(
            "--data: the search holds out a fifth of the first 500 training images for validation, and {} leave none",
            first.len()
        )));
    }
    let pick = |idx: &[usize]| {
        let images = idx.iter().flat_map(|&i| first.image(i).to_vec()).collect();
        let labels = idx.iter().map(|&i| first.labels[i]).collect();
        Dataset::from_parts(images, labels, first.rows, first.cols)
    };
    let data = split(pick(&order[val_num..]), pick(&order[..val_num]));
    let (batch, epochs, trials) = (100, cfg.epochs.unwrap_or(50), cfg.trials.unwrap_or(100));
    let per_epoch = iters_per_epoch(data.train.len(), batch);
    let arch = mlp(&data, &[100; 6])?;
    let mut rows = Rows::new(cfg.csv.as_deref(), &SEARCH_COLUMNS)?;
    let mut results = Vec::new();
    for trial in 0..trials {
        let weight_decay = 10f64.powf(rng.random_range(-8.0..-4.0));
        let lr = 10f64.powf(rng.random_range(-6.0..-2.0));
        let rule = StepRule {
            weight_decay,
            seed: cfg.seed + trial as u64,
            ..Default::default()
        };
        let mut run = start(device, &arch, Init::He, &data, batch, lr as f32, &rule)?;
        let mut val_acc = 0.0;
        let mut epoch_end = |r: &EpochReport| {
            val_acc = r.test_accuracy;
            rows.push(vec![
                json!(trial),
                json!(lr),
                json!(weight_decay),
                json!(r.epoch),
                json!(r.train_accuracy),
                json!(val_acc),
            ])
        };
        let plan = (epochs * per_epoch, batch, rule.seed, true);
        script_loop(&mut run, data.train.len(), plan, &mut epoch_end)?;
        say(format!(
            "val acc:{val_acc} | lr:{lr:e}, weight decay:{weight_decay:e}"
        ));
        results.push((val_acc, lr, weight_decay, trial));
    }
    say("=========== Hyper-Parameter Optimization Result ===========".into());
    results.sort_by(|a, b| b.0.total_cmp(&a.0));
    let best: Vec<Value> = results
        .iter()
        .take(20)
        .enumerate()
        .map(|(i, (v, lr, wd, trial))| {
            say(format!(
                "Best-{}(val acc:{v}) | lr:{lr:e}, weight decay:{wd:e}",
                i + 1
            ));
            json!({ "trial": trial, "val_acc": v, "lr": lr, "weight_decay": wd })
        })
        .collect();
    Ok(rows.table(json!({ "best": best })))
}
