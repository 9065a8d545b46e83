//! A training run as the user asks for it, and the checks and words that
//! every part of a run shares.
//!
//! Part of `run`: imports `config`, `device`, `error`, `gpu` (options).

use std::path::PathBuf;

use crate::core::config::RunConfig;
use crate::core::error::{Error, Result};
use crate::gpu::GpuOptions;
use crate::run::device::DeviceChoice;

/// A training run as the user asked for it.
#[derive(Clone, Debug, Default)]
pub struct TrainRequest {
    pub device: DeviceChoice,
    pub gpu: GpuOptions,
    /// The settings as given, with defaults for the rest.
    pub config: RunConfig,
    /// The fields of `config` the user gave (laid over a resumed run's).
    pub given: Vec<String>,
    /// The run's length, as iterations or epochs; else a resumed run's
    /// planned end, else the book's 10000.
    pub iters: Option<usize>,
    pub epochs: Option<usize>,
    /// GPU steps recorded into one submission.
    pub steps_per_submit: usize,
    /// The data folder given (else the checkpoint's, else where MNIST is found).
    pub data: Option<PathBuf>,
    pub save: Option<PathBuf>,
    /// Let `save` replace another run's checkpoint, or a file that is none.
    pub overwrite: bool,
    pub resume: Option<PathBuf>,
    pub metrics: Option<PathBuf>,
    pub plot: Option<PathBuf>,
}

impl TrainRequest {
    /// Whether the user gave the setting `field` of [`RunConfig`].
    pub fn given(&self, field: &str) -> bool {
        self.given.iter().any(|g| g == field)
    }
}

/// Batch Normalization over one sample divides 0 by √ε: refused, naming
/// where the batch came from (`said`: `--batch`, the checkpoint's batch).
pub fn check_batchnorm_batch(batchnorm: bool, batch: usize, said: &str) -> Result<()> {
    if batchnorm && batch < 2 {
        return Err(Error::Usage(format!(
            "{said} {batch} with Batch Normalization (--batchnorm): one sample's variance is 0, so Batch Normalization would output beta whatever the input; use a batch of 2 or more"
        )));
    }
    Ok(())
}

/// `1 iteration`, `2 iterations`.
pub fn count(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// The data folder `given`, or else where MNIST is found (`data::default_dir`).
pub fn data_dir(given: Option<&std::path::Path>) -> Result<PathBuf> {
    match given {
        Some(d) => Ok(d.to_path_buf()),
        None => Ok(crate::core::data::default_dir()?),
    }
}
