//! What the dispatch planner knows of a device: how many compute units run
//! workgroups side by side, whether the adapter is a CPU, which matmul
//! kernel suits it, and the limits a grid must respect. wgpu reports no
//! compute units, so they are guessed from the adapter's type unless
//! `GPU_NET_COMPUTE_UNITS` gives them. Plain data: `plan` and `cost` take a
//! profile, never a device, so plans can be tested for any machine. Also
//! what a user asks of the device ([`GpuOptions`]).
//!
//! Imports only `error`.

use super::error::{GpuError, Result};

/// Which adapter to open.
#[derive(Clone, Debug, Default)]
pub struct GpuOptions {
    /// Only these backends (`--backend`); `WGPU_BACKEND`'s, else all, by default.
    pub backend: Option<wgpu::Backends>,
    /// Index into the adapter list of those backends (`gpu-net devices`);
    /// by default the first whose name contains `WGPU_ADAPTER_NAME`, else
    /// the best one (see `adapter::select`).
    pub adapter: Option<usize>,
    /// Which matmul implementation; the one suited to the adapter by default.
    pub matmul: Option<MatmulAlgo>,
}

/// The environment variable that overrides the guessed compute units.
pub const COMPUTE_UNITS_VAR: &str = "GPU_NET_COMPUTE_UNITS";
/// The environment variable that, set to 0, keeps the last Affine and
/// SoftmaxWithLoss apart where the planner would fuse them (`bench/gpu.sh`
/// times both ways).
pub const FUSED_HEAD_VAR: &str = "GPU_NET_FUSED_HEAD";
/// The environment variable that, set to 0, has convolutions write
/// im2col's matrix out where the planner would read it in place
/// (`bench/gpu.sh` times both ways).
pub const IMPLICIT_CONV_VAR: &str = "GPU_NET_IMPLICIT_CONV";
/// The environment variable that, set to 0, has each training step gather
/// its own batch where the planner would gather a submission's at once
/// (`bench/gpu.sh` times both ways).
pub const GATHER_AHEAD_VAR: &str = "GPU_NET_GATHER_AHEAD";

/// Which matmul implementation the network's products use (the kernels are
/// in `kernels::matmul`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MatmulAlgo {
    /// Square tiles staged in workgroup memory (64×64 with 4×4 per
    /// invocation, or 128×128 with 8×8: the planner picks), for GPUs.
    Tiled,
    /// 12×16 per invocation from vec4 loads, no workgroup memory, the
    /// operands copied into textures first (where they fit: see
    /// `kernels::matmul::stages_operands`).
    Vec4,
    /// The vec4 kernel reading its operands straight from the buffers.
    Vec4Buffers,
}

impl MatmulAlgo {
    /// Whether this is the vec4 kernel (with either kind of operand).
    pub fn is_vec4(self) -> bool {
        self != MatmulAlgo::Tiled
    }

    /// Vec4 on CPU adapters (measured ~4× faster on lavapipe), Tiled elsewhere.
    pub fn for_adapter(info: &wgpu::AdapterInfo) -> Self {
        if info.device_type == wgpu::DeviceType::Cpu {
            MatmulAlgo::Vec4
        } else {
            MatmulAlgo::Tiled
        }
    }
}

/// Where a profile's compute units came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnitsFrom {
    /// Guessed from the adapter's type ([`DeviceProfile::guess_units`]).
    AdapterType,
    /// `GPU_NET_COMPUTE_UNITS`.
    Environment,
}

/// The device as the planner sees it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DeviceProfile {
    /// Compute units (streaming multiprocessors, CUs, cores) that run
    /// workgroups at the same time.
    pub compute_units: u32,
    pub units_from: UnitsFrom,
    /// A CPU adapter (lavapipe, llvmpipe, WARP): a workgroup is a thread.
    pub cpu: bool,
    /// The largest storage binding, in bytes.
    pub binding_limit: u64,
    /// Workgroups a grid may have along one dimension.
    pub max_groups_per_dim: u32,
    /// How much faster the tiled kernel's 128×128 tile runs a large product
    /// than its 64×64 tile: measured once per adapter (`tune`), else
    /// [`T128_SPEEDUP_ESTIMATE`].
    pub t128_speedup: f64,
    /// Whether the planner may fuse the last Affine into SoftmaxWithLoss
    /// (`plan::plan_head`), and its input gradient after
    /// (`plan::plan_head_grad`); `GPU_NET_FUSED_HEAD=0` says no.
    pub fused_head: bool,
    /// Whether the planner may have convolutions read im2col's matrix in
    /// place (`plan::implicit_columns`); `GPU_NET_IMPLICIT_CONV=0` says no.
    pub implicit_conv: bool,
    /// Whether the planner may gather a submission's batches at once
    /// (`plan::gather_regions`); `GPU_NET_GATHER_AHEAD=0` says no.
    pub gather_ahead: bool,
}

/// The 128×128 tile's speed over the 64×64 one that the design expects
/// (twice the multiply-adds per value staged: 0.45 of the unit's peak
/// against the 0.28 measured for 64×64 on an H200), until measured.
pub const T128_SPEEDUP_ESTIMATE: f64 = 0.45 / 0.28;

impl DeviceProfile {
    /// A discrete GPU with `units` compute units and WebGPU's default limits
    /// (binding 128 MiB, 65535 workgroups a dimension).
    pub fn discrete(units: u32) -> Self {
        DeviceProfile {
            compute_units: units.max(1),
            units_from: UnitsFrom::Environment,
            cpu: false,
            binding_limit: 128 << 20,
            max_groups_per_dim: 65535,
            t128_speedup: T128_SPEEDUP_ESTIMATE,
            fused_head: true,
            implicit_conv: true,
            gather_ahead: true,
        }
    }

    /// A CPU adapter on `cores` cores, with the same limits.
    pub fn cpu(cores: u32) -> Self {
        DeviceProfile {
            cpu: true,
            ..Self::discrete(cores)
        }
    }

    /// The profile of an opened device: units from `GPU_NET_COMPUTE_UNITS`
    /// when set, else guessed from the adapter's type.
    pub fn for_adapter(info: &wgpu::AdapterInfo, limits: &wgpu::Limits) -> Result<Self> {
        let (compute_units, units_from) = match env_setting(COMPUTE_UNITS_VAR, parse_units)? {
            Some(units) => (units, UnitsFrom::Environment),
            None => (Self::guess_units(info.device_type), UnitsFrom::AdapterType),
        };
        Ok(DeviceProfile {
            compute_units,
            units_from,
            cpu: info.device_type == wgpu::DeviceType::Cpu,
            binding_limit: limits
                .max_storage_buffer_binding_size
                .min(limits.max_buffer_size),
            max_groups_per_dim: limits.max_compute_workgroups_per_dimension,
            t128_speedup: T128_SPEEDUP_ESTIMATE,
            fused_head: env_setting(FUSED_HEAD_VAR, parse_switch)?.unwrap_or(true),
            implicit_conv: env_setting(IMPLICIT_CONV_VAR, parse_switch)?.unwrap_or(true),
            gather_ahead: env_setting(GATHER_AHEAD_VAR, parse_switch)?.unwrap_or(true),
        })
    }

    /// Compute units by adapter type: a discrete GPU has on the order of a
    /// hundred (an H200 132, an RTX 4090 128, an RX 7900 XTX 96), an
    /// integrated one a few dozen, a CPU adapter one per core. Guessing high
    /// costs a little (a product split more than it needs); guessing low
    /// leaves most of a large GPU idle.
    pub fn guess_units(device_type: wgpu::DeviceType) -> u32 {
        match device_type {
            wgpu::DeviceType::DiscreteGpu => 128,
            wgpu::DeviceType::IntegratedGpu => 24,
            wgpu::DeviceType::VirtualGpu | wgpu::DeviceType::Other => 32,
            wgpu::DeviceType::Cpu => {
                std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
            }
        }
    }

    /// One line for `devices` and `bench`: "132 compute units (GPU_NET_COMPUTE_UNITS)".
    pub fn describe(&self) -> String {
        let from = match self.units_from {
            UnitsFrom::AdapterType => {
                "guessed from the adapter's type; set GPU_NET_COMPUTE_UNITS to correct it"
            }
            UnitsFrom::Environment => COMPUTE_UNITS_VAR,
        };
        format!("{} compute units ({from})", self.compute_units)
    }
}

/// `var` parsed by `parse` when it is set and not empty; a value `parse`
/// refuses is an error naming the variable.
pub fn env_setting<T>(
    var: &'static str,
    parse: fn(&str) -> std::result::Result<T, String>,
) -> Result<Option<T>> {
    let Some(raw) = std::env::var_os(var) else {
        return Ok(None);
    };
    let text = raw.to_string_lossy();
    if text.trim().is_empty() {
        return Ok(None);
    }
    parse(&text).map(Some).map_err(|why| GpuError::BadEnv {
        var,
        value: text.into_owned(),
        why,
    })
}

/// Parses a count of compute units.
pub fn parse_units(text: &str) -> std::result::Result<u32, String> {
    match text.trim().parse::<u32>() {
        Ok(n) if (1..=65536).contains(&n) => Ok(n),
        _ => Err("expected the GPU's compute units, a whole number from 1 to 65536 (132 for an NVIDIA H200)".into()),
    }
}

/// Parses an on/off switch: 1 or 0.
pub fn parse_switch(text: &str) -> std::result::Result<bool, String> {
    match text.trim() {
        "1" => Ok(true),
        "0" => Ok(false),
        _ => Err("expected 1 (on) or 0 (off)".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn switches_are_one_or_zero() {
        assert_eq!(parse_switch(" 0 "), Ok(false));
        assert_eq!(parse_switch("1"), Ok(true));
        for bad in ["", "yes", "2", "on"] {
            assert!(parse_switch(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn units_parse_within_range_only() {
        assert_eq!(parse_units(" 132 "), Ok(132));
        for bad in ["0", "-1", "1.5", "many", "65537"] {
            assert!(parse_units(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_discrete_gpu_is_guessed_large_and_a_cpu_by_its_cores() {
        assert!(DeviceProfile::guess_units(wgpu::DeviceType::DiscreteGpu) >= 96);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
        assert_eq!(DeviceProfile::guess_units(wgpu::DeviceType::Cpu), cores);
    }
}
