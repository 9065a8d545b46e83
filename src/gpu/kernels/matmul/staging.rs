//! Where a product's operands and scratch live: split-K's one partial-sum
//! buffer, and the two textures the vec4 kernel stages A and B in (see
//! `shaders/matmul/vec4/textures.wgsl` for why), each shared by every
//! product of a `Matmul` (they run one after another) and as large as the
//! largest needs.
//!
//! Part of `kernels::matmul`: imports its `contract`, `context`, `dispatch`.

use std::sync::Mutex;

use crate::gpu::context::{GpuContext, MatmulAlgo};
use crate::gpu::dispatch::Slice;
use crate::gpu::plan::MatmulShape;

use super::contract::MatmulVariant;

/// Texels per row of a staged operand's texture, as a power of two
/// (`TEXELS_LOG2` in textures.wgsl): 4096, half the 8192 every WebGPU
/// device allows, so a texture holds 4096 × the device's height limit texels.
pub const TEXELS_LOG2: u32 = 12;
pub const TEXELS_PER_ROW: u64 = 1 << TEXELS_LOG2;

/// Where the vec4 kernel reads A and B from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum OperandSource {
    Buffers,
    /// Copies in textures, made right before the product.
    Textures,
}

/// Where the product reads A and B: textures when `algo` is
/// [`MatmulAlgo::Vec4`], they fit ([`stages_operands`]) and their offsets
/// (`at`, when known) are whole texels.
pub(super) fn operand_source(
    ctx: &GpuContext,
    algo: MatmulAlgo,
    v: &MatmulVariant,
    s: &MatmulShape,
    at: Option<[Slice<'_>; 2]>,
) -> OperandSource {
    let whole_texels = at.is_none_or(|ab| ab.iter().all(|x| x.offset.is_multiple_of(4)));
    if stages_operands(ctx, algo, v, s) && whole_texels {
        OperandSource::Textures
    } else {
        OperandSource::Buffers
    }
}

/// The shared buffer and textures, each replaced by a larger one when a
/// product needs more; reserving the largest first (see [`Staging::reserve`])
/// makes every product share one.
#[derive(Default)]
pub(super) struct Staging {
    partials: Mutex<Option<wgpu::Buffer>>,
    textures: Mutex<[Option<wgpu::Texture>; 2]>,
}

impl Staging {
    /// Makes the buffer and textures at the sizes every product to come
    /// fits in (see `budget::largest_scratch`).
    pub(super) fn reserve(&self, ctx: &GpuContext, scratch: &Scratch) {
        if scratch.partial_bytes > 0 {
            self.partials(ctx, scratch.partial_bytes);
        }
        if scratch.staged_texels.iter().any(|&t| t > 0) {
            self.textures(ctx, scratch.staged_texels);
        }
    }

    /// The textures A and B are staged in, holding at least `texels` each.
    pub(super) fn textures(&self, ctx: &GpuContext, texels: [u64; 2]) -> [wgpu::Texture; 2] {
        let mut held = self.textures.lock().unwrap();
        let mut pick = |i: usize| match &held[i] {
            Some(t) if t.height() as u64 * TEXELS_PER_ROW >= texels[i] => t.clone(),
            _ => {
                let t = ctx.texture(
                    ["matmul operand A", "matmul operand B"][i],
                    TEXELS_PER_ROW as u32,
                    texture_rows(texels[i]) as u32,
                );
                held[i] = Some(t.clone());
                t
            }
        };
        [pick(0), pick(1)]
    }

    /// The partial-sum buffer, at least `bytes` long.
    pub(super) fn partials(&self, ctx: &GpuContext, bytes: u64) -> wgpu::Buffer {
        let mut held = self.partials.lock().unwrap();
        match &*held {
            Some(b) if b.size() >= bytes => b.clone(),
            _ => {
                let b = ctx.storage("split-K partial sums", bytes);
                *held = Some(b.clone());
                b
            }
        }
    }
}

/// How many texels of A and of B a product reads when they are staged in
/// textures: their rows as stored, times the row length, over 4.
pub fn operand_texels(v: &MatmulVariant, s: &MatmulShape) -> [u64; 2] {
    let a_rows = if v.trans_a { s.k } else { s.m };
    let b_rows = if v.trans_b { s.n } else { s.k };
    [(a_rows * s.lda / 4) as u64, (b_rows * s.ldb / 4) as u64]
}

/// Rows of a staging texture holding `texels`.
fn texture_rows(texels: u64) -> u64 {
    texels.div_ceil(TEXELS_PER_ROW).max(1)
}

/// Whether `algo` reads this product's operands from textures: the vec4
/// kernel's default, when both operands fit the device's textures (4096
/// texels wide, and no taller than it allows); otherwise both are read from
/// their buffers. (`Matmul::bind` also reads the buffers when an operand
/// starts partway into a texel, which the network's 256-byte-aligned
/// blocks never do.)
pub fn stages_operands(
    ctx: &GpuContext,
    algo: MatmulAlgo,
    v: &MatmulVariant,
    s: &MatmulShape,
) -> bool {
    algo == MatmulAlgo::Vec4
        && TEXELS_PER_ROW <= ctx.limits.max_texture_dimension_2d as u64
        && operand_texels(v, s)
            .iter()
            .all(|&t| texture_rows(t) <= ctx.limits.max_texture_dimension_2d as u64)
}

/// What the matmul's products share: split-K's one partial-sum buffer and
/// the two textures its vec4 kernel stages A and B in (`Staging`), each as large as the largest product needs (see
/// `budget::largest_scratch`, which counts it, and `Matmul::reserve`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Scratch {
    /// Bytes of the partial sums (0: no product is split).
    pub partial_bytes: u64,
    /// Texels of A's and of B's staging texture (0: no operand is staged).
    pub staged_texels: [u64; 2],
}
