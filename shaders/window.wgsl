// What the kernels that slide a window over images share (src/gpu/kernels/
// window.rs): their uniform, the slide's geometry (src/core/conv.rs) with two
// row strides and the images' layout, and the two ways of following a window.
// Compiled after shaders/lib/columns.wgsl (the images' layouts and where a window
// reads); each kernel in shaders/window/ is compiled after this file, and
// declares `dims`.

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
    // How im2col's input and col2im's output hold the images: IMAGES or
    // POSITIONS (shaders/lib/columns.wgsl).
    image_layout: u32,
}

// Invocations per workgroup of every window kernel: given by the host
// (WG in src/gpu/kernels/window.rs), which sizes the grid by it.
override WG: u32;

// This invocation's element, in a grid of groups_x × rows workgroups of WG.
fn element(wg: vec3<u32>, li: u32) -> u32 {
    return (wg.y * dims.groups_x + wg.x) * WG + li;
}

// Where value (channel ch, row y, column x) of image n lies, for images
// `stride` apart (shaders/lib/columns.wgsl's `columns_image_at`).
fn image_at(n: u32, ch: u32, y: u32, x: u32, stride: u32) -> u32 {
    let size = vec2<u32>(dims.h, dims.w);
    return columns_image_at(dims.image_layout, size, stride, n, ch, y, x);
}

// The image position (y, x) window position (oy, ox) reads at offset (ky,
// kx), or (-1, -1) where it reads the zero padding.
fn source(oy: u32, ox: u32, ky: u32, kx: u32) -> vec2<i32> {
    let size = vec2<u32>(dims.h, dims.w);
    return columns_source(size, dims.stride, dims.pad, oy, ox, ky, kx);
}

// What an invocation of the pooling kernels that work by quads of channels
// (window/maxpool_forward_quads.wgsl, maxpool_backward_quads.wgsl) works
// on: window position `pos` (oy, ox) over image n, and quad q of the
// channels of the convolution's rows, `quads` vec4s long (in_stride / 4);
// invocations numbered (n, oy, ox, q), quads fastest.
struct Quad {
    n: u32,
    pos: u32,
    oy: u32,
    ox: u32,
    q: u32,
    quads: u32,
}

fn quad_of(e: u32) -> Quad {
    let quads = dims.in_stride / 4u;
    let window = e / quads;
    let area = dims.out_h * dims.out_w;
    let n = window / area;
    let pos = window - n * area;
    let oy = pos / dims.out_w;
    return Quad(n, pos, oy, pos - oy * dims.out_w, e - window * quads, quads);
}

// The vec4 of the convolution's rows that quad `at` reads or writes at
// window offset (ky, 0), for windows that tile the image (no padding);
// offset (ky, kx) is kx·quads after it.
fn quad_row(at: Quad, ky: u32) -> u32 {
    let y = at.oy * dims.stride + ky;
    return ((at.n * dims.h + y) * dims.w + at.ox * dims.stride) * at.quads + at.q;
}

// Along one axis: the window position whose offset k reads image position
// p (o·stride + k = p + pad), or -1 where none does; `out` positions in all.
// At stride 1 (every convolution of DeepConvNet) it divides nothing: an
// integer division is a long sequence of instructions on a GPU, and on a
// CPU adapter it is done lane by lane.
fn reader(p: u32, k: u32, out: u32) -> i32 {
    let s = i32(p + dims.pad) - i32(k);
    if dims.stride == 1u {
        return select(-1, s, s >= 0 && u32(s) < out);
    }
    if s < 0 || u32(s) % dims.stride != 0u || u32(s) / dims.stride >= out {
        return -1;
    }
    return i32(u32(s) / dims.stride);
}
