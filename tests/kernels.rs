//! Every WGSL kernel against the CPU reference on awkward shapes.
//!
//! Tolerance: `|gpu - cpu| <= atol + rtol·|cpu|` for every element, with
//! rtol = 1e-5 and, for a product of reduction length K,
//! atol = K·ε32·max_ij(|A|·|B|)_ij — the classic bound on f32 rounding in a
//! length-K dot product, scaled to the inputs' magnitude.

mod common;

use gpu_net::compare::{EPS_F32, Tolerance, diff};
use gpu_net::cpu::matmul::matmul;
use gpu_net::cpu::net::correct_count;
use gpu_net::cpu::{Labels, SoftmaxWithLoss as CpuSoftmax};
use gpu_net::gpu::GpuContext;
use gpu_net::gpu::kernels::gather::pack_u8;
use gpu_net::gpu::kernels::{
    Epilogue, Gather, Matmul, MatmulAlgo, MatmulShape, MatmulVariant, Slice, SoftmaxWithLoss, Stats,
};

const RTOL: f64 = 1e-5;

/// The logical A (M, K) that a stored matrix and the variant describe.
fn logical_a(stored: &[f32], v: MatmulVariant, m: usize, k: usize, a_cols: usize) -> Vec<f64> {
    let mut a = vec![0.0; m * k];
    for i in 0..m {
        for p in 0..k {
            let (row, col) = if v.trans_a { (p, i) } else { (i, p) };
            a[i * k + p] = if v.aug_a && col == a_cols {
                1.0
            } else {
                stored[row * a_cols + col] as f64
            };
        }
    }
    a
}

fn logical_b(stored: &[f32], v: MatmulVariant, k: usize, n: usize) -> Vec<f64> {
    let mut b = vec![0.0; k * n];
    for p in 0..k {
        for j in 0..n {
            b[p * n + j] = if v.trans_b {
                stored[j * k + p]
            } else {
                stored[p * n + j]
            } as f64;
        }
    }
    b
}

struct MatmulCase {
    v: MatmulVariant,
    m: usize,
    n: usize,
    k: usize,
}

/// Runs one case on the GPU; returns (gpu, cpu, tolerance).
fn run_matmul(
    ctx: &GpuContext,
    mm: &Matmul,
    c: &MatmulCase,
    seed: u64,
) -> (Vec<f64>, Vec<f64>, Tolerance) {
    let MatmulCase { v, m, n, k } = *c;
    // Stored A: (M, a_cols) or, transposed, (K, a_cols); augmentation adds the
    // logical dimension's last index.
    let a_cols = match (v.trans_a, v.aug_a) {
        (false, false) => k,
        (false, true) => k - 1,
        (true, false) => m,
        (true, true) => m - 1,
    };
    let a_rows = if v.trans_a { k } else { m };
    let a_store = common::random_f32(a_rows * a_cols, seed);
    let b_store = common::random_f32(k * n, seed + 1);
    let c0 = common::random_f32(m * n, seed + 2);
    let aux = common::random_f32(m * n, seed + 3);
    let lr = 0.375f32;
    let shape = MatmulShape {
        m,
        n,
        k,
        a_cols,
        b_cols: if v.trans_b { k } else { n },
        lr,
    };
    let (a_buf, b_buf) = (
        ctx.storage_init("a", &a_store),
        ctx.storage_init("b", &b_store),
    );
    let (c_buf, aux_buf) = (ctx.storage_init("c", &c0), ctx.storage_init("aux", &aux));
    let d = mm
        .bind(
            ctx,
            "test matmul",
            v,
            shape,
            Slice::new(&a_buf, 0, a_store.len()),
            Slice::new(&b_buf, 0, b_store.len()),
            Slice::new(&c_buf, 0, m * n),
            (v.epilogue == Epilogue::ReluMask).then(|| Slice::new(&aux_buf, 0, m * n)),
        )
        .unwrap();
    ctx.run(&[&d]).unwrap();
    let gpu = common::widen(&ctx.read_f32(&c_buf, 0, m * n, "c").unwrap());

    let a = logical_a(&a_store, v, m, k, a_cols);
    let b = logical_b(&b_store, v, k, n);
    let mut acc = vec![0.0; m * n];
    matmul(&mut acc, &a, &b, m, k, n);
    let abs = |x: &[f64]| x.iter().map(|v| v.abs()).collect::<Vec<_>>();
    let mut bound = vec![0.0; m * n];
    matmul(&mut bound, &abs(&a), &abs(&b), m, k, n);
    let scale = bound.iter().fold(0.0f64, |x, &y| x.max(y));
    let mut atol = k as f64 * EPS_F32 * scale;
    let cpu: Vec<f64> = acc
        .iter()
        .enumerate()
        .map(|(i, &s)| match v.epilogue {
            Epilogue::Store => s,
            Epilogue::Relu => s.max(0.0),
            Epilogue::ReluMask => {
                if aux[i] > 0.0 {
                    s
                } else {
                    0.0
                }
            }
            Epilogue::Sgd => c0[i] as f64 - lr as f64 * s,
        })
        .collect();
    if v.epilogue == Epilogue::Sgd {
        atol *= lr as f64;
    }
    (gpu, cpu, Tolerance { atol, rtol: RTOL })
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
];

fn variants() -> Vec<MatmulVariant> {
    let v = |trans_a, trans_b, aug_a, epilogue| MatmulVariant {
        trans_a,
        trans_b,
        aug_a,
        epilogue,
    };
    vec![
        v(false, false, false, Epilogue::Store),
        v(false, false, true, Epilogue::Relu),
        v(false, false, true, Epilogue::Store),
        v(false, true, false, Epilogue::ReluMask),
        v(false, true, false, Epilogue::Store),
        v(true, false, true, Epilogue::Sgd),
        v(true, false, true, Epilogue::Store),
        v(true, false, false, Epilogue::Store),
        v(true, true, false, Epilogue::Store),
    ]
}

#[test]
fn matmul_tiled_every_variant_on_awkward_shapes() {
    every_variant(MatmulAlgo::Tiled);
}

#[test]
fn matmul_rows_every_variant_on_awkward_shapes() {
    every_variant(MatmulAlgo::Rows);
}

fn every_variant(algo: MatmulAlgo) {
    let Some(ctx) = common::gpu() else { return };
    let mm = Matmul::with_algo(&ctx, algo);
    let mut failures = Vec::new();
    for (vi, v) in variants().into_iter().enumerate() {
        for (si, &(m, n, k)) in SHAPES.iter().enumerate() {
            // Augmentation needs the augmented dimension to be at least 1.
            let case = MatmulCase { v, m, n, k };
            let (gpu, cpu, tol) = run_matmul(&ctx, &mm, &case, (vi * 100 + si) as u64);
            let d = diff(&gpu, &cpu, tol, 1e-6);
            if !d.ok() {
                failures.push(format!(
                    "{v:?} M={m} N={n} K={k}: {} of {} outside {tol:?}; first {:?}",
                    d.failures, d.len, d.first_failures
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn matmul_check_catches_a_wrong_element() {
    let Some(ctx) = common::gpu() else { return };
    let mm = Matmul::with_algo(&ctx, MatmulAlgo::Tiled);
    let case = MatmulCase {
        v: variants()[1],
        m: 17,
        n: 33,
        k: 127,
    };
    let (mut gpu, cpu, tol) = run_matmul(&ctx, &mm, &case, 7);
    assert!(diff(&gpu, &cpu, tol, 1e-6).ok());
    // One element off by just over its tolerance.
    let i = 17 * 33 / 2;
    gpu[i] += 1.01 * (tol.atol + tol.rtol * cpu[i].abs());
    let d = diff(&gpu, &cpu, tol, 1e-6);
    assert_eq!((d.failures, d.first_failures[0].0), (1, i), "{d:?}");
}

#[test]
fn softmax_with_loss_on_awkward_shapes() {
    let Some(ctx) = common::gpu() else { return };
    let kernel = SoftmaxWithLoss::new(&ctx);
    for &rows in &[1, 3, 17, 33, 127, 784, 1000] {
        for &classes in &[1, 3, 10, 17] {
            let y: Vec<f32> = common::random_f32(rows * classes, rows as u64 * 31 + classes as u64)
                .iter()
                .map(|v| v * 8.0)
                .collect();
            let t: Vec<u32> = (0..rows).map(|r| ((r * 7 + 3) % classes) as u32).collect();
            let y_buf = ctx.storage_init("y", &y);
            let t_buf = ctx.storage_init("t", &t);
            let dy_buf = ctx.storage("dy", (rows * classes * 4) as u64);
            let stats = ctx.storage_init("stats", &[Stats::default()]);
            let d = kernel
                .bind(
                    &ctx,
                    "test softmax",
                    rows,
                    classes,
                    true,
                    Slice::whole(&y_buf),
                    Slice::new(&t_buf, 0, rows),
                    Slice::whole(&dy_buf),
                    Slice::new(&stats, 0, 4),
                )
                .unwrap();
            // Twice: the stats accumulate.
            ctx.run(&[&d, &d]).unwrap();
            let got: Stats =
                *bytemuck::from_bytes(&ctx.read_bytes(&stats, 0, 16, "stats").unwrap());
            let dy = common::widen(&ctx.read_f32(&dy_buf, 0, rows * classes, "dy").unwrap());

            let y64 = common::widen(&y);
            let labels: Vec<u8> = t.iter().map(|&v| v as u8).collect();
            let mut cpu = CpuSoftmax::default();
            let loss_sum = cpu.forward(&y64, Labels::Index(&labels), rows) * rows as f64;
            let want_dy = cpu.backward();
            let correct = correct_count(&y64, &labels);
            assert_eq!(
                (got.rows, got.correct),
                (2 * rows as u32, 2 * correct as u32),
                "rows={rows} classes={classes}"
            );
            // WGSL's exp and log are good to a few ulp; the loss of each row
            // is O(8), summed over 2·rows rows.
            let loss_tol = Tolerance {
                atol: 2.0 * rows as f64 * 16.0 * 8.0 * EPS_F32,
                rtol: RTOL,
            };
            assert!(
                loss_tol.allows(got.loss_sum as f64, 2.0 * loss_sum),
                "rows={rows} classes={classes}: {} vs {}",
                got.loss_sum,
                2.0 * loss_sum
            );
            // dY is at most 1/rows; exp's error is relative to each probability.
            let dy_tol = Tolerance {
                atol: 64.0 * EPS_F32 / rows as f64,
                rtol: RTOL,
            };
            let d = diff(&dy, &want_dy, dy_tol, 1e-9);
            assert!(d.ok(), "rows={rows} classes={classes}: {d:?}");
        }
    }
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
            let x = ctx.storage("x", (rows * pixels * 4) as u64);
            let t = ctx.storage("t", (rows * 4) as u64);
            let d = kernel
                .bind(
                    &ctx,
                    "test gather",
                    rows,
                    pixels,
                    offset,
                    Slice::whole(&img),
                    Slice::whole(&lab),
                    Slice::whole(&ix),
                    Slice::new(&x, 0, rows * pixels),
                    Slice::new(&t, 0, rows),
                )
                .unwrap();
            ctx.run(&[&d]).unwrap();
            let got_x = common::widen(&ctx.read_f32(&x, 0, rows * pixels, "x").unwrap());
            let got_t: Vec<u32> =
                bytemuck::cast_slice(&ctx.read_bytes(&t, 0, rows as u64 * 4, "t").unwrap())
                    .to_vec();
            let mut want_x = Vec::new();
            let mut want_t = Vec::new();
            for r in 0..rows {
                let s = idx[offset + r] as usize;
                want_x.extend(
                    images[s * pixels..(s + 1) * pixels]
                        .iter()
                        .map(|&p| p as f64 / 255.0),
                );
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
