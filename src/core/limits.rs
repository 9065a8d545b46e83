//! The documented range of every numeric flag, and how much a run may
//! allocate: one place for the numbers the CLI enforces and docs/cli.md lists.
//!
//! Every bound is there for a reason a user can be told: a count past it
//! would overflow a counter, wrap a 32-bit step number on the GPU, or make a
//! buffer that no machine holds. Values inside a range still meet the
//! device's and the host's own checks (the GPU's binding limits, the CPU
//! path's memory limit, the training set's size).

/// Largest minibatch (2^20): more is surely a typo, and its host buffers
/// alone would be gigabytes.
pub const MAX_BATCH: usize = 1 << 20;

/// Largest `--iters` (10^9). Dropout's masks and Adam's step count take the
/// step as a u32 on the GPU, and `iters · batch` (samples, for samples/s)
/// must not overflow: 10^9 · 2^20 < 2^63.
pub const MAX_ITERS: usize = 1_000_000_000;

/// Largest `--epochs`, `--trials` and experiment `--iters` (10^5).
pub const MAX_EPOCHS: usize = 100_000;

/// Largest `--steps-per-submit` (1024): every step of a submission has its
/// own gather, Dropout and optimizer dispatches (and their uniforms), so
/// the count is what the device holds per submission, not a free knob.
pub const MAX_STEPS_PER_SUBMIT: usize = 1024;

/// Most batch indices one submission carries (2^22, 16 MB as u32). The GPU's
/// index buffer and the host's list of batches are both this big at most:
/// at large batches a submission holds fewer steps than asked.
pub const MAX_INDICES_PER_SUBMIT: usize = 1 << 22;

/// Largest `bench --repeats` (1000).
pub const MAX_REPEATS: usize = 1000;

/// Longest `bench --seconds` (one hour per timed run).
pub const MAX_SECONDS: f64 = 3600.0;

/// Weight scales of the batch-norm experiment (`--stds`): the book's 16.
pub const MAX_STDS: usize = 16;

/// A positive real setting the GPU takes as an f32 (`--lr`, `--init`'s
/// standard deviation, `--weight-decay`): `s` as a number, refused where it
/// is not positive (or, with `zero`, zero), or where f32 would make it
/// infinite or 0.
pub fn positive_f32(s: &str, zero: bool) -> Result<f64, String> {
    let kind = if zero {
        "number >= 0"
    } else {
        "positive number"
    };
    let v = match s.parse::<f64>() {
        Ok(v) if v.is_finite() && (v > 0.0 || (zero && v == 0.0)) => v,
        _ => return Err(format!("{s:?} is not a {kind}")),
    };
    let f = v as f32;
    if f.is_infinite() || (f == 0.0 && v != 0.0) {
        return Err(format!(
            "{s:?} is outside f32's range, where the GPU computes ({:.1e} to {:.1e})",
            f32::from_bits(1),
            f32::MAX
        ));
    }
    Ok(v)
}

/// Largest IDX data section read by default (1 GiB; MNIST's training images
/// are 47 MB, EMNIST's largest 547 MB). A header claiming more is refused
/// before any data is read, so a small gzip file cannot make memory follow a
/// decompressed size of its choosing.
pub const DEFAULT_IDX_LIMIT: u64 = 1 << 30;

/// Raises (or lowers) [`DEFAULT_IDX_LIMIT`]: bytes, or with a K, M, G or T
/// suffix (powers of 1024), e.g. `GPU_NET_IDX_LIMIT=4G`.
pub const IDX_LIMIT_VAR: &str = "GPU_NET_IDX_LIMIT";

/// Memory the CPU reference path may use for one run (4 GiB by default):
/// parameters, gradients and optimizer state, and one training step's
/// activations.
pub const DEFAULT_CPU_MEMORY: u64 = 4 << 30;

/// Raises (or lowers) [`DEFAULT_CPU_MEMORY`], as [`IDX_LIMIT_VAR`].
pub const CPU_MEMORY_VAR: &str = "GPU_NET_CPU_MEMORY";

/// A limit variable whose value is not a size.
#[derive(Debug, thiserror::Error)]
#[error("{var}={value:?} is not a size (expected bytes, or a number with K, M, G or T, e.g. 4G)")]
pub struct BadSize {
    pub var: &'static str,
    pub value: String,
}

/// A size past its limit.
impl crate::core::error::LayerError for BadSize {
    fn is_usage(&self) -> bool {
        true
    }
}

/// Bytes in `s`: `4096`, `512K`, `64M`, `4G`, `1T` (powers of 1024; a
/// trailing `B` or `iB` is allowed). `None` when it is not one, or overflows.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let upper = s.to_ascii_uppercase();
    let body = upper
        .strip_suffix("IB")
        .or_else(|| upper.strip_suffix('B'))
        .unwrap_or(&upper);
    let (digits, shift) = match body.chars().last()? {
        'K' => (&body[..body.len() - 1], 10),
        'M' => (&body[..body.len() - 1], 20),
        'G' => (&body[..body.len() - 1], 30),
        'T' => (&body[..body.len() - 1], 40),
        _ => (body, 0),
    };
    let n: u64 = digits.trim().parse().ok()?;
    n.checked_mul(1u64 << shift)
}

/// The value of the size variable `var`, or `default` when it is unset.
pub fn env_size(var: &'static str, default: u64) -> Result<u64, BadSize> {
    match std::env::var(var) {
        Err(std::env::VarError::NotPresent) => Ok(default),
        Ok(v) => parse_size(&v).ok_or(BadSize { var, value: v }),
        Err(std::env::VarError::NotUnicode(v)) => Err(BadSize {
            var,
            value: v.to_string_lossy().into_owned(),
        }),
    }
}

/// A count flag: an integer in `lo..=hi`, with a message clap puts after the flag.
/// A convolution's sizes (`--filter-num`, `--filter-size`, `--stride`,
/// `--pad`, each of `--input-dim`): 2^16, past any image or filter bank
/// the book's networks have; the shapes are then checked against each
/// other and the network's parameter limit.
pub const MAX_CONV_SIZE: usize = 1 << 16;

pub fn count(s: &str, lo: usize, hi: usize) -> Result<usize, String> {
    match s.trim().parse::<u128>() {
        Ok(n) if n < lo as u128 => Err(format!("{n} is below the least value, {lo}")),
        Ok(n) if n > hi as u128 => Err(format!("{n} is over the limit of {hi}")),
        Ok(n) => Ok(n as usize),
        Err(_) => Err(format!("{s:?} is not a whole number in {lo}..={hi}")),
    }
}

/// Steps recorded into one GPU submission: what was asked for, but never
/// more than the run will take (`iters`), nor more than
/// [`MAX_INDICES_PER_SUBMIT`] batch indices, and always at least one.
pub fn submit_slots(batch: usize, steps_per_submit: usize, iters: usize) -> usize {
    steps_per_submit
        .min(iters)
        .min(MAX_INDICES_PER_SUBMIT / batch.max(1))
        .max(1)
}

/// Batches the training loop draws and hands to the device at once: a few
/// submissions' worth (so the GPU never waits for the host), within the
/// same bound on indices.
pub fn steps_per_call(batch: usize, slots: usize) -> usize {
    (slots * 4)
        .min(MAX_INDICES_PER_SUBMIT / batch.max(1))
        .max(1)
}
