// Matrix product for CPU-like adapters (lavapipe and other SIMD software
// drivers): C[M, N] = A(M, K) · B(K, N) with the same operand forms,
// augmentation and epilogues as matmul.wgsl (see there).
//
// A software driver runs the invocations of a workgroup as the lanes of SIMD
// registers. A load whose address is the same in every lane ("uniform") is one
// scalar load and a broadcast; any other load is a gather, lane by lane. So
// here the rows a workgroup computes come from the workgroup id alone: every
// A element is a uniform load, and each lane walks its own column of B with
// one gather per k, feeding ROWS multiply-adds. Invocations past the edge
// clamp their loads into range and skip the store, so no branch sits in the
// inner loop.

struct Dims {
    m: u32,
    n: u32,
    k: u32,
    a_cols: u32,
    b_cols: u32,
    lr: f32,
    _pad0: u32,
    _pad1: u32,
}

override TRANS_A: bool = false;
override TRANS_B: bool = false;
override AUG_A: bool = false;
override EPILOGUE: u32 = 0u;
// Lanes along N per workgroup.
override LANES: u32 = 64u;

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
@group(0) @binding(4) var<storage, read> aux: array<f32>;

const ROWS: u32 = 8u;

// A(m, k) for an in-range m (the caller clamps).
fn load_a(m: u32, k: u32) -> f32 {
    var row = m;
    var col = k;
    if TRANS_A {
        row = k;
        col = m;
    }
    if AUG_A && col == dims.a_cols {
        return 1.0;
    }
    return a[row * dims.a_cols + col];
}

fn load_b(k: u32, n: u32) -> f32 {
    if TRANS_B {
        return b[n * dims.b_cols + k];
    }
    return b[k * dims.b_cols + n];
}

@compute @workgroup_size(LANES)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let m0 = wg.y * ROWS;
    let n = wg.x * LANES + lid.x;
    let nc = min(n, dims.n - 1u);
    let last = dims.m - 1u;
    var rows: array<u32, ROWS>;
    for (var r = 0u; r < ROWS; r++) {
        rows[r] = min(m0 + r, last);
    }
    var acc: array<f32, ROWS>;
    for (var k = 0u; k < dims.k; k++) {
        let bv = load_b(k, nc);
        for (var r = 0u; r < ROWS; r++) {
            acc[r] = fma(load_a(rows[r], k), bv, acc[r]);
        }
    }
    if n >= dims.n {
        return;
    }
    for (var r = 0u; r < ROWS; r++) {
        let m = m0 + r;
        if m >= dims.m {
            break;
        }
        let v = acc[r];
        let idx = m * dims.n + n;
        switch EPILOGUE {
            case 1u: {
                c[idx] = max(v, 0.0);
            }
            case 2u: {
                c[idx] = select(0.0, v, aux[idx] > 0.0);
            }
            case 3u: {
                c[idx] = c[idx] - dims.lr * v;
            }
            default: {
                c[idx] = v;
            }
        }
    }
}
