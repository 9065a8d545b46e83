//! A network given as a list of layers (`gpu_net::core::network`) as the
//! Python classes hold it: `DeepConvNet`. It computes on the GPU
//! (`HostFedNet` over a `GpuSequential`), or on the CPU reference in f64
//! (`gpu_net::cpu::sequential`); parameters come in with every call, as
//! for `Network`, and Dropout's step count lives with the device.

use gpu_net::core::model::{Arch, Init, Params, Tensor};
use gpu_net::core::network::{Layer, Network, Plan, Values};
use gpu_net::cpu::layers::{Labels, SoftmaxWithLoss};
use gpu_net::cpu::net::correct_count;
use gpu_net::cpu::sequential::{Sequential, Weights};
use gpu_net::gpu::sequential::GpuSequential;
use gpu_net::gpu::stages::Stages;
use gpu_net::gpu::{Form, HostFedNet};
use numpy::{PyArray1, PyArray2, PyArrayDyn, PyArrayMethods};
use numpy::{PyReadonlyArray1, PyReadonlyArray2, PyReadonlyArrayDyn};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::convert::{batch_of, fill, labels_of};
use crate::gpu_err;
use crate::network::parse_device;

/// Images evaluated at a time: the book's `batch_size`, which also bounds
/// the convolutions' column matrices.
const CHUNK: usize = 100;

/// The list on the GPU, fed from the host.
type GpuList = Box<HostFedNet<GpuSequential>>;

#[pyclass(module = "gpu_net._core")]
pub struct ListNetwork {
    seq: Sequential,
    arch: Arch,
    tensors: Vec<Tensor>,
    init: Init,
    seed: u64,
    /// Training-form passes on the CPU (the GPU counts its own).
    steps: u64,
    gpu: Option<GpuList>,
    /// Why `device="auto"` took the CPU.
    fallback: Option<String>,
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

    /// The GPU's logits (rows × outputs) in `form`, its parameters `values`:
    /// evaluation in chunks, the training form over the whole batch.
    fn gpu_logits(
        &mut self,
        values: Vec<f64>,
        x: &[f64],
        rows: usize,
        form: Form,
    ) -> PyResult<Vec<f64>> {
        let (inputs, outputs) = (self.inputs(), self.outputs());
        let g = self.gpu.as_mut().expect("the GPU engine");
        g.net.write_params(&values);
        let chunk = if form == Form::Train {
            rows
        } else {
            g.chunk_rows()
        };
        let mut out = Vec::with_capacity(rows * outputs);
        for part in x.chunks(chunk * inputs) {
            let x32: Vec<f32> = part.iter().map(|&v| v as f32).collect();
            let labels = vec![0; part.len() / inputs];
            let (_, logits) = g.forward_logits(&x32, &labels, form).map_err(gpu_err)?;
            out.extend(logits.iter().map(|&v| v as f64));
        }
        Ok(out)
    }

    /// What `Trainer` needs of the network on the GPU: its parameters from
    /// `arrays`, its context, weight decay, Dropout's seed and steps so far.
    pub(crate) fn train_state(
        &self,
        arrays: &[PyReadonlyArrayDyn<'_, f64>],
    ) -> PyResult<(
        Params,
        std::sync::Arc<gpu_net::gpu::GpuContext>,
        f64,
        u64,
        u64,
    )> {
        let g = self
            .gpu
            .as_ref()
            .ok_or_else(|| PyValueError::new_err("network: it runs on the CPU"))?;
        let values = self.arena(arrays)?;
        let running = vec![0.0; self.seq.plan.running_len];
        let params = Params {
            arch: self.arch.clone(),
            values,
            running,
        };
        let (decay, seed) = (self.seq.weight_decay, self.seed);
        Ok((params, g.net.ctx.clone(), decay, seed, g.steps_done()))
    }

    /// Takes the step count of training done elsewhere (Dropout's masks go on from it).
    pub(crate) fn set_steps(&mut self, steps: u64) {
        match &mut self.gpu {
            Some(g) => g.set_steps(steps),
            None => self.steps = steps,
        }
    }

    /// The GPU for `device` where it runs this list; else the CPU and why.
    fn engine(
        device: &str,
        plan: &Plan,
        first: &Params,
        (weight_decay, seed): (f64, u64),
    ) -> PyResult<(Option<GpuList>, Option<String>)> {
        let (ctx, fallback) = parse_device(device)?;
        let Some(ctx) = ctx else {
            return Ok((None, fallback));
        };
        let stages = match Stages::new(plan) {
            Ok(stages) => stages,
            Err(e) if device == "auto" => return Ok((None, Some(e.to_string()))),
            Err(e) => return Err(PyValueError::new_err(format!("device='gpu': {e}"))),
        };
        let net = GpuSequential::new(ctx, first, stages, true).map_err(gpu_err)?;
        Ok((
            Some(Box::new(HostFedNet::with(net, weight_decay, seed))),
            None,
        ))
    }
}

/// A batch as the GPU takes it: f32 values and u32 labels.
fn host_batch(x: &[f64], t: &[u8]) -> (Vec<f32>, Vec<u32>) {
    let x32 = x.iter().map(|&v| v as f32).collect();
    (x32, t.iter().map(|&l| l as u32).collect())
}

#[pymethods]
impl ListNetwork {
    /// `text`, the layers' text form, on images `input_dim` (C, H, W), on
    /// `device` ('auto', 'gpu' or 'cpu').
    #[new]
    #[pyo3(signature = (text, input_dim, weight_decay, init, seed, device="cpu"))]
    fn new(
        py: Python<'_>,
        text: &str,
        input_dim: (usize, usize, usize),
        weight_decay: f64,
        init: &str,
        seed: u64,
        device: &str,
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
        let arch = Arch::from_network(network).map_err(|e| PyValueError::new_err(e.to_string()))?;
        let first = Params::init_with(&arch, init, seed);
        let (gpu, fallback) =
            py.detach(|| Self::engine(device, &plan, &first, (weight_decay, seed)))?;
        let mut seq = Sequential::new(plan);
        (seq.weight_decay, seq.seed) = (weight_decay, seed);
        Ok(ListNetwork {
            seq,
            arch,
            tensors,
            init,
            seed,
            steps: 0,
            gpu,
            fallback,
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
        match &self.gpu {
            Some(g) => format!("gpu: {}", g.net.ctx.describe()),
            None => "cpu (f64 reference)".into(),
        }
    }

    /// Why `device='auto'` computes on the CPU (None when it does not).
    #[getter]
    fn fallback(&self) -> Option<String> {
        self.fallback.clone()
    }

    /// Training-form passes so far (Dropout's step numbers).
    #[getter]
    fn steps(&self) -> u64 {
        match &self.gpu {
            Some(g) => g.steps_done(),
            None => self.steps,
        }
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
        let form = if train_flg { Form::Train } else { Form::Eval };
        let logits = match train_flg {
            _ if self.gpu.is_some() => py.detach(|| self.gpu_logits(values, &x, rows, form))?,
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
        let decay = self.seq.decay_loss(&values);
        if let (Some(g), true) = (&mut self.gpu, train_flg) {
            let (x32, t32) = host_batch(&x, &t);
            let stats = py.detach(|| {
                g.net.write_params(&values);
                g.forward(&x32, &t32, Form::Train)
            });
            return Ok(stats.map_err(gpu_err)?.mean_loss() + decay);
        }
        if !train_flg {
            let logits = match self.gpu.is_some() {
                true => py.detach(|| self.gpu_logits(values.clone(), &x, rows, Form::Eval))?,
                false => py.detach(|| self.eval_logits(&values, &x, rows)),
            };
            return Ok(
                SoftmaxWithLoss::default().forward(&logits, Labels::Index(&t), rows) + decay,
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
        &mut self,
        py: Python<'_>,
        arrays: Vec<PyReadonlyArrayDyn<'_, f64>>,
        x: PyReadonlyArray2<'_, f64>,
        t: PyReadonlyArray1<'_, i64>,
    ) -> PyResult<f64> {
        let values = self.arena(&arrays)?;
        let (x, rows, t) = self.labelled(&x, &t)?;
        let logits = match self.gpu.is_some() {
            true => py.detach(|| self.gpu_logits(values, &x, rows, Form::Eval))?,
            false => py.detach(|| self.eval_logits(&values, &x, rows)),
        };
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
        if let Some(g) = &mut self.gpu {
            let (x32, t32) = host_batch(&x, &t);
            let grads = py.detach(|| {
                g.net.write_params(&values);
                g.gradient(&x32, &t32)
            });
            return self.arrays(py, &grads.map_err(gpu_err)?.1.values);
        }
        let step = self.next_step();
        let w = Weights {
            values: &values,
            running: &[],
        };
        let (_, grads) = py.detach(|| self.seq.gradient(w, &x, Labels::Index(&t), rows, step));
        self.arrays(py, &grads)
    }
}
