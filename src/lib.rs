//! gpu-net: the networks of the book "Deep Learning from Scratch"
//! (chapters 5 to 7: MLPs with chapter 6's layers and rules, SimpleConvNet)
//! trained on the GPU with hand-written WGSL compute shaders, and a CPU
//! reference path in f64, written as the book writes it, that proves every
//! GPU result right. `run` holds the jobs the command line calls.

pub mod book;
pub mod core;
pub mod cpu;
pub mod gpu;
pub mod report;
pub mod run;
