//! `shaders/softmax_loss.wgsl`: per-row loss, accuracy and dY in one pass,
//! summed into a small stats buffer on the GPU.

use super::{Binding, Dispatch, Slice, bind_group_layout, dispatch, pipeline};
use crate::gpu::context::{GpuContext, Result};

const SOURCE: &str = include_str!("../../../shaders/softmax_loss.wgsl");

/// The sums the kernel accumulates, as laid out in the shader.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct Stats {
    pub loss_sum: f32,
    pub correct: u32,
    pub rows: u32,
    pub _pad: u32,
}

impl Stats {
    pub const BYTES: u64 = 16;
    pub fn mean_loss(&self) -> f64 {
        self.loss_sum as f64 / self.rows.max(1) as f64
    }
    pub fn accuracy(&self) -> f64 {
        self.correct as f64 / self.rows.max(1) as f64
    }
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Dims {
    rows: u32,
    classes: u32,
    want_grad: u32,
    stride: u32,
}

pub struct SoftmaxWithLoss {
    layout: wgpu::BindGroupLayout,
    pipeline: wgpu::ComputePipeline,
}

impl SoftmaxWithLoss {
    pub fn new(ctx: &GpuContext) -> Self {
        use Binding::*;
        let layout = bind_group_layout(
            ctx,
            "softmax_loss",
            &[Uniform, Read, Read, ReadWrite, ReadWrite],
        );
        let pipeline = pipeline(ctx, "softmax_loss", &layout, SOURCE, &[]);
        SoftmaxWithLoss { layout, pipeline }
    }

    /// y: logits (rows, classes) in rows `stride` long; t: labels (rows) as
    /// u32; dy: like y, written only when `want_grad` and only in the real
    /// columns; stats: a 16-byte [`Stats`] accumulator.
    #[allow(clippy::too_many_arguments)]
    pub fn bind(
        &self,
        ctx: &GpuContext,
        label: &str,
        rows: usize,
        classes: usize,
        stride: usize,
        want_grad: bool,
        y: Slice<'_>,
        t: Slice<'_>,
        dy: Slice<'_>,
        stats: Slice<'_>,
    ) -> Result<Dispatch> {
        let dims = Dims {
            rows: rows as u32,
            classes: classes as u32,
            want_grad: want_grad as u32,
            stride: stride as u32,
        };
        dispatch(
            ctx,
            label.to_string(),
            &self.pipeline,
            &self.layout,
            &dims,
            &[y, t, dy, stats],
            [1, 1, 1],
        )
    }
}
