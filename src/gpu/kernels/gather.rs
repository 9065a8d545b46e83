//! `shaders/gather.wgsl`: a batch of f32 inputs and u32 labels from the u8
//! dataset on the GPU, through a buffer of sample indices.
//!
//! Imports `context`, `dispatch` and `error` only.

use crate::gpu::context::GpuContext;
use crate::gpu::dispatch::{
    BindingContract, Dispatch, KernelLayout, Slice, binding_contract, dispatch, kernel_bindings,
    kernel_layout, pipeline, wgsl_struct,
};
use crate::gpu::error::Result;

const SOURCE: &str = include_str!("../../../shaders/gather.wgsl");
/// Invocations per workgroup: the shader's `WG` override.
pub const WG: u32 = 256;
/// vec4s of x per invocation: the shader's `CHUNK` override.
pub const CHUNK: u32 = 8;

wgsl_struct! {
    /// `shaders/gather.wgsl`'s uniform.
    struct Dims {
        rows: u32,
        pixels: u32,
        offset: u32,
        groups_x: u32,
        stride: u32,
        per_region: u32,
        region_rows: u32,
        _pad0: u32,
    }
}

/// One gather: for sample `e < rows`, landing on row `r` (`e` itself, or
/// as `regions` lay batches out), `x[r, ..pixels] = images[idx[offset +
/// e]] / 255`, `x[r, pixels] = 1` and `t[r] = labels[idx[offset + e]]`;
/// x's rows are `stride` long. images: packed u8 ([`pack_u8`]); labels:
/// one u32 each.
pub struct GatherCall<'a> {
    pub label: String,
    pub rows: usize,
    /// Several batches: (samples per batch, rows from one batch's first
    /// row to the next's); None, one batch of `rows`.
    pub regions: Option<(usize, usize)>,
    pub pixels: usize,
    pub stride: usize,
    pub offset: usize,
    pub images: Slice<'a>,
    pub labels: Slice<'a>,
    pub idx: Slice<'a>,
    pub x: Slice<'a>,
    pub t: Slice<'a>,
}

kernel_bindings! {
    /// The shader's buffers, as [`GatherCall`] names them.
    struct Buffers<'a> {
        images: Read,
        labels: Read,
        idx: Read,
        x: ReadWrite,
        t: ReadWrite,
    }
}

pub struct Gather {
    layout: KernelLayout,
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
        let layout = kernel_layout::<Buffers, Dims>(ctx, "gather");
        let pipeline = pipeline(
            ctx,
            "gather",
            &layout,
            SOURCE,
            &[("WG", WG.into()), ("CHUNK", CHUNK.into())],
        );
        Gather { layout, pipeline }
    }

    /// The dispatch of one [`GatherCall`].
    pub fn bind(&self, ctx: &GpuContext, call: GatherCall<'_>) -> Result<Dispatch> {
        let GatherCall {
            label,
            rows,
            regions,
            pixels,
            stride,
            offset,
            images,
            labels,
            idx,
            x,
            t,
        } = call;
        // Each invocation writes up to CHUNK vec4s of a row and (the first
        // `rows`) a label.
        let invocations = (rows * (pixels / 4 + 1).div_ceil(CHUNK as usize)).max(rows) as u32;
        let (per_region, region_rows) = regions.unwrap_or((rows.max(1), rows.max(1)));
        let groups = invocations.div_ceil(WG);
        let max = ctx.limits.max_compute_workgroups_per_dimension;
        let groups_x = groups.min(max);
        let dims = Dims {
            rows: rows as u32,
            pixels: pixels as u32,
            offset: offset as u32,
            groups_x,
            stride: stride as u32,
            per_region: per_region as u32,
            region_rows: region_rows as u32,
            _pad0: 0,
        };
        let grid = [groups_x, groups.div_ceil(groups_x), 1];
        dispatch(
            ctx,
            label,
            &self.pipeline,
            &self.layout,
            &dims,
            &Buffers {
                images,
                labels,
                idx,
                x,
                t,
            },
            grid,
        )
    }
}

pub(super) fn contracts() -> Vec<crate::gpu::dispatch::StructContract> {
    vec![crate::gpu::dispatch::uniform_dims::<Dims>(vec![(
        "shaders/gather.wgsl",
        SOURCE.into(),
    )])]
}

pub(super) fn binding_contracts() -> Vec<BindingContract> {
    vec![binding_contract::<Buffers>(
        "gather",
        vec![("shaders/gather.wgsl", SOURCE.into())],
    )]
}
