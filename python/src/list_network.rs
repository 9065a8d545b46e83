//! A network given as a list of layers (`gpu_net::core::network`) as the
//! Python classes hold it: `DeepConvNet`. It computes on the CPU reference
//! in f64 (`gpu_net::cpu::sequential`); parameters come in with every call,
//! as for `Network`, and Dropout's step count lives here.

use gpu_net::core::model::{Init, Tensor};
use gpu_net::core::network::{Layer, Network, Plan, Values};
use gpu_net::cpu::layers::{Labels, SoftmaxWithLoss};
use gpu_net::cpu::net::correct_count;
use gpu_net::cpu::sequential::{Sequential, Weights};
use numpy::{PyArray1, PyArray2, PyArrayDyn, PyArrayMethods};
use numpy::{PyReadonlyArray1, PyReadonlyArray2, PyReadonlyArrayDyn};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::convert::{batch_of, fill, labels_of};

/// Images evaluated at a time: the book's `batch_size`, which also bounds
/// the convolutions' column matrices.
const CHUNK: usize = 100;

#[pyclass(module = "gpu_net._core")]
pub struct ListNetwork {
    seq: Sequential,
    tensors: Vec<Tensor>,
    init: Init,
    seed: u64,
    steps: u64,
}

impl ListNetwork {
    /// The arena from one array per tensor, in the tensors' order.
    fn arena(&self, arrays: &[PyReadonlyArrayDyn<'_, f64>]) -> PyResult<Vec<f64>> {
        let mut values = vec![0.0; self.seq.plan.arena_len];
        fill(&self.tensors, arrays, &mut values, "the list")?;
        Ok(values)
    }

    /// One array per tensor of `arena`, shaped as the book shapes it.
    fn arrays<'py>(
        &self,
        py: Python<'py>,
        arena: &[f64],
    ) -> PyResult<Vec<Bound<'py, PyArrayDyn<f64>>>> {
        let array =
            |t: &Tensor| PyArray1::from_slice(py, &arena[t.range()]).reshape(t.shape.clone());
        self.tensors
            .iter()
            .map(|t| array(t).map(|a| a.to_dyn().clone()))
            .collect()
    }

    fn inputs(&self) -> usize {
        self.seq.plan.layers.first().map_or(0, |l| l.input.len())
    }

    fn outputs(&self) -> usize {
        self.seq.plan.layers.last().map_or(0, |l| l.output.len())
    }

    /// A batch and its labels as the reference takes them.
    fn labelled(
        &self,
        x: &PyReadonlyArray2<'_, f64>,
        t: &PyReadonlyArray1<'_, i64>,
    ) -> PyResult<(Vec<f64>, usize, Vec<u8>)> {
        let (x, rows) = batch_of(x, self.inputs())?;
        let t = labels_of(t, rows, self.outputs())?;
        Ok((x, rows, t.iter().map(|&l| l as u8).collect()))
    }

    /// Logits in evaluation form, `CHUNK` images at a time.
    fn eval_logits(&self, values: &[f64], x: &[f64], rows: usize) -> Vec<f64> {
        let w = Weights {
            values,
            running: &[],
        };
        let inputs = self.inputs();
        x.chunks(CHUNK * inputs)
            .flat_map(|c| self.seq.predict(w, c, c.len() / inputs))
            .take(rows * self.outputs())
            .collect()
    }

    /// The next training step's number (Dropout's masks are keyed by it).
    fn next_step(&mut self) -> u32 {
        self.steps += 1;
        self.steps as u32
    }
}

#[pymethods]
impl ListNetwork {
    /// `text`, the layers' text form, on images `input_dim` (C, H, W).
    #[new]
    fn new(
        text: &str,
        input_dim: (usize, usize, usize),
        weight_decay: f64,
        init: &str,
        seed: u64,
    ) -> PyResult<Self> {
        let (c, h, w) = input_dim;
        let network = Network::parse(text, Values::Image { c, h, w })
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        if network.layers.contains(&Layer::BatchNorm) {
            return Err(PyValueError::new_err(
                "a list of layers with BatchNorm is not offered from Python",
            ));
        }
        let plan: Plan = network
            .plan()
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        // Labels reach the reference as bytes.
        let classes = plan.layers.last().map_or(0, |l| l.output.len());
        if classes > 256 {
            let msg = format!("{classes} classes: a network from Python has at most 256");
            return Err(PyValueError::new_err(msg));
        }
        let init = Init::parse(init).map_err(PyValueError::new_err)?;
        let (tensors, _) = Network::tensors(&plan);
        let mut seq = Sequential::new(plan);
        (seq.weight_decay, seq.seed) = (weight_decay, seed);
        Ok(ListNetwork {
            seq,
            tensors,
            init,
            seed,
            steps: 0,
        })
    }

    fn tensors(&self) -> Vec<(String, Vec<usize>)> {
        self.tensors
            .iter()
            .map(|t| (t.name.clone(), t.shape.clone()))
            .collect()
    }

    fn initial_params<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyArrayDyn<f64>>>> {
        let (values, _) = Network::init(&self.seq.plan, self.init, self.seed);
        self.arrays(py, &values)
    }

    #[getter]
    fn device(&self) -> String {
        "cpu (f64 reference)".into()
    }

    /// Why the network computes on the CPU.
    #[getter]
    fn fallback(&self) -> Option<String> {
        Some("a network given as a list of layers (DeepConvNet) runs on the CPU reference; its GPU path is not built yet".into())
    }

    #[getter]
    fn steps(&self) -> u64 {
        self.steps
    }

    fn predict<'py>(
        &mut self,
        py: Python<'py>,
        arrays: Vec<PyReadonlyArrayDyn<'py, f64>>,
        x: PyReadonlyArray2<'py, f64>,
        train_flg: bool,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let values = self.arena(&arrays)?;
        let (x, rows) = batch_of(&x, self.inputs())?;
        let logits = match train_flg {
            false => py.detach(|| self.eval_logits(&values, &x, rows)),
            true => {
                let step = self.next_step();
                let w = Weights {
                    values: &values,
                    running: &[],
                };
                py.detach(|| self.seq.predict_training(w, &x, rows, step))
            }
        };
        PyArray1::from_vec(py, logits).reshape([rows, self.outputs()])
    }

    /// The training-form loss (the book's `DeepConvNet.loss`), weight decay included.
    fn loss(
        &mut self,
        py: Python<'_>,
        arrays: Vec<PyReadonlyArrayDyn<'_, f64>>,
        x: PyReadonlyArray2<'_, f64>,
        t: PyReadonlyArray1<'_, i64>,
        train_flg: bool,
    ) -> PyResult<f64> {
        let values = self.arena(&arrays)?;
        let (x, rows, t) = self.labelled(&x, &t)?;
        if !train_flg {
            let logits = py.detach(|| self.eval_logits(&values, &x, rows));
            return Ok(
                SoftmaxWithLoss::default().forward(&logits, Labels::Index(&t), rows)
                    + self.seq.decay_loss(&values),
            );
        }
        let step = self.next_step();
        let w = Weights {
            values: &values,
            running: &[],
        };
        Ok(py.detach(|| {
            self.seq
                .loss_and_signature(w, &x, Labels::Index(&t), rows, step)
                .0
        }))
    }

    fn accuracy(
        &self,
        py: Python<'_>,
        arrays: Vec<PyReadonlyArrayDyn<'_, f64>>,
        x: PyReadonlyArray2<'_, f64>,
        t: PyReadonlyArray1<'_, i64>,
    ) -> PyResult<f64> {
        let values = self.arena(&arrays)?;
        let (x, rows, t) = self.labelled(&x, &t)?;
        let logits = py.detach(|| self.eval_logits(&values, &x, rows));
        Ok(correct_count(&logits, &t) as f64 / rows as f64)
    }

    /// Backprop at the next step: one array per tensor.
    fn gradient<'py>(
        &mut self,
        py: Python<'py>,
        arrays: Vec<PyReadonlyArrayDyn<'py, f64>>,
        x: PyReadonlyArray2<'py, f64>,
        t: PyReadonlyArray1<'py, i64>,
    ) -> PyResult<Vec<Bound<'py, PyArrayDyn<f64>>>> {
        let values = self.arena(&arrays)?;
        let (x, rows, t) = self.labelled(&x, &t)?;
        let step = self.next_step();
        let w = Weights {
            values: &values,
            running: &[],
        };
        let (_, grads) = py.detach(|| self.seq.gradient(w, &x, Labels::Index(&t), rows, step));
        self.arrays(py, &grads)
    }
}
