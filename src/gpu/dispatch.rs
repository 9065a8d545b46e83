//! What every kernel uses to become a dispatch: buffer ranges ([`Slice`]),
//! bind group layouts and pipelines, the recorded-once [`Dispatch`], and
//! recording and submitting dispatches ([`record_all`], `GpuContext::run`);
//! and the Rust side of the structs the kernels share with WGSL
//! ([`wgsl_struct!`], [`WgslStruct`]). Sits above `context` (whose device it
//! uses) and below `kernels`: imports only `context` and `error`.

use std::num::NonZeroU64;

use super::context::GpuContext;
use super::error::{GpuError, Result};

/// A struct laid out as a WGSL struct: its size and each field's name,
/// byte offset and type, as Rust lays it out (`tests/contracts.rs` holds
/// them equal to the WGSL struct's, as naga lays that out).
#[derive(Clone, Copy, Debug)]
pub struct StructLayout {
    pub name: &'static str,
    pub size: usize,
    pub fields: &'static [Field],
}

/// One field of a [`StructLayout`]: its type as written in Rust (`u32`, `f32`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    pub name: &'static str,
    pub offset: usize,
    pub ty: &'static str,
}

/// A `#[repr(C)]` struct declared with [`wgsl_struct!`].
pub trait WgslStruct: bytemuck::Pod {
    const LAYOUT: StructLayout;
}

/// Declares a `#[repr(C)]`, `Pod` struct mirroring a WGSL struct, and its
/// [`WgslStruct`] layout: the field list is written once, and the table of
/// names and offsets is made from it with `offset_of!`.
macro_rules! wgsl_struct {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $($(#[$fmeta:meta])* $fvis:vis $field:ident : $ty:ty),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[repr(C)]
        #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
        $vis struct $name {
            $($(#[$fmeta])* $fvis $field: $ty),*
        }

        impl $crate::gpu::dispatch::WgslStruct for $name {
            const LAYOUT: $crate::gpu::dispatch::StructLayout =
                $crate::gpu::dispatch::StructLayout {
                    name: stringify!($name),
                    size: ::std::mem::size_of::<$name>(),
                    fields: &[$($crate::gpu::dispatch::Field {
                        name: stringify!($field),
                        offset: ::std::mem::offset_of!($name, $field),
                        ty: stringify!($ty),
                    }),*],
                };
        }
    };
}
pub(crate) use wgsl_struct;

/// A range of a buffer, counted in 4-byte elements.
#[derive(Clone, Copy)]
pub struct Slice<'a> {
    pub buffer: &'a wgpu::Buffer,
    pub offset: u64,
    pub len: u64,
}

impl<'a> Slice<'a> {
    pub fn whole(buffer: &'a wgpu::Buffer) -> Self {
        Slice {
            buffer,
            offset: 0,
            len: buffer.size() / 4,
        }
    }
    pub fn new(buffer: &'a wgpu::Buffer, offset: usize, len: usize) -> Self {
        Slice {
            buffer,
            offset: offset as u64,
            len: len.max(1) as u64,
        }
    }
    fn resource(&self) -> wgpu::BindingResource<'a> {
        wgpu::BindingResource::Buffer(wgpu::BufferBinding {
            buffer: self.buffer,
            offset: self.offset * 4,
            size: NonZeroU64::new(self.len * 4),
        })
    }
}

/// What a binding of a dispatch is bound to.
#[derive(Clone, Copy)]
pub enum Bound<'a> {
    Buffer(Slice<'a>),
    Texture(&'a wgpu::TextureView),
}

/// A copy of the first `texels` vec4s of `buffer` from byte `offset` into
/// `texture`, row after row (the vec4 matmul's staged operands).
pub struct TextureCopy {
    pub buffer: wgpu::Buffer,
    pub offset: u64,
    pub texels: u64,
    pub texture: wgpu::Texture,
}

impl TextureCopy {
    /// Whole rows in one copy, then the last part row in a second (a
    /// buffer's rows are then 4096 texels, 64 KiB, a multiple of the 256
    /// bytes a copy's rows must be).
    fn record(&self, enc: &mut wgpu::CommandEncoder) {
        let width = self.texture.width() as u64;
        let (rows, rest) = (self.texels / width, self.texels % width);
        let mut copy = |row: u64, offset: u64, extent: (u64, u64)| {
            enc.copy_buffer_to_texture(
                wgpu::TexelCopyBufferInfo {
                    buffer: &self.buffer,
                    layout: wgpu::TexelCopyBufferLayout {
                        offset,
                        bytes_per_row: Some(width as u32 * 16),
                        rows_per_image: None,
                    },
                },
                wgpu::TexelCopyTextureInfo {
                    texture: &self.texture,
                    mip_level: 0,
                    origin: wgpu::Origin3d {
                        x: 0,
                        y: row as u32,
                        z: 0,
                    },
                    aspect: wgpu::TextureAspect::All,
                },
                wgpu::Extent3d {
                    width: extent.0 as u32,
                    height: extent.1 as u32,
                    depth_or_array_layers: 1,
                },
            )
        };
        if rows > 0 {
            copy(0, self.offset, (width, rows));
        }
        if rest > 0 {
            copy(rows, self.offset + rows * width * 16, (rest, 1));
        }
    }
}

/// One recorded-once dispatch of a kernel. Its uniform can be rewritten
/// only through the wrappers of the kernels whose uniforms change per step
/// (`MatmulDispatch::set_lr`, `OptimizerDispatch::set_step_lr`,
/// `DropoutDispatch::set_key`).
pub struct Dispatch {
    pub label: String,
    pipeline: wgpu::ComputePipeline,
    bind_group: wgpu::BindGroup,
    pub groups: [u32; 3],
    /// The dispatch's own uniform (its dimensions).
    uniform: wgpu::Buffer,
    /// A second dispatch that completes this one's work, recorded right
    /// after it (a split-K product's reduction, the sums of a softmax
    /// spread over several workgroups).
    pub then: Option<Box<Dispatch>>,
    /// Copies recorded before the compute pass this dispatch runs in.
    pub copies: Vec<TextureCopy>,
}

impl AsRef<Dispatch> for Dispatch {
    fn as_ref(&self) -> &Dispatch {
        self
    }
}

impl Dispatch {
    /// Writes `value` at byte `offset` of the uniform: for the wrappers
    /// that name a field of it (its offset taken with `offset_of!`).
    pub(crate) fn write_uniform<T: bytemuck::Pod>(
        &self,
        ctx: &GpuContext,
        offset: usize,
        value: &T,
    ) {
        ctx.queue
            .write_buffer(&self.uniform, offset as u64, bytemuck::bytes_of(value));
    }

    /// Records this dispatch's copies (outside any compute pass).
    pub fn record_copies(&self, enc: &mut wgpu::CommandEncoder) {
        for c in &self.copies {
            c.record(enc);
        }
    }

    pub fn record(&self, pass: &mut wgpu::ComputePass<'_>) {
        pass.insert_debug_marker(&self.label);
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, &self.bind_group, &[]);
        pass.dispatch_workgroups(self.groups[0], self.groups[1], self.groups[2]);
        if let Some(then) = &self.then {
            then.record(pass);
        }
    }

    /// How many slices K is split into: a split-K product's first pass has
    /// one workgroup layer per slice and its reduction as `then`; 1 otherwise.
    pub fn split_k(&self) -> u32 {
        if self.then.is_some() {
            self.groups[2]
        } else {
            1
        }
    }

    /// Workgroups of this dispatch and any that completes it.
    pub fn workgroups(&self) -> u64 {
        self.groups.iter().map(|&g| g as u64).product::<u64>()
            + self.then.as_ref().map_or(0, |t| t.workgroups())
    }
}

/// Records `dispatches` in order into as few compute passes as their copies
/// allow: a dispatch with copies starts a new pass after them.
pub fn record_all<'a>(
    enc: &mut wgpu::CommandEncoder,
    label: &str,
    dispatches: impl IntoIterator<Item = &'a Dispatch>,
) {
    let list: Vec<&Dispatch> = dispatches.into_iter().collect();
    let mut start = 0;
    while start < list.len() {
        let end = list[start + 1..]
            .iter()
            .position(|d| !d.copies.is_empty())
            .map_or(list.len(), |i| start + 1 + i);
        list[start].record_copies(enc);
        let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some(label),
            timestamp_writes: None,
        });
        for d in &list[start..end] {
            d.record(&mut pass);
        }
        start = end;
    }
}

/// How a binding after the uniform is declared in WGSL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// `var<storage, read>`
    Read,
    /// `var<storage, read_write>`
    ReadWrite,
    /// `texture_2d<f32>`, read with textureLoad.
    Texture,
}

/// One binding after the uniform: the name of its WGSL variable and how
/// that is declared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    pub name: &'static str,
    pub access: Access,
}

/// What a kernel binds after its uniform, by name: a struct declared with
/// [`kernel_bindings!`], whose fields are the shader's variables at
/// `@binding(1)`, `@binding(2)`, … in the order written.
pub trait Bindings<'a> {
    const SLOTS: &'static [Slot];
    /// The fields, in [`Bindings::SLOTS`]' order.
    fn bound(&self) -> Vec<Bound<'a>>;
}

/// The type a binding of `access` is bound to: a buffer range, or a texture.
macro_rules! slot_type {
    (Read) => { $crate::gpu::dispatch::Slice<'a> };
    (ReadWrite) => { $crate::gpu::dispatch::Slice<'a> };
    (Texture) => { &'a wgpu::TextureView };
}
pub(crate) use slot_type;

/// Declares a kernel's bindings once: a struct with one field per binding
/// after the uniform, named as the shader names the variable, with its
/// [`Access`]. The bind group layout and the bind group are both made from
/// it (`tests/contracts.rs` holds names, numbers and access to naga's
/// reading of the shaders).
macro_rules! kernel_bindings {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident<'a> {
            $($(#[$fmeta:meta])* $field:ident : $access:ident),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy)]
        $vis struct $name<'a> {
            $($(#[$fmeta])* pub $field: $crate::gpu::dispatch::slot_type!($access)),*
        }

        impl<'a> $crate::gpu::dispatch::Bindings<'a> for $name<'a> {
            const SLOTS: &'static [$crate::gpu::dispatch::Slot] = &[$(
                $crate::gpu::dispatch::Slot {
                    name: stringify!($field),
                    access: $crate::gpu::dispatch::Access::$access,
                }
            ),*];
            fn bound(&self) -> Vec<$crate::gpu::dispatch::Bound<'a>> {
                vec![$($crate::gpu::dispatch::Bound::from(self.$field)),*]
            }
        }
    };
}
pub(crate) use kernel_bindings;

impl<'a> From<Slice<'a>> for Bound<'a> {
    fn from(s: Slice<'a>) -> Self {
        Bound::Buffer(s)
    }
}

impl<'a> From<&'a wgpu::TextureView> for Bound<'a> {
    fn from(v: &'a wgpu::TextureView) -> Self {
        Bound::Texture(v)
    }
}

/// A bind group layout made from a kernel's declared bindings, keeping them
/// so that [`dispatch`] binds only what the layout was made for.
pub struct KernelLayout {
    layout: wgpu::BindGroupLayout,
    slots: &'static [Slot],
}

/// The layout of a kernel whose uniform is `U` and whose other bindings are `B`.
pub(crate) fn kernel_layout<'a, B: Bindings<'a>, U: WgslStruct>(
    ctx: &GpuContext,
    label: &str,
) -> KernelLayout {
    let mut entries = vec![uniform_layout_entry::<U>(0)];
    entries.extend(
        B::SLOTS
            .iter()
            .enumerate()
            .map(|(i, s)| layout_entry(i as u32 + 1, s.access)),
    );
    let layout = ctx
        .device
        .create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some(label),
            entries: &entries,
        });
    KernelLayout {
        layout,
        slots: B::SLOTS,
    }
}

/// The layout entry of a uniform `T` at `binding`, as every kernel's layout
/// has it: sized, so a smaller buffer is refused when a bind group is made.
pub fn uniform_layout_entry<T: WgslStruct>(binding: u32) -> wgpu::BindGroupLayoutEntry {
    let size = NonZeroU64::new(T::LAYOUT.size as u64).expect("a uniform has fields");
    entry(
        binding,
        wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Uniform,
            has_dynamic_offset: false,
            min_binding_size: Some(size),
        },
    )
}

fn layout_entry(binding: u32, access: Access) -> wgpu::BindGroupLayoutEntry {
    let ty = match access {
        Access::Read | Access::ReadWrite => wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Storage {
                read_only: access == Access::Read,
            },
            has_dynamic_offset: false,
            // Storage bindings stay unsized: one layout serves every
            // shape (a batch of 2 or of 8192, any layer's width), and the
            // shaders index runtime-sized arrays, so there is no one size
            // to give. `GpuContext::check_binding` refuses a binding the
            // device cannot hold instead.
            min_binding_size: None,
        },
        Access::Texture => wgpu::BindingType::Texture {
            sample_type: wgpu::TextureSampleType::Float { filterable: false },
            view_dimension: wgpu::TextureViewDimension::D2,
            multisampled: false,
        },
    };
    entry(binding, ty)
}

fn entry(binding: u32, ty: wgpu::BindingType) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty,
        count: None,
    }
}

/// A module as the program compiles it: a family's shared file first, then
/// the kernel's, then its variant's (`shaders/matmul.wgsl`,
/// `shaders/matmul/tiled.wgsl`, `shaders/matmul/tiled/tile64.wgsl`), one
/// line apart. `tests/translate.rs` composes every leaf of `shaders/` so.
pub(crate) fn compose(parts: &[&str]) -> String {
    parts.join("\n")
}

pub(crate) fn pipeline(
    ctx: &GpuContext,
    label: &str,
    layout: &KernelLayout,
    source: &str,
    constants: &[(&str, f64)],
) -> wgpu::ComputePipeline {
    pipeline_at(ctx, label, layout, source, "main", constants, Checks::On)
}

/// Whether a module keeps the runtime's checks (bounds on every index,
/// loops that must end).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Checks {
    On,
    /// For a kernel that guards every index itself, whose caller checks
    /// every binding's length, and whose guards a test proves with poison
    /// around its operands (the tiled matmul).
    Off,
}

/// [`pipeline`] for a module's entry point `entry`.
pub(crate) fn pipeline_at(
    ctx: &GpuContext,
    label: &str,
    layout: &KernelLayout,
    source: &str,
    entry: &str,
    constants: &[(&str, f64)],
    checks: Checks,
) -> wgpu::ComputePipeline {
    let desc = wgpu::ShaderModuleDescriptor {
        label: Some(label),
        source: wgpu::ShaderSource::Wgsl(source.into()),
    };
    let module = match checks {
        Checks::On => ctx.device.create_shader_module(desc),
        // SAFETY: `Checks::Off` is given only for a kernel that guards
        // every buffer index against the lengths its caller has checked
        // against the bindings (see `Checks::Off`).
        Checks::Off => unsafe {
            ctx.device
                .create_shader_module_trusted(desc, wgpu::ShaderRuntimeChecks::unchecked())
        },
    };
    let pipeline_layout = ctx
        .device
        .create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(label),
            bind_group_layouts: &[Some(&layout.layout)],
            immediate_size: 0,
        });
    ctx.device
        .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(label),
            layout: Some(&pipeline_layout),
            module: &module,
            entry_point: Some(entry),
            compilation_options: wgpu::PipelineCompilationOptions {
                constants,
                zero_initialize_workgroup_memory: false,
            },
            cache: None,
        })
}

/// Makes the bind group and the dispatch, refusing grids the device cannot
/// run: `dims` at binding 0, then `bound`'s fields at the bindings their
/// declaration gives them. `layout` must have been made for `B`.
pub(crate) fn dispatch<'a, T: WgslStruct, B: Bindings<'a>>(
    ctx: &GpuContext,
    label: String,
    pipeline: &wgpu::ComputePipeline,
    layout: &KernelLayout,
    dims: &T,
    bound: &B,
    groups: [u32; 3],
) -> Result<Dispatch> {
    // A programming error, not an input's: a kernel binding another
    // kernel's buffers to its layout.
    assert_eq!(
        layout.slots,
        B::SLOTS,
        "{label}: bound to another kernel's layout"
    );
    let bound = bound.bound();
    let max = ctx.limits.max_compute_workgroups_per_dimension;
    if let Some(&g) = groups.iter().find(|&&g| g > max) {
        return Err(GpuError::TooLarge {
            what: format!("the workgroup grid of {label}"),
            need: g as u64,
            have: max as u64,
            unit: "workgroups in one dimension",
        });
    }
    for b in &bound {
        if let Bound::Buffer(s) = b {
            ctx.check_binding(&label, s.len * 4)?;
        }
    }
    let uniform = ctx.uniform(&label, dims);
    let mut entries = vec![wgpu::BindGroupEntry {
        binding: 0,
        resource: uniform.as_entire_binding(),
    }];
    entries.extend(bound.iter().enumerate().map(|(i, b)| wgpu::BindGroupEntry {
        binding: i as u32 + 1,
        resource: match b {
            Bound::Buffer(s) => s.resource(),
            Bound::Texture(view) => wgpu::BindingResource::TextureView(view),
        },
    }));
    let bind_group = ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some(&label),
        layout: &layout.layout,
        entries: &entries,
    });
    Ok(Dispatch {
        label,
        pipeline: pipeline.clone(),
        bind_group,
        groups,
        uniform,
        then: None,
        copies: vec![],
    })
}

// Defined here rather than in context.rs: recording belongs to this level,
// and the context must not import what is built on it.
impl GpuContext {
    /// Records `dispatches` (in one compute pass, or one per dispatch with
    /// copies before it: see [`record_all`]), submits, and waits.
    pub fn run<D: AsRef<Dispatch>>(&self, dispatches: &[D]) -> Result<()> {
        let mut enc = self.device.create_command_encoder(&Default::default());
        record_all(&mut enc, "run", dispatches.iter().map(|d| d.as_ref()));
        self.queue.submit([enc.finish()]);
        self.wait()
    }
}

/// A struct the host writes and a shader reads: its Rust layout, the name
/// of the WGSL struct it mirrors, and every module declaring that struct,
/// as (what, WGSL source as the program compiles it).
pub struct StructContract {
    pub layout: StructLayout,
    pub wgsl_name: &'static str,
    /// The group 0 binding it is a uniform at (`None`: a storage struct).
    pub uniform_at: Option<u32>,
    pub modules: Vec<(&'static str, String)>,
}

/// The contract of a kernel's uniform `T`, bound at binding 0 of `modules`
/// as the WGSL struct `Dims`.
pub(crate) fn uniform_dims<T: WgslStruct>(modules: Vec<(&'static str, String)>) -> StructContract {
    StructContract {
        layout: T::LAYOUT,
        wgsl_name: "Dims",
        uniform_at: Some(0),
        modules,
    }
}

/// A kernel's declared bindings and every module compiled against them,
/// as (what, WGSL source as the program compiles it): `tests/contracts.rs`
/// holds each module's `@binding(1..)` to the names and access declared.
pub struct BindingContract {
    pub kernel: &'static str,
    pub slots: &'static [Slot],
    pub modules: Vec<(&'static str, String)>,
}

/// The [`BindingContract`] of bindings `B` in `modules`.
pub(crate) fn binding_contract<'a, B: Bindings<'a>>(
    kernel: &'static str,
    modules: Vec<(&'static str, String)>,
) -> BindingContract {
    BindingContract {
        kernel,
        slots: B::SLOTS,
        modules,
    }
}
