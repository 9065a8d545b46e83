// The book's im2col (common/util.py) on the GPU: one row per window position
// (n, oy, ox), one column per value the window reads (c, ky, kx), zeros
// where it reads the padding; then, when `ones` is set, the column of ones
// that carries the bias into the product (src/gpu/layout.rs), and zeros up
// to the row's stride. The images are rows of `x`, C·H·W values each (CHW),
// `in_stride` apart. One invocation per element of the matrix, padding
// columns included, so nothing is left unwritten.

struct Dims {
    n: u32,
    c: u32,
    h: u32,
    w: u32,
    fh: u32,
    fw: u32,
    stride: u32,
    pad: u32,
    out_h: u32,
    out_w: u32,
    in_stride: u32,
    out_stride: u32,
    count: u32,
    groups_x: u32,
    flag: u32,
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> col: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let e = (wg.y * dims.groups_x + wg.x) * 256u + li;
    if e >= dims.count {
        return;
    }
    let r = e / dims.out_stride;
    let j = e % dims.out_stride;
    let area = dims.fh * dims.fw;
    let k = dims.c * area;
    var v = 0.0;
    if j < k {
        let ch = j / area;
        let ky = (j % area) / dims.fw;
        let kx = j % dims.fw;
        let n = r / (dims.out_h * dims.out_w);
        let oy = (r / dims.out_w) % dims.out_h;
        let ox = r % dims.out_w;
        // Signed: a window position near the edge reads the padding.
        let y = i32(oy * dims.stride + ky) - i32(dims.pad);
        let xx = i32(ox * dims.stride + kx) - i32(dims.pad);
        if y >= 0 && y < i32(dims.h) && xx >= 0 && xx < i32(dims.w) {
            v = x[n * dims.in_stride + (ch * dims.h + u32(y)) * dims.w + u32(xx)];
        }
    } else if j == k && dims.flag == 1u {
        v = 1.0;
    }
    col[e] = v;
}
