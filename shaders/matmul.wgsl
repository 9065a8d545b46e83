// What both matrix products share (shaders/matmul/tiled.wgsl, for GPUs, and
// shaders/matmul/vec4.wgsl, for CPU-like adapters): the contract
//
//   C[M, N] = epilogue(op(A)(M, K) · op(B)(K, N)), stored with row strides
//   lda, ldb, ldc, where
//   A(m, k) = TRANS_A ? a[k * lda + m] : a[m * lda + k]
//   B(k, n) = TRANS_B ? b[n * ldb + k] : b[k * ldb + n]
//
// its uniform, and the epilogue codes. The network's matrices carry a column
// of ones after their last real column and zero padding after that (see
// src/gpu/layout.rs), so the bias add and the bias gradient are part of the
// product and need no code here. Columns n >= n_real of C are padding:
// written as 1.0 at n == ones_col and 0.0 elsewhere (the SGD epilogue leaves
// them alone). src/gpu/kernels/matmul/ compiles this file, then a kernel's,
// then that kernel's variant (see tiled_source, vec4_source).

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
    // when the product is not split (the vec4 kernel's is a multiple of 4).
    k_slice: u32,
    // The tiled kernel with A_COLUMNS: the slide whose im2col matrix A is,
    // over the images in `a` (shaders/lib/columns.wgsl's Columns, field for
    // field; col_ones 1 or 0). Zero otherwise, and never read.
    col_n: u32,
    col_c: u32,
    col_h: u32,
    col_w: u32,
    col_fh: u32,
    col_fw: u32,
    col_stride: u32,
    col_pad: u32,
    col_out_h: u32,
    col_out_w: u32,
    col_layout: u32,
    col_x_stride: u32,
    col_ones: u32,
}

override TRANS_A: bool = false;
override TRANS_B: bool = false;
// What the product does with each element: one of the codes below, which
// are the Rust `Epilogue`'s values and `PARTIAL_SUMS` (src/gpu/kernels/
// matmul/contract.rs; tests/contracts.rs holds the two sides equal). λ applies to
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
