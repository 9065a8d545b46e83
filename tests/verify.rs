//! `gpu-net verify`: passes on correct gradients across networks, seeds and
//! batch sizes; fails, naming the tensor, on a corrupted GPU gradient.

mod common;

use gpu_net::core::model::{Arch, Init, Params};
use gpu_net::gpu::GpuContext;
use gpu_net::run::gradient_check::{
    CHECK_BUDGET, Coverage, VerifyConfig, VerifyReport, automatic_coverage, numerical_cost, render,
    verify,
};
use std::sync::Arc;

fn run(
    hidden: &[usize],
    batch: usize,
    seed: u64,
    sample: Option<usize>,
    tamper: Option<&dyn Fn(&mut Params)>,
) -> Option<VerifyReport> {
    let arch = Arch::mlp(784, hidden, 10).unwrap();
    run_arch(&arch, batch, seed, sample, Init::default(), 0.0, tamper)
}

fn run_arch(
    arch: &Arch,
    batch: usize,
    seed: u64,
    sample: Option<usize>,
    init: Init,
    weight_decay: f64,
    tamper: Option<&dyn Fn(&mut Params)>,
) -> Option<VerifyReport> {
    let ctx = common::gpu()?;
    Some(verify_on(
        ctx,
        arch,
        (batch, seed, sample),
        (init, weight_decay),
        tamper,
    ))
}

fn verify_on(
    ctx: Arc<GpuContext>,
    arch: &Arch,
    (batch, seed, sample): (usize, u64, Option<usize>),
    (init, weight_decay): (Init, f64),
    tamper: Option<&dyn Fn(&mut Params)>,
) -> VerifyReport {
    let cfg = VerifyConfig {
        batch,
        seed,
        sample,
        init,
        weight_decay,
        ..Default::default()
    };
    verify(ctx, arch, &common::mnist().train, &cfg, tamper).unwrap()
}

fn chapter6(hidden: &[usize], batchnorm: bool, dropout: f32) -> Arch {
    Arch::mlp(784, hidden, 10)
        .unwrap()
        .with_batchnorm(batchnorm)
        .with_dropout(dropout)
        .unwrap()
}

#[test]
fn batch_normalization_passes_on_awkward_batches() {
    for (batch, seed) in [(2, 0), (3, 1), (17, 2)] {
        let arch = chapter6(&[33, 17], true, 0.0);
        let r = run_arch(&arch, batch, seed, Some(120), Init::default(), 0.0, None);
        if let Some(r) = &r {
            let names: Vec<&str> = r.tensors.iter().map(|t| t.name.as_str()).collect();
            assert_eq!(
                names,
                [
                    "W1", "b1", "gamma1", "beta1", "W2", "b2", "gamma2", "beta2", "W3", "b3"
                ]
            );
        }
        assert_ok(r);
    }
    // Whole tensors, He initialisation, a wider first layer.
    assert_ok(run_arch(
        &chapter6(&[50], true, 0.0),
        3,
        3,
        None,
        Init::He,
        0.0,
        None,
    ));
}

/// With this adapter's plans and a 132-unit GPU's (the tiled product,
/// split K), as `verify` runs on a discrete GPU.
#[test]
fn dropout_and_weight_decay_pass_with_and_without_batch_normalization() {
    for (_, ctx) in common::both_plans() {
        for (bn, dropout, decay, init) in [
            (false, 0.5, 0.0, Init::default()),
            (false, 0.0, 0.1, Init::Xavier),
            (false, 0.2, 0.01, Init::He),
            (true, 0.3, 0.05, Init::He),
        ] {
            let arch = chapter6(&[40, 20], bn, dropout);
            let r = verify_on(ctx.clone(), &arch, (5, 7, Some(150)), (init, decay), None);
            assert_ok(Some(r));
        }
    }
}

#[test]
fn corrupted_batchnorm_gradient_fails_naming_gamma() {
    let arch = chapter6(&[20], true, 0.0);
    let gamma = arch.tensors()[2].clone();
    assert_eq!(gamma.name, "gamma1");
    let tamper = move |g: &mut Params| {
        let scale = g.tensor(&gamma).iter().fold(0.0f64, |m, v| m.max(v.abs()));
        g.values[gamma.offset + 7] += 0.01 * scale;
    };
    let Some(r) = run_arch(&arch, 4, 0, None, Init::default(), 0.0, Some(&tamper)) else {
        return;
    };
    assert!(!r.ok);
    let failures = r.failures();
    assert_eq!(failures.len(), 2, "{failures:?}");
    assert!(
        failures.iter().all(|f| f.contains("gamma1[7]")),
        "{failures:?}"
    );
}

#[test]
fn batch_normalization_refuses_a_batch_of_one() {
    let Some(ctx) = common::gpu() else { return };
    let cfg = VerifyConfig {
        batch: 1,
        ..Default::default()
    };
    let e = verify(
        ctx,
        &chapter6(&[10], true, 0.0),
        &common::mnist().train,
        &cfg,
        None,
    )
    .unwrap_err();
    // A usage error, in the library's words (the CLI names the flags).
    assert!(e.is_usage(), "{e}");
    let e = e.to_string();
    assert!(e.contains("a batch of 1 with Batch Normalization"), "{e}");
}

fn assert_ok(r: Option<VerifyReport>) {
    if let Some(r) = r {
        assert!(r.ok, "{}", render(&r));
        // Kinked elements are left out of the numerical comparisons; most must
        // remain. (At batch 100 a deep layer's bias nudge shifts 100 rows, so
        // single small tensors can be mostly kinked.)
        let kinked: usize = r.tensors.iter().map(|t| t.kinked).sum();
        let checked: usize = r.tensors.iter().map(|t| t.checked).sum();
        assert!(kinked * 2 <= checked, "{}", render(&r));
    }
}

#[test]
fn default_network_passes_for_several_seeds_and_batches() {
    for seed in [0, 1, 2] {
        for batch in [1, 3] {
            assert_ok(run(&[50], batch, seed, None, None));
        }
    }
    assert_ok(run(&[50], 100, 3, Some(150), None));
}

#[test]
fn deeper_network_passes() {
    for (batch, seed) in [(1, 0), (3, 1)] {
        assert_ok(run(&[64, 32], batch, seed, Some(400), None));
    }
    assert_ok(run(&[64, 32], 3, 4, None, None));
    assert_ok(run(&[64, 32], 100, 2, Some(60), None));
}

#[test]
fn corrupted_gpu_gradient_fails_naming_the_tensor() {
    let arch = Arch::mlp(784, &[50], 10).unwrap();
    let w2 = arch.tensors()[2].clone();
    // One element of W2 off by 1% of the tensor's largest gradient.
    let tamper = move |g: &mut Params| {
        let scale = g.tensor(&w2).iter().fold(0.0f64, |m, v| m.max(v.abs()));
        g.values[w2.offset + 123] += 0.01 * scale;
    };
    let Some(r) = run(&[50], 3, 0, None, Some(&tamper)) else {
        return;
    };
    assert!(!r.ok);
    let failures = r.failures();
    assert_eq!(failures.len(), 2, "{failures:?}"); // numerical-gpu and cpu-gpu
    assert!(
        failures
            .iter()
            .all(|f| f.starts_with("W2 ") && f.contains("W2[12, 3]")),
        "{failures:?}"
    );
    assert!(render(&r).contains("FAIL W2 cpu-gpu"));
}

#[test]
fn json_output_parses_and_holds_every_tensor() {
    if common::gpu().is_none() {
        return;
    }
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_gpu-net"))
        .args(["verify", "--json", "--hidden", "20,12", "--batch", "2"])
        .env("XDG_RUNTIME_DIR", "/tmp")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let names: Vec<&str> = v["tensors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["W1", "b1", "W2", "b2", "W3", "b3"]);
    assert_eq!(v["ok"], true);
    for t in v["tensors"].as_array().unwrap() {
        assert_eq!(t["pairs"].as_array().unwrap().len(), 3);
    }
}

fn cli(args: &[&str]) -> std::process::Output {
    common::run_cli(args)
}

#[test]
fn verify_exits_1_when_a_pair_disagrees() {
    // The same small check, at the derived tolerances and at a millionth of
    // them (f32 cannot agree with f64 to that): the exit status and the
    // report follow the verdict.
    if common::gpu().is_none() {
        return;
    }
    let args = ["verify", "--hidden", "10", "--batch", "2"];
    let o = cli(&args);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(
        out.contains("OK: every tensor agrees") && !out.contains("FAIL"),
        "{out}"
    );
    // What it is computing, while it computes (784-10-10: 7,960 elements),
    // and the book's one line per tensor before the table.
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("numerical gradient: 7,960 elements"), "{err}");
    let summary = out.find("\nW1:").expect("the book's summary line for W1");
    assert!(summary < out.find("\ntensor").unwrap(), "{out}");
    for t in ["b1:", "W2:", "b2:"] {
        assert!(out.contains(&format!("\n{t}")), "{t} {out}");
    }
    let o = cli(&[&args[..], &["--tolerance-scale", "1e-6"]].concat());
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("NOT OK") && out.contains("FAIL W1 cpu-gpu"),
        "{out}"
    );
    assert!(
        out.contains("each multiplied by 1e-6 (--tolerance-scale)"),
        "{out}"
    );
    // --json: the object on stdout says so, the failures go to stderr.
    let o = cli(&[&args[..], &["--tolerance-scale", "1e-6", "--json"]].concat());
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (v["ok"].as_bool(), v["tolerance_scale"].as_f64()),
        (Some(false), Some(1e-6))
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("FAIL W1"));
    // Loosening is not on offer.
    for bad in ["2", "0", "-1", "nan"] {
        let o = cli(&["verify", "--tolerance-scale", bad]);
        assert_eq!(o.status.code(), Some(2), "--tolerance-scale {bad}");
    }
}

#[test]
fn coverage_checks_everything_within_the_budget_and_samples_past_it() {
    let arch = |h: &[usize]| Arch::mlp(784, h, 10).unwrap();
    // The book's check, whole.
    assert_eq!(automatic_coverage(&arch(&[50]), 3), Coverage::All);
    // 784-300-10 at batch 50 would take 1.1e13: the largest sample per
    // tensor that fits, one more does not.
    let wide = arch(&[300]);
    let Coverage::Sample {
        per_tensor,
        full_cost,
    } = automatic_coverage(&wide, 50)
    else {
        panic!("784-300-10 at batch 50 was not sampled");
    };
    let lens: Vec<usize> = wide.tensors().iter().map(|t| t.len()).collect();
    let cost = |k: usize| {
        let n = lens.iter().map(|&l| l.min(k)).sum();
        numerical_cost(&wide, 50, n)
    };
    assert!(cost(per_tensor) <= CHECK_BUDGET && cost(per_tensor + 1) > CHECK_BUDGET);
    assert_eq!(full_cost, cost(usize::MAX));
    assert!(full_cost > 1e13, "{full_cost}");
    // Not even one element per tensor fits.
    assert!(matches!(
        automatic_coverage(&arch(&[4000]), 2000),
        Coverage::TooLarge { least_cost } if least_cost > CHECK_BUDGET
    ));
    // The cost counts four forward passes per element: 784-50-10, batch 3.
    assert_eq!(
        numerical_cost(&arch(&[50]), 3, 1),
        4.0 * 3.0 * (785.0 * 50.0 + 51.0 * 10.0)
    );
}

#[test]
fn a_check_that_would_take_hours_samples_and_says_so() {
    // 784-300-10 at batch 50, every element: 1.1e13 multiply-adds, about 25
    // minutes here. Sampled, it takes seconds; a minute is a hang.
    if common::gpu().is_none() {
        return;
    }
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_gpu-net"))
        .args(["verify", "--hidden", "300", "--batch", "50"])
        .env("XDG_RUNTIME_DIR", "/tmp")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed().as_secs() > 60 {
            child.kill().unwrap();
            panic!("verify ran for more than a minute without --sample");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let o = child.wait_with_output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        out.contains("random elements per tensor, not all: the whole numerical gradient would take 1.1e13 multiply-adds"),
        "{out}"
    );
    // The rows say how many were checked: the sample, or all of a smaller tensor.
    assert!(
        out.contains("784x300")
            && out.contains("budget of 2.5e10")
            && out.contains("OK: every tensor agrees"),
        "{out}"
    );
    // A check that cannot be sampled small enough is refused, not started.
    let o = cli(&["verify", "--hidden", "4000", "--batch", "2000"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--batch 2000 --hidden 4000") && err.contains("--sample K"),
        "{err}"
    );
}

#[test]
fn a_check_of_gradients_that_are_all_zero_says_so() {
    if common::gpu().is_none() {
        return;
    }
    // Dropout dropping (nearly) every unit: W1, b1 and W2 get no gradient.
    let o = cli(&[
        "verify",
        "--dropout",
        "0.999999",
        "--hidden",
        "5",
        "--sample",
        "20",
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains(
            "every compared gradient of W1, b1, W2 is exactly 0: their agreement shows nothing"
        ),
        "{out}"
    );
    let json = cli(&[
        "verify",
        "--dropout",
        "0.999999",
        "--hidden",
        "5",
        "--sample",
        "20",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let zero: Vec<bool> = v["tensors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["all_zero"].as_bool().unwrap())
        .collect();
    assert_eq!(zero, [true, true, true, false]);
}
