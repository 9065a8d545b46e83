// im2col's matrix as a function: which value of the images each of its
// elements is. One definition for the two kernels that need it:
// shaders/window/im2col.wgsl writes the matrix out, and the tiled product
// (shaders/matmul/tiled.wgsl with A_COLUMNS) reads its A through it in
// place, never storing the matrix (an implicit-GEMM convolution). Both are
// compiled after this file (src/gpu/kernels/window.rs, src/gpu/kernels/matmul/).
//
// The matrix has one row per window position (n, oy, ox), in that order,
// and one column per value the window reads (ch, ky, kx); then, with
// `ones`, the column of ones that carries the bias (src/gpu/layout.rs);
// then zeros to the end of the row.

// A slide of a window over n images (src/core/conv.rs's Slide) and where
// the images are: `image_layout` one of IMAGES or POSITIONS (see
// `columns_image_at`), rows `x_stride` apart.
struct Columns {
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
    image_layout: u32,
    x_stride: u32,
    ones: bool,
}

// The images' layouts (src/gpu/kernels/window.rs's ImageLayout).
const IMAGES: u32 = 0u;
const POSITIONS: u32 = 1u;

// What `column_entry` says of an element that is no value of the images,
// and what `Column` says of a column that reads the images.
const COLUMN_ZERO: i32 = -1;
const COLUMN_ONE: i32 = -2;
const COLUMN_WINDOW: i32 = 0;

// Where value (channel ch, row y, column x) of image n lies, in images of
// `size` (H, W) laid out as `image_layout` says with rows `x_stride` apart:
// IMAGES, one row per image of its C·H·W values (CHW); POSITIONS, as a
// convolution's product leaves them, one row per position (n, y, x) of its
// C channels. (The geometry comes as values, not a Columns, so that the
// window kernels pass their uniform's fields straight in.)
fn columns_image_at(image_layout: u32, size: vec2<u32>, x_stride: u32, n: u32, ch: u32, y: u32, x: u32) -> u32 {
    if image_layout == POSITIONS {
        return ((n * size.x + y) * size.y + x) * x_stride + ch;
    }
    return n * x_stride + (ch * size.x + y) * size.y + x;
}

// The image position (y, x) window position (oy, ox) reads at offset (ky,
// kx) in images of `size` (H, W), for a window moved `stride` at a time
// over images padded by `pad`; or (-1, -1) where it reads the padding.
fn columns_source(size: vec2<u32>, stride: u32, pad: u32, oy: u32, ox: u32, ky: u32, kx: u32) -> vec2<i32> {
    let y = i32(oy * stride + ky) - i32(pad);
    let x = i32(ox * stride + kx) - i32(pad);
    if y < 0 || y >= i32(size.x) || x < 0 || x >= i32(size.y) {
        return vec2<i32>(-1, -1);
    }
    return vec2<i32>(y, x);
}

// What column j of the matrix is: the value (ch, ky, kx) of each window
// (kind COLUMN_WINDOW), or all ones or all zeros (COLUMN_ONE, COLUMN_ZERO).
// Worked out once, it serves every row (see `column_entry_from`).
struct Column {
    kind: i32,
    ch: u32,
    ky: u32,
    kx: u32,
}

fn column_at(g: Columns, j: u32) -> Column {
    let window = g.fh * g.fw;
    let values = g.c * window;
    if j >= values {
        return Column(select(COLUMN_ZERO, COLUMN_ONE, g.ones && j == values), 0u, 0u, 0u);
    }
    let ch = j / window;
    let at = j - ch * window;
    let ky = at / g.fw;
    return Column(COLUMN_WINDOW, ch, ky, at - ky * g.fw);
}

// What row r of the matrix is: the window position (oy, ox) over image n
// (n >= g.n for a row past the matrix's last). Worked out once, it serves
// every column (see `column_entry_from`).
struct Position {
    n: u32,
    oy: u32,
    ox: u32,
}

fn column_position(g: Columns, r: u32) -> Position {
    let area = g.out_h * g.out_w;
    let n = r / area;
    let p = r - n * area;
    let oy = p / g.out_w;
    return Position(n, oy, p - oy * g.out_w);
}

// Element (r, j) of the matrix, row r being `at` and column j `col`: the
// index of its value in the images, or COLUMN_ZERO (the window over
// padding, past the ones column, or a row past the matrix's last, as in the
// zero rows a product's K is padded with) or COLUMN_ONE. No division.
fn column_entry_from(g: Columns, at: Position, col: Column) -> i32 {
    if at.n >= g.n {
        return COLUMN_ZERO;
    }
    if col.kind != COLUMN_WINDOW {
        return col.kind;
    }
    let size = vec2<u32>(g.h, g.w);
    let s = columns_source(size, g.stride, g.pad, at.oy, at.ox, col.ky, col.kx);
    if s.x < 0 {
        return COLUMN_ZERO;
    }
    return i32(columns_image_at(g.image_layout, size, g.x_stride, at.n, col.ch, u32(s.x), u32(s.y)));
}

// Element (r, j) of the matrix (see `column_entry_from`).
fn column_entry(g: Columns, r: u32, j: u32) -> i32 {
    return column_entry_from(g, column_position(g, r), column_at(g, j));
}
