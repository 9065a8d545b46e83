//! A photo, scan or drawing of a digit turned into ink on a dark field, the
//! form MNIST's digits have before they are boxed and centred
//! (`predict::prepare`): what people hand over is dark ink on paper that is
//! grey, textured or unevenly lit, framed by a scan's dark edge, exported
//! with a transparent background, or stored sideways with an EXIF
//! orientation.
//!
//! The steps, each for one of those: transparency composited onto white
//! (or, where the colour is uniform and only the alpha varies, the alpha is
//! the ink); ink told from paper by the median pixel (paper covers most of
//! a page) against the range's middle; the paper's own level, estimated
//! locally, subtracted (grey paper and uneven light become black); regions
//! that touch the border (a frame, a photo's edge) removed when ink remains
//! elsewhere; the ink's contrast stretched to full range. No contrast at all
//! is "blank". (The EXIF orientation is applied when decoding, in
//! `predict::decode`.)
//!
//! May import: nothing of gpu-net (the image crate only).

use image::{DynamicImage, GrayImage, Luma};

/// Whether the picture is dark ink on light paper (and so is inverted).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Invert {
    /// Decided from the picture: the median pixel is paper.
    #[default]
    Auto,
    /// Dark ink on light paper.
    Yes,
    /// Light ink on a dark field, as MNIST.
    No,
}

/// The range (1st to 99th percentile, of 255) below which a picture holds
/// no digit, a uniform or merely noisy page; and the least a stroke must
/// stand above its paper.
const MIN_CONTRAST: f64 = 40.0;

/// The picture as one grey channel of what a viewer shows on white:
/// transparency composited onto white, unless the colour is uniform and
/// the alpha alone draws the digit (then the alpha, as dark ink).
pub fn flatten(img: &DynamicImage) -> GrayImage {
    let la = img.to_luma_alpha8();
    let has_alpha = la.pixels().any(|p| p.0[1] < 255);
    if !has_alpha {
        return img.to_luma8();
    }
    let on_white = GrayImage::from_fn(la.width(), la.height(), |x, y| {
        let [v, a] = la.get_pixel(x, y).0;
        let (v, a) = (v as u32, a as u32);
        Luma([((v * a + 255 * (255 - a)) / 255) as u8])
    });
    let (lo, hi) = extremes(&on_white);
    if hi - lo >= MIN_CONTRAST as u8 {
        return on_white;
    }
    // The colour says nothing: the alpha is the drawing.
    GrayImage::from_fn(la.width(), la.height(), |x, y| {
        Luma([255 - la.get_pixel(x, y).0[1]])
    })
}

fn extremes(g: &GrayImage) -> (u8, u8) {
    g.pixels()
        .fold((255, 0), |(lo, hi), p| (lo.min(p.0[0]), hi.max(p.0[0])))
}

/// Ink as light levels on black (0 where there is none), from a grey
/// picture; an error when it holds no digit.
pub fn ink(gray: &GrayImage, invert: Invert) -> Result<GrayImage, String> {
    let gray = &shrink(gray);
    let hist = histogram(gray);
    // The extremes, not percentiles: a small digit on a large page is well
    // under 1% of its pixels. Noise is judged after, against the grain.
    let (darkest, median, lightest) = (
        percentile(&hist, 0),
        percentile(&hist, 50),
        percentile(&hist, 100),
    );
    if (lightest - darkest) < MIN_CONTRAST as usize {
        return Err(format!(
            "no digit found: the image has no contrast (levels {darkest} to {lightest} of 255)"
        ));
    }
    // Paper covers most of the page: the median pixel is paper, and it is
    // on the light side of the range or the dark.
    let paper_is_light = match invert {
        Invert::Yes => true,
        Invert::No => false,
        Invert::Auto => median * 2 > darkest + lightest,
    };
    let raw = GrayImage::from_fn(gray.width(), gray.height(), |x, y| {
        let v = gray.get_pixel(x, y).0[0];
        Luma([if paper_is_light { 255 - v } else { v }])
    });
    let flat = subtract_paper(&raw);
    if !stands_out(&histogram(&flat)) {
        return Err(format!(
            "no digit found: nothing stands out of the {} paper's grain",
            if paper_is_light { "light" } else { "dark" }
        ));
    }
    // The frame goes before the stretch, so the digit alone sets the range.
    Ok(stretch(&remove_border_regions(&flat)))
}

/// The longest side [`ink`] works at: a phone's 4032×3024 photo is
/// shrunk (averaging) first, since the digit ends 20 pixels tall anyway,
/// and the paper's estimate costs a window per pixel.
const WORK_SIDE: u32 = 512;

fn shrink(gray: &GrayImage) -> GrayImage {
    let (w, h) = gray.dimensions();
    let long = w.max(h);
    if long <= WORK_SIDE {
        return gray.clone();
    }
    let (nw, nh) = (
        (w as u64 * WORK_SIDE as u64 / long as u64).max(1) as u32,
        (h as u64 * WORK_SIDE as u64 / long as u64).max(1) as u32,
    );
    image::imageops::resize(gray, nw, nh, image::imageops::FilterType::Triangle)
}

/// Pixels the ink must cover at the least: a speck of dust is not a digit.
const MIN_INK_PIXELS: u64 = 12;

/// How many times the paper's grain the strongest ink must stand above
/// the paper: noise of any strength, whose largest value lies within about
/// 4.5 times its spread of its median (5.7 in a 12-megapixel photo), never
/// passes for a digit.
const GRAIN_MARGIN: usize = 5;

/// Whether something stands out of the paper in `hist` (the paper's level
/// subtracted): its strongest level above the median (paper covers most of
/// the page) by at least [`MIN_CONTRAST`] and [`GRAIN_MARGIN`] times the
/// paper's grain, the spread of the lower half (10th percentile to the
/// median), which is paper whatever the ink.
fn stands_out(hist: &[u64; 256]) -> bool {
    let (p10, median, top) = (
        percentile(hist, 10),
        percentile(hist, 50),
        percentile(hist, 100),
    );
    let grain = median - p10;
    let needed = (MIN_CONTRAST as usize).max(GRAIN_MARGIN * grain);
    // Enough pixels at half that height, too.
    let inked: u64 = hist[(median + needed / 2).min(255)..].iter().sum();
    top - median >= needed && inked >= MIN_INK_PIXELS
}

/// The level below which `pct` percent of the pixels lie (the largest
/// level present for 100).
fn percentile(hist: &[u64; 256], pct: u64) -> usize {
    let total: u64 = hist.iter().sum();
    let mut seen = 0u64;
    for (level, &n) in hist.iter().enumerate() {
        seen += n;
        if seen * 100 >= total * pct && n > 0 {
            return level;
        }
    }
    255
}

fn histogram(g: &GrayImage) -> [u64; 256] {
    let mut h = [0u64; 256];
    for p in g.pixels() {
        h[p.0[0] as usize] += 1;
    }
    h
}

/// Otsu's threshold: the level that best separates two classes (those
/// below it and those at or above), by between-class variance.
pub fn otsu(hist: &[u64; 256]) -> usize {
    let total: u64 = hist.iter().sum();
    let sum: f64 = hist
        .iter()
        .enumerate()
        .map(|(i, &n)| i as f64 * n as f64)
        .sum();
    let (mut below, mut sum_below) = (0u64, 0.0f64);
    let (mut best, mut best_t) = (-1.0f64, 128usize);
    for t in 1..256 {
        below += hist[t - 1];
        sum_below += (t - 1) as f64 * hist[t - 1] as f64;
        let above = total - below;
        if below == 0 || above == 0 {
            continue;
        }
        let m0 = sum_below / below as f64;
        let m1 = (sum - sum_below) / above as f64;
        let between = below as f64 * above as f64 * (m0 - m1) * (m0 - m1);
        if between > best {
            (best, best_t) = (between, t);
        }
    }
    best_t
}

/// The paper's level (now dark) under each pixel, estimated as the minimum
/// over a window wider than a stroke, smoothed; subtracted, so grey paper
/// and uneven light become black and the ink keeps its height above them.
fn subtract_paper(ink: &GrayImage) -> GrayImage {
    let (w, h) = ink.dimensions();
    let r = (w.max(h) / 8).max(3);
    let floor = box_filter(&min_filter(ink, r), r);
    GrayImage::from_fn(w, h, |x, y| {
        let v = ink.get_pixel(x, y).0[0];
        Luma([v.saturating_sub(floor.get_pixel(x, y).0[0])])
    })
}

/// The minimum over a (2r+1)² window.
fn min_filter(g: &GrayImage, r: u32) -> GrayImage {
    window_filter(g, r, &|values| values.iter().copied().min().unwrap_or(0))
}

/// The mean over a (2r+1)² window (clipped at the edges).
fn box_filter(g: &GrayImage, r: u32) -> GrayImage {
    window_filter(g, r, &|values| {
        (values.iter().map(|&v| v as u32).sum::<u32>() / values.len() as u32) as u8
    })
}

/// `reduce` over each pixel's (2r+1)-wide row window, then over the
/// column window of those: separable, as min and mean are.
fn window_filter(g: &GrayImage, r: u32, reduce: &dyn Fn(&[u8]) -> u8) -> GrayImage {
    let pass = |src: &GrayImage, horizontal: bool| {
        let (w, h) = src.dimensions();
        let mut window = Vec::with_capacity(2 * r as usize + 1);
        GrayImage::from_fn(w, h, |x, y| {
            let (c, len) = if horizontal { (x, w) } else { (y, h) };
            let (a, b) = (c.saturating_sub(r), (c + r).min(len - 1));
            window.clear();
            window.extend((a..=b).map(|i| {
                let (px, py) = if horizontal { (i, y) } else { (x, i) };
                src.get_pixel(px, py).0[0]
            }));
            Luma([reduce(&window)])
        })
    };
    pass(&pass(g, true), false)
}

/// Where ink begins in a picture of ink on dark paper: halfway from the
/// paper (the median pixel: paper covers most of a page) to Otsu's split
/// between paper and ink. On clean paper that is half the split; on
/// grained paper it stays above most of the grain, which would otherwise
/// join the digit to the border.
fn ink_level(hist: &[u64; 256]) -> usize {
    (percentile(hist, 50) + otsu(hist)) / 2
}

/// Levels from the ink's own threshold to its strong end spread over 0..255:
/// faint pencil and blue ink become as bright as MNIST's strokes, and what
/// is left of the paper (below [`ink_level`]) becomes 0.
fn stretch(g: &GrayImage) -> GrayImage {
    let hist = histogram(g);
    let t = otsu(&hist) as f64;
    let total: u64 = hist.iter().sum();
    // The strong end: the 99th percentile of the ink class.
    let ink_total: u64 = hist[t as usize..].iter().sum();
    let mut seen = 0u64;
    let mut top = 255.0;
    for (level, &n) in hist.iter().enumerate().skip(t as usize) {
        seen += n;
        if seen * 100 >= ink_total * 99 {
            top = level as f64;
            break;
        }
    }
    let low = ink_level(&hist) as f64;
    let span = (top - low).max(1.0);
    debug_assert!(total > 0);
    GrayImage::from_fn(g.width(), g.height(), |x, y| {
        let v = g.get_pixel(x, y).0[0] as f64;
        Luma([(((v - low) / span).clamp(0.0, 1.0) * 255.0).round() as u8])
    })
}

/// Ink regions (8-connected, from [`ink_level`] up) that touch the border
/// are a frame or an edge of the photo, not the digit: cleared, but only
/// when a region of digit's size is left inside (at least 20 pixels, a
/// 2000th of the picture and a 20th of the largest border region, counted
/// at Otsu's split), so a digit that touches the edge is not cleared for
/// the paper's specks.
fn remove_border_regions(g: &GrayImage) -> GrayImage {
    let (w, h) = g.dimensions();
    // Low enough that a frame's fainter stretches stay connected; what is
    // left inside is measured at Otsu's split, above the paper's grain.
    let hist = histogram(g);
    let level = ink_level(&hist).max(1) as u8;
    let strong_level = otsu(&hist).max(1) as u8;
    let on = |x: u32, y: u32| g.get_pixel(x, y).0[0] >= level;
    let strong = |x: u32, y: u32| g.get_pixel(x, y).0[0] >= strong_level;
    // 0: not yet reached; 1: a border region; 2: inside.
    let mut marks = vec![0u8; (w * h) as usize];
    let mut largest_border = 0;
    let edge: Vec<(u32, u32)> = (0..w)
        .flat_map(|x| [(x, 0), (x, h - 1)])
        .chain((0..h).flat_map(|y| [(0, y), (w - 1, y)]))
        .collect();
    for (x, y) in edge {
        if on(x, y) && marks[(y * w + x) as usize] == 0 {
            largest_border = largest_border.max(fill(g.dimensions(), &on, (x, y), &mut marks, 1));
        }
    }
    let mut largest_inside = 0;
    for (x, y) in (0..h).flat_map(|y| (0..w).map(move |x| (x, y))) {
        if strong(x, y) && marks[(y * w + x) as usize] == 0 {
            largest_inside =
                largest_inside.max(fill(g.dimensions(), &strong, (x, y), &mut marks, 2));
        }
    }
    let digit_sized = 20.max((w * h) as usize / 2000).max(largest_border / 20);
    if largest_border == 0 || largest_inside < digit_sized {
        return g.clone();
    }
    // Clear the regions and the anti-aliased fringe beside them.
    let near = |x: u32, y: u32| {
        let (x0, y0) = (x.saturating_sub(1), y.saturating_sub(1));
        (y0..=(y + 1).min(h - 1))
            .any(|yy| (x0..=(x + 1).min(w - 1)).any(|xx| marks[(yy * w + xx) as usize] == 1))
    };
    GrayImage::from_fn(w, h, |x, y| {
        Luma([if near(x, y) {
            0
        } else {
            g.get_pixel(x, y).0[0]
        }])
    })
}

/// Marks with `label` the region of `on` pixels 8-connected to `seed` (not
/// yet marked); returns its size.
fn fill(
    (w, h): (u32, u32),
    on: &dyn Fn(u32, u32) -> bool,
    seed: (u32, u32),
    marks: &mut [u8],
    label: u8,
) -> usize {
    let mut stack = vec![seed];
    let mut size = 0;
    while let Some((x, y)) = stack.pop() {
        let i = (y * w + x) as usize;
        if marks[i] != 0 {
            continue;
        }
        marks[i] = label;
        size += 1;
        for (dx, dy) in [
            (-1i64, -1i64),
            (0, -1),
            (1, -1),
            (-1, 0),
            (1, 0),
            (-1, 1),
            (0, 1),
            (1, 1),
        ] {
            let (nx, ny) = (x as i64 + dx, y as i64 + dy);
            if nx >= 0 && ny >= 0 && nx < w as i64 && ny < h as i64 {
                let (nx, ny) = (nx as u32, ny as u32);
                if on(nx, ny) && marks[(ny * w + nx) as usize] == 0 {
                    stack.push((nx, ny));
                }
            }
        }
    }
    size
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn otsu_splits_two_levels_between_them() {
        let mut h = [0u64; 256];
        h[40] = 900;
        h[200] = 100;
        let t = otsu(&h);
        assert!((41..=200).contains(&t), "{t}");
    }

    #[test]
    fn a_uniform_or_noisy_page_is_blank() {
        for level in [0u8, 60, 128, 200, 255] {
            assert!(ink(&GrayImage::from_pixel(50, 40, Luma([level])), Invert::Auto).is_err());
        }
        // Grey paper with ±12 of noise.
        let noisy = GrayImage::from_fn(60, 60, |x, y| {
            Luma([(128 + (x * 7 + y * 13) % 25) as u8 - 12])
        });
        assert!(ink(&noisy, Invert::Auto).is_err());
        assert!(ink(&GrayImage::from_pixel(1, 1, Luma([128])), Invert::Auto).is_err());
    }

    /// Grey paper of level 180 with a grain of ±`amp`, and where `digit`
    /// says, ink `depth` darker.
    fn paper(amp: u32, depth: u8, digit: impl Fn(u32, u32) -> bool) -> GrayImage {
        GrayImage::from_fn(120, 100, |x, y| {
            let h = (x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503)) % (2 * amp + 1);
            let v = (180 + h) as u8 - amp as u8;
            Luma([if digit(x, y) { v - depth } else { v }])
        })
    }

    #[test]
    fn a_small_digit_on_a_large_page_is_ink_and_a_speck_is_not() {
        // A stroke of 5×40 pixels (0.04% of an 800×600 page).
        let page = |ink: &dyn Fn(u32, u32) -> bool| {
            GrayImage::from_fn(800, 600, |x, y| Luma([if ink(x, y) { 0 } else { 250 }]))
        };
        let small = ink(
            &page(&|x, y| (400..405).contains(&x) && (300..340).contains(&y)),
            Invert::Auto,
        )
        .unwrap();
        assert_eq!(small.width(), 512, "worked on at {WORK_SIDE} pixels");
        assert!(small.pixels().filter(|p| p.0[0] > 128).count() > 50);
        let speck = page(&|x, y| (400..402).contains(&x) && (300..302).contains(&y));
        assert!(ink(&speck, Invert::Auto).is_err(), "a speck of dust");
    }

    #[test]
    fn a_digit_touching_the_edge_on_grained_paper_is_kept() {
        let touching = |x: u32, y: u32| (55..63).contains(&x) && y < 60;
        let one = ink(&paper(20, 120, touching), Invert::Auto).unwrap();
        let kept = (55..63).map(|x| one.get_pixel(x, 30).0[0]).min().unwrap();
        assert!(
            kept > 100,
            "the stroke was cleared as a border region: {kept}"
        );
    }

    #[test]
    fn grain_is_not_ink_and_ink_on_grain_is() {
        let stroke = |x: u32, y: u32| (55..63).contains(&x) && (20..80).contains(&y);
        for amp in [10, 20, 30] {
            assert!(
                ink(&paper(amp, 0, |_, _| false), Invert::Auto).is_err(),
                "a blank page of grain ±{amp} passed for a digit"
            );
        }
        let one = ink(&paper(20, 120, stroke), Invert::Auto).unwrap();
        let stroke_min = (55..63).map(|x| one.get_pixel(x, 50).0[0]).min().unwrap();
        assert!(stroke_min > 100, "the stroke is ink: {stroke_min}");
        assert_eq!(one.get_pixel(20, 50).0[0], 0, "the paper is not");
    }
}
