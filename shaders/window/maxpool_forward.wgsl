// The book's max Pooling forward on the layout a convolution's product
// leaves: `z` has one row per position (n, y, x) of an H × W image, its C
// channels in the row (`in_stride` apart). Writes each window's largest
// value to `p`, one row per image (`out_stride` apart), in the order the
// book's Affine flattens (c, oy, ox), then, when `flag` is set, the column
// of ones that carries the next layer's bias, and zeros to the stride; and
// each maximum's index in its window (row-major) to `argmax`, one per
// output value (n, c, oy, ox). The padding counts as 0, as numpy's pad; ties
// go to the first index, as numpy's argmax. One invocation per element of p.
// (Compiled after shaders/window.wgsl.)

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> z: array<f32>;
@group(0) @binding(2) var<storage, read_write> p: array<f32>;
@group(0) @binding(3) var<storage, read_write> argmax: array<u32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let e = element(wg, li);
    if e >= dims.count {
        return;
    }
    let n = e / dims.out_stride;
    let j = e % dims.out_stride;
    let area = dims.out_h * dims.out_w;
    let k = dims.c * area;
    if j >= k {
        p[e] = select(0.0, 1.0, j == k && dims.flag == 1u);
        return;
    }
    let ch = j / area;
    let oy = (j % area) / dims.out_w;
    let ox = j % dims.out_w;
    var best = 0.0;
    var at = 0u;
    var q = 0u; // the window's element, row-major: ky·fw + kx
    for (var ky = 0u; ky < dims.fh; ky++) {
        for (var kx = 0u; kx < dims.fw; kx++) {
            let s = source(oy, ox, ky, kx);
            var v = 0.0;
            if s.x >= 0 {
                v = z[((n * dims.h + u32(s.x)) * dims.w + u32(s.y)) * dims.in_stride + ch];
            }
            if q == 0u || v > best {
                best = v;
                at = q;
            }
            q++;
        }
    }
    p[e] = best;
    argmax[n * k + j] = at;
}
