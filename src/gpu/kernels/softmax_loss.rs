//! `shaders/softmax_loss.wgsl`: per-row loss, accuracy and dY in one pass,
//! summed into a small stats buffer on the GPU.
//!
//! Imports `context`, `dispatch` and `error` only.

use crate::gpu::context::GpuContext;
use crate::gpu::dispatch::{
    Binding, Dispatch, Slice, bind_group_layout, dispatch, pipeline, wgsl_struct,
};
use crate::gpu::error::Result;

const SOURCE: &str = include_str!("../../../shaders/softmax_loss.wgsl");

wgsl_struct! {
    /// The sums the kernel accumulates, as laid out in the shader (`Stats`).
    #[derive(Debug, Default, PartialEq)]
    pub struct Stats {
        pub loss_sum: f32,
        pub correct: u32,
        pub rows: u32,
        pub _pad: u32,
    }
}

impl Stats {
    pub const BYTES: u64 = size_of::<Stats>() as u64;
    pub fn mean_loss(&self) -> f64 {
        self.loss_sum as f64 / self.rows.max(1) as f64
    }
    pub fn accuracy(&self) -> f64 {
        self.correct as f64 / self.rows.max(1) as f64
    }
}

wgsl_struct! {
    /// `shaders/softmax_loss.wgsl`'s uniform.
    struct Dims {
        rows: u32,
        classes: u32,
        want_grad: u32,
        stride: u32,
    }
}

/// One SoftmaxWithLoss: y, the logits (rows, classes) in rows `stride`
/// long; t, the labels (rows) as u32; dy, like y, written only when
/// `want_grad` and only in the real columns; stats, a 16-byte [`Stats`]
/// accumulator.
pub struct SoftmaxCall<'a> {
    pub label: String,
    pub rows: usize,
    pub classes: usize,
    pub stride: usize,
    pub want_grad: bool,
    pub y: Slice<'a>,
    pub t: Slice<'a>,
    pub dy: Slice<'a>,
    pub stats: Slice<'a>,
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
            &[Binding::uniform::<Dims>(), Read, Read, ReadWrite, ReadWrite],
        );
        let pipeline = pipeline(ctx, "softmax_loss", &layout, SOURCE, &[]);
        SoftmaxWithLoss { layout, pipeline }
    }

    /// The dispatch of one [`SoftmaxCall`].
    pub fn bind(&self, ctx: &GpuContext, c: SoftmaxCall<'_>) -> Result<Dispatch> {
        let dims = Dims {
            rows: c.rows as u32,
            classes: c.classes as u32,
            want_grad: c.want_grad as u32,
            stride: c.stride as u32,
        };
        dispatch(
            ctx,
            c.label,
            &self.pipeline,
            &self.layout,
            &dims,
            &[c.y, c.t, c.dy, c.stats],
            [1, 1, 1],
        )
    }
}

pub(super) fn contracts() -> Vec<crate::gpu::dispatch::StructContract> {
    let module = || vec![("shaders/softmax_loss.wgsl", SOURCE.to_string())];
    vec![
        crate::gpu::dispatch::uniform_dims::<Dims>(module()),
        crate::gpu::dispatch::StructContract {
            layout: <Stats as crate::gpu::dispatch::WgslStruct>::LAYOUT,
            wgsl_name: "Stats",
            uniform_at: None,
            modules: module(),
        },
    ]
}
