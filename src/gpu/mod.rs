//! The GPU path: wgpu device setup, one Rust type per WGSL kernel, the
//! network's buffers and dispatches, and the training driver.
//!
//! Each file imports only those before it in this order (`tests/contracts.rs`
//! checks there is no cycle):
//!
//! ```text
//! error ← adapter ← profile ← cost ← plan ← context ← dispatch ← kernels ← {layout, tune}
//!   ← {forecast, front, stages, ops} ← {budget, net} ← {eval, sequential} ← {trainer, host_fed, list_trainer}
//! ```

pub mod adapter;
pub mod budget;
pub mod context;
pub mod cost;
pub mod dispatch;
pub mod error;
pub mod eval;
pub mod forecast;
pub mod front;
pub mod host_fed;
pub mod kernels;
pub mod layout;
pub mod list_trainer;
pub mod net;
pub mod ops;
pub mod plan;
pub mod profile;
pub mod sequential;
pub mod stages;
pub mod trainer;
pub mod tune;

pub use context::{GpuContext, GpuOptions, MatmulAlgo};
pub use error::{GpuError, Result};
pub use eval::GpuEvaluator;
pub use host_fed::{Form, HostFedNet};
pub use net::GpuNet;
pub use ops::GradTarget;
pub use profile::DeviceProfile;
pub use trainer::GpuTrainer;
