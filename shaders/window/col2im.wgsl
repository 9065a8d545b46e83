// The book's col2im (common/util.py) as a gather: each image value is the
// sum of the entries of `col` that read it, taken in a fixed order (ky,
// then kx, ascending), so a run repeats bit for bit (no float atomics).
// `col` has the layout window/im2col.wgsl writes (rows `in_stride` apart);
// the images go to `x` as `layout` says (`image_at`, rows `out_stride`
// apart). When `flag` is set, Relu's backward is fused: a sum is kept only
// where `mask` (the Relu's output, laid out as x) is above 0. `main` runs
// one invocation per image value (in the POSITIONS layout one per element
// of x's rows, the channels past C written 0), so that on a GPU
// neighbouring invocations write neighbouring addresses; `by_position` one
// per image position (n, y, x), its channels in a loop, so that a CPU
// adapter divides out a position once rather than once per value
// (src/gpu/plan.rs, window_grain). Both add the same entries in the same
// order: the same bits.
// (Compiled after shaders/window.wgsl.)

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> col: array<f32>;
@group(0) @binding(2) var<storage, read> mask: array<f32>;
@group(0) @binding(3) var<storage, read_write> x: array<f32>;

// The sum of the entries of `col` that read value (ch, y, x) of image n,
// in the order ky, then kx, ascending.
fn sum_of_readers(n: u32, ch: u32, y: u32, xx: u32) -> f32 {
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
    return acc;
}

// Writes value (ch, y, x) of image n: its sum, masked by Relu's when `flag`.
fn put(n: u32, ch: u32, y: u32, xx: u32) {
    let at = image_at(n, ch, y, xx, dims.out_stride);
    var acc = sum_of_readers(n, ch, y, xx);
    if dims.flag == 1u && !(mask[at] > 0.0) {
        acc = 0.0;
    }
    x[at] = acc;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let e = element(wg, li);
    if e >= dims.count {
        return;
    }
    var n: u32;
    var ch: u32;
    var pos: u32; // y·W + x
    if dims.image_layout == POSITIONS {
        ch = e % dims.out_stride;
        if ch >= dims.c {
            x[e] = 0.0;
            return;
        }
        let p = e / dims.out_stride;
        n = p / (dims.h * dims.w);
        pos = p % (dims.h * dims.w);
    } else {
        let per_image = dims.c * dims.h * dims.w;
        n = e / per_image;
        ch = (e / (dims.h * dims.w)) % dims.c;
        pos = e % (dims.h * dims.w);
    }
    put(n, ch, pos / dims.w, pos % dims.w);
}

// One invocation per image position (`count` = N·H·W): each of its
// channels, and in the POSITIONS layout 0 in its row's channels past C.
@compute @workgroup_size(WG)
fn by_position(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let p = element(wg, li);
    if p >= dims.count {
        return;
    }
    let area = dims.h * dims.w;
    let n = p / area;
    let pos = p - n * area;
    let y = pos / dims.w;
    let xx = pos - y * dims.w;
    for (var ch = 0u; ch < dims.c; ch++) {
        put(n, ch, y, xx);
    }
    if dims.image_layout == POSITIONS {
        for (var ch = dims.c; ch < dims.out_stride; ch++) {
            x[p * dims.out_stride + ch] = 0.0;
        }
    }
}
