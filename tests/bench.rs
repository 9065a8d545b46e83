//! The bench machinery (not speed): every field present and consistent.

mod common;

use gpu_net::core::model::Arch;
use gpu_net::gpu::layout::{GpuLayout, forward_shape};
use gpu_net::gpu::plan::plan_head;
use gpu_net::run::bench::{self, BenchConfig, MatmulBench, MatmulForm};

#[test]
fn flop_count_follows_the_products_a_step_runs() {
    // Worked by hand, not by the formula. 784-50-10 at batch 100: forward
    // [X,1]·[W1;b1] 2·100·785·50 = 7 850 000 and [Z,1]·[W2;b2] 2·100·51·10 =
    // 102 000; the gradient products the same again; dY·W2ᵀ 2·100·10·50 =
    // 100 000 (layer 1 needs no dX).
    let book = Arch::mlp(784, &[50], 10).unwrap();
    assert_eq!(book.train_step_flops(100), 16_004_000.0);
    // 784-64-32-10 at batch 37: forward 2·37·(785·64 + 65·32 + 33·10) =
    // 3 896 100, gradients the same, dX of layers 2 and 3 2·37·(32·64 +
    // 10·32) = 175 232.
    let deep = Arch::mlp(784, &[64, 32], 10).unwrap();
    assert_eq!(deep.train_step_flops(37), 7_967_432.0);
}

#[test]
fn short_run_reports_every_field_consistently() {
    let Some(ctx) = common::gpu() else { return };
    let cfg = BenchConfig {
        batches: vec![100, 37],
        hidden: vec![vec![50], vec![17, 9]],
        seconds: 0.2,
        repeats: 3,
        cpu: true,
        gpu: true,
        steps_per_submit: 4,
        matmul: vec![
            MatmulBench {
                m: 64,
                n: 33,
                k: 17,
                form: MatmulForm::Ab,
            },
            MatmulBench {
                m: 33,
                n: 17,
                k: 100,
                form: MatmulForm::Atb,
            },
        ],
        split_k: Some(3),
        ..Default::default()
    };
    let report = bench::run(
        &gpu_net::run::device::Device::Gpu(ctx.clone()),
        common::mnist(),
        &cfg,
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(
        report.results.len(),
        8,
        "2 batches × 2 networks × (gpu, cpu)"
    );
    for r in &report.results {
        let arch = Arch::mlp(784, &r.hidden, 10).unwrap();
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs();
        assert!(
            r.min <= r.steps_per_sec && r.steps_per_sec <= r.max,
            "{r:?}"
        );
        assert!(
            close(r.samples_per_sec, r.steps_per_sec * r.batch as f64),
            "{r:?}"
        );
        assert!(close(r.ms_per_step, 1e3 / r.steps_per_sec), "{r:?}");
        assert!(
            close(
                r.gflops,
                arch.train_step_flops(r.batch) * r.steps_per_sec / 1e9
            ),
            "{r:?}"
        );
        assert!(r.first_step_seconds > 0.0);
        if r.path == "gpu" {
            assert!(
                r.memory_bytes >= (60000 * 784) as u64,
                "the dataset alone is 47 MB: {r:?}"
            );
        }
    }
    if ctx.timestamps {
        // Per configuration: gather, one forward per layer, the loss, and
        // per layer a gradient product plus dX for all but the first; on a
        // GPU that fuses the last forward into the loss (the head), one fewer.
        let per_step = |hidden: &[usize], batch: usize| {
            let arch = Arch::mlp(784, hidden, 10).unwrap();
            let layout = GpuLayout::new(&arch);
            let last = forward_shape(layout.layers.last().unwrap(), batch);
            let layers = layout.layers.len();
            let head = plan_head(&ctx.profile, batch, &last).is_some();
            1 + layers + 1 + layers + (layers - 1) - head as usize
        };
        let expected: usize = (cfg.hidden.iter())
            .flat_map(|h| cfg.batches.iter().map(|&b| per_step(h, b)))
            .sum();
        assert_eq!(report.kernels.len(), expected);
        for group in report
            .kernels
            .chunk_by(|a, b| (a.batch, &a.hidden) == (b.batch, &b.hidden))
        {
            let total: f64 = group.iter().map(|k| k.share).sum();
            assert!((total - 1.0).abs() < 1e-9 && group.iter().all(|k| k.ms_per_step >= 0.0));
        }
    } else {
        assert!(report.kernels_note.is_some());
    }
    assert_eq!(
        report.matmul.len(),
        12,
        "six kernels (two tiles reading vec4s or floats, two vec4 forms), two products"
    );
    let algos: Vec<&str> = report.matmul.iter().map(|m| m.algo.as_str()).collect();
    for algo in [
        "Tiled64",
        "Tiled64Floats",
        "Tiled128",
        "Tiled128Floats",
        "Vec4",
        "Vec4Buffers",
    ] {
        assert_eq!(algos.iter().filter(|&&a| a == algo).count(), 2, "{algos:?}");
    }
    for m in &report.matmul {
        let flops = 2.0 * (m.m * m.n * m.k) as f64;
        assert!((m.gflops - flops / (m.ms / 1e3) / 1e9).abs() < 1e-6 * m.gflops);
        // K = 17 (padded to 20) has room for two 16-long slices, K = 100 for three.
        assert_eq!(m.split_k, if m.k == 17 { 2 } else { 3 }, "{m:?}");
        if m.algo.starts_with("Tiled") && m.form == MatmulForm::Ab {
            // One 64×64 or 128×128 tile per slice, then the reduction: 64
            // rows of one 64-wide workgroup.
            assert_eq!(m.workgroups, 2 + 64, "{m:?}");
        }
        assert!(m.workgroups > 0);
    }
    for k in &report.kernels {
        assert!(k.workgroups > 0 && k.split_k >= 1, "{k:?}");
    }
    let json = serde_json::to_value(&report).unwrap();
    for key in ["adapter", "results", "kernels", "matmul"] {
        assert!(json.get(key).is_some(), "{key}");
    }
    for key in [
        "path",
        "batch",
        "hidden",
        "steps_per_sec",
        "samples_per_sec",
        "ms_per_step",
        "gflops",
        "min",
        "max",
    ] {
        assert!(json["results"][0].get(key).is_some(), "{key}");
    }
    let text = bench::render(&report);
    assert!(text.contains("steps/s"));
    // One workgroup is "1 group" (the softmax of a small batch has one).
    assert!(report.kernels.iter().any(|k| k.workgroups == 1));
    assert!(
        text.contains(" 1 group ") && !text.contains(" 1 groups"),
        "{text}"
    );
}
