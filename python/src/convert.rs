//! numpy arrays to the library's arena and back. The Python side has
//! already checked names, dtypes, NaN and label ranges and said which
//! argument was wrong; these checks are the last line, so a mismatch is
//! still a `ValueError`, never a panic.

use gpu_net::core::model::{Arch, Params, Tensor};
use numpy::{PyArray1, PyArrayDyn, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2};
use numpy::{PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

/// The arena from one array per tensor, in [`Arch::tensors`]' order, with
/// `running` as the running statistics.
pub fn params_from(
    arch: &Arch,
    arrays: &[PyReadonlyArrayDyn<'_, f64>],
    running: &[f64],
) -> PyResult<Params> {
    let mut p = Params::zeros(arch);
    fill(&arch.tensors(), arrays, &mut p.values, &arch.shape())?;
    p.running = running.to_vec();
    Ok(p)
}

/// Each of `tensors` in `arena` from its array, in order, checked: one
/// array per tensor (`what` names the network), each of its tensor's
/// shape and finite.
pub fn fill(
    tensors: &[Tensor],
    arrays: &[PyReadonlyArrayDyn<'_, f64>],
    arena: &mut [f64],
    what: &str,
) -> PyResult<()> {
    if arrays.len() != tensors.len() {
        return Err(PyValueError::new_err(format!(
            "params: {} arrays for the {} tensors of {what}",
            arrays.len(),
            tensors.len(),
        )));
    }
    for (t, a) in tensors.iter().zip(arrays) {
        if a.shape() != t.shape.as_slice() {
            return Err(PyValueError::new_err(format!(
                "params['{}'] has shape {:?}, not {:?}",
                t.name,
                a.shape(),
                t.shape
            )));
        }
        let dst = &mut arena[t.range()];
        for (i, (d, s)) in dst.iter_mut().zip(a.as_array().iter()).enumerate() {
            // Relu would turn a NaN into 0 and hide it: refuse it by name.
            if !s.is_finite() {
                return Err(PyValueError::new_err(format!(
                    "params['{}'] holds {s} at element {i}: parameters must be finite",
                    t.name
                )));
            }
            *d = *s;
        }
    }
    Ok(())
}

/// One float64 array per tensor, shaped as the book shapes it.
pub fn arrays_of<'py>(py: Python<'py>, p: &Params) -> PyResult<Vec<Bound<'py, PyArrayDyn<f64>>>> {
    p.arch
        .tensors()
        .iter()
        .map(|t| {
            PyArray1::from_slice(py, p.tensor(t))
                .reshape(t.shape.clone())
                .map(|a| a.to_dyn().clone())
        })
        .collect()
}

/// A batch of inputs: its values, row-major, and its rows.
pub fn batch_of(x: &PyReadonlyArray2<'_, f64>, inputs: usize) -> PyResult<(Vec<f64>, usize)> {
    let [rows, cols] = [x.shape()[0], x.shape()[1]];
    if cols != inputs || rows == 0 {
        return Err(PyValueError::new_err(format!(
            "x has shape ({rows}, {cols}); the network takes (N, {inputs}) with N at least 1"
        )));
    }
    Ok((x.as_array().iter().copied().collect(), rows))
}

/// Class indices, checked against the rows and the classes.
pub fn labels_of(t: &PyReadonlyArray1<'_, i64>, rows: usize, classes: usize) -> PyResult<Vec<u32>> {
    if t.len() != rows {
        return Err(PyValueError::new_err(format!(
            "t has {} labels for {rows} images",
            t.len()
        )));
    }
    t.as_array()
        .iter()
        .map(|&l| match u32::try_from(l) {
            Ok(v) if (v as usize) < classes => Ok(v),
            _ => Err(PyValueError::new_err(format!(
                "t holds the label {l}, outside 0..{classes}"
            ))),
        })
        .collect()
}
