//! What every part of gpu-net shares and nothing else defines: the
//! network's description and parameters, the optimizers' rules, a run's
//! settings and their limits, the data, the geometry of sliding windows,
//! the [`trainer::Trainer`] trait a device implements, file handling and
//! the one error type.
//!
//! May import: nothing of the crate outside `core` (the lowest rank; see
//! `tests/architecture.rs`).

pub mod arena;
pub mod compare;
pub mod config;
pub mod conv;
pub mod data;
pub mod dropout_mask;
pub mod error;
pub mod files;
pub mod limits;
pub mod model;
pub mod network;
pub mod optim;
pub mod trainer;
