//! The GPU path: wgpu device setup, one Rust type per WGSL kernel, the
//! network's buffers and dispatches, and the training driver.

pub mod adapter;
pub mod budget;
pub mod context;
pub mod kernels;
pub mod layout;
pub mod net;
pub mod trainer;

pub use context::{GpuContext, GpuError, GpuOptions};
pub use net::{GpuNet, GradTarget};
pub use trainer::GpuTrainer;
