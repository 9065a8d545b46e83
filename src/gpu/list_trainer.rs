//! A network given as a list of layers, trained on the GPU: the
//! [`GpuTrainer`] driver over a [`GpuSequential`], with its evaluation in
//! chunks sized for the list's largest buffer.
//!
//! Imports `context`, `error`, `eval`, `ops`, `sequential`, `stages` and `trainer`.

use std::collections::VecDeque;
use std::sync::Arc;

use super::context::GpuContext;
use super::error::Result;
use super::eval::EvalWorkspace;
use super::layout::matrix_bytes;
use super::ops::{DeviceDataset, read_stats};
use super::sequential::GpuSequential;
use super::sequential::column_bytes;
use super::stages::Stages;
use super::trainer::{GpuTrainer, StepWorkspace};
use crate::core::data::{Dataset, Mnist};
use crate::core::limits::MAX_INDICES_PER_SUBMIT;
use crate::core::model::Params;
use crate::core::optim::StepRule;

/// Images per evaluation chunk at most: a list's activations per image
/// are many times an MLP's.
const LIST_EVAL_CHUNK: usize = 1000;

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
        let eval_act = net.activations(eval_rows, false)?;
        let evals = [
            EvalWorkspace::new(&net, &train_data, "train", &eval_act)?,
            EvalWorkspace::new(&net, &test_data, "test", &eval_act)?,
        ];
        net.ctx.check()?;
        Ok(GpuTrainer {
            net,
            step,
            eval_act,
            evals,
            in_flight: VecDeque::new(),
            steps: 0,
        })
    }
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

/// Images per evaluation chunk: at most [`LIST_EVAL_CHUNK`] and the larger
/// split, fewer (a multiple of 4) until every value and a convolution's
/// columns fit one storage binding.
pub fn eval_rows(ctx: &GpuContext, stages: &Stages, data: &Mnist) -> usize {
    let mut rows = LIST_EVAL_CHUNK.min(data.train.len().max(data.test.len()));
    while rows > 4 && largest_buffer(stages, rows) > ctx.binding_limit() {
        rows = (rows / 2).next_multiple_of(4);
    }
    rows
}

/// The largest buffer of `rows` images: a value or a convolution's columns.
pub fn largest_buffer(stages: &Stages, rows: usize) -> u64 {
    let values = stages
        .values
        .iter()
        .map(|v| matrix_bytes(v.rows(rows), v.cols()));
    let columns = stages
        .stages
        .iter()
        .filter_map(|s| column_bytes(s, stages, rows));
    values.chain(columns.map(|c| c.1)).max().unwrap_or(0)
}
