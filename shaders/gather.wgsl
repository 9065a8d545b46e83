// Builds one batch from the dataset held on the GPU: x[r, p] = pixel / 255 of
// image idx[offset + r], and t[r] = its label. Images are u8 packed four to a
// u32 (the whole training set stays under the storage-binding limit that way).
// Each invocation writes four consecutive elements of x.

struct Dims {
    rows: u32,
    pixels: u32,
    offset: u32,
    groups_x: u32,
}

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> images: array<u32>;
@group(0) @binding(2) var<storage, read> labels: array<u32>;
@group(0) @binding(3) var<storage, read> idx: array<u32>;
@group(0) @binding(4) var<storage, read_write> x: array<f32>;
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
    let total = dims.rows * dims.pixels;
    for (var j = 0u; j < 4u; j++) {
        let o = e * 4u + j;
        if o >= total {
            return;
        }
        let r = o / dims.pixels;
        let p = o % dims.pixels;
        x[o] = pixel(idx[dims.offset + r] * dims.pixels + p);
    }
}
