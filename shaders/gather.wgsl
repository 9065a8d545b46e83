// Builds batches from the dataset held on the GPU: for sample e < rows,
// row r = (e / per_region)·region_rows + e % per_region gets x[r, p] =
// pixel / 255 of image idx[offset + e], x[r, pixels] = 1 (the ones column
// that carries the bias, see src/gpu/layout.rs), and t[r] = its label: one
// batch of `per_region` = `rows`, or several laid out as Regions in
// src/gpu/layout.rs says. Rows of x are `stride` long (a multiple of 4);
// the padding after the ones column, and rows no sample lands on, are never
// written, so they stay zero. Images are u8 packed four to a u32, which keeps the whole
// training set under the storage-binding limit.
//
// A vec4 of x is four pixels of one row, or the ones column. When `pixels` is
// a multiple of 4 (MNIST's 784) every image starts on a word, and those four
// pixels are one u32; otherwise they are unpacked byte by byte.

struct Dims {
    rows: u32,
    pixels: u32,
    offset: u32,
    groups_x: u32,
    stride: u32,
    per_region: u32,
    region_rows: u32,
    _pad0: u32,
}

// The row sample e lands on.
fn row_of(e: u32) -> u32 {
    return e / dims.per_region * dims.region_rows + e % dims.per_region;
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

// Each invocation writes up to CHUNK consecutive vec4s of one row, so the
// row's image index is loaded once per chunk and the per-invocation cost of a
// software driver is spread over several stores.
// (CHUNK in src/gpu/kernels/gather.rs, given by the host.)
override CHUNK: u32;
// Invocations per workgroup: given by the host (WG in src/gpu/kernels/gather.rs), which sizes
// the grid by it.
override WG: u32;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let e = (wg.y * dims.groups_x + wg.x) * WG + li;
    if e < dims.rows {
        t[row_of(e)] = labels[idx[dims.offset + e]];
    }
    // vec4s per row: the pixels, then the one holding the ones column.
    let per_row = dims.pixels / 4u + 1u;
    let chunks = (per_row + CHUNK - 1u) / CHUNK;
    let r = e / chunks;
    if r >= dims.rows {
        return;
    }
    let q0 = (e % chunks) * CHUNK;
    let row = row_of(r) * (dims.stride / 4u);
    let image = idx[dims.offset + r];
    let base = image * dims.pixels;
    for (var q = q0; q < min(q0 + CHUNK, per_row); q++) {
        let p = q * 4u;
        if q + 1u == per_row {
            // The last vec4: the pixels left over (when pixels % 4 != 0), then 1.
            var v = vec4<f32>();
            let left = dims.pixels - p;
            for (var j = 0u; j < 4u; j++) {
                if j < left {
                    v[j] = pixel(base + p + j);
                } else if j == left {
                    v[j] = 1.0;
                }
            }
            x[row + q] = v;
        } else if dims.pixels % 4u == 0u {
            let word = images[(base + p) / 4u];
            x[row + q] = vec4<f32>(
                f32(word & 0xffu),
                f32((word >> 8u) & 0xffu),
                f32((word >> 16u) & 0xffu),
                f32(word >> 24u),
            ) / 255.0;
        } else {
            x[row + q] = vec4<f32>(pixel(base + p), pixel(base + p + 1u), pixel(base + p + 2u), pixel(base + p + 3u));
        }
    }
}
