//! The book's chapter scripts on either device: chapter 6's experiments,
//! chapter 7's `train_convnet.py`, and the book's `Trainer` class, each
//! run through the one epoch loop (`run::epoch_loop`).
//!
//! May import: `run`, `report`, `cpu`, `gpu` and `core`.

pub mod experiment;
pub mod first_images;
pub mod table;
pub mod train_convnet;
pub mod trainer;
