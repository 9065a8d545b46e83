//! The matmul's pipelines: its WGSL modules as the program composes them,
//! and one compiled pipeline per pass, variant, vec4 workgroup shape,
//! operand source and tile, made on first use or ahead of time in parallel.
//!
//! Part of `kernels::matmul`: imports its `contract` and `staging`,
//! `context`, `dispatch` and `plan`.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::gpu::context::{GpuContext, MatmulAlgo};
use crate::gpu::cost::Tile;
use crate::gpu::dispatch::{Checks, KernelLayout, compose, kernel_layout, pipeline_at};
use crate::gpu::plan::{MatmulPlan, MatmulShape, REDUCE_WG, Vec4Shape};

use super::contract::{Dims, MatmulVariant, Operands, PARTIAL_SUMS, StagedOperands, TiledOperands};
use super::staging::OperandSource;

/// What both products share: the contract's uniform, overrides and
/// epilogue codes (compiled first).
const PRELUDE: &str = include_str!("../../../../shaders/matmul.wgsl");
const TILED: &str = include_str!("../../../../shaders/matmul/tiled.wgsl");
/// im2col's matrix as a function, which the tiled kernel reads A through
/// with `A_COLUMNS` (compiled first).
const COLUMNS: &str = include_str!("../../../../shaders/lib/columns.wgsl");
/// The tiled kernel's tile constants, one of which goes after `TILED`.
const TILE_64: &str = include_str!("../../../../shaders/matmul/tiled/tile64.wgsl");
const TILE_128: &str = include_str!("../../../../shaders/matmul/tiled/tile128.wgsl");
const VEC4: &str = include_str!("../../../../shaders/matmul/vec4.wgsl");
/// The vec4 kernel's operand bindings, one of which goes after `VEC4`.
const BUFFER_OPERANDS: &str = include_str!("../../../../shaders/matmul/vec4/buffers.wgsl");
const TEXTURE_OPERANDS: &str = include_str!("../../../../shaders/matmul/vec4/textures.wgsl");

/// Which pass of a product a pipeline runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Pass {
    /// The whole product with its epilogue.
    Whole,
    /// Split-K's first pass: partial sums over slices of K.
    Partial,
    /// Split-K's second pass: the slices added in order, then the epilogue.
    Reduce,
}

/// A pipeline: its pass, variant, the vec4 kernel's workgroup shape, where
/// it reads A and B, and the tiled kernel's tile, wide reads of A and B,
/// and whether it reads A as im2col's columns (`A_COLUMNS`).
pub(super) type PipelineKey = (
    Pass,
    MatmulVariant,
    Vec4Shape,
    OperandSource,
    Tile,
    Wide,
    bool,
);

/// Whether the tiled kernel reads A and B a vec4 at a time (`WIDE_A`,
/// `WIDE_B` in shaders/matmul/tiled.wgsl): where the operand's stride is a
/// multiple of 4, so that a vec4 of a row starts on a vec4 of memory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Wide {
    pub a: bool,
    pub b: bool,
}

impl Wide {
    /// The wide reads a product of shape `s` allows, A read as im2col's
    /// columns (`columns`) or from memory.
    pub fn for_shape(s: &MatmulShape, columns: bool) -> Self {
        Wide {
            a: s.lda.is_multiple_of(4) && !columns,
            b: s.ldb.is_multiple_of(4),
        }
    }
}

/// One implementation's pipelines and the two bind group layouts they use.
pub(super) struct Pipelines {
    algo: MatmulAlgo,
    /// Operands in buffers (the vec4 kernel, and the reduction).
    pub(super) buffers: KernelLayout,
    /// The tiled kernel's: operands in buffers, A and B bound twice.
    pub(super) tiled: KernelLayout,
    /// The tiled kernel reads a float at a time even where the strides
    /// allow vec4s (`bench --matmul` times both ways).
    pub(super) float_reads: bool,
    /// The vec4 kernel's, with A and B as textures.
    pub(super) textures: KernelLayout,
    cache: Mutex<HashMap<PipelineKey, wgpu::ComputePipeline>>,
}

impl Pipelines {
    pub(super) fn new(ctx: &GpuContext, algo: MatmulAlgo) -> Self {
        Pipelines {
            algo,
            buffers: kernel_layout::<Operands, Dims>(ctx, "matmul"),
            tiled: kernel_layout::<TiledOperands, Dims>(ctx, "matmul (tiled)"),
            float_reads: false,
            textures: kernel_layout::<StagedOperands, Dims>(ctx, "matmul (texture operands)"),
            cache: Mutex::new(HashMap::new()),
        }
    }

    pub(super) fn key(
        &self,
        pass: Pass,
        v: MatmulVariant,
        s: &MatmulShape,
        ops: OperandSource,
        (tile, columns): (Tile, bool),
    ) -> PipelineKey {
        let (none, narrow) = (Vec4Shape::default(), Wide::default());
        let buffers = OperandSource::Buffers;
        match (self.algo, pass) {
            (_, Pass::Reduce) => (pass, v, none, buffers, Tile::T64, narrow, false),
            (MatmulAlgo::Tiled, _) => {
                let wide = match self.float_reads {
                    true => narrow,
                    false => Wide::for_shape(s, columns),
                };
                (pass, v, none, buffers, tile, wide, columns)
            }
            _ => {
                let shape = Vec4Shape::for_product(s.m, s.n);
                (pass, v, shape, ops, Tile::T64, narrow, false)
            }
        }
    }

    /// The pipelines a product needs under `plan`.
    pub(super) fn keys(
        &self,
        v: MatmulVariant,
        s: &MatmulShape,
        plan: &MatmulPlan,
        ops: OperandSource,
    ) -> Vec<PipelineKey> {
        let tile = (plan.tile, false);
        if plan.split_k > 1 {
            vec![
                self.key(Pass::Partial, v, s, ops, tile),
                self.key(Pass::Reduce, v, s, ops, tile),
            ]
        } else {
            vec![self.key(Pass::Whole, v, s, ops, tile)]
        }
    }

    fn compile(
        &self,
        ctx: &GpuContext,
        (pass, v, shape, ops, tile, wide, columns): PipelineKey,
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
        let (source, entry, checks, layout) = match (self.algo, pass) {
            // One reduction for both kernels: it is a small share of the work.
            (_, Pass::Reduce) => {
                constants.push(reduce_wg);
                (tiled_source(Tile::T64), "reduce", Checks::On, &self.buffers)
            }
            // Every load and store guarded in the shader, every operand's
            // length checked in `bind` (check_operands).
            (MatmulAlgo::Tiled, _) => {
                constants.push(reduce_wg);
                constants.push(("WIDE_A", flag(wide.a)));
                constants.push(("WIDE_B", flag(wide.b)));
                constants.push(("A_COLUMNS", flag(columns)));
                (tiled_source(tile), "main", Checks::Off, &self.tiled)
            }
            _ => {
                constants.push(("X_ALONG_M", flag(shape.x_along_m)));
                constants.push(("WG_Y", shape.wg_y as f64));
                constants.push(("TM", shape.tm as f64));
                let layout = match ops {
                    OperandSource::Buffers => &self.buffers,
                    OperandSource::Textures => &self.textures,
                };
                let source = vec4_source(ops == OperandSource::Textures);
                (source, "main", Checks::On, layout)
            }
        };
        pipeline_at(
            ctx,
            &format!(
                "matmul {:?} {pass:?} {v:?} {shape:?} {ops:?} {tile:?} {wide:?} columns {columns}",
                self.algo
            ),
            layout,
            &source,
            entry,
            &constants,
            checks,
        )
    }

    pub(super) fn get(&self, ctx: &GpuContext, key: PipelineKey) -> wgpu::ComputePipeline {
        if let Some(p) = self.cache.lock().unwrap().get(&key) {
            return p.clone();
        }
        let p = self.compile(ctx, key);
        self.cache.lock().unwrap().entry(key).or_insert(p).clone()
    }

    /// Creates the pipelines of `keys` not made yet, in parallel (a driver
    /// that compiles at creation then uses every core), except on GL, where
    /// one context lock serializes every call anyway and a thread waiting
    /// past wgpu-hal's timeout for it panics.
    pub(super) fn prepare(&self, ctx: &GpuContext, mut keys: Vec<PipelineKey>) {
        keys.sort_by_key(|k| format!("{k:?}"));
        keys.dedup();
        keys.retain(|k| !self.cache.lock().unwrap().contains_key(k));
        if ctx.info.backend == wgpu::Backend::Gl {
            for key in keys {
                self.get(ctx, key);
            }
            return;
        }
        std::thread::scope(|scope| {
            for key in keys {
                scope.spawn(move || self.get(ctx, key));
            }
        });
    }
}

/// The tiled kernel's WGSL as the program compiles it: im2col's matrix as
/// a function (`shaders/lib/columns.wgsl`, for `A_COLUMNS`), the prelude,
/// the kernel, then the tile's constants (`shaders/matmul/tiled/tile*.wgsl`).
pub fn tiled_source(tile: Tile) -> String {
    let constants = match tile {
        Tile::T64 => TILE_64,
        Tile::T128 => TILE_128,
    };
    compose(&[COLUMNS, PRELUDE, TILED, constants])
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
