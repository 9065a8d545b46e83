// The book's col2im (common/util.py) as a gather: each image value is the
// sum of the entries of `col` that read it, taken in a fixed order (ky,
// then kx, ascending), so a run repeats bit for bit (no float atomics).
// `col` has the layout shaders/im2col.wgsl writes (rows `in_stride` apart);
// the images are rows of `x`, C·H·W values each, `out_stride` apart. One
// invocation per image value.

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
@group(0) @binding(1) var<storage, read> col: array<f32>;
@group(0) @binding(2) var<storage, read_write> x: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let e = (wg.y * dims.groups_x + wg.x) * 256u + li;
    if e >= dims.count {
        return;
    }
    let per_image = dims.c * dims.h * dims.w;
    let n = e / per_image;
    let ch = (e / (dims.h * dims.w)) % dims.c;
    let y = (e / dims.w) % dims.h;
    let xx = e % dims.w;
    var acc = 0.0;
    for (var ky = 0u; ky < dims.fh; ky++) {
        // The window row oy reads y at ky when oy·stride + ky = y + pad.
        let sy = i32(y + dims.pad) - i32(ky);
        if sy < 0 || u32(sy) % dims.stride != 0u || u32(sy) / dims.stride >= dims.out_h {
            continue;
        }
        let oy = u32(sy) / dims.stride;
        for (var kx = 0u; kx < dims.fw; kx++) {
            let sx = i32(xx + dims.pad) - i32(kx);
            if sx < 0 || u32(sx) % dims.stride != 0u || u32(sx) / dims.stride >= dims.out_w {
                continue;
            }
            let ox = u32(sx) / dims.stride;
            let row = (n * dims.out_h + oy) * dims.out_w + ox;
            acc += col[row * dims.in_stride + (ch * dims.fh + ky) * dims.fw + kx];
        }
    }
    x[n * dims.out_stride + e % per_image] = acc;
}
