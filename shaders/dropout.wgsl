// Dropout in the book's form, in place on a layer's output z (rows ×
// features, rows `stride` long; the ones column after the features is left
// alone).
//
// TRAIN: z *= mask, with the mask drawn by the counter-based hash of
// src/dropout_mask.rs (the same function, bit for bit): element (r, j) is
// kept when the top 24 bits of mix(key ^ mix(r·features + j)), as a number in
// [0, 1), exceed the ratio. `key` folds the seed, the step and the layer; the
// host writes it before each step. The backward pass needs no mask of its
// own: a dropped element is 0 in z, and Relu's backward (the product's
// mask epilogue, z > 0) already zeroes its gradient.
// Evaluation: z *= scale (1 - ratio).

struct Dims {
    rows: u32,
    features: u32,
    stride: u32,
    key: u32,
    ratio: f32,
    scale: f32,
    _pad0: u32,
    _pad1: u32,
}

override TRAIN: bool = true;

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read_write> z: array<f32>;

// Wellons' lowbias32, as dropout_mask::mix.
fn mix(v: u32) -> u32 {
    var x = v;
    x ^= x >> 16u;
    x *= 0x7feb352du;
    x ^= x >> 15u;
    x *= 0x846ca68bu;
    x ^= x >> 16u;
    return x;
}

// Invocations per workgroup: given by the host (WG in src/gpu/kernels/dropout.rs), which sizes
// the grid by it.
override WG: u32;

@compute @workgroup_size(WG)
fn main(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    let j = gid.x;
    if j >= dims.features {
        return;
    }
    for (var r = gid.y; r < dims.rows; r += groups.y) {
        let idx = r * dims.stride + j;
        if TRAIN {
            let u = f32(mix(dims.key ^ mix(r * dims.features + j)) >> 8u) * (1.0 / 16777216.0);
            z[idx] = select(0.0, z[idx], u > dims.ratio);
        } else {
            z[idx] = z[idx] * dims.scale;
        }
    }
}
