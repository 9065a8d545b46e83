//! `shaders/gather.wgsl`: a batch of f32 inputs and u32 labels from the u8
//! dataset on the GPU, through a buffer of sample indices.

use super::{Binding, Dispatch, Slice, bind_group_layout, dispatch, pipeline};
use crate::gpu::context::{GpuContext, Result};

const SOURCE: &str = include_str!("../../../shaders/gather.wgsl");
const WG: u32 = 256;
/// vec4s of x per invocation, as in the shader.
const CHUNK: usize = 8;

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Dims {
    rows: u32,
    pixels: u32,
    offset: u32,
    groups_x: u32,
    stride: u32,
    _pad: [u32; 3],
}

pub struct Gather {
    layout: wgpu::BindGroupLayout,
    pipeline: wgpu::ComputePipeline,
}

/// Packs u8 pixels four to a u32, little-endian, as the shader unpacks them.
pub fn pack_u8(bytes: &[u8]) -> Vec<u32> {
    bytes
        .chunks(4)
        .map(|c| c.iter().rev().fold(0u32, |acc, &b| (acc << 8) | b as u32))
        .collect()
}

impl Gather {
    pub fn new(ctx: &GpuContext) -> Self {
        use Binding::*;
        let layout = bind_group_layout(
            ctx,
            "gather",
            &[Uniform, Read, Read, Read, ReadWrite, ReadWrite],
        );
        let pipeline = pipeline(ctx, "gather", &layout, SOURCE, &[]);
        Gather { layout, pipeline }
    }

    /// x[r, ..pixels] = images[idx[offset + r]] / 255, x[r, pixels] = 1 and
    /// t[r] = labels[idx[offset + r]] for r < rows; x's rows are `stride`
    /// long. images: packed u8 ([`pack_u8`]); labels: one u32 each.
    #[allow(clippy::too_many_arguments)]
    pub fn bind(
        &self,
        ctx: &GpuContext,
        label: &str,
        rows: usize,
        pixels: usize,
        stride: usize,
        offset: usize,
        images: Slice<'_>,
        labels: Slice<'_>,
        idx: Slice<'_>,
        x: Slice<'_>,
        t: Slice<'_>,
    ) -> Result<Dispatch> {
        // Each invocation writes up to CHUNK vec4s of a row and (the first
        // `rows`) a label.
        let invocations = (rows * (pixels / 4 + 1).div_ceil(CHUNK)).max(rows) as u32;
        let groups = invocations.div_ceil(WG);
        let max = ctx.limits.max_compute_workgroups_per_dimension;
        let groups_x = groups.min(max);
        let dims = Dims {
            rows: rows as u32,
            pixels: pixels as u32,
            offset: offset as u32,
            groups_x,
            stride: stride as u32,
            _pad: [0; 3],
        };
        let grid = [groups_x, groups.div_ceil(groups_x), 1];
        dispatch(
            ctx,
            label.to_string(),
            &self.pipeline,
            &self.layout,
            &dims,
            &[images, labels, idx, x, t],
            grid,
        )
    }
}
