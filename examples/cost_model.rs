//! What the cost model predicts for a step on a GPU, under the plans that
//! were measured and under the planner's, beside the measurement and
//! PyTorch's best on the same card: `cargo run --release --example
//! cost_model [-- --verbose] [-- --units N]`. Reads the H200 run in
//! `bench/h200-2026-12-04/`; `--verbose` adds every modelled dispatch.
//!
//! A step is the sum of its dispatches (the GPU was busy the whole step
//! there): the gather, the products and the softmax are predicted, the
//! rest (the window kernels, Adam's update) carry their measured times,
//! but in the new plans the pooling, which runs by quads
//! (`plan::pools_by_quads`) and is predicted as a stream of its bytes at the
//! bandwidth fitted to Adam's update (no GPU has run it).
//! The new plans gather the batches of a submission's 16 steps at once
//! where they fit (`layout::step_regions`), a step's share counted.
//!
//! Then DeepConvNet's step at batch 100, which no GPU has run: its gather,
//! products and softmax predicted by the model under the planner's plans,
//! its pooling as streams, and its other window kernels (col2im, and im2col
//! where the planner writes the columns out) at the bytes per second
//! SimpleConvNet's im2col measured on the H200 at batch 1000.
//!
//! Where the planner's convolutions read im2col's matrix in place
//! (`plan::implicit_columns`), the new plan has no im2col dispatch; the
//! products that read the columns are given the times of products reading
//! them from memory (the address arithmetic is assumed hidden, as no GPU
//! has run it).

use gpu_net::core::conv::{ConvFront, ImageShape, Slide, Window};
use gpu_net::core::model::Arch;
use gpu_net::core::network::{Layer, Network, Values};
use gpu_net::gpu::DeviceProfile;
use gpu_net::gpu::cost::{H200, Work};
use gpu_net::gpu::forecast::{as_measured, planned_step, pooling_bytes};
use gpu_net::gpu::kernels::MatmulAlgo;
use gpu_net::gpu::plan::implicit_columns;
use serde_json::Value;

const RUN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/bench/h200-2026-12-04");
/// Steps to a submission, as that run's `bench` recorded them.
const SLOTS: usize = 16;

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
    let conv_run: Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{RUN}/bench_conv.json")).unwrap())
            .unwrap();
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
    deep_convnet(&profile, &conv_run);
}

/// DeepConvNet's predicted step at batch 100 (see the module's comment).
fn deep_convnet(profile: &DeviceProfile, conv: &Value) {
    let arch = Arch::from_network(Network::deep_convnet()).unwrap();
    let products: f64 = planned_step(&H200, profile, &arch, (100, SLOTS))
        .iter()
        .map(|f| f.seconds)
        .sum();
    let im2col = im2col_rate(conv);
    let mut windows = 0.0;
    let plan = arch.list_plan().unwrap();
    for p in &plan.layers {
        let (
            Values::Image { c, h, w },
            Values::Image {
                c: oc,
                h: oh,
                w: ow,
            },
        ) = (p.input, p.output)
        else {
            continue;
        };
        let f32s = |n: usize| (n * 4) as f64;
        let padded = |n: usize| (n + 1).next_multiple_of(4);
        match p.layer {
            Layer::Convolution { .. } => {
                let col = f32s(100 * oh * ow * padded(c * 9));
                if !implicit_columns(profile, MatmulAlgo::Tiled) {
                    windows += col / im2col; // im2col
                }
                if p.number > 1 {
                    windows += (col + f32s(100 * c * h * w)) / im2col; // col2im
                }
            }
            Layer::Pooling { size, stride } => {
                let window = Window {
                    h: size,
                    w: size,
                    stride,
                    pad: 0,
                };
                let slide = Slide::new(ImageShape { n: 100, c, h, w }, window).unwrap();
                let strides = (padded(c), padded(oc * oh * ow));
                // By quads (a Relu comes before each pooling).
                let bytes = pooling_bytes(&slide, strides, true).expect("2×2 windows tile");
                windows += bytes
                    .map(|bytes| H200.seconds(profile, Work::Stream { bytes }))
                    .iter()
                    .sum::<f64>();
            }
            _ => {}
        }
    }
    let step = products + windows;
    println!(
        "DeepConvNet, 100: gather, products and softmax {:.0} µs, window kernels {:.0} µs: {:.0} steps/s",
        products * 1e6,
        windows * 1e6,
        1.0 / step
    );
}

/// Bytes a second of SimpleConvNet's im2col at batch 1000 on the H200
/// (576,000 rows of 25 values, 28 stored, written).
fn im2col_rate(conv: &Value) -> f64 {
    let kernels = conv["kernels"].as_array().unwrap();
    let k = kernels
        .iter()
        .find(|k| k["batch"] == 1000 && k["name"] == "conv1 im2col")
        .unwrap();
    576_000.0 * 28.0 * 4.0 / (k["ms_per_step"].as_f64().unwrap() / 1e3)
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
    let planned = planned_step(&H200, profile, arch, (batch, SLOTS));
    // Measured dispatches the new plan carries: neither modelled under the
    // old plans nor planned anew (a front's pooling, by quads, is).
    let (mut old, mut unmodelled, mut replaced, mut im2col) = (0.0, 0.0, 0.0, 0.0);
    for k in kernels {
        let name = k["name"].as_str().unwrap();
        let measured = k["ms_per_step"].as_f64().unwrap() / 1e3;
        if name.ends_with(" im2col") {
            im2col += measured;
        }
        let is_planned = planned.iter().any(|f| f.name == name);
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
            None if is_planned => {
                unmodelled += measured;
                replaced += measured;
            }
            None => unmodelled += measured,
        }
    }
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
            "    unmodelled dispatches (as measured) {:.1} µs, of which im2col {:.1} µs and planned anew {:.1} µs",
            unmodelled * 1e6,
            im2col * 1e6,
            replaced * 1e6
        );
    }
    let new: f64 = planned.iter().map(|f| f.seconds).sum();
    // The planner's convolutions read their columns in place: no im2col.
    let gone = match implicit_columns(profile, MatmulAlgo::Tiled) {
        true => im2col,
        false => 0.0,
    };
    (old + unmodelled, new + unmodelled - gone - replaced)
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
