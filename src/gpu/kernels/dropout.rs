//! `shaders/dropout.wgsl`: Dropout in place on a layer's output, with the
//! mask of [`crate::core::dropout_mask`] in training and `1 - ratio` in evaluation.
//!
//! Imports `context`, `dispatch` and `error` only.

use crate::gpu::context::GpuContext;
use crate::gpu::dispatch::{
    BindingContract, Dispatch, KernelLayout, Slice, binding_contract, dispatch, kernel_bindings,
    kernel_layout, pipeline, wgsl_struct,
};
use crate::gpu::error::Result;

const SOURCE: &str = include_str!("../../../shaders/dropout.wgsl");
/// Invocations per workgroup: the shader's `WG` override.
pub const WG: u32 = 64;

wgsl_struct! {
    /// `shaders/dropout.wgsl`'s uniform.
    struct Dims {
        rows: u32,
        features: u32,
        stride: u32,
        key: u32,
        ratio: f32,
        scale: f32,
        _pad0: u32,
        _pad1: u32,
    }
}

/// One layer's Dropout: `z` (rows × features, rows `stride` long) in place.
pub struct DropoutCall<'a> {
    pub label: String,
    pub rows: usize,
    pub features: usize,
    pub stride: usize,
    pub ratio: f32,
    pub z: Slice<'a>,
}

kernel_bindings! {
    /// The shader's one buffer: the layer's output, in place.
    struct Buffers<'a> {
        z: ReadWrite,
    }
}

pub struct DropoutKernel {
    layout: KernelLayout,
    train: wgpu::ComputePipeline,
    eval: wgpu::ComputePipeline,
}

impl DropoutKernel {
    pub fn new(ctx: &GpuContext) -> Self {
        let layout = kernel_layout::<Buffers, Dims>(ctx, "dropout");
        DropoutKernel {
            train: pipeline(
                ctx,
                "dropout train",
                &layout,
                SOURCE,
                &[("TRAIN", 1.0), ("WG", WG.into())],
            ),
            eval: pipeline(
                ctx,
                "dropout eval",
                &layout,
                SOURCE,
                &[("TRAIN", 0.0), ("WG", WG.into())],
            ),
            layout,
        }
    }

    /// The training mask; its key is written per step with
    /// [`DropoutDispatch::set_key`].
    pub fn train(&self, ctx: &GpuContext, call: DropoutCall<'_>) -> Result<DropoutDispatch> {
        self.bind(ctx, call, &self.train).map(DropoutDispatch)
    }

    /// Evaluation's scaling by `1 - ratio` (no key, no mask).
    pub fn eval(&self, ctx: &GpuContext, call: DropoutCall<'_>) -> Result<Dispatch> {
        self.bind(ctx, call, &self.eval)
    }

    fn bind(
        &self,
        ctx: &GpuContext,
        c: DropoutCall<'_>,
        pipeline: &wgpu::ComputePipeline,
    ) -> Result<Dispatch> {
        let dims = Dims {
            rows: c.rows as u32,
            features: c.features as u32,
            stride: c.stride as u32,
            key: 0,
            ratio: c.ratio,
            scale: 1.0 - c.ratio,
            _pad0: 0,
            _pad1: 0,
        };
        let max = ctx.limits.max_compute_workgroups_per_dimension;
        let groups = [
            (c.features as u32).div_ceil(WG),
            (c.rows as u32).clamp(1, max),
            1,
        ];
        let buffers = Buffers { z: c.z };
        dispatch(
            ctx,
            c.label,
            pipeline,
            &self.layout,
            &dims,
            &buffers,
            groups,
        )
    }
}

/// A training Dropout: a [`Dispatch`] whose mask's key can be rewritten.
pub struct DropoutDispatch(Dispatch);

impl DropoutDispatch {
    /// Sets the mask's key (seed, step and layer folded by
    /// [`crate::core::dropout_mask::layer_key`]).
    pub fn set_key(&self, ctx: &GpuContext, key: u32) {
        self.0
            .write_uniform(ctx, std::mem::offset_of!(Dims, key), &key);
    }

    pub fn into_dispatch(self) -> Dispatch {
        self.0
    }
}

impl std::ops::Deref for DropoutDispatch {
    type Target = Dispatch;
    fn deref(&self) -> &Dispatch {
        &self.0
    }
}

impl AsRef<Dispatch> for DropoutDispatch {
    fn as_ref(&self) -> &Dispatch {
        &self.0
    }
}

pub(super) fn contracts() -> Vec<crate::gpu::dispatch::StructContract> {
    vec![crate::gpu::dispatch::uniform_dims::<Dims>(vec![(
        "shaders/dropout.wgsl",
        SOURCE.into(),
    )])]
}

pub(super) fn binding_contracts() -> Vec<BindingContract> {
    vec![binding_contract::<Buffers>(
        "dropout",
        vec![("shaders/dropout.wgsl", SOURCE.into())],
    )]
}
