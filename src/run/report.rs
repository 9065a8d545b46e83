//! What a training run tells its caller as it goes, and what came of it:
//! the caller prints, the run does not.
//!
//! Part of `run`: imports `device`, `epoch_loop` (its report types).

use std::path::PathBuf;

use crate::run::device::Device;
use crate::run::epoch_loop::{EpochReport, Split, TrainSummary};

/// The run as it will go, given to [`TrainReport::start`].
#[derive(Clone, Copy, Debug)]
pub struct TrainPlan {
    /// Iterations of the whole run, and those done before (resumed).
    pub iters: usize,
    pub done: usize,
    pub batch: usize,
    pub per_epoch: usize,
}

/// What a run tells its caller as it goes; the caller prints.
pub trait TrainReport {
    /// A line about the run: what it is, notes, files written.
    fn say(&mut self, line: &str);
    /// A note that the run reads something other than what it was told
    /// (a checkpoint's data folder gone): where warnings go.
    fn warn(&mut self, line: &str) {
        self.say(line)
    }
    /// `device` is being set up (a GPU's kernels compile: seconds on a cold
    /// driver cache); [`TrainReport::set_up`] follows.
    fn setting_up(&mut self, _device: &Device) {}
    fn set_up(&mut self) {}
    /// Whether to stop (Ctrl-C): asked before the first step and after each
    /// hand-over of steps, whose steps then finish and end the run.
    fn stop(&mut self) -> bool;
    fn start(&mut self, plan: &TrainPlan);
    /// `done` iterations have been handed to the device.
    fn steps(&mut self, done: usize);
    fn evaluating(&mut self, split: Split);
    fn epoch(&mut self, report: &EpochReport);
    /// The loop has ended; last lines follow through `say`.
    fn finish(&mut self);
}

/// What came of a run.
#[derive(Debug)]
pub enum TrainOutcome {
    /// Stopped while the device was set up: nothing trained or written.
    StoppedBeforeStart,
    /// Trained to its end, or until stopped (`summary.interrupted`);
    /// checkpoints went to `save`.
    Ran {
        summary: TrainSummary,
        save: Option<PathBuf>,
    },
}
