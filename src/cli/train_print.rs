//! How `gpu-net train` prints a run as it goes: its lines, a note while the
//! GPU compiles its kernels, a progress bar, a line per epoch, Ctrl-C heard
//! between hand-overs of steps; then how it ended, and its summary as JSON.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

use gpu_net::run::device::Device;
use gpu_net::run::epoch_loop::{EpochReport, Split, TrainSummary};
use gpu_net::run::{TrainPlan, TrainReport, count};

use super::interrupt;
use super::output::{Output, Progress};

/// Prints the run as it goes: its lines on stderr (above the progress bar
/// while it stands), a note on a terminal while the GPU compiles its
/// kernels, and Ctrl-C heard between hand-overs of steps.
pub struct Printer {
    out: Output,
    progress: Option<Progress>,
    per_epoch: usize,
    /// The compiling note stands and is to be erased.
    waiting: bool,
}

impl Printer {
    pub fn new(out: Output) -> Self {
        Printer {
            out,
            progress: None,
            per_epoch: 1,
            waiting: false,
        }
    }
}

impl TrainReport for Printer {
    fn say(&mut self, line: &str) {
        match &self.progress {
            Some(p) => p.say(line),
            None => self.out.say(line),
        }
    }

    fn warn(&mut self, line: &str) {
        say_err!("{line}");
    }

    fn setting_up(&mut self, device: &Device) {
        // A line that stands while the driver compiles the kernels
        // (seconds on a cold shader cache), erased when it is done.
        if let Device::Gpu(ctx) = device {
            if !self.out.json && std::io::stderr().is_terminal() {
                let _ = write!(std::io::stderr(), "{}\r", compiling_note(ctx.info.backend));
                self.waiting = true;
            }
        }
    }

    fn set_up(&mut self) {
        if std::mem::take(&mut self.waiting) {
            let _ = write!(std::io::stderr(), "\x1b[2K");
        }
    }

    fn stop(&mut self) -> bool {
        interrupt::requested()
    }

    fn start(&mut self, plan: &TrainPlan) {
        self.per_epoch = plan.per_epoch;
        self.progress = Some(Progress::new(self.out, plan.iters, plan.done, plan.batch));
    }

    fn steps(&mut self, done: usize) {
        if let Some(p) = &self.progress {
            p.at(done);
        }
    }

    fn evaluating(&mut self, split: Split) {
        if let Some(p) = &self.progress {
            p.evaluating(match split {
                Split::Train => "the training set",
                Split::Test => "the test set",
            });
        }
    }

    fn epoch(&mut self, r: &EpochReport) {
        let per_epoch = self.per_epoch;
        let partial = match r.iter % per_epoch {
            0 => String::new(),
            n => format!("  (partial: {n} of {per_epoch} iterations)"),
        };
        self.say(&format!(
            "epoch {:>3}  iter {:>6}  loss {:.4}  train acc {:.4}  test acc {:.4}  {:>9.0} samples/s{partial}",
            r.epoch, r.iter, r.loss, r.train_accuracy, r.test_accuracy, r.samples_per_sec
        ));
        if let Some(p) = &self.progress {
            p.epoch(format!(
                "epoch {} loss {:.3} acc {:.3}",
                r.epoch, r.loss, r.test_accuracy
            ));
        }
    }

    fn finish(&mut self) {
        if let Some(p) = self.progress.take() {
            p.finish();
        }
    }
}

/// The line that stands while the driver compiles the kernels: Vulkan,
/// Metal and DX12 drivers keep what they compiled, GL compiles every run.
fn compiling_note(backend: wgpu::Backend) -> &'static str {
    if backend == wgpu::Backend::Gl {
        "compiling shaders (GL compiles them on every run)..."
    } else {
        "compiling shaders (first run only; the driver caches them)..."
    }
}

/// The last lines: the summary, where the checkpoint is, and (interrupted)
/// how to continue; exit status 130 when interrupted.
pub fn say_how_it_ended(
    summary: &TrainSummary,
    save: Option<&Path>,
    out: Output,
) -> anyhow::Result<ExitCode> {
    if summary.interrupted {
        let saved = match save {
            Some(p) => format!(
                "saved {}; continue with `gpu-net train --resume {}`",
                p.display(),
                p.display()
            ),
            None => "nothing saved (--save PATH keeps a run)".into(),
        };
        out.say(&format!(
            "interrupted at iteration {}; {saved}",
            summary.iters
        ));
    } else {
        // A resumed run's time is of the iterations it ran, not the whole run's.
        let ran = match summary.first_iter {
            0 => count(summary.iters, "iteration"),
            from => format!(
                "iterations {} to {} ({})",
                from + 1,
                summary.iters,
                count(summary.iters - from, "iteration")
            ),
        };
        out.say(&format!(
            "done: {ran} in {:.1} s ({:.0} samples/s) and {:.1} s of evaluation, final test accuracy {:.4}",
            summary.seconds,
            summary.samples_per_sec,
            summary.eval_seconds,
            summary.test_accuracy
        ));
        if let Some(p) = save {
            out.say(&format!(
                "saved {} (iteration {}, test accuracy {:.4})",
                p.display(),
                summary.iters,
                summary.test_accuracy
            ));
        }
    }
    out.object(summary, false)?;
    Ok(if summary.interrupted {
        ExitCode::from(interrupt::EXIT_STATUS)
    } else {
        ExitCode::SUCCESS
    })
}
