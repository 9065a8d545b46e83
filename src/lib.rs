//! gpu-net: the networks of the book "Deep Learning from Scratch"
//! (chapters 5 to 7: MLPs with chapter 6's layers and rules, SimpleConvNet)
//! trained on the GPU with hand-written WGSL compute shaders, and a CPU
//! reference path in f64, written as the book writes it, that proves every
//! GPU result right. `run` holds the jobs the command line calls.

pub mod bench;
pub mod book_figures;
pub mod book_trainer;
pub mod checkpoint;
pub mod compare;
pub mod config;
pub mod conv;
pub mod cpu;
pub mod data;
pub mod device;
pub mod dropout_mask;
pub mod error;
pub mod eval;
pub mod experiment;
pub mod experiment_table;
pub mod figure;
pub mod files;
pub mod gpu;
pub mod limits;
pub mod metrics;
pub mod model;
pub mod optim;
pub mod photo;
pub mod plot;
pub mod predict;
pub mod run;
pub mod train;
pub mod train_convnet;
pub mod verify;
