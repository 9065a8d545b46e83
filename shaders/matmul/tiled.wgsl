// Tiled matrix product with a fused epilogue, for GPUs (the contract, its
// uniform and the epilogues are in shaders/matmul.wgsl, compiled before it).
//
// Each workgroup computes a TILE×TILE tile of C, each of its 16×16
// invocations a PER×PER register tile (64 with 4×4, or 128 with 8×8: the
// planner picks, src/gpu/plan.rs), stepping through K 16 at a time with both
// operand tiles staged in workgroup memory, each step's read from memory
// (a vec4 at a time where the strides allow) issued before the step ahead
// of it is multiplied. Edges are guarded where tiles are
// loaded and stored, never inside the unrolled multiply-add loop, so any
// shape is correct; the guards are also why the product passes run without
// the runtime's bounds checks (tests/kernels.rs proves them with poison
// around every operand).
//
// With A_COLUMNS, A is im2col's matrix of the images in `a`, read in place
// through shaders/lib/columns.wgsl (compiled before this file): a convolution
// and its filters' gradient with no column matrix in memory, the same
// values in the same order, so the same bits as the product of the matrix.
//
// TILE and PER are not in this file: src/gpu/kernels/matmul/ compiles one
// of shaders/matmul/tiled/tile64.wgsl and tile128.wgsl after it (tiled_source).

@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
@group(0) @binding(4) var<storage, read> aux: array<f32>;
// A and B again, as vec4s (the same ranges, rounded down to whole vec4s),
// for the wide reads: used only where WIDE_A / WIDE_B say the operand's
// stride is a multiple of 4 (src/gpu/kernels/matmul/ sets them).
@group(0) @binding(5) var<storage, read> a4: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read> b4: array<vec4<f32>>;
override WIDE_A: bool = false;
override WIDE_B: bool = false;
// A is im2col's matrix of the images in `a` (dims.col_*), never read wide.
override A_COLUMNS: bool = false;

const BK: u32 = 16u;
// vec4s across a tile's k-row, and that plus one: rows of workgroup memory
// are padded by a vec4 so that staging a column of K (one row each) spreads
// over the memory banks.
const VECS: u32 = TILE / 4u;
const ROW: u32 = VECS + 1u;
// Elements of each operand tile one invocation stages per step of K.
const LOADS: u32 = TILE * BK / 256u;
// vec4s of C along n (and groups of 4 rows along m) one invocation holds.
const QUADS: u32 = PER / 4u;
// vec4s of each operand tile one invocation reads per step of K.
const FETCH: u32 = LOADS / 4u;

// Tiles stored k-major as vec4 along m / n, so one invocation reads four
// rows (or columns) of a k-slice with a single load.
var<workgroup> tile_a: array<vec4<f32>, BK * ROW>; // [BK][ROW]
var<workgroup> tile_b: array<vec4<f32>, BK * ROW>;

// The end of this workgroup's slice of K, and (PARTIAL_SUMS) where its slice of
// partial sums starts in C.
var<private> k_end: u32;
var<private> slice_base: u32;
// The next step's share of the operand tiles, read ahead (see `main`).
var<private> next_a: array<vec4<f32>, FETCH>;
var<private> next_b: array<vec4<f32>, FETCH>;

// The slide A_COLUMNS reads A through.
fn columns() -> Columns {
    return Columns(
        dims.col_n, dims.col_c, dims.col_h, dims.col_w, dims.col_fh, dims.col_fw,
        dims.col_stride, dims.col_pad, dims.col_out_h, dims.col_out_w, dims.col_layout,
        dims.col_x_stride, dims.col_ones == 1u,
    );
}

// With A_COLUMNS and TRANS_A (a convolution's filters' gradient), every
// element an invocation reads lies in one column of im2col's matrix (A's
// m, fixed by the invocation's place in the tile: see `a_spot`), worked
// out once in `main`.
var<private> own_column: Column;

// The window positions of the rows of im2col's matrix an invocation stages
// (`a_spot`), so that staging A divides nothing. Without TRANS_A (a
// convolution's forward product) they are the same every step (rows m0 +
// li / BK + 16·i, one column of K a step, worked out in `fetch`). With
// TRANS_A they are rows k0 + li / TILE + (256 / TILE)·i of the step `fetch`
// reads next: each step moves them BK rows on, `rows_per_step` apart, by
// `advance`, which adds without dividing.
var<private> own_rows: array<Position, LOADS>;
var<private> rows_per_step: Position;

// Position `p` moved `d` rows of the matrix on (d as column_position gives
// it): each part is below its bound in both, so at most one carry a part.
fn advance(p: Position, d: Position) -> Position {
    let ox = p.ox + d.ox;
    let carry_x = select(0u, 1u, ox >= dims.col_out_w);
    let oy = p.oy + d.oy + carry_x;
    let carry_y = select(0u, 1u, oy >= dims.col_out_h);
    return Position(
        p.n + d.n + carry_y,
        oy - carry_y * dims.col_out_h,
        ox - carry_x * dims.col_out_w,
    );
}

// The value of the images at `at` (shaders/lib/columns.wgsl's
// column_entry_from), 0 or 1.
fn entry_value(at: i32) -> f32 {
    if at >= 0 {
        return a[at];
    }
    return select(0.0, 1.0, at == COLUMN_ONE);
}

// Element (m, k) of A read through im2col's matrix (A_COLUMNS), row i of
// `own_rows` and column `col` of the matrix, inside the guards `load_a`
// keeps.
fn own_row_value(i: u32, m: u32, k: u32, col: Column) -> f32 {
    if m >= dims.m || k >= k_end {
        return 0.0;
    }
    return entry_value(column_entry_from(columns(), own_rows[i], col));
}

// Element (m, k) of A in memory (not A_COLUMNS).
fn load_a(m: u32, k: u32) -> f32 {
    if m >= dims.m || k >= k_end {
        return 0.0;
    }
    if TRANS_A {
        return a[k * dims.lda + m];
    }
    return a[m * dims.lda + k];
}

fn load_b(k: u32, n: u32) -> f32 {
    if k >= k_end || n >= dims.n {
        return 0.0;
    }
    if TRANS_B {
        return b[n * dims.ldb + k];
    }
    return b[k * dims.ldb + n];
}

// Writes C(m, n) = v through the epilogue; m < M and n < N.
fn finish(m: u32, n: u32, v: f32) {
    let idx = m * dims.ldc + n;
    if EPILOGUE == PARTIAL_SUMS {
        c[slice_base + idx] = v;
        return;
    }
    if n >= dims.n_real {
        if EPILOGUE != SGD {
            c[idx] = select(0.0, 1.0, n == dims.ones_col);
        }
        return;
    }
    switch EPILOGUE {
        case RELU: {
            c[idx] = max(v, 0.0);
        }
        case RELU_MASK: {
            c[idx] = select(0.0, v, aux[idx] > 0.0);
        }
        case SGD: {
            var g = v;
            if m < dims.decay_rows {
                g = v + dims.decay * c[idx];
            }
            c[idx] = c[idx] - dims.lr * g;
        }
        case GRAD: {
            var g = v;
            if m < dims.decay_rows {
                g = v + dims.decay * aux[idx];
            }
            c[idx] = g;
        }
        default: {
            c[idx] = v;
        }
    }
}

// Where element e (0..TILE·BK) of a step's operand tile is read from when
// the operand is read a float at a time: (k, m) of A's tile, (k, n) of B's.
// The index that is contiguous in memory varies fastest between
// neighbouring invocations.
fn a_spot(e: u32) -> vec2<u32> {
    if TRANS_A {
        return vec2<u32>(e / TILE, e % TILE);
    }
    return vec2<u32>(e % BK, e / BK);
}

fn b_spot(e: u32) -> vec2<u32> {
    if TRANS_B {
        return vec2<u32>(e % BK, e / BK);
    }
    return vec2<u32>(e / TILE, e % TILE);
}

// The vec4 number q of this invocation's share of a step's tile, read with
// one load where it lies whole inside the operand (a wide read), else a
// float at a time through the guards. Along K (A as stored, or B
// transposed) a vec4 is four steps of K of one row; along M or N, four
// rows of one step of K.
fn fetch_a(e: u32, m0: u32, k0: u32) -> vec4<f32> {
    var m: u32;
    var k: u32;
    if TRANS_A {
        k = k0 + e / VECS;
        m = m0 + 4u * (e % VECS);
        if k < k_end && m + 3u < dims.m {
            return a4[(k * dims.lda + m) / 4u];
        }
        return vec4<f32>(load_a(m, k), load_a(m + 1u, k), load_a(m + 2u, k), load_a(m + 3u, k));
    }
    m = m0 + e / 4u;
    k = k0 + 4u * (e % 4u);
    if m < dims.m && k + 3u < k_end {
        return a4[(m * dims.lda + k) / 4u];
    }
    return vec4<f32>(load_a(m, k), load_a(m, k + 1u), load_a(m, k + 2u), load_a(m, k + 3u));
}

fn fetch_b(e: u32, n0: u32, k0: u32) -> vec4<f32> {
    var n: u32;
    var k: u32;
    if TRANS_B {
        n = n0 + e / 4u;
        k = k0 + 4u * (e % 4u);
        if n < dims.n && k + 3u < k_end {
            return b4[(n * dims.ldb + k) / 4u];
        }
        return vec4<f32>(load_b(k, n), load_b(k + 1u, n), load_b(k + 2u, n), load_b(k + 3u, n));
    }
    k = k0 + e / VECS;
    n = n0 + 4u * (e % VECS);
    if k < k_end && n + 3u < dims.n {
        return b4[(k * dims.ldb + n) / 4u];
    }
    return vec4<f32>(load_b(k, n), load_b(k, n + 1u), load_b(k, n + 2u), load_b(k, n + 3u));
}

// Reads step k0 of K into this invocation's registers (next_a, next_b):
// FETCH vec4s of each operand tile, wide where the operand allows it.
fn fetch(li: u32, m0: u32, n0: u32, k0: u32) {
    // The column of im2col's matrix this invocation's staged values lie in.
    var own_col = own_column;
    if A_COLUMNS && !TRANS_A {
        own_col = column_at(columns(), k0 + li % BK);
    }
    for (var q = 0u; q < FETCH; q++) {
        let e = li + q * 256u;
        if WIDE_A && !A_COLUMNS {
            next_a[q] = fetch_a(e, m0, k0);
        } else if A_COLUMNS {
            for (var r = 0u; r < 4u; r++) {
                let i = 4u * q + r;
                let at = a_spot(li + i * 256u);
                next_a[q][r] = own_row_value(i, m0 + at.y, k0 + at.x, own_col);
                if TRANS_A {
                    own_rows[i] = advance(own_rows[i], rows_per_step);
                }
            }
        } else {
            for (var r = 0u; r < 4u; r++) {
                let at = a_spot(li + (4u * q + r) * 256u);
                next_a[q][r] = load_a(m0 + at.y, k0 + at.x);
            }
        }
        if WIDE_B {
            next_b[q] = fetch_b(e, n0, k0);
        } else {
            for (var r = 0u; r < 4u; r++) {
                let at = b_spot(li + (4u * q + r) * 256u);
                next_b[q][r] = load_b(k0 + at.x, n0 + at.y);
            }
        }
    }
}

// Writes what `fetch` read into the workgroup's tiles, each float where
// the multiply-add loop expects it. (A and B are written out apart: naga
// takes no pointer to workgroup memory as a function's argument.)
fn put(li: u32) {
    for (var q = 0u; q < FETCH; q++) {
        let e = li + q * 256u;
        if WIDE_A && !A_COLUMNS && TRANS_A {
            tile_a[(e / VECS) * ROW + e % VECS] = next_a[q];
        }
        if WIDE_A && !A_COLUMNS && !TRANS_A {
            let m = e / 4u;
            for (var r = 0u; r < 4u; r++) {
                tile_a[(4u * (e % 4u) + r) * ROW + m / 4u][m % 4u] = next_a[q][r];
            }
        }
        if !WIDE_A || A_COLUMNS {
            for (var r = 0u; r < 4u; r++) {
                let at = a_spot(li + (4u * q + r) * 256u);
                tile_a[at.x * ROW + at.y / 4u][at.y % 4u] = next_a[q][r];
            }
        }
        if WIDE_B && !TRANS_B {
            tile_b[(e / VECS) * ROW + e % VECS] = next_b[q];
        }
        if WIDE_B && TRANS_B {
            let n = e / 4u;
            for (var r = 0u; r < 4u; r++) {
                tile_b[(4u * (e % 4u) + r) * ROW + n / 4u][n % 4u] = next_b[q][r];
            }
        }
        if !WIDE_B {
            for (var r = 0u; r < 4u; r++) {
                let at = b_spot(li + (4u * q + r) * 256u);
                tile_b[at.x * ROW + at.y / 4u][at.y % 4u] = next_b[q][r];
            }
        }
    }
}

@compute @workgroup_size(16, 16)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let m0 = wg.y * TILE;
    let n0 = wg.x * TILE;
    let k_begin = wg.z * dims.k_slice;
    k_end = min(dims.k, k_begin + dims.k_slice);
    // A tile right of the last real column only writes padding: skip its
    // products (e.g. the 17th tile of 1028 columns in a hidden layer of 1024).
    if n0 >= dims.n_real {
        k_end = k_begin;
    }
    slice_base = wg.z * dims.m * dims.ldc;
    if A_COLUMNS && TRANS_A {
        own_column = column_at(columns(), m0 + a_spot(li).y);
        rows_per_step = column_position(columns(), BK);
        for (var i = 0u; i < LOADS; i++) {
            own_rows[i] = column_position(columns(), k_begin + a_spot(li + i * 256u).x);
        }
    }
    if A_COLUMNS && !TRANS_A {
        for (var i = 0u; i < LOADS; i++) {
            own_rows[i] = column_position(columns(), m0 + a_spot(li + i * 256u).y);
        }
    }
    // acc[(4·i + r)·QUADS + j]: row 4·(lid.y + 16·i) + r, columns
    // 4·(lid.x + 16·j) .. +3 of the tile.
    var acc: array<vec4<f32>, PER * QUADS>;

    // Each step's operands are read into registers while the step before
    // is multiplied, so a workgroup waits on memory once, not once a step.
    if k_begin < k_end {
        fetch(li, m0, n0, k_begin);
    }
    for (var k0 = k_begin; k0 < k_end; k0 += BK) {
        put(li);
        workgroupBarrier();
        if k0 + BK < k_end {
            fetch(li, m0, n0, k0 + BK);
        }
        for (var kk = 0u; kk < BK; kk++) {
            var av: array<vec4<f32>, QUADS>;
            var bv: array<vec4<f32>, QUADS>;
            for (var i = 0u; i < QUADS; i++) {
                av[i] = tile_a[kk * ROW + lid.y + 16u * i];
                bv[i] = tile_b[kk * ROW + lid.x + 16u * i];
            }
            for (var i = 0u; i < QUADS; i++) {
                for (var r = 0u; r < 4u; r++) {
                    let a_mr = vec4<f32>(av[i][r]);
                    for (var j = 0u; j < QUADS; j++) {
                        let at = (4u * i + r) * QUADS + j;
                        acc[at] = fma(a_mr, bv[j], acc[at]);
                    }
                }
            }
        }
        workgroupBarrier();
    }

    for (var i = 0u; i < QUADS; i++) {
        for (var r = 0u; r < 4u; r++) {
            let m = m0 + 4u * (lid.y + 16u * i) + r;
            if m >= dims.m {
                return;
            }
            for (var j = 0u; j < QUADS; j++) {
                for (var c = 0u; c < 4u; c++) {
                    let n = n0 + 4u * (lid.x + 16u * j) + c;
                    if n < dims.n {
                        finish(m, n, acc[(4u * i + r) * QUADS + j][c]);
                    }
                }
            }
        }
    }
}

// Split-K's second pass: C(m, n) = epilogue(Σ_z partial_z(m, n)), `a` holding
// the partial sums (slice z at z·M·ldc). The slices are added in the order
// z = 0, 1, ..., never with atomics, so a seed repeats a run bit for bit.
// They are read REDUCE_IN_FLIGHT at a time before any is added, so an
// invocation waits on memory once per group rather than once per slice
// (the order of the additions, and so the bits, are the same).
// One invocation per element of C; the grid is (N / REDUCE_WG, M).
// (REDUCE_WG is src/gpu/plan.rs's, given by the host; src/gpu/cost.rs prices
// REDUCE_IN_FLIGHT's waits with its own copy, which tests/translate.rs holds equal.)
override REDUCE_WG: u32;
const REDUCE_IN_FLIGHT: u32 = 4u;

@compute @workgroup_size(REDUCE_WG)
fn reduce(@builtin(global_invocation_id) gid: vec3<u32>) {
    let n = gid.x;
    let m = gid.y;
    if m >= dims.m || n >= dims.n {
        return;
    }
    let idx = m * dims.ldc + n;
    let stride = dims.m * dims.ldc;
    let slices = (dims.k + dims.k_slice - 1u) / dims.k_slice;
    var acc = a[idx];
    var z = 1u;
    for (; z + REDUCE_IN_FLIGHT <= slices; z += REDUCE_IN_FLIGHT) {
        var part: array<f32, REDUCE_IN_FLIGHT>;
        for (var i = 0u; i < REDUCE_IN_FLIGHT; i++) {
            part[i] = a[(z + i) * stride + idx];
        }
        for (var i = 0u; i < REDUCE_IN_FLIGHT; i++) {
            acc += part[i];
        }
    }
    for (; z < slices; z++) {
        acc += a[z * stride + idx];
    }
    finish(m, n, acc);
}
