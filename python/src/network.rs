//! One network as the Python classes hold it: its shape and settings, and
//! the device it runs on (the GPU through `HostFedNet`, or the CPU f64
//! reference). Parameters come in with every call, so the book's in-place
//! `params[key] -= ...` takes effect on the next one; Batch
//! Normalization's running statistics and Dropout's step count live here,
//! as they live in the book's layers.

use std::sync::{Arc, Mutex};

use gpu_net::core::model::{Arch, ConvFront, Init, Params};
use gpu_net::cpu::Net;
use gpu_net::cpu::layers::{Labels, SoftmaxWithLoss};
use gpu_net::cpu::numerical::{all_elements, numerical_gradient};
use gpu_net::gpu::{Form, GpuContext, GpuError as LibGpuError, GpuOptions, HostFedNet};
use numpy::{PyArray1, PyArray2, PyArrayDyn, PyArrayMethods};
use numpy::{PyReadonlyArray1, PyReadonlyArray2, PyReadonlyArrayDyn};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::convert::{arrays_of, batch_of, labels_of, params_from};
use crate::gpu_err;

/// One GPU context for the whole process: opening a device takes a while.
static CONTEXT: Mutex<Option<Arc<GpuContext>>> = Mutex::new(None);

fn context() -> Result<Arc<GpuContext>, LibGpuError> {
    // A panic while opening leaves the lock poisoned; what it holds is still sound.
    let mut held = CONTEXT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(ctx) = &*held {
        return Ok(ctx.clone());
    }
    let ctx = Arc::new(gpu_net::gpu::tune::open(&GpuOptions::default())?);
    *held = Some(ctx.clone());
    Ok(ctx)
}

pub(crate) enum Engine {
    Gpu(Box<HostFedNet>),
    /// The f64 reference; `running` is Batch Normalization's statistics.
    Cpu {
        running: Vec<f64>,
        steps: u64,
    },
}

#[pyclass(module = "gpu_net._core")]
pub struct Network {
    pub(crate) arch: Arch,
    pub(crate) net: Net,
    init: Init,
    pub(crate) engine: Engine,
    /// Why `device="auto"` took the CPU.
    fallback: Option<String>,
}

impl Network {
    pub(crate) fn context(&self) -> Option<Arc<GpuContext>> {
        match &self.engine {
            Engine::Gpu(g) => Some(g.net.ctx.clone()),
            Engine::Cpu { .. } => None,
        }
    }

    pub(crate) fn running(&self) -> PyResult<Vec<f64>> {
        match &self.engine {
            Engine::Gpu(g) => Ok(g.read_params().map_err(gpu_err)?.running),
            Engine::Cpu { running, .. } => Ok(running.clone()),
        }
    }

    pub(crate) fn params(&self, arrays: &[PyReadonlyArrayDyn<'_, f64>]) -> PyResult<Params> {
        let running = match &self.engine {
            Engine::Gpu(_) => vec![0.0; self.arch.running_len()],
            Engine::Cpu { running, .. } => running.clone(),
        };
        params_from(&self.arch, arrays, &running)
    }

    /// [`Network::params`] with the running statistics the device holds.
    pub(crate) fn params_with_running(
        &self,
        arrays: &[PyReadonlyArrayDyn<'_, f64>],
    ) -> PyResult<Params> {
        let mut p = self.params(arrays)?;
        p.running = self.running()?;
        Ok(p)
    }

    /// A batch and its labels, checked against the network: (x, rows, t).
    fn labelled(
        &self,
        x: &PyReadonlyArray2<'_, f64>,
        t: &PyReadonlyArray1<'_, i64>,
    ) -> PyResult<(Vec<f64>, usize, Vec<u32>)> {
        let (x, rows) = batch_of(x, self.arch.inputs())?;
        let t = labels_of(t, rows, self.arch.outputs())?;
        Ok((x, rows, t))
    }

    pub(crate) fn init(&self) -> Init {
        self.init
    }

    pub(crate) fn steps_done(&self) -> u64 {
        self.steps()
    }

    /// Takes the running statistics and step count of training done elsewhere.
    pub(crate) fn set_state(&mut self, running: &[f64], steps: u64) -> PyResult<()> {
        self.set_running(running.to_vec())?;
        self.set_steps(steps);
        Ok(())
    }

    /// Logits (rows × outputs) in `form`; the GPU's in chunks for evaluation.
    fn logits(
        &mut self,
        py: Python<'_>,
        p: Params,
        x: &[f64],
        rows: usize,
        form: Form,
    ) -> PyResult<Vec<f64>> {
        let net = &self.net;
        match &mut self.engine {
            Engine::Cpu { running, steps } => {
                let mut p = p;
                let out = match form {
                    Form::Eval => net.predict(&p, x, rows),
                    Form::Train => {
                        *steps += 1;
                        net.predict_training(&mut p, x, rows, *steps as u32)
                    }
                };
                *running = p.running;
                Ok(out)
            }
            Engine::Gpu(g) => py.detach(|| {
                g.write_params(&p);
                let inputs = p.arch.inputs();
                let chunk = if form == Form::Train {
                    rows // training form: batch statistics over the whole batch
                } else {
                    g.chunk_rows()
                };
                let mut out = Vec::with_capacity(rows * p.arch.outputs());
                for part in x.chunks(chunk * inputs) {
                    let x32: Vec<f32> = part.iter().map(|&v| v as f32).collect();
                    let (_, logits) = g
                        .forward_logits(&x32, &vec![0; part.len() / inputs], form)
                        .map_err(gpu_err)?;
                    out.extend(logits.iter().map(|&v| v as f64));
                }
                Ok(out)
            }),
        }
    }
}

pub(crate) fn parse_device(device: &str) -> PyResult<(Option<Arc<GpuContext>>, Option<String>)> {
    match device {
        "cpu" => Ok((None, None)),
        "gpu" => Ok((Some(context().map_err(gpu_err)?), None)),
        "auto" => match context() {
            Ok(ctx) => Ok((Some(ctx), None)),
            Err(e @ LibGpuError::NoAdapter(_)) => Ok((None, Some(e.to_string()))),
            Err(e) => Err(gpu_err(e)),
        },
        other => Err(PyValueError::new_err(format!(
            "device={other:?}: say 'auto', 'gpu' or 'cpu'"
        ))),
    }
}

#[pymethods]
impl Network {
    /// `sizes`: inputs, each hidden layer, outputs; `init`: a standard
    /// deviation, 'he'/'relu' or 'xavier'/'sigmoid'; `conv`: a
    /// SimpleConvNet's `(input_dim, filter_num, filter_size, pad, stride)`,
    /// whose C·H·W is `sizes[0]`.
    #[new]
    #[pyo3(signature = (sizes, batchnorm, dropout, weight_decay, init, seed, device, conv=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        sizes: Vec<usize>,
        batchnorm: bool,
        dropout: f32,
        weight_decay: f64,
        init: &str,
        seed: u64,
        device: &str,
        conv: Option<([usize; 3], usize, usize, usize, usize)>,
    ) -> PyResult<Self> {
        let bad = |e: gpu_net::core::model::ArchError| PyValueError::new_err(e.to_string());
        let arch = Arch::new(sizes)
            .map_err(bad)?
            .with_batchnorm(batchnorm)
            .with_dropout(dropout)
            .map_err(bad)?;
        let arch = match conv {
            Some((input_dim, filter_num, filter_size, pad, stride)) => {
                let front = ConvFront {
                    input_dim,
                    filter_num,
                    filter_size,
                    pad,
                    stride,
                };
                arch.with_conv(front).map_err(|e| {
                    PyValueError::new_err(format!("input_dim and conv_param: {}", e.reason()))
                })?
            }
            None => arch,
        };
        let init = Init::parse(init).map_err(PyValueError::new_err)?;
        let (ctx, fallback) = py.detach(|| parse_device(device))?;
        let net = Net::new(&arch)
            .with_weight_decay(weight_decay)
            .with_seed(seed);
        let first = Params::init_with(&arch, init, seed);
        let engine = match ctx {
            Some(ctx) => Engine::Gpu(Box::new(
                py.detach(|| HostFedNet::new(ctx, &first, weight_decay, seed))
                    .map_err(gpu_err)?,
            )),
            None => Engine::Cpu {
                running: first.running.clone(),
                steps: 0,
            },
        };
        Ok(Network {
            arch,
            net,
            init,
            engine,
            fallback,
        })
    }

    /// (name, shape) of each tensor, in the book's order.
    fn tensors(&self) -> Vec<(String, Vec<usize>)> {
        self.arch
            .tensors()
            .into_iter()
            .map(|t| (t.name, t.shape))
            .collect()
    }

    /// The starting parameters: weights drawn from ChaCha8 with the seed.
    fn initial_params<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyArrayDyn<f64>>>> {
        let seed = self.net.seed;
        arrays_of(py, &Params::init_with(&self.arch, self.init, seed))
    }

    #[getter]
    fn device(&self) -> String {
        match &self.engine {
            Engine::Gpu(g) => format!("gpu: {}", g.net.ctx.describe()),
            Engine::Cpu { .. } => "cpu (f64 reference)".into(),
        }
    }

    /// Why `device='auto'` runs on the CPU (None when it does not).
    #[getter]
    fn fallback(&self) -> Option<String> {
        self.fallback.clone()
    }

    /// Training-form passes so far (Dropout's step numbers).
    #[getter]
    fn steps(&self) -> u64 {
        match &self.engine {
            Engine::Gpu(g) => g.steps_done(),
            Engine::Cpu { steps, .. } => *steps,
        }
    }

    #[setter]
    fn set_steps(&mut self, n: u64) {
        match &mut self.engine {
            Engine::Gpu(g) => g.set_steps(n),
            Engine::Cpu { steps, .. } => *steps = n,
        }
    }

    /// Batch Normalization's running means and variances, layer by layer.
    #[getter(running)]
    fn running_py<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray1<f64>>> {
        Ok(PyArray1::from_vec(py, self.running()?))
    }

    #[setter(running)]
    fn set_running(&mut self, values: Vec<f64>) -> PyResult<()> {
        if values.len() != self.arch.running_len() {
            return Err(PyValueError::new_err(format!(
                "running statistics: {} values for {}",
                values.len(),
                self.arch.running_len()
            )));
        }
        match &mut self.engine {
            Engine::Gpu(g) => g.net.write_running(&values),
            Engine::Cpu { running, .. } => *running = values,
        }
        Ok(())
    }

    fn predict<'py>(
        &mut self,
        py: Python<'py>,
        params: Vec<PyReadonlyArrayDyn<'py, f64>>,
        x: PyReadonlyArray2<'py, f64>,
        train: bool,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let p = self.params(&params)?;
        let (x, rows) = batch_of(&x, self.arch.inputs())?;
        let form = if train { Form::Train } else { Form::Eval };
        let out = self.logits(py, p, &x, rows, form)?;
        PyArray1::from_vec(py, out).reshape([rows, self.arch.outputs()])
    }

    /// Mean cross-entropy over the batch, plus weight decay's ½λ·ΣW².
    fn loss(
        &mut self,
        py: Python<'_>,
        params: Vec<PyReadonlyArrayDyn<'_, f64>>,
        x: PyReadonlyArray2<'_, f64>,
        t: PyReadonlyArray1<'_, i64>,
        train: bool,
    ) -> PyResult<f64> {
        let p = self.params(&params)?;
        let decay = self.net.weight_decay * p.half_weight_square_sum();
        let (x, rows, t) = self.labelled(&x, &t)?;
        let form = if train { Form::Train } else { Form::Eval };
        if let (Engine::Gpu(g), Form::Train) = (&mut self.engine, form) {
            let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
            let stats = py.detach(|| {
                g.write_params(&p);
                g.forward(&x32, &t, form)
            });
            return Ok(stats.map_err(gpu_err)?.mean_loss() + decay);
        }
        if let (Engine::Cpu { running, steps }, Form::Train) = (&mut self.engine, form) {
            let (mut p, t8) = (p, small_labels(&t));
            *steps += 1;
            let loss =
                self.net
                    .loss_updating_running(&mut p, &x, Labels::Index(&t8), rows, *steps as u32);
            *running = p.running;
            return Ok(loss);
        }
        let logits = self.logits(py, p, &x, rows, form)?;
        let t8 = small_labels(&t);
        Ok(SoftmaxWithLoss::default().forward(&logits, Labels::Index(&t8), rows) + decay)
    }

    /// The fraction of rows whose first largest logit (evaluation form) is the label.
    fn accuracy(
        &mut self,
        py: Python<'_>,
        params: Vec<PyReadonlyArrayDyn<'_, f64>>,
        x: PyReadonlyArray2<'_, f64>,
        t: PyReadonlyArray1<'_, i64>,
    ) -> PyResult<f64> {
        let p = self.params(&params)?;
        let (x, rows, t) = self.labelled(&x, &t)?;
        let logits = self.logits(py, p, &x, rows, Form::Eval)?;
        let t8 = small_labels(&t);
        Ok(gpu_net::cpu::net::correct_count(&logits, &t8) as f64 / rows as f64)
    }

    /// Backprop at the next training step: every tensor's gradient (weight
    /// decay included), on the network's device.
    fn gradient<'py>(
        &mut self,
        py: Python<'py>,
        params: Vec<PyReadonlyArrayDyn<'py, f64>>,
        x: PyReadonlyArray2<'py, f64>,
        t: PyReadonlyArray1<'py, i64>,
    ) -> PyResult<Vec<Bound<'py, PyArrayDyn<f64>>>> {
        let p = self.params(&params)?;
        let (x, rows, t) = self.labelled(&x, &t)?;
        let grads = match &mut self.engine {
            Engine::Gpu(g) => {
                let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
                py.detach(|| {
                    g.write_params(&p);
                    g.gradient(&x32, &t)
                })
                .map_err(gpu_err)?
                .1
            }
            Engine::Cpu { running, steps } => {
                let (mut p, t8, net) = (p, small_labels(&t), &self.net);
                *steps += 1;
                let step = *steps as u32;
                let (_, g) = py.detach(|| {
                    net.gradient_updating_running(&mut p, &x, Labels::Index(&t8), rows, step)
                });
                *running = p.running;
                g
            }
        };
        arrays_of(py, &grads)
    }

    /// Central differences (h = 1e-4) of the training-form loss at the next
    /// step, in f64 on the CPU, for every parameter.
    fn numerical_gradient<'py>(
        &mut self,
        py: Python<'py>,
        params: Vec<PyReadonlyArrayDyn<'py, f64>>,
        x: PyReadonlyArray2<'py, f64>,
        t: PyReadonlyArray1<'py, i64>,
    ) -> PyResult<Vec<Bound<'py, PyArrayDyn<f64>>>> {
        let p = self.params_with_running(&params)?;
        let (x, rows, t) = self.labelled(&x, &t)?;
        let t8 = small_labels(&t);
        let step = self.steps() as u32 + 1;
        let (net, tensors) = (&self.net, all_elements(&self.arch.tensors()));
        let g = py.detach(|| {
            let f = |q: &Params| net.loss_and_signature(q, &x, Labels::Index(&t8), rows, step);
            numerical_gradient(f, &p, &tensors).grads
        });
        arrays_of(py, &g)
    }
}

/// Labels as the CPU reference takes them (the network has at most 256
/// classes: `gpu_net/__init__.py` refuses more).
fn small_labels(t: &[u32]) -> Vec<u8> {
    t.iter().map(|&l| l as u8).collect()
}
