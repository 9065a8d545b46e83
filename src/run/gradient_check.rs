//! `gpu-net verify`: for one batch and one set of weights, the numerical
//! gradient (CPU, f64), backprop on the CPU (f64) and backprop on the GPU
//! (f32), compared per parameter tensor, pair by pair, against tolerances
//! derived from the precision of each side.

use std::sync::Arc;

use rand::SeedableRng;
use rand::seq::index::sample;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::core::compare::{Diff, EPS_F32, Tolerance, diff_each, diff_where};
use crate::core::data::Dataset;
use crate::core::error::{Error, Result};
use crate::core::model::{Arch, Init, Params, Tensor};
use crate::core::optim::StepRule;
use crate::cpu::numerical::{H, NumericalGradient, numerical_gradient};
use crate::cpu::{CpuNetwork, Labels};
use crate::gpu::GpuContext;
use crate::gpu::budget::{Plan, largest_scratch};
use crate::gpu::list_trainer::list_gradient;
use crate::gpu::net::GpuNet;
use crate::gpu::ops::{DeviceDataset, read_stats};
use crate::gpu::trainer::StepWorkspace;
use crate::run::device::list_stages;

/// Safety factor on the f32 error estimate `√K·ε32`.
const F32_FACTOR: f64 = 16.0;
/// Floor for the relative errors reported (not for pass/fail).
const REL_FLOOR: f64 = 1e-8;

#[derive(Clone, Debug)]
pub struct VerifyConfig {
    /// The first `batch` training images.
    pub batch: usize,
    pub seed: u64,
    /// Check this many random elements per tensor instead of all.
    pub sample: Option<usize>,
    /// `sample` was chosen by [`automatic_coverage`], not asked for.
    pub sampled_automatically: bool,
    pub init: Init,
    /// λ of weight decay (in the loss and the gradient).
    pub weight_decay: f64,
    /// Every tolerance is multiplied by this, in (0, 1]: below 1 asks for
    /// more agreement than each side's precision promises (to see the
    /// margin, or to watch the check fail); never looser than derived.
    pub tolerance_scale: f64,
}

impl Default for VerifyConfig {
    /// The CLI's defaults: three images, seed 0, every element.
    fn default() -> Self {
        VerifyConfig {
            batch: 3,
            seed: 0,
            sample: None,
            sampled_automatically: false,
            init: Init::default(),
            weight_decay: 0.0,
            tolerance_scale: 1.0,
        }
    }
}

/// Multiply-adds the numerical gradient may take when `--sample` is not
/// given: 2.5·10^10, about 3 s on this project's 2 cores. The book's network
/// is checked whole at its default batch of 3; past the budget verify
/// samples, so a wide network or a large batch takes seconds, not hours.
pub const CHECK_BUDGET: f64 = 2.5e10;

/// Multiply-adds of the numerical gradient of `elements` parameters: four
/// forward passes each (at ±h and ±2h) of `batch` rows through the products.
pub fn numerical_cost(arch: &Arch, batch: usize, elements: usize) -> f64 {
    4.0 * arch.forward_mults(batch) * elements as f64
}

/// How much of each tensor verify checks when `--sample` is not given.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Coverage {
    /// Every element: within [`CHECK_BUDGET`].
    All,
    /// The most elements per tensor that fit the budget; `full_cost` is what
    /// all of them would take.
    Sample { per_tensor: usize, full_cost: f64 },
    /// Even one element per tensor takes `least_cost`, over the budget.
    TooLarge { least_cost: f64 },
}

/// All of every tensor when that fits [`CHECK_BUDGET`], else the largest
/// number of elements per tensor that does.
pub fn automatic_coverage(arch: &Arch, batch: usize) -> Coverage {
    let lens: Vec<usize> = arch.tensors().iter().map(|t| t.len()).collect();
    let cost = |k: usize| {
        let elements = lens.iter().map(|&n| n.min(k)).sum();
        numerical_cost(arch, batch, elements)
    };
    let largest = *lens.iter().max().unwrap();
    if cost(largest) <= CHECK_BUDGET {
        return Coverage::All;
    }
    if cost(1) > CHECK_BUDGET {
        return Coverage::TooLarge {
            least_cost: cost(1),
        };
    }
    // The cost grows with k: the largest k within the budget.
    let (mut fits, mut over) = (1, largest);
    while over - fits > 1 {
        let mid = (fits + over) / 2;
        if cost(mid) <= CHECK_BUDGET {
            fits = mid;
        } else {
            over = mid;
        }
    }
    Coverage::Sample {
        per_tensor: fits,
        full_cost: cost(largest),
    }
}

/// Verify compares the gradient of training step 1 (Dropout's mask is drawn
/// for it on both paths).
const STEP: u32 = 1;

/// The tolerances, with how each was derived.
#[derive(Clone, Debug, Serialize)]
pub struct Tolerances {
    /// numerical vs CPU backprop, both f64: the central difference's own
    /// error, `4·ε64·|L|/h` (rounding of L) here, plus per element its
    /// truncation error estimated as `|D(2h) - D(h)|` (see `cpu::numerical`).
    pub numerical_cpu: Tolerance,
    /// GPU (f32) vs CPU (f64): rtol = 16·√K·ε32, K the longest reduction of
    /// the forward and backward pass; atol = rtol·max|grad| over the tensors
    /// of the tensor's layer.
    pub f32_rtol: f64,
    pub longest_reduction: usize,
    pub derivation: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct PairReport {
    /// "numerical-cpu", "numerical-gpu" or "cpu-gpu".
    pub pair: &'static str,
    pub tolerance: Tolerance,
    pub mean_abs: f64,
    pub max_abs: f64,
    pub max_rel: f64,
    pub failures: usize,
    /// The element nearest to (or furthest past) its tolerance:
    /// index within the tensor, first value, second value.
    pub worst: Option<(usize, f64, f64)>,
}

#[derive(Clone, Debug, Serialize)]
pub struct TensorReport {
    pub name: String,
    pub shape: Vec<usize>,
    /// Elements compared (all, or the sample).
    pub checked: usize,
    /// Elements whose numerical gradient crossed a Relu kink (left out of
    /// the numerical comparisons; see `cpu::numerical`).
    pub kinked: usize,
    /// Every compared value of all three gradients is exactly 0: agreement
    /// here shows nothing.
    pub all_zero: bool,
    pub pairs: Vec<PairReport>,
}

#[derive(Clone, Debug, Serialize)]
pub struct VerifyReport {
    pub device: String,
    pub sizes: Vec<usize>,
    /// The network as `train` names it (`Arch::shape`: a SimpleConvNet's
    /// front, then its Affine sizes).
    pub network: String,
    /// The layers, as `Arch::describe` lists them.
    pub layers: String,
    pub init: String,
    pub weight_decay: f64,
    pub batch: usize,
    pub seed: u64,
    pub h: f64,
    pub sampled_per_tensor: Option<usize>,
    /// The sample was chosen because checking everything is over the budget.
    pub sampled_automatically: bool,
    /// Multiply-adds of the whole numerical gradient (every element).
    pub full_check_cost: f64,
    /// `--tolerance-scale`: every tolerance below was multiplied by it.
    pub tolerance_scale: f64,
    pub loss_cpu: f64,
    pub loss_gpu: f64,
    pub tolerances: Tolerances,
    pub tensors: Vec<TensorReport>,
    pub ok: bool,
}

impl VerifyReport {
    /// One line per failing pair: the tensor and its worst element.
    pub fn failures(&self) -> Vec<String> {
        let mut out = Vec::new();
        for t in &self.tensors {
            for p in t.pairs.iter().filter(|p| p.failures > 0) {
                let (i, a, b) = p.worst.unwrap();
                let (first, second) = p.pair.split_once('-').unwrap();
                out.push(format!(
                    "{} {}: {} of {} elements outside tolerance; worst {}{} {first} {a:.6e} {second} {b:.6e} (|diff| {:.3e} > {:.3e})",
                    t.name,
                    p.pair,
                    p.failures,
                    t.checked,
                    t.name,
                    index_text(&t.shape, i),
                    (a - b).abs(),
                    p.tolerance.atol + p.tolerance.rtol * b.abs()
                ));
            }
        }
        out
    }
}

fn index_text(shape: &[usize], i: usize) -> String {
    match shape {
        [_, cols] => format!("[{}, {}]", i / cols, i % cols),
        _ => format!("[{i}]"),
    }
}

/// Runs the comparison. `tamper` may alter the GPU gradient before it is
/// judged: the tests use it to show that a wrong gradient is caught.
pub fn verify(
    ctx: Arc<GpuContext>,
    arch: &Arch,
    train: &Dataset,
    cfg: &VerifyConfig,
    tamper: Option<&dyn Fn(&mut Params)>,
) -> Result<VerifyReport> {
    check_batch(arch, train, cfg.batch)?;
    let params = Params::init_with(arch, cfg.init, cfg.seed);
    let indices: Vec<usize> = (0..cfg.batch).collect();
    let x = train.batch_f64(&indices);
    let t = train.batch_labels(&indices);
    let rule = StepRule {
        weight_decay: cfg.weight_decay,
        seed: cfg.seed,
        ..Default::default()
    };
    let net = CpuNetwork::new(arch, &rule);
    let chosen = chosen_elements(arch, cfg);
    let batch = (&x[..], Labels::Index(&t));
    let (loss_cpu, cpu) = net.gradient(&params, batch, cfg.batch, STEP);
    let numerical = numerical_gradient(
        |p| net.loss_and_signature(p, batch, cfg.batch, STEP),
        &params,
        &chosen,
    );
    let (loss_gpu, mut gpu) = gpu_gradient(ctx.clone(), &params, train, &indices, &rule)?;
    if let Some(tamper) = tamper {
        tamper(&mut gpu);
    }
    let loss_full = net.loss_and_signature(&params, batch, cfg.batch, STEP).0;
    let tolerances = tolerances(arch, cfg, loss_full.abs().max(loss_cpu.abs()));
    let grads = Gradients {
        numerical: &numerical,
        cpu: &cpu,
        gpu: &gpu,
    };
    let reports: Vec<TensorReport> = chosen
        .iter()
        .map(|(tensor, idx)| judge(tensor, idx, &grads, &tolerances, cfg.tolerance_scale))
        .collect();
    let ok = passes(&reports);
    Ok(VerifyReport {
        device: format!("gpu: {}", ctx.describe()),
        sizes: arch.sizes.clone(),
        network: arch.shape(),
        layers: arch.describe(),
        init: cfg.init.to_string(),
        weight_decay: cfg.weight_decay,
        batch: cfg.batch,
        seed: cfg.seed,
        h: H,
        sampled_per_tensor: cfg.sample,
        sampled_automatically: cfg.sampled_automatically,
        full_check_cost: numerical_cost(arch, cfg.batch, arch.param_count()),
        tolerance_scale: cfg.tolerance_scale,
        loss_cpu,
        loss_gpu,
        tolerances,
        tensors: reports,
        ok,
    })
}

/// A batch the training set holds, and of two or more under Batch
/// Normalization.
fn check_batch(arch: &Arch, train: &Dataset, batch: usize) -> Result<()> {
    if batch > train.len() {
        return Err(Error::Usage(format!(
            "a batch of {batch} is more than the {} training images",
            train.len()
        )));
    }
    if arch.batchnorm && batch < 2 {
        return Err(Error::Usage(format!(
            "a batch of {batch} with Batch Normalization: one sample's variance is 0, so Batch Normalization outputs beta whatever the input and every gradient below it is 0; use a batch of 2 or more"
        )));
    }
    Ok(())
}

/// Which elements of each tensor to check: all, or `cfg.sample` drawn from
/// the seed's stream 2.
fn chosen_elements(arch: &Arch, cfg: &VerifyConfig) -> Vec<(Tensor, Vec<usize>)> {
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    rng.set_stream(2);
    arch.tensors()
        .into_iter()
        .map(|tensor| {
            let mut idx = match cfg.sample {
                Some(k) if k < tensor.len() => sample(&mut rng, tensor.len(), k).into_vec(),
                _ => (0..tensor.len()).collect(),
            };
            idx.sort_unstable();
            (tensor, idx)
        })
        .collect()
}

/// The tolerances each side's precision promises, with their derivation;
/// `loss` is the largest loss either f64 evaluation saw.
fn tolerances(arch: &Arch, cfg: &VerifyConfig, loss: f64) -> Tolerances {
    // Each product's K: a layer's inputs (forward), its outputs (its input
    // gradient), the rows of its weight gradient (a convolution's positions).
    let longest_reduction = arch
        .product_rows(cfg.batch)
        .iter()
        .map(|&(_, rows, s)| (s.inputs + 1).max(s.outputs + 1).max(rows))
        .chain([arch.outputs() + 1])
        .max()
        .unwrap();
    let f32_rtol = F32_FACTOR * (longest_reduction as f64).sqrt() * EPS_F32;
    let numerical_cpu = Tolerance {
        atol: 4.0 * f64::EPSILON * loss / H,
        rtol: 1e-6,
    };
    let mut derivation = vec![
        format!(
            "numerical-cpu (f64, f64): atol = 4·ε64·|L|/h = {:.2e} (rounding) + |D(2h) - D(h)| per element (truncation, 3x over), rtol = {:.0e}",
            numerical_cpu.atol, numerical_cpu.rtol
        ),
        format!(
            "cpu-gpu (f64, f32): rtol = 16·√K·ε32 = {f32_rtol:.2e} (K = {longest_reduction}, the longest reduction), atol = rtol·max|grad| of the layer's tensors"
        ),
        "numerical-gpu: atol and rtol of the two above, added".into(),
    ];
    if cfg.tolerance_scale != 1.0 {
        derivation.push(format!(
            "each multiplied by {:e} (--tolerance-scale): stricter than the precision of each side promises",
            cfg.tolerance_scale
        ));
    }
    Tolerances {
        numerical_cpu,
        f32_rtol,
        longest_reduction,
        derivation,
    }
}

/// The three gradients of one batch.
struct Gradients<'a> {
    numerical: &'a NumericalGradient,
    cpu: &'a Params,
    gpu: &'a Params,
}

/// Every pair of every tensor agrees, and not vacuously: agreement where
/// every gradient is 0 proves nothing, so a check of only such tensors
/// (Dropout dropping every unit, say) does not pass.
fn passes(reports: &[TensorReport]) -> bool {
    let vacuous = reports.iter().all(|t| t.all_zero);
    !vacuous
        && reports
            .iter()
            .all(|t| t.pairs.iter().all(|p| p.failures == 0))
}

/// One tensor's three pairs judged at the elements `idx`.
fn judge(
    tensor: &Tensor,
    idx: &[usize],
    grads: &Gradients,
    tol: &Tolerances,
    tolerance_scale: f64,
) -> TensorReport {
    let scaled = |t: Tolerance| Tolerance {
        atol: t.atol * tolerance_scale,
        rtol: t.rtol * tolerance_scale,
    };
    let kinked = grads.numerical.kinked_in(tensor);
    let pick = |p: &Params| -> Vec<f64> { idx.iter().map(|&i| p.tensor(tensor)[i]).collect() };
    let (n, c, g) = (
        pick(&grads.numerical.grads),
        pick(grads.cpu),
        pick(grads.gpu),
    );
    let smooth = |i: usize| kinked.binary_search(&idx[i]).is_err();
    let f32_derived = Tolerance {
        atol: tol.f32_rtol * layer_scale(grads.cpu, &tensor.name),
        rtol: tol.f32_rtol,
    };
    let f32_tol = scaled(f32_derived);
    let trunc = pick(&grads.numerical.truncation);
    let num = tol.numerical_cpu;
    let num_cpu_at = |i: usize| {
        scaled(Tolerance {
            atol: num.atol + trunc[i],
            rtol: num.rtol,
        })
    };
    let num_gpu_at = |i: usize| {
        scaled(Tolerance {
            atol: f32_derived.atol + num.atol + trunc[i],
            rtol: f32_derived.rtol + num.rtol,
        })
    };
    // Reported: the largest atol any compared element had.
    let widest = |at: &dyn Fn(usize) -> Tolerance| Tolerance {
        atol: (0..idx.len())
            .filter(|&i| smooth(i))
            .map(|i| at(i).atol)
            .fold(at(0).atol, f64::max),
        rtol: at(0).rtol,
    };
    let pair = |name, d: Diff, tol| PairReport {
        pair: name,
        tolerance: tol,
        mean_abs: d.mean_abs,
        max_abs: d.max_abs,
        max_rel: d.max_rel,
        failures: d.failures,
        worst: d.worst.map(|(i, a, b)| (idx[i], a, b)),
    };
    let numerical_cpu = diff_each(&n, &c, num_cpu_at, REL_FLOOR, smooth);
    let numerical_gpu = diff_each(&n, &g, num_gpu_at, REL_FLOOR, smooth);
    let cpu_gpu = diff_where(&c, &g, f32_tol, REL_FLOOR, |_| true);
    let all_zero = n.iter().chain(&c).chain(&g).all(|&v| v == 0.0);
    TensorReport {
        name: tensor.name.clone(),
        shape: tensor.shape.clone(),
        checked: idx.len(),
        kinked: kinked.len(),
        all_zero,
        pairs: vec![
            pair("numerical-cpu", numerical_cpu, widest(&num_cpu_at)),
            pair("numerical-gpu", numerical_gpu, widest(&num_gpu_at)),
            pair("cpu-gpu", cpu_gpu, f32_tol),
        ],
    }
}

/// f32 rounds a gradient relative to the terms its layer's backward sums,
/// not relative to the result: a bias's gradient under Batch Normalization
/// is exactly 0 in f64 and rounding noise in f32. So the absolute tolerance
/// scales with the largest gradient of the layer.
fn layer_scale(cpu: &Params, name: &str) -> f64 {
    cpu.arch
        .tensors()
        .iter()
        .filter(|t| layer_of(&t.name) == layer_of(name))
        .flat_map(|t| cpu.tensor(t).iter())
        .fold(0.0f64, |m, v| m.max(v.abs()))
}

/// The layer number at the end of a tensor's name (`W2`, `gamma2` → 2).
fn layer_of(name: &str) -> &str {
    name.trim_start_matches(|c: char| !c.is_ascii_digit())
}

/// The GPU's loss and gradient (of training step 1) for the training images
/// at `indices`, through the same gather, forward and backward dispatches as
/// training, with the gradient stored instead of applied.
pub fn gpu_gradient(
    ctx: Arc<GpuContext>,
    params: &Params,
    train: &Dataset,
    indices: &[usize],
    rule: &StepRule,
) -> Result<(f64, Params)> {
    // Only the images the batch uses go to the device.
    let used = train.first(indices.iter().max().map_or(0, |&i| i + 1));
    if params.arch.layers.is_some() {
        let batch = Dataset::from_parts(
            indices
                .iter()
                .flat_map(|&i| used.image(i).to_vec())
                .collect(),
            indices.iter().map(|&i| used.labels[i]).collect(),
            used.rows,
            used.cols,
        );
        let model = (params, list_stages(&params.arch)?);
        let (loss, values) = list_gradient(ctx, model, &batch, (rule, STEP as u64))?;
        let running = vec![0.0; params.running.len()];
        let arch = params.arch.clone();
        return Ok((
            loss,
            Params {
                arch,
                values,
                running,
            },
        ));
    }
    let arch = &params.arch;
    let mut plan = Plan::new(&ctx);
    plan.dataset("train", used.len(), used.pixels());
    plan.net(arch);
    plan.activations(arch, indices.len());
    plan.step(arch, indices.len(), 1, 0);
    let scratch = largest_scratch(&ctx, arch, &[(indices.len(), true)]);
    plan.matmul_scratch(&scratch);
    plan.check(&ctx)?;
    let data = DeviceDataset::upload(&ctx, "train", &used)?;
    let net = GpuNet::new(ctx.clone(), params)?;
    net.kernels.matmul.reserve(&ctx, &scratch);
    let mut step = StepWorkspace::new(&net, &data, indices.len(), 1, rule, false, 0.0)?;
    let batch: Vec<u32> = indices.iter().map(|&i| i as u32).collect();
    let mut enc = ctx.device.create_command_encoder(&Default::default());
    step.encode(&ctx, &[batch], STEP as u64, 0.0, &mut enc);
    ctx.queue.submit([enc.finish()]);
    let stats = read_stats(&ctx, &step.stats)?;
    Ok((stats.mean_loss(), net.read_grads()?))
}

// Longer than a screen on purpose: one table written top to bottom, each
// column's header beside the code that fills it.
/// The table `gpu-net verify` prints.
pub fn render(r: &VerifyReport) -> String {
    let mut s = String::new();
    s += &format!(
        "network {}, batch {} (training images 0..{}), seed {}, h = {:e}\n",
        r.network, r.batch, r.batch, r.seed, r.h
    );
    if r.layers.contains("BatchNorm")
        || r.layers.contains("Dropout")
        || r.layers.contains("Conv")
        || r.init != "0.01"
        || r.weight_decay != 0.0
    {
        s += &format!(
            "layers: {}; init {}; weight decay {}\n",
            r.layers, r.init, r.weight_decay
        );
    }
    s += &format!("device: {}\n", r.device);
    match r.sampled_per_tensor {
        Some(k) if r.sampled_automatically => {
            s += &format!(
                "checking {k} random elements per tensor, not all: the whole numerical gradient would take {:.1e} multiply-adds, over verify's budget of {CHECK_BUDGET:.1e} (--sample K chooses)\n",
                r.full_check_cost
            )
        }
        Some(k) => s += &format!("checking {k} random elements per tensor (--sample), not all\n"),
        None => {}
    }
    s += &format!(
        "loss: cpu {:.9}  gpu {:.9}  |diff| {:.2e}\n",
        r.loss_cpu,
        r.loss_gpu,
        (r.loss_cpu - r.loss_gpu).abs()
    );
    s += "tolerances, per element |a - b| <= atol + rtol·|b|:\n";
    for line in &r.tolerances.derivation {
        s += &format!("  {line}\n");
    }
    // The book's ch05/gradient_check.py: each tensor's mean |difference|
    // between the numerical and the backprop gradient.
    s += "\nmean |numerical - GPU backprop| per tensor (the book's gradient_check.py):\n";
    for t in &r.tensors {
        if let Some(p) = t.pairs.iter().find(|p| p.pair == "numerical-gpu") {
            s += &format!("{}:{:.2e}\n", t.name, p.mean_abs);
        }
    }
    s += &render_table(r);
    let zero: Vec<&str> = r
        .tensors
        .iter()
        .filter(|t| t.all_zero)
        .map(|t| t.name.as_str())
        .collect();
    if zero.len() == r.tensors.len() {
        s += "\nNOT OK: every compared gradient of every tensor is exactly 0, so agreement shows nothing (does Dropout drop every unit?)\n";
    } else if !r.ok {
        s += "\nNOT OK\n";
    } else if zero.is_empty() {
        s += "\nOK: every tensor agrees on every pair\n";
    } else {
        s += &format!(
            "\nOK: every tensor agrees on every pair, but every compared gradient of {} is exactly 0: their agreement shows nothing\n",
            zero.join(", ")
        );
    }
    for line in r.failures() {
        s += &format!("FAIL {line}\n");
    }
    s
}

/// One row per tensor and pair: the differences, the tolerance, the result.
fn render_table(r: &VerifyReport) -> String {
    let mut s = String::new();
    s += &format!(
        "\n{:<6} {:>9} {:>7} {:>6}  {:<13} {:>9} {:>9} {:>9} {:>9}  {}\n",
        "tensor",
        "shape",
        "checked",
        "kinked",
        "pair",
        "mean|d|",
        "max|d|",
        "max rel",
        "atol",
        "result"
    );
    for t in &r.tensors {
        let shape: Vec<String> = t.shape.iter().map(|v| v.to_string()).collect();
        for (k, p) in t.pairs.iter().enumerate() {
            let (name, shape, checked, kinked) = if k == 0 {
                (
                    t.name.clone(),
                    shape.join("x"),
                    t.checked.to_string(),
                    t.kinked.to_string(),
                )
            } else {
                Default::default()
            };
            s += &format!(
                "{:<6} {:>9} {:>7} {:>6}  {:<13} {:>9.2e} {:>9.2e} {:>9.2e} {:>9.2e}  {}\n",
                name,
                shape,
                checked,
                kinked,
                p.pair,
                p.mean_abs,
                p.max_abs,
                p.max_rel,
                p.tolerance.atol,
                if p.failures == 0 {
                    "OK".to_string()
                } else {
                    format!("NOT OK ({})", p.failures)
                }
            );
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tensor(all_zero: bool, failures: usize) -> TensorReport {
        let pair = PairReport {
            pair: "cpu-gpu",
            tolerance: Tolerance {
                atol: 1e-6,
                rtol: 1e-4,
            },
            mean_abs: 0.0,
            max_abs: 0.0,
            max_rel: 0.0,
            failures,
            worst: None,
        };
        TensorReport {
            name: "W1".into(),
            shape: vec![3, 2],
            checked: 6,
            kinked: 0,
            all_zero,
            pairs: vec![pair],
        }
    }

    #[test]
    fn a_check_passes_only_when_something_agrees_and_nothing_disagrees() {
        assert!(passes(&[tensor(false, 0), tensor(true, 0)]));
        assert!(
            !passes(&[tensor(true, 0), tensor(true, 0)]),
            "every gradient 0: vacuous"
        );
        assert!(!passes(&[tensor(false, 0), tensor(false, 1)]));
        assert!(!passes(&[tensor(false, 1)]));
    }
}
