//! `eval`: a checkpoint's loss and accuracy on the test set, per class, and
//! the confusion matrix, on the device asked for (the GPU evaluates with
//! only the parameters, the test split and one chunk's activations).
//!
//! Part of `run`: imports `checkpoint`, `cpu::memory`, `data`, `device`,
//! `error`, `evaluation`, `gpu`, and `report` (the misclassified digits'
//! figure).

use std::path::PathBuf;

use crate::core::data;
use crate::core::error::{Context, Error, Result};
use crate::cpu::memory as cpu_memory;
use crate::run::checkpoint::Checkpoint;
use crate::run::device::{Device, DeviceChoice, Workspace};

use super::request::data_dir;
use crate::gpu::GpuOptions;
use crate::gpu::list_trainer::evaluator;
use crate::report::misclassified;
use crate::report::predict::image_format;
use crate::run::evaluation::{EvalReport, evaluate};

/// An evaluation as the user asks for it.
#[derive(Clone, Debug, Default)]
pub struct EvalRequest {
    /// The checkpoint.
    pub model: PathBuf,
    /// The data folder (the test set is read from it); else where MNIST is found.
    pub data: Option<PathBuf>,
    pub device: DeviceChoice,
    pub gpu: GpuOptions,
    /// Draw the first misclassified test digits here (`--misclassified`).
    pub misclassified: Option<PathBuf>,
}

/// Evaluates `req.model`; `warn` hears why `Auto` fell back to the CPU.
pub fn eval(req: &EvalRequest, warn: &mut dyn FnMut(&str)) -> Result<EvalReport> {
    if let Some(path) = &req.misclassified {
        image_format(path).context("--misclassified")?;
    }
    let ck = Checkpoint::read(&req.model)?;
    let dir = data_dir(req.data.as_deref())?;
    let data = data::load_test_only(&dir)?;
    let arch = &ck.params.arch;
    let name = req.model.display().to_string();
    if arch.inputs() != data.test.pixels() || arch.outputs() != data::CLASSES {
        return Err(Error::Failed(format!(
            "{name}: the network {} does not fit the data's {} pixels and {} classes",
            arch.shape(),
            data.test.pixels(),
            data::CLASSES
        )));
    }
    let device = Device::open(req.device, &req.gpu, &mut |e| {
        warn(&format!("warning: {e}; evaluating on the CPU instead"))
    })?;
    let labels = &data.test.labels;
    let report = match device {
        Device::Gpu(ctx) => {
            let mut evaluator = evaluator(ctx, &ck.params, &data.test)?;
            evaluate(evaluator.as_mut(), labels, data::CLASSES, &name)?
        }
        Device::Cpu => {
            cpu_memory::check_or(
                || format!("evaluating {name} ({})", arch.shape()),
                cpu_memory::training_bytes(arch, 0, ck.config.optimizer.kind.state_arrays()),
                "evaluate on the GPU (--device gpu), or ",
            )?;
            // A step workspace of batch 2 and one slot: eval never trains.
            let workspace = Workspace { batch: 2, slots: 1 };
            let rule = ck.config.rule();
            let mut trainer = device.trainer(&ck.params, &data, workspace, ck.config.lr, &rule)?;
            evaluate(trainer.as_mut(), labels, data::CLASSES, &name)?
        }
    };
    if !report.loss.is_finite() {
        return Err(Error::Failed(format!(
            "{name}: the test loss is {} on {}: these weights do not evaluate to numbers",
            report.loss, report.device
        )));
    }
    if let Some(path) = &req.misclassified {
        misclassified::write(&data.test, &report.misclassified, path).context("--misclassified")?;
    }
    Ok(report)
}
