// Batch Normalization forward, fused with the Relu after it (the book's
// `BatchNormalization.forward` then `Relu.forward`).
//
// a: the Affine's output (rows × features, rows `stride` long). z: the layer's
// output in the same layout, carrying the ones column at `features` that the
// next Affine's bias needs (see src/gpu/layout.rs). params: the arena, gamma
// at `gamma`, beta at `beta`. running: mean at `running`, variance at
// `running + features`. std: one f32 per feature.
//
// TRAIN: per feature, mean and biased variance over the rows (two passes, as
// the book), std = √(var + 1e-6); a is overwritten with xn = (a - mean) / std
// (the backward pass needs it), std is kept, and the running statistics move
// 0.9·running + 0.1·batch. Evaluation: xn from the running statistics.
// Then z = max(gamma·xn + beta, 0).
//
// One workgroup per feature (looping when there are more features than
// workgroups); its 64 invocations stride over the rows and sum with a fixed
// tree, so results repeat bit for bit.

struct Dims {
    rows: u32,
    features: u32,
    stride: u32,
    gamma: u32,
    beta: u32,
    running: u32,
    _pad0: u32,
    _pad1: u32,
}

override TRAIN: bool = true;

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read_write> a: array<f32>;
@group(0) @binding(2) var<storage, read_write> z: array<f32>;
@group(0) @binding(3) var<storage, read> params: array<f32>;
@group(0) @binding(4) var<storage, read_write> running: array<f32>;
@group(0) @binding(5) var<storage, read_write> std_dev: array<f32>;

const WG: u32 = 64u;
const EPS: f32 = 1e-6;
const MOMENTUM: f32 = 0.9;
var<workgroup> part: array<f32, WG>;

// The sum of every invocation's `v` (same value in all of them afterwards).
fn workgroup_sum(li: u32, v: f32) -> f32 {
    part[li] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if li < s {
            part[li] += part[li + s];
        }
        workgroupBarrier();
    }
    let total = part[0];
    workgroupBarrier();
    return total;
}

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let rows = dims.rows;
    for (var j = wg.x; j < dims.features; j += groups.x) {
        var mean: f32;
        var sd: f32;
        if TRAIN {
            var s = 0.0;
            for (var r = li; r < rows; r += WG) {
                s += a[r * dims.stride + j];
            }
            mean = workgroup_sum(li, s) / f32(rows);
            var q = 0.0;
            for (var r = li; r < rows; r += WG) {
                let c = a[r * dims.stride + j] - mean;
                q += c * c;
            }
            let variance = workgroup_sum(li, q) / f32(rows);
            sd = sqrt(variance + EPS);
            if li == 0u {
                std_dev[j] = sd;
                let rm = dims.running + j;
                let rv = dims.running + dims.features + j;
                running[rm] = MOMENTUM * running[rm] + (1.0 - MOMENTUM) * mean;
                running[rv] = MOMENTUM * running[rv] + (1.0 - MOMENTUM) * variance;
            }
        } else {
            mean = running[dims.running + j];
            sd = sqrt(running[dims.running + dims.features + j] + EPS);
        }
        let g = params[dims.gamma + j];
        let b = params[dims.beta + j];
        for (var r = li; r < rows; r += WG) {
            let idx = r * dims.stride + j;
            let xn = (a[idx] - mean) / sd;
            if TRAIN {
                a[idx] = xn;
            }
            z[idx] = max(g * xn + b, 0.0);
            if j == 0u {
                z[r * dims.stride + dims.features] = 1.0;
            }
        }
    }
}
