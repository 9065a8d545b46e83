// Matrix product for CPU-like adapters (lavapipe and other SIMD software
// drivers), with the contract of shaders/matmul.wgsl (compiled before it:
// operand forms, strides, padding columns, epilogues and split-K), plus:
// lda, ldb, ldc, N and K are multiples of 4, and so is M when TRANS_A.
//
// Why a second kernel: a software driver runs a workgroup's invocations as
// the lanes of SIMD registers, and every load from a buffer or from
// workgroup memory whose address is computed becomes a loop over the lanes.
// What is cheap is arithmetic on values already in registers. So here there
// is no workgroup memory; each invocation loads vec4s (four floats for one
// trip through that loop, or one texel: see vec4/textures.wgsl) and keeps
// a 12×16 tile of C in registers: per four steps of K, 28 vec4 loads feed
// 768 multiply-adds, written as mat4x4 × vec4 products. On 2 cores this
// measured about 4× the tiled kernel reading buffers, about 10× reading
// textures. Edges clamp their loads into range and
// guard their stores; nothing in the K loop branches.

// The SIMD lanes are the invocations along x. Normally x walks N; for narrow
// products (N = 12 or 52 here) x walks M instead and the workgroup is only as
// tall as N needs, so no lane computes columns that are not there.
override X_ALONG_M: bool = false;
override WG_Y: u32 = 8u;

// Bindings 1 and 2, the operands A and B, and a_at(i) / b_at(i), the i-th
// vec4 of each as stored, come from one of shaders/matmul/vec4/*.wgsl
// (buffers, or textures on lavapipe: see there), compiled after this file.
@group(0) @binding(3) var<storage, read_write> c: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> aux: array<vec4<f32>>;

// Tile of C per invocation: TM rows × 16 columns (four blocks of 4). TM = 12
// (three blocks of rows) gives the most multiply-adds per load that fit in
// registers (8×16 and 16×16 measured slower on lavapipe); TM = 8 wastes less
// on short products (a batch of 100 rows). The code below is written for 12
// rows; with TM = 8 the last four fold away.
override TM: u32 = 12u;
const TN: u32 = 16u;
// K goes in blocks of 4·K_BLOCK4 (set by the operand bindings compiled
// after this file) with a workgroup barrier after each, or in one block without a
// barrier when K_BLOCK4 is NO_K_BLOCKS. Why: lavapipe runs a workgroup's
// rows of invocations one after another, each through its whole K loop
// unless a barrier makes them take turns. At K = 8192 each row would stream
// its own pass over a 4 MB panel of B, out of the CPU's caches; taking turns
// per block of 256 keeps the block (128 KB) in cache for all eight rows.
// Reading textures this measured 30 GFLOP/s against 21 at 785 × 1024 × 8192
// (Aᵀ·B, unsplit), and a little faster at K = 785. Reading buffers, the
// barrier cost more than it saved (8192 × 1024 × 785: 15.8 GFLOP/s against
// 21.4), so buffers.wgsl sets NO_K_BLOCKS and the barrier folds away.
// Either way the multiply-adds per element keep their order: the same bits.
const NO_K_BLOCKS: u32 = 1u << 28u;

// PARTIAL_SUMS (split-K's first pass): where this slice starts in C.
var<private> slice_base: u32;

// Writes C(m, n..n+4) = v through the epilogue (n is a multiple of 4, so
// this is one vec4 of C), applying the padding rule per column.
fn finish4(m: u32, n: u32, v: vec4<f32>) {
    if m >= dims.m || n >= dims.n {
        return;
    }
    let idx = (m * dims.ldc + n) / 4u;
    if EPILOGUE == PARTIAL_SUMS {
        c[slice_base / 4u + idx] = v;
        return;
    }
    let col = vec4<u32>(n, n + 1u, n + 2u, n + 3u);
    let real = col < vec4<u32>(dims.n_real);
    let pad = select(vec4<f32>(0.0), vec4<f32>(1.0), col == vec4<u32>(dims.ones_col));
    switch EPILOGUE {
        case RELU: {
            c[idx] = select(pad, max(v, vec4<f32>(0.0)), real);
        }
        case RELU_MASK: {
            c[idx] = select(pad, select(vec4<f32>(0.0), v, aux[idx] > vec4<f32>(0.0)), real);
        }
        case SGD: {
            let old = c[idx];
            var g = v;
            if m < dims.decay_rows {
                g = v + dims.decay * old;
            }
            c[idx] = select(old, old - dims.lr * g, real);
        }
        case GRAD: {
            var g = v;
            if m < dims.decay_rows {
                g = v + dims.decay * aux[idx];
            }
            c[idx] = select(pad, g, real);
        }
        default: {
            c[idx] = select(pad, v, real);
        }
    }
}

// Row i of the A block (rows m0..m0+12, k4-th group of four k) as a vec4 over k.
struct ABlock {
    r0: vec4<f32>, r1: vec4<f32>, r2: vec4<f32>, r3: vec4<f32>,
    r4: vec4<f32>, r5: vec4<f32>, r6: vec4<f32>, r7: vec4<f32>,
    r8: vec4<f32>, r9: vec4<f32>, r10: vec4<f32>, r11: vec4<f32>,
}

fn load_a(m0: u32, k4: u32) -> ABlock {
    let lda4 = dims.lda / 4u;
    if TRANS_A {
        // Stored (K, M): read four k-rows of vec4 over m per block of four
        // rows, then transpose.
        let last = dims.m / 4u - 1u;
        let k = k4 * 4u;
        let mb0 = min(m0 / 4u, last);
        let mb1 = min(m0 / 4u + 1u, last);
        let t0 = transpose(mat4x4<f32>(a_at(k * lda4 + mb0), a_at((k + 1u) * lda4 + mb0), a_at((k + 2u) * lda4 + mb0), a_at((k + 3u) * lda4 + mb0)));
        let t1 = transpose(mat4x4<f32>(a_at(k * lda4 + mb1), a_at((k + 1u) * lda4 + mb1), a_at((k + 2u) * lda4 + mb1), a_at((k + 3u) * lda4 + mb1)));
        var t2 = mat4x4<f32>();
        if TM > 8u {
            let mb2 = min(m0 / 4u + 2u, last);
            t2 = transpose(mat4x4<f32>(a_at(k * lda4 + mb2), a_at((k + 1u) * lda4 + mb2), a_at((k + 2u) * lda4 + mb2), a_at((k + 3u) * lda4 + mb2)));
        }
        return ABlock(t0[0], t0[1], t0[2], t0[3], t1[0], t1[1], t1[2], t1[3], t2[0], t2[1], t2[2], t2[3]);
    }
    let last = dims.m - 1u;
    var r = ABlock(
        a_at(min(m0, last) * lda4 + k4), a_at(min(m0 + 1u, last) * lda4 + k4),
        a_at(min(m0 + 2u, last) * lda4 + k4), a_at(min(m0 + 3u, last) * lda4 + k4),
        a_at(min(m0 + 4u, last) * lda4 + k4), a_at(min(m0 + 5u, last) * lda4 + k4),
        a_at(min(m0 + 6u, last) * lda4 + k4), a_at(min(m0 + 7u, last) * lda4 + k4),
        vec4<f32>(), vec4<f32>(), vec4<f32>(), vec4<f32>(),
    );
    if TM > 8u {
        r.r8 = a_at(min(m0 + 8u, last) * lda4 + k4);
        r.r9 = a_at(min(m0 + 9u, last) * lda4 + k4);
        r.r10 = a_at(min(m0 + 10u, last) * lda4 + k4);
        r.r11 = a_at(min(m0 + 11u, last) * lda4 + k4);
    }
    return r;
}

// B(k4*4 .. +4, nb*4 .. +4) as a matrix whose column j is B's row k4*4 + j.
fn load_b(k4: u32, nb: u32) -> mat4x4<f32> {
    let ldb4 = dims.ldb / 4u;
    let nbc = min(nb, dims.n / 4u - 1u);
    if TRANS_B {
        // Stored (N, K): four n-rows of vec4 over k.
        let n = nbc * 4u;
        return transpose(mat4x4<f32>(b_at(n * ldb4 + k4), b_at((n + 1u) * ldb4 + k4), b_at((n + 2u) * ldb4 + k4), b_at((n + 3u) * ldb4 + k4)));
    }
    let k = k4 * 4u;
    return mat4x4<f32>(b_at(k * ldb4 + nbc), b_at((k + 1u) * ldb4 + nbc), b_at((k + 2u) * ldb4 + nbc), b_at((k + 3u) * ldb4 + nbc));
}

@compute @workgroup_size(8, WG_Y)
fn main(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(workgroup_id) wg: vec3<u32>,
) {
    var m0 = gid.y * TM;
    var n0 = gid.x * TN;
    if X_ALONG_M {
        m0 = gid.x * TM;
        n0 = gid.y * TN;
    }
    let nb = n0 / 4u;
    // From workgroup_id, not global_invocation_id: a driver that runs a
    // workgroup's invocations as SIMD lanes then knows the K loop's bounds
    // are the same in every lane (measured 3× slower otherwise on lavapipe).
    let k_begin = wg.z * dims.k_slice;
    let k4_end = min(dims.k, k_begin + dims.k_slice) / 4u;
    slice_base = wg.z * dims.m * dims.ldc;
    // c<row>_<column block>
    var c0_0 = vec4<f32>(); var c0_1 = vec4<f32>(); var c0_2 = vec4<f32>(); var c0_3 = vec4<f32>();
    var c1_0 = vec4<f32>(); var c1_1 = vec4<f32>(); var c1_2 = vec4<f32>(); var c1_3 = vec4<f32>();
    var c2_0 = vec4<f32>(); var c2_1 = vec4<f32>(); var c2_2 = vec4<f32>(); var c2_3 = vec4<f32>();
    var c3_0 = vec4<f32>(); var c3_1 = vec4<f32>(); var c3_2 = vec4<f32>(); var c3_3 = vec4<f32>();
    var c4_0 = vec4<f32>(); var c4_1 = vec4<f32>(); var c4_2 = vec4<f32>(); var c4_3 = vec4<f32>();
    var c5_0 = vec4<f32>(); var c5_1 = vec4<f32>(); var c5_2 = vec4<f32>(); var c5_3 = vec4<f32>();
    var c6_0 = vec4<f32>(); var c6_1 = vec4<f32>(); var c6_2 = vec4<f32>(); var c6_3 = vec4<f32>();
    var c7_0 = vec4<f32>(); var c7_1 = vec4<f32>(); var c7_2 = vec4<f32>(); var c7_3 = vec4<f32>();
    var c8_0 = vec4<f32>(); var c8_1 = vec4<f32>(); var c8_2 = vec4<f32>(); var c8_3 = vec4<f32>();
    var c9_0 = vec4<f32>(); var c9_1 = vec4<f32>(); var c9_2 = vec4<f32>(); var c9_3 = vec4<f32>();
    var c10_0 = vec4<f32>(); var c10_1 = vec4<f32>(); var c10_2 = vec4<f32>(); var c10_3 = vec4<f32>();
    var c11_0 = vec4<f32>(); var c11_1 = vec4<f32>(); var c11_2 = vec4<f32>(); var c11_3 = vec4<f32>();
    // A tile wholly below the last row or right of the last real column
    // only writes padding (or nothing): skip its products. (The grid is
    // rounded up to whole workgroups; this makes the rounding nearly free,
    // e.g. the 129th of 1028 columns in a hidden layer of 1024.)
    let skip = m0 >= dims.m || n0 >= dims.n_real;
    for (var kb = k_begin / 4u; kb < k4_end; kb += K_BLOCK4) {
        let k4_stop = select(min(kb + K_BLOCK4, k4_end), kb, skip);
        for (var k4 = kb; k4 < k4_stop; k4++) {
            let ar = load_a(m0, k4);
            let b0 = load_b(k4, nb);
            let b1 = load_b(k4, nb + 1u);
            let b2 = load_b(k4, nb + 2u);
            let b3 = load_b(k4, nb + 3u);
            // c_i_j += Σ_k A(m0+i, k) · B(k, block j): matrix × vector.
            c0_0 += b0 * ar.r0; c0_1 += b1 * ar.r0; c0_2 += b2 * ar.r0; c0_3 += b3 * ar.r0;
            c1_0 += b0 * ar.r1; c1_1 += b1 * ar.r1; c1_2 += b2 * ar.r1; c1_3 += b3 * ar.r1;
            c2_0 += b0 * ar.r2; c2_1 += b1 * ar.r2; c2_2 += b2 * ar.r2; c2_3 += b3 * ar.r2;
            c3_0 += b0 * ar.r3; c3_1 += b1 * ar.r3; c3_2 += b2 * ar.r3; c3_3 += b3 * ar.r3;
            c4_0 += b0 * ar.r4; c4_1 += b1 * ar.r4; c4_2 += b2 * ar.r4; c4_3 += b3 * ar.r4;
            c5_0 += b0 * ar.r5; c5_1 += b1 * ar.r5; c5_2 += b2 * ar.r5; c5_3 += b3 * ar.r5;
            c6_0 += b0 * ar.r6; c6_1 += b1 * ar.r6; c6_2 += b2 * ar.r6; c6_3 += b3 * ar.r6;
            c7_0 += b0 * ar.r7; c7_1 += b1 * ar.r7; c7_2 += b2 * ar.r7; c7_3 += b3 * ar.r7;
            if TM > 8u { c8_0 += b0 * ar.r8; c8_1 += b1 * ar.r8; c8_2 += b2 * ar.r8; c8_3 += b3 * ar.r8; }
            if TM > 8u { c9_0 += b0 * ar.r9; c9_1 += b1 * ar.r9; c9_2 += b2 * ar.r9; c9_3 += b3 * ar.r9; }
            if TM > 8u { c10_0 += b0 * ar.r10; c10_1 += b1 * ar.r10; c10_2 += b2 * ar.r10; c10_3 += b3 * ar.r10; }
            if TM > 8u { c11_0 += b0 * ar.r11; c11_1 += b1 * ar.r11; c11_2 += b2 * ar.r11; c11_3 += b3 * ar.r11; }
        }
        if K_BLOCK4 != NO_K_BLOCKS {
            workgroupBarrier();
        }
    }
    finish4(m0, n0, c0_0); finish4(m0, n0 + 4u, c0_1); finish4(m0, n0 + 8u, c0_2); finish4(m0, n0 + 12u, c0_3);
    finish4(m0 + 1u, n0, c1_0); finish4(m0 + 1u, n0 + 4u, c1_1); finish4(m0 + 1u, n0 + 8u, c1_2); finish4(m0 + 1u, n0 + 12u, c1_3);
    finish4(m0 + 2u, n0, c2_0); finish4(m0 + 2u, n0 + 4u, c2_1); finish4(m0 + 2u, n0 + 8u, c2_2); finish4(m0 + 2u, n0 + 12u, c2_3);
    finish4(m0 + 3u, n0, c3_0); finish4(m0 + 3u, n0 + 4u, c3_1); finish4(m0 + 3u, n0 + 8u, c3_2); finish4(m0 + 3u, n0 + 12u, c3_3);
    finish4(m0 + 4u, n0, c4_0); finish4(m0 + 4u, n0 + 4u, c4_1); finish4(m0 + 4u, n0 + 8u, c4_2); finish4(m0 + 4u, n0 + 12u, c4_3);
    finish4(m0 + 5u, n0, c5_0); finish4(m0 + 5u, n0 + 4u, c5_1); finish4(m0 + 5u, n0 + 8u, c5_2); finish4(m0 + 5u, n0 + 12u, c5_3);
    finish4(m0 + 6u, n0, c6_0); finish4(m0 + 6u, n0 + 4u, c6_1); finish4(m0 + 6u, n0 + 8u, c6_2); finish4(m0 + 6u, n0 + 12u, c6_3);
    finish4(m0 + 7u, n0, c7_0); finish4(m0 + 7u, n0 + 4u, c7_1); finish4(m0 + 7u, n0 + 8u, c7_2); finish4(m0 + 7u, n0 + 12u, c7_3);
    if TM > 8u { finish4(m0 + 8u, n0, c8_0); finish4(m0 + 8u, n0 + 4u, c8_1); finish4(m0 + 8u, n0 + 8u, c8_2); finish4(m0 + 8u, n0 + 12u, c8_3); }
    if TM > 8u { finish4(m0 + 9u, n0, c9_0); finish4(m0 + 9u, n0 + 4u, c9_1); finish4(m0 + 9u, n0 + 8u, c9_2); finish4(m0 + 9u, n0 + 12u, c9_3); }
    if TM > 8u { finish4(m0 + 10u, n0, c10_0); finish4(m0 + 10u, n0 + 4u, c10_1); finish4(m0 + 10u, n0 + 8u, c10_2); finish4(m0 + 10u, n0 + 12u, c10_3); }
    if TM > 8u { finish4(m0 + 11u, n0, c11_0); finish4(m0 + 11u, n0 + 4u, c11_1); finish4(m0 + 11u, n0 + 8u, c11_2); finish4(m0 + 11u, n0 + 12u, c11_3); }
}
