//! The training driver on the GPU, of either network ([`StepNet`]: an
//! `Arch`'s or a list's): several steps recorded into one command encoder
//! per submission; per step the host writes only the batch's indices and
//! reads nothing back until a loss or accuracy is asked for.
//!
//! Near the top of `src/gpu` (only `list_trainer` is above it): imports
//! any of the files below it.

use std::collections::VecDeque;
use std::sync::Arc;

use super::budget::{Plan, Scratch, largest_scratch};
use super::context::GpuContext;
use super::dispatch::{Dispatch, Slice, record_all};
use super::error::{GpuError, Result};
use super::eval::{EvalWorkspace, chunk_sizes, eval_chunk};
use super::kernels::{GatherCall, OptimizerBuffers, OptimizerDispatch, OptimizerKernel, Stats};
use super::layout::{Regions, padded, step_regions};
use super::net::GpuNet;
use super::ops::{Batch, DeviceDataset, GradTarget, Mode, Op, StepNet, read_stats, stats_buffer};
use crate::core::data::Mnist;
use crate::core::dropout_mask::layer_key;
use crate::core::limits::MAX_INDICES_PER_SUBMIT;
use crate::core::model::Params;
use crate::core::optim::{OptimizerKind, StepRule};
use crate::core::trainer::{Precision, Split, Trainer};

/// Submissions allowed in flight before the host waits for the oldest.
const MAX_IN_FLIGHT: usize = 2;

/// Buffers and dispatches of the training step, for one batch size and up to
/// `slots` steps per submission (each slot reads its own part of `idx`, and
/// has its own Dropout and optimizer dispatches, whose per-step numbers the
/// host writes before the submission). Where the inputs hold several
/// steps' batches (`layout::step_regions`), one gather writes them all
/// and each slot runs the forward and backward passes of its own region.
pub struct StepWorkspace<N: StepNet> {
    pub batch: usize,
    pub slots: usize,
    pub regions: Regions,
    /// A view of the step's buffers per region (all shared but the
    /// region of the inputs and labels).
    pub acts: Vec<N::Act>,
    pub idx: wgpu::Buffer,
    pub stats: wgpu::Buffer,
    /// One gather per `regions.count` slots, recorded in the first of them.
    gathers: Vec<Dispatch>,
    /// The passes of each region (slot `s` runs region `s % count`'s).
    forward: Vec<Vec<Op>>,
    backward: Vec<Vec<Op>>,
    /// The optimizer pass per slot; empty when SGD is fused into the
    /// products or when the gradient is only stored.
    update: Vec<OptimizerDispatch>,
    /// The step size each slot's optimizer pass holds (NaN: not yet written).
    update_lr: Vec<f32>,
    /// The optimizer's state arrays (as many as the rule keeps).
    pub optimizer_state: Vec<wgpu::Buffer>,
    rule: StepRule,
    /// When on ([`StepWorkspace::log_losses`]): each step's stats, copied
    /// here after the step (the stats cleared before it), and how many are held.
    loss_log: Option<(wgpu::Buffer, usize)>,
    /// Plain SGD fused into the backward products: their uniforms hold lr.
    fused: bool,
    lr: f32,
}

impl<N: StepNet> StepWorkspace<N> {
    /// `apply`: train with `rule` (from learning rate `lr`); otherwise only
    /// store the gradient in the net's gradient arena (verify, tests).
    pub fn new(
        net: &N,
        data: &DeviceDataset,
        batch: usize,
        slots: usize,
        rule: &StepRule,
        apply: bool,
        lr: f32,
    ) -> Result<Self> {
        let ctx = net.context();
        let regions = step_regions(&ctx.profile, net.arch(), batch, slots);
        let acts = net.batch_regions(batch, regions)?;
        let idx = ctx.storage("batch indices", (batch * slots * 4) as u64);
        let stats = stats_buffer(ctx, "train stats");
        let gathers = gathers(net, data, &acts[0], &idx, (batch, slots), regions)?;
        let mode = Mode::Train { slots };
        let forward = (acts.iter())
            .map(|act| net.forward_ops(act, batch, &stats, true, mode))
            .collect::<Result<Vec<_>>>()?;
        // Plain SGD updates inside the products, where nothing else needs updating.
        let fused = apply && rule.optimizer.kind == OptimizerKind::Sgd && net.fuses_sgd();
        let target = if fused {
            GradTarget::Sgd(lr)
        } else {
            GradTarget::Store
        };
        let decay = rule.weight_decay as f32;
        let backward = (acts.iter())
            .map(|act| net.backward_ops(act, target, decay, slots))
            .collect::<Result<Vec<_>>>()?;
        let (update, optimizer_state) = if apply && !fused {
            optimizer_updates(net, rule, slots)?
        } else {
            (vec![], vec![])
        };
        Ok(StepWorkspace {
            batch,
            slots,
            regions,
            acts,
            idx,
            stats,
            gathers,
            forward,
            backward,
            update_lr: vec![f32::NAN; update.len()],
            update,
            optimizer_state,
            rule: *rule,
            loss_log: None,
            fused,
            lr,
        })
    }

    /// Writes the indices of `batches` (at most `slots`), the per-step
    /// numbers (Dropout's keys, the optimizer's step size) for steps
    /// `first_step`, `first_step + 1`, ... (1-based), and records one step each.
    pub fn encode(
        &mut self,
        ctx: &GpuContext,
        batches: &[Vec<u32>],
        first_step: u64,
        lr: f32,
        enc: &mut wgpu::CommandEncoder,
    ) {
        assert!(batches.len() <= self.slots && batches.iter().all(|b| b.len() == self.batch));
        if self.fused && lr != self.lr {
            // The fused backward is all matmuls; only the SGD epilogue reads
            // lr, the other products ignore it.
            for op in self.backward.iter().flatten() {
                if let Op::Product(d) = op {
                    d.set_lr(ctx, lr);
                }
            }
            self.lr = lr;
        }
        for slot in 0..batches.len() {
            let step = first_step + slot as u64;
            // A Dropout's backward, where it has one, takes its forward's key.
            let region = slot % self.regions.count;
            for op in self.forward[region].iter().chain(&self.backward[region]) {
                if let Op::Dropout { layer, slots } = op {
                    slots[slot].set_key(ctx, layer_key(self.rule.seed, step as u32, *layer));
                }
            }
            if let Some(update) = self.update.get(slot) {
                // Only Adam's changes from step to step.
                let step_lr = self.rule.optimizer.step_lr(lr as f64, step) as f32;
                if step_lr != self.update_lr[slot] {
                    update.set_step_lr(ctx, step_lr);
                    self.update_lr[slot] = step_lr;
                }
            }
        }
        let flat: Vec<u32> = batches.concat();
        ctx.queue
            .write_buffer(&self.idx, 0, bytemuck::cast_slice(&flat));
        let Some((log, held)) = self.loss_log.take() else {
            record_all(
                enc,
                "train steps",
                (0..batches.len()).flat_map(|slot| self.step_dispatches_of(slot)),
            );
            return;
        };
        let capacity = (log.size() / Stats::BYTES) as usize;
        assert!(held + batches.len() <= capacity, "the loss log is full");
        for slot in 0..batches.len() {
            enc.clear_buffer(&self.stats, 0, None);
            record_all(enc, "train step", self.step_dispatches_of(slot));
            let at = (held + slot) as u64 * Stats::BYTES;
            enc.copy_buffer_to_buffer(&self.stats, 0, &log, at, Stats::BYTES);
        }
        self.loss_log = Some((log, held + batches.len()));
    }

    /// Keeps each step's own loss, up to `capacity` steps between reads
    /// ([`StepWorkspace::take_losses`]), at the cost of a clear and a copy
    /// per step. The stats then hold only the last step's sums.
    pub fn log_losses(&mut self, ctx: &GpuContext, capacity: usize) {
        let log = ctx.storage("loss log", capacity.max(1) as u64 * Stats::BYTES);
        self.loss_log = Some((log, 0));
    }

    /// Whether each step's loss is kept ([`StepWorkspace::log_losses`]).
    pub fn logs_losses(&self) -> bool {
        self.loss_log.is_some()
    }

    /// The mean loss of each step logged since the last call, in order
    /// (after the steps have run), and empties the log.
    pub fn take_losses(&mut self, ctx: &GpuContext) -> Result<Vec<f64>> {
        let Some((log, held)) = &mut self.loss_log else {
            return Ok(vec![]);
        };
        let n = std::mem::take(held);
        if n == 0 {
            return Ok(vec![]);
        }
        let bytes = ctx.read_bytes(log, 0, n as u64 * Stats::BYTES, "the loss log")?;
        Ok(bytes
            .chunks_exact(Stats::BYTES as usize)
            .map(|c| bytemuck::pod_read_unaligned::<Stats>(c).mean_loss())
            .collect())
    }

    fn step_dispatches_of(&self, slot: usize) -> impl Iterator<Item = &Dispatch> {
        let count = self.regions.count;
        let region = slot % count;
        let gather = (region == 0).then(|| &self.gathers[slot / count]);
        gather
            .into_iter()
            .chain(
                self.forward[region]
                    .iter()
                    .chain(&self.backward[region])
                    .map(move |op| op.dispatch(slot)),
            )
            .chain(self.update.get(slot).map(|d| &**d))
    }

    /// [`StepWorkspace::step_dispatches`], each with the share of it one
    /// step takes: a gather writing the batches of several steps counts
    /// one step's share, every other dispatch 1.
    pub fn step_dispatch_shares(&self) -> impl Iterator<Item = (&Dispatch, f64)> {
        let gather = 1.0 / self.regions.count as f64;
        let gathers = self.gathers.first().map(|d| (d, gather));
        gathers
            .into_iter()
            .chain(self.step_dispatches().skip(1).map(|d| (d, 1.0)))
    }

    /// Every dispatch of one step, in order (slot 0's: its gather writes
    /// the batches of every slot of its regions).
    pub fn step_dispatches(&self) -> impl Iterator<Item = &Dispatch> {
        self.step_dispatches_of(0)
    }
}

/// Rows of the evaluation's activations: a chunk, or the larger split.
fn eval_rows(ctx: &GpuContext, arch: &crate::core::model::Arch, data: &Mnist) -> usize {
    eval_chunk(ctx, arch).min(data.train.len().max(data.test.len()))
}

/// A network (an `Arch`'s, or a list's: [`StepNet`]) trained on the GPU.
pub struct GpuTrainer<N: StepNet = GpuNet> {
    pub net: N,
    step: StepWorkspace<N>,
    /// Shared by both splits' evaluations, which run one after the other.
    eval_act: N::Act,
    evals: [EvalWorkspace; 2],
    in_flight: VecDeque<wgpu::SubmissionIndex>,
    /// Steps submitted so far (the next is step `steps + 1`).
    steps: u64,
}

impl GpuTrainer<GpuNet> {
    /// Uploads the data and parameters and builds every dispatch, checking
    /// that the device can hold it all before any GPU work is done. `slots`
    /// steps go into one submission, or fewer where they would carry more
    /// than [`MAX_INDICES_PER_SUBMIT`] batch indices.
    pub fn new(
        ctx: Arc<GpuContext>,
        params: &Params,
        data: &Mnist,
        batch: usize,
        slots: usize,
        lr: f32,
        rule: &StepRule,
    ) -> Result<Self> {
        let slots = slots.min(MAX_INDICES_PER_SUBMIT / batch.max(1)).max(1);
        Self::plan(&ctx, &params.arch, data, batch, slots, rule).check(&ctx)?;
        let train_data = DeviceDataset::upload(&ctx, "train", &data.train)?;
        let test_data = DeviceDataset::upload(&ctx, "test", &data.test)?;
        let eval_rows = eval_rows(&ctx, &params.arch, data);
        let scratch = Self::scratch(&ctx, &params.arch, data, batch);
        let net = GpuNet::new(ctx, params)?;
        net.kernels.matmul.reserve(&net.ctx, &scratch);
        let step = StepWorkspace::new(&net, &train_data, batch, slots, rule, true, lr)?;
        let eval_act = net.activations(eval_rows)?;
        Self::assemble(net, step, eval_act, [&train_data, &test_data])
    }

    /// Every storage buffer [`GpuTrainer::new`] makes for this
    /// configuration, checked before any is made.
    pub fn plan(
        ctx: &GpuContext,
        arch: &crate::core::model::Arch,
        data: &Mnist,
        batch: usize,
        slots: usize,
        rule: &StepRule,
    ) -> Plan {
        let mut plan = Plan::new(ctx);
        for (name, split) in [("train", &data.train), ("test", &data.test)] {
            plan.dataset(name, split.len(), split.pixels());
        }
        plan.net(arch);
        plan.step_activations(arch, batch, slots);
        plan.step(arch, batch, slots, rule.optimizer.kind.state_arrays());
        let eval_rows = eval_rows(ctx, arch, data);
        plan.activations(arch, eval_rows);
        plan.matmul_scratch(&Self::scratch(ctx, arch, data, batch));
        for (name, split) in [("train", &data.train), ("test", &data.test)] {
            plan.evaluation(name, split.len());
        }
        plan
    }

    /// What the step's and the evaluations' products share.
    fn scratch(
        ctx: &GpuContext,
        arch: &crate::core::model::Arch,
        data: &Mnist,
        batch: usize,
    ) -> Scratch {
        let chunk = eval_rows(ctx, arch, data);
        let mut runs = vec![(batch, true)];
        for split in [&data.train, &data.test] {
            runs.extend(
                chunk_sizes(chunk, split.len())
                    .into_iter()
                    .map(|r| (r, false)),
            );
        }
        largest_scratch(ctx, arch, &runs)
    }
}

impl<N: StepNet> GpuTrainer<N> {
    /// The driver of `net` with its step, and evaluations of the training
    /// and test splits (uploaded) over the buffers `eval_act`.
    pub(super) fn assemble(
        net: N,
        step: StepWorkspace<N>,
        eval_act: N::Act,
        [train, test]: [&DeviceDataset; 2],
    ) -> Result<Self> {
        let evals = [
            EvalWorkspace::new(&net, train, "train", &eval_act)?,
            EvalWorkspace::new(&net, test, "test", &eval_act)?,
        ];
        net.context().check()?;
        // The bind groups keep the dataset buffers alive.
        Ok(GpuTrainer {
            net,
            step,
            eval_act,
            evals,
            in_flight: VecDeque::new(),
            steps: 0,
        })
    }

    pub fn step(&self) -> &StepWorkspace<N> {
        &self.step
    }

    /// Keeps each step's loss from now on (see [`StepWorkspace::log_losses`]).
    pub fn log_losses(&mut self, capacity: usize) {
        let ctx = self.net.context().clone();
        self.step.log_losses(&ctx, capacity);
    }

    /// Each step's mean loss since the last call, once the steps have run.
    pub fn take_losses(&mut self) -> Result<Vec<f64>> {
        self.finish()?;
        let ctx = self.net.context().clone();
        self.step.take_losses(&ctx)
    }

    /// Training steps submitted so far.
    pub fn steps_done(&self) -> u64 {
        self.steps
    }

    /// The class each image of a split is given (the first largest logit,
    /// as numpy's argmax): the evaluation's dispatches one chunk at a time,
    /// reading each chunk's logits back.
    pub fn predictions(&mut self, split: Split) -> Result<Vec<u8>> {
        self.finish()?;
        let eval = &self.evals[match split {
            Split::Train => 0,
            Split::Test => 1,
        }];
        eval.predictions(&self.net, &self.eval_act)
    }

    /// The optimizer's state arrays in the host's arena layout (none for
    /// SGD): Momentum's v, AdaGrad's and RMSprop's h, Adam's m and v.
    pub fn optimizer_state(&mut self) -> Result<Vec<Vec<f64>>> {
        self.finish()?;
        let net = &self.net;
        let len = net.arena_len();
        self.step
            .optimizer_state
            .iter()
            .map(|b| {
                let v = net.context().read_f32(b, 0, len, "the optimizer state")?;
                Ok(net.host_array(&v))
            })
            .collect()
    }

    /// Records and submits `batches`, keeping at most [`MAX_IN_FLIGHT`]
    /// submissions queued so the host never runs far ahead of the GPU.
    pub fn submit_steps(&mut self, batches: &[Vec<u32>], lr: f32) -> Result<()> {
        for group in batches.chunks(self.step.slots) {
            let ctx = self.net.context().clone();
            let mut enc = ctx.device.create_command_encoder(&Default::default());
            self.step.encode(&ctx, group, self.steps + 1, lr, &mut enc);
            self.steps += group.len() as u64;
            self.in_flight.push_back(ctx.queue.submit([enc.finish()]));
            while self.in_flight.len() > MAX_IN_FLIGHT {
                let oldest = self.in_flight.pop_front().unwrap();
                ctx.device
                    .poll(wgpu::PollType::Wait {
                        submission_index: Some(oldest),
                        timeout: None,
                    })
                    .map_err(|e| GpuError::Wgpu(e.to_string()))?;
            }
            ctx.check()?;
        }
        Ok(())
    }

    /// Blocks until every submitted step has run.
    pub fn finish(&mut self) -> Result<()> {
        self.in_flight.clear();
        self.net.context().wait()
    }
}

impl<N: StepNet> Trainer for GpuTrainer<N> {
    fn device(&self) -> String {
        format!("gpu: {}", self.net.context().describe())
    }

    fn precision(&self) -> Precision {
        Precision::F32
    }

    fn train_steps(&mut self, batches: &[Vec<u32>], lr: f32) -> crate::core::error::Result<()> {
        Ok(self.submit_steps(batches, lr)?)
    }

    fn take_mean_loss(&mut self) -> crate::core::error::Result<f64> {
        self.finish()?;
        let ctx = self.net.context();
        let stats = read_stats(ctx, &self.step.stats)?;
        ctx.queue.write_buffer(&self.step.stats, 0, &[0u8; 16]);
        Ok(stats.mean_loss())
    }

    fn evaluate(&mut self, split: Split) -> crate::core::error::Result<(f64, f64)> {
        let eval = &self.evals[match split {
            Split::Train => 0,
            Split::Test => 1,
        }];
        let stats = eval.run(self.net.context())?;
        Ok((stats.mean_loss(), stats.accuracy()))
    }

    fn params(&mut self) -> crate::core::error::Result<Params> {
        self.finish()?;
        Ok(self.net.read_host()?)
    }

    fn optimizer_state(&mut self) -> crate::core::error::Result<Vec<Vec<f64>>> {
        Ok(GpuTrainer::optimizer_state(self)?)
    }

    fn predictions(&mut self, split: Split) -> crate::core::error::Result<Vec<u8>> {
        Ok(GpuTrainer::predictions(self, split)?)
    }

    fn steps_done(&self) -> u64 {
        self.steps
    }

    fn take_step_losses(&mut self) -> crate::core::error::Result<Option<Vec<f64>>> {
        if !self.step.logs_losses() {
            return Ok(None);
        }
        Ok(Some(GpuTrainer::take_losses(self)?))
    }

    fn restore(
        &mut self,
        optimizer_state: &[Vec<f64>],
        steps: u64,
    ) -> crate::core::error::Result<()> {
        self.finish()?;
        let net = &self.net;
        crate::core::error::fail_unless!(
            optimizer_state.len() == self.step.optimizer_state.len()
                && optimizer_state.iter().all(|s| s.len() == net.host_len()),
            "the optimizer state does not fit this network and rule"
        );
        for (buffer, values) in self.step.optimizer_state.iter().zip(optimizer_state) {
            let gpu = net.gpu_array(values);
            net.context()
                .queue
                .write_buffer(buffer, 0, bytemuck::cast_slice(&gpu));
        }
        self.steps = steps;
        Ok(())
    }
}

/// One gather per `regions.count` slots: the batches of indices of slots
/// `s`, `s + 1`, ... (at `s · batch` in `idx`) to the activations' inputs
/// and labels, each slot's in its region.
fn gathers<N: StepNet>(
    net: &N,
    data: &DeviceDataset,
    act: &N::Act,
    idx: &wgpu::Buffer,
    (batch, slots): (usize, usize),
    regions: Regions,
) -> Result<Vec<Dispatch>> {
    let ctx = net.context();
    let count = regions.count;
    (0..slots)
        .step_by(count)
        .map(|s| {
            let call = GatherCall {
                label: match count {
                    1 => format!("gather slot {s}"),
                    _ => format!("gather slots {s}..{}", s + count - 1),
                },
                rows: batch * count,
                regions: (count > 1).then_some((batch, regions.rows)),
                pixels: data.pixels,
                stride: padded(data.pixels),
                offset: s * batch,
                images: Slice::whole(&data.images),
                labels: Slice::whole(&data.labels),
                idx: Slice::whole(idx),
                x: Slice::whole(act.x()),
                t: Slice::new(act.t(), 0, regions.total_rows()),
            };
            net.gather_kernel().bind(ctx, call)
        })
        .collect()
}

/// The optimizer's state arrays (zeros) and one update per slot of the
/// parameter arena from the gradient arena by `rule`.
fn optimizer_updates<N: StepNet>(
    net: &N,
    rule: &StepRule,
    slots: usize,
) -> Result<(Vec<OptimizerDispatch>, Vec<wgpu::Buffer>)> {
    let ctx = net.context();
    let mut optimizer_state = vec![];
    let len = net.arena_len();
    for k in 0..rule.optimizer.kind.state_arrays() {
        ctx.check_binding("the optimizer's state", len as u64 * 4)?;
        optimizer_state.push(ctx.storage_init(&format!("optimizer state {k}"), &vec![0f32; len]));
    }
    let spare = ctx.storage("no optimizer state", 16);
    let kernel = OptimizerKernel::new(ctx, rule.optimizer);
    let state = |k: usize| Slice::whole(optimizer_state.get(k).unwrap_or(&spare));
    let update = (0..slots)
        .map(|s| {
            let buffers = OptimizerBuffers {
                params: Slice::whole(net.param_arena()),
                grads: Slice::whole(net.grad_arena()),
                s1: state(0),
                s2: state(1),
            };
            kernel.bind(
                ctx,
                &format!("{} update slot {s}", rule.optimizer.kind),
                buffers,
            )
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((update, optimizer_state))
}
