//! The kernels that slide a window over images, chapter 7's: `Im2col`
//! (`shaders/window/im2col.wgsl` and, backward, `col2im.wgsl`) and `MaxPool`
//! (`maxpool_forward.wgsl` and `maxpool_backward.wgsl`, or, where the windows
//! tile the image, `maxpool_forward_quads.wgsl` and
//! `maxpool_backward_quads.wgsl`). Each is compiled after
//! `shaders/lib/columns.wgsl` and `shaders/window.wgsl`: their one uniform,
//! the slide's geometry ([`crate::core::conv::Slide`]) with two row strides,
//! and the helpers that follow a window. Each runs one invocation per
//! element it writes, but `im2col` on CPU adapters (one per row: the
//! planner's [`WindowGrain`]) and the quads kernels (one per window and four
//! channels: vec4 reads and writes of a convolution's rows, on every
//! adapter).
//!
//! Layouts (rows of matrices, `stride` f32 apart, as the rest of the GPU path):
//! - images: one row per image, its C·H·W values (CHW), or, as a
//!   convolution's input, also a convolution's output's layout ([`ImageLayout`]);
//! - `im2col`'s matrix: one row per window position (n, oy, ox), its C·FH·FW
//!   values (c, ky, kx), then optionally the ones column that carries a bias;
//! - a convolution's output (`z`): one row per position (n, y, x), its C channels;
//! - pooled (`p`): one row per image, (c, oy, ox), then optionally the ones column;
//! - `argmax`: one u32 per pooled value (n, c, oy, ox), the index in its window.
//!
//! Imports `context`, `dispatch`, `error` and `plan` (and `crate::core::conv`).

use crate::core::conv::Slide;
use crate::gpu::context::GpuContext;
use crate::gpu::dispatch::{
    BindingContract, Checks, Dispatch, KernelLayout, Slice, binding_contract, dispatch,
    kernel_bindings, kernel_layout, pipeline, pipeline_at, wgsl_struct,
};
use crate::gpu::error::Result;
pub use crate::gpu::plan::{WindowGrain, pools_by_quads};
use crate::gpu::plan::{pool_quads, window_grain};

/// A kernel of `shaders/window/` after `shaders/lib/columns.wgsl` (where a
/// window reads, shared with the tiled product) and `shaders/window.wgsl`,
/// as every module is composed (see `dispatch::compose`).
macro_rules! window_source {
    ($file:literal) => {
        concat!(
            include_str!("../../../shaders/lib/columns.wgsl"),
            "\n",
            include_str!("../../../shaders/window.wgsl"),
            "\n",
            include_str!(concat!("../../../shaders/window/", $file))
        )
    };
}

const IM2COL: &str = window_source!("im2col.wgsl");
const COL2IM: &str = window_source!("col2im.wgsl");
const POOL_FORWARD: &str = window_source!("maxpool_forward.wgsl");
const POOL_BACKWARD: &str = window_source!("maxpool_backward.wgsl");
const POOL_FORWARD_QUADS: &str = window_source!("maxpool_forward_quads.wgsl");
const POOL_BACKWARD_QUADS: &str = window_source!("maxpool_backward_quads.wgsl");

/// Each module as compiled, named as `tests/translate.rs` names it.
pub fn sources() -> [(&'static str, &'static str); 6] {
    [
        ("shaders/window+col2im.wgsl", COL2IM),
        ("shaders/window+im2col.wgsl", IM2COL),
        ("shaders/window+maxpool_backward.wgsl", POOL_BACKWARD),
        ("shaders/window+maxpool_forward.wgsl", POOL_FORWARD),
        (
            "shaders/window+maxpool_backward_quads.wgsl",
            POOL_BACKWARD_QUADS,
        ),
        (
            "shaders/window+maxpool_forward_quads.wgsl",
            POOL_FORWARD_QUADS,
        ),
    ]
}
/// Invocations per workgroup of every window kernel: `window.wgsl`'s `WG`
/// override.
pub const WG: u32 = 256;
const CONSTANTS: [(&str, f64); 1] = [("WG", WG as f64)];

wgsl_struct! {
    /// `shaders/window.wgsl`'s uniform.
    struct Dims {
        n: u32,
        c: u32,
        h: u32,
        w: u32,
        fh: u32,
        fw: u32,
        stride: u32,
        pad: u32,
        out_h: u32,
        out_w: u32,
        in_stride: u32,
        out_stride: u32,
        count: u32,
        groups_x: u32,
        flag: u32,
        image_layout: u32,
    }
}

/// How a convolution's input (im2col's `x`, col2im's output) holds its
/// images: `columns.wgsl`'s `IMAGES` and `POSITIONS` (`tests/contracts.rs`
/// holds the two sides equal).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageLayout {
    /// One row per image of its C·H·W values (CHW): the input, a pooling's output.
    Images = 0,
    /// One row per position (n, y, x) of its C channels: a convolution's output.
    Positions = 1,
}

/// Every [`ImageLayout`] by its name as a WGSL `const` in
/// shaders/lib/columns.wgsl (`tests/contracts.rs` holds the two sides equal).
pub const IMAGE_LAYOUT_CODES: [(&str, u32); 2] = [
    ("IMAGES", ImageLayout::Images as u32),
    ("POSITIONS", ImageLayout::Positions as u32),
];

/// The dims and workgroup grid for `count` invocations.
fn dims(
    ctx: &GpuContext,
    s: &Slide,
    strides: [usize; 2],
    count: usize,
    (flag, layout): (bool, ImageLayout),
) -> (Dims, [u32; 3]) {
    let groups = (count as u32).div_ceil(WG).max(1);
    let groups_x = groups.min(ctx.limits.max_compute_workgroups_per_dimension);
    let (i, k) = (s.input, s.window);
    let d = Dims {
        n: i.n as u32,
        c: i.c as u32,
        h: i.h as u32,
        w: i.w as u32,
        fh: k.h as u32,
        fw: k.w as u32,
        stride: k.stride as u32,
        pad: k.pad as u32,
        out_h: s.out_h as u32,
        out_w: s.out_w as u32,
        in_stride: strides[0] as u32,
        out_stride: strides[1] as u32,
        count: count as u32,
        groups_x,
        flag: flag as u32,
        image_layout: layout as u32,
    };
    (d, [groups_x, groups.div_ceil(groups_x), 1])
}

/// One `im2col`: images `x` (laid out as `layout` says, rows `x_stride`
/// apart) to `col` (rows `col_stride` apart, every element written), with
/// the ones column when `ones`.
pub struct Im2colCall<'a> {
    pub label: String,
    pub slide: Slide,
    pub layout: ImageLayout,
    pub x_stride: usize,
    pub col_stride: usize,
    pub ones: bool,
    pub x: Slice<'a>,
    pub col: Slice<'a>,
}

/// One `col2im`: `col` (rows `col_stride` apart) summed into images `x`
/// (laid out as `layout` says, rows `x_stride` apart: as `Images` only the
/// C·H·W values of each row written, as `Positions` every element, the
/// channels past C 0), kept only where `relu_mask` (laid out as x) is
/// above 0 when given: Relu's backward.
pub struct Col2imCall<'a> {
    pub label: String,
    pub slide: Slide,
    pub layout: ImageLayout,
    pub col_stride: usize,
    pub x_stride: usize,
    pub col: Slice<'a>,
    pub relu_mask: Option<Slice<'a>>,
    pub x: Slice<'a>,
}

kernel_bindings! {
    /// `im2col.wgsl`'s buffers.
    struct ToColumns<'a> {
        x: Read,
        col: ReadWrite,
    }
}

kernel_bindings! {
    /// `col2im.wgsl`'s buffers.
    struct FromColumns<'a> {
        col: Read,
        mask: Read,
        x: ReadWrite,
    }
}

kernel_bindings! {
    /// `maxpool_forward.wgsl`'s buffers.
    struct PoolForwardBuffers<'a> {
        z: Read,
        p: ReadWrite,
        argmax: ReadWrite,
    }
}

kernel_bindings! {
    /// The buffers of both pooling backwards.
    struct PoolBackwardBuffers<'a> {
        dp: Read,
        argmax: Read,
        z: Read,
        dz: ReadWrite,
    }
}

pub struct Im2col {
    forward_layout: KernelLayout,
    backward_layout: KernelLayout,
    /// A row per invocation, and an element per invocation.
    forward: [wgpu::ComputePipeline; 2],
    /// An image position per invocation, and an image value per invocation.
    backward: [wgpu::ComputePipeline; 2],
}

impl Im2col {
    pub fn new(ctx: &GpuContext) -> Self {
        let forward_layout = kernel_layout::<ToColumns, Dims>(ctx, "im2col");
        let backward_layout = kernel_layout::<FromColumns, Dims>(ctx, "col2im");
        // Both kernels' pipelines at each grain: WindowGrain::Rows, then Elements.
        let at = |(label, layout, source): (&str, &KernelLayout, &str), entries: [&str; 2]| {
            entries
                .map(|entry| pipeline_at(ctx, label, layout, source, entry, &CONSTANTS, Checks::On))
        };
        Im2col {
            forward: at(("im2col", &forward_layout, IM2COL), ["main", "by_element"]),
            backward: at(
                ("col2im", &backward_layout, COL2IM),
                ["by_position", "main"],
            ),
            forward_layout,
            backward_layout,
        }
    }

    /// `im2col` at the grain the planner gives this device.
    pub fn im2col(&self, ctx: &GpuContext, c: Im2colCall<'_>) -> Result<Dispatch> {
        self.im2col_at(ctx, c, window_grain(&ctx.profile))
    }

    /// `im2col` at `grain`, whatever the device.
    pub fn im2col_at(
        &self,
        ctx: &GpuContext,
        c: Im2colCall<'_>,
        grain: WindowGrain,
    ) -> Result<Dispatch> {
        let (count, pipeline) = match grain {
            WindowGrain::Rows => (c.slide.col_rows(), &self.forward[0]),
            WindowGrain::Elements => (c.slide.col_rows() * c.col_stride, &self.forward[1]),
        };
        let (flag, strides) = ((c.ones, c.layout), [c.x_stride, c.col_stride]);
        let (d, grid) = dims(ctx, &c.slide, strides, count, flag);
        dispatch(
            ctx,
            c.label,
            pipeline,
            &self.forward_layout,
            &d,
            &ToColumns { x: c.x, col: c.col },
            grid,
        )
    }

    /// `col2im` at the grain the planner gives this device.
    pub fn col2im(&self, ctx: &GpuContext, c: Col2imCall<'_>) -> Result<Dispatch> {
        self.col2im_at(ctx, c, window_grain(&ctx.profile))
    }

    /// `col2im` at `grain` (`Rows`: an image position per invocation),
    /// whatever the device.
    pub fn col2im_at(
        &self,
        ctx: &GpuContext,
        c: Col2imCall<'_>,
        grain: WindowGrain,
    ) -> Result<Dispatch> {
        let i = c.slide.input;
        let (count, pipeline) = match (grain, c.layout) {
            (WindowGrain::Rows, _) => (i.n * i.h * i.w, &self.backward[0]),
            (WindowGrain::Elements, ImageLayout::Images) => (i.len(), &self.backward[1]),
            (WindowGrain::Elements, ImageLayout::Positions) => {
                (i.n * i.h * i.w * c.x_stride, &self.backward[1])
            }
        };
        let flag = (c.relu_mask.is_some(), c.layout);
        let (d, grid) = dims(ctx, &c.slide, [c.col_stride, c.x_stride], count, flag);
        // Unmasked, the shader never reads `mask`: any other buffer binds.
        let buffers = FromColumns {
            col: c.col,
            mask: c.relu_mask.unwrap_or(c.col),
            x: c.x,
        };
        dispatch(
            ctx,
            c.label,
            pipeline,
            &self.backward_layout,
            &d,
            &buffers,
            grid,
        )
    }
}

/// Max pooling forward: `z` (rows (n, y, x) of C channels, `z_stride` apart)
/// to `p` (rows per image, `p_stride` apart, every element written, the
/// ones column when `ones`) and `argmax`.
pub struct PoolForwardCall<'a> {
    pub label: String,
    pub slide: Slide,
    pub z_stride: usize,
    pub p_stride: usize,
    pub ones: bool,
    pub z: Slice<'a>,
    pub p: Slice<'a>,
    pub argmax: Slice<'a>,
}

/// Max pooling backward: `dp` (as p) through `argmax` into `dz` (as z,
/// every element written), masked by Relu's `z > 0` when `relu`.
pub struct PoolBackwardCall<'a> {
    pub label: String,
    pub slide: Slide,
    pub z_stride: usize,
    pub p_stride: usize,
    pub relu: bool,
    pub dp: Slice<'a>,
    pub argmax: Slice<'a>,
    pub z: Slice<'a>,
    pub dz: Slice<'a>,
}

pub struct MaxPool {
    forward_layout: KernelLayout,
    backward_layout: KernelLayout,
    forward: wgpu::ComputePipeline,
    forward_quads: wgpu::ComputePipeline,
    backward: wgpu::ComputePipeline,
    backward_quads: wgpu::ComputePipeline,
}

impl MaxPool {
    pub fn new(ctx: &GpuContext) -> Self {
        let forward_layout = kernel_layout::<PoolForwardBuffers, Dims>(ctx, "maxpool forward");
        let backward_layout = kernel_layout::<PoolBackwardBuffers, Dims>(ctx, "maxpool backward");
        MaxPool {
            forward: pipeline(
                ctx,
                "maxpool forward",
                &forward_layout,
                POOL_FORWARD,
                &CONSTANTS,
            ),
            backward: pipeline(
                ctx,
                "maxpool backward",
                &backward_layout,
                POOL_BACKWARD,
                &CONSTANTS,
            ),
            forward_quads: pipeline(
                ctx,
                "maxpool forward (quads)",
                &forward_layout,
                POOL_FORWARD_QUADS,
                &CONSTANTS,
            ),
            backward_quads: pipeline(
                ctx,
                "maxpool backward (quads)",
                &backward_layout,
                POOL_BACKWARD_QUADS,
                &CONSTANTS,
            ),
            forward_layout,
            backward_layout,
        }
    }

    /// One invocation per element of `p` (`maxpool_forward.wgsl`), or per
    /// window and quad of channels where [`pools_by_quads`].
    pub fn forward(&self, ctx: &GpuContext, c: PoolForwardCall<'_>) -> Result<Dispatch> {
        let (count, pipeline) = if pools_by_quads(&c.slide, c.z_stride) {
            (pool_quads(&c.slide, c.z_stride), &self.forward_quads)
        } else {
            (c.slide.input.n * c.p_stride, &self.forward)
        };
        let flag = (c.ones, ImageLayout::Images);
        let (d, grid) = dims(ctx, &c.slide, [c.z_stride, c.p_stride], count, flag);
        let slices = PoolForwardBuffers {
            z: c.z,
            p: c.p,
            argmax: c.argmax,
        };
        dispatch(
            ctx,
            c.label,
            pipeline,
            &self.forward_layout,
            &d,
            &slices,
            grid,
        )
    }

    /// The gather (`maxpool_backward.wgsl`), or one invocation per window
    /// and quad of channels where [`pools_by_quads`].
    pub fn backward(&self, ctx: &GpuContext, c: PoolBackwardCall<'_>) -> Result<Dispatch> {
        let i = c.slide.input;
        let (count, pipeline) = if pools_by_quads(&c.slide, c.z_stride) {
            (pool_quads(&c.slide, c.z_stride), &self.backward_quads)
        } else {
            (i.n * i.h * i.w * c.z_stride, &self.backward)
        };
        let flag = (c.relu, ImageLayout::Images);
        let (d, grid) = dims(ctx, &c.slide, [c.z_stride, c.p_stride], count, flag);
        let slices = PoolBackwardBuffers {
            dp: c.dp,
            argmax: c.argmax,
            z: c.z,
            dz: c.dz,
        };
        dispatch(
            ctx,
            c.label,
            pipeline,
            &self.backward_layout,
            &d,
            &slices,
            grid,
        )
    }
}

pub(super) fn contracts() -> Vec<crate::gpu::dispatch::StructContract> {
    vec![crate::gpu::dispatch::uniform_dims::<Dims>(
        sources()
            .into_iter()
            .map(|(name, source)| (name, source.into()))
            .collect(),
    )]
}

pub(super) fn binding_contracts() -> Vec<BindingContract> {
    let module = |i: usize| {
        let (name, source) = sources()[i];
        vec![(name, source.to_string())]
    };
    vec![
        binding_contract::<FromColumns>("col2im", module(0)),
        binding_contract::<ToColumns>("im2col", module(1)),
        binding_contract::<PoolBackwardBuffers>(
            "maxpool backward",
            [module(2), module(4)].concat(),
        ),
        binding_contract::<PoolForwardBuffers>("maxpool forward", [module(3), module(5)].concat()),
    ]
}
