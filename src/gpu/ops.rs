//! What every network on the GPU shares with the drivers that run it
//! (`trainer`, `eval`): a dataset resident on the GPU, the ops a pass
//! records and how its weight gradients land, the loss statistics, and
//! [`StepNet`], what a network must give for its steps and evaluations to
//! be recorded. `net` (an `Arch`) and `sequential` (a list of layers)
//! implement it.
//!
//! Imports `context`, `dispatch`, `error`, `kernels` and `layout`.

use std::sync::Arc;

use super::context::GpuContext;
use super::dispatch::{Dispatch, Slice};
use super::error::Result;
use super::kernels::gather::pack_u8;
use super::kernels::{
    DropoutDispatch, Epilogue, Gather, Head, HeadGrad, Matmul, MatmulCall, MatmulDispatch,
    MatmulShape, MatmulVariant, Stats,
};
use super::layout::{
    GpuLayer, Regions, forward_shape, input_grad_shape, padded_rows, weight_grad_shape,
};
use super::plan::{plan_head, plan_head_grad};
use crate::core::data::Dataset;
use crate::core::model::{Arch, Params};

/// A dataset split resident on the GPU: u8 pixels packed into u32, labels as u32.
pub struct DeviceDataset {
    pub images: wgpu::Buffer,
    pub labels: wgpu::Buffer,
    pub len: usize,
    pub pixels: usize,
}

impl DeviceDataset {
    pub fn upload(ctx: &GpuContext, name: &str, data: &Dataset) -> Result<Self> {
        ctx.check_binding(
            &format!("the {name} images ({} × {} u8)", data.len(), data.pixels()),
            data.images.len() as u64,
        )?;
        ctx.check_binding(
            &format!("the {name} labels ({} u32)", data.len()),
            data.len() as u64 * 4,
        )?;
        let labels: Vec<u32> = data.labels.iter().map(|&l| l as u32).collect();
        Ok(DeviceDataset {
            images: ctx.storage_init(&format!("{name} images"), &pack_u8(&data.images)),
            labels: ctx.storage_init(&format!("{name} labels"), &labels),
            len: data.len(),
            pixels: data.pixels(),
        })
    }
}

/// Where a backward pass puts each layer's `[dW; db]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum GradTarget {
    /// Apply `W -= lr·(dW + λW)` in place (training with plain SGD, no Batch
    /// Normalization: the fastest form, one dispatch per layer fewer).
    Sgd(f32),
    /// Store into the gradient arena (other optimizers, Batch
    /// Normalization, verify, tests).
    Store,
}

/// Training (batch statistics; Dropout's mask, one dispatch per slot so each
/// step of a submission gets its own key) or evaluation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Train { slots: usize },
    Eval,
}

/// One entry of a recorded forward or backward pass.
pub enum Op {
    /// The same dispatch for every step.
    Shared(Dispatch),
    /// A product, the same for every step, whose learning rate the host
    /// may rewrite (read by the SGD epilogue only).
    Product(MatmulDispatch),
    /// Dropout's training mask for hidden layer `layer` (1-based): one
    /// dispatch per slot, whose key the host writes before each step.
    Dropout {
        layer: u32,
        slots: Vec<DropoutDispatch>,
    },
}

impl Op {
    /// The dispatch slot `slot` runs.
    pub fn dispatch(&self, slot: usize) -> &Dispatch {
        match self {
            Op::Shared(d) => d,
            Op::Product(d) => d,
            Op::Dropout { slots, .. } => &slots[slot],
        }
    }

    /// The one dispatch of an op that is the same for every step (none of
    /// an evaluation's ops is a per-slot one).
    pub fn into_shared(self) -> Option<Dispatch> {
        match self {
            Op::Shared(d) => Some(d),
            Op::Product(d) => Some(d.into_dispatch()),
            Op::Dropout { .. } => None,
        }
    }
}

/// A matmul waiting for its pipeline, or an op ready to record.
pub enum Pending<'a> {
    Matmul(MatmulCall<'a>),
    Ready(Op),
}

/// Layer `g`'s input gradient `dY·[W; b]ᵀ` over `rows` rows (`dy_dx`: the
/// gradient at its output and where its input's goes), kept where `mask`
/// (the input, a Relu's output) is above 0 when given; `params` is the arena.
pub fn input_grad<'a>(
    params: &'a wgpu::Buffer,
    label: String,
    g: &GpuLayer,
    rows: usize,
    [dy, dx]: [&'a wgpu::Buffer; 2],
    mask: Option<&'a wgpu::Buffer>,
) -> MatmulCall<'a> {
    let all = padded_rows(rows);
    MatmulCall {
        label,
        v: MatmulVariant {
            trans_a: false,
            trans_b: true,
            epilogue: match mask {
                Some(_) => Epilogue::ReluMask,
                None => Epilogue::Store,
            },
        },
        shape: input_grad_shape(g, rows),
        a: Slice::new(dy, 0, all * g.cols()),
        b: Slice::new(params, g.offset, g.len()),
        c: Slice::new(dx, 0, all * g.rows()),
        aux: mask.map(|z| Slice::new(z, 0, all * g.rows())),
        columns: None,
    }
}

/// Layer `g`'s `[dW; db] = [X, 1]ᵀ·dY` over `rows` rows (`x_dy`: the
/// layer's input, from its batch's first row, and the gradient at its
/// output), with weight decay, into
/// `target`: the SGD epilogue on the parameter arena, or the gradient
/// arena (`arenas`: parameters, gradients).
pub fn weight_grad<'a>(
    [params, grads]: [&'a wgpu::Buffer; 2],
    name: String,
    g: &GpuLayer,
    rows: usize,
    (x, dy): (Slice<'a>, &'a wgpu::Buffer),
    (target, decay): (GradTarget, f32),
) -> MatmulCall<'a> {
    let all = padded_rows(rows);
    let (epilogue, dest, lr, what) = match target {
        GradTarget::Sgd(lr) => (Epilogue::Sgd, params, lr, "sgd"),
        GradTarget::Store => (Epilogue::Grad, grads, 0.0, "grad"),
    };
    MatmulCall {
        label: format!("{name} backward dW,db ({what})"),
        v: MatmulVariant {
            trans_a: true,
            trans_b: false,
            epilogue,
        },
        shape: MatmulShape {
            lr,
            decay,
            decay_rows: if decay != 0.0 { g.inputs } else { 0 },
            ..weight_grad_shape(g, rows)
        },
        a: Slice::new(x.buffer, x.offset as usize, all * g.rows()),
        b: Slice::new(dy, 0, all * g.cols()),
        c: Slice::new(dest, g.offset, g.len()),
        aux: (target == GradTarget::Store).then(|| Slice::new(params, g.offset, g.len())),
        columns: None,
    }
}

/// The last Affine (block `g` of `params`, reading `input` over the
/// padded rows of `alloc_rows`) as the softmax pass's head, where the planner
/// fuses the two for `rows` (`plan::plan_head`); None keeps them apart.
/// `dx`, given when the pass computes dY for all `alloc_rows` rows and the
/// Affine has an input gradient: where that goes and whether Relu's mask
/// (`input > 0`) applies; the head computes it where [`head_computes_dx`].
pub fn head<'a>(
    ctx: &GpuContext,
    params: &'a wgpu::Buffer,
    g: &GpuLayer,
    input: Slice<'a>,
    (alloc_rows, rows): (usize, usize),
    dx: Option<(&'a wgpu::Buffer, bool)>,
) -> Option<Head<'a>> {
    let groups = plan_head(&ctx.profile, rows, &forward_shape(g, rows))?;
    let all = padded_rows(alloc_rows) * g.rows();
    let grad = dx
        .filter(|_| rows == alloc_rows && head_computes_dx(ctx, g, rows))
        .map(|(dh, relu)| HeadGrad {
            dh: Slice::new(dh, 0, all),
            inputs: g.inputs,
            relu,
        });
    Some(Head {
        h: input,
        w: Slice::new(params, g.offset, g.len()),
        k: g.rows(),
        ldh: g.rows(),
        ldw: g.cols(),
        groups,
        grad,
    })
}

/// Whether the head of the last Affine `g` over `rows` rows (a training
/// step's: the forward's and its backward's rows) computes that Affine's
/// input gradient, so that the backward records no product for it
/// (`plan::plan_head_grad`).
pub fn head_computes_dx(ctx: &GpuContext, g: &GpuLayer, rows: usize) -> bool {
    let product = forward_shape(g, rows);
    plan_head(&ctx.profile, rows, &product).is_some_and(|groups| {
        let dx = input_grad_shape(g, rows);
        plan_head_grad(&ctx.profile, rows, groups, (&product, &dx))
    })
}

/// The softmax pass's label: named for the Affine `affine` it computes
/// when it has a head.
pub fn loss_label(head: Option<&Head<'_>>, affine: &str) -> String {
    match head {
        Some(Head { grad: Some(_), .. }) => {
            format!("softmax_with_loss + {affine} forward + {affine} backward dx")
        }
        Some(_) => format!("softmax_with_loss + {affine} forward"),
        None => "softmax_with_loss".into(),
    }
}

/// Creates every matmul pipeline at once (in parallel), then binds in order.
pub fn bind_pending(
    ctx: &GpuContext,
    matmul: &Matmul,
    pending: Vec<Pending<'_>>,
) -> Result<Vec<Op>> {
    let products: Vec<_> = pending
        .iter()
        .filter_map(|p| match p {
            Pending::Matmul(c) => Some((c.v, c.shape)),
            Pending::Ready(_) => None,
        })
        .collect();
    matmul.prepare(ctx, &products);
    pending
        .into_iter()
        .map(|p| match p {
            Pending::Matmul(c) => Ok(Op::Product(matmul.bind(ctx, c)?)),
            Pending::Ready(op) => Ok(op),
        })
        .collect()
}

/// Reads a [`Stats`] accumulator.
pub fn read_stats(ctx: &GpuContext, stats: &wgpu::Buffer) -> Result<Stats> {
    let bytes = ctx.read_bytes(stats, 0, Stats::BYTES, "the loss statistics")?;
    Ok(bytemuck::pod_read_unaligned(&bytes))
}

pub fn stats_buffer(ctx: &GpuContext, label: &str) -> wgpu::Buffer {
    ctx.storage_init(label, &[Stats::default()])
}

/// A network on the GPU as the step and evaluation drivers see it.
pub trait StepNet {
    /// Its buffers for a batch.
    type Act: Batch;
    fn context(&self) -> &Arc<GpuContext>;
    fn gather_kernel(&self) -> &Gather;
    /// Buffers for `rows` samples, with every gradient when `train`.
    fn batch_buffers(&self, rows: usize, train: bool) -> Result<Self::Act>;
    /// Training buffers for `rows` samples whose inputs and labels hold
    /// the batches of several steps, as `regions` lays them out: one view
    /// per batch, sharing every buffer (`layout::step_regions` says which
    /// networks take more than one).
    fn batch_regions(&self, rows: usize, regions: Regions) -> Result<Vec<Self::Act>> {
        assert_eq!(regions, Regions::one(rows), "one batch a step");
        Ok(vec![self.batch_buffers(rows, true)?])
    }
    /// The forward pass over `rows` (≤ the buffers' rows) samples, then
    /// SoftmaxWithLoss into `stats` (and dY when `want_grad`).
    fn forward_ops(
        &self,
        act: &Self::Act,
        rows: usize,
        stats: &wgpu::Buffer,
        want_grad: bool,
        mode: Mode,
    ) -> Result<Vec<Op>>;
    /// The backward pass from dY to every parameter's gradient, into
    /// `target`, with weight decay `decay`; `slots` steps per submission.
    fn backward_ops(
        &self,
        act: &Self::Act,
        target: GradTarget,
        decay: f32,
        slots: usize,
    ) -> Result<Vec<Op>>;
    /// The parameter arena and its length (f32 elements).
    fn param_arena(&self) -> &wgpu::Buffer;
    fn arena_len(&self) -> usize;
    /// The gradient arena, same layout.
    fn grad_arena(&self) -> &wgpu::Buffer;
    /// Whether plain SGD may run inside the weight-gradient products (no
    /// parameter is updated outside them).
    fn fuses_sgd(&self) -> bool;
    /// The logits in `act`: (buffer, classes, row stride).
    fn logits<'a>(&self, act: &'a Self::Act) -> (&'a wgpu::Buffer, usize, usize);
    /// The network.
    fn arch(&self) -> &Arch;
    /// The parameters as the host keeps them (the book's arena, f64).
    fn read_host(&self) -> Result<Params>;
    /// Elements of the host's arena.
    fn host_len(&self) -> usize;
    /// An array laid out as the GPU arena (an optimizer's state) in the
    /// host arena's layout, and back.
    fn host_array(&self, gpu: &[f32]) -> Vec<f64>;
    fn gpu_array(&self, host: &[f64]) -> Vec<f32>;
    /// Replaces the parameters (and any running statistics) with the host's.
    fn write_host(&self, host: &Params);
}

/// A network's buffers for a batch, as the drivers fill them.
pub trait Batch {
    /// Samples the buffers hold.
    fn rows(&self) -> usize;
    /// The inputs, rows `padded(pixels)` long, as the gather writes them.
    fn x(&self) -> &wgpu::Buffer;
    /// The labels, one u32 per sample.
    fn t(&self) -> &wgpu::Buffer;
}
