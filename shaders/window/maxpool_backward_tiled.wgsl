// The book's max Pooling backward where the windows tile the image (stride
// = window height = window width, no padding: every input value lies in
// exactly one window), on the layouts of window/maxpool_forward.wgsl. One
// invocation per pooled value (n, c, oy, ox) writes its whole window of
// `dz`: its gradient `dp` where `argmax` points, 0 elsewhere; with `flag`
// set, Relu's backward is fused (kept only where Relu's output `z` is above
// 0). The invocations of the last channel also write 0 to the channels past
// C in their window's rows, so every element of dz is written. No value is
// written twice, so the result does not depend on the order: the same bits
// as window/maxpool_backward.wgsl's gather, with a quarter of its
// invocations for 2×2 windows and no division inside the window.
// CHANNELS_FASTEST (on GPUs: src/gpu/plan.rs, window_grain) numbers the
// invocations (n, oy, ox, c) instead of (n, c, oy, ox), so that neighbouring
// invocations read and write neighbouring channels of one position.
// (Compiled after shaders/window.wgsl.)

override CHANNELS_FASTEST: bool = false;

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
    let area = dims.out_h * dims.out_w;
    let k = dims.c * area;
    var n: u32;
    var ch: u32;
    var pos: u32;
    if CHANNELS_FASTEST {
        ch = e % dims.c;
        n = e / k;
        pos = (e / dims.c) % area;
    } else {
        n = e / k;
        ch = (e % k) / area;
        pos = e % area;
    }
    let oy = pos / dims.out_w;
    let ox = pos % dims.out_w;
    let j = ch * area + pos;
    let g = dp[n * dims.out_stride + j];
    let at = argmax[n * k + j];
    var q = 0u;
    for (var ky = 0u; ky < dims.fh; ky++) {
        let row = (n * dims.h + oy * dims.stride + ky) * dims.w + ox * dims.stride;
        for (var kx = 0u; kx < dims.fw; kx++) {
            let i = (row + kx) * dims.in_stride;
            var v = select(0.0, g, q == at);
            if dims.flag == 1u && !(z[i + ch] > 0.0) {
                v = 0.0;
            }
            dz[i + ch] = v;
            if ch + 1u == dims.c {
                for (var extra = dims.c; extra < dims.in_stride; extra++) {
                    dz[i + extra] = 0.0;
                }
            }
            q++;
        }
    }
}
