//! MNIST and checkpoints: the bundled data as numpy arrays, and the
//! safetensors files `gpu-net train --save` writes and `eval` reads.

use std::path::{Path, PathBuf};

use gpu_net::core::config::RunConfig;
use gpu_net::core::data::{self, Dataset};
use gpu_net::core::optim::Optimizer as Rule;
use gpu_net::run::checkpoint::{Checkpoint, RunState};
use numpy::{PyArray1, PyArray2, PyArrayMethods, PyReadonlyArrayDyn};
use pyo3::exceptions::PyOSError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::convert::arrays_of;
use crate::network::Network;
use crate::py_err;

/// Where `load_mnist()` looks without `data_dir`: `data/mnist` under the
/// working directory, then the checkout these bindings were built from.
#[pyfunction]
pub fn default_data_dirs() -> Vec<PathBuf> {
    vec![Path::new("data").join("mnist"), data::bundled_dir()]
}

/// A split's images (N, pixels) and labels.
type Split<'py> = (Bound<'py, PyArray2<u8>>, Bound<'py, PyArray1<u8>>);

/// Images in MNIST's training split, and pixels in each.
const MNIST_TRAIN: usize = 60_000;
const MNIST_PIXELS: usize = 784;

/// The first of [`default_data_dirs`] that holds MNIST.
fn default_mnist() -> PyResult<PathBuf> {
    let dirs = default_data_dirs();
    dirs.iter()
        .find(|d| {
            ["", ".gz"]
                .iter()
                .any(|z| d.join(format!("t10k-labels-idx1-ubyte{z}")).exists())
        })
        .cloned()
        .ok_or_else(|| {
            let looked: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
            PyOSError::new_err(format!(
                "no MNIST in {}; pass data_dir= a folder with the four IDX files",
                looked.join(" or ")
            ))
        })
}

fn split<'py>(py: Python<'py>, d: &Dataset) -> PyResult<Split<'py>> {
    let x = PyArray1::from_slice(py, &d.images).reshape([d.len(), d.pixels()])?;
    Ok((x, PyArray1::from_slice(py, &d.labels)))
}

/// (x_train, t_train, x_test, t_test, folder): u8 images (N, 784) and u8
/// labels, from `data_dir` or the first of [`default_data_dirs`] with MNIST.
#[pyfunction]
#[pyo3(signature = (data_dir=None))]
pub fn load_mnist_arrays<'py>(
    py: Python<'py>,
    data_dir: Option<PathBuf>,
) -> PyResult<Bound<'py, PyDict>> {
    let dir = match data_dir {
        Some(d) => d,
        None => default_mnist()?,
    };
    let m = py
        .detach(|| data::load_dir(&dir))
        .map_err(|e| py_err(e.into()))?;
    let out = PyDict::new(py);
    let (x, t) = split(py, &m.train)?;
    out.set_item("x_train", x)?;
    out.set_item("t_train", t)?;
    let (x, t) = split(py, &m.test)?;
    out.set_item("x_test", x)?;
    out.set_item("t_test", t)?;
    out.set_item("dir", dir)?;
    Ok(out)
}

/// Writes `network` with `params` in the format of `gpu-net train --save`:
/// the book's tensor names, the network's shape, Batch Normalization,
/// Dropout, weight decay, init and seed, its running statistics, and its
/// training-form passes as `iterations`. No optimizer state or sampler
/// position: `gpu-net eval` and `gpu_net.load` read it; a CLI `--resume`
/// of it starts the CLI's default rule afresh from these weights.
#[pyfunction]
pub fn write_checkpoint(
    network: &Bound<'_, Network>,
    params: Vec<PyReadonlyArrayDyn<'_, f64>>,
    path: PathBuf,
) -> PyResult<()> {
    let n = network.borrow();
    let p = n.params_with_running(&params)?;
    let config = RunConfig {
        hidden: n.arch.hidden().to_vec(),
        conv: n.arch.conv,
        network: n.arch.layers.as_ref().map(|l| l.text()),
        batchnorm: n.arch.batchnorm,
        dropout: n.arch.dropout,
        weight_decay: n.net.weight_decay,
        init: n.init(),
        optimizer: Rule::default(),
        seed: n.net.seed,
        // A checkpoint names its data, which `eval` reads unless told
        // otherwise: the MNIST `load_mnist()` finds.
        data: (n.arch.inputs() == MNIST_PIXELS)
            .then(|| default_mnist().ok())
            .flatten()
            .map(|d| d.canonicalize().unwrap_or(d).display().to_string()),
        train_size: Some(MNIST_TRAIN),
        ..RunConfig::default()
    };
    let state = RunState::outside_a_run(n.steps_done(), config.lr);
    let ck = Checkpoint::new(p, config, state, n.context().is_none());
    ck.write(&path).map_err(|e| py_err(e.into()))
}

/// A checkpoint's network settings, arrays and state, as a dict the
/// Python `load()` builds a network from.
#[pyfunction]
pub fn read_checkpoint<'py>(py: Python<'py>, path: PathBuf) -> PyResult<Bound<'py, PyDict>> {
    let ck = Checkpoint::read(&path).map_err(|e| py_err(e.into()))?;
    let arch = &ck.params.arch;
    let out = PyDict::new(py);
    out.set_item("sizes", arch.sizes.clone())?;
    // A SimpleConvNet's input_dim and conv_param; its first size is C·H·W.
    match arch.conv {
        Some(c) => {
            let conv = (c.input_dim, c.filter_num, c.filter_size, c.pad, c.stride);
            out.set_item("conv", conv)?;
            out.set_item("inputs", arch.inputs())?;
        }
        None => out.set_item("conv", py.None())?,
    }
    out.set_item("batchnorm", arch.batchnorm)?;
    out.set_item("dropout", arch.dropout)?;
    out.set_item("weight_decay", ck.config.weight_decay)?;
    out.set_item("init", ck.config.init.to_string())?;
    out.set_item("seed", ck.config.seed)?;
    out.set_item(
        "names",
        arch.tensors()
            .into_iter()
            .map(|t| t.name)
            .collect::<Vec<_>>(),
    )?;
    out.set_item("params", arrays_of(py, &ck.params)?)?;
    out.set_item("running", ck.params.running.clone())?;
    out.set_item("steps", ck.state.iterations)?;
    Ok(out)
}
