//! How much memory the CPU reference path needs, estimated before it runs,
//! and the limit it is held to ([`crate::core::limits::DEFAULT_CPU_MEMORY`],
//! raised with `GPU_NET_CPU_MEMORY`). Without it, `--device cpu --batch
//! 1048576` reached 13 GB resident within 40 seconds before anything said no.
//!
//! The estimate is an upper bound taken from measurement (a test holds it
//! between the peak the allocator sees and 2.5 times that): per row, f64
//! copies of the input (the batch, the forward's copy, Affine's kept input:
//! 3), of each hidden layer's output (Affine, Relu, the gradients flowing
//! back: 4; Batch Normalization and Dropout keep as many again) and of the
//! logits (4); and whole arenas: writing a checkpoint holds four copies of
//! the parameters and of each optimizer state array (the trainer's, the
//! checkpoint's, its tensors' bytes, the file's bytes), and one more.

use crate::core::limits::{self, CPU_MEMORY_VAR};
use crate::core::model::Arch;
use crate::core::network::{Layer, Values};

/// Rows the CPU path evaluates at once (`CpuTrainer::evaluate`).
pub const EVAL_ROWS: usize = 1000;

/// Rows the CPU path evaluates a list network at once: its convolutions
/// keep several hundred thousand values an image.
pub const LIST_EVAL_ROWS: usize = 100;

/// Rows the CPU path evaluates `arch` at once.
pub fn eval_rows(arch: &Arch) -> usize {
    match arch.layers {
        Some(_) => LIST_EVAL_ROWS,
        None => EVAL_ROWS,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    #[error(
        "{what} needs about {} of memory on the CPU path, over the limit of {}; {remedy}raise the limit with {CPU_MEMORY_VAR}={}",
        size_text(*need),
        size_text(*limit),
        suggest(*need)
    )]
    TooLarge {
        what: String,
        need: u64,
        limit: u64,
        /// What the command could change instead, ending in ", or ".
        remedy: String,
    },
    #[error(transparent)]
    Limit(#[from] limits::BadSize),
}

/// A size past the memory limit, not memory that ran out.
impl crate::core::error::LayerError for MemoryError {
    fn is_usage(&self) -> bool {
        matches!(self, MemoryError::Limit(_))
    }
}

/// "20.3 GiB", "64 MiB", "512 bytes".
fn size_text(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.0} MiB", b as f64 / (1u64 << 20) as f64),
        b => format!("{b} bytes"),
    }
}

/// A round limit above `need`: the next whole number of GiB.
fn suggest(need: u64) -> String {
    format!("{}G", need.div_ceil(1 << 30))
}

/// Bytes of f64 activations for `rows` rows of `arch`, with `copies` of
/// the input, of each hidden layer's output (doubled under Batch
/// Normalization or Dropout) and of the logits.
fn activations(arch: &Arch, rows: usize, copies: [u64; 3]) -> u64 {
    let last = arch.sizes.len() - 1;
    let extra = arch.batchnorm || arch.dropout > 0.0;
    let per_row: u64 = arch
        .sizes
        .iter()
        .enumerate()
        .map(|(l, &s)| {
            let c = match l {
                0 => copies[0],
                _ if l == last => copies[2],
                _ if extra => 2 * copies[1],
                _ => copies[1],
            };
            c * s as u64
        })
        .sum();
    8 * rows as u64 * (per_row + front_per_row(arch) + list_per_row(arch))
}

/// A list network's f64 values per image past its input and logits: per
/// layer its output, what its backward keeps and their gradients, and a
/// convolution's columns with their gradient.
fn list_per_row(arch: &Arch) -> u64 {
    let Some(plan) = arch.list_plan() else {
        return 0;
    };
    plan.layers
        .iter()
        .map(|p| {
            let columns = match (p.layer, p.output, p.weights) {
                (Layer::Convolution { .. }, Values::Image { h, w, .. }, Some(b)) => {
                    2 * (h * w * b.inputs) as u64
                }
                _ => 0,
            };
            4 * p.output.len() as u64 + columns
        })
        .sum()
}

/// A convolutional front's f64 values per image: im2col's columns and
/// their gradient, the convolution's output through Relu and pooling, and
/// their gradients (the pooled values are the first layer's input above).
fn front_per_row(arch: &Arch) -> u64 {
    arch.conv.map_or(0, |c| {
        let positions = arch.positions(1) as u64;
        positions * (2 * c.filter_len() as u64 + 6 * c.filter_num as u64)
    })
}

/// A training step's forward and backward.
fn activation_bytes(arch: &Arch, rows: usize) -> u64 {
    activations(arch, rows, [3, 4, 4])
}

/// A forward pass alone (a worker of the numerical gradient; the batch is
/// shared).
fn forward_bytes(arch: &Arch, rows: usize) -> u64 {
    activations(arch, rows, [2, 3, 2])
}

/// Bytes of one parameter arena in f64.
fn arena_bytes(arch: &Arch) -> u64 {
    8 * arch.arena_len() as u64
}

/// Training (or evaluating, `batch` 0) on the CPU path: a step of `batch`
/// rows or an evaluation chunk, whichever is larger, and the parameters
/// with `state_arrays` optimizer arrays.
pub fn training_bytes(arch: &Arch, batch: usize, state_arrays: usize) -> u64 {
    let arenas = 4 * (1 + state_arrays as u64) + 1;
    activation_bytes(arch, batch.max(eval_rows(arch))) + arena_bytes(arch) * arenas
}

/// `verify`'s CPU side: backprop at `batch`, and the numerical gradient's
/// `threads` workers, each with its own parameters and forward pass (and
/// the arenas of the parameters, the gradient, the numerical gradient and
/// its truncation estimate).
pub fn verify_bytes(arch: &Arch, batch: usize, threads: usize) -> u64 {
    activation_bytes(arch, batch)
        + threads as u64 * forward_bytes(arch, batch)
        + arena_bytes(arch) * (4 + threads as u64)
}

/// The limit in force: `GPU_NET_CPU_MEMORY`, or the default.
pub fn limit() -> Result<u64, MemoryError> {
    Ok(limits::env_size(
        CPU_MEMORY_VAR,
        limits::DEFAULT_CPU_MEMORY,
    )?)
}

/// Refuses `need` bytes over the limit; `what` says what needs them, naming
/// the flags that set it.
pub fn check(what: impl FnOnce() -> String, need: u64) -> Result<(), MemoryError> {
    check_or(what, need, "use a smaller --batch or --hidden, or ")
}

/// [`check`], for a command whose flags offer `remedy` (ending in ", or ")
/// instead of a smaller batch or network.
pub fn check_or(what: impl FnOnce() -> String, need: u64, remedy: &str) -> Result<(), MemoryError> {
    let limit = limit()?;
    if need > limit {
        return Err(MemoryError::TooLarge {
            what: what(),
            need,
            limit,
            remedy: remedy.into(),
        });
    }
    Ok(())
}
