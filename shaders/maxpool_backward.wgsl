// The book's max Pooling backward as a gather, on the layouts of
// shaders/maxpool_forward.wgsl: each input value (n, y, x, c) of `dz` is the
// sum, in a fixed order (ky, then kx, ascending), of the gradients `dp` of
// the windows whose maximum it was (by `argmax`); a maximum in the padding
// goes nowhere. When `flag` is set, Relu's backward is fused: the sum is
// kept only where the forward's input `z` (Relu's output) is above 0.
// Channels past C in a row of dz are written 0. One invocation per element
// of dz (rows `in_stride` apart, as z; dp's rows `out_stride` apart).

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
@group(0) @binding(1) var<storage, read> dp: array<f32>;
@group(0) @binding(2) var<storage, read> argmax: array<u32>;
@group(0) @binding(3) var<storage, read> z: array<f32>;
@group(0) @binding(4) var<storage, read_write> dz: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let e = (wg.y * dims.groups_x + wg.x) * 256u + li;
    if e >= dims.count {
        return;
    }
    let pos = e / dims.in_stride;
    let ch = e % dims.in_stride;
    if ch >= dims.c {
        dz[e] = 0.0;
        return;
    }
    let n = pos / (dims.h * dims.w);
    let y = (pos / dims.w) % dims.h;
    let xx = pos % dims.w;
    let area = dims.out_h * dims.out_w;
    var acc = 0.0;
    for (var ky = 0u; ky < dims.fh; ky++) {
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
            let j = (ch * dims.out_h + oy) * dims.out_w + ox;
            if argmax[n * dims.c * area + j] == ky * dims.fw + kx {
                acc += dp[n * dims.out_stride + j];
            }
        }
    }
    if dims.flag == 1u && !(z[e] > 0.0) {
        acc = 0.0;
    }
    dz[e] = acc;
}
