//! The CPU reference path, in f64, written the way "Deep Learning from
//! Scratch" (chapters 5 to 8) writes it: layers with `forward`/`backward`, a
//! network of them, the optimizers, and the numerical gradient that proves
//! backprop right. Every GPU kernel is tested against these functions.

pub mod conv;
pub mod layers;
pub mod matmul;
pub mod memory;
pub mod net;
pub mod network;
pub mod numerical;
pub mod optimizer;
pub mod sequential;
pub mod trainer;

pub use layers::{Affine, BatchNormalization, Dropout, Labels, Relu, SoftmaxWithLoss};
pub use net::{Net, Pass};
pub use network::CpuNetwork;
pub use numerical::numerical_gradient;
pub use optimizer::OptimizerState;
pub use trainer::CpuTrainer;
