//! `gpu-net predict`: test-set images written as PNGs the way a user would
//! make them (black on white, larger, off-centre) are prepared back into
//! MNIST's form and classified as `eval` classifies the originals.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use gpu_net::run::checkpoint::Checkpoint;
use image::{GenericImageView, GrayImage, Luma};

fn gpu_net(args: &[&str]) -> Output {
    common::run_cli(args)
}

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gpu-net-predict-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A model trained briefly on the CPU.
fn model(d: &Path) -> PathBuf {
    let path = d.join("m.safetensors");
    let o = gpu_net(&[
        "train",
        "--device",
        "cpu",
        "--iters",
        "1200",
        "--save",
        path.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    path
}

fn test_image(i: usize) -> GrayImage {
    let t = &common::mnist().test;
    GrayImage::from_raw(28, 28, t.image(i).to_vec()).unwrap()
}

/// Black ink on white paper, three times larger, off-centre on a wider page.
fn as_a_user_would(img: &GrayImage, i: usize) -> GrayImage {
    let big = image::imageops::resize(img, 84, 84, image::imageops::FilterType::Triangle);
    let mut page = GrayImage::from_pixel(160, 120, Luma([255]));
    let (ox, oy) = (10 + (i as u32 * 7) % 60, 5 + (i as u32 * 11) % 30);
    for (x, y, p) in big.enumerate_pixels() {
        page.put_pixel(ox + x, oy + y, Luma([255 - p.0[0]]));
    }
    page
}

fn labels(o: &Output) -> Vec<usize> {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let p = r["probabilities"].as_array().unwrap();
            assert_eq!(p.len(), 10);
            let sum: f64 = p.iter().map(|x| x.as_f64().unwrap()).sum();
            assert!((sum - 1.0).abs() < 1e-9);
            r["label"].as_u64().unwrap() as usize
        })
        .collect()
}

/// eval's classes for the first `n` test images (the same network on the
/// same pixels), and the logits they came from.
fn eval_classes(model: &Path, n: usize) -> (Vec<usize>, Vec<f64>) {
    let ck = Checkpoint::read(model).unwrap();
    let net = gpu_net::cpu::Net::new(&ck.params.arch);
    let idx: Vec<usize> = (0..n).collect();
    let logits = net.predict(&ck.params, &common::mnist().test.batch_f64(&idx), n);
    let classes = gpu_net::cpu::net::predicted_classes(&logits, n);
    (classes.iter().map(|&c| c as usize).collect(), logits)
}

#[test]
fn user_made_pngs_are_classified_as_eval_classifies_the_originals() {
    let d = dir("forms");
    let model = model(&d);
    let n = 40;
    let (want, logits) = eval_classes(&model, n);

    let (mut raw, mut user) = (vec![], vec![]);
    for i in 0..n {
        let (r, u) = (
            d.join(format!("raw{i}.png")),
            d.join(format!("user{i}.png")),
        );
        test_image(i).save(&r).unwrap();
        as_a_user_would(&test_image(i), i).save(&u).unwrap();
        raw.push(r);
        user.push(u);
    }
    let args = |files: &[PathBuf], raw: bool| {
        let mut a = vec![
            "predict".to_string(),
            "--model".into(),
            model.display().to_string(),
            "--json".into(),
        ];
        if raw {
            a.push("--raw".into());
        }
        a.extend(files.iter().map(|f| f.display().to_string()));
        a
    };
    let run = |a: Vec<String>| gpu_net(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let got_raw = labels(&run(args(&raw, true)));
    assert_eq!(got_raw, want, "--raw on the originals");
    let got_user = labels(&run(args(&user, false)));
    let agree = got_user.iter().zip(&want).filter(|(a, b)| a == b).count();
    eprintln!("black on white, 3x, off-centre: {agree} of {n} agree with eval");
    // Resampling (3x up, then down into the 20-pixel box) moves pixels by a
    // fraction: only a digit the model finds ambiguous may change class, one
    // whose two likeliest classes are within 0.5 of each other.
    for (i, (g, w)) in got_user.iter().zip(&want).enumerate() {
        if g != w {
            let p = gpu_net::report::predict::probabilities(&logits[i * 10..(i + 1) * 10]);
            let r = gpu_net::report::predict::ranked(&p);
            eprintln!(
                "image {i}: eval {w}, user form {g}; original's top two {:.3} {:.3}",
                p[r[0]], p[r[1]]
            );
            assert!(p[r[0]] - p[r[1]] < 0.5, "image {i}: a clear {w} became {g}");
        }
    }
    assert!(
        agree >= n - 2,
        "only {agree} of {n} agree: {got_user:?} vs {want:?}"
    );
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn prepare_recentres_and_inverts() {
    // A black bar on white, in a corner: it comes back light on dark, 20
    // pixels tall, with its centre of mass at the field's centre.
    let mut page = GrayImage::from_pixel(100, 60, Luma([250]));
    for y in 5..45 {
        for x in 3..13 {
            page.put_pixel(x, y, Luma([10]));
        }
    }
    let px = gpu_net::report::predict::prepare(&page).unwrap();
    let rows: Vec<usize> = (0..28)
        .filter(|&y| px[y * 28..(y + 1) * 28].iter().any(|&v| v > 128))
        .collect();
    assert_eq!(rows.len(), 20, "{rows:?}");
    let (mut sum, mut sx, mut sy) = (0.0, 0.0, 0.0);
    for (i, &v) in px.iter().enumerate() {
        sum += v as f64;
        sx += v as f64 * (i % 28) as f64;
        sy += v as f64 * (i / 28) as f64;
    }
    assert!(
        (sx / sum - 14.0).abs() <= 0.5 && (sy / sum - 14.0).abs() <= 0.5,
        "{} {}",
        sx / sum,
        sy / sum
    );
    assert!(
        gpu_net::report::predict::prepare(&GrayImage::from_pixel(30, 30, Luma([255]))).is_err()
    );
}

#[test]
fn bad_images_are_named_and_the_others_still_classified() {
    let d = dir("bad");
    let model = model(&d);
    let good = d.join("good.png");
    test_image(0).save(&good).unwrap();
    let text = d.join("notes.png");
    std::fs::write(&text, "this is not an image").unwrap();
    let cut = d.join("cut.png");
    let bytes = std::fs::read(&good).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    // A tiny PNG header claiming 100000 × 100000 pixels.
    let huge = d.join("huge.png");
    let mut h = bytes.clone();
    h[16..20].copy_from_slice(&100_000u32.to_be_bytes());
    h[20..24].copy_from_slice(&100_000u32.to_be_bytes());
    // IHDR's checksum, over its type and data, so only the size is wrong.
    let mut crc = flate2::Crc::new();
    crc.update(&h[12..29]);
    h[29..33].copy_from_slice(&crc.sum().to_be_bytes());
    std::fs::write(&huge, &h).unwrap();
    let blank = d.join("blank.png");
    GrayImage::from_pixel(50, 50, Luma([255]))
        .save(&blank)
        .unwrap();
    // A picture of no pixels (PGM allows one).
    let empty = d.join("empty.pgm");
    std::fs::write(&empty, "P5\n3 0\n255\n").unwrap();
    let o = gpu_net(&[
        "predict",
        "--model",
        model.to_str().unwrap(),
        "--show",
        text.to_str().unwrap(),
        good.to_str().unwrap(),
        cut.to_str().unwrap(),
        huge.to_str().unwrap(),
        blank.to_str().unwrap(),
        empty.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert!(!err.contains("panicked"), "{err}");
    for (f, why) in [
        ("notes.png", "decode"),
        ("cut.png", "decode"),
        (
            "huge.png",
            "100000×100000 is larger than the 8192×8192 read",
        ),
        ("blank.png", "blank"),
        ("empty.pgm", "the image is empty (3×0 pixels)"),
    ] {
        assert!(
            err.lines().any(|l| l.contains(f) && l.contains(why)),
            "{f}: {err}"
        );
    }
    // good.png is still classified, with its picture.
    assert!(
        out.lines().any(|l| l.starts_with(good.to_str().unwrap())),
        "{out}"
    );
    assert!(out.lines().filter(|l| l.len() == 28).count() >= 28, "{out}");
    // --raw needs 28×28.
    let o = gpu_net(&[
        "predict",
        "--model",
        model.to_str().unwrap(),
        "--raw",
        blank.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("28×28"));
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn show_weights_draws_each_unit_of_w1_as_a_tile() {
    let d = dir("weights");
    let model = model(&d);
    let out = d.join("w1.png");
    let o = gpu_net(&[
        "show-weights",
        "--model",
        model.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let img = image::open(&out).unwrap().to_rgb8();
    // 50 units: 8 columns, 7 rows of 84×84 tiles (3 pixels a weight) with
    // 1-pixel gaps.
    let tile = 28 * 3 + 1;
    assert_eq!(img.dimensions(), (8 * tile + 1, 7 * tile + 1));
    // Named .pgm, the picture is a PGM (P5, grey), the same size.
    let pgm = d.join("w1.pgm");
    let o = gpu_net(&[
        "show-weights",
        "--model",
        model.to_str().unwrap(),
        "-o",
        pgm.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(std::fs::read(&pgm).unwrap().starts_with(b"P5"));
    let grey = image::open(&pgm).unwrap();
    assert_eq!(grey.color(), image::ColorType::L8);
    assert_eq!(grey.dimensions(), img.dimensions());
    let ck = Checkpoint::read(&model).unwrap();
    let w1 = &ck.params.values[..784 * 50];
    for j in [0usize, 9, 49] {
        let column: Vec<f64> = (0..784).map(|i| w1[i * 50 + j]).collect();
        let (ox, oy) = ((j as u32 % 8) * tile + 1, (j as u32 / 8) * tile + 1);
        let at = |i: usize, dx: u32, dy: u32| {
            img.get_pixel(ox + (i % 28) as u32 * 3 + dx, oy + (i / 28) as u32 * 3 + dy)
                .0
        };
        // The largest |w| is the map's full colour: red if positive, blue if not.
        let big = (0..784)
            .max_by(|&a, &b| column[a].abs().total_cmp(&column[b].abs()))
            .unwrap();
        let full = if column[big] > 0.0 {
            [178, 24, 43]
        } else {
            [33, 102, 172]
        };
        assert_eq!(at(big, 1, 1), full, "unit {j}");
        for i in [0usize, 300, 406, 783] {
            let c = at(i, 0, 0);
            // One colour over the weight's 3×3 pixels, its sign by red or blue.
            assert!((0..3).all(|d| at(i, d, 2 - d) == c), "unit {j} pixel {i}");
            if column[i].abs() > 0.05 * column[big].abs() {
                assert_eq!(c[0] > c[2], column[i] > 0.0, "unit {j} pixel {i}: {c:?}");
            }
        }
    }
    // --scale 1: one pixel a weight.
    let o = gpu_net(&[
        "show-weights",
        "--model",
        model.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--scale",
        "1",
    ]);
    assert!(o.status.success());
    assert_eq!(image::open(&out).unwrap().width(), 8 * 29 + 1);
    let o = gpu_net(&[
        "show-weights",
        "--model",
        "/nonexistent.st",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent.st"));
    std::fs::remove_dir_all(&d).ok();
}

/// The user's page (black on white, 160×120) on a 200×160 canvas, as the
/// pictures people hand over come.
mod photos {
    use image::{DynamicImage, GrayImage, Luma, Rgb, RgbImage, Rgba, RgbaImage};

    /// Ink amount (0 paper, 1 ink) at each pixel of the page, centred on a
    /// 200×160 canvas.
    fn amount(page: &GrayImage) -> impl Fn(u32, u32) -> f64 + '_ {
        move |x, y| {
            let (px, py) = (x as i64 - 20, y as i64 - 20);
            if px < 0 || py < 0 || px >= page.width() as i64 || py >= page.height() as i64 {
                0.0
            } else {
                1.0 - page.get_pixel(px as u32, py as u32).0[0] as f64 / 255.0
            }
        }
    }

    fn gray(f: impl Fn(u32, u32) -> f64) -> DynamicImage {
        DynamicImage::ImageLuma8(GrayImage::from_fn(200, 160, |x, y| {
            Luma([f(x, y).clamp(0.0, 255.0).round() as u8])
        }))
    }

    /// A scan's 3-pixel dark frame around white paper.
    pub fn framed(page: &GrayImage) -> DynamicImage {
        let a = amount(page);
        gray(|x, y| {
            let edge = x < 3 || y < 3 || x >= 197 || y >= 157;
            if edge { 20.0 } else { 255.0 * (1.0 - a(x, y)) }
        })
    }

    /// Grey paper, values 90 (ink) to 210 (paper).
    pub fn grey_paper(page: &GrayImage) -> DynamicImage {
        let a = amount(page);
        gray(|x, y| 210.0 - 120.0 * a(x, y))
    }

    /// Grey paper with a texture of ±20.
    pub fn textured(page: &GrayImage) -> DynamicImage {
        let a = amount(page);
        gray(|x, y| {
            let h = (x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503)) % 41;
            200.0 - 120.0 * a(x, y) + h as f64 - 20.0
        })
    }

    /// Black strokes on a transparent background, as drawing apps export.
    pub fn transparent(page: &GrayImage) -> DynamicImage {
        let a = amount(page);
        DynamicImage::ImageRgba8(RgbaImage::from_fn(200, 160, |x, y| {
            Rgba([0, 0, 0, (255.0 * a(x, y)).round() as u8])
        }))
    }

    /// White everywhere, the digit only in the alpha (over (255,255,255,0)).
    pub fn in_the_alpha(page: &GrayImage) -> DynamicImage {
        let a = amount(page);
        DynamicImage::ImageRgba8(RgbaImage::from_fn(200, 160, |x, y| {
            Rgba([255, 255, 255, (255.0 * a(x, y)).round() as u8])
        }))
    }

    /// A pen's blue ink on white paper, photographed in light that falls
    /// from 100% on the right to 45% on the left.
    pub fn blue_ink_uneven_light(page: &GrayImage) -> DynamicImage {
        let a = amount(page);
        DynamicImage::ImageRgb8(RgbImage::from_fn(200, 160, |x, y| {
            let light = 0.45 + 0.55 * x as f64 / 199.0;
            let (paper, ink) = ([250.0, 245.0, 235.0], [30.0, 60.0, 200.0]);
            let t = a(x, y);
            let c = |k: usize| ((paper[k] * (1.0 - t) + ink[k] * t) * light).round() as u8;
            Rgb([c(0), c(1), c(2)])
        }))
    }

    /// A JPEG stored turned a quarter to the left, with the EXIF
    /// Orientation 6 ("rotate 90° clockwise to view") a camera writes.
    pub fn exif_rotated_jpeg(page: &GrayImage) -> Vec<u8> {
        let upright = framed_free(page);
        let stored = image::imageops::rotate270(&upright);
        let mut jpeg = std::io::Cursor::new(Vec::new());
        DynamicImage::ImageLuma8(stored)
            .write_to(&mut jpeg, image::ImageFormat::Jpeg)
            .unwrap();
        let jpeg = jpeg.into_inner();
        // APP1: "Exif\0\0", a little-endian TIFF header, one IFD entry
        // (0x0112 Orientation, SHORT, 1, value 6), no next IFD.
        let mut exif =
            b"Exif\0\0II*\0\x08\0\0\0\x01\0\x12\x01\x03\0\x01\0\0\0\x06\0\0\0\0\0\0\0".to_vec();
        let len = (exif.len() + 2) as u16;
        let mut app1 = vec![0xff, 0xe1];
        app1.extend(len.to_be_bytes());
        app1.append(&mut exif);
        [&jpeg[..2], &app1[..], &jpeg[2..]].concat()
    }

    fn framed_free(page: &GrayImage) -> GrayImage {
        let a = amount(page);
        GrayImage::from_fn(200, 160, |x, y| {
            Luma([(255.0 * (1.0 - a(x, y))).round() as u8])
        })
    }
}

#[test]
fn photos_on_every_paper_are_classified_as_eval_classifies_the_originals() {
    let d = dir("photos");
    let model = model(&d);
    let n = 40;
    let (want, _) = eval_classes(&model, n);
    type Make = fn(&GrayImage) -> image::DynamicImage;
    let kinds: [(&str, Make); 6] = [
        ("a 3-pixel dark frame", photos::framed),
        ("grey paper (90-210)", photos::grey_paper),
        ("textured grey paper", photos::textured),
        ("a transparent background", photos::transparent),
        ("the digit in the alpha", photos::in_the_alpha),
        ("blue ink in uneven light", photos::blue_ink_uneven_light),
    ];
    let mut lines = vec![];
    for (k, (name, make)) in kinds.iter().enumerate() {
        let files: Vec<String> = (0..n)
            .map(|i| {
                let f = d.join(format!("k{k}-{i}.png"));
                make(&as_a_user_would(&test_image(i), i)).save(&f).unwrap();
                f.display().to_string()
            })
            .collect();
        let mut args = vec!["predict", "--model", model.to_str().unwrap(), "--json"];
        args.extend(files.iter().map(String::as_str));
        let got = labels(&gpu_net(&args));
        let agree = got.iter().zip(&want).filter(|(a, b)| a == b).count();
        lines.push(format!("{name}: {agree} of {n} agree with eval"));
    }
    let files: Vec<String> = (0..n)
        .map(|i| {
            let f = d.join(format!("exif-{i}.jpg"));
            std::fs::write(
                &f,
                photos::exif_rotated_jpeg(&as_a_user_would(&test_image(i), i)),
            )
            .unwrap();
            f.display().to_string()
        })
        .collect();
    let mut args = vec!["predict", "--model", model.to_str().unwrap(), "--json"];
    args.extend(files.iter().map(String::as_str));
    let got = labels(&gpu_net(&args));
    let agree = got.iter().zip(&want).filter(|(a, b)| a == b).count();
    lines.push(format!(
        "a JPEG with EXIF orientation 6: {agree} of {n} agree with eval"
    ));
    eprintln!("{}", lines.join("\n"));
    for line in &lines {
        let agree: usize = line
            .split(": ")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(agree >= n - 4, "{line}");
    }
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn pictures_without_contrast_are_blank_not_a_digit() {
    let d = dir("blank");
    let model = model(&d);
    let noisy = GrayImage::from_fn(200, 200, |x, y| {
        Luma([(128 + (x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503)) % 25 - 12) as u8])
    });
    // Paper with a grain, and the Gaussian noise (σ 12) of a dim photo.
    let textured = photos::textured(&GrayImage::from_pixel(160, 120, Luma([255]))).to_luma8();
    let mut seed = 1u64;
    let mut uniform = move || {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        ((seed >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    };
    let gaussian = GrayImage::from_fn(200, 160, |_, _| {
        let (u, v) = (uniform(), uniform());
        let z = (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos();
        Luma([(150.0 + 12.0 * z).round() as u8])
    });
    let pictures = [
        ("textured.png", textured),
        ("gaussian.png", gaussian),
        ("grey.png", GrayImage::from_pixel(200, 200, Luma([128]))),
        ("light.png", GrayImage::from_pixel(200, 200, Luma([200]))),
        ("dark.png", GrayImage::from_pixel(200, 200, Luma([60]))),
        ("noisy.png", noisy),
        ("pixel.png", GrayImage::from_pixel(1, 1, Luma([128]))),
    ];
    for (name, img) in pictures {
        let f = d.join(name);
        img.save(&f).unwrap();
        let o = gpu_net(&[
            "predict",
            "--model",
            model.to_str().unwrap(),
            f.to_str().unwrap(),
        ]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{name}: {err}");
        assert!(err.contains("no digit found"), "{name}: {err}");
    }
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn the_readmes_photo_is_a_seven() {
    // data/examples/seven-photo.png: test image 0 (a 7) in blue ink, light
    // falling to half across the page, inside a scan's dark frame.
    let d = dir("readme");
    let model = model(&d);
    let photo = concat!(env!("CARGO_MANIFEST_DIR"), "/data/examples/seven-photo.png");
    let predict = |extra: &[&str]| {
        let mut args = vec!["predict", "--model", model.to_str().unwrap()];
        args.extend(extra);
        args.push(photo);
        gpu_net(&args)
    };
    assert_eq!(labels(&predict(&["--json"])), [7]);
    // Told what auto decided (in any case, as --device takes it): the same.
    assert_eq!(labels(&predict(&["--invert", "YES", "--json"])), [7]);
    // Told it is light ink on dark, it sees the paper as ink: not a 7 it is sure of.
    let o = predict(&["--invert", "no", "--show"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(!out.contains(": 7 (0.9"), "{out}");
    std::fs::remove_dir_all(&d).ok();
}
