//! `shaders/batchnorm_forward.wgsl` (training and evaluation, Relu fused) and
//! `shaders/batchnorm_backward.wgsl`: Batch Normalization per feature over
//! the batch, one workgroup per feature.
//!
//! Imports `context`, `dispatch` and `error` only.

use crate::gpu::context::GpuContext;
use crate::gpu::dispatch::{
    BindingContract, Dispatch, KernelLayout, binding_contract, dispatch, kernel_bindings,
    kernel_layout, pipeline, wgsl_struct,
};
use crate::gpu::error::Result;

const FORWARD: &str = include_str!("../../../shaders/batchnorm_forward.wgsl");
const BACKWARD: &str = include_str!("../../../shaders/batchnorm_backward.wgsl");

wgsl_struct! {
    /// The uniform of both shaders (the backward does not read `running`).
    struct Dims {
        rows: u32,
        features: u32,
        stride: u32,
        gamma: u32,
        beta: u32,
        running: u32,
        _pad0: u32,
        _pad1: u32,
    }
}

kernel_bindings! {
    /// The forward's buffers: `a`, the Affine's output (overwritten with xn
    /// in training), to `z`, which also gets the ones column at `features`;
    /// the parameter arena, the running statistics, and √(var + ε) per
    /// feature.
    pub struct BnForward<'a> {
        a: ReadWrite,
        z: ReadWrite,
        params: Read,
        running: ReadWrite,
        std_dev: ReadWrite,
    }
}

kernel_bindings! {
    /// The backward's buffers: `dz`, the gradient at the Relu's output
    /// (already masked), and the forward's `xn` and `std_dev`, to `dx`;
    /// dgamma and dbeta into the gradient arena `grads`.
    pub struct BnBackward<'a> {
        dz: Read,
        xn: Read,
        std_dev: Read,
        params: Read,
        grads: ReadWrite,
        dx: ReadWrite,
    }
}

/// Where one layer's numbers are: its shape, and the offsets (in elements)
/// of gamma and beta in the parameter (and gradient) arena and of its
/// running mean in the running-statistics buffer.
#[derive(Clone, Copy, Debug)]
pub struct BnShape {
    pub rows: usize,
    pub features: usize,
    pub stride: usize,
    pub gamma: usize,
    pub beta: usize,
    pub running: usize,
}

impl BnShape {
    fn dims(&self) -> Dims {
        Dims {
            rows: self.rows as u32,
            features: self.features as u32,
            stride: self.stride as u32,
            gamma: self.gamma as u32,
            beta: self.beta as u32,
            running: self.running as u32,
            _pad0: 0,
            _pad1: 0,
        }
    }

    /// One workgroup per feature, up to the grid's limit (the shader loops).
    fn groups(&self, ctx: &GpuContext) -> [u32; 3] {
        let max = ctx.limits.max_compute_workgroups_per_dimension;
        [(self.features as u32).clamp(1, max), 1, 1]
    }
}

pub struct BatchNorm {
    forward_layout: KernelLayout,
    backward_layout: KernelLayout,
    train: wgpu::ComputePipeline,
    eval: wgpu::ComputePipeline,
    backward: wgpu::ComputePipeline,
}

impl BatchNorm {
    pub fn new(ctx: &GpuContext) -> Self {
        let forward_layout = kernel_layout::<BnForward, Dims>(ctx, "batchnorm forward");
        let backward_layout = kernel_layout::<BnBackward, Dims>(ctx, "batchnorm backward");
        let train = pipeline(
            ctx,
            "batchnorm train",
            &forward_layout,
            FORWARD,
            &[("TRAIN", 1.0)],
        );
        let eval = pipeline(
            ctx,
            "batchnorm eval",
            &forward_layout,
            FORWARD,
            &[("TRAIN", 0.0)],
        );
        let backward = pipeline(ctx, "batchnorm backward", &backward_layout, BACKWARD, &[]);
        BatchNorm {
            forward_layout,
            backward_layout,
            train,
            eval,
            backward,
        }
    }

    /// Forward, then Relu (see [`BnForward`]), with the batch's statistics
    /// when `train`, else the running ones.
    pub fn forward(
        &self,
        ctx: &GpuContext,
        label: &str,
        s: BnShape,
        train: bool,
        b: BnForward<'_>,
    ) -> Result<Dispatch> {
        dispatch(
            ctx,
            label.to_string(),
            if train { &self.train } else { &self.eval },
            &self.forward_layout,
            &s.dims(),
            &b,
            s.groups(ctx),
        )
    }

    /// Backward (see [`BnBackward`]).
    pub fn backward(
        &self,
        ctx: &GpuContext,
        label: &str,
        s: BnShape,
        b: BnBackward<'_>,
    ) -> Result<Dispatch> {
        dispatch(
            ctx,
            label.to_string(),
            &self.backward,
            &self.backward_layout,
            &s.dims(),
            &b,
            s.groups(ctx),
        )
    }
}

pub(super) fn contracts() -> Vec<crate::gpu::dispatch::StructContract> {
    vec![crate::gpu::dispatch::uniform_dims::<Dims>(vec![
        ("shaders/batchnorm_forward.wgsl", FORWARD.into()),
        ("shaders/batchnorm_backward.wgsl", BACKWARD.into()),
    ])]
}

pub(super) fn binding_contracts() -> Vec<BindingContract> {
    vec![
        binding_contract::<BnForward>(
            "batchnorm forward",
            vec![("shaders/batchnorm_forward.wgsl", FORWARD.into())],
        ),
        binding_contract::<BnBackward>(
            "batchnorm backward",
            vec![("shaders/batchnorm_backward.wgsl", BACKWARD.into())],
        ),
    ]
}
