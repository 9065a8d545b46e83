//! Checkpoints: a [safetensors](https://huggingface.co/docs/safetensors) file
//! with the book's tensor names (`W1` [I, O], `b1` [O], `gamma1`, `beta1`,
//! `running_mean1`, `running_var1`, ...; a SimpleConvNet's `W1` is
//! [FN, C, FH, FW], as the book's), the optimizer's state under
//! `optimizer/<state>/<tensor>` (a `/` never appears in a parameter's name),
//! and in `__metadata__` everything needed to rebuild and continue the run.
//!
//! Values are little-endian F32 when the GPU trained (its own precision, so
//! nothing is rounded) and F64 from the CPU reference path, so continuing a
//! run from its checkpoint is exact on either path.
//!
//! Writing is atomic (`files`): a temporary file in the same folder,
//! synced, renamed over the old one, then the folder synced. Reading is strict: every
//! way a file can be wrong is an error naming the file and the problem.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use safetensors::{Dtype, SafeTensors, tensor::TensorView};

use crate::core::config::RunConfig;
use crate::core::conv::ConvFront;
use crate::core::files;
use crate::core::model::{Arch, Params, Tensor};
use crate::core::network::{Network, Values};
use crate::core::optim::OptimizerKind;

/// The value of `__metadata__["format"]`.
pub const FORMAT: &str = "gpu-net checkpoint 1";

/// Largest header read: the safetensors crate's own limit. Ours are a few
/// kB, about 1 kB more per layer; a header is read only once the file is
/// seen to hold it, so the limit bounds nothing the file does not have.
const MAX_HEADER: u64 = 100_000_000;

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{}: {why}", path.display())]
    Invalid { path: PathBuf, why: String },
    /// The I/O error is in the message, not a `source`: a chain printed
    /// whole (`{:#}`) would say it twice.
    #[error("{}: {error}", path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
}

/// A checkpoint that cannot be read or written is a failure, whatever its cause.
impl crate::core::error::LayerError for CheckpointError {
    fn is_usage(&self) -> bool {
        false
    }
}

/// Everything a checkpoint holds.
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    /// The parameters, the network (`params.arch`) and the running statistics.
    pub params: Params,
    /// The run's settings; the data folder and the training-set size are
    /// always given (what the run used).
    pub config: RunConfig,
    /// Where the run stands: the optimizer's state, the steps done, the
    /// sampler's position.
    pub state: RunState,
    /// F32 (GPU) or F64 (CPU reference).
    pub f64_values: bool,
}

/// The state arrays each rule keeps, by name.
pub fn state_names(kind: OptimizerKind) -> &'static [&'static str] {
    match kind {
        OptimizerKind::Sgd => &[],
        OptimizerKind::Momentum | OptimizerKind::Nesterov => &["v"],
        OptimizerKind::AdaGrad | OptimizerKind::RmsProp => &["h"],
        OptimizerKind::Adam => &["m", "v"],
    }
}

fn invalid(path: &Path, why: impl Into<String>) -> CheckpointError {
    CheckpointError::Invalid {
        path: path.to_path_buf(),
        why: why.into(),
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CheckpointError + '_ {
    move |error| CheckpointError::Io {
        path: path.to_path_buf(),
        error,
    }
}

/// Every named tensor of a checkpoint: (name, which array, its tensor).
enum Source {
    Param,
    Running,
    State(usize),
}

fn layout(arch: &Arch, kind: OptimizerKind) -> Vec<(String, Source, Tensor)> {
    let mut out: Vec<(String, Source, Tensor)> = arch
        .tensors()
        .into_iter()
        .map(|t| (t.name.clone(), Source::Param, t))
        .collect();
    out.extend(
        arch.running_tensors()
            .into_iter()
            .map(|t| (t.name.clone(), Source::Running, t)),
    );
    for (k, state) in state_names(kind).iter().enumerate() {
        out.extend(
            arch.tensors()
                .into_iter()
                .map(|t| (format!("optimizer/{state}/{}", t.name), Source::State(k), t)),
        );
    }
    out
}

/// Where a run stands, as a checkpoint keeps it beside the parameters and
/// settings.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunState {
    /// The optimizer's state arrays, in the host arena's layout.
    pub optimizer_state: Vec<Vec<f64>>,
    /// Training steps done.
    pub iterations: u64,
    /// The iterations the run was started for (`--iters`, `--epochs`):
    /// where `--resume` alone continues to. None in files that predate it.
    pub planned_iterations: Option<u64>,
    /// The learning rate from each iteration on: (0, the first) and one
    /// entry per resume that changed it; the last is `config.lr`.
    pub lr_schedule: Vec<(u64, f32)>,
    /// Where the minibatch sampler stands (ChaCha8's word position).
    pub sampler_position: u128,
    /// Test accuracy when the checkpoint was written, if evaluated.
    pub test_accuracy: Option<f64>,
}

impl RunState {
    /// A network's state outside any run (one saved from Python): its
    /// `steps` training-form passes, no optimizer state, no sampler
    /// position, the rate `lr` from the start.
    pub fn outside_a_run(steps: u64, lr: f32) -> Self {
        RunState {
            iterations: steps,
            lr_schedule: vec![(0, lr)],
            ..RunState::default()
        }
    }
}

impl Checkpoint {
    /// The one way a checkpoint is made from a network: its parameters and
    /// settings, where its run stands, and whether its values are f64 (the
    /// CPU path's) or f32 (the GPU's).
    pub fn new(params: Params, config: RunConfig, state: RunState, f64_values: bool) -> Self {
        Checkpoint {
            params,
            config,
            state,
            f64_values,
        }
    }

    fn metadata(&self) -> HashMap<String, String> {
        let mut m: HashMap<String, String> = self.config.to_metadata().into_iter().collect();
        let mut put = |k: &str, v: String| {
            m.insert(k.to_string(), v);
        };
        put("format", FORMAT.into());
        put("gpu_net_version", env!("CARGO_PKG_VERSION").into());
        put(
            "sizes",
            serde_json::to_string(&self.params.arch.sizes).unwrap(),
        );
        put("iterations", self.state.iterations.to_string());
        if let Some(n) = self.state.planned_iterations {
            put("planned_iterations", n.to_string());
        }
        put("lr_schedule", schedule_text(&self.state.lr_schedule));
        put("sampler_position", self.state.sampler_position.to_string());
        if let Some(a) = self.state.test_accuracy {
            put("test_accuracy", a.to_string());
        }
        put("dtype", if self.f64_values { "F64" } else { "F32" }.into());
        m
    }

    /// The file's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let arch = &self.params.arch;
        let bytes_of = |v: &[f64]| -> Vec<u8> {
            if self.f64_values {
                v.iter().flat_map(|x| x.to_le_bytes()).collect()
            } else {
                v.iter().flat_map(|&x| (x as f32).to_le_bytes()).collect()
            }
        };
        let tensors: Vec<(String, Vec<usize>, Vec<u8>)> = layout(arch, self.config.optimizer.kind)
            .into_iter()
            .map(|(name, source, t)| {
                let values = match source {
                    Source::Param => &self.params.values[t.range()],
                    Source::Running => &self.params.running[t.range()],
                    Source::State(k) => &self.state.optimizer_state[k][t.range()],
                };
                (name, t.shape.clone(), bytes_of(values))
            })
            .collect();
        let dtype = if self.f64_values {
            Dtype::F64
        } else {
            Dtype::F32
        };
        let views = tensors.iter().map(|(name, shape, data)| {
            (
                name.as_str(),
                TensorView::new(dtype, shape.clone(), data).expect("shape matches data"),
            )
        });
        let bytes =
            safetensors::serialize(views, Some(self.metadata())).expect("a checkpoint serializes");
        sorted_header(bytes)
    }

    /// Writes atomically ([`files::write`]): `path` is either the old
    /// file or the new one, never a part of either, whenever the process
    /// stops. Values [`Checkpoint::read`] would refuse (a NaN, an infinity,
    /// a weight whose square overflows f32, a negative variance) are
    /// refused here, naming the tensor, and nothing is written.
    pub fn write(&self, path: &Path) -> Result<(), CheckpointError> {
        self.check_readable(path)?;
        files::write(path, &self.to_bytes()).map_err(|e| CheckpointError::Io {
            path: e.path,
            error: e.error,
        })
    }

    /// What [`Checkpoint::read`] checks of the values, checked before writing.
    fn check_readable(&self, path: &Path) -> Result<(), CheckpointError> {
        for (name, source, t) in layout(&self.params.arch, self.config.optimizer.kind) {
            let values = match source {
                Source::Param => &self.params.values[t.range()],
                Source::Running => &self.params.running[t.range()],
                Source::State(k) => &self.state.optimizer_state[k][t.range()],
            };
            if let Some(i) = values.iter().position(|v| !v.is_finite()) {
                return Err(invalid(
                    path,
                    format!("tensor {name:?} element {i} is {}: not saved", values[i]),
                ));
            }
        }
        check_values(path, &self.params)
    }

    /// Reads and checks a checkpoint.
    pub fn read(path: &Path) -> Result<Checkpoint, CheckpointError> {
        files::check_regular(path).map_err(|e| io(path)(e.error))?;
        let mut f = std::fs::File::open(path).map_err(io(path))?;
        let len = f.metadata().map_err(io(path))?.len();
        let mut head = [0u8; 8];
        f.read_exact(&mut head).map_err(|_| {
            invalid(
                path,
                format!("{len} bytes is too short for a safetensors file"),
            )
        })?;
        let n = u64::from_le_bytes(head);
        if n.saturating_add(8) > len {
            return Err(invalid(
                path,
                format!(
                    "not a safetensors checkpoint (made by `gpu-net train --save`): its first 8 bytes give a header of {n} bytes, and the file has {len}"
                ),
            ));
        }
        if n > MAX_HEADER {
            return Err(invalid(
                path,
                format!("the header is {n} bytes, over the limit of {MAX_HEADER}"),
            ));
        }
        let mut header = vec![0u8; n as usize];
        f.read_exact(&mut header).map_err(io(path))?;
        let meta = header_metadata(path, &header)?;
        let (arch, kind) = arch_of(path, &meta)?;
        check_tensor_names(path, &header, &arch, kind)?;
        // The whole file's size follows from the metadata: check it before
        // reading, so a lying header never makes us allocate.
        let elem = if meta.get("dtype").map(String::as_str) == Some("F64") {
            8
        } else {
            4
        };
        let elements: u64 = layout(&arch, kind)
            .iter()
            .map(|(_, _, t)| t.len() as u64)
            .sum();
        let want = 8 + n + elements * elem;
        if len != want {
            return Err(invalid(
                path,
                format!("the file is {len} bytes; its network and optimizer need {want}"),
            ));
        }
        let mut bytes = head.to_vec();
        bytes.extend(&header);
        f.read_to_end(&mut bytes).map_err(io(path))?;
        Self::from_bytes(path, &bytes)
    }

    /// Parses the bytes of a checkpoint file (`path` names it in errors).
    pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<Checkpoint, CheckpointError> {
        let st = SafeTensors::deserialize(bytes)
            .map_err(|e| invalid(path, format!("not a valid safetensors file: {e}")))?;
        let (_, header) = SafeTensors::read_metadata(bytes)
            .map_err(|e| invalid(path, format!("not a valid safetensors file: {e}")))?;
        let meta = header
            .metadata()
            .clone()
            .ok_or_else(|| invalid(path, "no __metadata__: not a gpu-net checkpoint"))?;
        let (arch, kind) = arch_of(path, &meta)?;
        let get = |k: &str| -> Result<&str, CheckpointError> {
            meta.get(k)
                .map(String::as_str)
                .ok_or_else(|| invalid(path, format!("__metadata__ has no {k:?}")))
        };
        fn num<T: std::str::FromStr>(path: &Path, k: &str, v: &str) -> Result<T, CheckpointError> {
            v.parse()
                .map_err(|_| invalid(path, format!("__metadata__ {k:?} is {v:?}, not a number")))
        }
        let finite = |k: &str| -> Result<f64, CheckpointError> {
            let v: f64 = num(path, k, get(k)?)?;
            if v.is_finite() {
                Ok(v)
            } else {
                Err(invalid(path, format!("__metadata__ {k:?} is not finite")))
            }
        };
        let f64_values = match get("dtype")? {
            "F32" => false,
            "F64" => true,
            other => {
                return Err(invalid(
                    path,
                    format!("dtype {other:?}: expected F32 or F64"),
                ));
            }
        };
        let (params, state) = read_arrays(path, &st, &arch, kind, f64_values)?;
        check_values(path, &params)?;
        let config = RunConfig::from_metadata(|k| meta.get(k).map(String::as_str), arch.hidden())
            .map_err(|e| invalid(path, format!("__metadata__ {e}")))?;
        for (field, given) in [
            ("train_size", config.train_size.is_some()),
            ("data", config.data.is_some()),
        ] {
            if !given {
                return Err(invalid(path, format!("__metadata__ {field} is not given")));
            }
        }
        let test_accuracy = match meta.get("test_accuracy") {
            Some(_) => Some(finite("test_accuracy")?),
            None => None,
        };
        let iterations: u64 = num(path, "iterations", get("iterations")?)?;
        let planned_iterations = match meta.get("planned_iterations") {
            Some(v) => Some(num(path, "planned_iterations", v)?),
            None => None,
        };
        let lr_schedule = match meta.get("lr_schedule") {
            Some(text) => parse_schedule(path, text, config.lr)?,
            None => vec![(0, config.lr)],
        };
        let state = RunState {
            optimizer_state: state,
            iterations,
            planned_iterations,
            lr_schedule,
            sampler_position: num(path, "sampler_position", get("sampler_position")?)?,
            test_accuracy,
        };
        Ok(Checkpoint::new(params, config, state, f64_values))
    }
}

/// Every tensor of the network and the rule's state, of the file's dtype and
/// the network's shape, checked before anything is allocated: the
/// metadata's sizes are believed only once the file is seen to hold them.
fn read_arrays(
    path: &Path,
    st: &SafeTensors,
    arch: &Arch,
    kind: OptimizerKind,
    f64_values: bool,
) -> Result<(Params, Vec<Vec<f64>>), CheckpointError> {
    let dtype = if f64_values { Dtype::F64 } else { Dtype::F32 };
    let expected = layout(arch, kind);
    let names: std::collections::HashSet<&str> =
        expected.iter().map(|(n, _, _)| n.as_str()).collect();
    if let Some(extra) = st.names().into_iter().find(|n| !names.contains(n)) {
        return Err(invalid(
            path,
            format!(
                "tensor {extra:?} does not belong to a {} network trained with {kind}",
                arch.shape()
            ),
        ));
    }
    let views = expected
        .iter()
        .map(|(name, source, t)| {
            Ok((
                name,
                source,
                t,
                checked_view(path, st, name, &t.shape, dtype)?,
            ))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut params = Params::zeros(arch);
    let mut state = vec![vec![0.0; arch.arena_len()]; kind.state_arrays()];
    for (name, source, t, view) in views {
        let values = values_of(&view, f64_values);
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(invalid(
                path,
                format!("tensor {name:?} element {i} is {}", values[i]),
            ));
        }
        let dest = match source {
            Source::Param => &mut params.values[t.range()],
            Source::Running => &mut params.running[t.range()],
            Source::State(k) => &mut state[*k][t.range()],
        };
        dest.copy_from_slice(&values);
    }
    Ok((params, state))
}

/// Tensor `name` of the file, present, of `dtype` and of `shape`, before
/// anything is allocated: the metadata's sizes are believed only once the
/// file is seen to hold them (a small file claiming a huge network would
/// otherwise allocate it).
fn checked_view<'a>(
    path: &Path,
    st: &'a SafeTensors,
    name: &str,
    shape: &[usize],
    dtype: Dtype,
) -> Result<safetensors::tensor::TensorView<'a>, CheckpointError> {
    let view = st
        .tensor(name)
        .map_err(|_| invalid(path, format!("tensor {name:?} is missing")))?;
    if view.dtype() != dtype {
        let why = format!(
            "tensor {name:?} is {:?}, the file says {dtype:?}",
            view.dtype()
        );
        return Err(invalid(path, why));
    }
    if view.shape() != shape {
        let why = format!(
            "tensor {name:?} has shape {:?}; the network needs {shape:?}",
            view.shape()
        );
        return Err(invalid(path, why));
    }
    Ok(view)
}

/// A tensor's values as f64, from little-endian f64 or f32.
fn values_of(view: &safetensors::tensor::TensorView<'_>, f64_values: bool) -> Vec<f64> {
    if f64_values {
        view.data()
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
            .collect()
    } else {
        view.data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()) as f64)
            .collect()
    }
}

/// The file with its header's keys in sorted order, `__metadata__`'s too,
/// so that one checkpoint is always the same bytes (safetensors writes the
/// metadata in a hash map's order, another each run). The data offsets are
/// relative to the data, so only the header and its length change.
fn sorted_header(bytes: Vec<u8>) -> Vec<u8> {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&bytes[8..8 + n]).expect("safetensors wrote JSON");
    let mut keys: Vec<&String> = header.keys().collect();
    keys.sort();
    let entry = |k: &String| {
        let value = match &header[k] {
            serde_json::Value::Object(inner) => {
                let mut fields: Vec<(&String, &serde_json::Value)> = inner.iter().collect();
                fields.sort_by_key(|(name, _)| *name);
                let fields: Vec<String> = fields
                    .iter()
                    .map(|(name, v)| format!("{}:{v}", serde_json::Value::from(name.as_str())))
                    .collect();
                format!("{{{}}}", fields.join(","))
            }
            other => other.to_string(),
        };
        format!("{}:{value}", serde_json::Value::from(k.as_str()))
    };
    let entries: Vec<String> = keys.into_iter().map(entry).collect();
    let mut text = format!("{{{}}}", entries.join(",")).into_bytes();
    // safetensors pads its header with spaces to a multiple of 8.
    text.resize(text.len().next_multiple_of(8), b' ');
    let mut out = Vec::with_capacity(8 + text.len() + bytes.len() - 8 - n);
    out.extend((text.len() as u64).to_le_bytes());
    out.extend(text);
    out.extend(&bytes[8 + n..]);
    out
}

/// Refuses a header missing a tensor the network and optimizer have, or
/// holding one they do not, naming the first such tensor.
fn check_tensor_names(
    path: &Path,
    header: &[u8],
    arch: &Arch,
    kind: OptimizerKind,
) -> Result<(), CheckpointError> {
    let entries: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(header)
        .map_err(|e| invalid(path, format!("the header is not JSON: {e}")))?;
    let expected: Vec<String> = layout(arch, kind)
        .into_iter()
        .map(|(name, ..)| name)
        .collect();
    let missing: Vec<&String> = expected
        .iter()
        .filter(|n| !entries.contains_key(*n))
        .collect();
    let extra: Vec<&String> = (entries.keys())
        .filter(|k| *k != "__metadata__" && !expected.contains(k))
        .collect();
    let mut why = Vec::new();
    if let Some(name) = missing.first() {
        why.push(format!("tensor {name:?} is missing"));
    }
    if let Some(name) = extra.first() {
        why.push(format!(
            "tensor {name:?} is not one of its network's and optimizer's ({})",
            expected.join(", ")
        ));
    }
    match why.is_empty() {
        true => Ok(()),
        false => Err(invalid(path, why.join("; "))),
    }
}

/// `__metadata__` of a header, read on its own (before the file is).
fn header_metadata(path: &Path, header: &[u8]) -> Result<HashMap<String, String>, CheckpointError> {
    let v: serde_json::Value = serde_json::from_slice(header)
        .map_err(|e| invalid(path, format!("the header is not JSON: {e}")))?;
    let meta = v
        .get("__metadata__")
        .ok_or_else(|| invalid(path, "no __metadata__: not a gpu-net checkpoint"))?;
    serde_json::from_value(meta.clone())
        .map_err(|_| invalid(path, "__metadata__ is not a map of strings"))
}

/// The network and the rule a checkpoint's metadata describes.
fn arch_of(
    path: &Path,
    meta: &HashMap<String, String>,
) -> Result<(Arch, OptimizerKind), CheckpointError> {
    match meta.get("format") {
        Some(f) if f == FORMAT => {}
        Some(f) => {
            return Err(invalid(
                path,
                format!("format {f:?}; this gpu-net reads {FORMAT:?}"),
            ));
        }
        None => {
            return Err(invalid(
                path,
                "no \"format\" in __metadata__: not a gpu-net checkpoint",
            ));
        }
    }
    let get = |k: &str| {
        meta.get(k)
            .ok_or_else(|| invalid(path, format!("__metadata__ has no {k:?}")))
    };
    let kind = OptimizerKind::parse(get("optimizer")?)
        .map_err(|e| invalid(path, format!("optimizer: {e}")))?;
    if let Some(text) = meta.get("network") {
        return Ok((list_arch(path, text, get("sizes")?)?, kind));
    }
    let sizes: Vec<usize> = serde_json::from_str(get("sizes")?).map_err(|_| {
        invalid(
            path,
            format!("sizes {:?} is not a list of sizes", get("sizes").unwrap()),
        )
    })?;
    let batchnorm: bool = get("batchnorm")?
        .parse()
        .map_err(|_| invalid(path, "batchnorm is not true or false"))?;
    let dropout: f32 = get("dropout")?
        .parse()
        .map_err(|_| invalid(path, "dropout is not a number"))?;
    let conv: Option<ConvFront> = match meta.get("conv") {
        None => None, // an MLP's, written before networks had a front
        Some(text) => serde_json::from_str(text)
            .map_err(|e| invalid(path, format!("conv {text:?} is not a convolution: {e}")))?,
    };
    let first = sizes.first().copied();
    let arch = Arch::new(sizes)
        .and_then(|a| a.with_batchnorm(batchnorm).with_dropout(dropout))
        .and_then(|a| match conv {
            Some(front) => a.with_conv(front),
            None => Ok(a),
        })
        .map_err(|e| {
            invalid(
                path,
                format!("the network it describes is invalid: {}", e.reason()),
            )
        })?;
    if arch.conv.is_some() && first != Some(arch.sizes[0]) {
        return Err(invalid(
            path,
            format!(
                "sizes starts at {} but its convolution pools {} values an image",
                first.unwrap_or(0),
                arch.sizes[0]
            ),
        ));
    }
    Ok((arch, kind))
}

/// The list network of `text` (a `network` in `__metadata__`), whose
/// `sizes` must be the ones it gives.
fn list_arch(path: &Path, text: &str, sizes: &str) -> Result<Arch, CheckpointError> {
    let invalid_list = |why: String| invalid(path, format!("network {text:?}: {why}"));
    // Its text names its input; the default is never read.
    let network = Network::parse(text, Values::Flat(1)).map_err(|e| invalid_list(e.to_string()))?;
    let arch = Arch::from_network(network).map_err(|e| invalid_list(e.to_string()))?;
    if serde_json::to_string(&arch.sizes).ok().as_deref() != Some(sizes) {
        let why = format!(
            "sizes {sizes} are not its input and Affine sizes {:?}",
            arch.sizes
        );
        return Err(invalid_list(why));
    }
    Ok(arch)
}

/// Values no training produces, which would evaluate to NaN or nonsense: a
/// negative running variance (0 is the book's initial value), or a value
/// too large for the GPU's f32 arithmetic.
fn check_values(path: &Path, params: &Params) -> Result<(), CheckpointError> {
    for t in params.arch.running_tensors() {
        if !t.name.starts_with("running_var") {
            continue;
        }
        if let Some((i, v)) = params.running[t.range()]
            .iter()
            .enumerate()
            .find(|(_, v)| **v < 0.0)
        {
            return Err(invalid(
                path,
                format!("{}[{i}] is {v}: a variance is never negative", t.name),
            ));
        }
    }
    // Past √(f32::MAX) a value's square overflows f32: weight decay's ½·W²
    // and the forward pass's products on the GPU become inf.
    let most = (f32::MAX as f64).sqrt();
    for t in params.arch.tensors() {
        if let Some((i, v)) = params
            .tensor(&t)
            .iter()
            .enumerate()
            .find(|(_, v)| v.abs() > most)
        {
            return Err(invalid(
                path,
                format!(
                    "{}[{i}] is {v:.2e}, past {most:.1e} (whose square overflows f32): not a trained network",
                    t.name
                ),
            ));
        }
    }
    Ok(())
}

/// Whether `path` can be written as [`Checkpoint::write`] will write it
/// ([`files::check_writable`]), checked before training starts.
pub fn check_writable(path: &Path) -> Result<(), CheckpointError> {
    files::check_writable(path).map_err(|why| invalid(path, why))
}

/// `0:0.1,1200:0.05`: each iteration from which a learning rate applies.
fn schedule_text(schedule: &[(u64, f32)]) -> String {
    let entries: Vec<String> = schedule.iter().map(|(i, lr)| format!("{i}:{lr}")).collect();
    entries.join(",")
}

/// [`schedule_text`] read back: iterations rising from 0, rates positive
/// and finite, the last `lr` (the run's current rate).
fn parse_schedule(path: &Path, text: &str, lr: f32) -> Result<Vec<(u64, f32)>, CheckpointError> {
    let bad = || {
        invalid(
            path,
            format!(
                "__metadata__ \"lr_schedule\" is {text:?}: expected ITER:LR,... from 0:, rising, ending at lr {lr}"
            ),
        )
    };
    let mut out: Vec<(u64, f32)> = vec![];
    for entry in text.split(',') {
        let (i, r) = entry.split_once(':').ok_or_else(bad)?;
        let (i, r): (u64, f32) = (i.parse().map_err(|_| bad())?, r.parse().map_err(|_| bad())?);
        let rising = out.last().map_or(i == 0, |&(prev, _)| i > prev);
        let usable = r.is_finite() && r > 0.0;
        if !(rising && usable) {
            return Err(bad());
        }
        out.push((i, r));
    }
    if out.last().map(|&(_, r)| r) != Some(lr) {
        return Err(bad());
    }
    Ok(out)
}
