//! The training loop's bookkeeping, against a trainer that records what it
//! is asked: epochs of `train_size / batch` iterations (the book's count),
//! the last one partial, the loss of each epoch the mean of its steps,
//! evaluation after each epoch, batches handed over in calls that never
//! cross an epoch, and a resumed run drawing the batches an uninterrupted one
//! would; the evaluations of the book's Trainer (whole epochs only) and of
//! the chapter 6 scripts (after each epoch's first step), a stop asked at an
//! epoch's end, and a NaN loss ending a run or reported as asked.

use std::ops::ControlFlow;

use gpu_net::core::model::Params;
use gpu_net::run::epoch_loop::{
    self, EpochReport, Evaluate, LoopEvent, LoopHooks, Resume, Sampler, Split, TrainConfig,
    Trainer, iters_per_epoch, run_loop,
};

/// Records every call; the loss of step `s` (1-based) is `s`, and the
/// accuracy of a split is the steps done so far (train) or their half (test).
#[derive(Default)]
struct Recorder {
    steps: u64,
    calls: Vec<usize>,
    batches: Vec<Vec<u32>>,
    pending: Vec<f64>,
    evaluated_at: Vec<(Split, u64)>,
    /// From this step on, every loss is NaN.
    nan_from: Option<u64>,
}

impl Trainer for Recorder {
    fn precision(&self) -> gpu_net::run::epoch_loop::Precision {
        gpu_net::run::epoch_loop::Precision::F64
    }

    fn device(&self) -> String {
        "recorder".into()
    }
    fn train_steps(&mut self, batches: &[Vec<u32>], _lr: f32) -> gpu_net::core::error::Result<()> {
        self.calls.push(batches.len());
        for b in batches {
            self.steps += 1;
            let nan = self.nan_from.is_some_and(|n| self.steps >= n);
            self.pending
                .push(if nan { f64::NAN } else { self.steps as f64 });
            self.batches.push(b.clone());
        }
        Ok(())
    }
    fn take_mean_loss(&mut self) -> gpu_net::core::error::Result<f64> {
        let mean = self.pending.iter().sum::<f64>() / self.pending.len() as f64;
        self.pending.clear();
        Ok(mean)
    }
    fn evaluate(&mut self, split: Split) -> gpu_net::core::error::Result<(f64, f64)> {
        self.evaluated_at.push((split, self.steps));
        let acc = match split {
            Split::Train => self.steps as f64,
            Split::Test => self.steps as f64 / 2.0,
        };
        Ok((0.0, acc))
    }
    fn predictions(&mut self, _: Split) -> gpu_net::core::error::Result<Vec<u8>> {
        unreachable!()
    }
    fn params(&mut self) -> gpu_net::core::error::Result<Params> {
        unreachable!()
    }
    fn optimizer_state(&mut self) -> gpu_net::core::error::Result<Vec<Vec<f64>>> {
        Ok(vec![])
    }
    fn steps_done(&self) -> u64 {
        self.steps
    }
    fn restore(&mut self, _: &[Vec<f64>], steps: u64) -> gpu_net::core::error::Result<()> {
        self.steps = steps;
        Ok(())
    }
}

/// The loop over `iters` iterations of batch 10 on 105 images (10 per
/// epoch: the remainder of 5 is not an iteration), 4 steps per call.
fn run(iters: usize, resume: Option<Resume>) -> (Recorder, Vec<EpochReport>, Vec<u128>) {
    let mut t = Recorder::default();
    if let Some(r) = resume {
        t.steps = r.done as u64;
    }
    let cfg = config(iters);
    let (mut reports, mut positions) = (Vec::new(), Vec::new());
    let summary = epoch_loop::train_from(
        &mut t,
        105,
        &cfg,
        4,
        resume,
        &mut |r, _, position| {
            reports.push(r.clone());
            positions.push(position);
            Ok(())
        },
        &mut |_| ControlFlow::Continue(()),
    )
    .unwrap();
    let last = reports.last().unwrap();
    assert_eq!(
        (summary.iters, summary.final_loss, summary.test_accuracy),
        (iters, last.loss, last.test_accuracy)
    );
    (t, reports, positions)
}

#[test]
fn epochs_follow_the_books_count_and_the_last_may_be_partial() {
    assert_eq!(iters_per_epoch(105, 10), 10);
    assert_eq!(iters_per_epoch(5, 10), 1, "a set smaller than a batch: one");
    let (t, reports, _) = run(25, None);
    let at: Vec<(usize, usize)> = reports.iter().map(|r| (r.epoch, r.iter)).collect();
    assert_eq!(at, [(1, 10), (2, 20), (3, 25)]);
    // The loss of an epoch is the mean over its own steps: 1..=10, 11..=20, 21..=25.
    let losses: Vec<f64> = reports.iter().map(|r| r.loss).collect();
    assert_eq!(losses, [5.5, 15.5, 23.0]);
    // Both splits evaluated once per epoch, after its last step.
    let evaluated: Vec<u64> = t
        .evaluated_at
        .iter()
        .filter(|(s, _)| *s == Split::Train)
        .map(|&(_, n)| n)
        .collect();
    assert_eq!(evaluated, [10, 20, 25]);
    assert_eq!(t.evaluated_at.len(), 6);
    let train_acc: Vec<f64> = reports.iter().map(|r| r.train_accuracy).collect();
    let test_acc: Vec<f64> = reports.iter().map(|r| r.test_accuracy).collect();
    assert_eq!(
        (train_acc, test_acc),
        (vec![10.0, 20.0, 25.0], vec![5.0, 10.0, 12.5])
    );
    // Calls of at most 4 that never cross an epoch's end.
    assert_eq!(t.calls, [4, 4, 2, 4, 4, 2, 4, 1]);
    assert!(
        t.batches
            .iter()
            .all(|b| b.len() == 10 && b.iter().all(|&i| i < 105))
    );
    assert!(
        reports
            .iter()
            .all(|r| r.samples_per_sec > 0.0 && r.seconds >= 0.0)
    );
}

#[test]
fn a_resumed_run_continues_the_epochs_and_the_batches() {
    let (whole, reports, positions) = run(25, None);
    // Stopped after epoch 1 (iteration 10), resumed from its sampler position.
    let resume = Resume {
        done: 10,
        sampler_position: positions[0],
    };
    let (rest, resumed, _) = run(25, Some(resume));
    let at: Vec<(usize, usize)> = resumed.iter().map(|r| (r.epoch, r.iter)).collect();
    assert_eq!(at, [(2, 20), (3, 25)]);
    assert_eq!(rest.batches, whole.batches[10..]);
    assert_eq!(
        resumed.iter().map(|r| r.loss).collect::<Vec<_>>(),
        reports[1..].iter().map(|r| r.loss).collect::<Vec<_>>()
    );
    // Mid-epoch: the epoch's report covers the steps after the resume.
    let mut sampler = Sampler::new(5, 105);
    for _ in 0..15 {
        sampler.batch(10);
    }
    let mid = Resume {
        done: 15,
        sampler_position: sampler.position(),
    };
    let (rest, resumed, _) = run(25, Some(mid));
    let at: Vec<(usize, usize, f64)> = resumed.iter().map(|r| (r.epoch, r.iter, r.loss)).collect();
    assert_eq!(at, [(2, 20, 18.0), (3, 25, 23.0)]);
    assert_eq!(rest.batches, whole.batches[15..]);
}

#[test]
fn a_stop_request_ends_a_partial_epoch_that_is_reported_and_saved() {
    let mut t = Recorder::default();
    let cfg = config(25);
    let mut reports = Vec::new();
    // Asked to stop once 14 steps have been handed over: the call in flight
    // (steps 13 and 14 of calls of 4 within epoch 2: 11-14) finishes.
    let summary = epoch_loop::train_from(
        &mut t,
        105,
        &cfg,
        4,
        None,
        &mut |r, _, _| {
            reports.push(r.clone());
            Ok(())
        },
        &mut |event| match event {
            LoopEvent::Steps(done) if done >= 14 => ControlFlow::Break(()),
            _ => ControlFlow::Continue(()),
        },
    )
    .unwrap();
    let at: Vec<(usize, usize, f64)> = reports.iter().map(|r| (r.epoch, r.iter, r.loss)).collect();
    assert_eq!(at, [(1, 10, 5.5), (2, 14, 12.5)]);
    assert_eq!(t.steps, 14);
    assert!(summary.interrupted);
    assert_eq!(summary.iters, 14);
    assert_eq!(summary.test_accuracy, 7.0);
    // A stop asked at the very last step is no interruption.
    let mut t = Recorder::default();
    let summary = epoch_loop::train_from(
        &mut t,
        105,
        &cfg,
        4,
        None,
        &mut |_, _, _| Ok(()),
        &mut |event| match event {
            LoopEvent::Steps(25) => ControlFlow::Break(()),
            _ => ControlFlow::Continue(()),
        },
    )
    .unwrap();
    assert!(!summary.interrupted);
    assert_eq!(summary.iters, 25);
}

/// The runs of these tests: batch 10 at lr 0.1, seed 5.
fn config(iters: usize) -> TrainConfig {
    TrainConfig {
        iters,
        batch: 10,
        lr: 0.1,
        seed: 5,
    }
}

/// The loop says what it is doing: each call's steps, then each epoch's
/// evaluations (the training set, then the test set); their time is kept
/// apart from the steps'.
#[test]
fn the_loop_reports_its_steps_and_evaluations_in_order() {
    let mut t = Recorder::default();
    let cfg = config(15);
    let mut events = Vec::new();
    let summary = epoch_loop::train_from(
        &mut t,
        105,
        &cfg,
        4,
        None,
        &mut |_, _, _| Ok(()),
        &mut |e| {
            events.push(e);
            ControlFlow::Continue(())
        },
    )
    .unwrap();
    use LoopEvent::{Evaluating, Steps};
    let evals = [Evaluating(Split::Train), Evaluating(Split::Test)];
    let want = [
        &[Steps(4), Steps(8), Steps(10)][..],
        &evals,
        &[Steps(14), Steps(15)],
        &evals,
    ]
    .concat();
    assert_eq!(events, want);
    assert!(summary.eval_seconds >= 0.0 && summary.seconds >= 0.0);
}

/// The book's train_convnet.py runs through the one epoch loop with its
/// accuracies on the first images of each split: a row and a line per
/// epoch, with the iterations the loop reports, then the whole test set's
/// accuracy. On the CPU reference, 200 training images (2 steps an epoch).
#[test]
fn train_convnet_runs_through_the_loop() {
    use gpu_net::core::data::Mnist;
    use gpu_net::run::device::Device;
    let full = gpu_net::core::data::load_dir(&gpu_net::core::data::bundled_dir()).unwrap();
    let data = Mnist {
        train: full.train.first(200),
        test: full.test.first(300),
    };
    let mut lines = vec![];
    let (columns, rows, summary) = gpu_net::book::train_convnet::train_convnet(
        &Device::Cpu,
        &data,
        (1, Some(2), None),
        &mut |l| lines.push(l),
    )
    .unwrap();
    assert_eq!(columns[..2], ["epoch", "iteration"]);
    let iters: Vec<u64> = rows.iter().map(|r| r[1].as_u64().unwrap()).collect();
    assert_eq!(iters, [2, 4]);
    for (row, epoch) in rows.iter().zip(1..) {
        let line = lines
            .iter()
            .find(|l| l.starts_with(&format!("=== epoch:{epoch},")));
        let line = line.unwrap_or_else(|| panic!("no line for epoch {epoch}: {lines:?}"));
        assert!(
            line.contains(&format!("test acc:{}", row[4])),
            "{line} / {row:?}"
        );
    }
    assert!(
        summary["test_acc"]
            .as_f64()
            .is_some_and(|a| (0.0..=1.0).contains(&a))
    );
    assert_eq!(
        lines.last().unwrap(),
        &format!("test acc:{}", summary["test_acc"])
    );
}

/// Both scripts' networks take 28×28 images: data of another size is a
/// usage error naming --data, before any step (the CPU's im2col would read
/// past the images, the GPU's would train on the wrong pixels).
#[test]
fn the_scripts_refuse_images_their_network_does_not_take() {
    use gpu_net::book::train_convnet::{train_convnet, train_deepnet};
    use gpu_net::core::data::{Dataset, Mnist};
    use gpu_net::core::error::Error;
    use gpu_net::run::device::Device;
    let small = Dataset::from_parts(vec![7; 20 * 4], vec![3; 20], 2, 2);
    let data = Mnist {
        train: small.clone(),
        test: small,
    };
    for script in [train_convnet, train_deepnet] {
        let e = script(&Device::Cpu, &data, (1, Some(1), None), &mut |_| {}).unwrap_err();
        assert!(matches!(e, Error::Usage(_)), "{e}");
        assert!(
            e.to_string()
                .contains("--data: the script's network takes images of 784 pixels (1×28×28), but the data's have 4"),
            "{e}"
        );
    }
}

/// The loop with `evaluate` and `nan_ends_run` over `iters` iterations of
/// batch 10 on 105 images, one step per call; the reports it gave, and the
/// steps at which the training split was evaluated.
fn run_with(
    t: &mut Recorder,
    iters: usize,
    evaluate: Evaluate,
    nan_ends_run: bool,
    stop_after_epoch: Option<usize>,
) -> gpu_net::core::error::Result<(Vec<EpochReport>, Vec<u64>)> {
    let mut reports = vec![];
    let hooks = LoopHooks {
        epoch_end: &mut |r, _, _| {
            reports.push(r.clone());
            Ok(match stop_after_epoch == Some(r.epoch) {
                true => ControlFlow::Break(()),
                false => ControlFlow::Continue(()),
            })
        },
        events: &mut |_| ControlFlow::Continue(()),
        accuracy: None,
        evaluate,
        nan_ends_run,
    };
    let summary = run_loop(t, 105, &config(iters), 1, None, hooks)?;
    assert_eq!(summary.interrupted, stop_after_epoch.is_some());
    let train: Vec<u64> = t
        .evaluated_at
        .iter()
        .filter(|(s, _)| *s == Split::Train)
        .map(|&(_, n)| n)
        .collect();
    Ok((reports, train))
}

#[test]
fn the_scripts_evaluate_after_each_epochs_first_step() {
    // The chapter 6 scripts' `if i % iter_per_epoch == 0` over 25 steps:
    // after steps 1, 11 and 21; the last 4 steps end a chunk not evaluated.
    let mut t = Recorder::default();
    let (reports, train) = run_with(&mut t, 25, Evaluate::AfterFirstStep, true, None).unwrap();
    assert_eq!(train, [1, 11, 21]);
    let ends: Vec<(usize, bool)> = reports.iter().map(|r| (r.iter, r.evaluated)).collect();
    assert_eq!(ends, [(1, true), (11, true), (21, true), (25, false)]);
    // Each loss the mean since the last point: 1; 2..=11; 12..=21; 22..=25.
    let losses: Vec<f64> = reports.iter().map(|r| r.loss).collect();
    assert_eq!(losses, [1.0, 6.5, 16.5, 23.5]);
    assert!(reports[3].train_accuracy.is_nan());
}

#[test]
fn the_books_trainer_evaluates_whole_epochs_only() {
    let mut t = Recorder::default();
    let (reports, train) = run_with(&mut t, 25, Evaluate::WholeEpochs, true, None).unwrap();
    assert_eq!(train, [10, 20]);
    let ends: Vec<(usize, bool)> = reports.iter().map(|r| (r.iter, r.evaluated)).collect();
    assert_eq!(ends, [(10, true), (20, true), (25, false)]);
    // Every epoch is evaluated where the run's end is not cut short.
    let mut t = Recorder::default();
    let (_, train) = run_with(&mut t, 25, Evaluate::EpochEnds, true, None).unwrap();
    assert_eq!(train, [10, 20, 25]);
}

#[test]
fn an_epoch_end_may_stop_the_run() {
    let mut t = Recorder::default();
    let (reports, _) = run_with(&mut t, 40, Evaluate::EpochEnds, true, Some(2)).unwrap();
    assert_eq!(reports.len(), 2);
    assert_eq!(t.steps, 20, "no step after the epoch that stopped it");
}

#[test]
fn a_nan_loss_ends_a_run_or_is_reported_as_asked() {
    let mut t = Recorder {
        nan_from: Some(13),
        ..Default::default()
    };
    let e = run_with(&mut t, 25, Evaluate::EpochEnds, true, None).unwrap_err();
    assert_eq!(
        e.to_string(),
        "the training loss is NaN in iterations 11..20: training diverged at learning rate 0.1"
    );
    let mut t = Recorder {
        nan_from: Some(13),
        ..Default::default()
    };
    let (reports, _) = run_with(&mut t, 25, Evaluate::AfterFirstStep, false, None).unwrap();
    assert_eq!(reports.len(), 4, "the run goes on to its end");
    assert!(reports[0].loss.is_finite() && reports[2].loss.is_nan());
}
