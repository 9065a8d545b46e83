// The book's max Pooling backward as a gather, on the layouts of
// window/maxpool_forward.wgsl: each input value (n, y, x, c) of `dz` is the
// sum, in a fixed order (ky, then kx, ascending), of the gradients `dp` of
// the windows whose maximum it was (by `argmax`); a maximum in the padding
// goes nowhere. When `flag` is set, Relu's backward is fused: the sum is
// kept only where the forward's input `z` (Relu's output) is above 0.
// Channels past C in a row of dz are written 0. One invocation per element
// of dz (rows `in_stride` apart, as z; dp's rows `out_stride` apart).
// (Compiled after shaders/window.wgsl.)

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> dp: array<f32>;
@group(0) @binding(2) var<storage, read> argmax: array<u32>;
@group(0) @binding(3) var<storage, read> z: array<f32>;
@group(0) @binding(4) var<storage, read_write> dz: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let e = element(wg, li);
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
        let oy = reader(y, ky, dims.out_h);
        for (var kx = 0u; kx < dims.fw; kx++) {
            let ox = reader(xx, kx, dims.out_w);
            if oy >= 0 && ox >= 0 {
                let j = (ch * dims.out_h + u32(oy)) * dims.out_w + u32(ox);
                if argmax[n * dims.c * area + j] == ky * dims.fw + kx {
                    acc += dp[n * dims.out_stride + j];
                }
            }
        }
    }
    if dims.flag == 1u && !(z[e] > 0.0) {
        acc = 0.0;
    }
    dz[e] = acc;
}
