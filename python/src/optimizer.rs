//! The book's `common/optimizer.py`: `update(params, grads)` changes each
//! array of `params` in place by the library's f64 rules (`cpu::optimizer`,
//! the reference the GPU's optimizer kernel is proved against), keeping
//! one state per key as the book's dicts do.

use std::collections::HashMap;

use gpu_net::cpu::optimizer::OptimizerState;
use gpu_net::optim::{Optimizer as Rule, OptimizerKind};
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
    #[pyo3(signature = (kind, momentum=0.9, beta1=0.9, beta2=0.999, decay_rate=0.99))]
    fn new(kind: &str, momentum: f64, beta1: f64, beta2: f64, decay_rate: f64) -> PyResult<Self> {
        let kind = OptimizerKind::parse(kind).map_err(PyValueError::new_err)?;
        let rule = Rule {
            momentum,
            beta1,
            beta2,
            decay_rate,
            ..Rule::new(kind)
        };
        Ok(Optimizer {
            rule,
            state: HashMap::new(),
        })
    }

    /// `params[key]` updated in place from `grads[key]` at learning rate
    /// `lr`, for every key of `params` (float64 arrays; `grads` of the same
    /// shapes).
    fn update(
        &mut self,
        params: &Bound<'_, PyDict>,
        grads: &Bound<'_, PyDict>,
        lr: f64,
    ) -> PyResult<()> {
        for (key, value) in params.iter() {
            let name: String = key.extract()?;
            let p = value.cast::<PyArrayDyn<f64>>().map_err(|_| {
                PyValueError::new_err(format!("params['{name}'] is not a float64 numpy array"))
            })?;
            let g = grads.get_item(&key)?.ok_or_else(|| {
                PyValueError::new_err(format!("grads has no '{name}', which params has"))
            })?;
            let g: PyReadonlyArrayDyn<'_, f64> = g.extract().map_err(|_| {
                PyValueError::new_err(format!("grads['{name}'] is not a float64 numpy array"))
            })?;
            if g.shape() != p.shape() {
                return Err(PyValueError::new_err(format!(
                    "grads['{name}'] has shape {:?}, params['{name}'] {:?}",
                    g.shape(),
                    p.shape()
                )));
            }
            let g: Vec<f64> = g.as_array().iter().copied().collect();
            let mut p = p.try_readwrite().map_err(|_| {
                PyValueError::new_err(format!("params['{name}'] cannot be written in place"))
            })?;
            let values = p.as_slice_mut().map_err(|_| {
                PyValueError::new_err(format!("params['{name}'] is not contiguous"))
            })?;
            let (rule, len) = (self.rule, values.len());
            self.state
                .entry(name)
                .or_insert_with(|| OptimizerState::new(rule, len))
                .update(values, &g, lr);
        }
        Ok(())
    }
}
