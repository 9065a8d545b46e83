//! A network given as a list of layers on the GPU: its arena, its buffers
//! for a batch, and the dispatches of a forward and a backward pass, stage
//! by stage as `stages` groups the layers. Per stage:
//!
//! ```text
//! convolution  col = [im2col(in), 1]; out = col·[W_col; b]   (+ Relu)
//!              backward: dcol = dout·[W_col; b]ᵀ; din = col2im(dcol) (masked
//!              by in > 0 after a Relu); [dW; db] = colᵀ·dout
//! affine       out = [in, 1]·[W; b]   (+ Relu)
//!              backward: din = dout·Wᵀ (masked by in > 0 after a Relu);
//!              [dW; db] = [in, 1]ᵀ·dout
//! pooling      out = [pool(in), 1], argmax; backward: the gather through
//!              argmax (masked by in > 0 after a Relu); a flatten is a 1×1 one
//! dropout      in place; backward: the same mask on the gradient, where no
//!              Relu's mask already is it
//! ```
//!
//! where the planner reads `col` in place (`plan::implicit_columns`), a
//! convolution has no im2col and no `col`: both products that read it read
//! `in` through `kernels::Columns`. Then SoftmaxWithLoss on the logits. A
//! stage's input gradient is made before its weight gradient, which may
//! update the weights in place (the SGD epilogue). No stage computes the
//! gradient of the network's input.
//!
//! Imports `context`, `dispatch`, `error`, `kernels`, `layout`, `ops`,
//! `plan` and `stages`.

use std::sync::Arc;

use super::context::GpuContext;
use super::dispatch::Slice;
use super::error::Result;
use super::kernels::{
    Col2imCall, Columns, DropoutCall, DropoutKernel, Epilogue, Gather, Head, Im2col, Im2colCall,
    ImageLayout, Matmul, MatmulCall, MatmulShape, MatmulVariant, MaxPool, PoolBackwardCall,
    PoolForwardCall, SoftmaxCall, SoftmaxWithLoss,
};
use super::layout::{
    GpuLayer, conv_from_gpu, conv_to_gpu, forward_shape, matrix_bytes, padded_rows,
};
use super::ops::{
    self, Batch, GradTarget, Mode, Op, Pending, StepNet, bind_pending, input_grad, weight_grad,
};
use super::plan::implicit_columns;
use super::stages::{Form, Stage, StageKind, Stages, Value};
use crate::core::conv::Slide;
use crate::core::model::{Arch, Params};
use crate::core::network::{Layer, Plan};

/// The pipelines a list network uses, made once per device.
pub struct ListKernels {
    pub matmul: Matmul,
    pub softmax: SoftmaxWithLoss,
    pub gather: Gather,
    pub dropout: DropoutKernel,
    pub im2col: Im2col,
    pub pool: MaxPool,
}

impl ListKernels {
    pub fn new(ctx: &GpuContext) -> Self {
        ListKernels {
            matmul: Matmul::new(ctx),
            softmax: SoftmaxWithLoss::new(ctx),
            gather: Gather::new(ctx),
            dropout: DropoutKernel::new(ctx),
            im2col: Im2col::new(ctx),
            pool: MaxPool::new(ctx),
        }
    }
}

pub struct GpuSequential {
    pub ctx: Arc<GpuContext>,
    /// The network, a list (`Arch::layers`).
    pub arch: Arch,
    pub plan: Plan,
    pub stages: Stages,
    pub kernels: ListKernels,
    /// The parameter arena (f32), laid out as [`Stages`] places the blocks.
    pub params: wgpu::Buffer,
    /// The gradients, same layout (none in a network that only evaluates).
    grads: Option<wgpu::Buffer>,
}

/// Buffers for up to `rows` images: per value its matrix (0 is the input
/// x) and, in training, the gradient at it; per convolution its columns,
/// per pooling its argmax; the labels.
pub struct ListActivations {
    pub rows: usize,
    pub t: wgpu::Buffer,
    pub values: Vec<wgpu::Buffer>,
    /// Per value; in evaluation only the logits' (which the loss binds).
    pub grads: Vec<Option<wgpu::Buffer>>,
    /// Per stage: a convolution's columns (in evaluation all share one);
    /// None where its products read them in place (`plan::implicit_columns`).
    pub cols: Vec<Option<wgpu::Buffer>>,
    /// The largest convolution's column gradient, shared (training only).
    pub dcol: Option<wgpu::Buffer>,
    /// Per stage: a pooling's or a flatten's argmax.
    pub argmax: Vec<Option<wgpu::Buffer>>,
}

/// A convolution's columns for `rows` images of `stages`: (what, bytes);
/// None for the other stages.
pub fn column_bytes(s: &Stage, stages: &Stages, rows: usize) -> Option<(String, u64)> {
    let g = s.block?;
    matches!(s.kind, StageKind::Convolution { .. }).then(|| {
        let positions = stages.values[s.output].rows(rows);
        let what = format!("{}'s columns ({positions} × {} f32)", s.label(), g.rows());
        (what, matrix_bytes(positions, g.inputs))
    })
}

impl GpuSequential {
    /// The network of `params` (a list: `Arch::layers`, whose stages are
    /// `stages`) with its arena; with a gradient arena when `grads`.
    pub fn new(ctx: Arc<GpuContext>, params: &Params, stages: Stages, grads: bool) -> Result<Self> {
        let plan = params.arch.list_plan().expect("a list network");
        let values = &params.values;
        ctx.check_binding("the parameters", stages.arena_len as u64 * 4)?;
        let net = GpuSequential {
            arch: params.arch.clone(),
            kernels: ListKernels::new(&ctx),
            params: ctx.storage_init("params", &to_gpu(&plan, &stages, values)),
            grads: grads.then(|| ctx.storage_init("grads", &vec![0f32; stages.arena_len])),
            plan,
            stages,
            ctx,
        };
        net.ctx.check()?;
        Ok(net)
    }

    /// The host arena (f64, the book's layout).
    pub fn read_params(&self) -> Result<Vec<f64>> {
        let len = self.stages.arena_len;
        let v = self.ctx.read_f32(&self.params, 0, len, "the parameters")?;
        Ok(from_gpu(&self.plan, &self.stages, &v))
    }

    /// The gradient arena in the host's layout.
    pub fn read_grads(&self) -> Result<Vec<f64>> {
        let len = self.stages.arena_len;
        let v = self.ctx.read_f32(self.grads(), 0, len, "the gradients")?;
        Ok(from_gpu(&self.plan, &self.stages, &v))
    }

    /// Replaces the parameters with the host's `values`.
    pub fn write_params(&self, values: &[f64]) {
        let gpu = to_gpu(&self.plan, &self.stages, values);
        let bytes = bytemuck::cast_slice(&gpu);
        self.ctx.queue.write_buffer(&self.params, 0, bytes);
    }

    /// The gradient arena. Panics for a network made without one.
    pub fn grads(&self) -> &wgpu::Buffer {
        self.grads.as_ref().expect("a network that only evaluates")
    }

    fn stage_forward<'a>(
        &'a self,
        act: &'a ListActivations,
        i: usize,
        s: &Stage,
        rows: usize,
        mode: Mode,
        pending: &mut Vec<Pending<'a>>,
    ) -> Result<()> {
        let ctx = &*self.ctx;
        let (input, output) = (&self.stages.values[s.input], &self.stages.values[s.output]);
        let (x, out) = (&act.values[s.input], &act.values[s.output]);
        let label = s.label();
        match s.kind {
            StageKind::Convolution { relu, .. } => {
                let g = s.block.expect("a convolution's block");
                let slide = s.slide(input, rows).expect("a convolution slides");
                let positions = output.rows(rows);
                let columns = stage_columns(input, slide);
                let shape = MatmulShape {
                    ones_col: None,
                    ..forward_shape(&g, positions)
                };
                let product = match act.cols[i].as_ref() {
                    // The product reads the input through columns.
                    None => self
                        .product(label, g, relu, shape, x, out)
                        .reading_columns(Slice::whole(x), columns),
                    Some(col) => {
                        let call = Im2colCall {
                            label: format!("{label} im2col"),
                            slide,
                            layout: columns.layout,
                            x_stride: columns.x_stride,
                            col_stride: g.rows(),
                            ones: columns.ones,
                            x: Slice::whole(x),
                            col: Slice::new(col, 0, positions * g.rows()),
                        };
                        let im2col = self.kernels.im2col.im2col(ctx, call)?;
                        pending.push(Pending::Ready(Op::Shared(im2col)));
                        self.product(label, g, relu, shape, col, out)
                    }
                };
                pending.push(Pending::Matmul(product));
            }
            StageKind::Affine { relu } => {
                let g = s.block.expect("an Affine's block");
                let shape = MatmulShape {
                    ones_col: Some(g.outputs),
                    ..forward_shape(&g, rows)
                };
                pending.push(Pending::Matmul(self.product(label, g, relu, shape, x, out)));
            }
            StageKind::Pooling { .. } | StageKind::Flatten => {
                let call = PoolForwardCall {
                    label: format!("{label} forward"),
                    slide: s.slide(input, rows).expect("a pooling slides"),
                    z_stride: input.stride(),
                    p_stride: output.stride(),
                    ones: true,
                    z: Slice::whole(x),
                    p: Slice::new(out, 0, rows * output.stride()),
                    argmax: Slice::whole(act.argmax[i].as_ref().expect("an argmax")),
                };
                let pool = self.kernels.pool.forward(ctx, call)?;
                pending.push(Pending::Ready(Op::Shared(pool)));
            }
            StageKind::Dropout { ratio, .. } => {
                let op = self.dropout(s, input, out, (rows, act.rows), ratio, mode)?;
                pending.push(Pending::Ready(op));
            }
        }
        Ok(())
    }

    /// The last stage as the softmax pass's head, where it is an Affine
    /// without Relu and the planner fuses them for `rows` (`ops::head`);
    /// with its input gradient where the pass computes dY (`want_grad`),
    /// the stage has one, and the planner fuses that too.
    fn head<'a>(
        &'a self,
        act: &'a ListActivations,
        rows: usize,
        want_grad: bool,
    ) -> Option<Head<'a>> {
        let (s, g) = self.head_stage()?;
        let input = &self.stages.values[s.input];
        let dx = (want_grad && s.input > 0)
            .then(|| act.grads[s.input].as_ref().map(|d| (d, input.relu)))
            .flatten();
        ops::head(
            &self.ctx,
            &self.params,
            &g,
            Slice::new(&act.values[s.input], 0, padded_rows(act.rows) * g.rows()),
            (act.rows, rows),
            dx,
        )
    }

    /// The last stage and its block, where the softmax pass may compute
    /// it (an Affine without Relu).
    fn head_stage(&self) -> Option<(&Stage, GpuLayer)> {
        let s = self.stages.stages.last()?;
        match (&s.kind, s.block) {
            (StageKind::Affine { relu: false }, Some(g)) => Some((s, g)),
            _ => None,
        }
    }

    /// A forward product `out = a·block` over `shape`, with Relu when `relu`.
    fn product<'a>(
        &'a self,
        label: String,
        g: GpuLayer,
        relu: bool,
        shape: MatmulShape,
        a: &'a wgpu::Buffer,
        out: &'a wgpu::Buffer,
    ) -> MatmulCall<'a> {
        let all = padded_rows(shape.m);
        let fused = if relu { " + relu" } else { "" };
        MatmulCall {
            label: format!("{label} forward{fused}"),
            v: MatmulVariant {
                trans_a: false,
                trans_b: false,
                epilogue: if relu {
                    Epilogue::Relu
                } else {
                    Epilogue::Store
                },
            },
            shape,
            a: Slice::new(a, 0, all * g.rows()),
            b: Slice::new(&self.params, g.offset, g.len()),
            c: Slice::new(out, 0, all * g.cols()),
            aux: None,
            columns: None,
        }
    }

    /// Dropout in place on `z` (a value or the gradient at it): one
    /// dispatch per slot in training, each with its own key (the stage's
    /// number); the scaling by `1 - ratio` in evaluation.
    fn dropout(
        &self,
        s: &Stage,
        value: &Value,
        z: &wgpu::Buffer,
        (rows, all): (usize, usize),
        ratio: f32,
        mode: Mode,
    ) -> Result<Op> {
        let call = |label: String| DropoutCall {
            label,
            rows,
            features: value.cols(),
            stride: value.stride(),
            ratio,
            z: Slice::new(z, 0, padded_rows(all) * value.stride()),
        };
        let (ctx, kernel, label) = (&*self.ctx, &self.kernels.dropout, s.label());
        Ok(match mode {
            Mode::Train { slots } => Op::Dropout {
                layer: s.number as u32,
                slots: (0..slots)
                    .map(|slot| kernel.train(ctx, call(format!("{label} slot {slot}"))))
                    .collect::<Result<_>>()?,
            },
            Mode::Eval => Op::Shared(kernel.eval(ctx, call(format!("{label} (evaluation)")))?),
        })
    }

    /// A convolution's backward: its input's gradient (unless the input is
    /// the network's) by `dcol = dout·[W_col; b]ᵀ` then `col2im`, masked by
    /// Relu's where its input is a Relu's output; then its `[dW; db]`.
    fn conv_backward<'a>(
        &'a self,
        act: &'a ListActivations,
        i: usize,
        s: &Stage,
        update: (GradTarget, f32),
        pending: &mut Vec<Pending<'a>>,
    ) -> Result<()> {
        let (ctx, rows) = (&*self.ctx, act.rows);
        let (input, output) = (&self.stages.values[s.input], &self.stages.values[s.output]);
        let grad = |v: usize| act.grads[v].as_ref().expect("training activations");
        let (x, dout) = (&act.values[s.input], grad(s.output));
        let arenas = [&self.params, self.grads()];
        let label = s.label();
        let g = s.block.expect("a convolution's block");
        let positions = output.rows(rows);
        if s.input > 0 {
            let dcol = act.dcol.as_ref().expect("training activations");
            let what = format!("{label} backward dx");
            let call = input_grad(&self.params, what, &g, positions, [dout, dcol], None);
            pending.push(Pending::Matmul(call));
            let call = Col2imCall {
                label: format!("{label} col2im{}", relu_backward(input)),
                slide: s.slide(input, rows).expect("a convolution slides"),
                layout: image_layout(input),
                col_stride: g.rows(),
                x_stride: input.stride(),
                col: Slice::new(dcol, 0, padded_rows(positions) * g.rows()),
                relu_mask: input.relu.then(|| Slice::whole(x)),
                x: Slice::whole(grad(s.input)),
            };
            let col2im = self.kernels.im2col.col2im(ctx, call)?;
            pending.push(Pending::Ready(Op::Shared(col2im)));
        }
        let read = act.cols[i].as_ref().unwrap_or(x);
        let x_dy = (Slice::whole(read), dout);
        let mut call = weight_grad(arenas, label, &g, positions, x_dy, update);
        if act.cols[i].is_none() {
            let slide = s.slide(input, rows).expect("a convolution slides");
            call = call.reading_columns(Slice::whole(x), stage_columns(input, slide));
        }
        pending.push(Pending::Matmul(call));
        Ok(())
    }

    fn stage_backward<'a>(
        &'a self,
        act: &'a ListActivations,
        i: usize,
        s: &Stage,
        update: (GradTarget, f32),
        slots: usize,
        pending: &mut Vec<Pending<'a>>,
    ) -> Result<()> {
        let ctx = &*self.ctx;
        let rows = act.rows;
        let (input, output) = (&self.stages.values[s.input], &self.stages.values[s.output]);
        let grad = |v: usize| act.grads[v].as_ref().expect("training activations");
        let (x, dout) = (&act.values[s.input], grad(s.output));
        let arenas = [&self.params, self.grads()];
        let label = s.label();
        match s.kind {
            StageKind::Convolution { .. } => {
                self.conv_backward(act, i, s, update, pending)?;
            }
            StageKind::Affine { .. } => {
                let g = s.block.expect("an Affine's block");
                // The head computed the last Affine's input gradient, if it could.
                let last = i + 1 == self.stages.stages.len();
                let in_head =
                    last && self.head_stage().is_some() && ops::head_computes_dx(ctx, &g, rows);
                if s.input > 0 && !in_head {
                    let what = format!("{label} backward dx{}", relu_backward(input));
                    let (dy_dx, mask) = ([dout, grad(s.input)], input.relu.then_some(x));
                    let call = input_grad(&self.params, what, &g, rows, dy_dx, mask);
                    pending.push(Pending::Matmul(call));
                }
                let call = weight_grad(arenas, label, &g, rows, (Slice::whole(x), dout), update);
                pending.push(Pending::Matmul(call));
            }
            StageKind::Pooling { .. } | StageKind::Flatten => {
                let call = PoolBackwardCall {
                    label: format!("{label} backward{}", relu_backward(input)),
                    slide: s.slide(input, rows).expect("a pooling slides"),
                    z_stride: input.stride(),
                    p_stride: output.stride(),
                    relu: input.relu,
                    dp: Slice::whole(dout),
                    argmax: Slice::whole(act.argmax[i].as_ref().expect("an argmax")),
                    z: Slice::whole(x),
                    dz: Slice::new(grad(s.input), 0, input.rows(rows) * input.stride()),
                };
                let pool = self.kernels.pool.backward(ctx, call)?;
                pending.push(Pending::Ready(Op::Shared(pool)));
            }
            StageKind::Dropout {
                ratio,
                own_backward,
            } => {
                if own_backward {
                    let mode = Mode::Train { slots };
                    let op = self.dropout(s, input, dout, (rows, rows), ratio, mode)?;
                    pending.push(Pending::Ready(op));
                }
            }
        }
        Ok(())
    }
}

/// Images per evaluation chunk at most: a list's activations per image
/// are many times an MLP's.
const LIST_EVAL_CHUNK: usize = 1000;

/// Images per evaluation chunk of `len` images: at most
/// [`LIST_EVAL_CHUNK`] and `len`, fewer (a multiple of 4) until every value
/// and a convolution's columns fit one storage binding.
pub fn chunk_rows(ctx: &GpuContext, stages: &Stages, len: usize) -> usize {
    let mut rows = LIST_EVAL_CHUNK.min(len).max(1);
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

/// What a backward dispatch that applies `input`'s Relu mask adds to its label.
fn relu_backward(input: &Value) -> &'static str {
    if input.relu { " + relu backward" } else { "" }
}

/// How the window kernels read a value.
fn image_layout(v: &Value) -> ImageLayout {
    match v.form {
        Form::Images => ImageLayout::Images,
        Form::Positions => ImageLayout::Positions,
    }
}

/// im2col's matrix of value `v` under `slide`, with the ones column that
/// carries the bias: what a convolution's products read, from memory where
/// im2col wrote it, or in place.
fn stage_columns(v: &Value, slide: Slide) -> Columns {
    Columns {
        slide,
        layout: image_layout(v),
        x_stride: v.stride(),
        ones: true,
    }
}

/// The host arena (the book's tensors, as `Network::tensors` places them)
/// in the GPU's layout, as f32, padding zero.
pub fn to_gpu(plan: &Plan, stages: &Stages, values: &[f64]) -> Vec<f32> {
    let mut out = vec![0f32; stages.arena_len];
    for (g, p) in stages.blocks(plan) {
        let b = p.weights.expect("a weighted layer");
        let (w, bias) = (&values[b.w..b.b()], &values[b.b()..b.b() + b.outputs]);
        let block = match p.layer {
            Layer::Convolution { .. } => conv_to_gpu(&g, w, bias),
            _ => affine_to_gpu(&g, w, bias),
        };
        out[g.offset..][..g.len()].copy_from_slice(&block);
    }
    out
}

/// [`to_gpu`] undone: the host arena, f64.
pub fn from_gpu(plan: &Plan, stages: &Stages, v: &[f32]) -> Vec<f64> {
    let mut out = vec![0.0; plan.arena_len];
    for (g, p) in stages.blocks(plan) {
        let b = p.weights.expect("a weighted layer");
        let block = &v[g.offset..][..g.len()];
        let (w, bias) = match p.layer {
            Layer::Convolution { .. } => conv_from_gpu(&g, block),
            _ => affine_from_gpu(&g, block),
        };
        out[b.w..b.b()].copy_from_slice(&w);
        out[b.b()..b.b() + b.outputs].copy_from_slice(&bias);
    }
    out
}

/// An Affine's `W` [I, O] and `b` as its block: W in rows 0..I, b in row I.
fn affine_to_gpu(g: &GpuLayer, w: &[f64], b: &[f64]) -> Vec<f32> {
    let mut block = vec![0f32; g.len()];
    for (r, row) in w.chunks_exact(g.outputs).chain([b]).enumerate() {
        for (d, &v) in block[r * g.cols()..][..g.outputs].iter_mut().zip(row) {
            *d = v as f32;
        }
    }
    block
}

/// [`affine_to_gpu`] undone: (W, b).
fn affine_from_gpu(g: &GpuLayer, block: &[f32]) -> (Vec<f64>, Vec<f64>) {
    let row = |r: usize| block[r * g.cols()..][..g.outputs].iter().map(|&v| v as f64);
    let w = (0..g.inputs).flat_map(row).collect();
    (w, row(g.inputs).collect())
}

impl Batch for ListActivations {
    fn rows(&self) -> usize {
        self.rows
    }
    fn x(&self) -> &wgpu::Buffer {
        &self.values[0]
    }
    fn t(&self) -> &wgpu::Buffer {
        &self.t
    }
}

impl StepNet for GpuSequential {
    type Act = ListActivations;
    fn context(&self) -> &Arc<GpuContext> {
        &self.ctx
    }
    fn gather_kernel(&self) -> &Gather {
        &self.kernels.gather
    }
    /// Every buffer for `rows` images, checked against one binding before
    /// any is made; with the gradients when `train`.
    fn batch_buffers(&self, rows: usize, train: bool) -> Result<ListActivations> {
        let ctx = &*self.ctx;
        let (values, stages) = (&self.stages.values, &self.stages.stages);
        let value_bytes = |v: &Value| matrix_bytes(v.rows(rows), v.cols());
        let mut wanted: Vec<(String, u64)> = values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                (
                    format!("value {i} ({} × {} f32)", v.rows(rows), v.cols()),
                    value_bytes(v),
                )
            })
            .collect();
        let columns: Vec<_> = stages
            .iter()
            .map(|s| column_bytes(s, &self.stages, rows))
            .collect();
        wanted.extend(columns.iter().flatten().cloned());
        for (what, bytes) in &wanted {
            ctx.check_binding(what, *bytes)?;
        }
        let last = values.len() - 1;
        let grad = |i: usize| {
            (i > 0 && (train || i == last))
                .then(|| ctx.storage(&format!("d value {i}"), value_bytes(&values[i])))
        };
        let largest = columns.iter().flatten().map(|c| c.1).max();
        // Where the products read the columns in place, none are stored.
        let stored = !implicit_columns(&ctx.profile, ctx.matmul_algo);
        let shared = (!train && stored)
            .then(|| largest.map(|b| ctx.storage("columns", b)))
            .flatten();
        let cols = columns
            .iter()
            .map(|c| {
                let (what, bytes) = c.as_ref().filter(|_| stored)?;
                Some(shared.clone().unwrap_or_else(|| ctx.storage(what, *bytes)))
            })
            .collect();
        let argmax = stages
            .iter()
            .map(|s| {
                matches!(s.kind, StageKind::Pooling { .. } | StageKind::Flatten).then(|| {
                    let per_image = values[s.output].values.len();
                    ctx.storage(
                        &format!("{} argmax", s.label()),
                        (rows * per_image * 4) as u64,
                    )
                })
            })
            .collect();
        Ok(ListActivations {
            rows,
            t: ctx.storage("t", (rows * 4) as u64),
            values: (0..values.len())
                .map(|i| ctx.storage(&format!("value {i}"), value_bytes(&values[i])))
                .collect(),
            grads: (0..values.len()).map(grad).collect(),
            cols,
            dcol: largest.filter(|_| train).map(|b| ctx.storage("dcol", b)),
            argmax,
        })
    }

    /// Forward through every stage for `rows` (≤ act.rows) images, then
    /// SoftmaxWithLoss into `stats` (and dY when `want_grad`).
    fn forward_ops(
        &self,
        act: &ListActivations,
        rows: usize,
        stats: &wgpu::Buffer,
        want_grad: bool,
        mode: Mode,
    ) -> Result<Vec<Op>> {
        let mut pending = Vec::new();
        let head = self.head(act, rows, want_grad);
        // With a head, the softmax pass computes the last Affine itself.
        let stages = self.stages.stages.len() - head.is_some() as usize;
        for (i, s) in self.stages.stages.iter().enumerate().take(stages) {
            self.stage_forward(act, i, s, rows, mode, &mut pending)?;
        }
        let logits = self.stages.logits();
        let (last, stride) = (act.values.len() - 1, logits.stride());
        let all = padded_rows(act.rows);
        let dy = act.grads[last].as_ref().expect("the logits' gradient");
        let loss = SoftmaxCall {
            head,
            label: ops::loss_label(
                head.as_ref(),
                &self.stages.stages.last().expect("a stage").label(),
            ),
            rows,
            classes: logits.cols(),
            stride,
            want_grad,
            y: Slice::new(&act.values[last], 0, all * stride),
            t: Slice::new(&act.t, 0, act.rows),
            dy: Slice::new(dy, 0, all * stride),
            stats: Slice::new(stats, 0, 4),
        };
        let softmax = self.kernels.softmax.bind(&self.ctx, loss)?;
        pending.push(Pending::Ready(Op::Shared(softmax)));
        bind_pending(&self.ctx, &self.kernels.matmul, pending)
    }

    /// Backward from dY (written by the forward's loss) through every stage
    /// to each block's `[dW; db]` (with weight decay `decay` on W), into
    /// `target`; `slots` Dropout masks per stage that needs its own.
    fn backward_ops(
        &self,
        act: &ListActivations,
        target: GradTarget,
        decay: f32,
        slots: usize,
    ) -> Result<Vec<Op>> {
        let mut pending = Vec::new();
        for (i, s) in self.stages.stages.iter().enumerate().rev() {
            self.stage_backward(act, i, s, (target, decay), slots, &mut pending)?;
        }
        bind_pending(&self.ctx, &self.kernels.matmul, pending)
    }

    fn param_arena(&self) -> &wgpu::Buffer {
        &self.params
    }
    fn arena_len(&self) -> usize {
        self.stages.arena_len
    }
    fn grad_arena(&self) -> &wgpu::Buffer {
        self.grads()
    }
    fn fuses_sgd(&self) -> bool {
        true
    }
    fn logits<'a>(&self, act: &'a ListActivations) -> (&'a wgpu::Buffer, usize, usize) {
        let logits = self.stages.logits();
        let last = act.values.last().expect("the input at least");
        (last, logits.cols(), logits.stride())
    }
    fn arch(&self) -> &Arch {
        &self.arch
    }
    fn read_host(&self) -> Result<Params> {
        Ok(Params {
            arch: self.arch.clone(),
            values: self.read_params()?,
            running: vec![0.0; self.plan.running_len],
        })
    }
    fn host_len(&self) -> usize {
        self.plan.arena_len
    }
    fn host_array(&self, gpu: &[f32]) -> Vec<f64> {
        from_gpu(&self.plan, &self.stages, gpu)
    }
    fn gpu_array(&self, host: &[f64]) -> Vec<f32> {
        to_gpu(&self.plan, &self.stages, host)
    }
    fn write_host(&self, params: &Params) {
        self.write_params(&params.values);
    }
}
