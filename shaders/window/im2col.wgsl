// The book's im2col (common/util.py) on the GPU: one row per window position
// (n, oy, ox), one column per value the window reads (c, ky, kx), zeros
// where it reads the padding; then, when `flag` is set, the column of ones
// that carries the bias into the product (src/gpu/layout.rs), and zeros up
// to the row's stride. The images are rows of `x`, C·H·W values each (CHW),
// `in_stride` apart; col's rows are `out_stride` apart. One invocation per
// element of the matrix, padding columns included, so nothing is left
// unwritten. (With shaders/window.wgsl after it.)

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> col: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let e = element(wg, li);
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
        let n = r / (dims.out_h * dims.out_w);
        let at = source((r / dims.out_w) % dims.out_h, r % dims.out_w, (j % area) / dims.fw, j % dims.fw);
        if at.x >= 0 {
            v = x[n * dims.in_stride + (ch * dims.h + u32(at.x)) * dims.w + u32(at.y)];
        }
    } else if j == k && dims.flag == 1u {
        v = 1.0;
    }
    col[e] = v;
}
