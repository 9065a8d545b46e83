//! The CPU reference path, in f64, written the way "Deep Learning from
//! Scratch" (chapter 5) writes it: layers with `forward`/`backward`, a network
//! of them, and the numerical gradient that proves backprop right. Every GPU
//! kernel is tested against these functions.

pub mod layers;
pub mod matmul;
pub mod net;
pub mod numerical;

pub use layers::{Affine, Labels, Relu, SoftmaxWithLoss};
pub use net::Net;
pub use numerical::numerical_gradient;
