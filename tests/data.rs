//! IDX reading: a written file reads back; every malformed case is an error
//! naming the file and the problem, never a panic; memory stays within the
//! size limit whatever a header claims.

mod alloc_meter;

use std::io::Write;
use std::path::{Path, PathBuf};

use gpu_net::core::data::{self, DataError, read_idx, read_idx_limited, write_idx};

fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gpu-net-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A valid 4-file dataset of `n` training and `n` test images of 2×3 pixels.
fn write_dataset(dir: &Path, n: u32, gz: bool) {
    let ext = if gz { ".gz" } else { "" };
    for prefix in ["train", "t10k"] {
        let images: Vec<u8> = (0..n * 6).map(|i| (i * 7 % 256) as u8).collect();
        let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
        write_idx(
            &dir.join(format!("{prefix}-images-idx3-ubyte{ext}")),
            0x803,
            &[n, 2, 3],
            &images,
        )
        .unwrap();
        write_idx(
            &dir.join(format!("{prefix}-labels-idx1-ubyte{ext}")),
            0x801,
            &[n],
            &labels,
        )
        .unwrap();
    }
}

fn err_text(dir: &Path) -> String {
    data::load_dir(dir).expect_err("should fail").to_string()
}

#[test]
fn written_files_read_back_gzipped_and_raw() {
    for gz in [true, false] {
        let dir = tempdir(&format!("roundtrip-{gz}"));
        write_dataset(&dir, 5, gz);
        let m = data::load_dir(&dir).unwrap();
        assert_eq!((m.train.len(), m.train.rows, m.train.cols), (5, 2, 3));
        assert_eq!(m.train.labels, vec![0, 1, 2, 3, 4]);
        assert_eq!(m.test.image(1), &[42, 49, 56, 63, 70, 77]);
    }
}

#[test]
fn bundled_mnist_matches_its_readme() {
    let m = data::load_dir(&data::bundled_dir()).unwrap();
    assert_eq!(
        (m.train.len(), m.test.len(), m.train.pixels()),
        (60000, 10000, 784)
    );
    assert_eq!(&m.train.labels[..10], &[5, 0, 4, 1, 9, 2, 1, 3, 1, 4]);
    assert_eq!(&m.test.labels[..10], &[7, 2, 1, 0, 4, 1, 4, 9, 5, 9]);
}

#[test]
fn missing_file_names_it_and_hints_at_data_flag() {
    let dir = tempdir("missing");
    let e = err_text(&dir);
    assert!(
        e.contains("train-images-idx3-ubyte") && e.contains("--data"),
        "{e}"
    );
}

#[test]
fn gz_name_without_gzip_content() {
    let dir = tempdir("notgzip");
    write_dataset(&dir, 3, true);
    std::fs::write(dir.join("train-labels-idx1-ubyte.gz"), b"plain text").unwrap();
    let e = err_text(&dir);
    assert!(
        e.contains("train-labels-idx1-ubyte.gz") && e.contains("not gzip"),
        "{e}"
    );
}

#[test]
fn wrong_magic() {
    let dir = tempdir("magic");
    write_dataset(&dir, 3, false);
    // Labels where images belong.
    write_idx(
        &dir.join("train-images-idx3-ubyte"),
        0x801,
        &[3],
        &[1, 2, 3],
    )
    .unwrap();
    let e = err_text(&dir);
    assert!(
        e.contains("train-images-idx3-ubyte") && e.contains("magic"),
        "{e}"
    );
    // Not IDX at all.
    std::fs::write(dir.join("train-images-idx3-ubyte"), b"GIF89a......").unwrap();
    let e = err_text(&dir);
    assert!(e.contains("wrong magic"), "{e}");
}

#[test]
fn truncated_data_and_header() {
    let dir = tempdir("truncated");
    write_dataset(&dir, 3, false);
    let path = dir.join("train-images-idx3-ubyte");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.truncate(bytes.len() - 5);
    std::fs::write(&path, &bytes).unwrap();
    let e = err_text(&dir);
    assert!(
        e.contains("train-images-idx3-ubyte") && e.contains("truncated") && e.contains("13"),
        "{e}"
    );
    std::fs::write(&path, &bytes[..9]).unwrap();
    let e = err_text(&dir);
    assert!(e.contains("header ends before dimension"), "{e}");
}

#[test]
fn header_claiming_huge_data_fails_without_allocating_it() {
    let dir = tempdir("huge");
    let path = dir.join("train-images-idx3-ubyte.gz");
    // 60000 × 60000 × 60000 is 2e14 bytes: over the default limit, refused
    // before reading; with no limit at all, truncated after the 100 it holds.
    write_idx(&path, 0x803, &[60000, 60000, 60000], &[0; 100]).unwrap();
    match read_idx(&path) {
        Err(DataError::TooLarge { claimed, limit, .. }) => {
            assert_eq!((claimed, limit), (60000u64.pow(3), 1 << 30))
        }
        other => panic!("expected over the limit, got {other:?}"),
    }
    match read_idx_limited(&path, u64::MAX) {
        Err(DataError::Truncated {
            expected, found, ..
        }) => {
            assert_eq!((expected, found), (60000usize.pow(3), 100))
        }
        other => panic!("expected truncated, got {other:?}"),
    }
    // 4 billion cubed overflows usize.
    write_idx(&path, 0x803, &[u32::MAX, u32::MAX, u32::MAX], &[0; 10]).unwrap();
    let e = read_idx_limited(&path, u64::MAX).unwrap_err().to_string();
    assert!(e.contains("overflow"), "{e}");
}

#[test]
fn a_small_gzip_that_inflates_past_the_limit_is_refused_before_reading() {
    // 8 MB of zeros compress to a few kB: without the limit, memory follows
    // the decompressed size, whatever the file's.
    let dir = tempdir("bomb");
    let path = dir.join("train-images-idx3-ubyte.gz");
    write_idx(&path, 0x803, &[8, 1024, 1024], &vec![0; 8 << 20]).unwrap();
    assert!(std::fs::metadata(&path).unwrap().len() < 100_000);
    let limit = 1 << 20;
    let (result, peak) = alloc_meter::peak_of(|| read_idx_limited(&path, limit));
    let e = result
        .expect_err("an IDX over the limit was read")
        .to_string();
    assert!(
        e.contains("train-images-idx3-ubyte.gz")
            && e.contains("8388608 data bytes")
            && e.contains("limit of 1048576")
            && e.contains("GPU_NET_IDX_LIMIT"),
        "{e}"
    );
    assert!(peak < limit as usize, "reading allocated {peak} bytes");
    // Within a limit that allows it, the same file reads whole.
    let idx = read_idx_limited(&path, 8 << 20).unwrap();
    assert_eq!(
        (idx.dims.as_slice(), idx.data.len()),
        (&[8, 1024, 1024][..], 8 << 20)
    );
}

#[test]
fn a_gzip_file_of_several_members_reads_whole() {
    // `cat a.gz b.gz` and parallel compressors (pigz) write one member per
    // part; gzip reads them as one stream, and so must we.
    let dir = tempdir("members");
    write_dataset(&dir, 7, true);
    let images: Vec<u8> = (0..7 * 6).map(|i| (i * 7 % 256) as u8).collect();
    let mut bytes = 0x803u32.to_be_bytes().to_vec();
    for d in [7u32, 2, 3] {
        bytes.extend(d.to_be_bytes());
    }
    bytes.extend(&images);
    let mut file = Vec::new();
    // Members split inside the header and inside the data.
    for part in [&bytes[..6], &bytes[6..30], &bytes[30..]] {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(part).unwrap();
        file.extend(enc.finish().unwrap());
    }
    std::fs::write(dir.join("train-images-idx3-ubyte.gz"), &file).unwrap();
    let m = data::load_dir(&dir).unwrap();
    assert_eq!((m.train.len(), m.train.rows, m.train.cols), (7, 2, 3));
    assert_eq!(m.train.images, images);
}

#[test]
fn train_and_test_images_must_have_the_same_shape_not_only_pixel_count() {
    let dir = tempdir("shape");
    write_dataset(&dir, 3, false);
    // 3×2 test images against 2×3 training images: 6 pixels each.
    write_idx(
        &dir.join("t10k-images-idx3-ubyte"),
        0x803,
        &[3, 3, 2],
        &[0; 18],
    )
    .unwrap();
    let e = err_text(&dir);
    assert!(
        e.contains("t10k-images-idx3-ubyte") && e.contains("3×2") && e.contains("2×3"),
        "{e}"
    );
}

#[test]
fn trailing_bytes_are_an_error() {
    let dir = tempdir("trailing");
    let path = dir.join("x-labels-idx1-ubyte");
    write_idx(&path, 0x801, &[2], &[1, 2, 3]).unwrap();
    let e = read_idx(&path).unwrap_err().to_string();
    assert!(e.contains("1 bytes after the 2 data bytes"), "{e}");
    // Junk after a gzip file's last member: said to follow the data.
    let gz = dir.join("x-labels-idx1-ubyte.gz");
    write_idx(&gz, 0x801, &[2], &[1, 2]).unwrap();
    let mut bytes = std::fs::read(&gz).unwrap();
    bytes.extend_from_slice(b"junk");
    std::fs::write(&gz, bytes).unwrap();
    let e = read_idx(&gz).unwrap_err().to_string();
    assert!(
        e.contains("x-labels-idx1-ubyte.gz") && e.contains("after its 2 bytes of data"),
        "{e}"
    );
}

#[test]
fn image_and_label_counts_must_agree() {
    let dir = tempdir("counts");
    write_dataset(&dir, 4, true);
    write_idx(
        &dir.join("t10k-labels-idx1-ubyte.gz"),
        0x801,
        &[3],
        &[1, 2, 3],
    )
    .unwrap();
    let e = err_text(&dir);
    assert!(
        e.contains("4 images") && e.contains("3 labels") && e.contains("t10k-labels-idx1-ubyte.gz"),
        "{e}"
    );
}

#[test]
fn label_out_of_range() {
    let dir = tempdir("label");
    write_dataset(&dir, 4, true);
    write_idx(
        &dir.join("train-labels-idx1-ubyte.gz"),
        0x801,
        &[4],
        &[1, 2, 10, 3],
    )
    .unwrap();
    let e = err_text(&dir);
    assert!(
        e.contains("label 10 at index 2") && e.contains("train-labels-idx1-ubyte.gz"),
        "{e}"
    );
}

#[test]
fn raw_files_are_found_when_no_gz_exists() {
    let dir = tempdir("raw");
    write_dataset(&dir, 2, false);
    let m = data::load_dir(&dir).unwrap();
    assert_eq!((m.train.len(), m.train.rows, m.train.cols), (2, 2, 3));
    assert_eq!(m.train.image(1), &[42, 49, 56, 63, 70, 77]);
    assert_eq!(m.test.labels, vec![0, 1]);
}

#[test]
fn empty_dataset_is_an_error() {
    let dir = tempdir("empty");
    write_dataset(&dir, 3, true);
    write_idx(
        &dir.join("train-images-idx3-ubyte.gz"),
        0x803,
        &[0, 2, 3],
        &[],
    )
    .unwrap();
    write_idx(&dir.join("train-labels-idx1-ubyte.gz"), 0x801, &[0], &[]).unwrap();
    let e = err_text(&dir);
    assert!(
        e.contains("train-images-idx3-ubyte.gz") && e.contains("no images"),
        "{e}"
    );
}
