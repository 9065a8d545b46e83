//! naga's writers, set up as wgpu-hal sets them up for each backend: the
//! same bounds-check policy, no zeroing of workgroup memory (our pipelines
//! ask for none), and a binding map built from the shader's own bindings as
//! wgpu builds one from the pipeline layout, with missing bindings an error
//! rather than faked.

use naga::back::{glsl, hlsl, msl, spv};
use naga::proc::{BoundsCheckPolicies, BoundsCheckPolicy};
use naga::valid::ModuleInfo;
use naga::{Module, ResourceBinding, ShaderStage};

/// One backend's shading language at one version.
#[derive(Clone, Copy, Debug)]
pub enum Target {
    /// Vulkan: SPIR-V 1.0 (Vulkan 1.0) and 1.6 (Vulkan 1.3, lavapipe's),
    /// the oldest and newest wgpu writes.
    Spirv(u8, u8),
    /// Metal: wgpu writes the newest MSL the OS has; 1.2 (macOS 10.12) and
    /// 3.0 (macOS 13) span what a Mac in use has.
    Msl(u8, u8),
    /// DX12: shader model 5.1 (FXC) and 6.0 (DXC).
    Hlsl(hlsl::ShaderModel),
    /// GL ES 3.1, the first with compute shaders (phones, ANGLE).
    GlslEs310,
}

pub const ALL: [Target; 7] = [
    Target::Spirv(1, 0),
    Target::Spirv(1, 6),
    Target::Msl(1, 2),
    Target::Msl(3, 0),
    Target::Hlsl(hlsl::ShaderModel::V5_1),
    Target::Hlsl(hlsl::ShaderModel::V6_0),
    Target::GlslEs310,
];

impl Target {
    /// For file names and messages: "spv1.0", "msl2.0", "hlsl5_1", "glsl-es310".
    pub fn name(self) -> String {
        match self {
            Target::Spirv(major, minor) => format!("spv{major}.{minor}"),
            Target::Msl(major, minor) => format!("msl{major}.{minor}"),
            Target::Hlsl(sm) => format!("hlsl{}", sm.to_str()),
            Target::GlslEs310 => "glsl-es310".into(),
        }
    }
}

/// What a writer made: SPIR-V words, or source text.
pub enum Output {
    Words(Vec<u32>),
    Text(String),
}

fn policies() -> BoundsCheckPolicies {
    BoundsCheckPolicies {
        index: BoundsCheckPolicy::Restrict,
        buffer: BoundsCheckPolicy::Restrict,
        image_load: BoundsCheckPolicy::Restrict,
        binding_array: BoundsCheckPolicy::Unchecked,
    }
}

/// wgpu-hal's GL policies: GLSL checks its own array indices, and image
/// loads go unchecked on GL ES, which has no textureQueryLevels (wgpu-hal
/// 30, gles/device.rs).
fn gles_policies() -> BoundsCheckPolicies {
    BoundsCheckPolicies {
        index: BoundsCheckPolicy::Unchecked,
        buffer: BoundsCheckPolicy::Unchecked,
        image_load: BoundsCheckPolicy::Unchecked,
        binding_array: BoundsCheckPolicy::Unchecked,
    }
}

/// The module's resource bindings in (group, binding) order, with whether
/// each is writable.
fn bindings(module: &Module) -> Vec<(ResourceBinding, bool)> {
    let mut all: Vec<_> = module
        .global_variables
        .iter()
        .filter_map(|(_, g)| {
            let writable = matches!(
                g.space,
                naga::AddressSpace::Storage { access } if access.contains(naga::StorageAccess::STORE)
            );
            g.binding.map(|b| (b, writable))
        })
        .collect();
    all.sort_by_key(|(b, _)| (b.group, b.binding));
    all
}

/// Writes the entry point `(stage, name)` of `module` (overrides already
/// replaced) for `target`.
pub fn write(
    module: &Module,
    info: &ModuleInfo,
    stage: ShaderStage,
    entry: &str,
    target: Target,
) -> Result<Output, String> {
    let bindings = bindings(module);
    match target {
        Target::Spirv(major, minor) => {
            // Vulkan keeps WGSL's numbering: group is the descriptor set.
            let binding_map = bindings
                .iter()
                .map(|&(b, _)| {
                    let info = spv::BindingInfo {
                        descriptor_set: b.group,
                        binding: b.binding,
                        binding_array_size: None,
                    };
                    (b, info)
                })
                .collect();
            let options = spv::Options {
                lang_version: (major, minor),
                binding_map,
                bounds_check_policies: policies(),
                zero_initialize_workgroup_memory: spv::ZeroInitializeWorkgroupMemoryMode::None,
                fake_missing_bindings: false,
                ..Default::default()
            };
            let pipeline = spv::PipelineOptions {
                shader_stage: stage,
                entry_point: entry.to_string(),
            };
            spv::write_vec(module, info, &options, Some(&pipeline))
                .map(Output::Words)
                .map_err(|e| e.to_string())
        }
        Target::Msl(major, minor) => {
            // Metal's buffer slots are one sequence per stage; the sizes of
            // runtime-sized arrays come in one more buffer after them.
            let resources = bindings
                .iter()
                .enumerate()
                .map(|(slot, &(b, mutable))| {
                    let target = msl::BindTarget {
                        buffer: Some(slot as u8),
                        mutable,
                        ..Default::default()
                    };
                    (b, target)
                })
                .collect();
            let options = msl::Options {
                lang_version: (major, minor),
                per_entry_point_map: [(
                    entry.to_string(),
                    msl::EntryPointResources {
                        resources,
                        immediates_buffer: None,
                        sizes_buffer: Some(bindings.len() as u8),
                    },
                )]
                .into(),
                fake_missing_bindings: false,
                bounds_check_policies: policies(),
                zero_initialize_workgroup_memory: false,
                ..Default::default()
            };
            let pipeline = msl::PipelineOptions {
                entry_point: Some((stage, entry.to_string())),
                ..Default::default()
            };
            msl::write_string(module, info, &options, &pipeline)
                .map(|(text, _)| Output::Text(text))
                .map_err(|e| e.to_string())
        }
        Target::Hlsl(shader_model) => {
            // DX12 registers: one space per bind group, as wgpu lays them.
            let binding_map = bindings
                .iter()
                .map(|&(b, _)| {
                    let target = hlsl::BindTarget {
                        space: b.group as u8,
                        register: b.binding,
                        ..Default::default()
                    };
                    (b, target)
                })
                .collect();
            let options = hlsl::Options {
                shader_model,
                binding_map,
                fake_missing_bindings: false,
                zero_initialize_workgroup_memory: false,
                ..Default::default()
            };
            let pipeline = hlsl::PipelineOptions {
                entry_point: Some((stage, entry.to_string())),
            };
            let mut text = String::new();
            hlsl::Writer::new(&mut text, &options, &pipeline)
                .write(module, info, None)
                .map(|_| Output::Text(text))
                .map_err(|e| e.to_string())
        }
        Target::GlslEs310 => {
            let binding_map = bindings
                .iter()
                .enumerate()
                .map(|(slot, &(b, _))| (b, slot as u8))
                .collect();
            let options = glsl::Options {
                version: glsl::Version::Embedded {
                    version: 310,
                    is_webgl: false,
                },
                writer_flags: glsl::WriterFlags::empty(),
                binding_map,
                zero_initialize_workgroup_memory: false,
            };
            let pipeline = glsl::PipelineOptions {
                shader_stage: stage,
                entry_point: entry.to_string(),
                multiview: None,
            };
            let mut text = String::new();
            glsl::Writer::new(
                &mut text,
                module,
                info,
                &options,
                &pipeline,
                gles_policies(),
            )
            .and_then(|mut w| w.write())
            .map(|_| Output::Text(text))
            .map_err(|e| e.to_string())
        }
    }
}
