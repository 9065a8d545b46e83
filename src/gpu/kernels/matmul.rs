//! `shaders/matmul.wgsl`: C = A·B in the three forms a training step needs
//! (X·W, dY·Wᵀ, Xᵀ·dY), with the bias, Relu, Relu's mask or the SGD update
//! fused into the epilogue.

use std::collections::HashMap;
use std::sync::Mutex;

use super::{Binding, Dispatch, Slice, bind_group_layout, dispatch, pipeline};
use crate::gpu::context::{GpuContext, Result};

const SOURCE: &str = include_str!("../../../shaders/matmul.wgsl");
/// Output tile of one workgroup (rows, columns).
pub const TILE: u32 = 64;

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
    layout: wgpu::BindGroupLayout,
    pipelines: Mutex<HashMap<MatmulVariant, wgpu::ComputePipeline>>,
}

impl Matmul {
    pub fn new(ctx: &GpuContext) -> Self {
        use Binding::*;
        Matmul {
            layout: bind_group_layout(ctx, "matmul", &[Uniform, Read, Read, ReadWrite, Read]),
            pipelines: Mutex::new(HashMap::new()),
        }
    }

    fn pipeline(&self, ctx: &GpuContext, v: MatmulVariant) -> wgpu::ComputePipeline {
        let mut cache = self.pipelines.lock().unwrap();
        cache
            .entry(v)
            .or_insert_with(|| {
                let epilogue = match v.epilogue {
                    Epilogue::Store => 0.0,
                    Epilogue::Relu => 1.0,
                    Epilogue::ReluMask => 2.0,
                    Epilogue::Sgd => 3.0,
                };
                let flag = |b: bool| if b { 1.0 } else { 0.0 };
                pipeline(
                    ctx,
                    &format!("matmul {v:?}"),
                    &self.layout,
                    SOURCE,
                    &[
                        ("TRANS_A", flag(v.trans_a)),
                        ("TRANS_B", flag(v.trans_b)),
                        ("AUG_A", flag(v.aug_a)),
                        ("EPILOGUE", epilogue),
                    ],
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
        let groups = [(s.n as u32).div_ceil(TILE), (s.m as u32).div_ceil(TILE), 1];
        let pipeline = self.pipeline(ctx, v);
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
