//! `gpu-net verify`: passes on correct gradients across networks, seeds and
//! batch sizes; fails, naming the tensor, on a corrupted GPU gradient.

mod common;

use gpu_net::model::{Arch, Init, Params};
use gpu_net::verify::{VerifyConfig, VerifyReport, render, verify};

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
    let cfg = VerifyConfig {
        batch,
        seed,
        sample,
        init,
        weight_decay,
    };
    Some(verify(ctx, arch, &common::mnist().train, &cfg, tamper).unwrap())
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

#[test]
fn dropout_and_weight_decay_pass_with_and_without_batch_normalization() {
    for (bn, dropout, decay, init) in [
        (false, 0.5, 0.0, Init::default()),
        (false, 0.0, 0.1, Init::Xavier),
        (false, 0.2, 0.01, Init::He),
        (true, 0.3, 0.05, Init::He),
    ] {
        let arch = chapter6(&[40, 20], bn, dropout);
        assert_ok(run_arch(&arch, 5, 7, Some(150), init, decay, None));
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
        seed: 0,
        sample: None,
        init: Init::default(),
        weight_decay: 0.0,
    };
    let e = verify(
        ctx,
        &chapter6(&[10], true, 0.0),
        &common::mnist().train,
        &cfg,
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("--batch 1 with --batchnorm"), "{e}");
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
