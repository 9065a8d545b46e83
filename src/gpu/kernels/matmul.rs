//! C = A·B in the three forms a training step needs (X·W, dY·Wᵀ, Xᵀ·dY),
//! with the bias, Relu, Relu's mask or the SGD update fused into the
//! epilogue. Two implementations of the same contract:
//! `shaders/matmul.wgsl` tiles through workgroup memory with a 4×4 register
//! tile per invocation (for GPUs), `shaders/matmul_rows.wgsl` keeps A's loads
//! uniform across the workgroup (for CPU-like adapters such as lavapipe,
//! where a non-uniform load is a gather).

use std::collections::HashMap;
use std::sync::Mutex;

use super::{Binding, Dispatch, Slice, bind_group_layout, dispatch, pipeline};
use crate::gpu::context::{GpuContext, Result};

const TILED_SOURCE: &str = include_str!("../../../shaders/matmul.wgsl");
const ROWS_SOURCE: &str = include_str!("../../../shaders/matmul_rows.wgsl");
/// Output tile of one workgroup of the tiled kernel (rows, columns).
pub const TILE: u32 = 64;
/// Rows per workgroup of the rows kernel.
pub const ROWS: u32 = 8;

/// Which implementation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MatmulAlgo {
    /// 64×64 tiles staged in workgroup memory, 4×4 per invocation.
    Tiled,
    /// 8 rows per workgroup, uniform A loads, lanes along N.
    Rows,
}

impl MatmulAlgo {
    /// Rows on CPU adapters (measured faster on lavapipe), Tiled elsewhere.
    pub fn for_adapter(info: &wgpu::AdapterInfo) -> Self {
        if info.device_type == wgpu::DeviceType::Cpu {
            MatmulAlgo::Rows
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
    /// `C -= lr·acc`: the SGD update, applied where the gradient is made.
    Sgd,
}

/// The compile-time form of one pipeline (WGSL override constants).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MatmulVariant {
    pub trans_a: bool,
    pub trans_b: bool,
    /// Append a column of ones to the stored A (the fused bias).
    pub aug_a: bool,
    pub epilogue: Epilogue,
}

/// The product's dimensions. `a_cols` and `b_cols` are the row lengths of A
/// and B as stored (before any transpose or augmentation).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MatmulShape {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub a_cols: usize,
    pub b_cols: usize,
    pub lr: f32,
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Dims {
    m: u32,
    n: u32,
    k: u32,
    a_cols: u32,
    b_cols: u32,
    lr: f32,
    _pad: [u32; 2],
}

pub struct Matmul {
    pub algo: MatmulAlgo,
    layout: wgpu::BindGroupLayout,
    /// Keyed by variant and, for the rows kernel, lanes per workgroup.
    pipelines: Mutex<HashMap<(MatmulVariant, u32), wgpu::ComputePipeline>>,
}

impl Matmul {
    /// The implementation suited to the adapter.
    pub fn new(ctx: &GpuContext) -> Self {
        Self::with_algo(ctx, MatmulAlgo::for_adapter(&ctx.info))
    }

    pub fn with_algo(ctx: &GpuContext, algo: MatmulAlgo) -> Self {
        use Binding::*;
        Matmul {
            algo,
            layout: bind_group_layout(ctx, "matmul", &[Uniform, Read, Read, ReadWrite, Read]),
            pipelines: Mutex::new(HashMap::new()),
        }
    }

    fn pipeline(&self, ctx: &GpuContext, v: MatmulVariant, lanes: u32) -> wgpu::ComputePipeline {
        let mut cache = self.pipelines.lock().unwrap();
        cache
            .entry((v, lanes))
            .or_insert_with(|| {
                let epilogue = match v.epilogue {
                    Epilogue::Store => 0.0,
                    Epilogue::Relu => 1.0,
                    Epilogue::ReluMask => 2.0,
                    Epilogue::Sgd => 3.0,
                };
                let flag = |b: bool| if b { 1.0 } else { 0.0 };
                let mut constants = vec![
                    ("TRANS_A", flag(v.trans_a)),
                    ("TRANS_B", flag(v.trans_b)),
                    ("AUG_A", flag(v.aug_a)),
                    ("EPILOGUE", epilogue),
                ];
                let source = match self.algo {
                    MatmulAlgo::Tiled => TILED_SOURCE,
                    MatmulAlgo::Rows => {
                        constants.push(("LANES", lanes as f64));
                        ROWS_SOURCE
                    }
                };
                pipeline(
                    ctx,
                    &format!("matmul {:?} {v:?}", self.algo),
                    &self.layout,
                    source,
                    &constants,
                )
            })
            .clone()
    }

    /// A dispatch computing `c = epilogue(op(a)·op(b))`. `aux` is read only
    /// by [`Epilogue::ReluMask`] and must then have c's shape.
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
        let dims = Dims {
            m: s.m as u32,
            n: s.n as u32,
            k: s.k as u32,
            a_cols: s.a_cols as u32,
            b_cols: s.b_cols as u32,
            lr: s.lr,
            _pad: [0; 2],
        };
        let (groups, lanes) = match self.algo {
            MatmulAlgo::Tiled => (
                [(s.n as u32).div_ceil(TILE), (s.m as u32).div_ceil(TILE), 1],
                0,
            ),
            MatmulAlgo::Rows => {
                // Narrow outputs (N = 10) get narrow workgroups: idle lanes cost time here.
                let lanes = (s.n as u32).next_power_of_two().clamp(8, 64);
                (
                    [(s.n as u32).div_ceil(lanes), (s.m as u32).div_ceil(ROWS), 1],
                    lanes,
                )
            }
        };
        let pipeline = self.pipeline(ctx, v, lanes);
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
}

impl Dispatch {
    /// Rewrites the learning rate of an SGD matmul dispatch.
    pub fn set_lr(&self, ctx: &GpuContext, lr: f32) {
        ctx.queue
            .write_buffer(&self.uniform, 20, bytemuck::bytes_of(&lr));
    }
}
