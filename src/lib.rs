//! gpu-net: a multilayer perceptron trained on the GPU with hand-written WGSL
//! compute shaders, and a CPU reference path (the book "Deep Learning from
//! Scratch", chapter 5) that proves every GPU result right.

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
