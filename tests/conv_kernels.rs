//! Chapter 7's kernels (`im2col`, `col2im`, max pooling forward and
//! backward) against the CPU reference (`cpu::conv`) on awkward shapes:
//! batch 1 and 3, channels 1 and 3, images that are not square, windows 1,
//! 2, 3, 5 and 7, stride 1 and 2, padding 0, 1 and 2, and the book's
//! SimpleConvNet shapes. Buffers are filled with junk first: every element
//! a kernel must write is checked, and what it must not touch (the padding
//! columns it does not own, a guard row) is checked unchanged.
//!
//! Copies (im2col, pooling forward, argmax) must be exact; sums (col2im,
//! pooling backward) are f32 against f64 within 1e-5 relative.

mod common;

use gpu_net::core::conv::{ImageShape, Slide, Window};
use gpu_net::cpu::conv::{Convolution, Pooling, col2im, im2col, nchw_to_nhwc, nhwc_to_nchw};
use gpu_net::gpu::GpuContext;
use gpu_net::gpu::kernels::{
    Col2imCall, Epilogue, Im2col, Im2colCall, ImageLayout, Matmul, MatmulCall, MatmulShape,
    MatmulVariant, MaxPool, PoolBackwardCall, PoolForwardCall, Slice, window::WindowGrain,
    window::pools_by_quads,
};
use gpu_net::gpu::layout::{
    GpuLayer, conv_from_gpu, conv_to_gpu, forward_shape, input_grad_shape, padded, padded_rows,
    weight_grad_shape,
};

const JUNK: f32 = -7.5;

fn slide(n: usize, c: usize, h: usize, w: usize, k: usize, stride: usize, pad: usize) -> Slide {
    let window = Window {
        h: k,
        w: k,
        stride,
        pad,
    };
    Slide::new(ImageShape { n, c, h, w }, window).unwrap()
}

/// Convolution shapes: (N, C, H, W), filter, stride, pad.
fn conv_shapes() -> Vec<Slide> {
    vec![
        slide(1, 1, 5, 7, 3, 1, 0),
        slide(3, 3, 7, 5, 3, 2, 1),
        slide(1, 3, 9, 6, 5, 1, 2),
        slide(3, 1, 5, 7, 1, 2, 0),
        slide(1, 1, 7, 9, 7, 1, 1),
        slide(3, 1, 28, 28, 5, 1, 0), // SimpleConvNet's Conv1
        slide(3, 1, 10, 10, 3, 1, 0), // ch07/gradient_check.py's
        slide(2, 17, 5, 6, 3, 1, 1),  // DeepConvNet's window, 17 channels
    ]
}

/// `im2col`'s and `col2im`'s two grains.
const GRAINS: [WindowGrain; 2] = [WindowGrain::Rows, WindowGrain::Elements];

/// Pooling shapes, over a convolution's output (C channels).
fn pool_shapes() -> Vec<Slide> {
    vec![
        slide(3, 30, 24, 24, 2, 2, 0), // SimpleConvNet's Pool1
        slide(1, 3, 5, 7, 3, 1, 1),    // overlapping windows, padding
        slide(3, 1, 6, 4, 2, 2, 0),
        slide(1, 17, 7, 5, 3, 2, 0),
        slide(17, 33, 4, 6, 2, 2, 0),
        slide(1, 3, 9, 6, 3, 3, 0),
        slide(127, 16, 2, 2, 2, 2, 0), // DeepConvNet's channels, many windows
    ]
}

/// The row strides of a convolution's output each pooling test runs at:
/// the layout's (`padded`, whole vec4s: the quads kernels where the windows
/// tile the image), and one that is not a multiple of 4 (the general
/// kernels, whatever the windows).
fn pool_strides(s: &Slide) -> [usize; 2] {
    let c = s.input.c;
    let odd = if (c + 1).is_multiple_of(4) {
        c + 2
    } else {
        c + 1
    };
    [padded(c), odd]
}

#[test]
fn pooling_runs_by_quads_where_windows_tile_rows_of_vec4s() {
    let shapes = pool_shapes();
    assert!(pools_by_quads(&shapes[0], 32));
    assert!(
        !pools_by_quads(&shapes[0], 31),
        "a stride of part of a vec4"
    );
    assert!(!pools_by_quads(&shapes[1], 4), "overlapping windows");
    assert!(!pools_by_quads(&shapes[3], 20), "windows 3 at stride 2");
    assert!(pools_by_quads(&shapes[5], 4), "3×3 windows at stride 3");
}

/// Distinct f32 values in (-1, 1), reproducible.
fn values(len: usize, seed: u64) -> Vec<f32> {
    common::random_f32(len, seed)
}

/// `rows` rows of `cols` values stored `stride` apart, junk in the rest and
/// in one guard row after them.
fn store(v: &[f32], rows: usize, cols: usize, stride: usize) -> Vec<f32> {
    let mut out = vec![JUNK; (rows + 1) * stride];
    for r in 0..rows {
        out[r * stride..r * stride + cols].copy_from_slice(&v[r * cols..(r + 1) * cols]);
    }
    out
}

fn real(stored: &[f32], rows: usize, cols: usize, stride: usize) -> Vec<f64> {
    (0..rows)
        .flat_map(|r| {
            stored[r * stride..r * stride + cols]
                .iter()
                .map(|&v| v as f64)
        })
        .collect()
}

/// The first element where `gpu` is not within 1e-5 of `cpu`'s largest value.
fn first_difference(gpu: &[f64], cpu: &[f64]) -> Option<String> {
    let scale = cpu.iter().fold(1e-30f64, |m, v| m.max(v.abs()));
    let at = gpu
        .iter()
        .zip(cpu)
        .position(|(g, c)| (g - c).abs() > 1e-5 * scale)?;
    Some(format!("element {at}: gpu {}, cpu {}", gpu[at], cpu[at]))
}

fn assert_close(what: &str, gpu: &[f64], cpu: &[f64]) {
    assert_eq!(gpu.len(), cpu.len(), "{what}");
    if let Some(d) = first_difference(gpu, cpu) {
        panic!("{what}: {d}");
    }
}

#[test]
fn the_comparison_catches_a_sum_off_by_a_ten_thousandth() {
    let cpu = [0.5, -1.0, 2.0];
    assert_eq!(first_difference(&cpu, &cpu), None);
    assert!(first_difference(&[0.5, -1.0, 2.0002], &cpu).is_some());
}

fn read(ctx: &GpuContext, b: &wgpu::Buffer, len: usize) -> Vec<f32> {
    ctx.read_f32(b, 0, len, "result").unwrap()
}

/// At both grains: a row per invocation (CPU adapters) and an element per
/// invocation (GPUs).
#[test]
fn im2col_matches_the_cpu_and_writes_the_ones_column() {
    let Some(ctx) = common::gpu() else { return };
    let kernel = Im2col::new(&ctx);
    for (s, grain) in conv_shapes()
        .into_iter()
        .flat_map(|s| GRAINS.map(|g| (s, g)))
    {
        let (per, k) = (s.input.per_image(), s.col_cols());
        let (xs, cs) = (padded(per), padded(k));
        let x = values(s.input.len(), 1);
        let xb = ctx.storage_init("x", &store(&x, s.input.n, per, xs));
        let col = ctx.storage_init("col", &vec![JUNK; (s.col_rows() + 1) * cs]);
        let call = Im2colCall {
            label: "im2col".into(),
            slide: s,
            layout: ImageLayout::Images,
            x_stride: xs,
            col_stride: cs,
            ones: true,
            x: Slice::whole(&xb),
            col: Slice::new(&col, 0, s.col_rows() * cs),
        };
        ctx.run(&[&kernel.im2col_at(&ctx, call, grain).unwrap()])
            .unwrap();
        let got = read(&ctx, &col, (s.col_rows() + 1) * cs);
        let want = im2col(&common::widen(&x), &s);
        for r in 0..s.col_rows() {
            let row = &got[r * cs..(r + 1) * cs];
            for (j, &v) in row.iter().enumerate() {
                let expect = match j {
                    _ if j < k => want[r * k + j] as f32,
                    _ if j == k => 1.0,
                    _ => 0.0,
                };
                assert_eq!(v, expect, "{s:?} {grain:?}: row {r}, column {j}");
            }
        }
        assert!(
            got[s.col_rows() * cs..].iter().all(|&v| v == JUNK),
            "{s:?}: guard row"
        );
    }
}

#[test]
fn col2im_matches_the_cpu_and_repeats_bit_for_bit() {
    let Some(ctx) = common::gpu() else { return };
    let kernel = Im2col::new(&ctx);
    for s in conv_shapes() {
        let (per, k) = (s.input.per_image(), s.col_cols());
        let (xs, cs) = (padded(per), padded(k));
        let dcol = values(s.col_rows() * k, 2);
        let cb = ctx.storage_init("dcol", &store(&dcol, s.col_rows(), k, cs));
        let run = |grain| {
            let x = ctx.storage_init("dx", &vec![JUNK; (s.input.n + 1) * xs]);
            let call = Col2imCall {
                label: "col2im".into(),
                slide: s,
                layout: ImageLayout::Images,
                col_stride: cs,
                x_stride: xs,
                col: Slice::whole(&cb),
                relu_mask: None,
                x: Slice::new(&x, 0, s.input.n * xs),
            };
            ctx.run(&[&kernel.col2im_at(&ctx, call, grain).unwrap()])
                .unwrap();
            read(&ctx, &x, (s.input.n + 1) * xs)
        };
        let got = run(WindowGrain::Elements);
        let want = col2im(&common::widen(&dcol), &s);
        assert_close(&format!("{s:?}"), &real(&got, s.input.n, per, xs), &want);
        for r in 0..=s.input.n {
            let untouched = if r < s.input.n {
                &got[r * xs + per..(r + 1) * xs]
            } else {
                &got[r * xs..]
            };
            assert!(
                untouched.iter().all(|&v| v == JUNK),
                "{s:?}: row {r}'s padding"
            );
        }
        assert_eq!(got, run(WindowGrain::Elements), "{s:?}: a second run");
        let by_position = run(WindowGrain::Rows);
        assert_eq!(got, by_position, "{s:?}: by position, the same bits");
    }
}

/// The pooling's input as a convolution leaves it (rows (n, y, x) of C
/// channels, `padded(C)` apart), after Relu: about half the values 0.
fn pool_input(s: &Slide, seed: u64) -> Vec<f32> {
    values(s.input.len(), seed)
        .iter()
        .map(|&v| v.max(0.0))
        .collect()
}

#[test]
fn max_pooling_forward_matches_the_cpu_exactly() {
    let Some(ctx) = common::gpu() else { return };
    let kernel = MaxPool::new(&ctx);
    for (s, zs, relu) in pool_shapes().into_iter().flat_map(|s| {
        pool_strides(&s)
            .into_iter()
            .flat_map(move |zs| [(s, zs, true), (s, zs, false)])
    }) {
        let (c, area) = (s.input.c, s.input.h * s.input.w);
        let out = c * s.out_area();
        let ps = padded(out);
        // NHWC rows, after Relu (ties at 0) or not (windows all below 0).
        let z = match relu {
            true => pool_input(&s, 3),
            false => values(s.input.len(), 3),
        };
        let zb = ctx.storage_init("z", &store(&z, s.input.n * area, c, zs));
        let p = ctx.storage_init("p", &vec![JUNK; (s.input.n + 1) * ps]);
        let argmax = ctx.storage_init("argmax", &vec![u32::MAX; s.input.n * out]);
        let call = PoolForwardCall {
            label: "pool".into(),
            slide: s,
            z_stride: zs,
            p_stride: ps,
            ones: true,
            z: Slice::whole(&zb),
            p: Slice::new(&p, 0, s.input.n * ps),
            argmax: Slice::whole(&argmax),
        };
        ctx.run(&[&kernel.forward(&ctx, call).unwrap()]).unwrap();
        let mut cpu = Pooling::new(s);
        let want = cpu.forward(&nhwc_to_nchw(&common::widen(&z), s.input.n, c, area));
        let got = read(&ctx, &p, (s.input.n + 1) * ps);
        for n in 0..s.input.n {
            let row = &got[n * ps..(n + 1) * ps];
            for (j, &v) in row.iter().enumerate() {
                let expect = match j {
                    _ if j < out => want[n * out + j] as f32,
                    _ if j == out => 1.0,
                    _ => 0.0,
                };
                assert_eq!(
                    v, expect,
                    "{s:?}, z stride {zs}, relu {relu}: image {n}, value {j}"
                );
            }
        }
        let idx = ctx
            .read_bytes(&argmax, 0, (s.input.n * out * 4) as u64, "argmax")
            .unwrap();
        let idx: Vec<usize> = idx
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes(b.try_into().unwrap()) as usize)
            .collect();
        assert_eq!(
            idx,
            cpu.argmax(),
            "{s:?}, z stride {zs}, relu {relu}: argmax (ties to the first index)"
        );
    }
}

/// With and without Relu, by quads and by the gather (see `pool_strides`).
#[test]
fn max_pooling_backward_matches_the_cpu_with_and_without_relu() {
    let Some(ctx) = common::gpu() else { return };
    let kernel = MaxPool::new(&ctx);
    for s in pool_shapes() {
        for (relu, zs) in [false, true]
            .into_iter()
            .flat_map(|r| pool_strides(&s).map(|zs| (r, zs)))
        {
            let (c, area) = (s.input.c, s.input.h * s.input.w);
            let out = c * s.out_area();
            let ps = padded(out);
            let z = pool_input(&s, 4);
            let z64 = nhwc_to_nchw(&common::widen(&z), s.input.n, c, area);
            let mut cpu = Pooling::new(s);
            cpu.forward(&z64);
            let argmax: Vec<u32> = cpu.argmax().iter().map(|&a| a as u32).collect();
            let dp = values(s.input.n * out, 5);
            let zb = ctx.storage_init("z", &store(&z, s.input.n * area, c, zs));
            let dpb = ctx.storage_init("dp", &store(&dp, s.input.n, out, ps));
            let ab = ctx.storage_init("argmax", &argmax);
            let dz = ctx.storage_init("dz", &vec![JUNK; (s.input.n * area + 1) * zs]);
            let call = PoolBackwardCall {
                label: "pool backward".into(),
                slide: s,
                z_stride: zs,
                p_stride: ps,
                relu,
                dp: Slice::whole(&dpb),
                argmax: Slice::whole(&ab),
                z: Slice::whole(&zb),
                dz: Slice::new(&dz, 0, s.input.n * area * zs),
            };
            ctx.run(&[&kernel.backward(&ctx, call).unwrap()]).unwrap();
            let mut want = nchw_to_nhwc(&cpu.backward(&common::widen(&dp)), s.input.n, c, area);
            if relu {
                for (w, &zv) in want.iter_mut().zip(&z) {
                    if zv <= 0.0 {
                        *w = 0.0;
                    }
                }
            }
            let rows = s.input.n * area;
            let got = read(&ctx, &dz, (rows + 1) * zs);
            assert_close(
                &format!("{s:?}, relu {relu}, z stride {zs}"),
                &real(&got, rows, c, zs),
                &want,
            );
            for r in 0..rows {
                assert!(
                    got[r * zs + c..(r + 1) * zs].iter().all(|&v| v == 0.0),
                    "{s:?}: row {r}'s padding"
                );
            }
            assert!(
                got[rows * zs..].iter().all(|&v| v == JUNK),
                "{s:?}: guard row"
            );
        }
    }
}

/// One product of the existing matmul, run at once.
fn product(
    ctx: &GpuContext,
    mm: &Matmul,
    v: (bool, bool),
    shape: MatmulShape,
    abc: [Slice<'_>; 3],
) {
    let [a, b, c] = abc;
    let v = MatmulVariant {
        trans_a: v.0,
        trans_b: v.1,
        epilogue: Epilogue::Store,
    };
    let call = MatmulCall {
        label: "conv product".into(),
        v,
        shape,
        a,
        b,
        c,
        aux: None,
        columns: None,
    };
    ctx.run(&[&mm.bind(ctx, call).unwrap()]).unwrap();
}

/// The book's Convolution from the kernels: forward `[im2col(x), 1]·block`;
/// backward `[col, 1]ᵀ·dout` for `[dW_col; db]` and `col2im(dout·W_colᵀ)`
/// for dx, with the filters in the arena's layout (`layout::conv_to_gpu`),
/// against `cpu::conv::Convolution`.
#[test]
fn a_convolution_composes_from_im2col_the_matmul_and_col2im() {
    let Some(ctx) = common::gpu() else { return };
    let (kernel, mm) = (Im2col::new(&ctx), Matmul::new(&ctx));
    for (s, fnum) in [
        (slide(3, 1, 28, 28, 5, 1, 0), 30),
        (slide(1, 3, 7, 5, 3, 2, 1), 2),
        (slide(3, 3, 9, 6, 5, 1, 2), 7),
    ] {
        let (per, k, rows) = (s.input.per_image(), s.col_cols(), s.col_rows());
        let g = GpuLayer {
            inputs: k,
            outputs: fnum,
            offset: 0,
        };
        let all = padded_rows(rows);
        let (x, w, b) = (
            values(s.input.len(), 7),
            values(fnum * k, 8),
            values(fnum, 9),
        );
        let (x64, w64, b64) = (common::widen(&x), common::widen(&w), common::widen(&b));
        let mut cpu = Convolution::new(s, fnum);
        let want = nchw_to_nhwc(
            &cpu.forward(&x64, &w64, &b64),
            s.input.n,
            fnum,
            s.out_area(),
        );
        let dout = values(rows * fnum, 10);
        let grads = cpu.backward(
            &nhwc_to_nchw(&common::widen(&dout), s.input.n, fnum, s.out_area()),
            &w64,
        );

        let xb = ctx.storage_init("x", &store(&x, s.input.n, per, padded(per)));
        let col = ctx.storage_init("col", &vec![0f32; all * g.rows()]);
        let call = Im2colCall {
            label: "im2col".into(),
            slide: s,
            layout: ImageLayout::Images,
            x_stride: padded(per),
            col_stride: g.rows(),
            ones: true,
            x: Slice::whole(&xb),
            col: Slice::new(&col, 0, rows * g.rows()),
        };
        ctx.run(&[&kernel.im2col(&ctx, call).unwrap()]).unwrap();
        let block = ctx.storage_init("block", &conv_to_gpu(&g, &w64, &b64));
        let out = ctx.storage("out", (all * g.cols() * 4) as u64);
        let whole = |b| Slice::whole(b);
        product(
            &ctx,
            &mm,
            (false, false),
            forward_shape(&g, rows),
            [whole(&col), whole(&block), whole(&out)],
        );
        let got = read(&ctx, &out, rows * g.cols());
        assert_close(
            &format!("{s:?} forward"),
            &real(&got, rows, fnum, g.cols()),
            &want,
        );

        // dout as the product's C: rows (n, oy, ox) of FN, zeros to the stride and below.
        let mut dout_padded = vec![0f32; all * g.cols()];
        for r in 0..rows {
            dout_padded[r * g.cols()..][..fnum].copy_from_slice(&dout[r * fnum..][..fnum]);
        }
        let db = ctx.storage_init("dout", &dout_padded);
        let dblock = ctx.storage("dblock", (g.len() * 4) as u64);
        product(
            &ctx,
            &mm,
            (true, false),
            weight_grad_shape(&g, rows),
            [whole(&col), whole(&db), whole(&dblock)],
        );
        let (dw, dbias) = conv_from_gpu(&g, &read(&ctx, &dblock, g.len()));
        assert_close(&format!("{s:?} dW"), &dw, &grads.dw);
        assert_close(&format!("{s:?} db"), &dbias, &grads.db);

        let dcol = ctx.storage("dcol", (all * g.rows() * 4) as u64);
        product(
            &ctx,
            &mm,
            (false, true),
            input_grad_shape(&g, rows),
            [whole(&db), whole(&block), whole(&dcol)],
        );
        let dx = ctx.storage("dx", (s.input.n * padded(per) * 4) as u64);
        let call = Col2imCall {
            label: "col2im".into(),
            slide: s,
            layout: ImageLayout::Images,
            col_stride: g.rows(),
            x_stride: padded(per),
            col: Slice::whole(&dcol),
            relu_mask: None,
            x: Slice::whole(&dx),
        };
        ctx.run(&[&kernel.col2im(&ctx, call).unwrap()]).unwrap();
        let got = read(&ctx, &dx, s.input.n * padded(per));
        assert_close(
            &format!("{s:?} dx"),
            &real(&got, s.input.n, per, padded(per)),
            &grads.dx,
        );
    }
}

/// Images as a convolution's product leaves them: rows (n, y, x) of C
/// channels, `padded(C)` apart, junk past C and in a guard row.
fn as_positions(chw: &[f32], s: &Slide) -> (Vec<f32>, usize) {
    let i = s.input;
    let nhwc = nchw_to_nhwc(&common::widen(chw), i.n, i.c, i.h * i.w);
    let narrow: Vec<f32> = nhwc.iter().map(|&v| v as f32).collect();
    let stride = padded(i.c);
    (store(&narrow, i.n * i.h * i.w, i.c, stride), stride)
}

#[test]
fn im2col_reads_a_convolutions_output_layout() {
    let Some(ctx) = common::gpu() else { return };
    let kernel = Im2col::new(&ctx);
    for (s, grain) in conv_shapes()
        .into_iter()
        .flat_map(|s| GRAINS.map(|g| (s, g)))
    {
        let cs = padded(s.col_cols());
        let x = values(s.input.len(), 11);
        let (stored, xs) = as_positions(&x, &s);
        let xb = ctx.storage_init("x", &stored);
        let col = ctx.storage_init("col", &vec![JUNK; s.col_rows() * cs]);
        let call = Im2colCall {
            label: "im2col".into(),
            slide: s,
            layout: ImageLayout::Positions,
            x_stride: xs,
            col_stride: cs,
            ones: false,
            x: Slice::whole(&xb),
            col: Slice::whole(&col),
        };
        ctx.run(&[&kernel.im2col_at(&ctx, call, grain).unwrap()])
            .unwrap();
        let got = read(&ctx, &col, s.col_rows() * cs);
        let want = im2col(&common::widen(&x), &s);
        let want: Vec<f32> = want.iter().map(|&v| v as f32).collect();
        assert_eq!(
            real(&got, s.col_rows(), s.col_cols(), cs),
            common::widen(&want),
            "{s:?} {grain:?}"
        );
        assert!(
            (0..s.col_rows()).all(|r| got[r * cs + s.col_cols()..(r + 1) * cs]
                .iter()
                .all(|&v| v == 0.0)),
            "{s:?}: no ones column asked for, zeros to the stride"
        );
    }
}

/// col2im into a convolution's output layout, with and without Relu's
/// mask: every element of each row written (channels past C with 0), the
/// guard row left alone, a second run the same bits.
#[test]
fn col2im_writes_a_convolutions_output_layout_masked_by_relu() {
    let Some(ctx) = common::gpu() else { return };
    let kernel = Im2col::new(&ctx);
    for (s, masked) in conv_shapes()
        .into_iter()
        .flat_map(|s| [(s, false), (s, true)])
    {
        let (k, cs, i) = (s.col_cols(), padded(s.col_cols()), s.input);
        let positions = i.n * i.h * i.w;
        let dcol = values(s.col_rows() * k, 12);
        let cb = ctx.storage_init("dcol", &store(&dcol, s.col_rows(), k, cs));
        // Relu's output: about half the values 0.
        let relu: Vec<f32> = values(i.len(), 13).iter().map(|v| v.max(0.0)).collect();
        let (mask, xs) = as_positions(&relu, &s);
        let mb = ctx.storage_init("mask", &mask);
        let run = |grain| {
            let x = ctx.storage_init("dx", &vec![JUNK; (positions + 1) * xs]);
            let call = Col2imCall {
                label: "col2im".into(),
                slide: s,
                layout: ImageLayout::Positions,
                col_stride: cs,
                x_stride: xs,
                col: Slice::whole(&cb),
                relu_mask: masked.then(|| Slice::whole(&mb)),
                x: Slice::new(&x, 0, positions * xs),
            };
            ctx.run(&[&kernel.col2im_at(&ctx, call, grain).unwrap()])
                .unwrap();
            read(&ctx, &x, (positions + 1) * xs)
        };
        let got = run(WindowGrain::Elements);
        let chw = col2im(&common::widen(&dcol), &s);
        let relu_nhwc = nchw_to_nhwc(&common::widen(&relu), i.n, i.c, i.h * i.w);
        let want: Vec<f64> = nchw_to_nhwc(&chw, i.n, i.c, i.h * i.w)
            .iter()
            .zip(&relu_nhwc)
            .map(|(&d, &z)| if masked && z <= 0.0 { 0.0 } else { d })
            .collect();
        let what = format!("{s:?} masked {masked}");
        assert_close(&what, &real(&got, positions, i.c, xs), &want);
        for r in 0..positions {
            assert!(
                got[r * xs + i.c..(r + 1) * xs].iter().all(|&v| v == 0.0),
                "{what}: row {r}'s padding"
            );
        }
        assert!(
            got[positions * xs..].iter().all(|&v| v == JUNK),
            "{what}: guard row"
        );
        assert_eq!(got, run(WindowGrain::Elements), "{what}: a second run");
        let by_position = run(WindowGrain::Rows);
        assert_eq!(got, by_position, "{what}: by position, the same bits");
    }
}

/// A convolution's products reading im2col's matrix in place: the tiled
/// kernel with `Columns` (shaders/lib/columns.wgsl, `A_COLUMNS`).
mod in_place {
    use super::*;
    use gpu_net::gpu::kernels::{Columns, MatmulAlgo, SplitK, Tile};

    /// Images laid out as `layout` says, NaN in every gap (past a row's
    /// values, past C, a guard row): a read outside the images shows in C.
    fn images(x: &[f32], s: &Slide, layout: ImageLayout) -> (Vec<f32>, usize) {
        let (stored, stride) = match layout {
            ImageLayout::Images => {
                let per = s.input.per_image();
                (store(x, s.input.n, per, padded(per)), padded(per))
            }
            ImageLayout::Positions => as_positions(x, s),
        };
        let poisoned = stored
            .iter()
            .map(|&v| if v == JUNK { f32::NAN } else { v })
            .collect();
        (poisoned, stride)
    }

    /// Both products of one convolution by the tiled kernel: forward
    /// `[col, 1]·block` and the filters' gradient `[col, 1]ᵀ·dout`, A read
    /// from `col` or, with `columns`, from the images in `x`.
    struct Products<'a> {
        mm: &'a Matmul,
        g: GpuLayer,
        rows: usize,
        split: u32,
    }

    impl Products<'_> {
        fn run(
            &self,
            ctx: &GpuContext,
            a: &wgpu::Buffer,
            columns: Option<Columns>,
            [block, dout]: [&wgpu::Buffer; 2],
        ) -> (Vec<f32>, Vec<f32>) {
            let (g, all) = (self.g, padded_rows(self.rows));
            let out = ctx.storage_init("out", &vec![JUNK; all * g.cols()]);
            let dblock = ctx.storage_init("dblock", &vec![JUNK; g.len()]);
            let forward = MatmulCall {
                label: "forward".into(),
                v: MatmulVariant {
                    trans_a: false,
                    trans_b: false,
                    epilogue: Epilogue::Store,
                },
                shape: forward_shape(&g, self.rows),
                a: Slice::whole(a),
                b: Slice::whole(block),
                c: Slice::whole(&out),
                aux: None,
                columns,
            };
            let grad = MatmulCall {
                label: "dW".into(),
                v: MatmulVariant {
                    trans_a: true,
                    ..forward.v
                },
                shape: weight_grad_shape(&g, self.rows),
                b: Slice::whole(dout),
                c: Slice::whole(&dblock),
                ..forward
            };
            let split = SplitK::Slices(self.split);
            let dispatches = [
                self.mm.bind_split(ctx, forward, split).unwrap(),
                self.mm.bind_split(ctx, grad, split).unwrap(),
            ];
            ctx.run(&dispatches).unwrap();
            (
                read(ctx, &out, self.rows * g.cols()),
                read(ctx, &dblock, g.len()),
            )
        }
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    /// Awkward shapes, both layouts, both tiles, whole and split: against
    /// the CPU's Convolution, and bit for bit the products of the matrix
    /// im2col writes.
    #[test]
    fn the_tiled_product_reads_im2cols_matrix_in_place() {
        let Some(ctx) = common::gpu() else { return };
        let kernel = Im2col::new(&ctx);
        let shapes = [
            (slide(1, 1, 5, 7, 3, 1, 0), 1),
            (slide(3, 3, 7, 5, 3, 2, 1), 3),
            (slide(1, 3, 9, 6, 5, 1, 2), 17),
            (slide(17, 1, 28, 28, 5, 1, 0), 30), // SimpleConvNet's Conv1
            (slide(2, 17, 9, 9, 3, 1, 1), 33),
        ];
        for ((s, fnum), layout) in shapes
            .into_iter()
            .flat_map(|c| [ImageLayout::Images, ImageLayout::Positions].map(|l| (c, l)))
        {
            let (k, rows) = (s.col_cols(), s.col_rows());
            let g = GpuLayer {
                inputs: k,
                outputs: fnum,
                offset: 0,
            };
            let (x, w, b) = (
                values(s.input.len(), 21),
                values(fnum * k, 22),
                values(fnum, 23),
            );
            let (w64, b64) = (common::widen(&w), common::widen(&b));
            let mut cpu = Convolution::new(s, fnum);
            let want = cpu.forward(&common::widen(&x), &w64, &b64);
            let want = nchw_to_nhwc(&want, s.input.n, fnum, s.out_area());
            let dout = values(rows * fnum, 24);
            let grads = cpu.backward(
                &nhwc_to_nchw(&common::widen(&dout), s.input.n, fnum, s.out_area()),
                &w64,
            );

            let (stored, x_stride) = images(&x, &s, layout);
            let xb = ctx.storage_init("x", &stored);
            let columns = Columns {
                slide: s,
                layout,
                x_stride,
                ones: true,
            };
            let col = ctx.storage_init("col", &vec![0f32; padded_rows(rows) * g.rows()]);
            let call = Im2colCall {
                label: "im2col".into(),
                slide: s,
                layout,
                x_stride,
                col_stride: g.rows(),
                ones: true,
                x: Slice::whole(&xb),
                col: Slice::new(&col, 0, rows * g.rows()),
            };
            ctx.run(&[&kernel.im2col(&ctx, call).unwrap()]).unwrap();
            let block = ctx.storage_init("block", &conv_to_gpu(&g, &w64, &b64));
            let mut padded_dout = vec![0f32; padded_rows(rows) * g.cols()];
            for r in 0..rows {
                padded_dout[r * g.cols()..][..fnum].copy_from_slice(&dout[r * fnum..][..fnum]);
            }
            let db = ctx.storage_init("dout", &padded_dout);
            for (tile, split) in [Tile::T64, Tile::T128]
                .into_iter()
                .flat_map(|t| [1, 5].map(|s| (t, s)))
            {
                let mm = Matmul::with_algo(&ctx, MatmulAlgo::Tiled).with_tile(tile);
                let p = Products {
                    mm: &mm,
                    g,
                    rows,
                    split,
                };
                let what = format!("{s:?} {layout:?} {tile:?} split {split}");
                let stored = p.run(&ctx, &col, None, [&block, &db]);
                let (out, dblock) = p.run(&ctx, &xb, Some(columns), [&block, &db]);
                assert_eq!(bits(&out), bits(&stored.0), "{what}: forward");
                assert_eq!(bits(&dblock), bits(&stored.1), "{what}: dW");
                assert_close(
                    &format!("{what} forward"),
                    &real(&out, rows, fnum, g.cols()),
                    &want,
                );
                let (dw, dbias) = conv_from_gpu(&g, &dblock);
                assert_close(&format!("{what} dW"), &dw, &grads.dw);
                assert_close(&format!("{what} db"), &dbias, &grads.db);
            }
        }
    }

    /// The bit comparison above catches columns read wrong: without the
    /// ones column, the forward product loses its bias.
    #[test]
    fn columns_read_wrong_differ_from_im2cols_matrix() {
        let Some(ctx) = common::gpu() else { return };
        let s = slide(3, 1, 5, 7, 3, 1, 0);
        let (k, rows) = (s.col_cols(), s.col_rows());
        let g = GpuLayer {
            inputs: k,
            outputs: 3,
            offset: 0,
        };
        let x = values(s.input.len(), 31);
        let (stored, x_stride) = images(&x, &s, ImageLayout::Images);
        let xb = ctx.storage_init("x", &stored);
        let block = values(g.len(), 32);
        let block = ctx.storage_init("block", &block);
        let dout = ctx.storage_init("dout", &values(padded_rows(rows) * g.cols(), 33));
        let mm = Matmul::with_algo(&ctx, MatmulAlgo::Tiled);
        let p = Products {
            mm: &mm,
            g,
            rows,
            split: 1,
        };
        let columns = |ones| Columns {
            slide: s,
            layout: ImageLayout::Images,
            x_stride,
            ones,
        };
        let right = p.run(&ctx, &xb, Some(columns(true)), [&block, &dout]);
        let wrong = p.run(&ctx, &xb, Some(columns(false)), [&block, &dout]);
        assert_ne!(bits(&right.0), bits(&wrong.0));
    }

    #[test]
    fn columns_that_do_not_fit_the_product_or_the_images_are_refused() {
        let Some(ctx) = common::gpu() else { return };
        let s = slide(3, 1, 5, 7, 3, 1, 0);
        let (k, rows) = (s.col_cols(), s.col_rows());
        let g = GpuLayer {
            inputs: k,
            outputs: 3,
            offset: 0,
        };
        let per = s.input.per_image();
        let block = ctx.storage("block", (g.len() * 4) as u64);
        let out = ctx.storage("out", (padded_rows(rows) * g.cols() * 4) as u64);
        let bind = |mm: &Matmul, x_len: usize, rows: usize| {
            let x = ctx.storage("x", (x_len * 4) as u64);
            let call = MatmulCall {
                label: "conv".into(),
                v: MatmulVariant {
                    trans_a: false,
                    trans_b: false,
                    epilogue: Epilogue::Store,
                },
                shape: forward_shape(&g, rows),
                a: Slice::whole(&x),
                b: Slice::whole(&block),
                c: Slice::whole(&out),
                aux: None,
                columns: Some(Columns {
                    slide: s,
                    layout: ImageLayout::Images,
                    x_stride: padded(per),
                    ones: true,
                }),
            };
            mm.bind(&ctx, call).err().map(|e| e.to_string())
        };
        let tiled = Matmul::with_algo(&ctx, MatmulAlgo::Tiled);
        let whole = 2 * padded(per) + per;
        assert_eq!(bind(&tiled, whole, rows), None, "images that fit");
        let short = bind(&tiled, whole - 1, rows).expect("one value short");
        assert!(short.contains("the images hold"), "{short}");
        let fewer = bind(&tiled, whole, rows - 1).expect("a row fewer");
        assert!(fewer.contains("im2col's matrix is"), "{fewer}");
        let vec4 = Matmul::with_algo(&ctx, MatmulAlgo::Vec4Buffers);
        let refused = bind(&vec4, whole, rows).expect("the vec4 kernel");
        assert!(refused.contains("only the tiled matmul"), "{refused}");
    }
}
