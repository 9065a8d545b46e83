//! `gpu-net predict`: test-set images written as PNGs the way a user would
//! make them (black on white, larger, off-centre) are prepared back into
//! MNIST's form and classified as `eval` classifies the originals.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use gpu_net::checkpoint::Checkpoint;
use image::{GrayImage, Luma};

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

#[test]
fn user_made_pngs_are_classified_as_eval_classifies_the_originals() {
    let d = dir("forms");
    let model = model(&d);
    // eval's classes for the originals: the same network on the same pixels.
    let ck = Checkpoint::read(&model).unwrap();
    let net = gpu_net::cpu::Net::new(&ck.params.arch);
    let n = 40;
    let idx: Vec<usize> = (0..n).collect();
    let logits = net.predict(&ck.params, &common::mnist().test.batch_f64(&idx), n);
    let want = gpu_net::cpu::net::predicted_classes(&logits, n);

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
    let want: Vec<usize> = want.iter().map(|&c| c as usize).collect();
    assert_eq!(got_raw, want, "--raw on the originals");
    let got_user = labels(&run(args(&user, false)));
    let agree = got_user.iter().zip(&want).filter(|(a, b)| a == b).count();
    eprintln!("black on white, 3x, off-centre: {agree} of {n} agree with eval");
    // Resampling (3x up, then down into the 20-pixel box) moves pixels by a
    // fraction: only a digit the model finds ambiguous may change class, one
    // whose two likeliest classes are within 0.5 of each other.
    for (i, (g, w)) in got_user.iter().zip(&want).enumerate() {
        if g != w {
            let p = gpu_net::predict::probabilities(&logits[i * 10..(i + 1) * 10]);
            let r = gpu_net::predict::ranked(&p);
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
    let px = gpu_net::predict::prepare(&page).unwrap();
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
    assert!(gpu_net::predict::prepare(&GrayImage::from_pixel(30, 30, Luma([255]))).is_err());
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
        ("huge.png", "limit"),
        ("blank.png", "blank"),
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
    let img = image::open(&out).unwrap().to_luma8();
    // 50 units: 8 columns, 7 rows of 28×28 tiles with 1-pixel gaps.
    assert_eq!(img.dimensions(), (8 * 29 + 1, 7 * 29 + 1));
    let ck = Checkpoint::read(&model).unwrap();
    let w1 = &ck.params.values[..784 * 50];
    for j in [0usize, 9, 49] {
        let column: Vec<f64> = (0..784).map(|i| w1[i * 50 + j]).collect();
        let scale = column.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let (ox, oy) = ((j % 8) * 29 + 1, (j / 8) * 29 + 1);
        for i in [0usize, 300, 406, 783] {
            let want = (127.5 + 127.5 * column[i] / scale).round() as u8;
            let got = img.get_pixel((ox + i % 28) as u32, (oy + i / 28) as u32).0[0];
            assert_eq!(got, want, "unit {j} pixel {i}");
        }
    }
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
