//! Evaluation on the GPU, of either network ([`StepNet`]): a split's loss,
//! accuracy and predictions through the forward pass in chunks
//! ([`EvalWorkspace`]), and [`GpuEvaluator`], which evaluates a test set with
//! nothing of training allocated (no gradients, no optimizer state, no
//! training split, no step workspace); [`ParamsEvaluator`], either kind's.
//!
//! Imports `budget`, `context`, `dispatch`, `error`, `kernels`, `layout`,
//! `net` and `ops`; the trainer imports it.

use std::sync::Arc;

use super::budget::{Plan, Scratch, largest_scratch};
use super::context::GpuContext;
use super::dispatch::{Dispatch, Slice, record_all};
use super::error::Result;
use super::kernels::{GatherCall, Stats};
use super::layout::{FrontMatrices, padded};
use super::net::GpuNet;
use super::ops::{Batch, DeviceDataset, Mode, StepNet, read_stats, stats_buffer};
use crate::core::data::Dataset;
use crate::core::model::{Arch, Params};

/// Rows per evaluation chunk.
const EVAL_CHUNK: usize = 5000;

/// Whole-split evaluation: the split's indices 0..len uploaded once, then per
/// chunk a gather and a forward with loss and accuracy summed into `stats`.
pub struct EvalWorkspace {
    _idx: wgpu::Buffer,
    stats: wgpu::Buffer,
    dispatches: Vec<Dispatch>,
    /// Per chunk: its rows and how many of `dispatches` it takes, in order.
    chunks: Vec<(usize, usize)>,
}

/// Rows per evaluation chunk: up to [`EVAL_CHUNK`], fewer when the widest
/// layer's activations would not fit one storage binding.
pub fn eval_chunk(ctx: &GpuContext, arch: &Arch) -> usize {
    EVAL_CHUNK.min(fitting_rows(ctx, arch))
}

/// The row counts an evaluation of `len` images in chunks of `chunk` binds
/// products for: a whole chunk and the last, part chunk (the planner may
/// split a smaller product's K where it leaves a larger one's whole, so
/// the shared scratch must count both).
pub fn chunk_sizes(chunk: usize, len: usize) -> Vec<usize> {
    let mut sizes = vec![chunk.min(len)];
    if len > chunk && !len.is_multiple_of(chunk) {
        sizes.push(len % chunk);
    }
    sizes
}

/// The most rows (a multiple of 4, at least 1) whose widest layer's
/// activations fit one storage binding; with a convolutional front, whose
/// largest matrix (im2col's columns or the convolution's output) fits.
pub fn fitting_rows(ctx: &GpuContext, arch: &Arch) -> usize {
    let widest = arch.sizes.iter().map(|&s| padded(s)).max().unwrap() as u64 * 4;
    let limit = ctx.binding_limit();
    let mut rows = ((limit / widest) as usize / 4 * 4).max(1);
    if let Some(front) = arch.conv {
        let largest =
            |rows| FrontMatrices::new(&front, rows).map_or(0, |m| m.col_bytes().max(m.z_bytes()));
        let per_image = largest(1).max(1);
        rows = rows.min(((limit / per_image) as usize / 4 * 4).max(1));
        while rows > 1 && largest(rows) > limit {
            rows -= 1; // the positions' padding to a multiple of 4
        }
    }
    rows
}

impl EvalWorkspace {
    pub fn new<N: StepNet>(
        net: &N,
        data: &DeviceDataset,
        name: &str,
        act: &N::Act,
    ) -> Result<Self> {
        let ctx = net.context();
        let chunk = act.rows();
        let all: Vec<u32> = (0..data.len as u32).collect();
        let idx = ctx.storage_init(&format!("{name} indices"), &all);
        let stats = stats_buffer(ctx, &format!("{name} stats"));
        let (mut dispatches, mut chunks) = (Vec::new(), Vec::new());
        for start in (0..data.len).step_by(chunk) {
            let rows = chunk.min(data.len - start);
            let before = dispatches.len();
            let call = GatherCall {
                regions: None,
                label: format!("gather {name} {start}"),
                rows,
                pixels: data.pixels,
                stride: padded(data.pixels),
                offset: start,
                images: Slice::whole(&data.images),
                labels: Slice::whole(&data.labels),
                idx: Slice::whole(&idx),
                x: Slice::whole(act.x()),
                t: Slice::new(act.t(), 0, rows),
            };
            dispatches.push(net.gather_kernel().bind(ctx, call)?);
            let ops = net.forward_ops(act, rows, &stats, false, Mode::Eval)?;
            dispatches.extend(ops.into_iter().map(|op| {
                op.into_shared()
                    .expect("evaluation has no per-step dropout")
            }));
            chunks.push((rows, dispatches.len() - before));
        }
        Ok(EvalWorkspace {
            _idx: idx,
            stats,
            dispatches,
            chunks,
        })
    }

    /// Loss and accuracy summed over the split (the stats cleared first).
    pub fn run(&self, ctx: &GpuContext) -> Result<Stats> {
        let mut enc = ctx.device.create_command_encoder(&Default::default());
        enc.clear_buffer(&self.stats, 0, None);
        record_all(&mut enc, "evaluate", &self.dispatches);
        ctx.queue.submit([enc.finish()]);
        read_stats(ctx, &self.stats)
    }

    /// The class each image is given (the first largest logit, as numpy's
    /// argmax): one chunk at a time, reading each chunk's logits back from
    /// `act`, the activations the workspace was made with.
    pub fn predictions<N: StepNet>(&self, net: &N, act: &N::Act) -> Result<Vec<u8>> {
        let ctx = net.context();
        let (logits, classes, stride) = net.logits(act);
        let mut out = Vec::new();
        let mut next = 0;
        for &(rows, count) in &self.chunks {
            let mut enc = ctx.device.create_command_encoder(&Default::default());
            record_all(&mut enc, "predict", &self.dispatches[next..next + count]);
            ctx.queue.submit([enc.finish()]);
            next += count;
            let z = ctx.read_f32(logits, 0, rows * stride, "the logits")?;
            out.extend(z.chunks_exact(stride).map(|row| {
                let mut best = 0;
                for k in 1..classes {
                    if row[k] > row[best] {
                        best = k;
                    }
                }
                best as u8
            }));
        }
        Ok(out)
    }
}

/// A test set evaluated on the GPU with only what evaluation needs: the
/// parameters, the test split, the forward's activations for one chunk, and
/// the evaluation's dispatches. The same dispatches as
/// [`super::GpuTrainer`]'s evaluation, so the same bits.
pub struct GpuEvaluator<N: StepNet = GpuNet> {
    pub net: N,
    act: N::Act,
    test: EvalWorkspace,
    /// The bind groups keep it alive; held to say so.
    _data: DeviceDataset,
}

impl GpuEvaluator<GpuNet> {
    /// Checks that the device holds it all, then uploads `params` and `test`
    /// and builds the dispatches.
    pub fn new(ctx: Arc<GpuContext>, params: &Params, test: &Dataset) -> Result<Self> {
        Self::plan(&ctx, &params.arch, test).check(&ctx)?;
        let rows = Self::rows(&ctx, &params.arch, test);
        let data = DeviceDataset::upload(&ctx, "test", test)?;
        let net = GpuNet::for_evaluation(ctx, params)?;
        let scratch = Self::scratch(&net.ctx, &params.arch, rows, test.len());
        net.kernels.matmul.reserve(&net.ctx, &scratch);
        let act = net.eval_activations(rows)?;
        GpuEvaluator::assemble(net, act, data)
    }

    /// What the chunks' products share.
    fn scratch(ctx: &GpuContext, arch: &Arch, rows: usize, len: usize) -> Scratch {
        let runs: Vec<(usize, bool)> = chunk_sizes(rows, len)
            .into_iter()
            .map(|r| (r, false))
            .collect();
        largest_scratch(ctx, arch, &runs)
    }

    /// Rows of the activations: a chunk, or the whole split when smaller.
    fn rows(ctx: &GpuContext, arch: &Arch, test: &Dataset) -> usize {
        eval_chunk(ctx, arch).min(test.len())
    }

    /// Every buffer [`GpuEvaluator::new`] makes.
    pub fn plan(ctx: &GpuContext, arch: &Arch, test: &Dataset) -> Plan {
        let rows = Self::rows(ctx, arch, test);
        let mut plan = Plan::new(ctx);
        plan.dataset("test", test.len(), test.pixels());
        plan.net_for_evaluation(arch);
        plan.eval_activations(arch, rows);
        plan.matmul_scratch(&Self::scratch(ctx, arch, rows, test.len()));
        plan.evaluation("test", test.len());
        plan
    }
}

impl<N: StepNet> GpuEvaluator<N> {
    /// The evaluation of `data` (uploaded) by `net` over the buffers `act`.
    pub fn assemble(net: N, act: N::Act, data: DeviceDataset) -> Result<Self> {
        let test = EvalWorkspace::new(&net, &data, "test", &act)?;
        net.context().check()?;
        Ok(GpuEvaluator {
            net,
            act,
            test,
            _data: data,
        })
    }

    /// Mean loss and accuracy over the test set.
    pub fn evaluate(&self) -> Result<(f64, f64)> {
        let stats = self.test.run(self.net.context())?;
        Ok((stats.mean_loss(), stats.accuracy()))
    }

    /// The class given to each test image.
    pub fn predictions(&self) -> Result<Vec<u8>> {
        self.test.predictions(&self.net, &self.act)
    }
}

/// A GPU evaluation of [`Params`], whichever network they hold (an
/// `Arch`'s, or a list's: `list_trainer::evaluator` makes either).
pub trait ParamsEvaluator {
    /// Replaces the evaluated parameters (and running statistics).
    fn load(&self, params: &Params);
    /// Mean loss and accuracy over the test set.
    fn evaluate(&self) -> Result<(f64, f64)>;
    /// The class given to each test image.
    fn predictions(&self) -> Result<Vec<u8>>;
    /// The device in words.
    fn device(&self) -> String;
}

impl<N: StepNet> ParamsEvaluator for GpuEvaluator<N> {
    fn load(&self, params: &Params) {
        self.net.write_host(params);
    }
    fn evaluate(&self) -> Result<(f64, f64)> {
        GpuEvaluator::evaluate(self)
    }
    fn predictions(&self) -> Result<Vec<u8>> {
        GpuEvaluator::predictions(self)
    }
    fn device(&self) -> String {
        format!("gpu: {}", self.net.context().describe())
    }
}
