//! The book's `SimpleConvNet` front on the GPU: Conv1 → Relu1 → Pool1
//! between the gather and the first Affine. Forward:
//!
//! ```text
//! im2col       col = [im2col(x), 1]                   (positions, padded(K))
//! product      z   = Relu(col·[W_col; b])              (positions, padded(FN))
//! max pooling  p   = [pool(z), 1], argmax              (images, padded(FN·PH·PW))
//! ```
//!
//! where the planner reads `col` in place (`plan::implicit_columns`: the
//! tiled product reading x through `kernels::Columns`), there is no im2col
//! and no `col`, in both products that read it.
//!
//! and `p` is the first Affine's input. Backward, after that Affine's
//! unmasked dP = dA_1·W_1ᵀ (`net`): pooling's backward with Relu's mask
//! fused gives dZ, then `[col, 1]ᵀ·dZ` is `[dW_col; db]`, into the gradient
//! arena or through the SGD epilogue as every Affine's (`net` binds the
//! products and orders the ops). The input needs no gradient, so training
//! runs no `col2im`. The matrices' layouts are `layout::FrontMatrices`';
//! the filters' block is `layout::conv_to_gpu`'s.
//!
//! Imports `context`, `dispatch`, `error`, `kernels`, `layout` and `plan`.

use super::context::GpuContext;
use super::dispatch::{Dispatch, Slice};
use super::error::Result;
use super::kernels::{
    Columns, Epilogue, Im2col, Im2colCall, ImageLayout, MatmulCall, MatmulShape, MatmulVariant,
    MaxPool, PoolBackwardCall, PoolForwardCall,
};
use super::layout::{FrontMatrices, GpuLayer, forward_shape, padded, padded_rows};
use super::plan::implicit_columns;
use crate::core::conv::{ConvFront, ImageShape, Slide};

/// The front's pipelines.
pub struct FrontKernels {
    pub im2col: Im2col,
    pub pool: MaxPool,
}

impl FrontKernels {
    pub fn new(ctx: &GpuContext) -> Self {
        FrontKernels {
            im2col: Im2col::new(ctx),
            pool: MaxPool::new(ctx),
        }
    }
}

/// The front's buffers for up to `m.conv.input.n` images; the gradients
/// only in training activations.
#[derive(Clone)]
pub struct FrontActivations {
    pub m: FrontMatrices,
    /// im2col's matrix; None where the products read it in place.
    pub col: Option<wgpu::Buffer>,
    /// The convolution's output after Relu.
    pub z: wgpu::Buffer,
    /// The pooled values, with the ones column: the first Affine's input.
    pub pooled: wgpu::Buffer,
    pub argmax: wgpu::Buffer,
    pub dz: Option<wgpu::Buffer>,
    pub dpooled: Option<wgpu::Buffer>,
}

impl FrontActivations {
    /// Every buffer checked against one binding before any is made.
    pub fn new(ctx: &GpuContext, front: &ConvFront, rows: usize, train: bool) -> Result<Self> {
        let m = FrontMatrices::new(front, rows).expect("an Arch's front slides");
        let (p, k, f) = (m.positions(), m.conv.col_cols(), m.filters());
        let stored = !implicit_columns(&ctx.profile, ctx.matmul_algo);
        if stored {
            ctx.check_binding(&format!("im2col's columns ({p} × {k} f32)"), m.col_bytes())?;
        }
        for (what, bytes) in [
            (
                format!("the convolution's output ({p} × {f} f32)"),
                m.z_bytes(),
            ),
            (
                format!("the pooled values ({rows} × {} f32)", m.pooled()),
                m.pooled_bytes(),
            ),
            (
                format!("the pooling's argmax ({rows} × {} u32)", m.pooled()),
                m.argmax_bytes(),
            ),
        ] {
            ctx.check_binding(&what, bytes)?;
        }
        let grad = |name: &str, bytes| train.then(|| ctx.storage(name, bytes));
        Ok(FrontActivations {
            col: stored.then(|| ctx.storage("im2col", m.col_bytes())),
            z: ctx.storage("conv1 output", m.z_bytes()),
            pooled: ctx.storage("pool1 output", m.pooled_bytes()),
            argmax: ctx.storage("pool1 argmax", m.argmax_bytes()),
            dz: grad("conv1 output gradient", m.z_bytes()),
            dpooled: grad("pool1 output gradient", m.pooled_bytes()),
            m,
        })
    }
}

/// The front's forward for `rows` images of `x` (rows `x_stride` apart):
/// im2col (unless the product reads x through columns), the product with
/// Relu (a call for the matmul to bind), and the pooling, with the filters
/// `block` (`g` in the arena).
pub struct Forward<'a> {
    pub im2col: Option<Dispatch>,
    pub product: MatmulCall<'a>,
    pub pool: Dispatch,
}

pub fn forward<'a>(
    ctx: &GpuContext,
    kernels: &FrontKernels,
    f: &'a FrontActivations,
    rows: usize,
    x: Slice<'a>,
    x_stride: usize,
    (g, block): (GpuLayer, Slice<'a>),
) -> Result<Forward<'a>> {
    let front = f.m;
    let now = FrontMatrices {
        conv: Slide::new(
            ImageShape {
                n: rows,
                ..front.conv.input
            },
            front.conv.window,
        )
        .expect("fewer images slide as the activations' do"),
        pool: Slide::new(
            ImageShape {
                n: rows,
                ..front.pool.input
            },
            front.pool.window,
        )
        .expect("fewer images slide as the activations' do"),
    };
    let all = padded_rows(f.m.positions());
    let columns = image_columns(now.conv, x_stride);
    let (im2col, a, columns) = match &f.col {
        Some(col) => {
            let call = Im2colCall {
                label: "conv1 im2col".into(),
                slide: columns.slide,
                layout: columns.layout,
                x_stride,
                col_stride: g.rows(),
                ones: columns.ones,
                x,
                col: Slice::new(col, 0, now.positions() * g.rows()),
            };
            let im2col = kernels.im2col.im2col(ctx, call)?;
            (Some(im2col), Slice::new(col, 0, all * g.rows()), None)
        }
        None => (None, x, Some(columns)),
    };
    let product = MatmulCall {
        label: "conv1 forward + relu1".into(),
        v: MatmulVariant {
            trans_a: false,
            trans_b: false,
            epilogue: Epilogue::Relu,
        },
        shape: MatmulShape {
            ones_col: None,
            ..forward_shape(&g, now.positions())
        },
        a,
        b: block,
        c: Slice::new(&f.z, 0, all * g.cols()),
        aux: None,
        columns,
    };
    let pool = kernels.pool.forward(
        ctx,
        PoolForwardCall {
            label: "pool1 forward".into(),
            slide: now.pool,
            z_stride: g.cols(),
            p_stride: padded(now.pooled()),
            ones: true,
            z: Slice::whole(&f.z),
            p: Slice::new(&f.pooled, 0, rows * padded(now.pooled())),
            argmax: Slice::whole(&f.argmax),
        },
    )?;
    Ok(Forward {
        im2col,
        product,
        pool,
    })
}

/// im2col's matrix of the input images (rows `x_stride` apart) under
/// `slide`, with the ones column that carries the bias.
pub fn image_columns(slide: Slide, x_stride: usize) -> Columns {
    Columns {
        slide,
        layout: ImageLayout::Images,
        x_stride,
        ones: true,
    }
}

/// Pooling's backward with Relu's mask fused, over every image of the
/// activations: dP to dZ, whose product with the columns is the filters'
/// gradient (`net` binds it as every layer's).
pub fn pool_backward(
    ctx: &GpuContext,
    kernels: &FrontKernels,
    f: &FrontActivations,
    g: &GpuLayer,
) -> Result<Dispatch> {
    let (dz, dp) = match (&f.dz, &f.dpooled) {
        (Some(dz), Some(dp)) => (dz, dp),
        _ => panic!("backward needs training activations"),
    };
    kernels.pool.backward(
        ctx,
        PoolBackwardCall {
            label: "pool1 backward + relu1 backward".into(),
            slide: f.m.pool,
            z_stride: g.cols(),
            p_stride: padded(f.m.pooled()),
            relu: true,
            dp: Slice::whole(dp),
            argmax: Slice::whole(&f.argmax),
            z: Slice::whole(&f.z),
            dz: Slice::new(dz, 0, f.m.positions() * g.cols()),
        },
    )
}
