//! Every WGSL kernel against the CPU reference on awkward shapes.
//!
//! Tolerance: `|gpu - cpu| <= atol + rtol·|cpu|` for every element, with
//! rtol = 1e-5 and, for a product of reduction length K,
//! atol = K·ε32·max_ij(|A|·|B|)_ij — the classic bound on f32 rounding in a
//! length-K dot product, scaled to the inputs' magnitude.

mod common;

use gpu_net::core::compare::{EPS_F32, Tolerance, diff};
use gpu_net::cpu::matmul::matmul;
use gpu_net::cpu::net::correct_count;
use gpu_net::cpu::{Labels, SoftmaxWithLoss as CpuSoftmax};
use gpu_net::gpu::GpuContext;
use gpu_net::gpu::kernels::gather::pack_u8;
use gpu_net::gpu::kernels::{
    Epilogue, Gather, GatherCall, Matmul, MatmulAlgo, MatmulCall, MatmulShape, MatmulVariant,
    Slice, SoftmaxCall, SoftmaxWithLoss, SplitK, Stats, Tile,
};

const RTOL: f64 = 1e-5;

/// One product: C[m, n] = Σ_k A(m, k)·B(k, n) over the real sizes, run as
/// the network runs it: K and N padded to multiples of 4 with zeros (and M
/// too when A is stored transposed), padding columns of C filled by the
/// epilogue's rule.
#[derive(Clone, Copy, Debug)]
struct MatmulCase {
    v: MatmulVariant,
    m: usize,
    n: usize,
    k: usize,
    ones_col: bool,
    /// Weight decay 0.25 on the first half of the rows (SGD and Grad epilogues).
    decay: bool,
    split: SplitK,
    layout: Layout,
}

/// How a case stores its operands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layout {
    /// K and N (and M when A is stored transposed) padded with zeros to
    /// multiples of 4, as the network stores them.
    Padded,
    /// Every size and stride as the shape has it: the tiled kernel reads
    /// A and B a float at a time.
    Tight,
    /// Sizes as the shape has them, strides rounded up to multiples of 4:
    /// the tiled kernel reads vec4s, and a float at a time where a vec4
    /// would reach past K, M or N.
    Strides4,
}

const DECAY: f32 = 0.25;

fn up4(x: usize) -> usize {
    x.next_multiple_of(4)
}

/// One case's results: C from the GPU, C from the CPU in f64, the
/// tolerance, and the slices K was split into.
struct MatmulRun {
    gpu: Vec<f64>,
    cpu: Vec<f64>,
    tol: Tolerance,
    split_k: u32,
    /// Operands copied into textures before the product.
    staged: usize,
}

/// Runs one case on the GPU and the CPU, over all of C.
fn run_matmul(ctx: &GpuContext, mm: &Matmul, c: &MatmulCase, seed: u64) -> MatmulRun {
    let MatmulCase {
        v,
        m,
        n,
        k,
        ones_col,
        decay,
        split,
        layout,
    } = *c;
    let pad = |x: usize| if layout == Layout::Padded { up4(x) } else { x };
    let (decay, decay_rows) = if decay {
        (DECAY, m.div_ceil(2))
    } else {
        (0.0, 0)
    };
    let big_m = if v.trans_a { pad(m) } else { m };
    let big_k = pad(k);
    let big_n = pad(n + ones_col as usize);
    // Logical operands, zero outside the real sizes.
    let a_vals = common::random_f32(m * k, seed);
    let b_vals = common::random_f32(k * n, seed + 1);
    let a = |i: usize, p: usize| {
        if i < m && p < k {
            a_vals[i * k + p]
        } else {
            0.0
        }
    };
    let b = |p: usize, j: usize| {
        if p < k && j < n {
            b_vals[p * n + j]
        } else {
            0.0
        }
    };
    // A matrix of `rows` × `cols` stored `ld` apart, NaN in the gap
    // between a row's end and the next row's start: a kernel that reads
    // past K there puts NaN in C.
    let ld = |cols: usize| {
        if layout == Layout::Strides4 {
            up4(cols)
        } else {
            cols
        }
    };
    let store = |rows: usize, cols: usize, f: &dyn Fn(usize, usize) -> f32| -> (usize, Vec<f32>) {
        let ld = ld(cols);
        let at = |e: usize| {
            if e % ld < cols {
                f(e / ld, e % ld)
            } else {
                f32::NAN
            }
        };
        (ld, (0..rows * ld).map(at).collect())
    };
    let (lda, a_store) = if v.trans_a {
        store(big_k, big_m, &|r, c| a(c, r))
    } else {
        store(big_m, big_k, &|r, c| a(r, c))
    };
    let (ldb, b_store) = if v.trans_b {
        store(big_n, big_k, &|r, c| b(c, r))
    } else {
        store(big_k, big_n, &|r, c| b(r, c))
    };
    let c0 = common::random_f32(big_m * big_n, seed + 2);
    let aux = common::random_f32(big_m * big_n, seed + 3);
    let lr = 0.375f32;
    let shape = MatmulShape {
        m: big_m,
        n: big_n,
        k: big_k,
        lda,
        ldb,
        ldc: big_n,
        n_real: n,
        ones_col: ones_col.then_some(n),
        lr,
        decay,
        decay_rows,
    };
    // Every operand sits between NaN poison, C between guard values: the
    // tiled kernel runs without the runtime's bounds checks, so a guard
    // that let it read past an operand would read NaN into C, and one that
    // let it write past C would change a guard.
    let at = ctx.limits.min_storage_buffer_offset_alignment as usize / 4;
    let poisoned = |v: &[f32]| [vec![f32::NAN; at], v.to_vec(), vec![f32::NAN; at]].concat();
    let (a_buf, b_buf) = (
        ctx.storage_init("a", &poisoned(&a_store)),
        ctx.storage_init("b", &poisoned(&b_store)),
    );
    let guard = 4 * big_n;
    let c_init = [vec![-7.0f32; at], c0.clone(), vec![-7.0f32; guard]].concat();
    let (c_buf, aux_buf) = (
        ctx.storage_init("c", &c_init),
        ctx.storage_init("aux", &poisoned(&aux)),
    );
    let call = MatmulCall {
        label: "test matmul".into(),
        v,
        shape,
        a: Slice::new(&a_buf, at, a_store.len()),
        b: Slice::new(&b_buf, at, b_store.len()),
        c: Slice::new(&c_buf, at, big_m * big_n),
        aux: matches!(v.epilogue, Epilogue::ReluMask | Epilogue::Grad)
            .then(|| Slice::new(&aux_buf, at, big_m * big_n)),
        columns: None,
    };
    let d = mm.bind_split(ctx, call, split).unwrap();
    ctx.run(&[&d]).unwrap();
    let gpu = common::widen(&ctx.read_f32(&c_buf, at, big_m * big_n, "c").unwrap());
    let before = ctx.read_f32(&c_buf, 0, at, "guard before C").unwrap();
    let past = ctx
        .read_f32(&c_buf, at + big_m * big_n, guard, "guard rows")
        .unwrap();
    assert!(
        before.iter().chain(&past).all(|&v| v == -7.0),
        "{c:?} wrote outside C"
    );

    let a64: Vec<f64> = (0..big_m * k).map(|e| a(e / k, e % k) as f64).collect();
    let b64: Vec<f64> = (0..k * big_n)
        .map(|e| b(e / big_n, e % big_n) as f64)
        .collect();
    let mut acc = vec![0.0; big_m * big_n];
    matmul(&mut acc, &a64, &b64, big_m, k, big_n);
    let abs = |x: &[f64]| x.iter().map(|v| v.abs()).collect::<Vec<_>>();
    let mut bound = vec![0.0; big_m * big_n];
    matmul(&mut bound, &abs(&a64), &abs(&b64), big_m, k, big_n);
    let scale = bound.iter().fold(0.0f64, |x, &y| x.max(y));
    let mut atol = k as f64 * EPS_F32 * scale;
    let cpu: Vec<f64> = acc
        .iter()
        .enumerate()
        .map(|(i, &s)| {
            let (row, col) = (i / big_n, i % big_n);
            let decayed = if row < decay_rows { decay as f64 } else { 0.0 };
            if col >= n {
                // Padding: the ones column, zeros, or (SGD) left alone.
                return match v.epilogue {
                    Epilogue::Sgd => c0[i] as f64,
                    _ if ones_col && col == n => 1.0,
                    _ => 0.0,
                };
            }
            match v.epilogue {
                Epilogue::Store => s,
                Epilogue::Relu => s.max(0.0),
                Epilogue::ReluMask => {
                    if aux[i] > 0.0 {
                        s
                    } else {
                        0.0
                    }
                }
                Epilogue::Sgd => c0[i] as f64 - lr as f64 * (s + decayed * c0[i] as f64),
                Epilogue::Grad => s + decayed * aux[i] as f64,
            }
        })
        .collect();
    // The decay term adds one rounded product and sum (values are in [-1, 1)).
    atol += 2.0 * EPS_F32 * decay as f64;
    if v.epilogue == Epilogue::Sgd {
        atol *= lr as f64;
    }
    MatmulRun {
        gpu,
        cpu,
        tol: Tolerance { atol, rtol: RTOL },
        split_k: d.split_k(),
        staged: d.copies.len(),
    }
}

const SHAPES: &[(usize, usize, usize)] = &[
    (1, 1, 1),
    (3, 17, 33),
    (17, 3, 127),
    (33, 127, 3),
    (127, 33, 17),
    (784, 17, 3),
    (3, 784, 33),
    (127, 127, 784),
    (33, 10, 784),
    (64, 64, 64),
    (65, 63, 17),
    (100, 50, 785),
    (1000, 10, 51),
    (200, 300, 129),
    (333, 148, 17), // the vec4 kernel's lanes along M, 12 high (plan::Vec4Shape)
    (450, 300, 5),  // and 20 high
    (8192, 17, 33),
];

/// The forms a training step uses, and the two plain ones: (variant, ones
/// column, weight decay).
fn variants() -> Vec<(MatmulVariant, bool, bool)> {
    let v = |trans_a, trans_b, epilogue| MatmulVariant {
        trans_a,
        trans_b,
        epilogue,
    };
    vec![
        (v(false, false, Epilogue::Store), false, false),
        (v(false, false, Epilogue::Relu), true, false),
        (v(false, false, Epilogue::Store), true, false),
        (v(false, true, Epilogue::ReluMask), false, false),
        (v(false, true, Epilogue::Store), false, false),
        (v(true, false, Epilogue::Sgd), false, false),
        (v(true, false, Epilogue::Sgd), false, true),
        (v(true, false, Epilogue::Store), false, false),
        (v(true, false, Epilogue::Grad), false, false),
        (v(true, false, Epilogue::Grad), false, true),
    ]
}

#[test]
fn matmul_tiled_every_variant_on_awkward_shapes() {
    every_variant(MatmulAlgo::Tiled);
}

#[test]
fn matmul_tiled_128_every_variant_on_awkward_shapes() {
    every_variant_split_with(Some(Tile::T128), MatmulAlgo::Tiled, &[1], Layout::Padded);
}

#[test]
fn matmul_tiled_128_split_k_every_variant_on_awkward_shapes() {
    every_variant_split_with(
        Some(Tile::T128),
        MatmulAlgo::Tiled,
        &[2, 3, 7],
        Layout::Padded,
    );
}

/// The tiled kernel on operands stored otherwise than the network stores
/// them: strides as tight as the shapes (it reads a float at a time), and
/// strides of whole vec4s around sizes that are not (it reads vec4s, and a
/// float at a time at the edges). Both tiles, whole and split.
#[test]
fn matmul_tiled_reads_unpadded_operands_on_awkward_shapes() {
    for layout in [Layout::Tight, Layout::Strides4] {
        for tile in Tile::ALL {
            every_variant_split_with(Some(tile), MatmulAlgo::Tiled, &[1, 3], layout);
        }
    }
}

/// The tiled kernel's vec4 reads fill its tiles with the same floats as
/// reading a float at a time, so C has the same bits either way (which
/// way is faster is a matter for the GPU: `bench --matmul` times both).
#[test]
fn matmul_tiled_vec4_reads_give_the_bits_of_float_reads() {
    let Some(ctx) = common::gpu() else { return };
    for tile in Tile::ALL {
        let mm = Matmul::with_algo(&ctx, MatmulAlgo::Tiled).with_tile(tile);
        let floats = Matmul::with_algo(&ctx, MatmulAlgo::Tiled)
            .with_tile(tile)
            .with_float_reads();
        for (vi, (v, ones_col, decay)) in variants().into_iter().enumerate() {
            for &(m, n, k) in &[(3, 17, 33), (127, 33, 17), (100, 50, 785), (65, 63, 17)] {
                for slices in [1, 3] {
                    let case = MatmulCase {
                        v,
                        m,
                        n,
                        k,
                        ones_col,
                        decay,
                        split: SplitK::Slices(slices),
                        layout: Layout::Padded,
                    };
                    let wide = run_matmul(&ctx, &mm, &case, vi as u64);
                    let narrow = run_matmul(&ctx, &floats, &case, vi as u64);
                    assert_eq!(wide.gpu, narrow.gpu, "{tile:?} {case:?}");
                    assert!(diff(&wide.gpu, &wide.cpu, wide.tol, 1e-6).ok(), "{case:?}");
                }
            }
        }
    }
}

#[test]
fn matmul_vec4_every_variant_on_awkward_shapes() {
    every_variant(MatmulAlgo::Vec4);
}

#[test]
fn matmul_vec4_from_buffers_every_variant_on_awkward_shapes() {
    every_variant(MatmulAlgo::Vec4Buffers);
}

#[test]
fn matmul_tiled_split_k_every_variant_on_awkward_shapes() {
    every_variant_split(MatmulAlgo::Tiled, &[2, 3, 7]);
}

#[test]
fn matmul_vec4_split_k_every_variant_on_awkward_shapes() {
    every_variant_split(MatmulAlgo::Vec4, &[2, 3, 7]);
}

#[test]
fn matmul_vec4_from_buffers_split_k_every_variant_on_awkward_shapes() {
    every_variant_split(MatmulAlgo::Vec4Buffers, &[2, 3, 7]);
}

fn every_variant(algo: MatmulAlgo) {
    every_variant_split(algo, &[1]);
}

fn every_variant_split(algo: MatmulAlgo, splits: &[u32]) {
    every_variant_split_with(None, algo, splits, Layout::Padded);
}

/// Every variant on every shape, K split into each of `splits` slices (as
/// far as K has 16-long steps for them), against the CPU; the tiled
/// kernel's tile given or the 64×64 one; operands stored as `layout` says.
fn every_variant_split_with(tile: Option<Tile>, algo: MatmulAlgo, splits: &[u32], layout: Layout) {
    let Some(ctx) = common::gpu() else { return };
    let mut mm = Matmul::with_algo(&ctx, algo);
    if let Some(tile) = tile {
        mm = mm.with_tile(tile);
    }
    let mut failures = Vec::new();
    let mut split_runs = 0;
    for (vi, (v, ones_col, decay)) in variants().into_iter().enumerate() {
        for (si, &(m, n, k)) in SHAPES.iter().enumerate() {
            for &slices in splits {
                let case = MatmulCase {
                    v,
                    m,
                    n,
                    k,
                    ones_col,
                    decay,
                    split: SplitK::Slices(slices),
                    layout,
                };
                let r = run_matmul(&ctx, &mm, &case, (vi * 100 + si) as u64);
                // The vec4 kernel reads both operands from textures (every
                // shape here fits), the others from the buffers.
                let staged = if algo == MatmulAlgo::Vec4 { 2 } else { 0 };
                assert_eq!(r.staged, staged, "{algo:?} {case:?}");
                // Slices are whole steps of 16 along K (padded to 4), none
                // empty: K = 33..=784 here has room for two or more.
                let padded = if layout == Layout::Padded { up4(k) } else { k };
                let steps = padded.div_ceil(16) as u32;
                assert!(r.split_k <= slices.min(steps), "{case:?}: {}", r.split_k);
                assert_eq!(r.split_k > 1, slices > 1 && steps > 1, "{case:?}");
                split_runs += (r.split_k > 1) as usize;
                let d = diff(&r.gpu, &r.cpu, r.tol, 1e-6);
                if !d.ok() {
                    failures.push(format!(
                        "{case:?}: {} of {} outside {:?}; first {:?}",
                        d.failures, d.len, r.tol, d.first_failures
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{algo:?}:\n{}", failures.join("\n"));
    if splits.iter().any(|&s| s > 1) {
        assert!(split_runs > 0, "no case was split");
    }
}

#[test]
fn matmul_check_catches_a_wrong_element() {
    let Some(ctx) = common::gpu() else { return };
    for algo in [MatmulAlgo::Tiled, MatmulAlgo::Vec4] {
        let mm = Matmul::with_algo(&ctx, algo);
        let case = MatmulCase {
            v: variants()[1].0,
            m: 17,
            n: 33,
            k: 127,
            ones_col: true,
            decay: false,
            split: SplitK::Auto,
            layout: Layout::Padded,
        };
        let MatmulRun {
            mut gpu, cpu, tol, ..
        } = run_matmul(&ctx, &mm, &case, 7);
        assert!(diff(&gpu, &cpu, tol, 1e-6).ok());
        // One element off by just over its tolerance.
        let i = 5 * 36 + 20;
        gpu[i] += 1.01 * (tol.atol + tol.rtol * cpu[i].abs());
        let d = diff(&gpu, &cpu, tol, 1e-6);
        assert_eq!((d.failures, d.first_failures[0].0), (1, i), "{d:?}");
    }
}

/// The tiled kernel runs without the runtime's bounds checks, so `bind`
/// refuses an operand shorter than the product reads, naming it.
#[test]
fn tiled_matmul_refuses_operands_shorter_than_the_product_reads() {
    let Some(ctx) = common::gpu() else { return };
    let mm = Matmul::with_algo(&ctx, MatmulAlgo::Tiled);
    let buf = ctx.storage("x", 4096);
    // A is 17 × 33 (561 elements), B 33 × 12, C 17 × 12.
    let shape = MatmulShape::plain(17, 12, 33, 33, 12, 12);
    for (short, len) in [("A", 560), ("B", 395), ("C", 203)] {
        let at =
            |name: &str, full: usize| Slice::new(&buf, 0, if name == short { len } else { full });
        let call = MatmulCall {
            label: "short".into(),
            v: variants()[0].0,
            shape,
            a: at("A", 561),
            b: at("B", 396),
            c: at("C", 204),
            aux: None,
            columns: None,
        };
        let e = mm
            .bind(&ctx, call)
            .err()
            .expect("a short operand is refused");
        let want = format!(
            "{short} holds {len} elements, the product reads {}",
            len + 1
        );
        assert!(e.to_string().contains(&want), "{e}");
    }
}

/// The poison `run_matmul` puts around operands shows in C when a product
/// reads it: here A's slice takes in the NaN after it, as a kernel reading
/// past its operand would.
#[test]
fn poison_read_past_an_operand_reaches_c() {
    let Some(ctx) = common::gpu() else { return };
    let mm = Matmul::with_algo(&ctx, MatmulAlgo::Tiled);
    let a = [vec![1.0f32; 4 * 4], vec![f32::NAN; 4]].concat();
    let (a_buf, b_buf) = (
        ctx.storage_init("a", &a),
        ctx.storage_init("b", &[1.0f32; 16]),
    );
    let c_buf = ctx.storage("c", 5 * 4 * 4);
    let call = MatmulCall {
        label: "poisoned".into(),
        v: variants()[0].0,
        shape: MatmulShape::plain(5, 4, 4, 4, 4, 4),
        a: Slice::whole(&a_buf),
        b: Slice::whole(&b_buf),
        c: Slice::whole(&c_buf),
        aux: None,
        columns: None,
    };
    let d = mm.bind(&ctx, call).unwrap();
    ctx.run(&[&d]).unwrap();
    let c = ctx.read_f32(&c_buf, 0, 20, "c").unwrap();
    assert!(c[..16].iter().all(|&v| v == 4.0), "{c:?}");
    assert!(c[16..].iter().all(|v| v.is_nan()), "{c:?}");
}

#[test]
fn vec4_matmul_refuses_unaligned_shapes() {
    let Some(ctx) = common::gpu() else { return };
    let mm = Matmul::with_algo(&ctx, MatmulAlgo::Vec4);
    let buf = ctx.storage("x", 4096);
    let shape = MatmulShape::plain(8, 10, 8, 8, 10, 10);
    let s = Slice::whole(&buf);
    let call = MatmulCall {
        label: "unaligned".into(),
        v: variants()[0].0,
        shape,
        a: s,
        b: s,
        c: s,
        aux: None,
        columns: None,
    };
    let e = mm.bind(&ctx, call).err().expect("N = 10 is refused");
    assert!(e.to_string().contains("multiples of 4"), "{e}");
}

/// One workgroup (as on a CPU adapter), three (some with no rows), and one
/// row per invocation (as the planner spreads them on a GPU), against the CPU.
#[test]
fn softmax_with_loss_on_awkward_shapes() {
    let Some(ctx) = common::gpu() else { return };
    let kernel = SoftmaxWithLoss::new(&ctx);
    for rows in [1usize, 3, 17, 33, 127, 784, 1000, 8192] {
        let mut spreads = vec![1, 3, rows.div_ceil(256) as u32];
        spreads.dedup();
        for &classes in &[1, 3, 10, 17] {
            for &groups in &spreads {
                softmax_case(&ctx, &kernel, rows, classes, groups);
            }
        }
    }
}

/// `rows` × `classes` logits through the kernel spread over `groups`
/// workgroups, twice (the stats accumulate), against the CPU; and the same
/// sums, bit for bit, from a second run.
fn softmax_case(
    ctx: &GpuContext,
    kernel: &SoftmaxWithLoss,
    rows: usize,
    classes: usize,
    groups: u32,
) {
    // Rows `stride` long, as the network stores them; the padding holds
    // junk that must be ignored.
    let stride = classes + 3;
    let logits: Vec<f32> = common::random_f32(rows * classes, rows as u64 * 31 + classes as u64)
        .iter()
        .map(|v| v * 8.0)
        .collect();
    let y: Vec<f32> = (0..rows * stride)
        .map(|e| {
            if e % stride < classes {
                logits[e / stride * classes + e % stride]
            } else {
                1e3
            }
        })
        .collect();
    let t: Vec<u32> = (0..rows).map(|r| ((r * 7 + 3) % classes) as u32).collect();
    let y_buf = ctx.storage_init("y", &y);
    let t_buf = ctx.storage_init("t", &t);
    let dy_buf = ctx.storage("dy", (rows * stride * 4) as u64);
    let stats = ctx.storage_init("stats", &[Stats::default()]);
    let call = || SoftmaxCall {
        head: None,
        label: "test softmax".into(),
        rows,
        classes,
        stride,
        want_grad: true,
        y: Slice::whole(&y_buf),
        t: Slice::new(&t_buf, 0, rows),
        dy: Slice::whole(&dy_buf),
        stats: Slice::new(&stats, 0, 4),
    };
    let d = kernel.bind_spread(ctx, call(), groups).unwrap();
    assert_eq!(d.workgroups(), groups as u64 + (groups > 1) as u64);
    // Twice: the stats accumulate.
    ctx.run(&[&d, &d]).unwrap();
    let read = || -> Stats {
        bytemuck::pod_read_unaligned(&ctx.read_bytes(&stats, 0, 16, "stats").unwrap())
    };
    let got = read();
    ctx.queue
        .write_buffer(&stats, 0, bytemuck::bytes_of(&Stats::default()));
    ctx.run(&[&d, &d]).unwrap();
    assert_eq!(read(), got, "rows={rows} groups={groups}: a rerun differs");
    let dy_all = ctx.read_f32(&dy_buf, 0, rows * stride, "dy").unwrap();
    assert!(
        dy_all
            .iter()
            .enumerate()
            .all(|(e, &v)| e % stride < classes || v == 0.0),
        "padding of dy written"
    );
    let dy: Vec<f64> = dy_all
        .chunks(stride)
        .flat_map(|r| r[..classes].iter().map(|&v| v as f64))
        .collect();

    let y64 = common::widen(&logits);
    let labels: Vec<u8> = t.iter().map(|&v| v as u8).collect();
    let mut cpu = CpuSoftmax::default();
    let loss_sum = cpu.forward(&y64, Labels::Index(&labels), rows) * rows as f64;
    let want_dy = cpu.backward();
    let correct = correct_count(&y64, &labels);
    assert_eq!(
        (got.rows, got.correct),
        (2 * rows as u32, 2 * correct as u32),
        "rows={rows} classes={classes} groups={groups}"
    );
    // WGSL's exp and log are good to a few ulp; the loss of each row
    // is O(8), summed over 2·rows rows.
    let loss_tol = Tolerance {
        atol: 2.0 * rows as f64 * 16.0 * 8.0 * EPS_F32,
        rtol: RTOL,
    };
    assert!(
        loss_tol.allows(got.loss_sum as f64, 2.0 * loss_sum),
        "rows={rows} classes={classes} groups={groups}: {} vs {}",
        got.loss_sum,
        2.0 * loss_sum
    );
    // dY is at most 1/rows; exp's error is relative to each probability.
    let dy_tol = Tolerance {
        atol: 64.0 * EPS_F32 / rows as f64,
        rtol: RTOL,
    };
    let d = diff(&dy, &want_dy, dy_tol, 1e-9);
    assert!(
        d.ok(),
        "rows={rows} classes={classes} groups={groups}: {d:?}"
    );
}

#[test]
fn gather_builds_batches_from_packed_u8() {
    let Some(ctx) = common::gpu() else { return };
    let kernel = Gather::new(&ctx);
    for &pixels in &[1, 3, 17, 784] {
        for &rows in &[1, 3, 17, 127] {
            let n = 50;
            let images: Vec<u8> = (0..n * pixels)
                .map(|i| ((i * 37 + pixels) % 256) as u8)
                .collect();
            let labels: Vec<u32> = (0..n).map(|i| (i % 10) as u32).collect();
            let offset = 5;
            let idx: Vec<u32> = (0..rows + offset)
                .map(|i| ((i * 13 + 7) % n) as u32)
                .collect();
            let (img, lab, ix) = (
                ctx.storage_init("img", &pack_u8(&images)),
                ctx.storage_init("lab", &labels),
                ctx.storage_init("idx", &idx),
            );
            let stride = gpu_net::gpu::layout::padded(pixels);
            let x = ctx.storage("x", (rows * stride * 4) as u64);
            let t = ctx.storage("t", (rows * 4) as u64);
            let call = GatherCall {
                regions: None,
                label: "test gather".into(),
                rows,
                pixels,
                stride,
                offset,
                images: Slice::whole(&img),
                labels: Slice::whole(&lab),
                idx: Slice::whole(&ix),
                x: Slice::whole(&x),
                t: Slice::new(&t, 0, rows),
            };
            let d = kernel.bind(&ctx, call).unwrap();
            ctx.run(&[&d]).unwrap();
            let got_x = common::widen(&ctx.read_f32(&x, 0, rows * stride, "x").unwrap());
            let got_t: Vec<u32> =
                bytemuck::pod_collect_to_vec(&ctx.read_bytes(&t, 0, rows as u64 * 4, "t").unwrap());
            let mut want_x = Vec::new();
            let mut want_t = Vec::new();
            for r in 0..rows {
                let s = idx[offset + r] as usize;
                want_x.extend(
                    images[s * pixels..(s + 1) * pixels]
                        .iter()
                        .map(|&p| p as f64 / 255.0),
                );
                // The ones column, then zero padding.
                want_x.push(1.0);
                want_x.extend(std::iter::repeat_n(0.0, stride - pixels - 1));
                want_t.push(labels[s]);
            }
            assert_eq!(got_t, want_t, "pixels={pixels} rows={rows}");
            // f32 division in WGSL is good to 2.5 ulp.
            let d = diff(
                &got_x,
                &want_x,
                Tolerance {
                    atol: 0.0,
                    rtol: 4.0 * EPS_F32,
                },
                1e-9,
            );
            assert!(d.ok(), "pixels={pixels} rows={rows}: {d:?}");
        }
    }
}

/// One gather of several batches (a submission's steps) puts each batch in
/// its region, `region_rows` apart, bit for bit what a gather of that batch
/// alone writes, and writes nothing between the regions.
#[test]
fn gather_lays_several_batches_out_in_regions() {
    let Some(ctx) = common::gpu() else { return };
    let kernel = Gather::new(&ctx);
    let n = 300;
    for &(pixels, per, region_rows) in &[(784, 17, 64), (3, 1, 3), (17, 100, 128)] {
        let count = 3;
        let stride = gpu_net::gpu::layout::padded(pixels);
        let images: Vec<u8> = (0..n * pixels).map(|i| (i * 31 % 256) as u8).collect();
        let labels: Vec<u32> = (0..n).map(|i| (i % 10) as u32).collect();
        let offset = 4;
        let idx: Vec<u32> = (0..offset + per * count)
            .map(|i| ((i * 7 + 2) % n) as u32)
            .collect();
        let (img, lab, ix) = (
            ctx.storage_init("img", &pack_u8(&images)),
            ctx.storage_init("lab", &labels),
            ctx.storage_init("idx", &idx),
        );
        // Rows no sample lands on keep 7.
        let gather = |rows: usize, offset: usize, regions: Option<(usize, usize)>| {
            let all = regions.map_or(rows, |(_, r)| r * count);
            let x = ctx.storage_init("x", &vec![7.0f32; all * stride]);
            let t = ctx.storage_init("t", &vec![7u32; all]);
            let call = GatherCall {
                regions,
                label: "test gather".into(),
                rows,
                pixels,
                stride,
                offset,
                images: Slice::whole(&img),
                labels: Slice::whole(&lab),
                idx: Slice::whole(&ix),
                x: Slice::whole(&x),
                t: Slice::whole(&t),
            };
            ctx.run(&[&kernel.bind(&ctx, call).unwrap()]).unwrap();
            let x = ctx.read_f32(&x, 0, all * stride, "x").unwrap();
            let t: Vec<u32> =
                bytemuck::pod_collect_to_vec(&ctx.read_bytes(&t, 0, all as u64 * 4, "t").unwrap());
            (x.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), t)
        };
        let (x, t) = gather(per * count, offset, Some((per, region_rows)));
        let seven = 7.0f32.to_bits();
        for r in 0..count {
            let (one_x, one_t) = gather(per, offset + r * per, None);
            let at = r * region_rows;
            let case = format!("pixels {pixels}, {per} a batch, region {r}");
            assert_eq!(x[at * stride..(at + per) * stride], one_x[..], "x, {case}");
            assert_eq!(t[at..at + per], one_t[..], "t, {case}");
            let gap = (at + per) * stride..(at + region_rows) * stride;
            assert!(x[gap].iter().all(|&v| v == seven), "x's gap, {case}");
            assert!(
                t[at + per..at + region_rows].iter().all(|&v| v == 7),
                "t's gap, {case}"
            );
        }
    }
}

/// Operands that start partway into their buffers (as an evaluation chunk's
/// rows do) are read from where they start, also when copied into textures
/// (whole rows of 4096 texels, then a part row, from the slice's offset):
/// the product equals the one of the same values at offset 0, bit for bit.
/// NaN before the offsets poisons C if either copy starts too early.
#[test]
fn matmul_vec4_reads_operands_at_an_offset() {
    let Some(ctx) = common::gpu() else { return };
    // A is 24892 texels (six rows and part of a seventh), B 7056 (one and a
    // part); then A 16384 and B 4096, whole rows only.
    for (m, n, k) in [(127, 36, 784), (128, 32, 512)] {
        operands_at_an_offset(&ctx, m, n, k);
    }
}

fn operands_at_an_offset(ctx: &GpuContext, m: usize, n: usize, k: usize) {
    let at = ctx.limits.min_storage_buffer_offset_alignment as usize / 4 * 3;
    let (a, b) = (common::random_f32(m * k, 1), common::random_f32(k * n, 2));
    let shifted = |v: &[f32]| [vec![f32::NAN; at], v.to_vec()].concat();
    let (a0, b0) = (ctx.storage_init("a", &a), ctx.storage_init("b", &b));
    let (a1, b1) = (
        ctx.storage_init("a at an offset", &shifted(&a)),
        ctx.storage_init("b at an offset", &shifted(&b)),
    );
    let c = ctx.storage("c", (m * n * 4) as u64);
    for algo in [MatmulAlgo::Vec4, MatmulAlgo::Vec4Buffers] {
        let mm = Matmul::with_algo(ctx, algo);
        let product = |a: Slice<'_>, b: Slice<'_>| {
            let call = MatmulCall {
                label: "offset operands".into(),
                v: variants()[0].0,
                shape: MatmulShape::plain(m, n, k, k, n, n),
                a,
                b,
                c: Slice::whole(&c),
                aux: None,
                columns: None,
            };
            let d = mm.bind(ctx, call).unwrap();
            ctx.run(&[&d]).unwrap();
            (d.copies.len(), ctx.read_f32(&c, 0, m * n, "c").unwrap())
        };
        let (_, whole) = product(Slice::whole(&a0), Slice::whole(&b0));
        let (staged, from_offset) = product(Slice::new(&a1, at, m * k), Slice::new(&b1, at, k * n));
        assert_eq!(staged, if algo == MatmulAlgo::Vec4 { 2 } else { 0 });
        assert!(whole.iter().all(|v| v.is_finite()), "{algo:?} {m}×{n}×{k}");
        let same = whole
            .iter()
            .zip(&from_offset)
            .all(|(x, y)| x.to_bits() == y.to_bits());
        assert!(same, "{algo:?}: operands at an offset gave another product");
    }
}

/// Which products the vec4 kernel stages in textures: every one whose
/// operands fit (4096 texels wide, as tall as the device allows), none on
/// the other implementations. (An operand too tall to stage is a gigabyte
/// on lavapipe, so the decision is tested without allocating it.)
#[test]
fn only_operands_that_fit_a_texture_are_staged() {
    let Some(ctx) = common::gpu() else { return };
    use gpu_net::gpu::kernels::matmul::{TEXELS_PER_ROW, stages_operands};
    let v = |trans_a| MatmulVariant {
        trans_a,
        trans_b: false,
        epilogue: Epilogue::Store,
    };
    let rows = ctx.limits.max_texture_dimension_2d as usize;
    let texels = TEXELS_PER_ROW as usize * rows;
    // A(m, 4) is m texels, Aᵀ stored (4, m) one texel per 4 of m.
    let fits = MatmulShape::plain(texels, 4, 4, 4, 4, 4);
    let too_tall = MatmulShape::plain(texels + 1, 4, 4, 4, 4, 4);
    let wide = MatmulShape::plain(4 * texels + 4, 4, 4, 4 * texels + 4, 4, 4);
    assert!(stages_operands(&ctx, MatmulAlgo::Vec4, &v(false), &fits));
    assert!(!stages_operands(
        &ctx,
        MatmulAlgo::Vec4,
        &v(false),
        &too_tall
    ));
    // Transposed, the same A is 4 rows of m: a texel per 4 of m.
    assert!(!stages_operands(&ctx, MatmulAlgo::Vec4, &v(true), &wide));
    for algo in [MatmulAlgo::Tiled, MatmulAlgo::Vec4Buffers] {
        assert!(!stages_operands(&ctx, algo, &v(false), &fits), "{algo:?}");
    }
}
