//! The network on the GPU: the parameter arena, the datasets, and the
//! dispatches of a training step, an evaluation and a gradient, all made once.
//!
//! One step (layers l = 1..L, sizes s0..sL, batch B; layouts in `layout`):
//!   gather                      x = [X, 1] (B, s0 + 1), t (B)
//!   l = 1..L   Z_l = [Z_{l-1}, 1]·[W_l; b_l]   (+ Relu fused, except the last)
//!              with Batch Normalization: A_l = [Z_{l-1}, 1]·[W_l; b_l], then
//!              Z_l = Relu(BN(A_l)) in one kernel (A_l becomes xn)
//!              with Dropout: Z_l *= mask (per step)
//!   softmax_with_loss           dY = (softmax(Z_L) - onehot(t)) / B, loss sums
//!   l = L..1   with BN: dA_l = BN backward(dZ_l); dgamma_l, dbeta_l stored
//!              dZ_{l-1} = dA_l·W_lᵀ masked by Z_{l-1} > 0   (l > 1)
//!              [W_l; b_l] -= lr·([Z_{l-1}, 1]ᵀ·dA_l + λ·[W_l; 0])   (SGD fused)
//!              or the gradient stored, for an optimizer pass over the arena
//! dZ_{l-1} is computed before layer l's update, since it needs the old W_l.
//! Relu's mask (Z > 0) is also Dropout's: a dropped unit is 0 in Z.
//! A convolutional front (`front`) runs between the gather and layer 1,
//! whose input is then its pooled values; backward, layer 1's dX flows
//! into it.
//!
//! Imports `context`, `dispatch`, `error`, `front`, `kernels`, `layout` and `ops`.

use std::sync::Arc;

use super::context::GpuContext;
use super::dispatch::Slice;
use super::error::Result;
use super::front::{self, FrontActivations, FrontKernels};
use super::kernels::{
    BatchNorm, BnBackward, BnForward, BnShape, DropoutCall, DropoutKernel, Epilogue, Gather, Head,
    Matmul, MatmulCall, MatmulShape, MatmulVariant, SoftmaxCall, SoftmaxWithLoss,
};
use super::layout::{
    GpuLayer, GpuLayout, Regions, forward_shape, matrix_bytes, padded, padded_rows,
};
use super::ops::{
    self, Batch, GradTarget, Mode, Op, Pending, StepNet, bind_pending, input_grad, weight_grad,
};
use crate::core::model::{Arch, Params};

/// The pipelines, made once per device.
pub struct Kernels {
    pub matmul: Matmul,
    pub softmax: SoftmaxWithLoss,
    pub gather: Gather,
    /// Only for networks with Batch Normalization.
    pub batchnorm: Option<BatchNorm>,
    /// Only for networks with Dropout.
    pub dropout: Option<DropoutKernel>,
    /// Only for networks with a convolutional front.
    pub front: Option<FrontKernels>,
}

impl Kernels {
    pub fn new(ctx: &GpuContext, arch: &Arch) -> Self {
        Kernels {
            matmul: Matmul::new(ctx),
            softmax: SoftmaxWithLoss::new(ctx),
            gather: Gather::new(ctx),
            batchnorm: arch.batchnorm.then(|| BatchNorm::new(ctx)),
            dropout: (arch.dropout > 0.0).then(|| DropoutKernel::new(ctx)),
            front: arch.conv.map(|_| FrontKernels::new(ctx)),
        }
    }
}

pub struct GpuNet {
    pub ctx: Arc<GpuContext>,
    pub arch: Arch,
    pub layout: GpuLayout,
    pub kernels: Kernels,
    /// The parameter arena (f32), laid out as [`GpuLayout`].
    pub params: wgpu::Buffer,
    /// Gradients, same layout; written only by [`GradTarget::Store`] passes
    /// (none in a network made [`GpuNet::for_evaluation`]: see [`GpuNet::grads`]).
    grads: Option<wgpu::Buffer>,
    /// Batch Normalization's running statistics, as [`Params::running`].
    pub running: wgpu::Buffer,
}

/// Batch Normalization's buffers of one hidden layer.
#[derive(Clone)]
pub struct BnActivations {
    /// The Affine's output; the training forward overwrites it with xn.
    pub a: wgpu::Buffer,
    /// The gradient at the Affine's output (none in evaluation activations).
    pub da: Option<wgpu::Buffer>,
    /// √(var + ε) per feature, from the training forward.
    pub std: wgpu::Buffer,
}

/// Buffers for up to `rows` samples (allocated for `padded_rows(rows)`, in
/// rows `padded(size)` long): inputs, labels, and per layer its output `Z_l`
/// and the gradient flowing into it `dZ_l`; with Batch Normalization, per
/// hidden layer [`BnActivations`].
#[derive(Clone)]
pub struct Activations {
    pub rows: usize,
    /// The inputs and labels: this batch's are the region starting at
    /// row `first` (`Regions` in `layout`: other steps' batches may share
    /// the buffers; the other buffers are this batch's alone).
    pub x: wgpu::Buffer,
    pub t: wgpu::Buffer,
    pub first: usize,
    pub z: Vec<wgpu::Buffer>,
    pub dz: Vec<wgpu::Buffer>,
    pub bn: Vec<BnActivations>,
    /// A convolutional front's matrices; its pooled values are layer 1's input.
    pub front: Option<FrontActivations>,
}

impl GpuNet {
    pub fn new(ctx: Arc<GpuContext>, params: &Params) -> Result<Self> {
        Self::build(ctx, params, true)
    }

    /// A network that only evaluates: no gradient arena.
    pub fn for_evaluation(ctx: Arc<GpuContext>, params: &Params) -> Result<Self> {
        Self::build(ctx, params, false)
    }

    fn build(ctx: Arc<GpuContext>, params: &Params, grads: bool) -> Result<Self> {
        let arch = params.arch.clone();
        let layout = GpuLayout::new(&arch);
        ctx.check_binding("the parameters", layout.len as u64 * 4)?;
        let kernels = Kernels::new(&ctx, &arch);
        let running: Vec<f32> = params.running.iter().map(|&v| v as f32).collect();
        let net = GpuNet {
            params: ctx.storage_init("params", &layout.to_gpu(params)),
            grads: grads.then(|| ctx.storage_init("grads", &vec![0f32; layout.len])),
            running: ctx.storage_init("running statistics", &padded_to_4(running)),
            kernels,
            layout,
            arch,
            ctx,
        };
        net.ctx.check()?;
        Ok(net)
    }

    /// The parameters and running statistics.
    pub fn read_params(&self) -> Result<Params> {
        let v = self
            .ctx
            .read_f32(&self.params, 0, self.layout.len, "the parameters")?;
        let mut p = self.layout.from_gpu(&self.arch, &v);
        if !p.running.is_empty() {
            let r =
                self.ctx
                    .read_f32(&self.running, 0, p.running.len(), "the running statistics")?;
            p.running = r.iter().map(|&v| v as f64).collect();
        }
        Ok(p)
    }

    /// Replaces the weights, biases, `gamma` and `beta` with `params`'s
    /// (the running statistics stay).
    pub fn write_arena(&self, params: &Params) {
        let gpu = self.layout.to_gpu(params);
        self.ctx
            .queue
            .write_buffer(&self.params, 0, bytemuck::cast_slice(&gpu));
    }

    /// Replaces Batch Normalization's running statistics.
    pub fn write_running(&self, running: &[f64]) {
        if !running.is_empty() {
            let v: Vec<f32> = running.iter().map(|&r| r as f32).collect();
            self.ctx
                .queue
                .write_buffer(&self.running, 0, bytemuck::cast_slice(&v));
        }
    }

    /// The gradient arena. Panics for a network made
    /// [`GpuNet::for_evaluation`], which has none.
    pub fn grads(&self) -> &wgpu::Buffer {
        self.grads
            .as_ref()
            .expect("an evaluation network keeps no gradients")
    }

    pub fn read_grads(&self) -> Result<Params> {
        let v = self
            .ctx
            .read_f32(self.grads(), 0, self.layout.len, "the gradients")?;
        Ok(self.layout.from_gpu(&self.arch, &v))
    }

    pub fn activations(&self, rows: usize) -> Result<Activations> {
        self.make_activations(rows, true, Regions::one(rows))
    }

    /// [`GpuNet::activations`] for evaluation only: no gradient buffers but
    /// the output's dY, which the loss binds and (without `want_grad`)
    /// never writes; `dz` holds that one buffer and the Batch Normalization
    /// layers no `da`. [`GpuNet::backward`] refuses them.
    pub fn eval_activations(&self, rows: usize) -> Result<Activations> {
        self.make_activations(rows, false, Regions::one(rows))
    }

    /// Buffers for `rows` samples, the inputs and labels laid out as
    /// `regions` (the first region's view).
    fn make_activations(&self, rows: usize, train: bool, regions: Regions) -> Result<Activations> {
        let ctx = &self.ctx;
        let bytes = |n: usize| matrix_bytes(rows, n);
        let input_rows = regions.total_rows();
        let inputs = std::iter::once(self.arch.inputs());
        for (l, s) in inputs
            .chain(self.arch.sizes[1..].iter().copied())
            .enumerate()
        {
            // Layer 0's are the inputs, every region's.
            let rows = if l == 0 { input_rows } else { rows };
            ctx.check_binding(
                &format!("layer {l}'s activations ({rows} × {s} f32)"),
                matrix_bytes(rows, s),
            )?;
        }
        let front = match self.arch.conv {
            Some(c) => Some(FrontActivations::new(ctx, &c, rows, train)?),
            None => None,
        };
        let per_layer = |name: &str| -> Vec<wgpu::Buffer> {
            self.arch.sizes[1..]
                .iter()
                .enumerate()
                .map(|(l, &s)| ctx.storage(&format!("{name}{}", l + 1), bytes(s)))
                .collect()
        };
        let bn = self
            .layout
            .bn
            .iter()
            .enumerate()
            .map(|(l, b)| BnActivations {
                a: ctx.storage(&format!("A{}", l + 1), bytes(b.features)),
                da: train.then(|| ctx.storage(&format!("dA{}", l + 1), bytes(b.features))),
                std: ctx.storage(
                    &format!("std{}", l + 1),
                    (b.features.next_multiple_of(4) * 4) as u64,
                ),
            })
            .collect();
        Ok(Activations {
            rows,
            x: ctx.storage("x", matrix_bytes(input_rows, self.arch.inputs())),
            t: ctx.storage("t", (input_rows * 4) as u64),
            first: 0,
            z: per_layer("Z"),
            dz: if train {
                per_layer("dZ")
            } else {
                let o = self.arch.sizes.len() - 1;
                vec![ctx.storage(&format!("dZ{o}"), bytes(self.arch.outputs()))]
            },
            bn,
            front,
        })
    }

    /// The input of layer `l` (0-based): x (or a front's pooled values),
    /// or the previous layer's output, over the batch's padded rows.
    fn layer_input<'a>(&self, act: &'a Activations, l: usize) -> Slice<'a> {
        let len = padded_rows(act.rows) * self.layout.layers[l].rows();
        match (l, &act.front) {
            (0, Some(f)) => Slice::new(&f.pooled, 0, len),
            (0, None) => Slice::new(&act.x, act.x_at(self.arch.inputs()), len),
            _ => Slice::new(&act.z[l - 1], 0, len),
        }
    }

    fn bn_shape(&self, l: usize, rows: usize) -> BnShape {
        let b = self.layout.bn[l];
        BnShape {
            rows,
            features: b.features,
            stride: padded(b.features),
            gamma: b.gamma,
            beta: b.beta(),
            running: self.arch.bn_slots()[l].running,
        }
    }

    fn bind_pending(&self, pending: Vec<Pending<'_>>) -> Result<Vec<Op>> {
        bind_pending(&self.ctx, &self.kernels.matmul, pending)
    }

    /// Hidden or last layer `l`'s forward for `rows` samples: its product
    /// (with Relu fused unless Batch Normalization follows), Batch
    /// Normalization with Relu, and Dropout.
    fn layer_forward<'a>(
        &'a self,
        act: &'a Activations,
        l: usize,
        rows: usize,
        mode: Mode,
        pending: &mut Vec<Pending<'a>>,
    ) -> Result<()> {
        let ctx = &*self.ctx;
        let layers = &self.layout.layers;
        let g = &layers[l];
        let all = padded_rows(act.rows);
        let train = matches!(mode, Mode::Train { .. });
        let last = l + 1 == layers.len();
        let bn = (!last).then(|| act.bn.get(l)).flatten();
        let v = MatmulVariant {
            trans_a: false,
            trans_b: false,
            epilogue: if last || bn.is_some() {
                Epilogue::Store
            } else {
                Epilogue::Relu
            },
        };
        let shape = MatmulShape {
            ones_col: if bn.is_some() { None } else { Some(g.outputs) },
            ..forward_shape(g, rows)
        };
        pending.push(Pending::Matmul(MatmulCall {
            label: format!("affine{} forward", l + 1),
            v,
            shape,
            a: self.layer_input(act, l),
            b: Slice::new(&self.params, g.offset, g.len()),
            c: Slice::new(bn.map_or(&act.z[l], |b| &b.a), 0, all * g.cols()),
            aux: None,
            columns: None,
        }));
        if let Some(b) = bn {
            let kernel = self.kernels.batchnorm.as_ref().expect("batchnorm kernel");
            let buffers = BnForward {
                a: Slice::new(&b.a, 0, all * g.cols()),
                z: Slice::new(&act.z[l], 0, all * g.cols()),
                params: Slice::whole(&self.params),
                running: Slice::whole(&self.running),
                std_dev: Slice::whole(&b.std),
            };
            pending.push(Pending::Ready(Op::Shared(kernel.forward(
                ctx,
                &format!("batchnorm{} forward + relu{}", l + 1, l + 1),
                self.bn_shape(l, rows),
                train,
                buffers,
            )?)));
        }
        if let (false, Some(kernel)) = (last, &self.kernels.dropout) {
            let z = Slice::new(&act.z[l], 0, all * g.cols());
            pending.push(Pending::Ready(self.dropout_op(kernel, l, rows, z, mode)?));
        }
        Ok(())
    }

    /// Dropout on hidden layer `l`'s output `z` (in place): one dispatch
    /// per slot in training, each with its own key; one in evaluation.
    fn dropout_op(
        &self,
        kernel: &DropoutKernel,
        l: usize,
        rows: usize,
        z: Slice<'_>,
        mode: Mode,
    ) -> Result<Op> {
        let g = &self.layout.layers[l];
        let call = |label: String| DropoutCall {
            label,
            rows,
            features: g.outputs,
            stride: g.cols(),
            ratio: self.arch.dropout,
            z,
        };
        let ctx = &*self.ctx;
        Ok(match mode {
            Mode::Train { slots } => Op::Dropout {
                layer: l as u32 + 1,
                slots: (0..slots)
                    .map(|s| kernel.train(ctx, call(format!("dropout{} slot {s}", l + 1))))
                    .collect::<Result<_>>()?,
            },
            Mode::Eval => {
                Op::Shared(kernel.eval(ctx, call(format!("dropout{} (evaluation)", l + 1)))?)
            }
        })
    }

    /// Batch Normalization's backward at hidden layer `l` (`b`, its
    /// buffers): dZ_l to the gradient at the Affine's output, which it
    /// returns; dgamma and dbeta into the gradient arena.
    fn bn_backward<'a>(
        &'a self,
        act: &'a Activations,
        l: usize,
        b: &'a BnActivations,
        pending: &mut Vec<Pending<'a>>,
    ) -> Result<&'a wgpu::Buffer> {
        let g = &self.layout.layers[l];
        let all = padded_rows(act.rows);
        let da = b.da.as_ref().expect("training activations");
        let kernel = self.kernels.batchnorm.as_ref().expect("batchnorm kernel");
        let buffers = BnBackward {
            dz: Slice::new(&act.dz[l], 0, all * g.cols()),
            xn: Slice::new(&b.a, 0, all * g.cols()),
            std_dev: Slice::whole(&b.std),
            params: Slice::whole(&self.params),
            grads: Slice::whole(self.grads()),
            dx: Slice::new(da, 0, all * g.cols()),
        };
        pending.push(Pending::Ready(Op::Shared(kernel.backward(
            &self.ctx,
            &format!("batchnorm{} backward", l + 1),
            self.bn_shape(l, act.rows),
            buffers,
        )?)));
        Ok(da)
    }

    /// The gradients at layer `l`'s input from `grad_in`, the gradient at
    /// its output: the pooled values' (unmasked) for the first layer after
    /// a convolutional front, dZ_{l-1} masked by Relu for the others.
    fn input_grads<'a>(
        &'a self,
        act: &'a Activations,
        l: usize,
        grad_in: &'a wgpu::Buffer,
        pending: &mut Vec<Pending<'a>>,
    ) {
        let g = &self.layout.layers[l];
        // dY·W_lᵀ into `c`, masked by `mask > 0` where given.
        let dx = |label: String, c: &'a wgpu::Buffer, mask: Option<&'a wgpu::Buffer>| {
            input_grad(&self.params, label, g, act.rows, [grad_in, c], mask)
        };
        if let (0, Some(f)) = (l, &act.front) {
            // The pooled values' gradient, unmasked: the front's Relu
            // comes before its pooling, whose backward applies the mask.
            let dp = f.dpooled.as_ref().expect("training activations");
            let label = "affine1 backward dx (pooled)".to_string();
            pending.push(Pending::Matmul(dx(label, dp, None)));
        }
        if l > 0 {
            // dZ_{l-1} = dA_l·W_lᵀ, masked by Relu: needs W_l before its update.
            // The book numbers a SimpleConvNet's Relus from its Conv's.
            let relu = l + act.front.is_some() as usize;
            let label = format!("affine{} backward dx + relu{relu} backward", l + 1);
            let (dz, z) = (&act.dz[l - 1], &act.z[l - 1]);
            pending.push(Pending::Matmul(dx(label, dz, Some(z))));
        }
    }

    /// The last Affine as the softmax pass's head, where the planner fuses
    /// them for `rows` (`ops::head`); with its input gradient where the
    /// pass computes dY (`want_grad`) and the planner fuses that too.
    fn head<'a>(&'a self, act: &'a Activations, rows: usize, want_grad: bool) -> Option<Head<'a>> {
        let l = self.layout.layers.len() - 1;
        let input = self.layer_input(act, l);
        let dx = want_grad.then(|| self.input_grad_target(act, l)).flatten();
        ops::head(
            &self.ctx,
            &self.params,
            &self.layout.layers[l],
            input,
            (act.rows, rows),
            dx,
        )
    }

    /// Where layer `l`'s input gradient goes, and whether Relu's mask
    /// applies to it: dZ_{l-1}, masked, for a layer after another; the
    /// pooled values', unmasked, for the first after a front; None for the
    /// first layer of an MLP.
    fn input_grad_target<'a>(
        &self,
        act: &'a Activations,
        l: usize,
    ) -> Option<(&'a wgpu::Buffer, bool)> {
        match (l, &act.front) {
            (0, Some(f)) => Some((f.dpooled.as_ref()?, false)),
            (0, None) => None,
            _ => Some((act.dz.get(l - 1)?, true)),
        }
    }

    fn front_kernels(&self) -> &FrontKernels {
        self.kernels.front.as_ref().expect("a front's kernels")
    }

    fn weight_grad<'a>(
        &'a self,
        name: String,
        g: &GpuLayer,
        rows: usize,
        x_dy: (Slice<'a>, &'a wgpu::Buffer),
        target: GradTarget,
        decay: f32,
    ) -> MatmulCall<'a> {
        let arenas = [&self.params, self.grads()];
        weight_grad(arenas, name, g, rows, x_dy, (target, decay))
    }
}

/// At least one element, and a multiple of 4 (a buffer binding's minimum).
fn padded_to_4(mut v: Vec<f32>) -> Vec<f32> {
    v.resize(v.len().max(1).next_multiple_of(4), 0.0);
    v
}

impl Activations {
    /// Where this batch's inputs start in x (rows `padded(inputs)` long).
    pub fn x_at(&self, inputs: usize) -> usize {
        self.first * padded(inputs)
    }

    /// x from this batch's first row to the buffer's end.
    pub fn x_from(&self, inputs: usize) -> Slice<'_> {
        let at = self.x_at(inputs);
        Slice::new(&self.x, at, (self.x.size() / 4) as usize - at)
    }

    /// This batch's labels.
    pub fn labels(&self) -> Slice<'_> {
        Slice::new(&self.t, self.first, self.rows)
    }
}

impl Batch for Activations {
    fn rows(&self) -> usize {
        self.rows
    }
    fn x(&self) -> &wgpu::Buffer {
        &self.x
    }
    fn t(&self) -> &wgpu::Buffer {
        &self.t
    }
}

impl StepNet for GpuNet {
    type Act = Activations;
    fn context(&self) -> &Arc<GpuContext> {
        &self.ctx
    }
    fn gather_kernel(&self) -> &Gather {
        &self.kernels.gather
    }
    fn batch_buffers(&self, rows: usize, train: bool) -> Result<Activations> {
        self.make_activations(rows, train, Regions::one(rows))
    }
    fn batch_regions(&self, rows: usize, regions: Regions) -> Result<Vec<Activations>> {
        let act = self.make_activations(rows, true, regions)?;
        let view = |r: usize| Activations {
            first: r * regions.rows,
            ..act.clone()
        };
        Ok((0..regions.count).map(view).collect())
    }
    /// Forward through every layer for `rows` (≤ act.rows) samples, then
    /// SoftmaxWithLoss into `stats` (and dY when `want_grad`).
    fn forward_ops(
        &self,
        act: &Activations,
        rows: usize,
        stats: &wgpu::Buffer,
        want_grad: bool,
        mode: Mode,
    ) -> Result<Vec<Op>> {
        let ctx = &*self.ctx;
        let layers = &self.layout.layers;
        let all = padded_rows(act.rows);
        let mut pending = Vec::new();
        if let (Some(f), Some(g)) = (&act.front, self.layout.conv) {
            let block = Slice::new(&self.params, g.offset, g.len());
            let x = act.x_from(self.arch.inputs());
            let stride = padded(self.arch.inputs());
            let ops = front::forward(ctx, self.front_kernels(), f, rows, x, stride, (g, block))?;
            pending.extend(ops.im2col.map(|d| Pending::Ready(Op::Shared(d))));
            pending.push(Pending::Matmul(ops.product));
            pending.push(Pending::Ready(Op::Shared(ops.pool)));
        }
        let head = self.head(act, rows, want_grad);
        // With a head, the softmax pass computes the last Affine itself.
        for l in 0..layers.len() - head.is_some() as usize {
            self.layer_forward(act, l, rows, mode, &mut pending)?;
        }
        let o = self.arch.outputs();
        let stride = padded(o);
        let loss = SoftmaxCall {
            head,
            label: ops::loss_label(head.as_ref(), &format!("affine{}", layers.len())),
            rows,
            classes: o,
            stride,
            want_grad,
            y: Slice::new(act.z.last().unwrap(), 0, all * stride),
            t: act.labels(),
            dy: Slice::new(act.dz.last().unwrap(), 0, all * stride),
            stats: Slice::new(stats, 0, 4),
        };
        pending.push(Pending::Ready(Op::Shared(
            self.kernels.softmax.bind(ctx, loss)?,
        )));
        self.bind_pending(pending)
    }

    /// Backward from dY (written by the forward's loss) to every layer's
    /// `[dW; db]` (with weight decay `decay` on W), which goes to `target`;
    /// dgamma and dbeta always go to the gradient arena.
    /// Dropout's masks need no backward dispatch here (Relu's mask is theirs).
    fn backward_ops(
        &self,
        act: &Activations,
        target: GradTarget,
        decay: f32,
        _slots: usize,
    ) -> Result<Vec<Op>> {
        let ctx = &*self.ctx;
        let rows = act.rows;
        let layers = &self.layout.layers;
        assert_eq!(
            act.dz.len(),
            layers.len(),
            "backward needs training activations"
        );
        let mut pending = Vec::new();
        for (l, g) in layers.iter().enumerate().rev() {
            // The gradient at the Affine's output: dZ_l, or BN's backward of it.
            let grad_in = match (l + 1 < layers.len()).then(|| act.bn.get(l)).flatten() {
                Some(b) => self.bn_backward(act, l, b, &mut pending)?,
                None => &act.dz[l],
            };
            // The head computed the last Affine's input gradient, if it could.
            let in_head = l + 1 == layers.len() && ops::head_computes_dx(ctx, g, rows);
            if !in_head {
                self.input_grads(act, l, grad_in, &mut pending);
            }
            let x_dy = (self.layer_input(act, l), grad_in);
            let name = format!("affine{}", l + 1);
            let call = self.weight_grad(name, g, rows, x_dy, target, decay);
            pending.push(Pending::Matmul(call));
        }
        if let (Some(f), Some(g)) = (&act.front, self.layout.conv) {
            let pool = front::pool_backward(ctx, self.front_kernels(), f, &g)?;
            pending.push(Pending::Ready(Op::Shared(pool)));
            let dz = f.dz.as_ref().expect("training activations");
            // [col, 1]ᵀ·dZ: im2col's matrix where it is stored, else x read
            // through columns.
            let read = f.col.as_ref().unwrap_or(&act.x);
            let positions = f.m.positions();
            let mut call = self.weight_grad(
                "conv1".into(),
                &g,
                positions,
                (Slice::whole(read), dz),
                target,
                decay,
            );
            if f.col.is_none() {
                let columns = front::image_columns(f.m.conv, padded(self.arch.inputs()));
                call = call.reading_columns(act.x_from(self.arch.inputs()), columns);
            }
            pending.push(Pending::Matmul(call));
        }
        self.bind_pending(pending)
    }

    fn param_arena(&self) -> &wgpu::Buffer {
        &self.params
    }
    fn arena_len(&self) -> usize {
        self.layout.len
    }
    fn grad_arena(&self) -> &wgpu::Buffer {
        self.grads()
    }
    /// Batch Normalization's gamma and beta are updated by the optimizer pass.
    fn fuses_sgd(&self) -> bool {
        !self.arch.batchnorm
    }
    fn logits<'a>(&self, act: &'a Activations) -> (&'a wgpu::Buffer, usize, usize) {
        let classes = self.arch.outputs();
        (act.z.last().expect("a layer"), classes, padded(classes))
    }
    fn arch(&self) -> &Arch {
        &self.arch
    }
    fn read_host(&self) -> Result<Params> {
        self.read_params()
    }
    fn host_len(&self) -> usize {
        self.arch.arena_len()
    }
    fn host_array(&self, gpu: &[f32]) -> Vec<f64> {
        self.layout.from_gpu(&self.arch, gpu).values
    }
    fn gpu_array(&self, host: &[f64]) -> Vec<f32> {
        let host = Params {
            arch: self.arch.clone(),
            values: host.to_vec(),
            running: vec![],
        };
        self.layout.to_gpu(&host)
    }
    fn write_host(&self, params: &Params) {
        self.write_arena(params);
        self.write_running(&params.running);
    }
}
