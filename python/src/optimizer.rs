//! The book's `common/optimizer.py`: `update(params, grads)` changes each
//! array of `params` in place by the library's f64 rules (`cpu::optimizer`,
//! the reference the GPU's optimizer kernel is proved against), keeping
//! one state per key as the book's dicts do.

use std::collections::HashMap;

use gpu_net::core::optim::{Optimizer as Rule, OptimizerKind};
use gpu_net::cpu::optimizer::OptimizerState;
use numpy::{PyArrayDyn, PyArrayMethods, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

#[pyclass(module = "gpu_net._core")]
pub struct Optimizer {
    rule: Rule,
    state: HashMap<String, OptimizerState>,
}

#[pymethods]
impl Optimizer {
    #[new]
    fn new(kind: &str) -> PyResult<Self> {
        let kind = OptimizerKind::parse(kind).map_err(PyValueError::new_err)?;
        Ok(Optimizer {
            rule: Rule::new(kind),
            state: HashMap::new(),
        })
    }

    /// `params[key]` updated in place from `grads[key]` at learning rate
    /// `lr`, for every key of `params` (float64 arrays; `grads` of the same
    /// shapes), with the hyperparameters as they are now (the book reads
    /// its attributes at every update).
    #[pyo3(signature = (params, grads, lr, momentum=0.9, beta1=0.9, beta2=0.999, decay_rate=0.99))]
    #[allow(clippy::too_many_arguments)]
    fn update(
        &mut self,
        params: &Bound<'_, PyDict>,
        grads: &Bound<'_, PyDict>,
        lr: f64,
        momentum: f64,
        beta1: f64,
        beta2: f64,
        decay_rate: f64,
    ) -> PyResult<()> {
        let rule = Rule {
            momentum,
            beta1,
            beta2,
            decay_rate,
            ..self.rule
        };
        for (key, value) in params.iter() {
            let name: String = key.extract()?;
            let (g, g_shape) = gradient_of(grads, &key, &name)?;
            let p = value.cast::<PyArrayDyn<f64>>().map_err(|_| {
                PyValueError::new_err(format!("params['{name}'] is not a float64 numpy array"))
            })?;
            if g_shape != p.shape() {
                return Err(PyValueError::new_err(format!(
                    "grads['{name}'] has shape {g_shape:?}, params['{name}'] {:?}",
                    p.shape()
                )));
            }
            let mut p = p.try_readwrite().map_err(|_| {
                PyValueError::new_err(format!("params['{name}'] cannot be written in place"))
            })?;
            // In numpy's (logical, C) order whatever the memory order: a
            // transposed or Fortran-ordered array means what numpy says.
            let mut view = p.as_array_mut();
            let mut values: Vec<f64> = view.iter().copied().collect();
            let state = self
                .state
                .entry(name.clone())
                .or_insert_with(|| OptimizerState::new(rule, values.len()));
            if let Some(held) = state.state.first().filter(|s| s.len() != values.len()) {
                return Err(PyValueError::new_err(format!(
                    "params['{name}'] has {} values, but this optimizer's state for it {}: \
                     a new network needs a new optimizer",
                    values.len(),
                    held.len()
                )));
            }
            state.rule = rule;
            state.update(&mut values, &g, lr);
            for (d, v) in view.iter_mut().zip(values) {
                *d = v;
            }
        }
        Ok(())
    }
}

/// `grads[key]` copied out in numpy's order, with its shape, so no borrow
/// of it is held while `params` (which may share its memory) is written.
fn gradient_of(
    grads: &Bound<'_, PyDict>,
    key: &Bound<'_, PyAny>,
    name: &str,
) -> PyResult<(Vec<f64>, Vec<usize>)> {
    let g = grads
        .get_item(key)?
        .ok_or_else(|| PyValueError::new_err(format!("grads has no '{name}', which params has")))?;
    let g: PyReadonlyArrayDyn<'_, f64> = g.extract().map_err(|_| {
        PyValueError::new_err(format!("grads['{name}'] is not a float64 numpy array"))
    })?;
    Ok((g.as_array().iter().copied().collect(), g.shape().to_vec()))
}
