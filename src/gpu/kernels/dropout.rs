//! `shaders/dropout.wgsl`: Dropout in place on a layer's output, with the
//! mask of [`crate::dropout_mask`] in training and `1 - ratio` in evaluation.

use super::{Binding, Dispatch, Slice, bind_group_layout, dispatch, pipeline};
use crate::gpu::context::{GpuContext, Result};

const SOURCE: &str = include_str!("../../../shaders/dropout.wgsl");
const WG: u32 = 64;

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Dims {
    rows: u32,
    features: u32,
    stride: u32,
    key: u32,
    ratio: f32,
    scale: f32,
    _pad: [u32; 2],
}

/// Byte offset of `key` in the uniform.
const KEY_OFFSET: u64 = 12;

pub struct DropoutKernel {
    layout: wgpu::BindGroupLayout,
    train: wgpu::ComputePipeline,
    eval: wgpu::ComputePipeline,
}

impl DropoutKernel {
    pub fn new(ctx: &GpuContext) -> Self {
        let layout = bind_group_layout(ctx, "dropout", &[Binding::Uniform, Binding::ReadWrite]);
        DropoutKernel {
            train: pipeline(ctx, "dropout train", &layout, SOURCE, &[("TRAIN", 1.0)]),
            eval: pipeline(ctx, "dropout eval", &layout, SOURCE, &[("TRAIN", 0.0)]),
            layout,
        }
    }

    /// z (rows × features, rows `stride` long) in place. In training the
    /// key is written per step with [`Dispatch::set_dropout_key`].
    #[allow(clippy::too_many_arguments)]
    pub fn bind(
        &self,
        ctx: &GpuContext,
        label: &str,
        rows: usize,
        features: usize,
        stride: usize,
        ratio: f32,
        train: bool,
        z: Slice<'_>,
    ) -> Result<Dispatch> {
        let dims = Dims {
            rows: rows as u32,
            features: features as u32,
            stride: stride as u32,
            key: 0,
            ratio,
            scale: 1.0 - ratio,
            _pad: [0; 2],
        };
        let max = ctx.limits.max_compute_workgroups_per_dimension;
        let groups = [
            (features as u32).div_ceil(WG),
            (rows as u32).clamp(1, max),
            1,
        ];
        dispatch(
            ctx,
            label.to_string(),
            if train { &self.train } else { &self.eval },
            &self.layout,
            &dims,
            &[z],
            groups,
        )
    }
}

impl Dispatch {
    /// Sets the mask's key (seed, step and layer folded by
    /// [`crate::dropout_mask::layer_key`]) of a training dropout dispatch.
    pub fn set_dropout_key(&self, ctx: &GpuContext, key: u32) {
        ctx.queue
            .write_buffer(&self.uniform, KEY_OFFSET, bytemuck::bytes_of(&key));
    }
}
