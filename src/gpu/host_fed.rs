//! The network fed from host memory, one batch at a time: the inputs (any
//! f32 values, not only the u8 dataset the training step gathers) and the
//! labels are written into the activations' first buffers, then the same
//! forward, SoftmaxWithLoss and backward dispatches as training run. What
//! the Python bindings' `predict`, `loss`, `accuracy` and `gradient` use.
//!
//! Imports `budget`, `context`, `dispatch`, `error`, `eval`, `layout` and
//! `net` (the same rank as `trainer`; neither imports the other).

use std::sync::Arc;

use super::budget::{Plan, largest_scratch};
use super::context::GpuContext;
use super::dispatch::record_all;
use super::error::{GpuError, Result};
use super::eval::{eval_chunk, fitting_rows};
use super::kernels::Stats;
use super::layout::{padded, padded_rows};
use super::net::{Activations, GpuNet, GradTarget, Mode, Op, read_stats, stats_buffer};
use crate::dropout_mask::layer_key;
use crate::model::Params;

/// Batch sizes whose passes are kept made.
const KEPT_PASSES: usize = 3;

/// The activations and recorded passes for one batch size.
struct Passes {
    act: Activations,
    stats: wgpu::Buffer,
    /// Forward in training form (batch statistics, Dropout's mask), with dY.
    train: Vec<Op>,
    backward: Vec<Op>,
    /// Forward in evaluation form, loss and accuracy only.
    eval: Vec<Op>,
}

/// Which form a forward pass takes, as the book's `train_flg`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    Train,
    Eval,
}

pub struct HostFedNet {
    pub net: GpuNet,
    weight_decay: f32,
    /// Seeds Dropout's masks, with the step and the layer.
    seed: u64,
    /// Training-form forwards so far: the next is step `steps + 1`.
    steps: u64,
    /// The passes of the batch sizes used last, the latest first (a
    /// training loop's batch and an evaluation's chunk both stay made).
    passes: Vec<Passes>,
}

impl HostFedNet {
    pub fn new(
        ctx: Arc<GpuContext>,
        params: &Params,
        weight_decay: f64,
        seed: u64,
    ) -> Result<Self> {
        let mut plan = Plan::default();
        plan.net(&params.arch);
        plan.check(&ctx)?;
        Ok(HostFedNet {
            net: GpuNet::new(ctx, params)?,
            weight_decay: weight_decay as f32,
            seed,
            steps: 0,
            passes: Vec::new(),
        })
    }

    /// Most rows one pass takes: as many as keep every activation within
    /// one storage binding.
    pub fn max_rows(&self) -> usize {
        fitting_rows(&self.net.ctx, &self.net.arch)
    }

    /// Rows an evaluation over many images takes at a time (the CLI's chunk).
    pub fn chunk_rows(&self) -> usize {
        eval_chunk(&self.net.ctx, &self.net.arch)
    }

    /// Training-form forwards run so far (Dropout's step numbers go on from here).
    pub fn steps_done(&self) -> u64 {
        self.steps
    }

    /// Sets the steps done (after training elsewhere on these parameters).
    pub fn set_steps(&mut self, steps: u64) {
        self.steps = steps;
    }

    /// Replaces the weights, biases, `gamma` and `beta` (not the running
    /// statistics, which stay as the training-form passes left them).
    pub fn write_params(&self, params: &Params) {
        self.net.write_arena(params);
    }

    /// Puts the passes for `rows` first, making them unless they are kept.
    fn ensure_passes(&mut self, rows: usize) -> Result<()> {
        if rows == 0 || rows > self.max_rows() {
            return Err(GpuError::TooLarge {
                what: format!("a batch of {rows} rows in one pass"),
                need: rows as u64,
                have: self.max_rows() as u64,
                unit: "rows",
            });
        }
        if let Some(i) = self.passes.iter().position(|p| p.act.rows == rows) {
            let p = self.passes.remove(i);
            self.passes.insert(0, p);
            return Ok(());
        }
        self.passes.truncate(KEPT_PASSES - 1); // frees the oldest before making more
        let p = self.make_passes(rows)?;
        self.passes.insert(0, p);
        Ok(())
    }

    fn make_passes(&self, rows: usize) -> Result<Passes> {
        let (ctx, arch, net) = (&self.net.ctx, &self.net.arch, &self.net);
        let mut plan = Plan::default();
        plan.activations(arch, rows);
        let scratch = largest_scratch(ctx, arch, &[(rows, true)]);
        plan.matmul_scratch(&scratch);
        plan.check(ctx)?;
        net.kernels.matmul.reserve(ctx, &scratch);
        let act = net.activations(rows)?;
        let stats = stats_buffer(ctx, "host-fed stats");
        Ok(Passes {
            train: net.forward(&act, rows, &stats, true, Mode::Train { slots: 1 })?,
            backward: net.backward(&act, GradTarget::Store, self.weight_decay)?,
            eval: net.forward(&act, rows, &stats, false, Mode::Eval)?,
            act,
            stats,
        })
    }

    /// Writes `x` (rows × inputs, row-major) in the GPU layout, with the
    /// ones column that carries the bias, and the labels.
    fn write_batch(&self, p: &Passes, x: &[f32], t: &[u32]) {
        let (inputs, stride) = (self.net.arch.inputs(), padded(self.net.arch.inputs()));
        let mut padded_x = vec![0f32; padded_rows(t.len()) * stride];
        for (dst, src) in padded_x
            .chunks_exact_mut(stride)
            .zip(x.chunks_exact(inputs))
        {
            dst[..inputs].copy_from_slice(src);
            dst[inputs] = 1.0;
        }
        let queue = &self.net.ctx.queue;
        queue.write_buffer(&p.act.x, 0, bytemuck::cast_slice(&padded_x));
        queue.write_buffer(&p.act.t, 0, bytemuck::cast_slice(t));
    }

    /// One pass over a batch: the forward in `form` (and, when `backward`,
    /// the gradient into the gradient arena). Returns the loss and
    /// accuracy sums; the logits stay in the last activation.
    fn run(&mut self, x: &[f32], t: &[u32], form: Form, backward: bool) -> Result<Stats> {
        // A pass refused here takes no step: Dropout's masks stay in step.
        self.ensure_passes(t.len())?;
        let step = if form == Form::Train {
            self.steps += 1;
            Some(self.steps)
        } else {
            None
        };
        let p = &self.passes[0];
        let forward = if form == Form::Train {
            &p.train
        } else {
            &p.eval
        };
        for op in forward {
            if let (Op::Dropout { layer, slots }, Some(step)) = (op, step) {
                slots[0].set_key(&self.net.ctx, layer_key(self.seed, step as u32, *layer));
            }
        }
        self.write_batch(p, x, t);
        let ctx = &self.net.ctx;
        let mut enc = ctx.device.create_command_encoder(&Default::default());
        enc.clear_buffer(&p.stats, 0, None);
        let back = if backward { &p.backward[..] } else { &[] };
        record_all(
            &mut enc,
            "host-fed pass",
            forward.iter().chain(back).map(|op| op.dispatch(0)),
        );
        ctx.queue.submit([enc.finish()]);
        read_stats(ctx, &p.stats)
    }

    /// The forward in `form`: loss and accuracy sums over the batch.
    pub fn forward(&mut self, x: &[f32], t: &[u32], form: Form) -> Result<Stats> {
        self.run(x, t, form, false)
    }

    /// The logits (rows × outputs) of the last forward.
    pub fn logits(&self) -> Result<Vec<f32>> {
        let p = self.passes.first().expect("a forward ran");
        let (o, stride) = (self.net.arch.outputs(), padded(self.net.arch.outputs()));
        let rows = p.act.rows;
        let z = self
            .net
            .ctx
            .read_f32(p.act.z.last().unwrap(), 0, rows * stride, "the logits")?;
        Ok(z.chunks_exact(stride)
            .flat_map(|r| &r[..o])
            .copied()
            .collect())
    }

    /// Backprop at the next training step: the loss and accuracy sums of
    /// the training-form forward and every parameter's gradient (weight
    /// decay included), as the book's `gradient(x, t)`.
    pub fn gradient(&mut self, x: &[f32], t: &[u32]) -> Result<(Stats, Params)> {
        let stats = self.run(x, t, Form::Train, true)?;
        Ok((stats, self.net.read_grads()?))
    }

    /// The parameters and running statistics on the GPU.
    pub fn read_params(&self) -> Result<Params> {
        self.net.read_params()
    }
}
