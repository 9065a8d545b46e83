//! One type per WGSL entry point. Each owns its shader module and pipeline(s)
//! and turns buffers plus a shape into a [`Dispatch`]: a bind group, its
//! uniform and a workgroup count, made once and recorded as often as needed.
//! Each kernel's `bind` takes its buffers by name, in a struct of its own.
//!
//! The kernels import `context`, `dispatch` and `error`, never each other
//! nor anything above them (`layout`, `budget`, `net`, `trainer`).

pub mod batchnorm;
pub mod dropout;
pub mod gather;
pub mod matmul;
pub mod optimizer;
pub mod softmax_loss;

pub use crate::gpu::dispatch::{Bound, Dispatch, Slice, StructLayout, TextureCopy, record_all};
pub use batchnorm::{BatchNorm, BnBackward, BnForward, BnShape};
pub use dropout::{DropoutCall, DropoutDispatch, DropoutKernel};
pub use gather::{Gather, GatherCall};
pub use matmul::{
    Epilogue, Matmul, MatmulAlgo, MatmulCall, MatmulDispatch, MatmulPlan, MatmulShape,
    MatmulVariant, SplitK,
};
pub use optimizer::{OptimizerBuffers, OptimizerDispatch, OptimizerKernel};
pub use softmax_loss::{SoftmaxCall, SoftmaxWithLoss, Stats};

/// A struct the host writes and a shader reads: its Rust layout, the name
/// of the WGSL struct it mirrors, and every module declaring that struct,
/// as (what, WGSL source as the program compiles it).
pub struct StructContract {
    pub layout: StructLayout,
    pub wgsl_name: &'static str,
    /// The group 0 binding it is a uniform at (`None`: a storage struct).
    pub uniform_at: Option<u32>,
    pub modules: Vec<(&'static str, String)>,
}

/// Every struct shared with WGSL, for `tests/contracts.rs`.
pub fn struct_contracts() -> Vec<StructContract> {
    [
        matmul::contracts(),
        gather::contracts(),
        softmax_loss::contracts(),
        batchnorm::contracts(),
        dropout::contracts(),
        optimizer::contracts(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// The contract of a kernel's uniform `T`, bound at binding 0 of `modules`
/// as the WGSL struct `Dims`.
fn uniform_dims<T: crate::gpu::dispatch::WgslStruct>(
    modules: Vec<(&'static str, String)>,
) -> StructContract {
    StructContract {
        layout: T::LAYOUT,
        wgsl_name: "Dims",
        uniform_at: Some(0),
        modules,
    }
}
