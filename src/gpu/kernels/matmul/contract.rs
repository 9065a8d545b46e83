//! The matmul's contract with its shaders, as data: the epilogues and their
//! codes, a product's variant, its uniform and bindings, what a caller
//! gives ([`MatmulCall`]) and gets ([`MatmulDispatch`]).
//!
//! Part of `kernels::matmul`: imports `context`, `dispatch`, `plan`, and
//! `kernels::window`'s image layouts.

use crate::core::conv::Slide;
use crate::gpu::context::GpuContext;
use crate::gpu::dispatch::{Dispatch, Slice, kernel_bindings, wgsl_struct};
use crate::gpu::kernels::window::ImageLayout;
use crate::gpu::plan::MatmulShape;

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
    pub(super) struct Dims {
        pub(super) m: u32,
        pub(super) n: u32,
        pub(super) k: u32,
        pub(super) lda: u32,
        pub(super) ldb: u32,
        pub(super) ldc: u32,
        pub(super) n_real: u32,
        pub(super) ones_col: u32,
        pub(super) lr: f32,
        pub(super) decay: f32,
        pub(super) decay_rows: u32,
        pub(super) k_slice: u32,
        pub(super) col_n: u32,
        pub(super) col_c: u32,
        pub(super) col_h: u32,
        pub(super) col_w: u32,
        pub(super) col_fh: u32,
        pub(super) col_fw: u32,
        pub(super) col_stride: u32,
        pub(super) col_pad: u32,
        pub(super) col_out_h: u32,
        pub(super) col_out_w: u32,
        pub(super) col_layout: u32,
        pub(super) col_x_stride: u32,
        pub(super) col_ones: u32,
    }
}

kernel_bindings! {
    /// A product's operands read from buffers (the vec4 kernel, and the
    /// split-K reduction, which reads the partial sums as `a`).
    pub(super) struct Operands<'a> {
        a: Read,
        b: Read,
        c: ReadWrite,
        aux: Read,
    }
}

kernel_bindings! {
    /// The tiled kernel's operands: [`Operands`], then A and B again as
    /// whole vec4s for its wide reads (see `WIDE_A` in shaders/matmul/tiled.wgsl).
    pub(super) struct TiledOperands<'a> {
        a: Read,
        b: Read,
        c: ReadWrite,
        aux: Read,
        a4: Read,
        b4: Read,
    }
}

kernel_bindings! {
    /// The vec4 kernel's operands staged in textures.
    pub(super) struct StagedOperands<'a> {
        a: Texture,
        b: Texture,
        c: ReadWrite,
        aux: Read,
    }
}

/// A read of A as im2col's matrix of images, in place: the call's `a`
/// holds the images, laid out as `layout` says with rows `x_stride` apart,
/// and A is the matrix `Im2col` would write from them (with its ones column
/// when `ones`; zeros past it, to K), which is never stored: an
/// implicit-GEMM convolution (`A_COLUMNS` in shaders/matmul/tiled.wgsl; the
/// tiled kernel only).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Columns {
    pub slide: Slide,
    pub layout: ImageLayout,
    pub x_stride: usize,
    pub ones: bool,
}

/// One product to bind: everything `Matmul::bind` takes. With `columns`, A
/// is read through them from the images in `a` (its `lda` is then unused).
pub struct MatmulCall<'a> {
    pub label: String,
    pub v: MatmulVariant,
    pub shape: MatmulShape,
    pub a: Slice<'a>,
    pub b: Slice<'a>,
    pub c: Slice<'a>,
    pub aux: Option<Slice<'a>>,
    pub columns: Option<Columns>,
}

impl<'a> MatmulCall<'a> {
    /// This product with A read as `columns` of the images in `x`, in place
    /// of the matrix it read.
    pub fn reading_columns(self, x: Slice<'a>, columns: Columns) -> Self {
        MatmulCall {
            a: x,
            columns: Some(columns),
            ..self
        }
    }
}

/// A product's dispatch: a [`Dispatch`] whose learning rate can be
/// rewritten (only the [`Epilogue::Sgd`] reads it).
pub struct MatmulDispatch(pub(super) Dispatch);

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
