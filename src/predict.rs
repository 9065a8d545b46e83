//! `gpu-net predict`: a user's own image of a digit, prepared the way MNIST
//! was (LeCun's description), then classified by a checkpoint.
//!
//! MNIST's digits were size-normalised to fit a 20×20 box keeping their
//! aspect ratio (anti-aliased, hence grey levels), then placed in a 28×28
//! field with their centre of mass at its centre; ink is light on a dark
//! background. A photo or scan is brought there: grayscale, dark-on-light
//! inverted, cropped to the digit's bounding box, scaled into 20×20, centred
//! by its centre of mass.

use std::path::Path;

use image::imageops::FilterType;
use image::{GrayImage, ImageReader, Limits};

/// MNIST's field and the box its digits fill.
pub const SIDE: usize = 28;
const BOX: u32 = 20;
/// The largest picture decoded: a digit needs no more, and a small file
/// that claims a huge size must not make us allocate it.
pub const MAX_SIDE: u32 = 8192;
const MAX_ALLOC: u64 = 256 << 20;

#[derive(Debug, thiserror::Error)]
#[error("{file}: {why}")]
pub struct PredictError {
    pub file: String,
    pub why: String,
}

fn fail(path: &Path, why: impl std::fmt::Display) -> PredictError {
    PredictError {
        file: path.display().to_string(),
        why: why.to_string(),
    }
}

/// Writes `img` whole (or not at all) in the format its name says: PNG,
/// JPEG, BMP or PGM; any other name is refused before anything is written.
pub fn save_image(img: &GrayImage, path: &Path) -> Result<(), PredictError> {
    use image::ImageFormat as F;
    let format = F::from_path(path)
        .ok()
        .filter(|f| matches!(f, F::Png | F::Jpeg | F::Bmp | F::Pnm))
        .ok_or_else(|| fail(path, "name the image .png, .jpg, .bmp or .pgm"))?;
    let mut bytes = std::io::Cursor::new(Vec::new());
    img.write_to(&mut bytes, format)
        .map_err(|e| fail(path, e))?;
    crate::files::write(path, bytes.get_ref()).map_err(|e| fail(path, e.error))
}

/// Decodes an image (PNG, JPEG, BMP or PGM/PNM) to grayscale, within limits.
pub fn decode(path: &Path) -> Result<GrayImage, PredictError> {
    crate::files::check_regular(path).map_err(|e| fail(path, e.error))?;
    let mut reader = ImageReader::open(path)
        .map_err(|e| fail(path, e))?
        .with_guessed_format()
        .map_err(|e| fail(path, e))?;
    if reader.format().is_none() {
        return Err(fail(path, "not a PNG, JPEG, BMP or PGM image"));
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_ALLOC);
    reader.limits(limits);
    let img = reader
        .decode()
        .map_err(|e| fail(path, format!("cannot decode it: {e}")))?;
    Ok(img.to_luma8())
}

/// The 28×28 input (u8, light ink on dark) for an image file: prepared as
/// MNIST was, or with `raw` taken as it is (it must then be 28×28).
pub fn load(path: &Path, raw: bool) -> Result<Vec<u8>, PredictError> {
    let gray = decode(path)?;
    if raw {
        if gray.dimensions() != (SIDE as u32, SIDE as u32) {
            return Err(fail(
                path,
                format!(
                    "--raw needs a 28×28 image, this one is {}×{}",
                    gray.width(),
                    gray.height()
                ),
            ));
        }
        return Ok(gray.into_raw());
    }
    prepare(&gray).map_err(|why| fail(path, why))
}

/// MNIST's preparation of a grayscale picture.
pub fn prepare(gray: &GrayImage) -> Result<Vec<u8>, String> {
    let (w, h) = gray.dimensions();
    // Dark ink on a light background (paper) is inverted: the border says which.
    let border: Vec<u8> = gray
        .enumerate_pixels()
        .filter(|(x, y, _)| *x == 0 || *y == 0 || *x + 1 == w || *y + 1 == h)
        .map(|(_, _, p)| p.0[0])
        .collect();
    let light = border.iter().map(|&v| v as u64).sum::<u64>() > 127 * border.len() as u64;
    let ink = |v: u8| if light { 255 - v } else { v };
    let max = gray.pixels().map(|p| ink(p.0[0])).max().unwrap_or(0);
    // The bounding box of the ink (a tenth of the strongest: above a
    // photo's noise, below an anti-aliased edge).
    let strong = (max as u32 / 10).max(1) as u8;
    let (mut x0, mut y0, mut x1, mut y1) = (w, h, 0, 0);
    for (x, y, p) in gray.enumerate_pixels() {
        if ink(p.0[0]) >= strong && max > 0 {
            (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
        }
    }
    if x0 > x1 || max < 32 {
        return Err("no digit found: the image is blank".into());
    }
    let (cw, ch) = (x1 - x0 + 1, y1 - y0 + 1);
    let crop = GrayImage::from_fn(cw, ch, |x, y| {
        image::Luma([ink(gray.get_pixel(x0 + x, y0 + y).0[0])])
    });
    // Into the 20×20 box, keeping the aspect ratio.
    let (nw, nh) = if cw >= ch {
        (BOX, ((BOX * ch) as f64 / cw as f64).round().max(1.0) as u32)
    } else {
        (((BOX * cw) as f64 / ch as f64).round().max(1.0) as u32, BOX)
    };
    let small = image::imageops::resize(&crop, nw, nh, FilterType::Triangle);
    // Centre of mass to the field's centre: MNIST's digits have theirs at
    // pixel (14, 14) counting pixels from 0 (measured: 14.01, 13.99 over the
    // first 1000 test images).
    let (mut sum, mut sx, mut sy) = (0.0, 0.0, 0.0);
    for (x, y, p) in small.enumerate_pixels() {
        let v = p.0[0] as f64;
        sum += v;
        sx += v * x as f64;
        sy += v * y as f64;
    }
    if sum == 0.0 {
        return Err("no digit found: the image is blank".into());
    }
    let half = SIDE as f64 / 2.0;
    let (dx, dy) = (
        (half - sx / sum).round() as i64,
        (half - sy / sum).round() as i64,
    );
    let mut out = vec![0u8; SIDE * SIDE];
    for (x, y, p) in small.enumerate_pixels() {
        let (tx, ty) = (x as i64 + dx, y as i64 + dy);
        if (0..SIDE as i64).contains(&tx) && (0..SIDE as i64).contains(&ty) {
            out[ty as usize * SIDE + tx as usize] = p.0[0];
        }
    }
    Ok(out)
}

/// The 28×28 input as text, darkest to brightest ` .:-=+*#%@`.
pub fn show(pixels: &[u8]) -> String {
    const RAMP: &[u8] = b" .:-=+*#%@";
    pixels
        .chunks(SIDE)
        .map(|row| {
            let line: String = row
                .iter()
                .map(|&v| RAMP[v as usize * (RAMP.len() - 1) / 255] as char)
                .collect();
            line + "\n"
        })
        .collect()
}

/// Softmax of logits.
pub fn probabilities(logits: &[f64]) -> Vec<f64> {
    let max = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = logits.iter().map(|v| (v - max).exp()).collect();
    let sum: f64 = e.iter().sum();
    e.iter().map(|v| v / sum).collect()
}

/// The classes by falling probability (ties: the smaller class first).
pub fn ranked(p: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..p.len()).collect();
    order.sort_by(|&a, &b| p[b].total_cmp(&p[a]).then(a.cmp(&b)));
    order
}

/// The first layer's weights as a grid of images, one tile per hidden unit:
/// column j of `W1` (784 values) as 28×28, each tile scaled on its own so
/// that 0 is mid-grey and its largest |w| is black or white (white:
/// positive, where the unit wants ink). Tiles are separated by 1 pixel.
pub fn weight_grid(w1: &[f64], inputs: usize, units: usize) -> GrayImage {
    let cols = (units as f64).sqrt().ceil() as usize;
    let rows = units.div_ceil(cols);
    let tile = SIDE + 1;
    let mut img = GrayImage::from_pixel(
        (cols * tile + 1) as u32,
        (rows * tile + 1) as u32,
        image::Luma([0]),
    );
    for j in 0..units {
        let column: Vec<f64> = (0..inputs).map(|i| w1[i * units + j]).collect();
        let scale = column
            .iter()
            .fold(0.0f64, |m, v| m.max(v.abs()))
            .max(f64::MIN_POSITIVE);
        let (ox, oy) = ((j % cols) * tile + 1, (j / cols) * tile + 1);
        for (i, v) in column.iter().enumerate() {
            let g = (127.5 + 127.5 * v / scale).round().clamp(0.0, 255.0) as u8;
            img.put_pixel(
                (ox + i % SIDE) as u32,
                (oy + i / SIDE) as u32,
                image::Luma([g]),
            );
        }
    }
    img
}
