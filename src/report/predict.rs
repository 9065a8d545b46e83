//! `gpu-net predict`: a user's own image of a digit, prepared the way MNIST
//! was (LeCun's description), then classified by a checkpoint.
//!
//! MNIST's digits were size-normalised to fit a 20×20 box keeping their
//! aspect ratio (anti-aliased, hence grey levels), then placed in a 28×28
//! field with their centre of mass at its centre; ink is light on a dark
//! background. A photo or scan is brought there: its ink found on whatever
//! paper it is on (`photo`), cropped to the digit's bounding box, scaled
//! into 20×20, centred by its centre of mass.

use std::path::Path;

use image::imageops::FilterType;
use image::{DynamicImage, GenericImageView, GrayImage, ImageReader, Limits, RgbImage};

use crate::report::photo;
pub use crate::report::photo::Invert;

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
    /// The name itself is wrong (an output named for a format it cannot
    /// be): a usage error, not a failure of the work.
    pub misnamed: bool,
}

/// A picture named for another format.
impl crate::core::error::LayerError for PredictError {
    fn is_usage(&self) -> bool {
        self.misnamed
    }
}

fn fail(path: &Path, why: impl std::fmt::Display) -> PredictError {
    PredictError {
        file: path.display().to_string(),
        why: why.to_string(),
        misnamed: false,
    }
}

/// The format an output image's name says (PNG, JPEG, BMP or PGM), and
/// that it can be written there; checked before the work that draws it.
pub fn image_format(path: &Path) -> Result<image::ImageFormat, PredictError> {
    use image::ImageFormat as F;
    let format = F::from_path(path)
        .ok()
        .filter(|f| matches!(f, F::Png | F::Jpeg | F::Bmp | F::Pnm))
        .ok_or_else(|| PredictError {
            misnamed: true,
            ..fail(path, "name the image .png, .jpg, .bmp or .pgm")
        })?;
    crate::core::files::check_writable(path).map_err(|e| fail(path, e))?;
    Ok(format)
}

/// Writes `img` whole (or not at all) in the format its name says: PNG,
/// JPEG, BMP or PGM (grey, as the name promises: the image crate would
/// write a colour picture as PAM); any other name is refused before
/// anything is written.
pub fn save_image(img: &DynamicImage, path: &Path) -> Result<(), PredictError> {
    let format = image_format(path)?;
    let mut bytes = std::io::Cursor::new(Vec::new());
    let written = if format == image::ImageFormat::Pnm {
        use image::ImageEncoder;
        use image::codecs::pnm::{PnmEncoder, PnmSubtype, SampleEncoding};
        let grey = img.to_luma8();
        PnmEncoder::new(&mut bytes)
            .with_subtype(PnmSubtype::Graymap(SampleEncoding::Binary))
            .write_image(
                grey.as_raw(),
                grey.width(),
                grey.height(),
                image::ExtendedColorType::L8,
            )
    } else {
        img.write_to(&mut bytes, format)
    };
    written.map_err(|e| fail(path, e))?;
    crate::core::files::write(path, bytes.get_ref()).map_err(|e| fail(path, e.error))
}

/// Decodes an image (PNG, JPEG, BMP or PGM/PNM) within limits, turned as
/// its EXIF orientation says a viewer shows it.
pub fn decode(path: &Path) -> Result<DynamicImage, PredictError> {
    use image::ImageDecoder;
    crate::core::files::check_regular(path).map_err(|e| fail(path, e.error))?;
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
    let cannot = |e: image::ImageError| fail(path, format!("cannot decode it: {e}"));
    let mut decoder = reader.into_decoder().map_err(|e| match e {
        // The decoder refuses a side past the limits before it says the size.
        image::ImageError::Limits(_) => match header_size(path) {
            Some((w, h)) => fail(
                path,
                format!("{w}×{h} is larger than the {MAX_SIDE}×{MAX_SIDE} read"),
            ),
            None => cannot(e),
        },
        e => cannot(e),
    })?;
    let (w, h) = decoder.dimensions();
    if w == 0 || h == 0 {
        return Err(fail(path, format!("the image is empty ({w}×{h} pixels)")));
    }
    if w > MAX_SIDE || h > MAX_SIDE {
        return Err(fail(
            path,
            format!("{w}×{h} is larger than the {MAX_SIDE}×{MAX_SIDE} read"),
        ));
    }
    if decoder.total_bytes() > MAX_ALLOC {
        return Err(fail(
            path,
            format!(
                "{w}×{h} decodes to {} MB, over the {} MB read",
                decoder.total_bytes() >> 20,
                MAX_ALLOC >> 20
            ),
        ));
    }
    let orientation = decoder.orientation().map_err(cannot)?;
    let mut img = DynamicImage::from_decoder(decoder).map_err(cannot)?;
    img.apply_orientation(orientation);
    Ok(img)
}

/// The width and height an image's header gives, read without limits
/// (nothing is decoded).
fn header_size(path: &Path) -> Option<(u32, u32)> {
    ImageReader::open(path)
        .ok()?
        .with_guessed_format()
        .ok()?
        .into_dimensions()
        .ok()
}

/// The 28×28 input (u8, light ink on dark) for an image file: prepared as
/// MNIST was, or with `raw` taken as it is (it must then be 28×28).
pub fn load(path: &Path, raw: bool, invert: Invert) -> Result<Vec<u8>, PredictError> {
    let img = decode(path)?;
    if raw {
        if img.dimensions() != (SIDE as u32, SIDE as u32) {
            return Err(fail(
                path,
                format!(
                    "--raw needs a 28×28 image, this one is {}×{}",
                    img.width(),
                    img.height()
                ),
            ));
        }
        return Ok(img.to_luma8().into_raw());
    }
    prepare_with(&photo::flatten(&img), invert).map_err(|why| fail(path, why))
}

/// MNIST's preparation of a grayscale picture, ink told from paper by the
/// picture ([`photo::ink`]).
pub fn prepare(gray: &GrayImage) -> Result<Vec<u8>, String> {
    prepare_with(gray, Invert::Auto)
}

/// [`prepare`], with whether the picture is dark ink on light paper given.
pub fn prepare_with(gray: &GrayImage, invert: Invert) -> Result<Vec<u8>, String> {
    let ink = photo::ink(gray, invert)?;
    let (w, h) = ink.dimensions();
    // The bounding box of the ink: past a quarter of its stretched range
    // (the paper is 0, an anti-aliased edge's faint end falls outside).
    let (mut x0, mut y0, mut x1, mut y1) = (w, h, 0, 0);
    for (x, y, p) in ink.enumerate_pixels() {
        if p.0[0] >= 64 {
            (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
        }
    }
    if x0 > x1 {
        return Err("no digit found: the image is blank".into());
    }
    let (cw, ch) = (x1 - x0 + 1, y1 - y0 + 1);
    let crop = GrayImage::from_fn(cw, ch, |x, y| *ink.get_pixel(x0 + x, y0 + y));
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

/// The class probabilities the network of `params` gives one prepared
/// image (its bytes, as [`load`] gives them), on the f64 reference path in
/// evaluation form: a handful of images needs no GPU.
pub fn classify(params: &crate::core::model::Params, pixels: &[u8]) -> Vec<f64> {
    let net = crate::cpu::CpuNetwork::of(&params.arch);
    let x: Vec<f64> = pixels.iter().map(|&v| v as f64 / 255.0).collect();
    probabilities(&net.predict(params, &x, 1))
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

/// The colour of a weight `t` of its tile's largest |w| (in [-1, 1]) on a
/// map centred on zero: white at 0, red to +1 (where the unit wants ink),
/// blue to -1 (where ink counts against it).
pub fn diverging(t: f64) -> [u8; 3] {
    const ZERO: [f64; 3] = [247.0, 247.0, 247.0];
    const POSITIVE: [f64; 3] = [178.0, 24.0, 43.0];
    const NEGATIVE: [f64; 3] = [33.0, 102.0, 172.0];
    let t = t.clamp(-1.0, 1.0);
    let end = if t >= 0.0 { POSITIVE } else { NEGATIVE };
    let a = t.abs();
    std::array::from_fn(|k| (ZERO[k] * (1.0 - a) + end[k] * a).round() as u8)
}

/// The tile scale `show-weights` uses unless told: tiles of at least 84
/// pixels, large enough to see a stroke.
pub const DEFAULT_SCALE: u32 = 3;

/// The most pixels `show-weights` draws (8192², 192 MB of RGB).
pub const MAX_GRID_PIXELS: u64 = 1 << 26;

/// The pictures `show-weights` draws: one tile per unit of the first
/// layer, `h × w` weights each, row-major.
pub struct Tiles {
    pub tiles: Vec<Vec<f64>>,
    pub h: usize,
    pub w: usize,
}

impl Tiles {
    /// A first Affine's `W1` column by column as 28×28 images (none for
    /// other input sizes), or a first convolution's filters `W1[f, 0]` as
    /// FH×FW images (the first channel, as the book's `visualize_filter.py`).
    pub fn first_layer(params: &crate::core::model::Params) -> Option<Tiles> {
        let first = &params.arch.tensors()[0];
        let w1 = params.tensor(first);
        match first.shape[..] {
            [_, c, fh, fw] => Some(Tiles {
                tiles: w1
                    .chunks_exact(c * fh * fw)
                    .map(|f| f[..fh * fw].to_vec())
                    .collect(),
                h: fh,
                w: fw,
            }),
            [inputs, units] if inputs == SIDE * SIDE => Some(Tiles {
                tiles: (0..units)
                    .map(|j| (0..inputs).map(|i| w1[i * units + j]).collect())
                    .collect(),
                h: SIDE,
                w: SIDE,
            }),
            _ => None,
        }
    }

    /// Pixels a weight at `scale`: `scale` for 28×28 tiles, more for
    /// smaller ones, so that every tile is about `28·scale` pixels wide.
    pub fn pixels_per_weight(&self, scale: u32) -> u32 {
        let side = self.h.max(self.w).max(1) as u32;
        (SIDE as u32 * scale / side).max(scale)
    }

    /// Width and height of [`weight_grid`]'s image at `px` pixels a weight.
    pub fn grid_size(&self, px: u32) -> (u64, u64) {
        let units = self.tiles.len();
        let cols = (units as f64).sqrt().ceil() as u64;
        let rows = (units as u64).div_ceil(cols.max(1));
        let (th, tw) = (self.h as u64 * px as u64 + 1, self.w as u64 * px as u64 + 1);
        (cols * tw + 1, rows * th + 1)
    }

    /// `px`, or the largest below it whose grid stays within
    /// [`MAX_GRID_PIXELS`] (at least 1: 65536 units at 1 pixel a weight
    /// fit).
    pub fn fitting(&self, px: u32) -> u32 {
        (1..=px)
            .rev()
            .find(|&s| {
                let (w, h) = self.grid_size(s);
                w * h <= MAX_GRID_PIXELS
            })
            .unwrap_or(1)
    }
}

/// The tiles as a grid, `px` pixels a weight, each tile coloured on its own
/// [`diverging`] map (its largest |w| full colour), separated by a grey
/// line of 1 pixel.
pub fn weight_grid(t: &Tiles, px: u32) -> RgbImage {
    let cols = (t.tiles.len() as f64).sqrt().ceil() as usize;
    let (th, tw) = (t.h as u32 * px, t.w as u32 * px);
    let (w, h) = t.grid_size(px);
    let mut img = RgbImage::from_pixel(w as u32, h as u32, image::Rgb([128, 128, 128]));
    for (j, tile) in t.tiles.iter().enumerate() {
        let largest = tile
            .iter()
            .fold(0.0f64, |m, v| m.max(v.abs()))
            .max(f64::MIN_POSITIVE);
        let (ox, oy) = (
            (j % cols) as u32 * (tw + 1) + 1,
            (j / cols) as u32 * (th + 1) + 1,
        );
        for y in 0..th {
            for x in 0..tw {
                let i = (y / px) as usize * t.w + (x / px) as usize;
                img.put_pixel(ox + x, oy + y, image::Rgb(diverging(tile[i] / largest)));
            }
        }
    }
    img
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_weight_grid_is_drawn_smaller_rather_than_past_its_limit() {
        let tiles = |units| Tiles {
            tiles: vec![vec![0.0; SIDE * SIDE]; units],
            h: SIDE,
            w: SIDE,
        };
        let pixels = |units, scale| {
            let (w, h) = tiles(units).grid_size(scale);
            w * h
        };
        assert_eq!(tiles(50).fitting(3), 3, "the book's 50 units as asked");
        // The widest layer the limits allow: 65536 units.
        let s = tiles(65536).fitting(16);
        assert!(s < 16 && pixels(65536, s) <= MAX_GRID_PIXELS);
        assert!(
            pixels(65536, s + 1) > MAX_GRID_PIXELS,
            "the largest that fits"
        );
        assert!(pixels(65536, 1) <= MAX_GRID_PIXELS);
        assert_eq!(tiles(50).grid_size(3), (8 * 85 + 1, 7 * 85 + 1));
        // 5×5 filters are drawn about as large as 28×28 tiles.
        let filters = Tiles {
            tiles: vec![vec![0.0; 25]; 30],
            h: 5,
            w: 5,
        };
        assert_eq!(filters.pixels_per_weight(3), 16);
        assert_eq!(filters.grid_size(16), (6 * 81 + 1, 5 * 81 + 1));
    }
}
