//! The network fed from host memory, one batch at a time: the inputs (any
//! f32 values, not only the u8 dataset the training step gathers) and the
//! labels are written into the activations' first buffers, then the same
//! forward, SoftmaxWithLoss and backward dispatches as training run. What
//! the Python bindings' `predict`, `loss`, `accuracy` and `gradient` use.
//!
//! A call is one submission and one read-back: the pass, then copies of
//! what the caller wants (the sums, the logits, the gradients) into a
//! read-back buffer kept with the pass, mapped once. A round trip to the
//! GPU costs far more than a small pass; nothing is made per call.
//!
//! Either network: an `Arch`'s (`net`) or a list's (`sequential`), each
//! saying what a host-fed pass needs of it ([`HostFed`]).
//!
//! Imports `budget`, `context`, `dispatch`, `error`, `eval`, `layout`,
//! `net`, `ops` and `sequential` (the same rank as `trainer`; neither
//! imports the other).

use std::sync::Arc;

use super::budget::{Plan, largest_scratch};
use super::context::GpuContext;
use super::dispatch::record_all;
use super::error::{GpuError, Result};
use super::eval::{eval_chunk, fitting_rows};
use super::kernels::Stats;
use super::layout::{padded, padded_rows};
use super::net::GpuNet;
use super::ops::{Batch, GradTarget, Mode, Op, StepNet, stats_buffer};
use super::sequential::{GpuSequential, chunk_rows};
use crate::core::dropout_mask::layer_key;
use crate::core::model::Params;

/// What a host-fed pass needs of a network beside [`StepNet`].
pub trait HostFed: StepNet {
    /// Most rows one pass takes: as many as keep every buffer within one
    /// storage binding.
    fn max_rows(&self) -> usize;
    /// Rows an evaluation over many images takes at a time (the CLI's chunk).
    fn chunk_rows(&self) -> usize;
    /// Checks the device holds the buffers of a pass over `rows` rows, and
    /// makes what its products share.
    fn prepare(&self, rows: usize) -> Result<()>;
    /// Replaces the trained parameters, not any running statistics (which
    /// stay as the training-form passes left them).
    fn write_weights(&self, params: &Params);
}

impl HostFed for GpuNet {
    fn max_rows(&self) -> usize {
        fitting_rows(&self.ctx, &self.arch)
    }
    fn chunk_rows(&self) -> usize {
        eval_chunk(&self.ctx, &self.arch)
    }
    fn prepare(&self, rows: usize) -> Result<()> {
        let (ctx, arch) = (&self.ctx, &self.arch);
        let mut plan = Plan::new(ctx);
        plan.activations(arch, rows);
        let scratch = largest_scratch(ctx, arch, &[(rows, true)]);
        plan.matmul_scratch(&scratch);
        plan.check(ctx)?;
        self.kernels.matmul.reserve(ctx, &scratch);
        Ok(())
    }
    fn write_weights(&self, params: &Params) {
        self.write_arena(params);
    }
}

impl HostFed for GpuSequential {
    fn max_rows(&self) -> usize {
        chunk_rows(&self.ctx, &self.stages, usize::MAX)
    }
    fn chunk_rows(&self) -> usize {
        HostFed::max_rows(self)
    }
    /// The buffers are checked one binding each as they are made.
    fn prepare(&self, _rows: usize) -> Result<()> {
        Ok(())
    }
    fn write_weights(&self, params: &Params) {
        self.write_params(&params.values);
    }
}

/// Batch sizes whose passes are kept made.
const KEPT_PASSES: usize = 3;

/// The activations and recorded passes for one batch size.
struct Passes<N: StepNet> {
    act: N::Act,
    stats: wgpu::Buffer,
    /// What a call reads back, copied here in its submission: the sums,
    /// then the logits, then the gradients ([`Readback`]'s order).
    readback: wgpu::Buffer,
    /// The batch in the GPU layout, kept so a call allocates nothing.
    padded_x: Vec<f32>,
    /// Forward in training form (batch statistics, Dropout's mask), with dY.
    train: Vec<Op>,
    backward: Vec<Op>,
    /// Forward in evaluation form, loss and accuracy only.
    eval: Vec<Op>,
}

/// What one call brings back beside the loss and accuracy sums.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Wanted {
    logits: bool,
    grads: bool,
}

/// What one call brought back: the sums, and the logits (rows × outputs)
/// and the gradient arena where wanted (empty otherwise).
struct Readback {
    stats: Stats,
    logits: Vec<f32>,
    grads: Vec<f32>,
}

/// Which form a forward pass takes, as the book's `train_flg`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    Train,
    Eval,
}

pub struct HostFedNet<N: HostFed = GpuNet> {
    pub net: N,
    weight_decay: f32,
    /// Seeds Dropout's masks, with the step and the layer.
    seed: u64,
    /// Training-form forwards so far: the next is step `steps + 1`.
    steps: u64,
    /// The passes of the batch sizes used last, the latest first (a
    /// training loop's batch and an evaluation's chunk both stay made).
    passes: Vec<Passes<N>>,
}

impl HostFedNet<GpuNet> {
    pub fn new(
        ctx: Arc<GpuContext>,
        params: &Params,
        weight_decay: f64,
        seed: u64,
    ) -> Result<Self> {
        let mut plan = Plan::new(&ctx);
        plan.net(&params.arch);
        plan.check(&ctx)?;
        Ok(Self::with(GpuNet::new(ctx, params)?, weight_decay, seed))
    }
}

impl<N: HostFed> HostFedNet<N> {
    /// `net` fed from the host, its gradient with weight decay
    /// `weight_decay` and Dropout's masks seeded `seed`.
    pub fn with(net: N, weight_decay: f64, seed: u64) -> Self {
        HostFedNet {
            net,
            weight_decay: weight_decay as f32,
            seed,
            steps: 0,
            passes: Vec::new(),
        }
    }

    /// Most rows one pass takes: as many as keep every activation within
    /// one storage binding.
    pub fn max_rows(&self) -> usize {
        self.net.max_rows()
    }

    /// Rows an evaluation over many images takes at a time (the CLI's chunk).
    pub fn chunk_rows(&self) -> usize {
        self.net.chunk_rows()
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
        self.net.write_weights(params);
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
        if let Some(i) = self.passes.iter().position(|p| p.act.rows() == rows) {
            let p = self.passes.remove(i);
            self.passes.insert(0, p);
            return Ok(());
        }
        self.passes.truncate(KEPT_PASSES - 1); // frees the oldest before making more
        let p = self.make_passes(rows)?;
        self.passes.insert(0, p);
        Ok(())
    }

    fn make_passes(&self, rows: usize) -> Result<Passes<N>> {
        let (ctx, net) = (self.net.context(), &self.net);
        net.prepare(rows)?;
        let act = net.batch_buffers(rows, true)?;
        let stats = stats_buffer(ctx, "host-fed stats");
        let readback = ctx.read_back_buffer(
            "host-fed read-back",
            Stats::BYTES + self.logits_bytes(rows) + self.grads_bytes(),
        );
        Ok(Passes {
            readback,
            padded_x: vec![0.0; padded_rows(rows) * padded(self.net.arch().inputs())],
            train: net.forward_ops(&act, rows, &stats, true, Mode::Train { slots: 1 })?,
            backward: net.backward_ops(&act, GradTarget::Store, self.weight_decay, 1)?,
            eval: net.forward_ops(&act, rows, &stats, false, Mode::Eval)?,
            act,
            stats,
        })
    }

    /// Writes `x` (rows × inputs, row-major) into the first passes' kept
    /// buffer in the GPU layout, with the ones column that carries the bias
    /// (the padding stays zero), then it and the labels to the GPU.
    fn write_batch(&mut self, x: &[f32], t: &[u32]) {
        let inputs = self.net.arch().inputs();
        let p = &mut self.passes[0];
        let stride = p.padded_x.len() / padded_rows(t.len());
        for (dst, src) in p
            .padded_x
            .chunks_exact_mut(stride)
            .zip(x.chunks_exact(inputs))
        {
            dst[..inputs].copy_from_slice(src);
            dst[inputs] = 1.0;
        }
        let queue = &self.net.context().queue;
        queue.write_buffer(p.act.x(), 0, bytemuck::cast_slice(&p.padded_x));
        queue.write_buffer(p.act.t(), 0, bytemuck::cast_slice(t));
    }

    /// Bytes of the logits of `rows` rows as stored (padded rows).
    fn logits_bytes(&self, rows: usize) -> u64 {
        (rows * padded(self.net.arch().outputs())) as u64 * 4
    }

    fn grads_bytes(&self) -> u64 {
        self.net.arena_len() as u64 * 4
    }

    /// One pass over a batch in one submission: the forward in `form`
    /// (and, with `want.grads`, the gradient into the gradient arena), then
    /// the copies of what is wanted, read back with one map.
    fn run(&mut self, x: &[f32], t: &[u32], form: Form, want: Wanted) -> Result<Readback> {
        // A pass refused here takes no step: Dropout's masks stay in step.
        self.ensure_passes(t.len())?;
        let step = if form == Form::Train {
            self.steps += 1;
            Some(self.steps)
        } else {
            None
        };
        self.write_batch(x, t);
        let p = &self.passes[0];
        let forward = if form == Form::Train {
            &p.train
        } else {
            &p.eval
        };
        // A Dropout's backward, where it has one, takes its forward's key.
        for op in forward.iter().chain(&p.backward) {
            if let (Op::Dropout { layer, slots }, Some(step)) = (op, step) {
                let key = layer_key(self.seed, step as u32, *layer);
                slots[0].set_key(self.net.context(), key);
            }
        }
        let ctx = self.net.context();
        let mut enc = ctx.device.create_command_encoder(&Default::default());
        enc.clear_buffer(&p.stats, 0, None);
        let back = if want.grads { &p.backward[..] } else { &[] };
        record_all(
            &mut enc,
            "host-fed pass",
            forward.iter().chain(back).map(|op| op.dispatch(0)),
        );
        let mut at = 0;
        let mut copy = |from: &wgpu::Buffer, bytes: u64| {
            enc.copy_buffer_to_buffer(from, 0, &p.readback, at, bytes);
            at += bytes;
        };
        copy(&p.stats, Stats::BYTES);
        let logits_bytes = if want.logits {
            self.logits_bytes(t.len())
        } else {
            0
        };
        if want.logits {
            copy(self.net.logits(&p.act).0, logits_bytes);
        }
        if want.grads {
            copy(self.net.grad_arena(), self.grads_bytes());
        }
        ctx.queue.submit([enc.finish()]);
        let bytes = ctx.read_staged(&p.readback, at, "the pass's results")?;
        let (stats, rest) = bytes.split_at(Stats::BYTES as usize);
        let (logits, grads) = rest.split_at(logits_bytes as usize);
        let (o, stride) = (self.net.arch().outputs(), padded(self.net.arch().outputs()));
        let logits: Vec<f32> = bytemuck::pod_collect_to_vec(logits);
        Ok(Readback {
            stats: bytemuck::pod_read_unaligned(stats),
            logits: logits
                .chunks_exact(stride)
                .flat_map(|r| &r[..o])
                .copied()
                .collect(),
            grads: bytemuck::pod_collect_to_vec(grads),
        })
    }

    /// The forward in `form`: loss and accuracy sums over the batch.
    pub fn forward(&mut self, x: &[f32], t: &[u32], form: Form) -> Result<Stats> {
        let want = Wanted {
            logits: false,
            grads: false,
        };
        Ok(self.run(x, t, form, want)?.stats)
    }

    /// The forward in `form`: the sums and the logits (rows × outputs).
    pub fn forward_logits(
        &mut self,
        x: &[f32],
        t: &[u32],
        form: Form,
    ) -> Result<(Stats, Vec<f32>)> {
        let want = Wanted {
            logits: true,
            grads: false,
        };
        let r = self.run(x, t, form, want)?;
        Ok((r.stats, r.logits))
    }

    /// Backprop at the next training step: the loss and accuracy sums of
    /// the training-form forward and every parameter's gradient (weight
    /// decay included), as the book's `gradient(x, t)`.
    pub fn gradient(&mut self, x: &[f32], t: &[u32]) -> Result<(Stats, Params)> {
        let want = Wanted {
            logits: false,
            grads: true,
        };
        let r = self.run(x, t, Form::Train, want)?;
        let arch = self.net.arch();
        let grads = Params {
            arch: arch.clone(),
            values: self.net.host_array(&r.grads),
            running: vec![0.0; arch.running_len()],
        };
        Ok((r.stats, grads))
    }

    /// The parameters and running statistics on the GPU.
    pub fn read_params(&self) -> Result<Params> {
        self.net.read_host()
    }
}
