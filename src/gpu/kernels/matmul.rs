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
//! Imports `context`, `dispatch`, `error` and `plan` (grids come from the
//! planner).

use std::collections::HashMap;
use std::sync::Mutex;

use crate::gpu::context::GpuContext;
pub use crate::gpu::context::MatmulAlgo;
pub use crate::gpu::cost::Tile;
use crate::gpu::dispatch::{
    BindingContract, Checks, Dispatch, KernelLayout, Slice, TextureCopy, binding_contract, compose,
    dispatch, kernel_bindings, kernel_layout, pipeline_at, wgsl_struct,
};
use crate::gpu::error::{GpuError, Result};
pub use crate::gpu::plan::{MatmulPlan, MatmulShape, SplitK};
use crate::gpu::plan::{REDUCE_WG, Vec4Shape};

/// What both products share: the contract's uniform, overrides and
/// epilogue codes (compiled first).
const PRELUDE: &str = include_str!("../../../shaders/matmul.wgsl");
const TILED: &str = include_str!("../../../shaders/matmul/tiled.wgsl");
/// The tiled kernel's tile constants, one of which goes after `TILED`.
const TILE_64: &str = include_str!("../../../shaders/matmul/tiled/tile64.wgsl");
const TILE_128: &str = include_str!("../../../shaders/matmul/tiled/tile128.wgsl");
const VEC4: &str = include_str!("../../../shaders/matmul/vec4.wgsl");
/// The vec4 kernel's operand bindings, one of which goes after `VEC4`.
const BUFFER_OPERANDS: &str = include_str!("../../../shaders/matmul/vec4/buffers.wgsl");
const TEXTURE_OPERANDS: &str = include_str!("../../../shaders/matmul/vec4/textures.wgsl");
/// Texels per row of a staged operand's texture, as a power of two
/// (`TEXELS_LOG2` in textures.wgsl): 4096, half the 8192 every WebGPU
/// device allows, so a texture holds 4096 × the device's height limit texels.
pub const TEXELS_LOG2: u32 = 12;
pub const TEXELS_PER_ROW: u64 = 1 << TEXELS_LOG2;
/// What happens to each output element. The discriminant is the value of
/// the shaders' `EPILOGUE` override, named there by the `const`s of
/// [`EPILOGUE_CODES`].
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Epilogue {
    /// `C = acc`
    Store = 0,
    /// `C = max(acc, 0)`: the Relu after an Affine.
    Relu = 1,
    /// `C = acc` where `aux > 0`, else 0: Relu backward (aux is the Relu's output).
    ReluMask = 2,
    /// `C -= lr·(acc + λ·C)`: the SGD update (with weight decay λ on the
    /// weight rows), applied where the gradient is made.
    Sgd = 3,
    /// `C = acc + λ·aux`: a gradient with weight decay on the weight rows
    /// (aux holds the weights, with C's shape).
    Grad = 4,
}

/// The `EPILOGUE` override of split-K's first pass, which is no epilogue:
/// it writes the raw partial sums of its slice of K (the reduction that
/// follows applies the product's [`Epilogue`]).
pub const PARTIAL_SUMS: u32 = 5;

/// Every value of the `EPILOGUE` override by its name as a WGSL `const` in
/// both matmul shaders (`tests/contracts.rs` holds the two sides equal).
pub const EPILOGUE_CODES: [(&str, u32); 6] = [
    ("STORE", Epilogue::Store as u32),
    ("RELU", Epilogue::Relu as u32),
    ("RELU_MASK", Epilogue::ReluMask as u32),
    ("SGD", Epilogue::Sgd as u32),
    ("GRAD", Epilogue::Grad as u32),
    ("PARTIAL_SUMS", PARTIAL_SUMS),
];

/// The compile-time form of one pipeline (WGSL override constants).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MatmulVariant {
    pub trans_a: bool,
    pub trans_b: bool,
    pub epilogue: Epilogue,
}

wgsl_struct! {
    /// The uniform of both matmul shaders and of the reduction (`Dims`).
    struct Dims {
        m: u32,
        n: u32,
        k: u32,
        lda: u32,
        ldb: u32,
        ldc: u32,
        n_real: u32,
        ones_col: u32,
        lr: f32,
        decay: f32,
        decay_rows: u32,
        k_slice: u32,
    }
}

kernel_bindings! {
    /// A product's operands read from buffers (both kernels, and the
    /// split-K reduction, which reads the partial sums as `a`).
    struct Operands<'a> {
        a: Read,
        b: Read,
        c: ReadWrite,
        aux: Read,
    }
}

kernel_bindings! {
    /// The vec4 kernel's operands staged in textures.
    struct StagedOperands<'a> {
        a: Texture,
        b: Texture,
        c: ReadWrite,
        aux: Read,
    }
}

pub struct Matmul {
    pub algo: MatmulAlgo,
    /// The tiled kernel's tile when given ([`Matmul::with_tile`]); else the
    /// planner's.
    tile: Option<Tile>,
    layout: KernelLayout,
    /// The vec4 kernel's, with A and B as textures.
    texture_layout: KernelLayout,
    /// Keyed by variant and, for the vec4 kernel, its workgroup shape.
    pipelines: Mutex<HashMap<PipelineKey, wgpu::ComputePipeline>>,
    /// Split-K's partial sums, one buffer shared by every split product
    /// bound here (they run one after another), replaced by a larger one
    /// when a product needs more.
    partials: Mutex<Option<wgpu::Buffer>>,
    /// The textures A and B are copied into, shared the same way.
    staging: Mutex<[Option<wgpu::Texture>; 2]>,
}

/// Which pass of a product a pipeline runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Pass {
    /// The whole product with its epilogue.
    Whole,
    /// Split-K's first pass: partial sums over slices of K.
    Partial,
    /// Split-K's second pass: the slices added in order, then the epilogue.
    Reduce,
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
}

/// Where the vec4 kernel reads A and B from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum OperandSource {
    Buffers,
    /// Copies in textures, made right before the product.
    Textures,
}

/// A pipeline: its pass, variant, the vec4 kernel's workgroup shape, where
/// it reads A and B, and the tiled kernel's tile.
type PipelineKey = (Pass, MatmulVariant, Vec4Shape, OperandSource, Tile);

impl Matmul {
    /// The implementation the context chose (see [`MatmulAlgo::for_adapter`]).
    pub fn new(ctx: &GpuContext) -> Self {
        Self::with_algo(ctx, ctx.matmul_algo)
    }

    pub fn with_algo(ctx: &GpuContext, algo: MatmulAlgo) -> Self {
        Matmul {
            algo,
            tile: None,
            layout: kernel_layout::<Operands, Dims>(ctx, "matmul"),
            texture_layout: kernel_layout::<StagedOperands, Dims>(ctx, "matmul (texture operands)"),
            pipelines: Mutex::new(HashMap::new()),
            partials: Mutex::new(None),
            staging: Mutex::new([None, None]),
        }
    }

    /// This kernel with the tiled kernel's tile fixed (tests, `bench
    /// --matmul`); the split of K is still planned for that tile.
    pub fn with_tile(mut self, tile: Tile) -> Self {
        self.tile = Some(tile);
        self
    }

    /// Makes the shared partial-sum buffer and staging textures at the
    /// sizes every product to come fits in (see `budget::largest_scratch`).
    pub fn reserve(&self, ctx: &GpuContext, scratch: &Scratch) {
        if scratch.partial_bytes > 0 {
            self.partials(ctx, scratch.partial_bytes);
        }
        if scratch.staged_texels.iter().any(|&t| t > 0) {
            self.staging(ctx, scratch.staged_texels);
        }
    }

    /// The shared textures A and B are staged in, holding at least
    /// `texels` each; reserved at the largest size first, like
    /// [`Matmul::partials`].
    pub fn staging(&self, ctx: &GpuContext, texels: [u64; 2]) -> [wgpu::Texture; 2] {
        let mut held = self.staging.lock().unwrap();
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

    /// The shared partial-sum buffer, at least `bytes` long. Reserving the
    /// largest size first makes every later split product share one buffer.
    pub fn partials(&self, ctx: &GpuContext, bytes: u64) -> wgpu::Buffer {
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

    fn key(
        &self,
        pass: Pass,
        v: MatmulVariant,
        s: &MatmulShape,
        ops: OperandSource,
        tile: Tile,
    ) -> PipelineKey {
        let none = Vec4Shape::default();
        match (self.algo, pass) {
            (_, Pass::Reduce) => (pass, v, none, OperandSource::Buffers, Tile::T64),
            (MatmulAlgo::Tiled, _) => (pass, v, none, OperandSource::Buffers, tile),
            _ => (pass, v, Vec4Shape::for_product(s.m, s.n), ops, Tile::T64),
        }
    }

    /// The pipelines a product needs under `plan`.
    fn keys(
        &self,
        v: MatmulVariant,
        s: &MatmulShape,
        plan: &MatmulPlan,
        ops: OperandSource,
    ) -> Vec<PipelineKey> {
        if plan.split_k > 1 {
            vec![
                self.key(Pass::Partial, v, s, ops, plan.tile),
                self.key(Pass::Reduce, v, s, ops, plan.tile),
            ]
        } else {
            vec![self.key(Pass::Whole, v, s, ops, plan.tile)]
        }
    }

    /// Where the product reads A and B: textures when this is
    /// [`MatmulAlgo::Vec4`], they fit ([`stages_operands`]) and their
    /// offsets are whole texels.
    fn operands(
        &self,
        ctx: &GpuContext,
        v: &MatmulVariant,
        s: &MatmulShape,
        at: Option<[Slice<'_>; 2]>,
    ) -> OperandSource {
        let whole_texels = at.is_none_or(|ab| ab.iter().all(|x| x.offset.is_multiple_of(4)));
        if stages_operands(ctx, self.algo, v, s) && whole_texels {
            OperandSource::Textures
        } else {
            OperandSource::Buffers
        }
    }

    fn compile(
        &self,
        ctx: &GpuContext,
        (pass, v, shape, ops, tile): PipelineKey,
    ) -> wgpu::ComputePipeline {
        let epilogue = match pass {
            Pass::Partial => PARTIAL_SUMS,
            Pass::Whole | Pass::Reduce => v.epilogue as u32,
        } as f64;
        let flag = |b: bool| if b { 1.0 } else { 0.0 };
        let mut constants = vec![
            ("TRANS_A", flag(v.trans_a)),
            ("TRANS_B", flag(v.trans_b)),
            ("EPILOGUE", epilogue),
        ];
        // The tiled module declares the reduction's workgroup size, which
        // every pipeline compiled from it must be given.
        let reduce_wg = ("REDUCE_WG", f64::from(REDUCE_WG));
        let (source, entry, checks) = match (self.algo, pass) {
            // One reduction for both kernels: it is a small share of the work.
            (_, Pass::Reduce) => {
                constants.push(reduce_wg);
                (tiled_source(Tile::T64), "reduce", Checks::On)
            }
            // Every load and store guarded in the shader, every operand's
            // length checked in `bind` (check_operands).
            (MatmulAlgo::Tiled, _) => {
                constants.push(reduce_wg);
                (tiled_source(tile), "main", Checks::Off)
            }
            _ => {
                constants.push(("X_ALONG_M", flag(shape.x_along_m)));
                constants.push(("WG_Y", shape.wg_y as f64));
                constants.push(("TM", shape.tm as f64));
                (
                    vec4_source(ops == OperandSource::Textures),
                    "main",
                    Checks::On,
                )
            }
        };
        pipeline_at(
            ctx,
            &format!(
                "matmul {:?} {pass:?} {v:?} {shape:?} {ops:?} {tile:?}",
                self.algo
            ),
            match ops {
                OperandSource::Buffers => &self.layout,
                OperandSource::Textures => &self.texture_layout,
            },
            &source,
            entry,
            &constants,
            checks,
        )
    }

    fn pipeline(&self, ctx: &GpuContext, key: PipelineKey) -> wgpu::ComputePipeline {
        if let Some(p) = self.pipelines.lock().unwrap().get(&key) {
            return p.clone();
        }
        let p = self.compile(ctx, key);
        self.pipelines
            .lock()
            .unwrap()
            .entry(key)
            .or_insert(p)
            .clone()
    }

    /// Creates the pipelines these products need, in parallel (a driver that
    /// compiles at creation then uses every core), except on GL, where one
    /// context lock serializes every call anyway and a thread waiting past
    /// wgpu-hal's timeout for it panics.
    pub fn prepare(&self, ctx: &GpuContext, products: &[(MatmulVariant, MatmulShape)]) {
        let mut missing: Vec<PipelineKey> = products
            .iter()
            .flat_map(|(v, s)| {
                let ops = self.operands(ctx, v, s, None);
                self.keys(*v, s, &self.plan(ctx, s, SplitK::Auto), ops)
            })
            .collect();
        missing.sort_by_key(|k| format!("{k:?}"));
        missing.dedup();
        missing.retain(|k| !self.pipelines.lock().unwrap().contains_key(k));
        if ctx.info.backend == wgpu::Backend::Gl {
            for key in missing {
                self.pipeline(ctx, key);
            }
            return;
        }
        std::thread::scope(|scope| {
            for key in missing {
                scope.spawn(move || self.pipeline(ctx, key));
            }
        });
    }

    /// A dispatch computing `c = epilogue(op(a)·op(b))`. `aux` is read only
    /// by [`Epilogue::ReluMask`] and [`Epilogue::Grad`] and must then have
    /// c's shape. K is split as [`Matmul::plan`] chooses.
    pub fn bind(&self, ctx: &GpuContext, call: MatmulCall<'_>) -> Result<MatmulDispatch> {
        self.bind_split(ctx, call, SplitK::Auto)
    }

    /// [`Matmul::bind`] with the split of K given. A split product is two
    /// dispatches: partial sums per slice of K into the shared partial-sum
    /// buffer (`split_k` × M × ldc floats, see [`Matmul::partials`]), then their sum in a fixed order with
    /// the epilogue applied once (the second is the first's `then`).
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
        } = call;
        self.check_shape(&label, &v, &s)?;
        if self.algo == MatmulAlgo::Tiled {
            check_operands(&label, &v, &s, [a, b, c], aux)?;
        }
        let plan = self.plan(ctx, &s, split);
        let dims = Dims {
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
        };
        let ops = self.operands(ctx, &v, &s, Some([a, b]));
        let texels = operand_texels(&v, &s);
        if plan.split_k == 1 {
            let pipeline = self.pipeline(ctx, self.key(Pass::Whole, v, &s, ops, plan.tile));
            let pass = ProductPass {
                label,
                pipeline,
                operands: Operands {
                    a,
                    b,
                    c,
                    aux: aux.unwrap_or(a),
                },
                groups: plan.groups,
                ops,
                texels,
            };
            return self.product(ctx, pass, &dims).map(MatmulDispatch);
        }
        let len = plan.split_k as usize * s.m * s.ldc;
        ctx.check_binding(&format!("{label}: split-K partial sums"), len as u64 * 4)?;
        let partials = self.partials(ctx, len as u64 * 4);
        let partials = Slice::new(&partials, 0, len);
        let pass = ProductPass {
            label: format!("{label} [split-K {}]", plan.split_k),
            pipeline: self.pipeline(ctx, self.key(Pass::Partial, v, &s, ops, plan.tile)),
            operands: Operands {
                a,
                b,
                c: partials,
                aux: a,
            },
            groups: plan.groups,
            ops,
            texels,
        };
        let mut first = self.product(ctx, pass, &dims)?;
        let reduce = dispatch(
            ctx,
            format!("{label} [split-K reduce]"),
            &self.pipeline(ctx, self.key(Pass::Reduce, v, &s, ops, plan.tile)),
            &self.layout,
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
        if p.ops == OperandSource::Buffers {
            return dispatch(
                ctx,
                p.label,
                &p.pipeline,
                &self.layout,
                dims,
                &p.operands,
                p.groups,
            );
        }
        let texels = [p.texels[0].min(a.len / 4), p.texels[1].min(b.len / 4)];
        let textures = self.staging(ctx, texels);
        let views = textures.clone().map(|t| t.create_view(&Default::default()));
        let staged = StagedOperands {
            a: &views[0],
            b: &views[1],
            c,
            aux,
        };
        let mut d = dispatch(
            ctx,
            p.label,
            &p.pipeline,
            &self.texture_layout,
            dims,
            &staged,
            p.groups,
        )?;
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

/// The tiled kernel's WGSL as the program compiles it: the prelude, the
/// kernel, then the tile's constants (`shaders/matmul/tiled/tile*.wgsl`).
pub fn tiled_source(tile: Tile) -> String {
    let constants = match tile {
        Tile::T64 => TILE_64,
        Tile::T128 => TILE_128,
    };
    compose(&[PRELUDE, TILED, constants])
}

/// Refuses operands shorter than the product reads: the tiled kernel's
/// product passes run without the runtime's bounds checks.
fn check_operands(
    label: &str,
    v: &MatmulVariant,
    s: &MatmulShape,
    [a, b, c]: [Slice<'_>; 3],
    aux: Option<Slice<'_>>,
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
    let mut needs = vec![
        ("A", a.len, span(ar, ac, s.lda)),
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

/// The vec4 kernel's WGSL as the program compiles it: the prelude, the
/// kernel, then its operands read from textures (`true`) or from buffers.
pub fn vec4_source(textures: bool) -> String {
    let operands = if textures {
        TEXTURE_OPERANDS
    } else {
        BUFFER_OPERANDS
    };
    compose(&[PRELUDE, VEC4, operands])
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
/// the two textures its vec4 kernel stages A and B in (`Matmul::partials`,
/// `Matmul::staging`), each as large as the largest product needs (see
/// `budget::largest_scratch`, which counts it, and [`Matmul::reserve`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Scratch {
    /// Bytes of the partial sums (0: no product is split).
    pub partial_bytes: u64,
    /// Texels of A's and of B's staging texture (0: no operand is staged).
    pub staged_texels: [u64; 2],
}

/// One product to bind: everything [`Matmul::bind`] takes.
pub struct MatmulCall<'a> {
    pub label: String,
    pub v: MatmulVariant,
    pub shape: MatmulShape,
    pub a: Slice<'a>,
    pub b: Slice<'a>,
    pub c: Slice<'a>,
    pub aux: Option<Slice<'a>>,
}

/// A product's dispatch: a [`Dispatch`] whose learning rate can be
/// rewritten (only the [`Epilogue::Sgd`] reads it).
pub struct MatmulDispatch(Dispatch);

impl MatmulDispatch {
    /// Rewrites the learning rate of an SGD product.
    pub fn set_lr(&self, ctx: &GpuContext, lr: f32) {
        // A split product applies its epilogue in the reduction.
        let last = self.0.then.as_deref().unwrap_or(&self.0);
        last.write_uniform(ctx, std::mem::offset_of!(Dims, lr), &lr);
    }

    pub fn into_dispatch(self) -> Dispatch {
        self.0
    }
}

impl std::ops::Deref for MatmulDispatch {
    type Target = Dispatch;
    fn deref(&self) -> &Dispatch {
        &self.0
    }
}

impl AsRef<Dispatch> for MatmulDispatch {
    fn as_ref(&self) -> &Dispatch {
        &self.0
    }
}

/// The modules the matmul kernels compile: the tiled shader (also the
/// reduction's) and the vec4 one with either kind of operand.
pub fn modules() -> Vec<(&'static str, String)> {
    vec![
        ("shaders/matmul+tiled+tile64.wgsl", tiled_source(Tile::T64)),
        (
            "shaders/matmul+tiled+tile128.wgsl",
            tiled_source(Tile::T128),
        ),
        ("shaders/matmul+vec4+buffers.wgsl", vec4_source(false)),
        ("shaders/matmul+vec4+textures.wgsl", vec4_source(true)),
    ]
}

pub(super) fn contracts() -> Vec<crate::gpu::dispatch::StructContract> {
    vec![crate::gpu::dispatch::uniform_dims::<Dims>(modules())]
}

pub(super) fn binding_contracts() -> Vec<BindingContract> {
    let [t64, t128, buffers, textures] = modules().try_into().expect("four modules");
    vec![
        binding_contract::<Operands>("matmul", vec![t64, t128, buffers]),
        binding_contract::<StagedOperands>("matmul (texture operands)", vec![textures]),
    ]
}
