//! A network given as a list of layers on the GPU: the [`GpuTrainer`]
//! driver and the [`GpuEvaluator`] over a [`GpuSequential`], with
//! evaluation in chunks sized for the list's largest buffer; the gradient
//! of one batch (`verify`, tests); and [`evaluator`], which evaluates any
//! network's parameters.
//!
//! Imports `context`, `error`, `eval`, `ops`, `sequential`, `stages` and
//! `trainer` (the top of `src/gpu`).

use std::sync::Arc;

use super::context::GpuContext;
use super::error::{GpuError, Result};
use super::eval::{GpuEvaluator, ParamsEvaluator};
use super::ops::{DeviceDataset, StepNet, read_stats};
use super::sequential::{GpuSequential, chunk_rows};
use super::stages::Stages;
use super::trainer::{GpuTrainer, StepWorkspace};
use crate::core::data::{Dataset, Mnist};
use crate::core::limits::MAX_INDICES_PER_SUBMIT;
use crate::core::model::Params;
use crate::core::optim::StepRule;

impl GpuTrainer<GpuSequential> {
    /// Uploads the data and `params` (a list network, whose stages are
    /// `stages`) and builds every dispatch; `slots` steps a submission, or
    /// fewer where they would carry more than [`MAX_INDICES_PER_SUBMIT`]
    /// batch indices.
    pub fn for_list(
        ctx: Arc<GpuContext>,
        (params, stages): (&Params, Stages),
        data: &Mnist,
        (batch, slots): (usize, usize),
        lr: f32,
        rule: &StepRule,
    ) -> Result<Self> {
        let slots = slots.min(MAX_INDICES_PER_SUBMIT / batch.max(1)).max(1);
        let eval_rows = eval_rows(&ctx, &stages, data);
        let train_data = DeviceDataset::upload(&ctx, "train", &data.train)?;
        let test_data = DeviceDataset::upload(&ctx, "test", &data.test)?;
        let net = GpuSequential::new(ctx, params, stages, true)?;
        let step = StepWorkspace::new(&net, &train_data, batch, slots, rule, true, lr)?;
        let eval_act = net.batch_buffers(eval_rows, false)?;
        GpuTrainer::assemble(net, step, eval_act, [&train_data, &test_data])
    }
}

impl GpuEvaluator<GpuSequential> {
    /// [`GpuEvaluator::new`] for a list network (`params.arch.layers`,
    /// whose stages are `stages`).
    pub fn for_list(
        ctx: Arc<GpuContext>,
        (params, stages): (&Params, Stages),
        test: &Dataset,
    ) -> Result<Self> {
        let rows = chunk_rows(&ctx, &stages, test.len());
        let data = DeviceDataset::upload(&ctx, "test", test)?;
        let net = GpuSequential::new(ctx, params, stages, false)?;
        let act = net.batch_buffers(rows, false)?;
        GpuEvaluator::assemble(net, act, data)
    }
}

/// A GPU evaluation of `params` on `test`, whichever network they hold.
pub fn evaluator(
    ctx: Arc<GpuContext>,
    params: &Params,
    test: &Dataset,
) -> Result<Box<dyn ParamsEvaluator>> {
    Ok(match params.arch.list_plan() {
        Some(plan) => {
            let stages = Stages::new(&plan).map_err(|e| GpuError::Layers(e.to_string()))?;
            Box::new(GpuEvaluator::for_list(ctx, (params, stages), test)?)
        }
        None => Box::new(GpuEvaluator::new(ctx, params, test)?),
    })
}

/// The GPU's loss and gradient (in the host arena's layout) at training
/// step `step` for every image of `batch`, through the same gather,
/// forward and backward dispatches as training, with the gradient stored
/// instead of applied (weight decay and Dropout's seed from `rule`).
pub fn list_gradient(
    ctx: Arc<GpuContext>,
    (params, stages): (&Params, Stages),
    batch: &Dataset,
    (rule, step): (&StepRule, u64),
) -> Result<(f64, Vec<f64>)> {
    let data = DeviceDataset::upload(&ctx, "batch", batch)?;
    let net = GpuSequential::new(ctx.clone(), params, stages, true)?;
    let mut work = StepWorkspace::new(&net, &data, batch.len(), 1, rule, false, 0.0)?;
    let indices: Vec<u32> = (0..batch.len() as u32).collect();
    let mut enc = ctx.device.create_command_encoder(&Default::default());
    work.encode(&ctx, &[indices], step, 0.0, &mut enc);
    ctx.queue.submit([enc.finish()]);
    let stats = read_stats(&ctx, &work.stats)?;
    Ok((stats.mean_loss(), net.read_grads()?))
}

/// Images per evaluation chunk of the training and test splits.
pub fn eval_rows(ctx: &GpuContext, stages: &Stages, data: &Mnist) -> usize {
    chunk_rows(ctx, stages, data.train.len().max(data.test.len()))
}
