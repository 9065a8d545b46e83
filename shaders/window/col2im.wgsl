// The book's col2im (common/util.py) as a gather: each image value is the
// sum of the entries of `col` that read it, taken in a fixed order (ky,
// then kx, ascending), so a run repeats bit for bit (no float atomics).
// `col` has the layout window/im2col.wgsl writes (rows `in_stride` apart);
// the images are rows of `x`, C·H·W values each, `out_stride` apart. One
// invocation per image value. (Compiled after shaders/window.wgsl.)

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> col: array<f32>;
@group(0) @binding(2) var<storage, read_write> x: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let e = element(wg, li);
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
        let oy = reader(y, ky, dims.out_h);
        for (var kx = 0u; kx < dims.fw; kx++) {
            let ox = reader(xx, kx, dims.out_w);
            if oy >= 0 && ox >= 0 {
                let row = (n * dims.out_h + u32(oy)) * dims.out_w + u32(ox);
                acc += col[row * dims.in_stride + (ch * dims.fh + ky) * dims.fw + kx];
            }
        }
    }
    x[n * dims.out_stride + e % per_image] = acc;
}
