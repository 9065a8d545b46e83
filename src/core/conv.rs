//! The geometry of chapter 7's layers, shared by the CPU reference and the
//! GPU kernels: a batch of images (N, C, H, W), a window (a convolution's
//! filter or a pooling window) with its stride and padding, and the output
//! size the book's `im2col` gives:
//!
//! ```text
//! out_h = (H + 2·pad - FH) / stride + 1
//! ```
//!
//! The book divides with `//`, which drops a remainder silently: a window
//! that does not tile the padded image would then skip its last rows. Here
//! a remainder is an error that names the sizes, as is a window larger than
//! the padded image, a zero stride, window or image.
//!
//! Imports nothing of the crate.

use std::fmt;

/// A batch of images, NCHW.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageShape {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
}

impl ImageShape {
    /// Values per image: C·H·W.
    pub fn per_image(&self) -> usize {
        self.c * self.h * self.w
    }

    pub fn len(&self) -> usize {
        self.n * self.per_image()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A filter or pooling window: its size, stride and zero padding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub h: usize,
    pub w: usize,
    pub stride: usize,
    pub pad: usize,
}

impl Window {
    /// Values in one window of one channel: FH·FW.
    pub fn area(&self) -> usize {
        self.h * self.w
    }
}

/// Why a window cannot slide over an image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShapeError {
    Zero(&'static str),
    TooLarge {
        layer: Layer,
        axis: &'static str,
        window: usize,
        padded: usize,
    },
    Fractional {
        layer: Layer,
        axis: &'static str,
        padded: usize,
        window: usize,
        stride: usize,
    },
}

/// Which sliding layer a shape error is about, as its messages name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layer {
    /// "the convolution"
    pub name: &'static str,
    /// What slides: "filter", "window".
    pub window: &'static str,
    /// What it slides over: "padded image", "convolution's output".
    pub input: &'static str,
}

/// A window sliding over a (padded) image, named generically.
pub const ANY_WINDOW: Layer = Layer {
    name: "the slide",
    window: "window",
    input: "padded image",
};
/// A [`ConvFront`]'s convolution.
pub const CONVOLUTION: Layer = Layer {
    name: "the convolution",
    window: "filter",
    input: "padded image",
};
/// A [`ConvFront`]'s pooling ([`POOL`]).
pub const POOLING: Layer = Layer {
    name: "the 2×2 max pooling after it",
    window: "window",
    input: "convolution's output",
};

impl ShapeError {
    /// This error, said of `layer`.
    pub fn of(self, layer: Layer) -> Self {
        match self {
            ShapeError::TooLarge {
                axis,
                window,
                padded,
                ..
            } => ShapeError::TooLarge {
                layer,
                axis,
                window,
                padded,
            },
            ShapeError::Fractional {
                axis,
                padded,
                window,
                stride,
                ..
            } => ShapeError::Fractional {
                layer,
                axis,
                padded,
                window,
                stride,
            },
            zero => zero,
        }
    }
}

impl fmt::Display for ShapeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShapeError::Zero(what) => write!(f, "the {what} is 0"),
            ShapeError::TooLarge {
                layer,
                axis,
                window,
                padded,
            } => write!(
                f,
                "{}: its {}'s {axis} {window} is larger than the {}'s {axis} {padded}",
                layer.name, layer.window, layer.input
            ),
            ShapeError::Fractional {
                layer,
                axis,
                padded,
                window,
                stride,
            } => write!(
                f,
                "{}: its output {axis} ({padded} - {window}) / {stride} + 1 is not a whole number: \
                 its {} ({window} in {axis}) at stride {stride} does not tile the {}'s {axis} of {padded}",
                layer.name, layer.window, layer.input
            ),
        }
    }
}

impl std::error::Error for ShapeError {}

/// One axis's output size: `(size + 2·pad - window) / stride + 1`.
pub fn out_size(
    axis: &'static str,
    size: usize,
    window: usize,
    stride: usize,
    pad: usize,
) -> Result<usize, ShapeError> {
    if stride == 0 {
        return Err(ShapeError::Zero("stride"));
    }
    if window == 0 {
        return Err(ShapeError::Zero("window"));
    }
    if size == 0 {
        return Err(ShapeError::Zero("image"));
    }
    let padded = size + 2 * pad;
    if window > padded {
        return Err(ShapeError::TooLarge {
            layer: ANY_WINDOW,
            axis,
            window,
            padded,
        });
    }
    if !(padded - window).is_multiple_of(stride) {
        return Err(ShapeError::Fractional {
            layer: ANY_WINDOW,
            axis,
            padded,
            window,
            stride,
        });
    }
    Ok((padded - window) / stride + 1)
}

/// A window sliding over a batch of images: both shapes and the output's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slide {
    pub input: ImageShape,
    pub window: Window,
    pub out_h: usize,
    pub out_w: usize,
}

impl Slide {
    pub fn new(input: ImageShape, window: Window) -> Result<Self, ShapeError> {
        Ok(Slide {
            out_h: out_size("height", input.h, window.h, window.stride, window.pad)?,
            out_w: out_size("width", input.w, window.w, window.stride, window.pad)?,
            input,
            window,
        })
    }

    /// Rows of `im2col`'s matrix: N·OH·OW, one per window position.
    pub fn col_rows(&self) -> usize {
        self.input.n * self.out_h * self.out_w
    }

    /// Columns of `im2col`'s matrix: C·FH·FW, one per value a window reads.
    pub fn col_cols(&self) -> usize {
        self.input.c * self.window.area()
    }

    /// Output positions per image per channel: OH·OW.
    pub fn out_area(&self) -> usize {
        self.out_h * self.out_w
    }

    /// The input position (y, x) window position (oy, ox) reads at offset
    /// (ky, kx), or None where it falls in the zero padding.
    pub fn source(&self, oy: usize, ox: usize, ky: usize, kx: usize) -> Option<(usize, usize)> {
        let w = &self.window;
        let y = (oy * w.stride + ky).checked_sub(w.pad)?;
        let x = (ox * w.stride + kx).checked_sub(w.pad)?;
        (y < self.input.h && x < self.input.w).then_some((y, x))
    }
}

/// The pooling after a [`ConvFront`]'s convolution, as the book's
/// `SimpleConvNet` fixes it: 2×2, stride 2.
pub const POOL: Window = Window {
    h: 2,
    w: 2,
    stride: 2,
    pad: 0,
};

/// The front of the book's `SimpleConvNet`: Convolution → Relu → max
/// Pooling ([`POOL`]) on images of `input_dim` (C, H, W), as its
/// constructor's `input_dim` and `conv_param` give them. The Affine layers
/// that follow take the pooled values, flattened per image as (c, y, x).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ConvFront {
    /// (C, H, W).
    pub input_dim: [usize; 3],
    pub filter_num: usize,
    pub filter_size: usize,
    pub pad: usize,
    pub stride: usize,
}

impl ConvFront {
    /// The book's `SimpleConvNet()`: (1, 28, 28), 30 filters of 5×5, pad 0, stride 1.
    pub fn book() -> Self {
        ConvFront {
            input_dim: [1, 28, 28],
            filter_num: 30,
            filter_size: 5,
            pad: 0,
            stride: 1,
        }
    }

    /// The convolution over a batch of `n` images, and the pooling over its
    /// output; an error where either does not slide (or `filter_num` is 0).
    pub fn slides(&self, n: usize) -> Result<(Slide, Slide), ShapeError> {
        let [c, h, w] = self.input_dim;
        if c == 0 {
            return Err(ShapeError::Zero("channel count"));
        }
        if self.filter_num == 0 {
            return Err(ShapeError::Zero("filter count"));
        }
        let window = Window {
            h: self.filter_size,
            w: self.filter_size,
            stride: self.stride,
            pad: self.pad,
        };
        let conv = Slide::new(ImageShape { n, c, h, w }, window).map_err(|e| e.of(CONVOLUTION))?;
        let out = ImageShape {
            n,
            c: self.filter_num,
            h: conv.out_h,
            w: conv.out_w,
        };
        Ok((conv, Slide::new(out, POOL).map_err(|e| e.of(POOLING))?))
    }

    /// Values per input image: C·H·W.
    pub fn pixels(&self) -> usize {
        self.input_dim.iter().product()
    }

    /// Values one filter reads: C·FH·FW.
    pub fn filter_len(&self) -> usize {
        self.input_dim[0] * self.filter_size * self.filter_size
    }

    /// Pooled values per image (FN·PH·PW), the next Affine's inputs; 0
    /// where the shapes do not slide.
    pub fn pooled(&self) -> usize {
        self.slides(1)
            .map_or(0, |(_, pool)| self.filter_num * pool.out_area())
    }

    /// `conv_param` as the book writes it, with the input.
    pub fn describe(&self) -> String {
        let [c, h, w] = self.input_dim;
        format!(
            "input {c}×{h}×{w}, {} filters {}×{} pad {} stride {}",
            self.filter_num, self.filter_size, self.filter_size, self.pad, self.stride
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_sizes_as_the_book_computes_them() {
        assert_eq!(out_size("height", 28, 5, 1, 0), Ok(24));
        assert_eq!(out_size("height", 24, 2, 2, 0), Ok(12));
        assert_eq!(out_size("height", 7, 3, 2, 1), Ok(4));
        assert_eq!(out_size("height", 1, 1, 1, 0), Ok(1));
    }

    #[test]
    fn shapes_that_cannot_slide_are_refused() {
        assert_eq!(
            out_size("height", 28, 5, 0, 0),
            Err(ShapeError::Zero("stride"))
        );
        assert_eq!(
            out_size("height", 28, 0, 1, 0),
            Err(ShapeError::Zero("window"))
        );
        assert!(matches!(
            out_size("wide", 4, 7, 1, 1),
            Err(ShapeError::TooLarge { padded: 6, .. })
        ));
        let e = out_size("height", 25, 2, 2, 0).unwrap_err();
        assert!(
            e.to_string()
                .contains("(25 - 2) / 2 + 1 is not a whole number"),
            "{e}"
        );
    }

    #[test]
    fn sources_skip_the_padding() {
        let s = Slide::new(
            ImageShape {
                n: 1,
                c: 1,
                h: 3,
                w: 3,
            },
            Window {
                h: 3,
                w: 3,
                stride: 1,
                pad: 1,
            },
        )
        .unwrap();
        assert_eq!(s.source(0, 0, 0, 0), None);
        assert_eq!(s.source(0, 0, 1, 1), Some((0, 0)));
        assert_eq!(s.source(2, 2, 2, 2), None);
        assert_eq!(s.source(2, 2, 1, 1), Some((2, 2)));
    }
}
