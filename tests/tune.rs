//! The tile timing (`src/gpu/tune.rs`): a measurement is a ratio of real
//! timings, kept per adapter on disk and read back; a damaged or foreign
//! file is measured over, and a bad GPU_NET_T128_SPEEDUP is refused by name.

mod common;

use gpu_net::gpu::profile::T128_SPEEDUP_ESTIMATE;
use gpu_net::gpu::tune::{adapter_key, keep, measure, parse_speedup, read_kept, t128_speedup};

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("gpu-net-tune-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir.join("gpu-net").join("tiles.json")
}

#[test]
fn the_tiles_are_timed_on_the_adapter() {
    let Some(ctx) = common::gpu() else { return };
    // A small product: either tile's time is real and positive.
    let r = measure(&ctx, 256).unwrap();
    assert!(r.is_finite() && r > 0.0, "{r}");
}

#[test]
fn a_cpu_adapter_keeps_the_estimate_without_timing() {
    let Some(ctx) = common::gpu() else { return };
    if ctx.profile.cpu {
        assert_eq!(t128_speedup(&ctx).unwrap(), T128_SPEEDUP_ESTIMATE);
    }
}

#[test]
fn a_kept_figure_is_read_back_per_adapter() {
    let path = scratch("kept");
    assert_eq!(read_kept(&path, "a"), None, "no file yet");
    keep(&path, "a", 1.25).unwrap();
    keep(&path, "b", 0.8).unwrap();
    assert_eq!(read_kept(&path, "a"), Some(1.25));
    assert_eq!(read_kept(&path, "b"), Some(0.8));
    assert_eq!(read_kept(&path, "c"), None);
    keep(&path, "a", 1.5).unwrap();
    assert_eq!(
        (read_kept(&path, "a"), read_kept(&path, "b")),
        (Some(1.5), Some(0.8))
    );
}

#[test]
fn a_damaged_file_is_measured_over() {
    let path = scratch("damaged");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    for junk in [
        "",
        "{",
        "[1, 2]",
        "{\"a\": \"fast\"}",
        "{\"a\": -1}",
        "{\"a\": 0}",
    ] {
        std::fs::write(&path, junk).unwrap();
        assert_eq!(read_kept(&path, "a"), None, "{junk:?}");
    }
    keep(&path, "a", 2.0).unwrap();
    assert_eq!(read_kept(&path, "a"), Some(2.0));
}

#[test]
fn adapters_differ_by_name_backend_and_driver() {
    let Some(ctx) = common::gpu() else { return };
    let mut info = ctx.info.clone();
    let key = adapter_key(&info);
    assert!(key.contains(&info.name), "{key}");
    info.driver_info += " (another)";
    assert_ne!(adapter_key(&info), key);
    info = ctx.info.clone();
    info.backend = match info.backend {
        wgpu::Backend::Gl => wgpu::Backend::Vulkan,
        _ => wgpu::Backend::Gl,
    };
    assert_ne!(adapter_key(&info), key);
}

#[test]
fn the_speedup_variable_takes_positive_numbers_only() {
    assert_eq!(parse_speedup(" 1.5 "), Ok(1.5));
    for bad in ["0", "-1", "fast", "inf", "NaN", "1e9"] {
        let e = parse_speedup(bad).unwrap_err();
        assert!(e.contains("128×128"), "{bad}: {e}");
    }
}

#[test]
fn a_device_allowing_fewer_storage_buffers_than_a_kernel_binds_is_refused() {
    use gpu_net::gpu::kernels::storage_buffers_needed;
    use gpu_net::gpu::tune::check_storage_buffers;
    let need = storage_buffers_needed();
    // The softmax pass with the head binds the most; WebGPU's default allows 8.
    assert!((7..=wgpu::Limits::default().max_storage_buffers_per_shader_stage).contains(&need));
    assert!(check_storage_buffers("some GPU", need).is_ok());
    let e = check_storage_buffers("some GPU", need - 1)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("some GPU") && e.contains(&format!("needs {need} storage buffers")),
        "{e}"
    );
}
