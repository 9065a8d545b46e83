//! C = A·B in the three forms a training step needs (X·W, dY·Wᵀ, Xᵀ·dY),
//! with Relu, Relu's mask or the SGD update fused into the epilogue (the bias
//! is in the operands: see `gpu::layout`). Two implementations of one
//! contract (`shaders/matmul.wgsl`, compiled before either):
//! `shaders/matmul/tiled.wgsl` tiles through workgroup memory, 64×64 with
//! 4×4 per invocation or 128×128 with 8×8 (for GPUs; its product passes are
//! compiled without the runtime's bounds checks, and their operands'
//! lengths are checked here instead); `shaders/matmul/vec4.wgsl` keeps a
//! 12×16 tile in registers fed by vec4 loads and uses no workgroup memory
//! (for CPU-like adapters such as lavapipe, where every computed load is a
//! loop over the SIMD lanes), reading its operands from textures they are
//! copied into before each product (`shaders/matmul/vec4/textures.wgsl`
//! says why) or straight from the buffers.
//!
//! `contract` holds what the shaders and callers agree on, `pipelines` the
//! modules and their compiled pipelines, `staging` where operands and
//! scratch live, and this file binds a product. Imports `context`,
//! `dispatch`, `error` and `plan` (grids come from the planner).

mod contract;
mod pipelines;
mod staging;

pub use crate::gpu::context::MatmulAlgo;
pub use crate::gpu::cost::Tile;
pub use crate::gpu::plan::{MatmulPlan, MatmulShape, SplitK};
pub use contract::{
    Columns, EPILOGUE_CODES, Epilogue, MatmulCall, MatmulDispatch, MatmulVariant, PARTIAL_SUMS,
};
pub use pipelines::{modules, tiled_source, vec4_source};
pub use staging::{Scratch, TEXELS_LOG2, TEXELS_PER_ROW, operand_texels, stages_operands};

use crate::gpu::context::GpuContext;
use crate::gpu::dispatch::{
    BindingContract, Dispatch, Slice, StructContract, TextureCopy, binding_contract, dispatch,
    uniform_dims,
};
use crate::gpu::error::{GpuError, Result};
use crate::gpu::kernels::window::ImageLayout;
use crate::gpu::plan::REDUCE_WG;
use bytemuck::Zeroable;
use contract::{Dims, Operands, StagedOperands, TiledOperands};
use pipelines::{Pass, Pipelines};
use staging::{OperandSource, Staging, operand_source};

pub struct Matmul {
    pub algo: MatmulAlgo,
    /// The tiled kernel's tile when given ([`Matmul::with_tile`]); else the
    /// planner's.
    tile: Option<Tile>,
    pipelines: Pipelines,
    staging: Staging,
}

/// One pass of a product, ready to bind: its pipeline, its operands (A and
/// B as buffers, staged into textures by the pass when `ops` says so), its
/// grid, and the texels of A and B that staging copies.
struct ProductPass<'a> {
    label: String,
    pipeline: wgpu::ComputePipeline,
    operands: Operands<'a>,
    groups: [u32; 3],
    ops: OperandSource,
    texels: [u64; 2],
    /// A is read as im2col's columns of the images in `a`, never as vec4s.
    columns: bool,
}

impl Matmul {
    /// The implementation the context chose (see [`MatmulAlgo::for_adapter`]).
    pub fn new(ctx: &GpuContext) -> Self {
        Self::with_algo(ctx, ctx.matmul_algo)
    }

    pub fn with_algo(ctx: &GpuContext, algo: MatmulAlgo) -> Self {
        Matmul {
            algo,
            tile: None,
            pipelines: Pipelines::new(ctx, algo),
            staging: Staging::default(),
        }
    }

    /// This kernel with the tiled kernel's tile fixed (tests, `bench
    /// --matmul`); the split of K is still planned for that tile.
    pub fn with_tile(mut self, tile: Tile) -> Self {
        self.tile = Some(tile);
        self
    }

    /// This kernel with the tiled kernel reading A and B a float at a time
    /// wherever it would read vec4s (`bench --matmul` times both; the
    /// sums, and so the bits, are the same).
    pub fn with_float_reads(mut self) -> Self {
        self.pipelines.float_reads = true;
        self
    }

    /// The tile, workgroup grid and split of K the planner gives a product
    /// on this device (`plan::plan_product`).
    pub fn plan(&self, ctx: &GpuContext, s: &MatmulShape, split: SplitK) -> MatmulPlan {
        match (self.tile, self.algo) {
            (Some(tile), MatmulAlgo::Tiled) => {
                crate::gpu::plan::plan_tiled(&ctx.profile, tile, s, split)
            }
            _ => plan_product(ctx, self.algo, s, split),
        }
    }

    /// Makes the shared partial-sum buffer and staging textures at the
    /// sizes every product to come fits in (see `budget::largest_scratch`).
    pub fn reserve(&self, ctx: &GpuContext, scratch: &Scratch) {
        self.staging.reserve(ctx, scratch);
    }

    /// Creates the pipelines these products need, ahead of their binding.
    pub fn prepare(&self, ctx: &GpuContext, products: &[(MatmulVariant, MatmulShape)]) {
        let keys = products
            .iter()
            .flat_map(|(v, s)| {
                let ops = operand_source(ctx, self.algo, v, s, None);
                let plan = self.plan(ctx, s, SplitK::Auto);
                self.pipelines.keys(*v, s, &plan, ops)
            })
            .collect();
        self.pipelines.prepare(ctx, keys);
    }

    /// A dispatch computing `c = epilogue(op(a)·op(b))`. `aux` is read only
    /// by [`Epilogue::ReluMask`] and [`Epilogue::Grad`] and must then have
    /// c's shape. K is split as [`Matmul::plan`] chooses.
    pub fn bind(&self, ctx: &GpuContext, call: MatmulCall<'_>) -> Result<MatmulDispatch> {
        self.bind_split(ctx, call, SplitK::Auto)
    }

    /// [`Matmul::bind`] with the split of K given. A split product is two
    /// dispatches: partial sums per slice of K into the shared partial-sum
    /// buffer (`split_k` × M × ldc floats), then their sum in a fixed order
    /// with the epilogue applied once (the second is the first's `then`).
    pub fn bind_split(
        &self,
        ctx: &GpuContext,
        call: MatmulCall<'_>,
        split: SplitK,
    ) -> Result<MatmulDispatch> {
        let MatmulCall {
            label,
            v,
            shape: s,
            a,
            b,
            c,
            aux,
            columns,
        } = call;
        self.check_shape(&label, &v, &s)?;
        if columns.is_some() && self.algo != MatmulAlgo::Tiled {
            return Err(GpuError::Shape(format!(
                "{label}: only the tiled matmul reads A as im2col's columns, this one is {:?}",
                self.algo
            )));
        }
        if self.algo == MatmulAlgo::Tiled {
            check_operands(&label, &v, &s, [a, b, c], aux, columns.is_some())?;
            if let Some(cols) = &columns {
                check_columns(&label, &v, &s, cols, a)?;
            }
        }
        let plan = self.plan(ctx, &s, split);
        let dims = dims(&s, &plan, columns.as_ref());
        let ops = operand_source(ctx, self.algo, &v, &s, Some([a, b]));
        let key = |pass| {
            let tile = (plan.tile, columns.is_some());
            self.pipelines.key(pass, v, &s, ops, tile)
        };
        let operands = Operands {
            a,
            b,
            c,
            aux: aux.unwrap_or(a),
        };
        let pass = |label, pass, operands| ProductPass {
            label,
            pipeline: self.pipelines.get(ctx, key(pass)),
            operands,
            groups: plan.groups,
            ops,
            texels: operand_texels(&v, &s),
            columns: columns.is_some(),
        };
        if plan.split_k == 1 {
            let whole = pass(label, Pass::Whole, operands);
            return self.product(ctx, whole, &dims).map(MatmulDispatch);
        }
        let len = plan.split_k as usize * s.m * s.ldc;
        ctx.check_binding(&format!("{label}: split-K partial sums"), len as u64 * 4)?;
        let partials = self.staging.partials(ctx, len as u64 * 4);
        let partials = Slice::new(&partials, 0, len);
        let sums = Operands {
            c: partials,
            aux: a,
            ..operands
        };
        let first = pass(
            format!("{label} [split-K {}]", plan.split_k),
            Pass::Partial,
            sums,
        );
        let mut first = self.product(ctx, first, &dims)?;
        let reduce = dispatch(
            ctx,
            format!("{label} [split-K reduce]"),
            &self.pipelines.get(ctx, key(Pass::Reduce)),
            &self.pipelines.buffers,
            &dims,
            &Operands {
                a: partials,
                b,
                c,
                aux: aux.unwrap_or(partials),
            },
            [(s.n as u32).div_ceil(REDUCE_WG), s.m as u32, 1],
        )?;
        first.then = Some(Box::new(reduce));
        Ok(MatmulDispatch(first))
    }

    /// Refuses a shape the vec4 kernel cannot compute.
    fn check_shape(&self, label: &str, v: &MatmulVariant, s: &MatmulShape) -> Result<()> {
        if self.algo.is_vec4() {
            let aligned = [s.n, s.k, s.lda, s.ldb, s.ldc]
                .iter()
                .all(|d| d.is_multiple_of(4))
                && (!v.trans_a || s.m.is_multiple_of(4));
            if !aligned || s.m == 0 || s.n == 0 {
                return Err(GpuError::Shape(format!(
                    "{label}: the vec4 matmul needs N, K and the strides (and M when A is transposed) to be non-zero multiples of 4, got {s:?}"
                )));
            }
        }
        Ok(())
    }

    /// One product pass reading `a` and `b` as the pipeline's layout says:
    /// from the buffers, or from the shared staging textures, with the
    /// copies into them (the first `texels` of each operand, or all of a
    /// shorter slice) recorded before it.
    fn product(&self, ctx: &GpuContext, p: ProductPass<'_>, dims: &Dims) -> Result<Dispatch> {
        let Operands { a, b, c, aux } = p.operands;
        if self.algo == MatmulAlgo::Tiled {
            let b4 = whole_vec4s(&p.label, "B", b)?;
            let operands = TiledOperands {
                a,
                b,
                c,
                aux,
                // Images read through columns are never read as vec4s: any
                // vec4 view binds.
                a4: match p.columns {
                    true => b4,
                    false => whole_vec4s(&p.label, "A", a)?,
                },
                b4,
            };
            let layout = &self.pipelines.tiled;
            return dispatch(ctx, p.label, &p.pipeline, layout, dims, &operands, p.groups);
        }
        if p.ops == OperandSource::Buffers {
            let layout = &self.pipelines.buffers;
            return dispatch(
                ctx,
                p.label,
                &p.pipeline,
                layout,
                dims,
                &p.operands,
                p.groups,
            );
        }
        let texels = [p.texels[0].min(a.len / 4), p.texels[1].min(b.len / 4)];
        let textures = self.staging.textures(ctx, texels);
        let views = textures.clone().map(|t| t.create_view(&Default::default()));
        let staged = StagedOperands {
            a: &views[0],
            b: &views[1],
            c,
            aux,
        };
        let layout = &self.pipelines.textures;
        let mut d = dispatch(ctx, p.label, &p.pipeline, layout, dims, &staged, p.groups)?;
        d.copies = [a, b]
            .into_iter()
            .zip(textures)
            .zip(texels)
            .map(|((from, texture), texels)| TextureCopy {
                buffer: from.buffer.clone(),
                offset: from.offset * 4,
                texels,
                texture,
            })
            .collect();
        Ok(d)
    }
}

/// [`Matmul::plan`] for implementation `algo`, without building a [`Matmul`].
pub fn plan_product(
    ctx: &GpuContext,
    algo: MatmulAlgo,
    s: &MatmulShape,
    split: SplitK,
) -> MatmulPlan {
    crate::gpu::plan::plan_product(&ctx.profile, algo, s, split)
}

/// The uniform of a product of shape `s` under `plan`, A read through
/// `columns` when given.
fn dims(s: &MatmulShape, plan: &MatmulPlan, columns: Option<&Columns>) -> Dims {
    let mut d = Dims {
        m: s.m as u32,
        n: s.n as u32,
        k: s.k as u32,
        lda: s.lda as u32,
        ldb: s.ldb as u32,
        ldc: s.ldc as u32,
        n_real: s.n_real as u32,
        ones_col: s.ones_col.map_or(u32::MAX, |c| c as u32),
        lr: s.lr,
        decay: s.decay,
        decay_rows: s.decay_rows as u32,
        k_slice: plan.k_slice,
        ..Dims::zeroed()
    };
    if let Some(c) = columns {
        let (i, w) = (c.slide.input, c.slide.window);
        [d.col_n, d.col_c, d.col_h, d.col_w] = [i.n, i.c, i.h, i.w].map(|v| v as u32);
        [d.col_fh, d.col_fw, d.col_stride, d.col_pad] =
            [w.h, w.w, w.stride, w.pad].map(|v| v as u32);
        [d.col_out_h, d.col_out_w] = [c.slide.out_h, c.slide.out_w].map(|v| v as u32);
        d.col_layout = c.layout as u32;
        d.col_x_stride = c.x_stride as u32;
        d.col_ones = c.ones as u32;
    }
    d
}

/// `s` as the tiled kernel's vec4 view of it (bindings `a4`, `b4`): its
/// length rounded down to whole vec4s, which is all the wide reads touch;
/// the first vec4 where it holds less than one (never read then, but a
/// binding of vec4s must hold one).
fn whole_vec4s<'a>(label: &str, what: &str, s: Slice<'a>) -> Result<Slice<'a>> {
    let vec4s = (s.len / 4).max(1) * 4;
    if !s.offset.is_multiple_of(4) || s.offset + vec4s > s.buffer.size() / 4 {
        return Err(GpuError::Shape(format!(
            "{label}: {what} at float {} of a {}-byte buffer cannot be read as vec4s",
            s.offset,
            s.buffer.size()
        )));
    }
    Ok(Slice { len: vec4s, ..s })
}

/// Refuses operands shorter than the product reads: the tiled kernel's
/// product passes run without the runtime's bounds checks. A read as
/// columns is `check_columns`' to check.
fn check_operands(
    label: &str,
    v: &MatmulVariant,
    s: &MatmulShape,
    [a, b, c]: [Slice<'_>; 3],
    aux: Option<Slice<'_>>,
    columns: bool,
) -> Result<()> {
    // The elements a row-major (rows × cols) matrix with stride ld spans.
    let span = |rows: usize, cols: usize, ld: usize| {
        if rows == 0 || cols == 0 {
            0
        } else {
            ((rows - 1) * ld + cols) as u64
        }
    };
    let (ar, ac) = if v.trans_a { (s.k, s.m) } else { (s.m, s.k) };
    let (br, bc) = if v.trans_b { (s.n, s.k) } else { (s.k, s.n) };
    let c_span = span(s.m, s.n, s.ldc);
    let a_span = if columns { 0 } else { span(ar, ac, s.lda) };
    let mut needs = vec![
        ("A", a.len, a_span),
        ("B", b.len, span(br, bc, s.ldb)),
        ("C", c.len, c_span),
    ];
    if let Some(aux) = aux {
        needs.push(("aux", aux.len, c_span));
    }
    match needs.into_iter().find(|&(_, have, need)| have < need) {
        Some((what, have, need)) => Err(GpuError::Shape(format!(
            "{label}: {what} holds {have} elements, the product reads {need} ({s:?})"
        ))),
        None => Ok(()),
    }
}

/// Refuses columns that do not fit the product or images `a` shorter than
/// they read: im2col's matrix has a row per window position (A's M, or K
/// transposed: at least as many, the rest read as zeros) and at least the
/// window's values (and the ones column) per row.
fn check_columns(
    label: &str,
    v: &MatmulVariant,
    s: &MatmulShape,
    cols: &Columns,
    a: Slice<'_>,
) -> Result<()> {
    let (rows, width) = if v.trans_a { (s.k, s.m) } else { (s.m, s.k) };
    let slide = &cols.slide;
    let values = slide.input.c * slide.window.h * slide.window.w + cols.ones as usize;
    if slide.col_rows() == 0 || rows < slide.col_rows() || width < values {
        return Err(GpuError::Shape(format!(
            "{label}: im2col's matrix is {} × {values} or wider, the product reads A as {rows} × {width} ({s:?})",
            slide.col_rows()
        )));
    }
    let i = slide.input;
    // The last value of the last image, plus one (rows > 0: the slide
    // has at least one image).
    let need = match cols.layout {
        ImageLayout::Images => (i.n - 1) * cols.x_stride + i.c * i.h * i.w,
        ImageLayout::Positions => (i.n * i.h * i.w - 1) * cols.x_stride + i.c,
    };
    if a.len < need as u64 {
        return Err(GpuError::Shape(format!(
            "{label}: the images hold {} elements, the columns read {need} ({slide:?})",
            a.len
        )));
    }
    Ok(())
}

pub(super) fn contracts() -> Vec<StructContract> {
    vec![uniform_dims::<Dims>(modules())]
}

pub(super) fn binding_contracts() -> Vec<BindingContract> {
    let [t64, t128, buffers, textures] = modules().try_into().expect("four modules");
    vec![
        binding_contract::<TiledOperands>("matmul (tiled)", vec![t64, t128]),
        binding_contract::<Operands>("matmul", vec![buffers]),
        binding_contract::<StagedOperands>("matmul (texture operands)", vec![textures]),
    ]
}
