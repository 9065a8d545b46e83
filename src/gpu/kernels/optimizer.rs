//! `shaders/optimizer.wgsl`: every update rule of [`crate::optim`] as one
//! elementwise pass over the parameter arena, with its state arrays beside it
//! on the GPU.

use super::{Binding, Dispatch, Slice, bind_group_layout, dispatch, pipeline};
use crate::gpu::context::{GpuContext, Result};
use crate::optim::{Optimizer, OptimizerKind};

const SOURCE: &str = include_str!("../../../shaders/optimizer.wgsl");
/// Invocations per workgroup, and vec4s per invocation, as in the shader.
const WG: u32 = 64;
const PER: u32 = 4;

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Dims {
    len4: u32,
    lr: f32,
    c1: f32,
    c2: f32,
    k1: f32,
    k2: f32,
    _pad: [u32; 2],
}

/// Byte offset of `lr` in the uniform.
const LR_OFFSET: u64 = 4;

pub struct OptimizerKernel {
    layout: wgpu::BindGroupLayout,
    pipeline: wgpu::ComputePipeline,
    pub rule: Optimizer,
}

impl OptimizerKernel {
    pub fn new(ctx: &GpuContext, rule: Optimizer) -> Self {
        use Binding::*;
        let layout = bind_group_layout(
            ctx,
            "optimizer",
            &[Uniform, ReadWrite, Read, ReadWrite, ReadWrite],
        );
        let code = match rule.kind {
            OptimizerKind::Sgd => 0.0,
            OptimizerKind::Momentum => 1.0,
            OptimizerKind::Nesterov => 2.0,
            OptimizerKind::AdaGrad => 3.0,
            OptimizerKind::RmsProp => 4.0,
            OptimizerKind::Adam => 5.0,
        };
        let pipeline = pipeline(
            ctx,
            &format!("optimizer {}", rule.kind),
            &layout,
            SOURCE,
            &[("RULE", code)],
        );
        OptimizerKernel {
            layout,
            pipeline,
            rule,
        }
    }

    /// One update of `params` (a multiple of 4 elements) from `grads`;
    /// `s1`, `s2` the rule's state (any small buffer where it keeps none).
    /// The learning rate is set per step with [`Dispatch::set_step_lr`].
    pub fn bind(
        &self,
        ctx: &GpuContext,
        label: &str,
        params: Slice<'_>,
        grads: Slice<'_>,
        s1: Slice<'_>,
        s2: Slice<'_>,
    ) -> Result<Dispatch> {
        let r = self.rule;
        let c1 = match r.kind {
            OptimizerKind::RmsProp => r.decay_rate,
            OptimizerKind::Adam => r.beta1,
            _ => r.momentum,
        };
        let len4 = (params.len / 4) as u32;
        let dims = Dims {
            len4,
            lr: 0.0,
            c1: c1 as f32,
            c2: r.beta2 as f32,
            k1: (1.0 - c1) as f32,
            k2: (1.0 - r.beta2) as f32,
            _pad: [0; 2],
        };
        let max = ctx.limits.max_compute_workgroups_per_dimension;
        let groups = [len4.div_ceil(WG * PER).clamp(1, max), 1, 1];
        dispatch(
            ctx,
            label.to_string(),
            &self.pipeline,
            &self.layout,
            &dims,
            &[params, grads, s1, s2],
            groups,
        )
    }
}

impl Dispatch {
    /// Sets the learning rate (Adam's `lr_t`) of an optimizer dispatch.
    pub fn set_step_lr(&self, ctx: &GpuContext, lr: f32) {
        ctx.queue
            .write_buffer(&self.uniform, LR_OFFSET, bytemuck::bytes_of(&lr));
    }
}
