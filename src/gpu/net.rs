//! The network on the GPU: the parameter arena, the datasets, and the
//! dispatches of a training step, an evaluation and a gradient, all made once.
//!
//! One step (layers l = 1..L, sizes s0..sL, batch B; layouts in `layout`):
//!   gather                      x = [X, 1] (B, s0 + 1), t (B)
//!   l = 1..L   Z_l = [Z_{l-1}, 1]·[W_l; b_l]   (+ Relu fused, except the last)
//!   softmax_with_loss           dY = (softmax(Z_L) - onehot(t)) / B, loss sums
//!   l = L..1   dZ_{l-1} = dZ_l·W_lᵀ masked by Z_{l-1} > 0   (l > 1)
//!              [W_l; b_l] -= lr·[Z_{l-1}, 1]ᵀ·dZ_l           (SGD fused)
//! dZ_{l-1} is computed before layer l's update, since it needs the old W_l.

use std::sync::Arc;

use super::context::{GpuContext, Result};
use super::kernels::gather::pack_u8;
use super::kernels::{
    Dispatch, Epilogue, Gather, Matmul, MatmulCall, MatmulShape, MatmulVariant, Slice,
    SoftmaxWithLoss, Stats,
};
use super::layout::{GpuLayout, padded, padded_rows};
use crate::data::Dataset;
use crate::model::{Arch, Params};

/// The pipelines, made once per device.
pub struct Kernels {
    pub matmul: Matmul,
    pub softmax: SoftmaxWithLoss,
    pub gather: Gather,
}

impl Kernels {
    pub fn new(ctx: &GpuContext) -> Self {
        Kernels {
            matmul: Matmul::new(ctx),
            softmax: SoftmaxWithLoss::new(ctx),
            gather: Gather::new(ctx),
        }
    }
}

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
    /// Apply `W -= lr·dW` in place (training).
    Sgd(f32),
    /// Store into the gradient arena (verify, tests).
    Store,
}

pub struct GpuNet {
    pub ctx: Arc<GpuContext>,
    pub arch: Arch,
    pub layout: GpuLayout,
    pub kernels: Kernels,
    /// The parameter arena (f32), laid out as [`GpuLayout`].
    pub params: wgpu::Buffer,
    /// Gradients, same layout; written only by [`GradTarget::Store`] passes.
    pub grads: wgpu::Buffer,
}

/// Buffers for up to `rows` samples (allocated for `padded_rows(rows)`, in
/// rows `padded(size)` long): inputs, labels, and per layer its output `Z_l`
/// and the gradient flowing into it `dZ_l`.
pub struct Activations {
    pub rows: usize,
    pub x: wgpu::Buffer,
    pub t: wgpu::Buffer,
    pub z: Vec<wgpu::Buffer>,
    pub dz: Vec<wgpu::Buffer>,
}

impl GpuNet {
    pub fn new(ctx: Arc<GpuContext>, params: &Params) -> Result<Self> {
        let arch = params.arch.clone();
        let layout = GpuLayout::new(&arch);
        ctx.check_binding("the parameters", layout.len as u64 * 4)?;
        let kernels = Kernels::new(&ctx);
        let net = GpuNet {
            params: ctx.storage_init("params", &layout.to_gpu(params)),
            grads: ctx.storage_init("grads", &vec![0f32; layout.len]),
            kernels,
            layout,
            arch,
            ctx,
        };
        net.ctx.check()?;
        Ok(net)
    }

    pub fn read_params(&self) -> Result<Params> {
        let v = self
            .ctx
            .read_f32(&self.params, 0, self.layout.len, "the parameters")?;
        Ok(self.layout.from_gpu(&self.arch, &v))
    }

    pub fn read_grads(&self) -> Result<Params> {
        let v = self
            .ctx
            .read_f32(&self.grads, 0, self.layout.len, "the gradients")?;
        Ok(self.layout.from_gpu(&self.arch, &v))
    }

    pub fn activations(&self, rows: usize) -> Result<Activations> {
        let ctx = &self.ctx;
        let bytes = |n: usize| (padded_rows(rows) * padded(n) * 4) as u64;
        for (l, &s) in self.arch.sizes.iter().enumerate() {
            ctx.check_binding(
                &format!("layer {l}'s activations ({rows} × {s} f32)"),
                bytes(s),
            )?;
        }
        let per_layer = |name: &str| -> Vec<wgpu::Buffer> {
            self.arch.sizes[1..]
                .iter()
                .enumerate()
                .map(|(l, &s)| ctx.storage(&format!("{name}{}", l + 1), bytes(s)))
                .collect()
        };
        Ok(Activations {
            rows,
            x: ctx.storage("x", bytes(self.arch.inputs())),
            t: ctx.storage("t", (rows * 4) as u64),
            z: per_layer("Z"),
            dz: per_layer("dZ"),
        })
    }

    /// The input of layer `l` (0-based): x, or the previous layer's output.
    fn layer_input<'a>(&self, act: &'a Activations, l: usize) -> &'a wgpu::Buffer {
        if l == 0 { &act.x } else { &act.z[l - 1] }
    }

    /// Forward through every layer for `rows` (≤ act.rows) samples, then
    /// SoftmaxWithLoss into `stats` (and dY when `want_grad`).
    pub fn forward(
        &self,
        act: &Activations,
        rows: usize,
        stats: &wgpu::Buffer,
        want_grad: bool,
    ) -> Result<Vec<Dispatch>> {
        let layers = &self.layout.layers;
        let all = padded_rows(act.rows);
        let mut calls = Vec::with_capacity(layers.len());
        for (l, g) in layers.iter().enumerate() {
            let last = l + 1 == layers.len();
            let v = MatmulVariant {
                trans_a: false,
                trans_b: false,
                epilogue: if last {
                    Epilogue::Store
                } else {
                    Epilogue::Relu
                },
            };
            // [Z_{l-1}, 1, 0] (rows, padded(I)) · [W; b; 0] (padded(I), padded(O)).
            let shape = MatmulShape {
                m: rows,
                n: g.cols(),
                k: g.rows(),
                lda: g.rows(),
                ldb: g.cols(),
                ldc: g.cols(),
                n_real: g.outputs,
                ones_col: Some(g.outputs),
                lr: 0.0,
            };
            calls.push(MatmulCall {
                label: format!("affine{} forward", l + 1),
                v,
                shape,
                a: Slice::new(self.layer_input(act, l), 0, all * g.rows()),
                b: Slice::new(&self.params, g.offset, g.len()),
                c: Slice::new(&act.z[l], 0, all * g.cols()),
                aux: None,
            });
        }
        let mut out = self.kernels.matmul.bind_all(&self.ctx, calls)?;
        let o = self.arch.outputs();
        let stride = padded(o);
        out.push(self.kernels.softmax.bind(
            &self.ctx,
            "softmax_with_loss",
            rows,
            o,
            stride,
            want_grad,
            Slice::new(act.z.last().unwrap(), 0, all * stride),
            Slice::new(&act.t, 0, act.rows),
            Slice::new(act.dz.last().unwrap(), 0, all * stride),
            Slice::new(stats, 0, 4),
        )?);
        Ok(out)
    }

    /// Backward from dY (written by the forward's loss) to every layer's
    /// `[dW; db]`, which goes to `target`.
    pub fn backward(&self, act: &Activations, target: GradTarget) -> Result<Vec<Dispatch>> {
        let rows = act.rows;
        let all = padded_rows(rows);
        let layers = &self.layout.layers;
        let mut calls = Vec::new();
        for (l, g) in layers.iter().enumerate().rev() {
            if l > 0 {
                // dZ_{l-1} = dZ_l·W_lᵀ, masked by Relu: needs W_l before its update.
                calls.push(MatmulCall {
                    label: format!("affine{} backward dx + relu{} backward", l + 1, l),
                    v: MatmulVariant {
                        trans_a: false,
                        trans_b: true,
                        epilogue: Epilogue::ReluMask,
                    },
                    shape: MatmulShape {
                        m: rows,
                        n: g.rows(),
                        k: g.cols(),
                        lda: g.cols(),
                        ldb: g.cols(),
                        ldc: g.rows(),
                        n_real: g.inputs,
                        ones_col: None,
                        lr: 0.0,
                    },
                    a: Slice::new(&act.dz[l], 0, all * g.cols()),
                    b: Slice::new(&self.params, g.offset, g.len()),
                    c: Slice::new(&act.dz[l - 1], 0, all * g.rows()),
                    aux: Some(Slice::new(&act.z[l - 1], 0, all * g.rows())),
                });
            }
            let (epilogue, dest, lr, what) = match target {
                GradTarget::Sgd(lr) => (Epilogue::Sgd, &self.params, lr, "sgd"),
                GradTarget::Store => (Epilogue::Store, &self.grads, 0.0, "grad"),
            };
            // [Z_{l-1}, 1, 0]ᵀ (padded(I), rows) · dZ_l (rows, padded(O)); the
            // zero rows past the batch add nothing.
            calls.push(MatmulCall {
                label: format!("affine{} backward dW,db ({what})", l + 1),
                v: MatmulVariant {
                    trans_a: true,
                    trans_b: false,
                    epilogue,
                },
                shape: MatmulShape {
                    m: g.rows(),
                    n: g.cols(),
                    k: all,
                    lda: g.rows(),
                    ldb: g.cols(),
                    ldc: g.cols(),
                    n_real: g.outputs,
                    ones_col: None,
                    lr,
                },
                a: Slice::new(self.layer_input(act, l), 0, all * g.rows()),
                b: Slice::new(&act.dz[l], 0, all * g.cols()),
                c: Slice::new(dest, g.offset, g.len()),
                aux: None,
            });
        }
        self.kernels.matmul.bind_all(&self.ctx, calls)
    }
}

/// Reads a [`Stats`] accumulator.
pub fn read_stats(ctx: &GpuContext, stats: &wgpu::Buffer) -> Result<Stats> {
    let bytes = ctx.read_bytes(stats, 0, Stats::BYTES, "the loss statistics")?;
    Ok(bytemuck::pod_read_unaligned(&bytes))
}

pub fn stats_buffer(ctx: &GpuContext, label: &str) -> wgpu::Buffer {
    ctx.storage_init(label, &[Stats::default()])
}
