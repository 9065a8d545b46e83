//! One type per WGSL entry point. Each owns its shader module and pipeline(s)
//! and turns buffers plus a shape into a [`Dispatch`]: a bind group, its
//! uniform and a workgroup count, made once and recorded as often as needed.
//! Each kernel declares its bindings once, with `kernel_bindings!`: a struct
//! whose fields are the shader's variables at `@binding(1..)` in order,
//! from which its bind group layout and every bind group are made.
//!
//! The kernels import `context`, `dispatch` and `error`, never each other
//! nor anything above them (`layout`, `budget`, `net`, `trainer`).

pub mod batchnorm;
pub mod dropout;
pub mod gather;
pub mod matmul;
pub mod optimizer;
pub mod softmax_loss;
pub mod window;

pub use crate::gpu::dispatch::{Bound, Dispatch, Slice, StructLayout, TextureCopy, record_all};
pub use batchnorm::{BatchNorm, BnBackward, BnForward, BnShape};
pub use dropout::{DropoutCall, DropoutDispatch, DropoutKernel};
pub use gather::{Gather, GatherCall};
pub use matmul::{
    Columns, Epilogue, Matmul, MatmulAlgo, MatmulCall, MatmulDispatch, MatmulPlan, MatmulShape,
    MatmulVariant, SplitK, Tile, tiled_source,
};
pub use optimizer::{OptimizerBuffers, OptimizerDispatch, OptimizerKernel};
pub use softmax_loss::{Head, HeadGrad, SoftmaxCall, SoftmaxWithLoss, Stats};
pub use window::{
    Col2imCall, Im2col, Im2colCall, ImageLayout, MaxPool, PoolBackwardCall, PoolForwardCall,
};

pub use crate::gpu::dispatch::{Access, BindingContract, Slot, StructContract};

/// Every struct shared with WGSL, for `tests/contracts.rs`.
pub fn struct_contracts() -> Vec<StructContract> {
    [
        matmul::contracts(),
        gather::contracts(),
        softmax_loss::contracts(),
        batchnorm::contracts(),
        dropout::contracts(),
        optimizer::contracts(),
        window::contracts(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Every kernel's declared bindings, for `tests/contracts.rs`.
/// The most storage buffers one kernel binds, by the kernels' declared
/// bindings (a device allowing fewer per shader stage cannot run them).
pub fn storage_buffers_needed() -> u32 {
    let storage = |c: &BindingContract| {
        c.slots
            .iter()
            .filter(|s| s.access != Access::Texture)
            .count()
    };
    binding_contracts().iter().map(storage).max().unwrap_or(0) as u32
}

pub fn binding_contracts() -> Vec<BindingContract> {
    [
        matmul::binding_contracts(),
        gather::binding_contracts(),
        softmax_loss::binding_contracts(),
        batchnorm::binding_contracts(),
        dropout::binding_contracts(),
        optimizer::binding_contracts(),
        window::binding_contracts(),
    ]
    .into_iter()
    .flatten()
    .collect()
}
