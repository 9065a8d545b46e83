//! One type per WGSL entry point. Each owns its shader module and pipeline(s)
//! and turns buffers plus a shape into a [`Dispatch`]: a bind group, its
//! uniform and a workgroup count, made once and recorded as often as needed.

pub mod batchnorm;
pub mod dropout;
pub mod gather;
pub mod matmul;
pub mod optimizer;
pub mod softmax_loss;

use std::num::NonZeroU64;

use super::context::{GpuContext, GpuError, Result};

pub use batchnorm::{BatchNorm, BnShape};
pub use dropout::DropoutKernel;
pub use gather::Gather;
pub use matmul::{
    Epilogue, Matmul, MatmulAlgo, MatmulCall, MatmulPlan, MatmulShape, MatmulVariant, SplitK,
};
pub use optimizer::OptimizerKernel;
pub use softmax_loss::{SoftmaxWithLoss, Stats};

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

/// One recorded-once dispatch of a kernel.
pub struct Dispatch {
    pub label: String,
    pipeline: wgpu::ComputePipeline,
    bind_group: wgpu::BindGroup,
    pub groups: [u32; 3],
    /// The dispatch's own uniform (its dimensions), kept so it can be rewritten.
    pub uniform: wgpu::Buffer,
    /// A second dispatch that completes this one's work, recorded right
    /// after it (a split-K product's reduction).
    pub then: Option<Box<Dispatch>>,
    /// Copies recorded before the compute pass this dispatch runs in.
    pub copies: Vec<TextureCopy>,
}

impl Dispatch {
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

#[derive(Clone, Copy)]
enum Binding {
    Uniform,
    Read,
    ReadWrite,
    /// A 2D f32 texture read with textureLoad.
    Texture,
}

fn bind_group_layout(ctx: &GpuContext, label: &str, kinds: &[Binding]) -> wgpu::BindGroupLayout {
    let entries: Vec<_> = kinds
        .iter()
        .enumerate()
        .map(|(i, kind)| wgpu::BindGroupLayoutEntry {
            binding: i as u32,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: match kind {
                Binding::Uniform => wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Uniform,
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                Binding::Read | Binding::ReadWrite => wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Storage {
                        read_only: matches!(kind, Binding::Read),
                    },
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                Binding::Texture => wgpu::BindingType::Texture {
                    sample_type: wgpu::TextureSampleType::Float { filterable: false },
                    view_dimension: wgpu::TextureViewDimension::D2,
                    multisampled: false,
                },
            },
            count: None,
        })
        .collect();
    ctx.device
        .create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some(label),
            entries: &entries,
        })
}

fn pipeline(
    ctx: &GpuContext,
    label: &str,
    layout: &wgpu::BindGroupLayout,
    source: &str,
    constants: &[(&str, f64)],
) -> wgpu::ComputePipeline {
    pipeline_at(ctx, label, layout, source, "main", constants)
}

/// [`pipeline`] for a module's entry point `entry`.
fn pipeline_at(
    ctx: &GpuContext,
    label: &str,
    layout: &wgpu::BindGroupLayout,
    source: &str,
    entry: &str,
    constants: &[(&str, f64)],
) -> wgpu::ComputePipeline {
    let module = ctx
        .device
        .create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(label),
            source: wgpu::ShaderSource::Wgsl(source.into()),
        });
    let pipeline_layout = ctx
        .device
        .create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(label),
            bind_group_layouts: &[Some(layout)],
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

/// Makes the bind group and the dispatch, refusing grids the device cannot run.
fn dispatch<T: bytemuck::Pod>(
    ctx: &GpuContext,
    label: String,
    pipeline: &wgpu::ComputePipeline,
    layout: &wgpu::BindGroupLayout,
    dims: &T,
    slices: &[Slice<'_>],
    groups: [u32; 3],
) -> Result<Dispatch> {
    let bound: Vec<Bound> = slices.iter().map(|&s| Bound::Buffer(s)).collect();
    dispatch_bound(ctx, label, pipeline, layout, dims, &bound, groups)
}

/// [`dispatch`] with bindings 1.. bound to buffers or textures.
fn dispatch_bound<T: bytemuck::Pod>(
    ctx: &GpuContext,
    label: String,
    pipeline: &wgpu::ComputePipeline,
    layout: &wgpu::BindGroupLayout,
    dims: &T,
    bound: &[Bound<'_>],
    groups: [u32; 3],
) -> Result<Dispatch> {
    let max = ctx.limits.max_compute_workgroups_per_dimension;
    if let Some(&g) = groups.iter().find(|&&g| g > max) {
        return Err(GpuError::TooLarge {
            what: format!("the workgroup grid of {label}"),
            need: g as u64,
            have: max as u64,
            unit: "workgroups in one dimension",
        });
    }
    for b in bound {
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
        layout,
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
