// The book's im2col (common/util.py) on the GPU: one row per window position
// (n, oy, ox), one column per value the window reads (c, ky, kx), zeros
// where it reads the padding; then, when `flag` is set, the column of ones
// that carries the bias into the product (src/gpu/layout.rs), and zeros up
// to the row's stride. The images are in `x` as `layout` says (`image_at`,
// rows `in_stride` apart); col's rows are `out_stride` apart. One invocation per
// row of the matrix, writing all of it, padding columns included, so
// nothing is left unwritten; a row's position is divided out once, each
// window offset's source found once for all channels (images of one
// channel take a plain loop: on lavapipe a loop over one channel made
// SimpleConvNet's im2col a third slower), and its values follow in nested
// loops (integer division is what an invocation per element spends its
// time on, on a CPU adapter above all). On a GPU,
// `by_element` runs one invocation per element instead, so that neighbouring
// invocations write neighbouring addresses (src/gpu/plan.rs, window_grain).
// (Compiled after shaders/window.wgsl.)

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> col: array<f32>;

// Row `row` of the matrix, for window position (oy, ox) over image n, of
// images with one channel (an input layer's): its values in order.
fn one_channel(n: u32, oy: u32, ox: u32, row: u32) {
    var j = row;
    for (var ky = 0u; ky < dims.fh; ky++) {
        for (var kx = 0u; kx < dims.fw; kx++) {
            let at = source(oy, ox, ky, kx);
            var v = 0.0;
            if at.x >= 0 {
                v = x[image_at(n, 0u, u32(at.x), u32(at.y), dims.in_stride)];
            }
            col[j] = v;
            j++;
        }
    }
}

// The same row of images with several channels: each window offset's
// source is found once for all of them, whose values lie `step` apart in
// either layout.
fn channels(n: u32, oy: u32, ox: u32, row: u32) {
    let window = dims.fh * dims.fw;
    let step = image_at(0u, 1u, 0u, 0u, 0u) - image_at(0u, 0u, 0u, 0u, 0u);
    for (var ky = 0u; ky < dims.fh; ky++) {
        for (var kx = 0u; kx < dims.fw; kx++) {
            let at = source(oy, ox, ky, kx);
            let j = row + ky * dims.fw + kx;
            if at.x < 0 {
                for (var ch = 0u; ch < dims.c; ch++) {
                    col[j + ch * window] = 0.0;
                }
                continue;
            }
            let first = image_at(n, 0u, u32(at.x), u32(at.y), dims.in_stride);
            for (var ch = 0u; ch < dims.c; ch++) {
                col[j + ch * window] = x[first + ch * step];
            }
        }
    }
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let r = element(wg, li);
    if r >= dims.count {
        return;
    }
    let n = r / (dims.out_h * dims.out_w);
    let oy = (r / dims.out_w) % dims.out_h;
    let ox = r % dims.out_w;
    let row = r * dims.out_stride;
    let window = dims.fh * dims.fw;
    if dims.c == 1u {
        one_channel(n, oy, ox, row);
    } else {
        channels(n, oy, ox, row);
    }
    var j = row + dims.c * window;
    let end = row + dims.out_stride;
    if dims.flag == 1u && j < end {
        col[j] = 1.0;
        j++;
    }
    for (; j < end; j++) {
        col[j] = 0.0;
    }
}

// The slide `dims` describes as shaders/lib/columns.wgsl takes it, the
// images' rows `stride` apart.
fn geometry(stride: u32) -> Columns {
    return Columns(
        dims.n, dims.c, dims.h, dims.w, dims.fh, dims.fw, dims.stride, dims.pad,
        dims.out_h, dims.out_w, dims.image_layout, stride, dims.flag == 1u,
    );
}

// One invocation per element of `col` (`count` = rows × out_stride): the
// same values as `main`, written by neighbouring invocations to
// neighbouring addresses, each as shaders/lib/columns.wgsl defines it.
@compute @workgroup_size(WG)
fn by_element(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let e = element(wg, li);
    if e >= dims.count {
        return;
    }
    let at = column_entry(geometry(dims.in_stride), e / dims.out_stride, e % dims.out_stride);
    var v = 0.0;
    if at >= 0 {
        v = x[at];
    } else if at == COLUMN_ONE {
        v = 1.0;
    }
    col[e] = v;
}
