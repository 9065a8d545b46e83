//! The opened device and what every kernel needs of it: buffers, textures,
//! waiting, read-back, and turning wgpu's errors into `GpuError`s instead of
//! its default panic. (Recording and submitting dispatches is in
//! `dispatch.rs`, one level up.) Imports only `error`, `adapter` and
//! `profile`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use wgpu::util::DeviceExt;

pub use super::adapter::{describe, list_adapters};
pub use super::error::{GpuError, Result};
pub use super::profile::{DeviceProfile, GpuOptions, MatmulAlgo};

/// What to try when a device will not open: on a hardware GPU through GL,
/// its Vulkan adapter (NVIDIA's driver without a display has lost the GL
/// device as it opened, where Vulkan on the same card worked).
fn open_hint(info: &wgpu::AdapterInfo) -> &'static str {
    if info.backend == wgpu::Backend::Gl && info.device_type != wgpu::DeviceType::Cpu {
        "; GL without a display fails on some drivers: try `--backend vulkan` (`gpu-net devices` lists the adapters)"
    } else {
        ""
    }
}

/// The device, its queue, and what we know of the adapter behind them.
pub struct GpuContext {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    pub limits: wgpu::Limits,
    pub timestamps: bool,
    /// The matmul implementation the network's kernels use.
    pub matmul_algo: MatmulAlgo,
    /// What the dispatch planner knows of the device (`plan`).
    pub profile: DeviceProfile,
    errors: Arc<Mutex<Vec<String>>>,
    lost: Arc<Mutex<Option<String>>>,
    /// Bytes of every buffer made through this context (never decreases).
    allocated: AtomicU64,
}

impl GpuContext {
    /// Opens the adapter `opts` and the environment ask for (see
    /// [`super::adapter::select`]), with the adapter's own limits so large
    /// batches fit.
    pub fn new(opts: &GpuOptions) -> Result<Self> {
        let adapter = super::adapter::select(opts.backend, opts.adapter)?;
        let mut ctx = Self::from_adapter(&adapter)?;
        if let Some(algo) = opts.matmul {
            ctx.matmul_algo = algo;
        }
        Ok(ctx)
    }

    pub fn from_adapter(adapter: &wgpu::Adapter) -> Result<Self> {
        let info = adapter.get_info();
        let timestamps = adapter.features().contains(wgpu::Features::TIMESTAMP_QUERY);
        let required_features = if timestamps {
            wgpu::Features::TIMESTAMP_QUERY
        } else {
            wgpu::Features::empty()
        };
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("gpu-net"),
            required_features,
            required_limits: adapter.limits(),
            ..Default::default()
        }))
        .map_err(|source| GpuError::RequestDevice {
            adapter: describe(&info),
            source,
            hint: open_hint(&info),
        })?;
        let errors = Arc::new(Mutex::new(Vec::new()));
        let sink = errors.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            sink.lock().unwrap().push(e.to_string());
        }));
        let lost = Arc::new(Mutex::new(None));
        let lost_sink = lost.clone();
        device.set_device_lost_callback(move |reason, msg| {
            *lost_sink.lock().unwrap() = Some(format!("{reason:?}: {msg}"));
        });
        let limits = device.limits();
        let matmul_algo = MatmulAlgo::for_adapter(&info);
        let profile = DeviceProfile::for_adapter(&info, &limits)?;
        Ok(GpuContext {
            device,
            queue,
            info,
            limits,
            timestamps,
            matmul_algo,
            profile,
            errors,
            lost,
            allocated: AtomicU64::new(0),
        })
    }

    pub fn describe(&self) -> String {
        describe(&self.info)
    }

    /// A software adapter (lavapipe, llvmpipe, WARP): the shaders run on
    /// the CPU's cores.
    pub fn is_software(&self) -> bool {
        self.info.device_type == wgpu::DeviceType::Cpu
    }

    /// The first error wgpu reported since the last check, if any.
    pub fn check(&self) -> Result<()> {
        if let Some(msg) = self.lost.lock().unwrap().clone() {
            return Err(GpuError::DeviceLost(msg));
        }
        let mut errors = self.errors.lock().unwrap();
        if errors.is_empty() {
            Ok(())
        } else {
            let all = errors.drain(..).collect::<Vec<_>>().join("\n");
            Err(GpuError::Wgpu(all))
        }
    }

    /// The largest storage binding (and buffer) the device allows, in bytes.
    pub fn binding_limit(&self) -> u64 {
        self.profile.binding_limit
    }

    /// Checks that a storage binding of `bytes` fits the device.
    pub fn check_binding(&self, what: &str, bytes: u64) -> Result<()> {
        let have = self.binding_limit();
        if bytes > have {
            return Err(GpuError::TooLarge {
                what: what.to_string(),
                need: bytes,
                have,
                unit: "bytes",
            });
        }
        Ok(())
    }

    /// Bytes allocated so far through this context.
    pub fn allocated(&self) -> u64 {
        self.allocated.load(Ordering::Relaxed)
    }

    fn count(&self, buffer: wgpu::Buffer) -> wgpu::Buffer {
        self.allocated.fetch_add(buffer.size(), Ordering::Relaxed);
        buffer
    }

    pub fn storage(&self, label: &str, bytes: u64) -> wgpu::Buffer {
        self.count(self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes.max(16).next_multiple_of(4),
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        }))
    }

    /// An rgba32float texture of `width` × `height` texels that buffers are
    /// copied into and shaders read (counted in [`GpuContext::allocated`]).
    pub fn texture(&self, label: &str, width: u32, height: u32) -> wgpu::Texture {
        let texture = self.device.create_texture(&wgpu::TextureDescriptor {
            label: Some(label),
            size: wgpu::Extent3d {
                width,
                height,
                depth_or_array_layers: 1,
            },
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format: wgpu::TextureFormat::Rgba32Float,
            usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
            view_formats: &[],
        });
        self.allocated
            .fetch_add(width as u64 * height as u64 * 16, Ordering::Relaxed);
        texture
    }

    pub fn storage_init<T: bytemuck::Pod>(&self, label: &str, data: &[T]) -> wgpu::Buffer {
        let bytes: &[u8] = bytemuck::cast_slice(data);
        let mut padded = bytes.to_vec();
        padded.resize(bytes.len().max(16).next_multiple_of(4), 0);
        self.count(
            self.device
                .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: Some(label),
                    contents: &padded,
                    usage: wgpu::BufferUsages::STORAGE
                        | wgpu::BufferUsages::COPY_SRC
                        | wgpu::BufferUsages::COPY_DST,
                }),
        )
    }

    pub fn uniform<T: bytemuck::Pod>(&self, label: &str, value: &T) -> wgpu::Buffer {
        self.count(
            self.device
                .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: Some(label),
                    contents: bytemuck::bytes_of(value),
                    usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                }),
        )
    }

    /// Blocks until the queue is idle, then reports any error.
    pub fn wait(&self) -> Result<()> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| GpuError::Wgpu(e.to_string()))?;
        self.check()
    }

    /// Copies `bytes` bytes at `offset` of `buffer` back to the host.
    pub fn read_bytes(
        &self,
        buffer: &wgpu::Buffer,
        offset: u64,
        bytes: u64,
        what: &str,
    ) -> Result<Vec<u8>> {
        let size = bytes.next_multiple_of(4).max(4);
        let staging = self.read_back_buffer("read-back staging", size);
        let mut enc = self.device.create_command_encoder(&Default::default());
        enc.copy_buffer_to_buffer(buffer, offset, &staging, 0, size);
        self.queue.submit([enc.finish()]);
        self.read_staged(&staging, bytes, what)
    }

    /// A buffer the host maps to read what copies put in it (kept by a
    /// caller that reads back every call, so that nothing is made per call).
    pub fn read_back_buffer(&self, label: &str, bytes: u64) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes.next_multiple_of(4).max(4),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }

    /// The first `bytes` of a [`GpuContext::read_back_buffer`], once the
    /// work submitted so far (which copies into it) has run: one map, one
    /// wait.
    pub fn read_staged(&self, staging: &wgpu::Buffer, bytes: u64, what: &str) -> Result<Vec<u8>> {
        let range = 0..bytes.next_multiple_of(4).max(4);
        let (tx, rx) = std::sync::mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, range.clone(), move |r| {
            let _ = tx.send(r);
        });
        self.wait()?;
        let map_err = |why: String| GpuError::Map {
            what: what.to_string(),
            why,
        };
        rx.recv()
            .map_err(|_| map_err("the map callback never ran".into()))?
            .map_err(|e| map_err(e.to_string()))?;
        let data = staging
            .get_mapped_range(range)
            .map_err(|e| map_err(e.to_string()))?[..bytes as usize]
            .to_vec();
        staging.unmap();
        Ok(data)
    }

    pub fn read_f32(
        &self,
        buffer: &wgpu::Buffer,
        offset_elems: usize,
        len: usize,
        what: &str,
    ) -> Result<Vec<f32>> {
        let bytes = self.read_bytes(buffer, offset_elems as u64 * 4, len as u64 * 4, what)?;
        // pod_collect_to_vec: a Vec<u8> promises no 4-byte alignment.
        Ok(bytemuck::pod_collect_to_vec(&bytes))
    }
}
