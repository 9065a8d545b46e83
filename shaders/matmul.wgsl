// Tiled matrix product with a fused epilogue, for GPUs:
// C[M, N] = A(M, K) · B(K, N), stored with row strides lda, ldb, ldc:
//
//   A(m, k) = TRANS_A ? a[k * lda + m] : a[m * lda + k]
//   B(k, n) = TRANS_B ? b[n * ldb + k] : b[k * ldb + n]
//
// The network's matrices carry a column of ones after their last real column
// and zero padding after that (see src/gpu/layout.rs), so the bias add and
// the bias gradient are part of the product and need no code here. Columns
// n >= n_real of C are padding: written as 1.0 at n == ones_col and 0.0
// elsewhere (the SGD epilogue leaves them alone).
//
// Each workgroup computes a 64×64 tile of C, each invocation a 4×4 register
// tile, stepping through K 16 at a time with both operand tiles staged in
// workgroup memory. Edges are guarded where tiles are loaded and stored, never
// inside the unrolled multiply-add loop, so any shape is correct.

struct Dims {
    m: u32,
    n: u32,
    k: u32,
    lda: u32,
    ldb: u32,
    ldc: u32,
    n_real: u32,
    ones_col: u32,
    lr: f32,
    // Weight decay: λ, applied to rows m < decay_rows (the weights, not the bias row).
    decay: f32,
    decay_rows: u32,
    // Split-K: workgroup z sums k in [z·k_slice, (z+1)·k_slice); k_slice >= k
    // when the product is not split.
    k_slice: u32,
}

override TRANS_A: bool = false;
override TRANS_B: bool = false;
// What the product does with each element: one of the codes below, which
// are the Rust `Epilogue`'s values and `PARTIAL_SUMS` (src/gpu/kernels/
// matmul.rs; tests/contracts.rs holds the two sides equal). λ applies to
// rows m < decay_rows only.
override EPILOGUE: u32 = 0u;
// C = acc
const STORE: u32 = 0u;
// C = max(acc, 0): Relu.
const RELU: u32 = 1u;
// C = acc where aux > 0, else 0: Relu backward, aux holding the layer's
// output, same layout as C.
const RELU_MASK: u32 = 2u;
// C -= lr · (acc + λ·C): SGD, C being the weights.
const SGD: u32 = 3u;
// C = acc + λ·aux: a gradient with weight decay, aux holding the weights.
const GRAD: u32 = 4u;
// Not an epilogue: split-K's first pass, the raw sums of workgroup z's
// slice of K into slice z of C (at z·M·ldc), every column; the `reduce`
// entry point then adds the slices and applies the product's epilogue once.
const PARTIAL_SUMS: u32 = 5u;

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
@group(0) @binding(4) var<storage, read> aux: array<f32>;

const BM: u32 = 64u;
const BN: u32 = 64u;
const BK: u32 = 16u;

// Tiles stored k-major as vec4 along m / n, so one invocation reads its four
// rows (or columns) of a k-slice with a single load.
var<workgroup> tile_a: array<vec4<f32>, 256>; // [BK][BM / 4]
var<workgroup> tile_b: array<vec4<f32>, 256>; // [BK][BN / 4]

// The end of this workgroup's slice of K, and (PARTIAL_SUMS) where its slice of
// partial sums starts in C.
var<private> k_end: u32;
var<private> slice_base: u32;

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

@compute @workgroup_size(16, 16)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let m0 = wg.y * BM;
    let n0 = wg.x * BN;
    let k_begin = wg.z * dims.k_slice;
    k_end = min(dims.k, k_begin + dims.k_slice);
    // A tile right of the last real column only writes padding: skip its
    // products (e.g. the 17th tile of 1028 columns in a hidden layer of 1024).
    if n0 >= dims.n_real {
        k_end = k_begin;
    }
    slice_base = wg.z * dims.m * dims.ldc;
    var acc: array<vec4<f32>, 4>;

    for (var k0 = k_begin; k0 < k_end; k0 += BK) {
        // 256 invocations stage 1024 elements of each tile, four each. The
        // index that is contiguous in memory varies fastest between
        // neighbouring invocations.
        for (var r = 0u; r < 4u; r++) {
            let e = li + r * 256u;
            var ka: u32;
            var ma: u32;
            if TRANS_A {
                ka = e / BM;
                ma = e % BM;
            } else {
                ka = e % BK;
                ma = e / BK;
            }
            tile_a[ka * 16u + ma / 4u][ma % 4u] = load_a(m0 + ma, k0 + ka);
            var kb: u32;
            var nb: u32;
            if TRANS_B {
                kb = e % BK;
                nb = e / BK;
            } else {
                kb = e / BN;
                nb = e % BN;
            }
            tile_b[kb * 16u + nb / 4u][nb % 4u] = load_b(k0 + kb, n0 + nb);
        }
        workgroupBarrier();
        for (var kk = 0u; kk < BK; kk++) {
            let av = tile_a[kk * 16u + lid.y];
            let bv = tile_b[kk * 16u + lid.x];
            acc[0] = fma(vec4<f32>(av.x), bv, acc[0]);
            acc[1] = fma(vec4<f32>(av.y), bv, acc[1]);
            acc[2] = fma(vec4<f32>(av.z), bv, acc[2]);
            acc[3] = fma(vec4<f32>(av.w), bv, acc[3]);
        }
        workgroupBarrier();
    }

    for (var i = 0u; i < 4u; i++) {
        let m = m0 + lid.y * 4u + i;
        if m >= dims.m {
            break;
        }
        for (var j = 0u; j < 4u; j++) {
            let n = n0 + lid.x * 4u + j;
            if n >= dims.n {
                break;
            }
            finish(m, n, acc[i][j]);
        }
    }
}

// Split-K's second pass: C(m, n) = epilogue(Σ_z partial_z(m, n)), `a` holding
// the partial sums (slice z at z·M·ldc). The slices are added in the order
// z = 0, 1, ..., never with atomics, so a seed repeats a run bit for bit.
// One invocation per element of C; the grid is (N / 64, M).
@compute @workgroup_size(64)
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
    for (var z = 1u; z < slices; z++) {
        acc += a[z * stride + idx];
    }
    finish(m, n, acc);
}
