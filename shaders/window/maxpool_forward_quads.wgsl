// The book's max Pooling forward where the windows tile the image (stride =
// window height = window width, no padding), four channels at a time, on
// the layouts of window/maxpool_forward.wgsl: one invocation per window
// position (n, oy, ox) and quad of channels (channels 4q .. 4q+3 of z's
// rows, which are `in_stride` apart, a multiple of 4), numbered quads
// fastest, so that neighbouring invocations read neighbouring 16 bytes of a
// row of z. Each reads its quad of every row of its window as one vec4 and
// writes each real channel's largest value to `p` and its index in the
// window (row-major) to `argmax`; ties go to the first index, as numpy's
// argmax and maxpool_forward.wgsl's, so the same values and indices. The
// first quad of each image's first window also writes the rest of p's row:
// the column of ones that carries the next layer's bias (when `flag` is
// set), then zeros to the stride.
// (Compiled after shaders/window.wgsl.)

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> z: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> p: array<f32>;
@group(0) @binding(3) var<storage, read_write> argmax: array<u32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let e = element(wg, li);
    if e >= dims.count {
        return;
    }
    let w = quad_of(e);
    let area = dims.out_h * dims.out_w;
    let k = dims.c * area;
    var best = vec4<f32>(0.0);
    var at = vec4<u32>(0u);
    var t = 0u; // the window's element, row-major: ky·fw + kx
    for (var ky = 0u; ky < dims.fh; ky++) {
        let row = quad_row(w, ky);
        for (var kx = 0u; kx < dims.fw; kx++) {
            let v = z[row + kx * w.quads];
            let above = (v > best) | vec4<bool>(t == 0u);
            best = select(best, v, above);
            at = select(at, vec4<u32>(t), above);
            t++;
        }
    }
    for (var r = 0u; r < 4u; r++) {
        let ch = 4u * w.q + r;
        if ch < dims.c {
            let j = ch * area + w.pos;
            p[w.n * dims.out_stride + j] = best[r];
            argmax[w.n * k + j] = at[r];
        }
    }
    if w.pos == 0u && w.q == 0u {
        for (var j = k; j < dims.out_stride; j++) {
            p[w.n * dims.out_stride + j] = select(0.0, 1.0, j == k && dims.flag == 1u);
        }
    }
}
