//! What a device must do to be trained: the [`Trainer`] trait the CPU
//! reference (`cpu::trainer`) and the GPU (`gpu::trainer`) implement, the
//! precision each computes in, and the two splits of a dataset. The epoch
//! loop that drives a trainer is `run::epoch_loop`.
//!
//! May import: model, error.

use crate::core::error::Result;
use crate::core::model::Params;

/// The arithmetic a device trains in: the CPU reference path's f64 or the
/// GPU's f32 (checkpoints store values in it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precision {
    F32,
    F64,
}

impl Precision {
    pub fn describe(self) -> &'static str {
        match self {
            Precision::F32 => "f32 (GPU)",
            Precision::F64 => "f64 (CPU)",
        }
    }
}

/// What one device must do for the training loop; `P`, the parameters as
/// the host keeps them (an `Arch`'s [`Params`], or a list network's).
pub trait Trainer<P = Params> {
    /// The device in words, e.g. `"cpu (f64 reference)"`.
    fn device(&self) -> String;
    fn precision(&self) -> Precision;
    /// One training step per batch of training-set indices, in order.
    fn train_steps(&mut self, batches: &[Vec<u32>], lr: f32) -> Result<()>;
    /// Mean training loss (cross-entropy, without weight decay) of the steps
    /// run since the last call.
    fn take_mean_loss(&mut self) -> Result<f64>;
    /// Each step's loss since the last call, in order, where the trainer
    /// logs them (the book's Trainer keeps every step's); `None` where it
    /// keeps only their mean ([`Trainer::take_mean_loss`]).
    fn take_step_losses(&mut self) -> Result<Option<Vec<f64>>> {
        Ok(None)
    }
    /// (mean loss, accuracy) over a whole split.
    fn evaluate(&mut self, split: Split) -> Result<(f64, f64)>;
    /// The class given to each image of a split (the first largest logit).
    fn predictions(&mut self, split: Split) -> Result<Vec<u8>>;
    /// The current parameters.
    fn params(&mut self) -> Result<P>;
    /// The optimizer's state arrays, in the host arena's layout.
    fn optimizer_state(&mut self) -> Result<Vec<Vec<f64>>>;
    /// Training steps taken so far.
    fn steps_done(&self) -> u64;
    /// Continues a run: the optimizer's state and the steps already taken
    /// (Adam's t and Dropout's step numbers go on from there).
    fn restore(&mut self, optimizer_state: &[Vec<f64>], steps: u64) -> Result<()>;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    Train,
    Test,
}
