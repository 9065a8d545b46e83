//! What gpu-net shows: figures as the book's scripts draw them, the book's
//! chapter figures, pictures of weights and digits, photos read as MNIST
//! digits, and predictions from a checkpoint's parameters.
//!
//! May import: `core`, and the CPU path (predictions run on it).

pub mod book_figures;
pub mod figure;
pub mod misclassified;
pub mod photo;
pub mod plot;
pub mod predict;
