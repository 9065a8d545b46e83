//! `gpu-net bench`: throughput of whole training steps (gather, forward,
//! loss, backward, update) over batch and hidden sizes, on the GPU and the CPU
//! reference; the share of GPU time per kernel from timestamp queries; and
//! the matmul kernel alone.
//!
//! Each configuration: a first step timed on its own (setup, pipeline
//! creation and first dispatch), a warm-up, then `repeats` runs of about
//! `seconds` each, every run ending with the GPU drained. Reported: the
//! median run, with the slowest and fastest.

use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use crate::core::config::RunConfig;
use crate::core::conv::ConvFront;
use crate::core::data::Mnist;
use crate::core::error::Result;
use crate::core::model::{Arch, ArchError, Params};
use crate::core::optim::StepRule;
use crate::cpu::CpuTrainer;
use crate::cpu::memory as cpu_memory;
use crate::gpu::GpuContext;
use crate::gpu::kernels::{
    Dispatch, Epilogue, Matmul, MatmulAlgo, MatmulCall, MatmulShape, MatmulVariant, Slice, SplitK,
    Tile,
};
use crate::gpu::ops::StepNet;
use crate::gpu::plan::{gathers_ahead, implicit_columns};
use crate::gpu::trainer::GpuTrainer;
use crate::run::device::{Device, list_stages};
use crate::run::epoch_loop::{Sampler, Trainer};

#[derive(Clone, Debug)]
pub struct BenchConfig {
    pub batches: Vec<usize>,
    pub hidden: Vec<Vec<usize>>,
    /// The book's SimpleConvNet: this front before the Affine layers.
    pub conv: Option<ConvFront>,
    pub seconds: f64,
    pub repeats: usize,
    pub cpu: bool,
    pub gpu: bool,
    /// Most GPU steps per submission (fewer for slow steps, so a run has
    /// several submissions).
    pub steps_per_submit: usize,
    /// Time the matmul kernel alone on these products.
    pub matmul: Vec<MatmulBench>,
    /// The split of K for `matmul`: this many slices, or the planner's
    /// (None, by default).
    pub split_k: Option<u32>,
    /// The update rule and weight decay of the timed steps.
    pub rule: StepRule,
    pub batchnorm: bool,
    pub dropout: f32,
    /// A network given as a list of layers (its text, `Network::text`);
    /// `hidden` then holds one empty entry.
    pub network: Option<String>,
}

impl BenchConfig {
    /// The timed network with `hidden` for data of `inputs` pixels.
    pub fn arch(&self, inputs: usize, hidden: &[usize]) -> std::result::Result<Arch, ArchError> {
        let run = RunConfig {
            hidden: hidden.to_vec(),
            conv: self.conv,
            batchnorm: self.batchnorm,
            dropout: self.dropout,
            network: self.network.clone(),
            ..RunConfig::default()
        };
        run.arch(inputs)
    }
}

impl Default for BenchConfig {
    fn default() -> Self {
        BenchConfig {
            batches: vec![100, 1000, 8192],
            hidden: vec![vec![50], vec![1024]],
            conv: None,
            seconds: 3.0,
            repeats: 3,
            cpu: false,
            gpu: true,
            steps_per_submit: 16,
            matmul: vec![],
            split_k: None,
            rule: StepRule::default(),
            batchnorm: false,
            dropout: 0.0,
            network: None,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct AdapterReport {
    pub name: String,
    pub backend: String,
    pub driver: String,
    pub device_type: String,
    /// The planner's compute units and where they came from.
    pub compute_units: u32,
    pub compute_units_from: String,
    /// The 128×128 tile's speed over the 64×64 one the planner used.
    pub t128_speedup: f64,
    /// Whether the planner may fuse the last Affine (and its input
    /// gradient) into the softmax (`GPU_NET_FUSED_HEAD`); it does so on
    /// GPUs only.
    pub fused_head: bool,
    /// Whether convolutions read im2col's matrix in place
    /// (`plan::implicit_columns`: the tiled product, and not
    /// `GPU_NET_IMPLICIT_CONV=0`).
    pub implicit_conv: bool,
    /// Whether a submission's batches are gathered at once where they fit
    /// (`plan::gather_regions`: a GPU, and not `GPU_NET_GATHER_AHEAD=0`).
    pub gather_ahead: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct StepResult {
    pub path: &'static str,
    pub batch: usize,
    pub hidden: Vec<usize>,
    /// Median over the repeats.
    pub steps_per_sec: f64,
    pub samples_per_sec: f64,
    pub ms_per_step: f64,
    pub gflops: f64,
    /// Slowest and fastest repeat, steps/s.
    pub min: f64,
    pub max: f64,
    /// From the start of setup to the end of the first step.
    pub first_step_seconds: f64,
    pub steps_per_submit: usize,
    /// Device memory this configuration allocated (dataset included); 0 on the CPU.
    pub memory_bytes: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct KernelShare {
    pub batch: usize,
    pub hidden: Vec<usize>,
    pub name: String,
    /// A step's share: a dispatch that serves several steps (one gather
    /// of a submission's batches) counts its time over their number.
    pub ms_per_step: f64,
    pub share: f64,
    /// Workgroups per step of this kernel (with a split product's reduction).
    pub workgroups: u64,
    /// Slices of K computed in parallel (1: not split).
    pub split_k: u32,
}

/// Which operand of a timed product is stored transposed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MatmulForm {
    /// `A·B`: the forward product `X·W`.
    Ab,
    /// `Aᵀ·B`, A stored (K, M): the weight gradient `Xᵀ·dY`.
    Atb,
    /// `A·Bᵀ`, B stored (N, K): the input gradient `dY·Wᵀ`.
    Abt,
}

/// One product `bench --matmul` times: C(M, N) over K in the given form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MatmulBench {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub form: MatmulForm,
}

#[derive(Clone, Debug, Serialize)]
pub struct MatmulResult {
    /// "Tiled64", "Tiled128", "Vec4" or "Vec4Buffers" (see
    /// `gpu::kernels::matmul`); "Tiled64Floats" and "Tiled128Floats" are the
    /// tiled kernel reading a float at a time.
    pub algo: String,
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub form: MatmulForm,
    pub gflops: f64,
    pub ms: f64,
    /// Workgroups of the product pass (and of the reduction when split).
    pub workgroups: u64,
    /// Slices of K computed in parallel (1: not split).
    pub split_k: u32,
}

#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    pub adapter: Option<AdapterReport>,
    /// The update rule and layers timed (e.g. `sgd`, `Affine1 Relu1 ...`).
    pub optimizer: String,
    pub weight_decay: f64,
    pub batchnorm: bool,
    pub dropout: f32,
    pub results: Vec<StepResult>,
    pub kernels: Vec<KernelShare>,
    /// Why `kernels` is empty, when it is.
    pub kernels_note: Option<String>,
    pub matmul: Vec<MatmulResult>,
}

pub fn adapter_report(ctx: &GpuContext) -> AdapterReport {
    let i = &ctx.info;
    AdapterReport {
        name: i.name.clone(),
        backend: format!("{:?}", i.backend),
        driver: format!("{} {}", i.driver, i.driver_info).trim().to_string(),
        device_type: format!("{:?}", i.device_type),
        compute_units: ctx.profile.compute_units,
        compute_units_from: format!("{:?}", ctx.profile.units_from),
        t128_speedup: ctx.profile.t128_speedup,
        fused_head: ctx.profile.fused_head,
        implicit_conv: implicit_columns(&ctx.profile, ctx.matmul_algo),
        gather_ahead: gathers_ahead(&ctx.profile),
    }
}

/// Fewest steps the kernel profile takes its medians over.
const PROFILED_STEPS: usize = 3;

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Minibatches drawn once, cycled through by the timed runs.
fn batch_pool(train_size: usize, batch: usize) -> Vec<Vec<u32>> {
    let mut sampler = Sampler::new(0, train_size);
    (0..32).map(|_| sampler.batch(batch)).collect()
}

/// Times `repeats` runs of about `seconds`; `run(n)` does n steps and
/// returns once they are complete. Returns steps/s per run.
fn timed_runs(
    cfg: &BenchConfig,
    chunk: usize,
    run: &mut dyn FnMut(usize) -> Result<()>,
) -> Result<Vec<f64>> {
    let mut rates = Vec::with_capacity(cfg.repeats);
    for _ in 0..cfg.repeats {
        let start = Instant::now();
        let mut steps = 0;
        while steps == 0 || start.elapsed().as_secs_f64() < cfg.seconds {
            run(chunk)?;
            steps += chunk;
        }
        rates.push(steps as f64 / start.elapsed().as_secs_f64());
    }
    Ok(rates)
}

fn result(
    path: &'static str,
    arch: &Arch,
    batch: usize,
    mut rates: Vec<f64>,
    first: f64,
    per_submit: usize,
    memory: u64,
) -> StepResult {
    let steps_per_sec = median(&mut rates);
    StepResult {
        path,
        batch,
        hidden: arch.hidden().to_vec(),
        steps_per_sec,
        samples_per_sec: steps_per_sec * batch as f64,
        ms_per_step: 1e3 / steps_per_sec,
        gflops: arch.train_step_flops(batch) * steps_per_sec / 1e9,
        min: rates[0],
        max: *rates.last().unwrap(),
        first_step_seconds: first,
        steps_per_submit: per_submit,
        memory_bytes: memory,
    }
}

/// GPU training steps for one configuration, and its kernel profile.
pub fn bench_gpu(
    ctx: &Arc<GpuContext>,
    data: &Mnist,
    arch: &Arch,
    batch: usize,
    cfg: &BenchConfig,
) -> Result<(StepResult, Vec<KernelShare>)> {
    let pool = batch_pool(data.train.len(), batch);
    let mut next = 0;
    let mut take = |n: usize| -> Vec<Vec<u32>> {
        (0..n)
            .map(|_| {
                next = (next + 1) % pool.len();
                pool[next].clone()
            })
            .collect()
    };
    let memory_before = ctx.allocated();
    let start = Instant::now();
    let params = Params::init(arch, 0);
    let (slots, rule) = (cfg.steps_per_submit, &cfg.rule);
    if arch.layers.is_some() {
        let model = (&params, list_stages(arch)?);
        let trainer = GpuTrainer::for_list(ctx.clone(), model, data, (batch, slots), 0.1, rule)?;
        return time_gpu(
            ctx,
            trainer,
            (arch, batch, cfg),
            &mut take,
            (start, memory_before),
        );
    }
    let trainer = GpuTrainer::new(ctx.clone(), &params, data, batch, slots, 0.1, rule)?;
    time_gpu(
        ctx,
        trainer,
        (arch, batch, cfg),
        &mut take,
        (start, memory_before),
    )
}

/// Times `trainer` from its first step (`start`: when its making began,
/// with `memory_before` allocated), then profiles its kernels.
fn time_gpu<N: StepNet>(
    ctx: &Arc<GpuContext>,
    mut trainer: GpuTrainer<N>,
    (arch, batch, cfg): (&Arch, usize, &BenchConfig),
    take: &mut dyn FnMut(usize) -> Vec<Vec<u32>>,
    (start, memory_before): (Instant, u64),
) -> Result<(StepResult, Vec<KernelShare>)> {
    trainer.submit_steps(&take(1), 0.1)?;
    trainer.finish()?;
    let first = start.elapsed().as_secs_f64();
    let memory = ctx.allocated() - memory_before;

    // Warm-up, which also sizes the submissions: a run should hold several.
    let warm = Instant::now();
    trainer.submit_steps(&take(2), 0.1)?;
    trainer.finish()?;
    let step_seconds = warm.elapsed().as_secs_f64() / 2.0;
    let per_submit = ((cfg.seconds / 4.0 / step_seconds) as usize).clamp(1, cfg.steps_per_submit);
    let rates = timed_runs(cfg, per_submit, &mut |n| {
        trainer.submit_steps(&take(n), 0.1)?;
        Ok(trainer.finish()?)
    })?;
    let kernels = profile(ctx, &mut trainer, arch, batch, step_seconds)?;
    Ok((
        result("gpu", arch, batch, rates, first, per_submit, memory),
        kernels,
    ))
}

/// GPU time per dispatch of a step from timestamp queries: each dispatch in
/// its own compute pass with begin and end timestamps, the median over
/// [`PROFILED_STEPS`] steps or as many more as fit in half a second (one
/// step's time is at the mercy of whatever else the machine runs).
fn profile<N: StepNet>(
    ctx: &GpuContext,
    trainer: &mut GpuTrainer<N>,
    arch: &Arch,
    batch: usize,
    step_seconds: f64,
) -> Result<Vec<KernelShare>> {
    if !ctx.timestamps {
        return Ok(vec![]);
    }
    let (dispatches, step_shares): (Vec<_>, Vec<_>) = trainer.step().step_dispatch_shares().unzip();
    let steps = ((0.5 / step_seconds) as usize).clamp(PROFILED_STEPS, 9);
    let count = (dispatches.len() * 2 * steps) as u32;
    let queries = ctx.device.create_query_set(&wgpu::QuerySetDescriptor {
        label: Some("kernel timestamps"),
        ty: wgpu::QueryType::Timestamp,
        count,
    });
    let resolve = ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("timestamp resolve"),
        size: count as u64 * 8,
        usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    });
    let mut enc = ctx.device.create_command_encoder(&Default::default());
    for s in 0..steps {
        for (i, d) in dispatches.iter().enumerate() {
            let q = ((s * dispatches.len() + i) * 2) as u32;
            // Staging copies sit outside the timed pass (they are in steps/s).
            d.record_copies(&mut enc);
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some(&d.label),
                timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                    query_set: &queries,
                    beginning_of_pass_write_index: Some(q),
                    end_of_pass_write_index: Some(q + 1),
                }),
            });
            d.record(&mut pass);
        }
    }
    enc.resolve_query_set(&queries, 0..count, &resolve, 0);
    ctx.queue.submit([enc.finish()]);
    let raw = ctx.read_bytes(&resolve, 0, count as u64 * 8, "timestamps")?;
    let ticks: Vec<u64> = bytemuck::pod_collect_to_vec(&raw);
    let ns_per_tick = ctx.queue.get_timestamp_period() as f64;
    let ms: Vec<f64> = (0..dispatches.len())
        .map(|i| {
            let mut per_step: Vec<f64> = (0..steps)
                .map(|s| {
                    let q = (s * dispatches.len() + i) * 2;
                    ticks[q + 1].saturating_sub(ticks[q]) as f64 * ns_per_tick / 1e6
                })
                .collect();
            median(&mut per_step) * step_shares[i]
        })
        .collect();
    let total: f64 = ms.iter().sum();
    Ok(dispatches
        .iter()
        .zip(ms)
        .map(|(d, ms)| KernelShare {
            batch,
            hidden: arch.hidden().to_vec(),
            name: d.label.clone(),
            ms_per_step: ms,
            share: if total > 0.0 { ms / total } else { 0.0 },
            workgroups: d.workgroups(),
            split_k: d.split_k(),
        })
        .collect())
}

/// The CPU reference's training steps for one configuration.
pub fn bench_cpu(data: &Mnist, arch: &Arch, batch: usize, cfg: &BenchConfig) -> Result<StepResult> {
    let pool = batch_pool(data.train.len(), batch);
    let start = Instant::now();
    let mut trainer = CpuTrainer::new(arch, Params::init(arch, 0), data, &cfg.rule);
    trainer.train_steps(&pool[..1], 0.1)?;
    let first = start.elapsed().as_secs_f64();
    let mut next = 0;
    let rates = timed_runs(cfg, 1, &mut |n| {
        for _ in 0..n {
            next = (next + 1) % pool.len();
            trainer.train_steps(std::slice::from_ref(&pool[next]), 0.1)?;
        }
        Ok(())
    })?;
    Ok(result("cpu", arch, batch, rates, first, 1, 0))
}

/// The matmul kernel alone, `C(M, N) = op(A)·op(B)` over K in `p.form`,
/// repeated in one submission (for the vec4 kernel's texture operands, a
/// pass per repeat after its copies, which the times include). K and N (and M when A is transposed) are padded to
/// multiples of 4 with zeros, as the network stores its matrices; GFLOP/s
/// count the real 2·M·N·K.
pub fn bench_matmul(
    ctx: &GpuContext,
    (algo, tile, float_reads): MatmulKernel,
    p: MatmulBench,
    split: SplitK,
    seconds: f64,
) -> Result<MatmulResult> {
    let MatmulBench { m, n, k, form } = p;
    let mut mm = Matmul::with_algo(ctx, algo);
    if let Some(tile) = tile {
        mm = mm.with_tile(tile);
    }
    if float_reads {
        mm = mm.with_float_reads();
    }
    let (a_dims, b_dims, (mp, np)) = padded_operands(&p);
    let what = format!("--matmul {m},{n},{k}");
    for (name, (rows, _, cols)) in [("A", a_dims), ("B", b_dims), ("C", (mp, n, np))] {
        let bytes = (rows as u64).saturating_mul(cols as u64).saturating_mul(4);
        ctx.check_binding(&format!("{what}: {name}"), bytes)?;
    }
    let kp = k.next_multiple_of(4);
    let a = ctx.storage_init("bench a", &bench_values(a_dims));
    let b = ctx.storage_init("bench b", &bench_values(b_dims));
    let c = ctx.storage("bench c", (mp * np * 4) as u64);
    let v = MatmulVariant {
        trans_a: form == MatmulForm::Atb,
        trans_b: form == MatmulForm::Abt,
        epilogue: Epilogue::Store,
    };
    let shape = MatmulShape {
        n_real: n,
        ..MatmulShape::plain(mp, np, kp, a_dims.2, b_dims.2, np)
    };
    let call = MatmulCall {
        label: "bench matmul".into(),
        v,
        shape,
        a: Slice::whole(&a),
        b: Slice::whole(&b),
        c: Slice::new(&c, 0, mp * np),
        aux: None,
        columns: None,
    };
    let d = mm.bind_split(ctx, call, split)?;
    let seconds = time_dispatch(ctx, &d, seconds)?;
    Ok(MatmulResult {
        algo: format!(
            "{algo:?}{}{}",
            tile.map_or(String::new(), |t| t.edge().to_string()),
            if float_reads { "Floats" } else { "" }
        ),
        m,
        n,
        k,
        form,
        gflops: 2.0 * (m * n * k) as f64 / seconds / 1e9,
        ms: seconds * 1e3,
        workgroups: d.workgroups(),
        split_k: d.split_k(),
    })
}

/// (rows, real columns, stored columns) of A and of B as a `--matmul`
/// product stores them, K and N (and M when A is transposed) padded to
/// multiples of 4, as the network stores its matrices; and C's padded M, N.
fn padded_operands(p: &MatmulBench) -> (Dims3, Dims3, (usize, usize)) {
    let MatmulBench { m, n, k, form } = *p;
    let (kp, np) = (k.next_multiple_of(4), n.next_multiple_of(4));
    let mp = if form == MatmulForm::Atb {
        m.next_multiple_of(4)
    } else {
        m
    };
    let (a, b) = match form {
        MatmulForm::Ab => ((m, k, kp), (kp, n, np)),
        MatmulForm::Atb => ((kp, m, mp), (kp, n, np)),
        MatmulForm::Abt => ((m, k, kp), (np, k, kp)),
    };
    (a, b, (mp, np))
}

/// (rows, real columns, stored columns) of a stored matrix.
type Dims3 = (usize, usize, usize);

/// A matrix of small varied values in its real columns, zeros in its padding.
fn bench_values((rows, real, stride): Dims3) -> Vec<f32> {
    (0..rows * stride)
        .map(|i| {
            if i % stride < real {
                ((i * 7919) % 1000) as f32 / 1000.0 - 0.5
            } else {
                0.0
            }
        })
        .collect()
}

/// Seconds per run of `d`: after a warm-up, the median of three timings of
/// as many runs in one submission as fill about `seconds` (1 to 1000).
fn time_dispatch(ctx: &GpuContext, d: &Dispatch, seconds: f64) -> Result<f64> {
    ctx.run(&[d])?; // warm-up
    let once = Instant::now();
    ctx.run(&[d])?;
    let per = once.elapsed().as_secs_f64();
    let reps = ((seconds / per) as usize).clamp(1, 1000);
    let mut rates = Vec::new();
    for _ in 0..3 {
        let start = Instant::now();
        ctx.run(&vec![d; reps])?;
        rates.push(start.elapsed().as_secs_f64() / reps as f64);
    }
    Ok(median(&mut rates))
}

/// `slices` of K, or the planner's split.
fn split_of(slices: Option<u32>) -> SplitK {
    slices.map_or(SplitK::Auto, SplitK::Slices)
}

/// One matmul kernel `--matmul` times: the implementation, the tiled
/// kernel's tile, and whether it reads a float at a time where it would
/// read vec4s.
pub type MatmulKernel = (MatmulAlgo, Option<Tile>, bool);

/// The matmul kernels `--matmul` times: the tiled one with each tile, with
/// its vec4 reads and a float at a time, and the vec4 one with each kind
/// of operand.
const MATMUL_KERNELS: [MatmulKernel; 6] = [
    (MatmulAlgo::Tiled, Some(Tile::T64), false),
    (MatmulAlgo::Tiled, Some(Tile::T64), true),
    (MatmulAlgo::Tiled, Some(Tile::T128), false),
    (MatmulAlgo::Tiled, Some(Tile::T128), true),
    (MatmulAlgo::Vec4, None, false),
    (MatmulAlgo::Vec4Buffers, None, false),
];

/// Runs everything `cfg` asks for, calling `progress` with each result line.
/// What `cfg` asks that cannot run, before anything is timed: Batch
/// Normalization at batch 1, and (`--cpu`) a network whose CPU path would
/// pass the memory limit at some batch.
pub fn check(cfg: &BenchConfig, pixels: usize) -> Result<()> {
    for &b in &cfg.batches {
        crate::run::check_batchnorm_batch(cfg.batchnorm, b, "--batch")?;
        for hidden in cfg.hidden.iter().take(if cfg.cpu { usize::MAX } else { 0 }) {
            let arch = cfg.arch(pixels, hidden)?;
            cpu_memory::check(
                || format!("bench --cpu of {} at --batch {b}", arch.shape()),
                cpu_memory::training_bytes(&arch, b, cfg.rule.optimizer.kind.state_arrays()),
            )?;
        }
    }
    Ok(())
}

pub fn run(
    device: &Device,
    data: &Mnist,
    cfg: &BenchConfig,
    progress: &mut dyn FnMut(String),
) -> Result<BenchReport> {
    let ctx = match device {
        Device::Gpu(ctx) => Some(ctx.clone()),
        Device::Cpu => None,
    };
    let mut report = BenchReport {
        adapter: ctx.as_deref().map(adapter_report),
        optimizer: cfg.rule.optimizer.describe(),
        weight_decay: cfg.rule.weight_decay,
        batchnorm: cfg.batchnorm,
        dropout: cfg.dropout,
        results: vec![],
        kernels: vec![],
        kernels_note: None,
        matmul: vec![],
    };
    if let Some(ctx) = &ctx {
        if !ctx.timestamps {
            report.kernels_note =
                Some("this adapter has no timestamp queries: no per-kernel profile".into());
        }
        for &p in &cfg.matmul {
            for kernel in MATMUL_KERNELS {
                let r = bench_matmul(ctx, kernel, p, split_of(cfg.split_k), cfg.seconds / 3.0)?;
                progress(matmul_line(&r));
                report.matmul.push(r);
            }
        }
    }
    for hidden in &cfg.hidden {
        let arch = cfg.arch(data.train.pixels(), hidden)?;
        for &batch in &cfg.batches {
            if let (Some(ctx), true) = (&ctx, cfg.gpu) {
                let (r, kernels) = bench_gpu(ctx, data, &arch, batch, cfg)?;
                progress(line(&r));
                report.results.push(r);
                report.kernels.extend(kernels);
            }
            if cfg.cpu {
                let r = bench_cpu(data, &arch, batch, cfg)?;
                progress(line(&r));
                report.results.push(r);
            }
        }
    }
    Ok(report)
}

/// At least three significant digits: 0.645, 6.16, 80.4, 542.
fn sig(v: f64) -> String {
    match v.abs() {
        x if x >= 100.0 => format!("{v:.0}"),
        x if x >= 10.0 => format!("{v:.1}"),
        x if x >= 1.0 => format!("{v:.2}"),
        _ => format!("{v:.3}"),
    }
}

fn hidden_text(h: &[usize]) -> String {
    h.iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

fn line(r: &StepResult) -> String {
    format!(
        "{:<4} batch {:>5} hidden {:>6}: {:>9} steps/s ({}..{})",
        r.path,
        r.batch,
        hidden_text(&r.hidden),
        sig(r.steps_per_sec),
        sig(r.min),
        sig(r.max)
    )
}

// Longer than a screen on purpose: the report's tables in the order they
// print, each header beside the rows it heads.
/// The table `gpu-net bench` prints.
pub fn render(r: &BenchReport) -> String {
    let mut s = String::new();
    if let Some(a) = &r.adapter {
        s += &format!(
            "adapter: {} ({}, {}, {}); planned for {} compute units{}\n",
            a.name,
            a.backend,
            a.driver,
            a.device_type,
            a.compute_units,
            if a.compute_units_from == "Environment" {
                " (GPU_NET_COMPUTE_UNITS)"
            } else {
                ""
            }
        );
    }
    let mut extras = vec![];
    if r.batchnorm {
        extras.push("Batch Normalization".to_string());
    }
    if r.dropout > 0.0 {
        extras.push(format!("Dropout {}", r.dropout));
    }
    if r.weight_decay != 0.0 {
        extras.push(format!("weight decay {}", r.weight_decay));
    }
    s += &format!(
        "update: {}{}{}\n\n",
        r.optimizer,
        if extras.is_empty() { "" } else { "; " },
        extras.join(", ")
    );
    if !r.results.is_empty() {
        s += &format!(
            "{:<4} {:>6} {:>7} {:>10} {:>19} {:>11} {:>9} {:>9} {:>8} {:>8} {:>9}\n",
            "path",
            "batch",
            "hidden",
            "steps/s",
            "(min..max)",
            "samples/s",
            "ms/step",
            "GFLOP/s",
            "first s",
            "/submit",
            "memory"
        );
        for x in &r.results {
            s += &format!(
                "{:<4} {:>6} {:>7} {:>10} {:>19} {:>11.0} {:>9.3} {:>9.2} {:>8.2} {:>8} {:>9}\n",
                x.path,
                x.batch,
                hidden_text(&x.hidden),
                sig(x.steps_per_sec),
                format!("({}..{})", sig(x.min), sig(x.max)),
                x.samples_per_sec,
                x.ms_per_step,
                x.gflops,
                x.first_step_seconds,
                x.steps_per_submit,
                if x.memory_bytes > 0 {
                    format!("{:.1} MB", x.memory_bytes as f64 / 1e6)
                } else {
                    "-".into()
                }
            );
        }
    }
    s += &render_kernels(r);
    if let Some(note) = &r.kernels_note {
        s += &format!("\n{note}\n");
    }
    for m in &r.matmul {
        s += &matmul_line(m);
        s += "\n";
    }
    s
}

/// The kernel profile, grouped by configuration.
fn render_kernels(r: &BenchReport) -> String {
    let mut s = String::new();
    if !r.kernels.is_empty() {
        s += "\nGPU time per kernel (timestamp queries, one pass per dispatch, median of 3 or more steps):\n";
        let mut last = None;
        for k in &r.kernels {
            let key = (k.batch, k.hidden.clone());
            if last.as_ref() != Some(&key) {
                s += &format!("  batch {} hidden {}:\n", k.batch, hidden_text(&k.hidden));
                last = Some(key);
            }
            s += &format!(
                "    {:<44} {:>9.3} ms {:>6.1}% {:>8} {:<6}{}\n",
                k.name,
                k.ms_per_step,
                100.0 * k.share,
                k.workgroups,
                plural(k.workgroups, "group"),
                split_text(k.split_k)
            );
        }
    }
    s
}

/// `word`, with an s unless `n` is 1.
fn plural(n: u64, word: &str) -> String {
    if n == 1 {
        word.to_string()
    } else {
        format!("{word}s")
    }
}

fn split_text(split_k: u32) -> String {
    if split_k > 1 {
        format!(", K split in {split_k}")
    } else {
        String::new()
    }
}

fn matmul_line(r: &MatmulResult) -> String {
    let form = match r.form {
        MatmulForm::Ab => "A·B",
        MatmulForm::Atb => "Aᵀ·B",
        MatmulForm::Abt => "A·Bᵀ",
    };
    format!(
        "matmul {:<14} {form:<5} {}x{}x{}: {:.3} ms, {:.1} GFLOP/s, {} {}{}",
        r.algo,
        r.m,
        r.n,
        r.k,
        r.ms,
        r.gflops,
        r.workgroups,
        plural(r.workgroups, "workgroup"),
        split_text(r.split_k)
    )
}
