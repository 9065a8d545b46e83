//! `gpu-net verify`: passes on correct gradients across networks, seeds and
//! batch sizes; fails, naming the tensor, on a corrupted GPU gradient.

mod common;

use gpu_net::model::{Arch, Params};
use gpu_net::verify::{VerifyConfig, VerifyReport, render, verify};

fn run(
    hidden: &[usize],
    batch: usize,
    seed: u64,
    sample: Option<usize>,
    tamper: Option<&dyn Fn(&mut Params)>,
) -> Option<VerifyReport> {
    let ctx = common::gpu()?;
    let arch = Arch::mlp(784, hidden, 10).unwrap();
    let cfg = VerifyConfig {
        batch,
        seed,
        sample,
    };
    Some(verify(ctx, &arch, &common::mnist().train, &cfg, tamper).unwrap())
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
