//! IDX reading and validation: MNIST and anything shaped like it.
//!
//! An IDX file is a big-endian header (magic `0x00000801` for labels,
//! `0x00000803` for images, then one u32 per dimension) followed by the u8
//! data. Files may be gzipped (detected by content, not by name). Images stay
//! u8 in memory: the GPU receives them packed four to a u32 and scales by 1/255
//! itself, so the 60000×784 training set costs 47 MB instead of 188 MB.
//!
//! A gzipped file may hold several gzip members one after the other (as
//! `cat a.gz b.gz` or a parallel compressor writes them); they are one
//! stream. A header's claimed size is checked against a limit
//! ([`crate::core::limits::DEFAULT_IDX_LIMIT`], raised with `GPU_NET_IDX_LIMIT`)
//! before any data is read.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;

use crate::core::files;
use crate::core::limits::{self, IDX_LIMIT_VAR};

/// Number of classes every dataset here has (digits, Fashion-MNIST items).
pub const CLASSES: usize = 10;

const MAGIC_LABELS: u32 = 0x0000_0801;
const MAGIC_IMAGES: u32 = 0x0000_0803;

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error(
        "{}: file not found (looked for it and for its .gz form); pass --data DIR with the four MNIST-style IDX files",
        path.display()
    )]
    Missing { path: PathBuf },
    #[error(
        "no MNIST found: looked in {}; pass --data DIR, a folder with the four MNIST IDX files (the repository's data/mnist)",
        looked.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    NoDefault { looked: Vec<PathBuf> },
    /// `--data` names something that is not a folder of IDX files.
    #[error("{}: {why}", path.display())]
    NotADataFolder { path: PathBuf, why: String },
    /// The I/O error is in the message, not a `source`, so a chain printed
    /// whole says it once.
    #[error("{}: {error}", path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{}: not gzip data (the name ends in .gz but the content does not start with the gzip magic 1f 8b)", path.display())]
    NotGzip { path: PathBuf },
    #[error("{}: wrong magic {found:#010x}, expected {expected:#010x} ({what})", path.display())]
    BadMagic {
        path: PathBuf,
        found: u32,
        expected: u32,
        what: &'static str,
    },
    #[error("{}: {what}", path.display())]
    BadHeader { path: PathBuf, what: String },
    #[error("{}: truncated: the header promises {expected} data bytes but the file holds {found}", path.display())]
    Truncated {
        path: PathBuf,
        expected: usize,
        found: usize,
    },
    #[error("{}: {extra} bytes after the {expected} data bytes the header promises", path.display())]
    TrailingData {
        path: PathBuf,
        expected: usize,
        extra: usize,
    },
    #[error("{} holds {images} images but {} holds {labels} labels", images_path.display(), labels_path.display())]
    CountMismatch {
        images_path: PathBuf,
        images: usize,
        labels_path: PathBuf,
        labels: usize,
    },
    #[error("{}: label {label} at index {index} is out of range (must be below {CLASSES})", path.display())]
    LabelOutOfRange {
        path: PathBuf,
        index: usize,
        label: u8,
    },
    #[error("{}: images are {}×{} pixels but the training images are {}×{}", path.display(), found.0, found.1, expected.0, expected.1)]
    ShapeMismatch {
        path: PathBuf,
        /// (rows, cols)
        found: (usize, usize),
        expected: (usize, usize),
    },
    #[error(
        "{}: the header claims {claimed} data bytes (dimensions {dims:?}), over the limit of {limit}; set {IDX_LIMIT_VAR} to raise it (e.g. {IDX_LIMIT_VAR}=4G)",
        path.display()
    )]
    TooLarge {
        path: PathBuf,
        dims: Vec<usize>,
        claimed: u64,
        limit: u64,
    },
    #[error(transparent)]
    Limit(#[from] limits::BadSize),
}

/// An IDX file past the size limit, not a file that is wrong.
impl crate::core::error::LayerError for DataError {
    fn is_usage(&self) -> bool {
        matches!(self, DataError::Limit(_))
    }
}

/// One split of an image-classification dataset: u8 pixels, u8 labels.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// `len × rows × cols` pixels, row-major, 0..=255.
    pub images: Vec<u8>,
    /// `len` labels, each below [`CLASSES`].
    pub labels: Vec<u8>,
    pub rows: usize,
    pub cols: usize,
}

impl Dataset {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Pixels per image (784 for MNIST).
    pub fn pixels(&self) -> usize {
        self.rows * self.cols
    }

    pub fn image(&self, i: usize) -> &[u8] {
        let p = self.pixels();
        &self.images[i * p..(i + 1) * p]
    }

    /// The images at `indices` as f64 in [0, 1], row-major `[indices.len(), pixels]`.
    pub fn batch_f64(&self, indices: &[usize]) -> Vec<f64> {
        let mut x = Vec::with_capacity(indices.len() * self.pixels());
        for &i in indices {
            x.extend(self.image(i).iter().map(|&p| p as f64 / 255.0));
        }
        x
    }

    pub fn batch_labels(&self, indices: &[usize]) -> Vec<u8> {
        indices.iter().map(|&i| self.labels[i]).collect()
    }

    /// The first `n` samples (the book's overfitting experiments train on 300).
    pub fn first(&self, n: usize) -> Dataset {
        let n = n.min(self.len());
        Dataset {
            images: self.images[..n * self.pixels()].to_vec(),
            labels: self.labels[..n].to_vec(),
            rows: self.rows,
            cols: self.cols,
        }
    }

    /// A dataset built in memory (tests, synthetic benchmarks).
    pub fn from_parts(images: Vec<u8>, labels: Vec<u8>, rows: usize, cols: usize) -> Self {
        assert_eq!(images.len(), labels.len() * rows * cols);
        Dataset {
            images,
            labels,
            rows,
            cols,
        }
    }
}

/// The training and test splits of one dataset folder.
#[derive(Clone, Debug)]
pub struct Mnist {
    pub train: Dataset,
    pub test: Dataset,
}

/// The folder of the MNIST copy bundled with the crate, in its checkout
/// (for tests; the binary looks with [`default_dir`]).
pub fn bundled_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist")
}

/// Where the data is when `--data` does not say: the first of
/// [`default_candidates`] that holds MNIST's test images, as an absolute
/// path (a checkpoint records it, and a resume from another folder must
/// find it), or an error listing where it looked.
pub fn default_dir() -> Result<PathBuf, DataError> {
    let looked = default_candidates();
    for dir in &looked {
        if find(dir, "t10k-images-idx3-ubyte").is_ok() {
            return Ok(dir.canonicalize().unwrap_or_else(|_| dir.clone()));
        }
    }
    Err(DataError::NoDefault { looked })
}

/// `data/mnist` under the working directory (a checkout), beside the
/// executable (a binary copied with its data), and two levels above it (a
/// checkout's `target/release/`). Never the folder it was built in: a binary
/// installed or copied elsewhere behaves the same whether or not that
/// folder still exists.
pub fn default_candidates() -> Vec<PathBuf> {
    let rel = Path::new("data").join("mnist");
    let mut out = vec![rel.clone()];
    if let Some(exe_dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        out.push(exe_dir.join(&rel));
        if let Some(root) = exe_dir.parent().and_then(Path::parent) {
            out.push(root.join(&rel));
        }
    }
    out
}

/// The files of `dir` that [`load_dir`] reads, those that are there.
pub fn files_read(dir: &Path) -> Vec<PathBuf> {
    ["train", "t10k"]
        .into_iter()
        .flat_map(|p| {
            [
                format!("{p}-images-idx3-ubyte"),
                format!("{p}-labels-idx1-ubyte"),
            ]
        })
        .filter_map(|name| find(dir, &name).ok())
        .collect()
}

/// Loads the four standard files (`train-images-idx3-ubyte` and so on, each
/// gzipped or raw) from `dir`, each within the size limit of
/// `GPU_NET_IDX_LIMIT` (by default [`limits::DEFAULT_IDX_LIMIT`]).
pub fn load_dir(dir: &Path) -> Result<Mnist, DataError> {
    load_dir_limited(dir, idx_limit()?)
}

/// The IDX size limit in force: `GPU_NET_IDX_LIMIT`, or the default.
pub fn idx_limit() -> Result<u64, DataError> {
    Ok(limits::env_size(IDX_LIMIT_VAR, limits::DEFAULT_IDX_LIMIT)?)
}

/// [`load_dir`] with each file's data section at most `limit` bytes.
pub fn load_dir_limited(dir: &Path, limit: u64) -> Result<Mnist, DataError> {
    check_folder(dir)?;
    let train = load_split(dir, "train", limit)?;
    let test = load_split(dir, "t10k", limit)?;
    // The network sees rows × cols pixels; 28×28 and 14×56 have the same
    // count but are different images.
    if (test.rows, test.cols) != (train.rows, train.cols) {
        return Err(DataError::ShapeMismatch {
            path: find(dir, "t10k-images-idx3-ubyte")?,
            found: (test.rows, test.cols),
            expected: (train.rows, train.cols),
        });
    }
    Ok(Mnist { train, test })
}

/// Only the test set (`t10k-*`), for commands that never train: the
/// training set is its first image, so a [`Mnist`] exists to be given to a
/// trainer without reading the 47 MB training files.
pub fn load_test_only(dir: &Path) -> Result<Mnist, DataError> {
    check_folder(dir)?;
    let test = load_split(dir, "t10k", idx_limit()?)?;
    Ok(Mnist {
        train: test.first(1),
        test,
    })
}

/// Loads `{prefix}-images-idx3-ubyte` and `{prefix}-labels-idx1-ubyte`.
pub fn load_split(dir: &Path, prefix: &str, limit: u64) -> Result<Dataset, DataError> {
    let images_path = find(dir, &format!("{prefix}-images-idx3-ubyte"))?;
    let labels_path = find(dir, &format!("{prefix}-labels-idx1-ubyte"))?;
    let images = read_idx_limited(&images_path, limit)?;
    let labels = read_idx_limited(&labels_path, limit)?;
    expect_magic(
        &images_path,
        &images,
        MAGIC_IMAGES,
        "images: u8, 3 dimensions",
    )?;
    expect_magic(
        &labels_path,
        &labels,
        MAGIC_LABELS,
        "labels: u8, 1 dimension",
    )?;
    let (n, rows, cols) = (images.dims[0], images.dims[1], images.dims[2]);
    if n == 0 {
        return Err(DataError::BadHeader {
            path: images_path,
            what: "holds no images".into(),
        });
    }
    if rows == 0 || cols == 0 {
        return Err(DataError::BadHeader {
            path: images_path,
            what: format!("images of {rows}×{cols} pixels"),
        });
    }
    // The GPU and the sampler index images with u32.
    if n > u32::MAX as usize {
        return Err(DataError::BadHeader {
            path: images_path,
            what: format!("holds {n} images; at most {} are supported", u32::MAX),
        });
    }
    if n != labels.dims[0] {
        return Err(DataError::CountMismatch {
            images_path,
            images: n,
            labels_path,
            labels: labels.dims[0],
        });
    }
    if let Some((index, &label)) = labels
        .data
        .iter()
        .enumerate()
        .find(|&(_, &l)| l as usize >= CLASSES)
    {
        return Err(DataError::LabelOutOfRange {
            path: labels_path,
            index,
            label,
        });
    }
    Ok(Dataset {
        images: images.data,
        labels: labels.data,
        rows,
        cols,
    })
}

/// `dir` is a folder that holds MNIST-named files; otherwise what it is
/// instead, and what was probably meant: a path that does not exist, a file
/// (one of the IDX files itself), a parent of the folder (`data/`), a
/// folder of pictures.
fn check_folder(dir: &Path) -> Result<(), DataError> {
    let not = |why: String| DataError::NotADataFolder {
        path: dir.to_path_buf(),
        why,
    };
    let meta = std::fs::metadata(dir).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => not("does not exist".into()),
        _ => DataError::Io {
            path: dir.to_path_buf(),
            error: e,
        },
    })?;
    if !meta.is_dir() {
        let parent = dir
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        return Err(not(format!(
            "is {}: --data takes the folder holding the four IDX files (here {})",
            files::kind_of(&meta),
            parent.display()
        )));
    }
    let holds = |d: &Path, name: &str| find(d, name).is_ok();
    if ["train", "t10k"]
        .iter()
        .any(|p| holds(dir, &format!("{p}-images-idx3-ubyte")))
    {
        return Ok(());
    }
    let entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| DataError::Io {
            path: dir.to_path_buf(),
            error: e,
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    if let Some(inner) = entries
        .iter()
        .find(|p| p.is_dir() && holds(p, "t10k-images-idx3-ubyte"))
    {
        return Err(not(format!(
            "holds no IDX files, but {} does: did you mean --data {}?",
            inner.display(),
            inner.display()
        )));
    }
    let picture = |p: &PathBuf| {
        p.extension().is_some_and(|e| {
            ["png", "jpg", "jpeg", "bmp", "pgm", "gif"]
                .contains(&e.to_string_lossy().to_lowercase().as_str())
        })
    };
    if entries.iter().any(picture) {
        return Err(not(
            "is a folder of pictures: image folders are not IDX data (--data takes MNIST-style IDX files; `gpu-net predict` classifies pictures)".into(),
        ));
    }
    Ok(()) // the per-file message names what is missing
}

/// `dir/name.gz` if present, else `dir/name`. One that is there but is not
/// a regular file (a FIFO, a link that loops) is an error saying what it is.
fn find(dir: &Path, name: &str) -> Result<PathBuf, DataError> {
    let gz = dir.join(format!("{name}.gz"));
    for path in [gz.clone(), dir.join(name)] {
        match files::check_regular(&path) {
            Ok(()) => return Ok(path),
            Err(e) if e.error.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(DataError::Io {
                    path,
                    error: e.error,
                });
            }
        }
    }
    Err(DataError::Missing { path: gz })
}

/// The parsed contents of one IDX file.
#[derive(Debug)]
pub struct Idx {
    pub magic: u32,
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

/// Reads one IDX file, gzipped or raw, checking that the data length matches
/// the header exactly, within the limit of `GPU_NET_IDX_LIMIT`.
pub fn read_idx(path: &Path) -> Result<Idx, DataError> {
    read_idx_limited(path, idx_limit()?)
}

/// [`read_idx`] with the data section at most `limit` bytes. The data is read
/// incrementally, so a header claiming more than a file holds fails as
/// truncated without allocating what it claims.
pub fn read_idx_limited(path: &Path, limit: u64) -> Result<Idx, DataError> {
    let io = |error| DataError::Io {
        path: path.to_path_buf(),
        error,
    };
    files::check_regular(path).map_err(|e| io(e.error))?;
    let file = File::open(path).map_err(io)?;
    decode(path, BufReader::new(file), limit)
}

/// Parses the bytes of an IDX file held in memory (gzipped or raw); `path`
/// names it in errors and, ending in `.gz`, says it must be gzip.
pub fn read_idx_bytes(path: &Path, bytes: &[u8], limit: u64) -> Result<Idx, DataError> {
    decode(path, bytes, limit)
}

/// Gzip (any number of members) or raw, told apart by the content's first
/// two bytes, then parsed.
fn decode(path: &Path, mut source: impl Read, limit: u64) -> Result<Idx, DataError> {
    let io = |error| DataError::Io {
        path: path.to_path_buf(),
        error,
    };
    let mut head = [0u8; 2];
    let got = read_full(&mut source, &mut head).map_err(io)?;
    let is_gzip = got == 2 && head == [0x1f, 0x8b];
    let named_gz = path.extension().is_some_and(|e| e == "gz");
    if named_gz && !is_gzip {
        return Err(DataError::NotGzip {
            path: path.to_path_buf(),
        });
    }
    let prefix = std::io::Cursor::new(head[..got].to_vec());
    let mut reader: Box<dyn Read> = if is_gzip {
        Box::new(MultiGzDecoder::new(prefix.chain(source)))
    } else {
        Box::new(prefix.chain(source))
    };
    parse_idx(path, &mut reader, limit)
}

fn parse_idx(path: &Path, reader: &mut dyn Read, limit: u64) -> Result<Idx, DataError> {
    let header = |what: String| DataError::BadHeader {
        path: path.to_path_buf(),
        what,
    };
    let io = |error| DataError::Io {
        path: path.to_path_buf(),
        error,
    };
    let mut word = [0u8; 4];
    if read_full(reader, &mut word).map_err(io)? < 4 {
        return Err(header("too short for an IDX header".into()));
    }
    let magic = u32::from_be_bytes(word);
    let (kind, ndims) = ((magic >> 8) & 0xff, (magic & 0xff) as usize);
    if magic >> 16 != 0 || kind != 0x08 || !(1..=3).contains(&ndims) {
        return Err(DataError::BadMagic {
            path: path.to_path_buf(),
            found: magic,
            expected: if ndims == 1 {
                MAGIC_LABELS
            } else {
                MAGIC_IMAGES
            },
            what: "an IDX file of u8 data",
        });
    }
    let mut dims = Vec::with_capacity(ndims);
    for d in 0..ndims {
        if read_full(reader, &mut word).map_err(io)? < 4 {
            return Err(header(format!("header ends before dimension {d}")));
        }
        dims.push(u32::from_be_bytes(word) as usize);
    }
    let expected = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| header(format!("dimensions {dims:?} overflow")))?;
    if expected as u64 > limit {
        return Err(DataError::TooLarge {
            path: path.to_path_buf(),
            dims,
            claimed: expected as u64,
            limit,
        });
    }
    // `take` bounds the read; `read_to_end` grows the buffer as data arrives,
    // so memory follows the real file size, not the header's claim.
    let mut data = Vec::new();
    reader
        .take(expected as u64)
        .read_to_end(&mut data)
        .map_err(io)?;
    if data.len() < expected {
        return Err(DataError::Truncated {
            path: path.to_path_buf(),
            expected,
            found: data.len(),
        });
    }
    let mut rest = Vec::new();
    // A gzip error here is in what follows the data: junk after the last
    // member reads as a bad header of another.
    reader.take(1 << 20).read_to_end(&mut rest).map_err(|e| {
        let what = format!("after its {expected} bytes of data: {e}");
        io(std::io::Error::new(e.kind(), what))
    })?;
    if !rest.is_empty() {
        return Err(DataError::TrailingData {
            path: path.to_path_buf(),
            expected,
            extra: rest.len(),
        });
    }
    Ok(Idx { magic, dims, data })
}

fn expect_magic(
    path: &Path,
    idx: &Idx,
    expected: u32,
    what: &'static str,
) -> Result<(), DataError> {
    if idx.magic != expected {
        return Err(DataError::BadMagic {
            path: path.to_path_buf(),
            found: idx.magic,
            expected,
            what,
        });
    }
    Ok(())
}

/// Like `read_exact`, but returns how many bytes it got instead of failing at EOF.
fn read_full(reader: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match reader.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Writes an IDX file (raw, or gzipped when the name ends in .gz). Used by the
/// tests and handy for building small datasets.
pub fn write_idx(path: &Path, magic: u32, dims: &[u32], data: &[u8]) -> std::io::Result<()> {
    let mut bytes = magic.to_be_bytes().to_vec();
    for d in dims {
        bytes.extend(d.to_be_bytes());
    }
    bytes.extend_from_slice(data);
    if path.extension().is_some_and(|e| e == "gz") {
        use std::io::Write;
        let mut enc =
            flate2::write::GzEncoder::new(File::create(path)?, flate2::Compression::fast());
        enc.write_all(&bytes)?;
        enc.finish()?;
        Ok(())
    } else {
        std::fs::write(path, bytes)
    }
}
