//! The book's `ch08/misclassified_mnist.py` figure: the first test digits a
//! network gets wrong, in a grid of 4 rows of 5 (`max_view = 20`), drawn as
//! its `imshow(cmap=gray_r)` draws them (ink dark on white), each with its
//! label and the network's answer under it (`7→2`: a 7 taken for a 2) in
//! a small pixel font, so the picture needs no font files.
//!
//! May import: core (the data), report (writing a picture).

use image::{Rgb, RgbImage};

use super::predict::{PredictError, save_image};
use crate::core::data::Dataset;

/// The book's `max_view`.
pub const MAX_VIEW: usize = 20;
/// Digits per row (the book's `add_subplot(4, 5, ...)`).
const COLUMNS: usize = 5;
/// Screen pixels per image pixel.
const SCALE: u32 = 3;
/// Screen pixels per font pixel.
const FONT_SCALE: u32 = 2;
/// Space around a digit and under it for its caption.
const MARGIN: u32 = 6;
const CAPTION: u32 = 5 * FONT_SCALE + 6;

/// One digit the network got wrong: its index in the test set, its label
/// and the network's class.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Miss {
    pub index: usize,
    pub label: u8,
    pub predicted: u8,
}

/// The first [`MAX_VIEW`] images whose prediction is not their label.
pub fn first_misses(labels: &[u8], predicted: &[u8]) -> Vec<Miss> {
    let pairs = labels.iter().zip(predicted).enumerate();
    pairs
        .filter(|(_, (l, p))| l != p)
        .take(MAX_VIEW)
        .map(|(index, (&label, &predicted))| Miss {
            index,
            label,
            predicted,
        })
        .collect()
}

/// The figure of `misses` among `test`'s images.
pub fn figure(test: &Dataset, misses: &[Miss]) -> RgbImage {
    let (w, h) = (test.cols as u32 * SCALE, test.rows as u32 * SCALE);
    let (cell_w, cell_h) = (w + 2 * MARGIN, h + 2 * MARGIN + CAPTION);
    let rows = misses.len().div_ceil(COLUMNS).max(1) as u32;
    let mut img = RgbImage::from_pixel(cell_w * COLUMNS as u32, cell_h * rows, Rgb([255; 3]));
    for (i, m) in misses.iter().enumerate() {
        let (x0, y0) = (
            (i % COLUMNS) as u32 * cell_w + MARGIN,
            (i / COLUMNS) as u32 * cell_h + MARGIN,
        );
        for (p, &v) in test.image(m.index).iter().enumerate() {
            let ink = Rgb([255 - v; 3]);
            let (px, py) = (p % test.cols, p / test.cols);
            for dy in 0..SCALE {
                for dx in 0..SCALE {
                    img.put_pixel(
                        x0 + px as u32 * SCALE + dx,
                        y0 + py as u32 * SCALE + dy,
                        ink,
                    );
                }
            }
        }
        let text = [m.label, ARROW, m.predicted];
        let text_w = 3 * 4 * FONT_SCALE - FONT_SCALE;
        let tx = x0 + w.saturating_sub(text_w) / 2;
        draw_text(&mut img, &text, (tx, y0 + h + 4));
    }
    img
}

/// Draws and writes the figure of `misses` to `path` (PNG, JPEG, BMP or PGM).
pub fn write(test: &Dataset, misses: &[Miss], path: &std::path::Path) -> Result<(), PredictError> {
    save_image(&figure(test, misses).into(), path)
}

/// The arrow's place in [`GLYPHS`].
const ARROW: u8 = 10;

/// 3×5 glyphs, a row a byte's low 3 bits (the high bit the left pixel):
/// the digits 0 to 9, then an arrow.
const GLYPHS: [[u8; 5]; 11] = [
    [0b111, 0b101, 0b101, 0b101, 0b111],
    [0b010, 0b110, 0b010, 0b010, 0b111],
    [0b111, 0b001, 0b111, 0b100, 0b111],
    [0b111, 0b001, 0b111, 0b001, 0b111],
    [0b101, 0b101, 0b111, 0b001, 0b001],
    [0b111, 0b100, 0b111, 0b001, 0b111],
    [0b111, 0b100, 0b111, 0b101, 0b111],
    [0b111, 0b001, 0b010, 0b010, 0b010],
    [0b111, 0b101, 0b111, 0b101, 0b111],
    [0b111, 0b101, 0b111, 0b001, 0b111],
    [0b010, 0b001, 0b111, 0b001, 0b010],
];

/// `text` (glyph indices) with its top left at `(x, y)`: the label dark,
/// the arrow grey, the answer red.
fn draw_text(img: &mut RgbImage, text: &[u8], (x, y): (u32, u32)) {
    let colours = [Rgb([0, 0, 0]), Rgb([128, 128, 128]), Rgb([200, 0, 0])];
    for (i, (&g, colour)) in text.iter().zip(colours).enumerate() {
        let glyph = GLYPHS[(g as usize).min(ARROW as usize)];
        let gx = x + i as u32 * 4 * FONT_SCALE;
        for (row, bits) in glyph.iter().enumerate() {
            for col in 0..3u32 {
                if bits & (0b100 >> col) != 0 {
                    for d in 0..FONT_SCALE * FONT_SCALE {
                        let (dx, dy) = (d % FONT_SCALE, d / FONT_SCALE);
                        let (px, py) =
                            (gx + col * FONT_SCALE + dx, y + row as u32 * FONT_SCALE + dy);
                        if px < img.width() && py < img.height() {
                            img.put_pixel(px, py, colour);
                        }
                    }
                }
            }
        }
    }
}
