//! How much faster the tiled matmul's 128×128 tile runs a large product than
//! its 64×64 tile on this adapter: measured once, then kept on disk
//! (`$XDG_CACHE_HOME/gpu-net/tiles.json`, else `~/.cache/gpu-net/tiles.json`,
//! keyed by adapter, backend, driver and the kernel's source, so that a
//! build with another tiled kernel measures again), so that the planner's choices, and
//! so a seeded run's bits, stay the same on that adapter from then on.
//! `GPU_NET_T128_SPEEDUP` gives the figure instead. CPU adapters, which run
//! the vec4 kernel, keep the design's estimate and measure nothing.
//!
//! Imports `context`, `dispatch`, `error`, `kernels` and `profile`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::context::{GpuContext, GpuOptions};
use super::dispatch::Slice;
use super::error::{GpuError, Result};
use super::kernels::{Epilogue, Matmul, MatmulAlgo, MatmulCall, MatmulShape, MatmulVariant};
use super::kernels::{SplitK, Tile, storage_buffers_needed, tiled_source};
use super::profile::{T128_SPEEDUP_ESTIMATE, env_setting};

/// The environment variable that gives the speed-up instead of measuring.
pub const SPEEDUP_VAR: &str = "GPU_NET_T128_SPEEDUP";
/// The side of the square product timed: large enough to fill a large GPU
/// with either tile (256 or 1024 workgroups), about a millisecond there.
pub const SIDE: usize = 2048;

/// Opens the device `options` ask for, its profile carrying the 128×128
/// tile's speed-up on it (see [`t128_speedup`]).
pub fn open(options: &GpuOptions) -> Result<GpuContext> {
    let mut ctx = GpuContext::new(options)?;
    check_storage_buffers(
        &ctx.info.name,
        ctx.limits.max_storage_buffers_per_shader_stage,
    )?;
    ctx.profile.t128_speedup = t128_speedup(&ctx)?;
    Ok(ctx)
}

/// Refuses a device on which some kernel would bind more storage buffers
/// than it allows a shader stage (`limit`), naming it.
pub fn check_storage_buffers(adapter: &str, limit: u32) -> Result<()> {
    let need = storage_buffers_needed();
    if limit >= need {
        return Ok(());
    }
    Err(GpuError::TooLarge {
        what: format!(
            "gpu-net's kernels on {adapter} (choose another adapter or backend: `gpu-net devices`)"
        ),
        need: need.into(),
        have: limit.into(),
        unit: "storage buffers per shader stage",
    })
}

/// `GPU_NET_T128_SPEEDUP` when set; the design's estimate on a CPU adapter
/// or where the tiled kernel is not in use; else the figure kept for this
/// adapter, or one measured now and kept.
pub fn t128_speedup(ctx: &GpuContext) -> Result<f64> {
    if let Some(v) = env_setting(SPEEDUP_VAR, parse_speedup)? {
        return Ok(v);
    }
    if ctx.profile.cpu || ctx.matmul_algo != MatmulAlgo::Tiled {
        return Ok(T128_SPEEDUP_ESTIMATE);
    }
    let key = adapter_key(&ctx.info);
    let path = cache_path();
    if let Some(v) = path.as_deref().and_then(|p| read_kept(p, &key)) {
        return Ok(v);
    }
    let v = measure(ctx, SIDE)?;
    if let Some(p) = path {
        // A cache that cannot be written only costs the next run a measurement.
        let _ = keep(&p, &key, v);
    }
    Ok(v)
}

/// Seconds per side³ product with the 64×64 tile over those with the
/// 128×128 tile, K whole, the fastest of three timed runs each.
pub fn measure(ctx: &GpuContext, side: usize) -> Result<f64> {
    let values: Vec<f32> = (0..side * side).map(|i| (i % 7) as f32 * 0.125).collect();
    let a = ctx.storage_init("tile timing A", &values);
    let c = ctx.storage("tile timing C", (side * side * 4) as u64);
    let mut seconds = [0.0; 2];
    for (tile, out) in Tile::ALL.into_iter().zip(&mut seconds) {
        let mm = Matmul::with_algo(ctx, MatmulAlgo::Tiled).with_tile(tile);
        let call = MatmulCall {
            label: format!("tile timing {tile:?}"),
            v: MatmulVariant {
                trans_a: false,
                trans_b: false,
                epilogue: Epilogue::Store,
            },
            shape: MatmulShape::plain(side, side, side, side, side, side),
            a: Slice::whole(&a),
            b: Slice::whole(&a),
            c: Slice::whole(&c),
            aux: None,
            columns: None,
        };
        let d = mm.bind_split(ctx, call, SplitK::Slices(1))?;
        ctx.run(&[&d])?; // compiles the pipeline and warms up
        *out = (0..3)
            .map(|_| {
                let start = Instant::now();
                ctx.run(&[&d, &d, &d])
                    .map(|_| start.elapsed().as_secs_f64())
            })
            .collect::<Result<Vec<f64>>>()?
            .into_iter()
            .fold(f64::INFINITY, f64::min);
    }
    Ok(seconds[0] / seconds[1])
}

/// What identifies the tiles' speeds: the adapter's name, backend and
/// driver, and a digest of the tiled kernel's source as this build compiles it.
pub fn adapter_key(info: &wgpu::AdapterInfo) -> String {
    format!(
        "{} | {:?} | {} {} | kernel {:016x}",
        info.name,
        info.backend,
        info.driver,
        info.driver_info,
        kernel_digest()
    )
}

/// FNV-1a over both tiles' WGSL: stable across builds and Rust versions
/// (std's hasher is not), changed by any edit to the kernel.
fn kernel_digest() -> u64 {
    Tile::ALL
        .into_iter()
        .flat_map(|t| tiled_source(t).into_bytes())
        .fold(0xcbf2_9ce4_8422_2325, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        })
}

/// Where the measured figures are kept, if there is a home for them.
fn cache_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))?;
    Some(base.join("gpu-net").join("tiles.json"))
}

/// The figure kept for `key` in `path`; None when there is none, or the file
/// is not what [`keep`] writes (it is then measured again and rewritten).
pub fn read_kept(path: &Path, key: &str) -> Option<f64> {
    let text = std::fs::read_to_string(path).ok()?;
    let kept: BTreeMap<String, f64> = serde_json::from_str(&text).ok()?;
    kept.get(key).copied().filter(|v| v.is_finite() && *v > 0.0)
}

/// Keeps `value` for `key` in `path`, beside the other adapters' figures,
/// written whole to a temporary file first.
pub fn keep(path: &Path, key: &str, value: f64) -> std::io::Result<()> {
    let mut kept: BTreeMap<String, f64> = std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    kept.insert(key.to_string(), value);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("json.{}", std::process::id()));
    std::fs::write(&tmp, serde_json::to_string_pretty(&kept)? + "\n")?;
    std::fs::rename(&tmp, path)
}

/// Parses a speed-up: a finite number from 0.01 to 100.
pub fn parse_speedup(text: &str) -> std::result::Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(v) if (0.01..=100.0).contains(&v) => Ok(v),
        _ => Err("expected how much faster the 128×128 tile runs than the 64×64 one, a number from 0.01 to 100 (1.6 is the design's estimate)".into()),
    }
}
