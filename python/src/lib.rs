//! `gpu_net._core`: the Rust half of the Python bindings. The classes the
//! book's readers use (`gpu_net/__init__.py`) check their arguments in
//! Python and call these with contiguous float64 arrays and int64 labels.
//!
//! - [`network`]: one network (its shape, device, Dropout's steps, Batch
//!   Normalization's running statistics) and its predict, loss, accuracy,
//!   gradient and numerical gradient;
//! - [`optimizer`]: the book's `update(params, grads)` over numpy arrays;
//! - [`trainer`]: the book's `Trainer.train()` on the GPU;
//! - [`files`]: MNIST and checkpoints.
//!
//! Imports the `gpu_net` library only.

mod convert;
mod files;
mod list_network;
mod network;
mod optimizer;
mod trainer;

use pyo3::prelude::*;

pyo3::create_exception!(
    _core,
    GpuError,
    pyo3::exceptions::PyRuntimeError,
    "A GPU failure: no adapter, a lost device, a buffer over the device's limits."
);

/// The library's error as the Python exception that fits it: the GPU's as
/// `GpuError`, files' as `OSError`, the rest (settings, shapes) as `ValueError`.
pub(crate) fn py_err(e: gpu_net::core::error::Error) -> PyErr {
    use gpu_net::core::error::Error as E;
    let text = e.to_string();
    let files = e.layer::<gpu_net::core::data::DataError>().is_some()
        || e.layer::<gpu_net::run::checkpoint::CheckpointError>()
            .is_some();
    match e {
        _ if e.layer::<gpu_net::gpu::GpuError>().is_some() => GpuError::new_err(text),
        E::Io { .. } => pyo3::exceptions::PyOSError::new_err(text),
        _ if files => pyo3::exceptions::PyOSError::new_err(text),
        E::Diverged { .. } => pyo3::exceptions::PyFloatingPointError::new_err(text),
        _ => pyo3::exceptions::PyValueError::new_err(text),
    }
}

pub(crate) fn gpu_err(e: gpu_net::gpu::GpuError) -> PyErr {
    py_err(e.into())
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("GpuError", m.py().get_type::<GpuError>())?;
    // The most steps one run takes, as `gpu-net train --iters` allows.
    m.add("MAX_ITERS", gpu_net::core::limits::MAX_ITERS)?;
    m.add_class::<network::Network>()?;
    m.add_class::<list_network::ListNetwork>()?;
    m.add_class::<optimizer::Optimizer>()?;
    m.add_function(wrap_pyfunction!(trainer::train, m)?)?;
    m.add_function(wrap_pyfunction!(files::load_mnist_arrays, m)?)?;
    m.add_function(wrap_pyfunction!(files::read_checkpoint, m)?)?;
    m.add_function(wrap_pyfunction!(files::write_checkpoint, m)?)?;
    m.add_function(wrap_pyfunction!(files::default_data_dirs, m)?)?;
    Ok(())
}
