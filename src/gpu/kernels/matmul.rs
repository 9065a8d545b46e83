//! C = A·B in the three forms a training step needs (X·W, dY·Wᵀ, Xᵀ·dY),
//! with Relu, Relu's mask or the SGD update fused into the epilogue (the bias
//! is in the operands: see `gpu::layout`). Two implementations of one
//! contract: `shaders/matmul.wgsl` tiles through workgroup memory with a 4×4
//! register tile per invocation (for GPUs); `shaders/matmul_vec4.wgsl` keeps
//! a 12×16 tile in registers fed by vec4 loads and uses no workgroup memory
//! (for CPU-like adapters such as lavapipe, where every computed load is a
//! loop over the SIMD lanes).

use std::collections::HashMap;
use std::sync::Mutex;

use super::{Binding, Dispatch, Slice, bind_group_layout, dispatch, pipeline};
use crate::gpu::context::{GpuContext, GpuError, Result};

const TILED_SOURCE: &str = include_str!("../../../shaders/matmul.wgsl");
const VEC4_SOURCE: &str = include_str!("../../../shaders/matmul_vec4.wgsl");
/// Output tile of one workgroup of the tiled kernel (rows, columns).
const TILED_TILE: u32 = 64;
/// Output tile of one invocation of the vec4 kernel.
const VEC4_TN: u32 = 16;
/// Invocations along x (the SIMD lanes) of a vec4 workgroup.
const VEC4_WG_X: u32 = 8;

/// Which implementation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MatmulAlgo {
    /// 64×64 tiles staged in workgroup memory, 4×4 per invocation.
    Tiled,
    /// 12×16 per invocation from vec4 loads, no workgroup memory.
    Vec4,
}

impl MatmulAlgo {
    /// Vec4 on CPU adapters (measured ~4× faster on lavapipe), Tiled elsewhere.
    pub fn for_adapter(info: &wgpu::AdapterInfo) -> Self {
        if info.device_type == wgpu::DeviceType::Cpu {
            MatmulAlgo::Vec4
        } else {
            MatmulAlgo::Tiled
        }
    }
}

/// What happens to each output element.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Epilogue {
    /// `C = acc`
    Store,
    /// `C = max(acc, 0)`: the Relu after an Affine.
    Relu,
    /// `C = acc` where `aux > 0`, else 0: Relu backward (aux is the Relu's output).
    ReluMask,
    /// `C -= lr·(acc + λ·C)`: the SGD update (with weight decay λ on the
    /// weight rows), applied where the gradient is made.
    Sgd,
    /// `C = acc + λ·aux`: a gradient with weight decay on the weight rows
    /// (aux holds the weights, with C's shape).
    Grad,
}

/// The compile-time form of one pipeline (WGSL override constants).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MatmulVariant {
    pub trans_a: bool,
    pub trans_b: bool,
    pub epilogue: Epilogue,
}

/// The product's dimensions and strides (row lengths as stored). Columns
/// `n_real..n` of C are padding: 1.0 at `ones_col`, 0.0 elsewhere (left
/// untouched by the SGD epilogue). Weight decay `decay` applies to rows
/// `m < decay_rows` (the weights of a `[W; b]` block, not its bias row) in the
/// SGD and Grad epilogues.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MatmulShape {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub lda: usize,
    pub ldb: usize,
    pub ldc: usize,
    pub n_real: usize,
    pub ones_col: Option<usize>,
    pub lr: f32,
    pub decay: f32,
    pub decay_rows: usize,
}

impl MatmulShape {
    /// A plain product `C(m, n) = A(m, k)·B(k, n)`, tightly packed, no padding columns.
    pub fn plain(m: usize, n: usize, k: usize, lda: usize, ldb: usize, ldc: usize) -> Self {
        MatmulShape {
            m,
            n,
            k,
            lda,
            ldb,
            ldc,
            n_real: n,
            ones_col: None,
            lr: 0.0,
            decay: 0.0,
            decay_rows: 0,
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
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
    _pad: u32,
}

pub struct Matmul {
    pub algo: MatmulAlgo,
    layout: wgpu::BindGroupLayout,
    /// Keyed by variant and, for the vec4 kernel, its workgroup shape.
    pipelines: Mutex<HashMap<PipelineKey, wgpu::ComputePipeline>>,
}

type PipelineKey = (MatmulVariant, Vec4Shape);

impl Matmul {
    /// The implementation the context chose (see [`MatmulAlgo::for_adapter`]).
    pub fn new(ctx: &GpuContext) -> Self {
        Self::with_algo(ctx, ctx.matmul_algo)
    }

    pub fn with_algo(ctx: &GpuContext, algo: MatmulAlgo) -> Self {
        use Binding::*;
        Matmul {
            algo,
            layout: bind_group_layout(ctx, "matmul", &[Uniform, Read, Read, ReadWrite, Read]),
            pipelines: Mutex::new(HashMap::new()),
        }
    }

    fn key(&self, v: MatmulVariant, s: &MatmulShape) -> PipelineKey {
        match self.algo {
            MatmulAlgo::Tiled => (v, Vec4Shape::default()),
            MatmulAlgo::Vec4 => (v, Vec4Shape::for_product(s.m, s.n)),
        }
    }

    fn compile(&self, ctx: &GpuContext, (v, shape): PipelineKey) -> wgpu::ComputePipeline {
        let epilogue = match v.epilogue {
            Epilogue::Store => 0.0,
            Epilogue::Relu => 1.0,
            Epilogue::ReluMask => 2.0,
            Epilogue::Sgd => 3.0,
            Epilogue::Grad => 4.0,
        };
        let flag = |b: bool| if b { 1.0 } else { 0.0 };
        let mut constants = vec![
            ("TRANS_A", flag(v.trans_a)),
            ("TRANS_B", flag(v.trans_b)),
            ("EPILOGUE", epilogue),
        ];
        let source = match self.algo {
            MatmulAlgo::Tiled => TILED_SOURCE,
            MatmulAlgo::Vec4 => {
                constants.push(("X_ALONG_M", flag(shape.x_along_m)));
                constants.push(("WG_Y", shape.wg_y as f64));
                constants.push(("TM", shape.tm as f64));
                VEC4_SOURCE
            }
        };
        pipeline(
            ctx,
            &format!("matmul {:?} {v:?} {shape:?}", self.algo),
            &self.layout,
            source,
            &constants,
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
    /// compiles at creation then uses every core).
    pub fn prepare(&self, ctx: &GpuContext, products: &[(MatmulVariant, MatmulShape)]) {
        let mut missing: Vec<PipelineKey> = products.iter().map(|(v, s)| self.key(*v, s)).collect();
        missing.sort_by_key(|k| format!("{k:?}"));
        missing.dedup();
        missing.retain(|k| !self.pipelines.lock().unwrap().contains_key(k));
        std::thread::scope(|scope| {
            for key in missing {
                scope.spawn(move || self.pipeline(ctx, key));
            }
        });
    }

    /// A dispatch computing `c = epilogue(op(a)·op(b))`. `aux` is read only
    /// by [`Epilogue::ReluMask`] and [`Epilogue::Grad`] and must then have
    /// c's shape.
    #[allow(clippy::too_many_arguments)]
    pub fn bind(
        &self,
        ctx: &GpuContext,
        label: &str,
        v: MatmulVariant,
        s: MatmulShape,
        a: Slice<'_>,
        b: Slice<'_>,
        c: Slice<'_>,
        aux: Option<Slice<'_>>,
    ) -> Result<Dispatch> {
        if self.algo == MatmulAlgo::Vec4 {
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
            _pad: 0,
        };
        let key = self.key(v, &s);
        let groups = match self.algo {
            MatmulAlgo::Tiled => [
                (s.n as u32).div_ceil(TILED_TILE),
                (s.m as u32).div_ceil(TILED_TILE),
                1,
            ],
            MatmulAlgo::Vec4 => {
                let shape = key.1;
                let (along_x, along_y) = if shape.x_along_m {
                    (s.m, s.n)
                } else {
                    (s.n, s.m)
                };
                let (tile_x, tile_y) = if shape.x_along_m {
                    (shape.tm, VEC4_TN)
                } else {
                    (VEC4_TN, shape.tm)
                };
                [
                    (along_x as u32).div_ceil(tile_x * VEC4_WG_X),
                    (along_y as u32).div_ceil(tile_y * shape.wg_y),
                    1,
                ]
            }
        };
        let pipeline = self.pipeline(ctx, key);
        dispatch(
            ctx,
            label.to_string(),
            &pipeline,
            &self.layout,
            &dims,
            &[a, b, c, aux.unwrap_or(a)],
            groups,
        )
    }

    /// Binds several products, creating their pipelines in parallel first.
    pub fn bind_all(&self, ctx: &GpuContext, calls: Vec<MatmulCall<'_>>) -> Result<Vec<Dispatch>> {
        let products: Vec<_> = calls.iter().map(|c| (c.v, c.shape)).collect();
        self.prepare(ctx, &products);
        calls
            .into_iter()
            .map(|c| self.bind(ctx, &c.label, c.v, c.shape, c.a, c.b, c.c, c.aux))
            .collect()
    }
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

/// The vec4 kernel's workgroup: which dimension the SIMD lanes (x) walk,
/// how many invocations along y, and the rows per invocation (all pipeline
/// constants).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
struct Vec4Shape {
    x_along_m: bool,
    wg_y: u32,
    tm: u32,
}

impl Vec4Shape {
    /// Lanes along N while N fills them (8 lanes × 16 columns); otherwise
    /// along M, with just enough invocations along y to cover N. (One
    /// invocation along y is slower: the invocations of a workgroup share
    /// their rows of A in cache.) 12 rows per invocation, unless rounding M up
    /// to a whole number of workgroups would waste more than with 8.
    fn for_product(m: usize, n: usize) -> Self {
        let (m, n) = (m as u32, n as u32);
        let (x_along_m, wg_y) = if n >= VEC4_WG_X * VEC4_TN || m < n {
            (false, 8)
        } else {
            (true, n.div_ceil(VEC4_TN).next_power_of_two().min(8))
        };
        let rows_per_group = |tm: u32| if x_along_m { tm * VEC4_WG_X } else { tm * wg_y };
        let padded = |tm: u32| m.div_ceil(rows_per_group(tm)) * rows_per_group(tm);
        let tm = if padded(12) <= padded(8) + padded(8) / 16 {
            12
        } else {
            8
        };
        Vec4Shape {
            x_along_m,
            wg_y,
            tm,
        }
    }
}

/// Byte offset of `lr` in the uniform.
const LR_OFFSET: u64 = 32;

impl Dispatch {
    /// Rewrites the learning rate of an SGD matmul dispatch.
    pub fn set_lr(&self, ctx: &GpuContext, lr: f32) {
        ctx.queue
            .write_buffer(&self.uniform, LR_OFFSET, bytemuck::bytes_of(&lr));
    }
}
