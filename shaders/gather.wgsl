// Builds one batch from the dataset held on the GPU: x[r, p] = pixel / 255 of
// image idx[offset + r], x[r, pixels] = 1 (the ones column that carries the
// bias, see src/gpu/layout.rs), and t[r] = its label. Rows of x are `stride`
// long (a multiple of 4); the padding after the ones column is never written,
// so it stays zero. Images are u8 packed four to a u32, which keeps the whole
// training set under the storage-binding limit.
//
// Each invocation writes one vec4 of x: four pixels of one row, or the ones
// column. When `pixels` is a multiple of 4 (MNIST's 784) every image starts
// on a word, and those four pixels are one u32; otherwise they are unpacked
// byte by byte.

struct Dims {
    rows: u32,
    pixels: u32,
    offset: u32,
    groups_x: u32,
    stride: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> images: array<u32>;
@group(0) @binding(2) var<storage, read> labels: array<u32>;
@group(0) @binding(3) var<storage, read> idx: array<u32>;
@group(0) @binding(4) var<storage, read_write> x: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> t: array<u32>;

fn pixel(byte: u32) -> f32 {
    let word = images[byte / 4u];
    return f32((word >> ((byte % 4u) * 8u)) & 0xffu) / 255.0;
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let e = (wg.y * dims.groups_x + wg.x) * 256u + li;
    if e < dims.rows {
        t[e] = labels[idx[dims.offset + e]];
    }
    // vec4s per row: the pixels, then the one holding the ones column.
    let per_row = dims.pixels / 4u + 1u;
    let r = e / per_row;
    if r >= dims.rows {
        return;
    }
    let q = e % per_row;
    let p = q * 4u;
    let dst = r * (dims.stride / 4u) + q;
    let image = idx[dims.offset + r];
    if q + 1u == per_row {
        // The last vec4: the pixels left over (when pixels % 4 != 0), then 1.
        var v = vec4<f32>();
        let left = dims.pixels - p;
        for (var j = 0u; j < 4u; j++) {
            if j < left {
                v[j] = pixel(image * dims.pixels + p + j);
            } else if j == left {
                v[j] = 1.0;
            }
        }
        x[dst] = v;
    } else if dims.pixels % 4u == 0u {
        let word = images[(image * dims.pixels + p) / 4u];
        x[dst] = vec4<f32>(
            f32(word & 0xffu),
            f32((word >> 8u) & 0xffu),
            f32((word >> 16u) & 0xffu),
            f32(word >> 24u),
        ) / 255.0;
    } else {
        let base = image * dims.pixels + p;
        x[dst] = vec4<f32>(pixel(base), pixel(base + 1u), pixel(base + 2u), pixel(base + 3u));
    }
}
