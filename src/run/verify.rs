//! `verify`: the numerical gradient, CPU backprop and GPU backprop of one
//! batch side by side, on a network the request describes, after the checks
//! that keep it from running for hours or past the machine's memory.
//!
//! Part of `run`: imports `config`, `cpu::memory`, `data`, `error`, `gpu`,
//! `gradient_check`.

use std::path::PathBuf;
use std::sync::Arc;

use crate::core::config::RunConfig;
use crate::core::data;
use crate::core::error::{Error, Result};
use crate::cpu::memory as cpu_memory;
use crate::gpu::{GpuOptions, tune};
use crate::run::gradient_check::{self, Coverage, VerifyConfig, VerifyReport};

use super::request::{check_batchnorm_batch, data_dir};

/// A gradient check as the user asks for it.
#[derive(Clone, Debug, Default)]
pub struct VerifyRequest {
    /// The network (hidden sizes, front, Batch Normalization, Dropout,
    /// weight decay, init, seed); the rest of a run's settings is unused.
    pub config: RunConfig,
    /// The data folder; else where MNIST is found.
    pub data: Option<PathBuf>,
    /// The first `batch` training images.
    pub batch: usize,
    /// Elements checked per tensor (all when None, unless that would take
    /// too long: then a sample, said in the report).
    pub sample: Option<usize>,
    /// Every tolerance times this, in (0, 1].
    pub tolerance_scale: f64,
    pub gpu: GpuOptions,
}

/// Runs the check; `say` hears what the numerical gradient will compute
/// before it takes its seconds.
pub fn verify(req: &VerifyRequest, say: &mut dyn FnMut(&str)) -> Result<VerifyReport> {
    let dir = data_dir(req.data.as_deref())?;
    let data = data::load_dir(&dir)?;
    check_batchnorm_batch(req.config.batchnorm, req.batch, "--batch")?;
    let arch = req.config.arch(data.train.pixels())?;
    // The images come first: what they do not hold needs no cost estimate.
    if req.batch > data.train.len() {
        return Err(Error::Usage(format!(
            "--batch {} is more than the {} training images",
            req.batch,
            data.train.len()
        )));
    }
    let (sample, sampled_automatically) = coverage(req, &arch)?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    cpu_memory::check(
        || format!("verify of {} at --batch {}", arch.shape(), req.batch),
        cpu_memory::verify_bytes(&arch, req.batch, threads),
    )?;
    let ctx = Arc::new(tune::open(&req.gpu)?);
    let cfg = VerifyConfig {
        batch: req.batch,
        seed: req.config.seed,
        sample,
        sampled_automatically,
        init: req.config.init,
        weight_decay: req.config.weight_decay,
        tolerance_scale: req.tolerance_scale,
    };
    let elements: usize = arch
        .tensors()
        .iter()
        .map(|t| sample.map_or(t.len(), |k| t.len().min(k)))
        .sum();
    say(&format!(
        "numerical gradient: {} elements, two losses of the batch each...",
        thousands(elements)
    ));
    gradient_check::verify(ctx, &arch, &data.train, &cfg, None)
}

/// The elements checked per tensor, and whether that is verify's own
/// sample: without `sample`, a check that would run for hours samples
/// instead, and one too large even for that is refused.
fn coverage(req: &VerifyRequest, arch: &crate::core::model::Arch) -> Result<(Option<usize>, bool)> {
    if let Some(k) = req.sample {
        return Ok((Some(k), false));
    }
    match gradient_check::automatic_coverage(arch, req.batch) {
        Coverage::All => Ok((None, false)),
        Coverage::Sample { per_tensor, .. } => Ok((Some(per_tensor), true)),
        Coverage::TooLarge { least_cost } => {
            let hidden: Vec<String> = req.config.hidden.iter().map(|h| h.to_string()).collect();
            Err(Error::Usage(format!(
                "--batch {} --hidden {}: even one element per tensor takes {least_cost:.1e} multiply-adds of numerical gradient, over verify's budget of {:.1e}; use a smaller --batch or --hidden, or --sample K to insist",
                req.batch,
                hidden.join(","),
                gradient_check::CHECK_BUDGET
            )))
        }
    }
}

/// 39760 as `39,760`.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
