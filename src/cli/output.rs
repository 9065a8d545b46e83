//! How commands print: human lines on stdout, or on stderr when stdout
//! carries one JSON object (`--json`); and the training progress bar, drawn
//! on a terminal only so logs, pipes and `--json` stay clean. Everything for
//! stdout goes through [`print`]: a reader that closed the pipe (`| head`)
//! stops the printing, not the work (a run still saves its checkpoint), and
//! a stdout that cannot be written (a full disk) fails the command at its
//! end, with a message.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

#[derive(Clone, Copy, Debug)]
pub struct Output {
    pub json: bool,
}

impl Output {
    pub fn new(json: bool) -> Self {
        Output { json }
    }

    /// One human line.
    pub fn say(&self, line: &str) {
        if self.json {
            say_err!("{line}")
        } else {
            print(&format!("{line}\n"))
        }
    }

    /// The command's one JSON object, when `--json` asked for it.
    pub fn object<T: Serialize>(&self, value: &T, pretty: bool) -> anyhow::Result<()> {
        if self.json {
            let text = if pretty {
                serde_json::to_string_pretty(value)?
            } else {
                serde_json::to_string(value)?
            };
            print(&format!("{text}\n"));
        }
        Ok(())
    }
}

/// Set once stdout has failed: nothing more is written to it.
static STDOUT_GONE: AtomicBool = AtomicBool::new(false);
/// Why, unless the reader merely closed the pipe.
static STDOUT_ERROR: Mutex<Option<String>> = Mutex::new(None);

/// Writes `text` to stdout, now (flushed), or not at all once stdout has
/// failed (see [`stdout_failure`]).
pub fn print(text: &str) {
    if STDOUT_GONE.load(Ordering::SeqCst) {
        return;
    }
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        STDOUT_GONE.store(true, Ordering::SeqCst);
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            let mut why = STDOUT_ERROR.lock().unwrap_or_else(|e| e.into_inner());
            why.get_or_insert_with(|| format!("writing to stdout: {e}"));
        }
    }
}

/// Why stdout could not be written, if it could not (a closed pipe is not
/// a failure: the reader had what it wanted).
pub fn stdout_failure() -> Option<String> {
    STDOUT_ERROR
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
}

/// A bar of iterations, with lines printed above it.
pub struct Progress {
    out: Output,
    bar: Option<ProgressBar>,
    batch: usize,
}

impl Progress {
    /// A bar from `done` to `len` iterations of `batch` samples.
    pub fn new(out: Output, len: usize, done: usize, batch: usize) -> Self {
        let bar = (!out.json && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new(len as u64);
            bar.set_style(steps_style());
            bar.set_position(done as u64);
            bar
        });
        Progress { out, bar, batch }
    }

    /// A line above the bar, not through it.
    pub fn say(&self, line: &str) {
        match &self.bar {
            Some(b) => b.suspend(|| self.out.say(line)),
            None => self.out.say(line),
        }
    }

    pub fn at(&self, done: usize) {
        if let Some(b) = &self.bar {
            b.set_style(steps_style());
            b.set_position(done as u64);
            b.set_message(format!("{:.0} samples/s", b.per_sec() * self.batch as f64));
        }
    }

    /// The epoch's steps are done and `what` is being evaluated: said beside
    /// the bar, without a time left (the steps' rate does not predict it).
    pub fn evaluating(&self, what: &str) {
        if let Some(b) = &self.bar {
            b.set_style(
                ProgressStyle::with_template("{wide_bar} {pos}/{len}  {prefix}  {msg}")
                    .expect("a valid template"),
            );
            b.set_message(format!("evaluating {what}"));
        }
    }

    /// The last epoch's figures, beside the bar.
    pub fn epoch(&self, text: String) {
        if let Some(b) = &self.bar {
            b.set_prefix(text);
        }
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

/// The bar while steps run. It takes what the terminal's width leaves, so
/// the line never wraps on an 80-column terminal.
fn steps_style() -> ProgressStyle {
    ProgressStyle::with_template("{wide_bar} {pos}/{len}  {prefix}  {msg}  {eta} left")
        .expect("a valid template")
}
