//! `Trainer.train()` on the GPU (`gpu_net::book::trainer`): the GIL is
//! released while the GPU works and taken back after every submission to
//! hear Ctrl-C, and after every epoch to report it.

use std::cell::RefCell;

use gpu_net::book::trainer::{BookTrainerConfig, BookTrainerResult, EpochLog, train_book};
use gpu_net::core::data::{Dataset, Mnist};
use gpu_net::core::optim::{Optimizer as Rule, OptimizerKind, StepRule};
use numpy::PyUntypedArrayMethods;
use numpy::{PyReadonlyArray1, PyReadonlyArray2, PyReadonlyArrayDyn};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::convert::arrays_of;
use crate::list_network::ListNetwork;
use crate::network::Network;
use crate::py_err;

/// A split from u8 images (N, pixels) and int64 labels, checked against
/// the network (the Python side checks first; this is the last line).
fn dataset(
    name: &str,
    x: &PyReadonlyArray2<'_, u8>,
    t: &PyReadonlyArray1<'_, i64>,
    inputs: usize,
    classes: usize,
) -> PyResult<Dataset> {
    let (rows, cols) = (x.shape()[0], x.shape()[1]);
    if cols != inputs || rows == 0 || t.len() != rows {
        return Err(PyValueError::new_err(format!(
            "{name}: {rows} images of {cols} pixels and {} labels for a network of {inputs} inputs",
            t.len()
        )));
    }
    let labels = t
        .as_array()
        .iter()
        .map(|&l| u8::try_from(l).ok().filter(|&v| (v as usize) < classes))
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(|| PyValueError::new_err(format!("{name}: a label outside 0..{classes}")))?;
    // One row of `cols` pixels per image: only the count matters here.
    Ok(Dataset::from_parts(
        x.as_array().iter().copied().collect(),
        labels,
        1,
        cols,
    ))
}

/// The rule from `optimizer` and `optimizer_param` (keys other than `lr`
/// are the rule's hyperparameters, named as the book's constructors name them).
fn rule_of(kind: &str, param: &Bound<'_, PyDict>) -> PyResult<Rule> {
    let kind =
        OptimizerKind::parse(kind).map_err(|e| PyValueError::new_err(format!("optimizer: {e}")))?;
    let mut rule = Rule::new(kind);
    for (k, v) in param.iter() {
        let key: String = k.extract()?;
        let value: f64 = v.extract()?;
        if !value.is_finite() {
            return Err(PyValueError::new_err(format!(
                "optimizer_param[{key:?}] is {value}"
            )));
        }
        match key.as_str() {
            "lr" => {}
            "momentum" => rule.momentum = value,
            "beta1" => rule.beta1 = value,
            "beta2" => rule.beta2 = value,
            "decay_rate" => rule.decay_rate = value,
            other => {
                return Err(PyValueError::new_err(format!(
                    "optimizer_param: {other:?} is not a setting of {kind}"
                )));
            }
        }
    }
    Ok(rule)
}

/// Trains `network` from `params`; returns a dict of the trained arrays
/// (`params`) and the book's lists, and `error`: None, or the exception that
/// stopped the run between two submissions (KeyboardInterrupt from Ctrl-C,
/// or what `on_epoch(epoch, losses, accuracies)` raised), for the
/// caller to raise once it has kept what was trained.
#[pyfunction]
#[pyo3(signature = (network, params, x_train, t_train, x_test, t_test, max_iter, batch, optimizer, optimizer_param, eval_samples, seed, on_epoch))]
#[allow(clippy::too_many_arguments)]
pub fn train<'py>(
    py: Python<'py>,
    network: &Bound<'py, PyAny>,
    params: Vec<PyReadonlyArrayDyn<'py, f64>>,
    x_train: PyReadonlyArray2<'py, u8>,
    t_train: PyReadonlyArray1<'py, i64>,
    x_test: PyReadonlyArray2<'py, u8>,
    t_test: PyReadonlyArray1<'py, i64>,
    max_iter: usize,
    batch: usize,
    optimizer: &str,
    optimizer_param: &Bound<'py, PyDict>,
    eval_samples: Option<usize>,
    seed: u64,
    on_epoch: Py<PyAny>,
) -> PyResult<Bound<'py, PyDict>> {
    let rule = rule_of(optimizer, optimizer_param)?;
    let lr: f64 = match optimizer_param.get_item("lr")? {
        Some(v) => v.extract()?,
        None => 0.01,
    };
    let (p, ctx, weight_decay, net_seed, steps_before) = state(network, &params)?;
    let cfg = BookTrainerConfig {
        max_iter,
        batch,
        lr: lr as f32,
        rule: StepRule {
            optimizer: rule,
            weight_decay,
            seed: net_seed,
        },
        eval_samples,
        seed,
    };
    let (inputs, classes) = (p.arch.inputs(), p.arch.outputs());
    let data = Mnist {
        train: dataset("x_train, t_train", &x_train, &t_train, inputs, classes)?,
        test: dataset("x_test, t_test", &x_test, &t_test, inputs, classes)?,
    };
    let (result, error) = train_detached(py, ctx, &p, &data, &cfg, on_epoch);
    let result = result.map_err(py_err)?;
    let steps = steps_before + result.steps;
    match network.cast::<Network>() {
        Ok(n) => n.borrow_mut().set_state(&result.params.running, steps)?,
        Err(_) => network.cast::<ListNetwork>()?.borrow_mut().set_steps(steps),
    }
    result_dict(py, result, error)
}

/// A network's parameters from `params`, its GPU context, weight decay,
/// Dropout's seed and steps so far: a `Network`'s or a `ListNetwork`'s.
#[allow(clippy::type_complexity)]
fn state(
    network: &Bound<'_, PyAny>,
    params: &[PyReadonlyArrayDyn<'_, f64>],
) -> PyResult<(
    gpu_net::core::model::Params,
    std::sync::Arc<gpu_net::gpu::GpuContext>,
    f64,
    u64,
    u64,
)> {
    if let Ok(list) = network.cast::<ListNetwork>() {
        return list.borrow().train_state(params);
    }
    let n = network.cast::<Network>()?.borrow();
    let p = n.params_with_running(params)?;
    let ctx = n
        .context()
        .ok_or_else(|| PyValueError::new_err("network: it runs on the CPU"))?;
    Ok((p, ctx, n.net.weight_decay, n.net.seed, n.steps_done()))
}

/// `train_book` with the GIL released, taken back after every submission
/// to hear Ctrl-C and after every epoch to report it; the exception that
/// stopped it, if any, beside the result.
fn train_detached(
    py: Python<'_>,
    ctx: std::sync::Arc<gpu_net::gpu::GpuContext>,
    p: &gpu_net::core::model::Params,
    data: &Mnist,
    cfg: &BookTrainerConfig,
    on_epoch: Py<PyAny>,
) -> (
    gpu_net::core::error::Result<BookTrainerResult>,
    Option<PyErr>,
) {
    py.detach(|| {
        let error = RefCell::new(None);
        let mut report = |e: &EpochLog| {
            Python::attach(|py| {
                let args = (e.epoch, e.losses.clone(), e.accuracies);
                if let Err(err) = on_epoch.bind(py).call1(args) {
                    error.borrow_mut().get_or_insert(err);
                }
            })
        };
        let mut stop = || {
            Python::attach(|py| {
                if let Err(err) = py.check_signals() {
                    error.borrow_mut().get_or_insert(err);
                }
            });
            error.borrow().is_some()
        };
        let result = train_book(ctx, p, data, cfg, &mut report, &mut stop);
        (result, error.into_inner())
    })
}

/// The trained arrays, the book's lists and the error, as `Trainer.train()` takes them.
fn result_dict<'py>(
    py: Python<'py>,
    result: BookTrainerResult,
    error: Option<PyErr>,
) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    out.set_item("params", arrays_of(py, &result.params)?)?;
    out.set_item("train_loss", result.train_loss)?;
    out.set_item("train_acc", result.train_acc)?;
    out.set_item("test_acc", result.test_acc)?;
    out.set_item("final_test_acc", result.final_test_acc)?;
    out.set_item("steps", result.steps)?;
    out.set_item("seconds", result.seconds)?;
    out.set_item("error", error.map(|e| e.into_value(py)))?;
    Ok(out)
}
