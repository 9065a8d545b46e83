//! Every error the GPU path reports, and its `Result`. The bottom of
//! `src/gpu`: this file imports nothing from the crate.

#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    #[error(
        "no GPU adapter found{0}. Install a Vulkan, Metal, DX12 or GL driver; on headless Linux `apt-get install mesa-vulkan-drivers libvulkan1` gives lavapipe, a software Vulkan GPU"
    )]
    NoAdapter(String),
    /// The backends were chosen (`--backend`, `WGPU_BACKEND`) and have no
    /// adapter: an error even for `--device auto`, which would otherwise
    /// train on the CPU where the user asked for a GPU.
    #[error("no GPU adapter on {by}; {hint} (`gpu-net devices` lists the adapters there are)")]
    NoAdapterOn { by: String, hint: &'static str },
    #[error(
        "--adapter {index}: there {}{on}, numbered from 0 (see `gpu-net devices`, with the same --backend)",
        if *count == 1 { "is 1 adapter".to_string() } else { format!("are {count} adapters") }
    )]
    AdapterIndex {
        index: usize,
        count: usize,
        on: String,
    },
    #[error("WGPU_ADAPTER_NAME={name}: no adapter{on} has a name containing it; {among}")]
    AdapterName {
        name: String,
        among: String,
        on: String,
    },
    /// A wgpu environment variable with a value it cannot mean.
    #[error("{var}={value:?}: {why}")]
    BadEnv {
        var: &'static str,
        value: String,
        why: String,
    },
    #[error("could not open the device on {adapter}: {source}{hint}")]
    RequestDevice {
        adapter: String,
        source: wgpu::RequestDeviceError,
        /// What to try instead, or empty.
        hint: &'static str,
    },
    #[error(
        "the device cannot hold this configuration: {what} needs {need} {unit} but the device allows {have}"
    )]
    TooLarge {
        what: String,
        need: u64,
        have: u64,
        unit: &'static str,
    },
    #[error("GPU error: {0}")]
    Wgpu(String),
    #[error("unsupported matmul shape: {0}")]
    Shape(String),
    #[error("GPU device lost: {0}")]
    DeviceLost(String),
    #[error("reading back {what} from the GPU failed: {why}")]
    Map { what: String, why: String },
    /// A list of layers the GPU does not run (`stages::StageError`'s message).
    #[error("{0}")]
    Layers(String),
}

/// An environment variable that cannot mean anything.
impl crate::core::error::LayerError for GpuError {
    fn is_usage(&self) -> bool {
        matches!(self, GpuError::BadEnv { .. } | GpuError::Layers(_))
    }
}

pub type Result<T> = std::result::Result<T, GpuError>;
