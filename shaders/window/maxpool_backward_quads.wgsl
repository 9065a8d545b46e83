// The book's max Pooling backward where the windows tile the image (stride
// = window height = window width, no padding: every input value lies in
// exactly one window), four channels at a time: one invocation per window
// position (n, oy, ox) and quad of channels (channels 4q .. 4q+3 of z's
// rows, which are `in_stride` apart, a multiple of 4), numbered quads
// fastest. It reads its window's four gradients `dp` and maxima `argmax`
// once, then writes its quad of every row of the window as one vec4: the
// gradient where argmax points, 0 elsewhere and in the channels past C;
// with `flag` set, kept only where Relu's output `z` is above 0 (Relu's
// backward, fused). Neighbouring
// invocations read and write neighbouring 16 bytes of a row, every row of
// dz is written whole (its padding included) by its own invocations, and
// the window's position is divided out once for four channels. No value is
// written twice, so the same bits as the other pooling backwards.
// (Compiled after shaders/window.wgsl.)

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> dp: array<f32>;
@group(0) @binding(2) var<storage, read> argmax: array<u32>;
@group(0) @binding(3) var<storage, read> z: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> dz: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let e = element(wg, li);
    if e >= dims.count {
        return;
    }
    let w = quad_of(e);
    let area = dims.out_h * dims.out_w;
    // A channel past C has the gradient 0, wherever it points.
    var g = vec4<f32>(0.0);
    var at = vec4<u32>(0u);
    for (var r = 0u; r < 4u; r++) {
        let ch = 4u * w.q + r;
        if ch < dims.c {
            let j = ch * area + w.pos;
            g[r] = dp[w.n * dims.out_stride + j];
            at[r] = argmax[w.n * dims.c * area + j];
        }
    }
    var t = 0u; // the window's element, row-major: ky·fw + kx
    for (var ky = 0u; ky < dims.fh; ky++) {
        let row = quad_row(w, ky);
        for (var kx = 0u; kx < dims.fw; kx++) {
            let i = row + kx * w.quads;
            var v = select(vec4<f32>(0.0), g, at == vec4<u32>(t));
            if dims.flag == 1u {
                v = select(vec4<f32>(0.0), v, z[i] > vec4<f32>(0.0));
            }
            dz[i] = v;
            t++;
        }
    }
}
