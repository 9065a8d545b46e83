//! Seeded corruptions of real files: IDX files cut from the bundled MNIST
//! (raw, gzipped, in several gzip members, and the real gzip files'
//! own bytes) and checkpoints written by the library. Each corruption is a
//! bit flip, an overwritten byte, a truncation, an inflated count or size, a
//! header swapped for another file's, bytes inserted or removed, trailing
//! junk, or (checkpoints) an edit of the JSON header. Every one must be read
//! correctly (what was read is what the bytes say) or refused with a message
//! naming the file: never a panic, never a hang, and never more memory than
//! a small multiple of the file (a lying size must not be believed). The
//! largest checkpoint the limits allow is corrupted too; data files are
//! swapped for FIFOs, links to device nodes, link loops and folders; and
//! the CLI is handed two flags that name one file, spelled apart.

mod alloc_meter;
mod common;

use std::io::{Read, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use flate2::read::{GzDecoder, MultiGzDecoder};
use gpu_net::core::data::{self, read_idx_bytes};
use gpu_net::core::model::{Arch, Params};
use gpu_net::core::optim::{Optimizer, OptimizerKind};
use gpu_net::run::checkpoint::{Checkpoint, state_names};
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Cases per family; the whole test takes a few seconds in release.
const CASES: usize = 2500;
/// The IDX reader's limit here: an inflated count is refused, not read.
const LIMIT: u64 = 1 << 20;
/// Most a single read may allocate at once (the files are under 100 kB).
const MEMORY: usize = 16 << 20;

/// Runs `f` on a thread of its own; a panic or a run past `secs` fails.
fn within<T: Send + 'static>(secs: u64, what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(secs))
        .unwrap_or_else(|e| panic!("{what}: no answer within {secs} s ({e}): a hang or a panic"))
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

fn mnist_file(name: &str) -> PathBuf {
    data::bundled_dir().join(name)
}

/// The first `n` images (or labels) of a bundled file as a raw IDX file.
fn real_slice(name: &str, n: u32) -> Vec<u8> {
    let mut all = Vec::new();
    let file = std::fs::File::open(mnist_file(name)).unwrap();
    let header_len = if name.contains("images") { 16 } else { 8 };
    let per_item = if name.contains("images") { 784 } else { 1 };
    GzDecoder::new(file)
        .take((header_len + n as usize * per_item) as u64)
        .read_to_end(&mut all)
        .unwrap();
    all[4..8].copy_from_slice(&n.to_be_bytes());
    all
}

/// A file and the name it goes by (which says whether it must be gzip).
struct Sample {
    name: &'static str,
    bytes: Vec<u8>,
}

fn idx_samples() -> Vec<Sample> {
    let images = real_slice("t10k-images-idx3-ubyte.gz", 12);
    let labels = real_slice("t10k-labels-idx1-ubyte.gz", 40);
    let mut members = gzip(&images[..10]);
    members.extend(gzip(&images[10..700]));
    members.extend(gzip(&images[700..]));
    let real_images = std::fs::read(mnist_file("t10k-images-idx3-ubyte.gz")).unwrap();
    vec![
        Sample {
            name: "t10k-images-idx3-ubyte",
            bytes: images.clone(),
        },
        Sample {
            name: "t10k-labels-idx1-ubyte",
            bytes: labels.clone(),
        },
        Sample {
            name: "t10k-images-idx3-ubyte.gz",
            bytes: gzip(&images),
        },
        Sample {
            name: "t10k-labels-idx1-ubyte.gz",
            bytes: gzip(&labels),
        },
        Sample {
            name: "t10k-images-idx3-ubyte.gz",
            bytes: members,
        },
        // The real gzip files' own bytes: the labels whole, the images' first
        // 3 kB (a truncated stream even before any corruption).
        Sample {
            name: "t10k-labels-idx1-ubyte.gz",
            bytes: std::fs::read(mnist_file("t10k-labels-idx1-ubyte.gz")).unwrap(),
        },
        Sample {
            name: "t10k-images-idx3-ubyte.gz",
            bytes: real_images[..3000].to_vec(),
        },
    ]
}

/// One seeded corruption of an IDX file. `other` is another file's bytes
/// (for swapped headers); gzipped files are corrupted either as bytes or
/// inside, then recompressed.
fn corrupt_idx(rng: &mut ChaCha8Rng, bytes: &[u8], other: &[u8]) -> Vec<u8> {
    let gz = bytes.starts_with(&[0x1f, 0x8b]);
    if gz && rng.random_bool(0.5) {
        let mut inner = Vec::new();
        if MultiGzDecoder::new(bytes).read_to_end(&mut inner).is_ok() {
            return gzip(&corrupt_raw(rng, &inner, other));
        }
    }
    corrupt_raw(rng, bytes, other)
}

fn corrupt_raw(rng: &mut ChaCha8Rng, bytes: &[u8], other: &[u8]) -> Vec<u8> {
    let mut b = bytes.to_vec();
    let len = b.len().max(1);
    // The header is where a reader's decisions are: hit it half the time.
    let at = |rng: &mut ChaCha8Rng| {
        if rng.random_bool(0.5) {
            rng.random_range(0..16.min(len))
        } else {
            rng.random_range(0..len)
        }
    };
    match rng.random_range(0..9) {
        0 => {
            for _ in 0..rng.random_range(1..4) {
                let i = at(rng);
                if i < b.len() {
                    b[i] ^= 1 << rng.random_range(0..8);
                }
            }
        }
        1 => {
            let i = at(rng);
            if i < b.len() {
                b[i] = *[0x00, 0xff, 0x7f, 0x80, rng.random()].choose(rng).unwrap();
            }
        }
        2 => b.truncate(rng.random_range(0..len)),
        3 => {
            // An inflated (or zeroed) count or dimension.
            let field = 4 * rng.random_range(1..4usize);
            if b.len() >= field + 4 {
                let old = u32::from_be_bytes(b[field..field + 4].try_into().unwrap());
                let new = *[
                    0,
                    old + 1,
                    old.wrapping_mul(2),
                    old.wrapping_mul(1000),
                    u32::MAX,
                    1 << 31,
                    rng.random(),
                ]
                .choose(rng)
                .unwrap();
                b[field..field + 4].copy_from_slice(&new.to_be_bytes());
            }
        }
        4 => {
            // Another file's header on this file's data.
            let n = (*[8, 16].choose(rng).unwrap())
                .min(other.len())
                .min(b.len());
            b[..n].copy_from_slice(&other[..n]);
        }
        5 => {
            let i = rng.random_range(0..=b.len());
            let junk: Vec<u8> = (0..rng.random_range(1..9)).map(|_| rng.random()).collect();
            b.splice(i..i, junk);
        }
        6 => {
            if !b.is_empty() {
                let i = rng.random_range(0..b.len());
                let n = rng.random_range(1..9).min(b.len() - i);
                b.drain(i..i + n);
            }
        }
        7 => {
            // Trailing junk, or a second gzip member of junk.
            let junk: Vec<u8> = (0..rng.random_range(1..40)).map(|_| rng.random()).collect();
            if rng.random_bool(0.5) {
                b.extend(junk);
            } else {
                b.extend(gzip(&junk));
            }
        }
        _ => {
            // The magic of the other kind, or no IDX at all.
            let magic = *[0x0801u32, 0x0803, 0x0802, 0x0d03, 0x0800, 0x0804]
                .choose(rng)
                .unwrap();
            if b.len() >= 4 {
                b[..4].copy_from_slice(&magic.to_be_bytes());
            }
        }
    }
    b
}

/// What the bytes say, read without the library's IDX code: the content
/// (gunzipped when it starts like gzip), its magic, dims and data.
fn idx_oracle(bytes: &[u8]) -> Option<(u32, Vec<usize>, Vec<u8>)> {
    let content = if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        MultiGzDecoder::new(bytes).read_to_end(&mut out).ok()?;
        out
    } else {
        bytes.to_vec()
    };
    let magic = u32::from_be_bytes(content.get(..4)?.try_into().ok()?);
    let ndims = (magic & 0xff) as usize;
    let dims: Vec<usize> = (0..ndims)
        .map(|d| {
            let at = 4 + 4 * d;
            content
                .get(at..at + 4)
                .map(|w| u32::from_be_bytes(w.try_into().unwrap()) as usize)
        })
        .collect::<Option<_>>()?;
    Some((magic, dims, content.get(4 + 4 * ndims..)?.to_vec()))
}

#[test]
fn corrupted_idx_files_are_read_correctly_or_refused_by_name() {
    let samples = idx_samples();
    // Each uncorrupted sample reads (the truncated real prefix excepted).
    for s in &samples[..6] {
        let path = Path::new(s.name);
        read_idx_bytes(path, &s.bytes, LIMIT).unwrap_or_else(|e| panic!("{}: {e}", s.name));
    }
    let report = within(60, "IDX mutations", move || {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let (mut read, mut refused, mut failures) = (0, 0, Vec::new());
        for case in 0..CASES {
            let s = samples.choose(&mut rng).unwrap();
            let other = &samples.choose(&mut rng).unwrap().bytes;
            let bytes = corrupt_idx(&mut rng, &s.bytes, other);
            let path = Path::new(s.name);
            let (result, peak) = alloc_meter::peak_of(|| {
                catch_unwind(AssertUnwindSafe(|| read_idx_bytes(path, &bytes, LIMIT)))
            });
            let accepted = judge(case, peak, result, s.name, &mut refused, &mut failures);
            if let Some(idx) = accepted {
                read += 1;
                // Read correctly: what the bytes say, exactly as long as the
                // header claims and within the limit.
                let ok = match idx_oracle(&bytes) {
                    Some((magic, dims, data)) => {
                        idx.magic == magic
                            && idx.dims == dims
                            && idx.data == data
                            && dims.iter().product::<usize>() == data.len()
                            && data.len() as u64 <= LIMIT
                    }
                    None => false,
                };
                if !ok {
                    failures.push(format!("case {case}: accepted {:?} wrongly", idx.dims));
                }
            }
        }
        (read, refused, failures)
    });
    let (read, refused, failures) = report;
    eprintln!("IDX: {read} read, {refused} refused");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The corruptions reach both outcomes, or they test little.
    assert!(
        read > CASES / 20 && refused > CASES / 2,
        "{read} read, {refused} refused"
    );
}

#[test]
fn corrupted_idx_folders_load_correctly_or_are_refused() {
    // Through load_dir: the four files together, so counts, labels and
    // shapes across files are judged too. Fewer cases: each writes files.
    let dir = std::env::temp_dir().join(format!("gpu-net-mutation-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let images = real_slice("t10k-images-idx3-ubyte.gz", 6);
    let labels = real_slice("t10k-labels-idx1-ubyte.gz", 6);
    let files = [
        ("train-images-idx3-ubyte.gz", gzip(&images)),
        ("train-labels-idx1-ubyte.gz", gzip(&labels)),
        ("t10k-images-idx3-ubyte", images.clone()),
        ("t10k-labels-idx1-ubyte", labels.clone()),
    ];
    let d = dir.clone();
    let failures = within(60, "folder mutations", move || {
        let mut rng = ChaCha8Rng::seed_from_u64(12);
        let mut failures = Vec::new();
        for case in 0..300 {
            let target = rng.random_range(0..files.len());
            for (i, (name, bytes)) in files.iter().enumerate() {
                let other = &files[(i + 1) % files.len()].1;
                let b = if i == target {
                    corrupt_idx(&mut rng, bytes, other)
                } else {
                    bytes.clone()
                };
                std::fs::write(d.join(name), b).unwrap();
            }
            match catch_unwind(AssertUnwindSafe(|| data::load_dir_limited(&d, LIMIT))) {
                Err(_) => failures.push(format!("case {case}: panicked")),
                Ok(Err(e)) => {
                    let msg = e.to_string();
                    if !files.iter().any(|(name, _)| msg.contains(name)) {
                        failures.push(format!("case {case}: {msg:?} names no file"));
                    }
                }
                Ok(Ok(m)) => {
                    let consistent = |s: &gpu_net::core::data::Dataset| {
                        s.images.len() == s.len() * s.pixels()
                            && s.labels.iter().all(|&l| l < 10)
                            && !s.is_empty()
                    };
                    if !(consistent(&m.train)
                        && consistent(&m.test)
                        && (m.train.rows, m.train.cols) == (m.test.rows, m.test.cols))
                    {
                        failures.push(format!("case {case}: an inconsistent dataset loaded"));
                    }
                }
            }
        }
        failures
    });
    std::fs::remove_dir_all(&dir).ok();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Checkpoints as the library writes them, with the header's keys sorted so
/// a seed hits the same bytes on every run.
fn checkpoint_samples() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for (bn, kind, f64_values) in [
        (true, OptimizerKind::Adam, false),
        (false, OptimizerKind::Sgd, true),
        (false, OptimizerKind::Momentum, false),
    ] {
        let arch = Arch::mlp(20, &[6], 10).unwrap().with_batchnorm(bn);
        let params = Params::init(&arch, 1);
        let state = vec![vec![0.25; params.values.len()]; kind.state_arrays()];
        let ck = common::checkpoint(params, Optimizer::new(kind), state, 0.01, f64_values);
        out.push(with_header(&ck.to_bytes(), |_| {}));
    }
    out
}

fn split(bytes: &[u8]) -> Option<(usize, serde_json::Value)> {
    let n = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?) as usize;
    let header = serde_json::from_slice(bytes.get(8..8usize.checked_add(n)?)?).ok()?;
    Some((n, header))
}

/// The file rebuilt around its header, edited (serde_json's map sorts keys).
fn with_header(bytes: &[u8], edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let (n, mut h) = split(bytes).unwrap();
    edit(&mut h);
    let text = serde_json::to_vec(&h).unwrap();
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend(text);
    out.extend(&bytes[8 + n..]);
    out
}

/// Values to put where the metadata or a tensor entry had its own.
fn odd_value(rng: &mut ChaCha8Rng) -> serde_json::Value {
    use serde_json::json;
    [
        json!(""),
        json!("-1"),
        json!("0"),
        json!("1e309"),
        json!("NaN"),
        json!("18446744073709551616"),
        json!("[784, 100000, 10]"),
        json!("[20, 0, 10]"),
        json!("[20]"),
        json!("[20, 6, 10, 7]"),
        json!("true"),
        json!("adam"),
        json!("F64"),
        json!(12),
        json!(null),
        json!([0, 99999999]),
        json!([8, 4]),
        json!([]),
        json!({"a": 1}),
    ]
    .choose(rng)
    .unwrap()
    .clone()
}

fn corrupt_checkpoint(rng: &mut ChaCha8Rng, bytes: &[u8], other: &[u8]) -> Vec<u8> {
    let (n, _) = split(bytes).unwrap();
    match rng.random_range(0..9) {
        // Raw corruptions of any kind, in the header half the time.
        0..=2 => {
            let mut b = corrupt_raw(rng, bytes, other);
            if rng.random_bool(0.5) && b.len() > 8 + n {
                let i = rng.random_range(8..8 + n);
                b[i] ^= 1 << rng.random_range(0..8);
            }
            b
        }
        3 => {
            // The header's length, off by a little or a lot.
            let mut b = bytes.to_vec();
            let new = *[
                n as u64 + 1,
                n as u64 - 1,
                0,
                u64::MAX,
                1 << 40,
                bytes.len() as u64,
                rng.random(),
            ]
            .choose(rng)
            .unwrap();
            b[..8].copy_from_slice(&new.to_le_bytes());
            b
        }
        4 | 8 => with_header(bytes, |h| {
            // A metadata value replaced by one of its kind's odd values, or
            // the key removed.
            let meta = h["__metadata__"].as_object_mut().unwrap();
            let keys: Vec<String> = meta.keys().cloned().collect();
            let k = keys.choose(rng).unwrap().clone();
            let values: &[&str] = match k.as_str() {
                "sizes" => &[
                    "[784, 100000, 10]",
                    "[20, 100000, 10]",
                    "[20, 0, 10]",
                    "[20]",
                    "[]",
                    "[20, 6, 10, 7]",
                    "[20, 7, 10]",
                    "[1, 18446744073709551615, 10]",
                    "lots",
                ],
                "batchnorm" | "optimizer" | "init" | "dtype" | "format" | "data" => &[
                    "true", "false", "maybe", "adam", "sgd", "lion", "F64", "F16", "he", "",
                ],
                _ => &[
                    "",
                    "-1",
                    "0",
                    "1",
                    "0.5",
                    "1e309",
                    "NaN",
                    "inf",
                    "1000000000000",
                    "18446744073709551616",
                ],
            };
            if rng.random_bool(0.9) {
                meta.insert(k, (*values.choose(rng).unwrap()).into());
            } else {
                meta.remove(&k);
            }
        }),
        5 => with_header(bytes, |h| {
            // A tensor entry's field replaced, or two tensors' offsets swapped.
            let o = h.as_object_mut().unwrap();
            let names: Vec<String> = o.keys().filter(|k| *k != "__metadata__").cloned().collect();
            let a = names.choose(rng).unwrap().clone();
            if rng.random_bool(0.5) {
                let b = names.choose(rng).unwrap().clone();
                let (x, y) = (o[&a]["data_offsets"].clone(), o[&b]["data_offsets"].clone());
                o.get_mut(&a).unwrap()["data_offsets"] = y;
                o.get_mut(&b).unwrap()["data_offsets"] = x;
            } else {
                let field = *["dtype", "shape", "data_offsets"].choose(rng).unwrap();
                o.get_mut(&a).unwrap()[field] = odd_value(rng);
            }
        }),
        6 => with_header(bytes, |h| {
            // A tensor removed, renamed or added.
            let o = h.as_object_mut().unwrap();
            let names: Vec<String> = o.keys().filter(|k| *k != "__metadata__").cloned().collect();
            let a = names.choose(rng).unwrap().clone();
            let entry = o.remove(&a).unwrap();
            match rng.random_range(0..3) {
                0 => {}
                1 => {
                    o.insert(format!("{a}x"), entry);
                }
                _ => {
                    o.insert(a.clone(), entry.clone());
                    o.insert("optimizer/v/W9".into(), entry);
                }
            }
        }),
        _ => {
            // Another checkpoint's header on this one's data, or the reverse.
            let (m, _) = split(other).unwrap();
            let mut b = other[..8 + m].to_vec();
            b.extend(&bytes[8 + n..]);
            b
        }
    }
}

/// Every tensor the header lists, decoded from the bytes as its entry says.
fn tensors_in(bytes: &[u8]) -> Option<Vec<(String, Vec<f64>)>> {
    let (n, h) = split(bytes)?;
    let data = bytes.get(8 + n..)?;
    h.as_object()?
        .iter()
        .filter(|(k, _)| *k != "__metadata__")
        .map(|(name, e)| {
            let [a, b] = [&e["data_offsets"][0], &e["data_offsets"][1]].map(|v| v.as_u64());
            let raw = data.get(a? as usize..b? as usize)?;
            let values = match e["dtype"].as_str()? {
                "F32" => raw
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes(c.try_into().unwrap()) as f64)
                    .collect(),
                "F64" => raw
                    .chunks_exact(8)
                    .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
                    .collect(),
                _ => return None,
            };
            Some((name.clone(), values))
        })
        .collect()
}

/// What `ck` holds, by tensor name (once: the largest checkpoint has
/// thousands of tensors).
fn held(ck: &Checkpoint) -> std::collections::HashMap<String, &[f64]> {
    let arch = &ck.params.arch;
    let mut out = std::collections::HashMap::new();
    for t in arch.tensors() {
        out.insert(t.name.clone(), &ck.params.values[t.range()]);
        for (k, state) in state_names(ck.config.optimizer.kind).iter().enumerate() {
            let name = format!("optimizer/{state}/{}", t.name);
            out.insert(name, &ck.state.optimizer_state[k][t.range()]);
        }
    }
    for t in arch.running_tensors() {
        out.insert(t.name.clone(), &ck.params.running[t.range()]);
    }
    out
}

/// Read correctly: every tensor is the values its bytes hold, every
/// metadata number the file's, and the checkpoint writes back as itself.
fn read_correctly(ck: &Checkpoint, bytes: &[u8]) -> bool {
    let Some(tensors) = tensors_in(bytes) else {
        return false;
    };
    let held = held(ck);
    let values_match = tensors
        .iter()
        .all(|(name, v)| held.get(name).copied() == Some(v.as_slice()));
    let (_, h) = split(bytes).unwrap();
    let meta = &h["__metadata__"];
    let text = |k: &str| meta[k].as_str().unwrap_or("");
    let metadata_match = text("iterations").parse() == Ok(ck.state.iterations)
        && text("seed").parse() == Ok(ck.config.seed)
        && text("batch").parse() == Ok(ck.config.batch)
        && text("sampler_position").parse() == Ok(ck.state.sampler_position)
        && serde_json::from_str::<Vec<usize>>(text("sizes"))
            .ok()
            .as_ref()
            == Some(&ck.params.arch.sizes);
    let path = Path::new("again.safetensors");
    values_match
        && metadata_match
        && Checkpoint::from_bytes(path, &ck.to_bytes()).ok().as_ref() == Some(ck)
}

#[test]
fn corrupted_checkpoints_are_read_correctly_or_refused_by_name() {
    let samples = checkpoint_samples();
    let dir = std::env::temp_dir().join(format!("gpu-net-mutation-ck-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let d = dir.clone();
    let (read, refused, failures) = within(60, "checkpoint mutations", move || {
        let path = d.join("m.safetensors");
        let mut rng = ChaCha8Rng::seed_from_u64(13);
        let (mut read, mut refused, mut failures) = (0, 0, Vec::new());
        for case in 0..CASES {
            let (a, b) = (
                rng.random_range(0..samples.len()),
                rng.random_range(0..samples.len()),
            );
            let bytes = corrupt_checkpoint(&mut rng, &samples[a], &samples[b]);
            // Through the file (size checks first) for one case in five.
            let through_file = case % 5 == 0;
            if through_file {
                std::fs::write(&path, &bytes).unwrap();
            }
            let (result, peak) = alloc_meter::peak_of(|| {
                catch_unwind(AssertUnwindSafe(|| {
                    if through_file {
                        Checkpoint::read(&path)
                    } else {
                        Checkpoint::from_bytes(&path, &bytes)
                    }
                }))
            });
            let name = path.display().to_string();
            if let Some(ck) = judge(case, peak, result, &name, &mut refused, &mut failures) {
                read += 1;
                if !read_correctly(&ck, &bytes) {
                    failures.push(format!("case {case}: accepted wrongly"));
                }
            }
        }
        (read, refused, failures)
    });
    std::fs::remove_dir_all(&dir).ok();
    eprintln!("checkpoints: {read} read, {refused} refused");
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        read > CASES / 50 && refused > CASES / 2,
        "{read} read, {refused} refused"
    );
}

/// One corrupted case's outcome: a failure when reading it allocated more
/// than [`MEMORY`], panicked, or refused it without a message that starts
/// with the file's `name` and says more; the value when it was read (for the
/// caller to check against the bytes), counting refusals in `refused`.
fn judge<T, E: std::fmt::Display>(
    case: usize,
    peak: usize,
    result: std::thread::Result<Result<T, E>>,
    name: &str,
    refused: &mut usize,
    failures: &mut Vec<String>,
) -> Option<T> {
    if peak > MEMORY {
        failures.push(format!("case {case}: allocated {peak} bytes"));
    }
    match result {
        Err(_) => failures.push(format!("case {case}: panicked")),
        Ok(Err(e)) => {
            *refused += 1;
            let msg = e.to_string();
            if !msg.starts_with(name) || msg.len() <= name.len() + 2 {
                failures.push(format!("case {case}: message {msg:?}"));
            }
        }
        Ok(Ok(v)) => return Some(v),
    }
    None
}

#[test]
fn the_largest_checkpoint_corrupted_is_read_correctly_or_refused_by_name() {
    let deepest = with_header(&common::deepest_checkpoint().to_bytes(), |_| {});
    let path = PathBuf::from("deepest.safetensors");
    let (read, refused, failures) = within(120, "the largest checkpoint's mutations", move || {
        let mut rng = ChaCha8Rng::seed_from_u64(15);
        let (mut read, mut refused, mut failures) = (0, 0, Vec::new());
        let whole = Checkpoint::from_bytes(&path, &deepest);
        if whole.is_err() {
            failures.push(format!("uncorrupted: {:?}", whole.err()));
        }
        for case in 0..40 {
            let bytes = corrupt_checkpoint(&mut rng, &deepest, &deepest);
            let (result, peak) = alloc_meter::peak_of(|| {
                catch_unwind(AssertUnwindSafe(|| Checkpoint::from_bytes(&path, &bytes)))
            });
            // Its own size is the measure here: a few copies of a 1 MB header.
            let peak = peak * MEMORY / (64 << 20);
            let name = path.display().to_string();
            if let Some(ck) = judge(case, peak, result, &name, &mut refused, &mut failures) {
                read += 1;
                if !read_correctly(&ck, &bytes) {
                    failures.push(format!("case {case}: accepted wrongly"));
                }
            }
        }
        (read, refused, failures)
    });
    eprintln!("the largest checkpoint: {read} read, {refused} refused");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(refused > 10, "{read} read, {refused} refused");
}

/// A temporary folder of this test's own.
#[cfg(unix)]
fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gpu-net-mutation-{name}-{}", std::process::id()));
    std::fs::remove_dir_all(&d).ok();
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[cfg(unix)]
#[test]
fn data_files_that_are_not_files_are_refused_by_name() {
    use std::os::unix::fs::symlink;
    let dir = scratch("kinds");
    let images = real_slice("t10k-images-idx3-ubyte.gz", 6);
    let labels = real_slice("t10k-labels-idx1-ubyte.gz", 6);
    let files = [
        ("train-images-idx3-ubyte.gz", gzip(&images)),
        ("train-labels-idx1-ubyte.gz", gzip(&labels)),
        ("t10k-images-idx3-ubyte", images.clone()),
        ("t10k-labels-idx1-ubyte", labels.clone()),
    ];
    // Each made where a data file belongs: a FIFO (opened, it would block
    // for ever), links to device nodes, a link to itself, a folder.
    type Make = fn(&Path);
    let kinds: [(&str, Make); 5] = [
        ("a FIFO", |p| {
            let ok = std::process::Command::new("mkfifo").arg(p).status();
            assert!(ok.unwrap().success());
        }),
        ("a link to /dev/zero", |p| symlink("/dev/zero", p).unwrap()),
        ("a link to /dev/null", |p| symlink("/dev/null", p).unwrap()),
        ("a link loop", |p| {
            symlink(p.file_name().unwrap(), p).unwrap()
        }),
        ("a folder", |p| std::fs::create_dir(p).unwrap()),
    ];
    let d = dir.clone();
    let failures = within(60, "data files of every kind", move || {
        let mut failures = Vec::new();
        for (target, (name, _)) in files.iter().enumerate() {
            for (kind, make) in &kinds {
                for (i, (n, bytes)) in files.iter().enumerate() {
                    let p = d.join(n);
                    std::fs::remove_file(&p)
                        .or_else(|_| std::fs::remove_dir_all(&p))
                        .ok();
                    if i == target {
                        make(&p);
                    } else {
                        std::fs::write(&p, bytes).unwrap();
                    }
                }
                match catch_unwind(AssertUnwindSafe(|| data::load_dir_limited(&d, LIMIT))) {
                    Err(_) => failures.push(format!("{name} as {kind}: panicked")),
                    Ok(Ok(_)) => failures.push(format!("{name} as {kind}: loaded")),
                    Ok(Err(e)) if !e.to_string().contains(name) => {
                        failures.push(format!("{name} as {kind}: {e} names no file"))
                    }
                    Ok(Err(_)) => {}
                }
            }
        }
        failures
    });
    std::fs::remove_dir_all(&dir).ok();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[cfg(unix)]
#[test]
fn two_flags_naming_one_file_are_refused_however_it_is_spelled() {
    let dir = scratch("alias");
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    for f in data::files_read(&data::bundled_dir()) {
        std::fs::copy(&f, data.join(f.file_name().unwrap())).unwrap();
    }
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_gpu-net"))
            .args(["train", "--device", "cpu", "--hidden", "4", "--data"])
            .arg(&data)
            .args(args)
            .output()
            .unwrap()
    };
    let base = dir.join("base.st");
    let o = run(&["--iters", "1", "--save", base.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Pairs of which one writes; --resume saving back to itself is allowed.
    let roles = ["--save", "--metrics", "--plot", "--resume", "--data"];
    let writes = |r: &str| ["--save", "--metrics", "--plot"].contains(&r);
    let mut rng = ChaCha8Rng::seed_from_u64(14);
    let mut failures = Vec::new();
    for case in 0..24 {
        let (a, b) = loop {
            let (a, b) = (
                *roles.choose(&mut rng).unwrap(),
                *roles.choose(&mut rng).unwrap(),
            );
            // A figure over the data is refused sooner, by its name (.gz).
            let figure_over_data = [a, b].contains(&"--plot") && [a, b].contains(&"--data");
            let resaved = [a, b].contains(&"--save") && [a, b].contains(&"--resume");
            if a != b && (writes(a) || writes(b)) && !resaved && !figure_over_data {
                break (a, b);
            }
        };
        let work = dir.join(format!("case{case}"));
        std::fs::create_dir_all(&work).unwrap();
        // The one file, and another spelling of it for the other flag.
        let file = if a == "--data" || b == "--data" {
            data.join("train-labels-idx1-ubyte.gz")
        } else if a == "--resume" || b == "--resume" {
            // Named .svg so that --plot takes the name: any name is a checkpoint's.
            let f = work.join("ck.svg");
            std::fs::copy(&base, &f).unwrap();
            f
        } else {
            let f = work.join("out.svg");
            std::fs::write(&f, "kept").unwrap();
            f
        };
        let before = std::fs::read(&file).unwrap();
        let (folder, name) = (file.parent().unwrap(), file.file_name().unwrap());
        let (spelling, alias) = match rng.random_range(0..4) {
            0 => ("./", folder.join(".").join(name)),
            1 => (
                "../",
                folder
                    .join("..")
                    .join(folder.file_name().unwrap())
                    .join(name),
            ),
            2 => {
                let l = work.join("link");
                std::os::unix::fs::symlink(&file, &l).unwrap();
                ("a symbolic link", l)
            }
            _ => {
                let l = work.join("hard");
                std::fs::hard_link(&file, &l).unwrap();
                ("a hard link", l)
            }
        };
        // The folder given to --data, the checkpoint given to --resume, or
        // else the first output keeps the file's own name; the other flag
        // takes the other spelling.
        let (named, spelled) = match (a, b) {
            ("--data", x) | (x, "--data") => (None, x),
            ("--resume", x) | (x, "--resume") => (Some(("--resume", &file)), x),
            (x, y) => (Some((x, &file)), y),
        };
        let mut args: Vec<String> = vec!["--iters".into(), "2".into()];
        if let Some((flag, path)) = named {
            args.extend([flag.to_string(), path.display().to_string()]);
        }
        args.extend([spelled.to_string(), alias.display().to_string()]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = run(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        let what = format!("case {case}: {a} and {b} through {spelling}: {args:?}");
        if o.status.code() != Some(2) || !err.contains("are one file") {
            failures.push(format!("{what}: exit {:?}, {err}", o.status.code()));
        }
        if std::fs::read(&file).unwrap() != before {
            failures.push(format!("{what}: the file changed"));
        }
        std::fs::remove_file(work.join("hard")).ok();
    }
    std::fs::remove_dir_all(&dir).ok();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
