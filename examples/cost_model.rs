//! What the cost model predicts for a step on a GPU, under the plans that
//! were measured and under the planner's, beside the measurement and
//! PyTorch's best on the same card: `cargo run --release --example
//! cost_model [-- --verbose] [-- --units N]`. Reads the H200 run in
//! `bench/h200-2026-12-04/`; `--verbose` adds every modelled dispatch.
//!
//! A step is the sum of its dispatches (the GPU was busy the whole step
//! there): products and the softmax are predicted, the rest (the gather,
//! the window kernels, Adam's update) carry their measured times.

use gpu_net::core::conv::ConvFront;
use gpu_net::core::model::Arch;
use gpu_net::gpu::DeviceProfile;
use gpu_net::gpu::cost::H200;
use gpu_net::gpu::forecast::{as_measured, planned_step};
use serde_json::Value;

const RUN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/bench/h200-2026-12-04");

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let verbose = args.iter().any(|a| a == "--verbose");
    let units = args
        .iter()
        .position(|a| a == "--units")
        .and_then(|i| args.get(i + 1))
        .map_or(132, |u| u.parse().expect("--units takes a whole number"));
    let profile = DeviceProfile::discrete(units);
    let torch = torch_best();
    println!("cost model on {units} compute units (H200 fit); steps/s");
    println!(
        "{:<24} {:>9} {:>9} {:>9} {:>9} {:>8}",
        "network, batch", "measured", "old plan", "new plan", "PyTorch", "new/PT"
    );
    for (file, conv) in [
        ("bench_mlp.json", false),
        ("bench_big.json", false),
        ("bench_conv.json", true),
    ] {
        let json: Value =
            serde_json::from_str(&std::fs::read_to_string(format!("{RUN}/{file}")).unwrap())
                .unwrap();
        for r in json["results"].as_array().unwrap() {
            let (batch, hidden) = config(r);
            let arch = if conv {
                Arch::simple_convnet(ConvFront::book(), &hidden, 10).unwrap()
            } else {
                Arch::mlp(784, &hidden, 10).unwrap()
            };
            let kernels: Vec<&Value> = json["kernels"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|k| config(k) == (batch, hidden.clone()))
                .collect();
            let (old, new) = step(&profile, &arch, batch, &kernels, verbose);
            let kind = if conv { "conv" } else { "mlp" };
            let best = torch
                .iter()
                .find(|t| t.0 == kind && t.1 == batch && t.2 == hidden[0])
                .map_or(f64::NAN, |t| t.3);
            let name = if conv {
                format!("SimpleConvNet, {batch}")
            } else {
                format!("MLP {batch} × {}", hidden[0])
            };
            let measured = r["steps_per_sec"].as_f64().unwrap();
            // PyTorch ran only the rows.
            let (best, ratio) = match best.is_nan() {
                true => ("—".to_string(), "—".to_string()),
                false => (format!("{best:.0}"), format!("{:.2}", 1.0 / new / best)),
            };
            println!(
                "{name:<24} {measured:>9.0} {:>9.0} {:>9.0} {best:>9} {ratio:>8}",
                1.0 / old,
                1.0 / new,
            );
        }
    }
}

/// (batch, hidden) of a result or kernel entry.
fn config(v: &Value) -> (usize, Vec<usize>) {
    let hidden = v["hidden"].as_array().unwrap();
    let hidden = hidden.iter().map(|h| h.as_u64().unwrap() as usize);
    (v["batch"].as_u64().unwrap() as usize, hidden.collect())
}

/// Predicted seconds per step under the measured plans and the planner's.
fn step(
    profile: &DeviceProfile,
    arch: &Arch,
    batch: usize,
    kernels: &[&Value],
    verbose: bool,
) -> (f64, f64) {
    let (mut old, mut unmodelled) = (0.0, 0.0);
    for k in kernels {
        let name = k["name"].as_str().unwrap();
        let measured = k["ms_per_step"].as_f64().unwrap() / 1e3;
        let split = k["split_k"].as_u64().unwrap() as u32;
        match as_measured(&H200, profile, arch, batch, name, split) {
            Some(f) => {
                old += f.seconds;
                if verbose {
                    println!(
                        "    old {name:<44} {:>4} groups  measured {:>8.1} µs  predicted {:>8.1} µs",
                        f.groups,
                        measured * 1e6,
                        f.seconds * 1e6
                    );
                }
            }
            None => unmodelled += measured,
        }
    }
    let planned = planned_step(&H200, profile, arch, batch);
    if verbose {
        for f in &planned {
            println!(
                "    new {:<44} {:>4} groups  split {:>3}  {:?}  predicted {:>8.1} µs",
                f.name,
                f.groups,
                f.split_k,
                f.tile,
                f.seconds * 1e6
            );
        }
        println!(
            "    unmodelled dispatches (as measured) {:.1} µs",
            unmodelled * 1e6
        );
    }
    let new: f64 = planned.iter().map(|f| f.seconds).sum();
    (old + unmodelled, new + unmodelled)
}

/// PyTorch's best steps/s per (kind, batch, hidden): eager or CUDA graph.
fn torch_best() -> Vec<(String, usize, usize, f64)> {
    let text = std::fs::read_to_string(format!("{RUN}/torch-and-python.txt")).unwrap();
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() != 5 || !(f[0] == "mlp" || f[0] == "conv") {
                return None;
            }
            let n = |i: usize| f[i].parse::<f64>().ok();
            let best = n(3)?.max(n(4)?);
            Some((f[0].into(), n(1)? as usize, n(2)? as usize, best))
        })
        .collect()
}
