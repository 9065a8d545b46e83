//! The facts Rust and WGSL must agree on, checked from both sides' own
//! definitions: each struct the host writes and a shader reads (size, and
//! each field's name, offset and type, Rust's from `offset_of!` and WGSL's
//! from naga's layout), the matmul epilogue codes (the Rust enum against the
//! shaders' `const`s, and so the images' layouts), each kernel's declared bindings (name, number and
//! access, against naga's reading of every module compiled with them). Each
//! check also has a test that plants a fault and asserts the check reports it.
//! (The direction of imports, `src/gpu`'s included, is `architecture.rs`'s.)
//!
//! Needs no GPU except `a_uniform_binding_is_sized`.

mod common;

use std::collections::BTreeSet;

use gpu_net::core::optim::OptimizerKind;
use gpu_net::gpu::dispatch::StructLayout;
use gpu_net::gpu::kernels::matmul::{EPILOGUE_CODES, modules as matmul_modules};
use gpu_net::gpu::kernels::optimizer::{RULE_CODES, SOURCE as OPTIMIZER_SOURCE, rule_code};
use gpu_net::gpu::kernels::{
    Access, BindingContract, Slot, StructContract, binding_contracts, struct_contracts,
};
use naga::{Scalar, ScalarKind, TypeInner};

fn parse(source: &str) -> Result<naga::Module, String> {
    naga::front::wgsl::parse_str(source).map_err(|e| e.emit_to_string(source))
}

/// How `ty` reads in WGSL (`u32`, `f32`, ...), for comparing with Rust's.
fn wgsl_type(module: &naga::Module, ty: naga::Handle<naga::Type>) -> String {
    match module.types[ty].inner {
        TypeInner::Scalar(Scalar { kind, width: 4 }) => match kind {
            ScalarKind::Uint => "u32".into(),
            ScalarKind::Sint => "i32".into(),
            ScalarKind::Float => "f32".into(),
            other => format!("{other:?}"),
        },
        ref other => format!("{other:?}"),
    }
}

/// Compares the WGSL struct `name` of `source` with `rust`: the sizes, and
/// per field (paired by name) offset and type. Every difference is listed.
fn compare_struct(source: &str, name: &str, rust: &StructLayout) -> Result<(), String> {
    let module = parse(source)?;
    let (members, span) = module
        .types
        .iter()
        .find_map(|(_, t)| match &t.inner {
            TypeInner::Struct { members, span } if t.name.as_deref() == Some(name) => {
                Some((members, *span))
            }
            _ => None,
        })
        .ok_or_else(|| format!("no WGSL struct {name}"))?;
    let mut errors = vec![];
    if span as usize != rust.size {
        errors.push(format!(
            "{name}: {span} bytes in WGSL, {} in Rust ({})",
            rust.size, rust.name
        ));
    }
    for m in members {
        let member = m.name.as_deref().unwrap_or("?");
        match rust.fields.iter().find(|f| f.name == member) {
            None => errors.push(format!("{name}.{member}: no Rust field of that name")),
            Some(f) => {
                if f.offset != m.offset as usize {
                    errors.push(format!(
                        "{name}.{member}: at byte {} in WGSL, {} in Rust",
                        m.offset, f.offset
                    ));
                }
                let ty = wgsl_type(&module, m.ty);
                if f.ty != ty {
                    errors.push(format!("{name}.{member}: {ty} in WGSL, {} in Rust", f.ty));
                }
            }
        }
    }
    for f in rust.fields {
        if !members.iter().any(|m| m.name.as_deref() == Some(f.name)) {
            errors.push(format!("{name}.{}: no WGSL member of that name", f.name));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("\n"))
    }
}

/// Checks that the uniform at group 0, binding `binding` of `source` has the
/// WGSL struct `name` as its type.
fn check_uniform_binding(source: &str, binding: u32, name: &str) -> Result<(), String> {
    let module = parse(source)?;
    let var = module
        .global_variables
        .iter()
        .map(|(_, v)| v)
        .find(|v| {
            v.binding
                .as_ref()
                .is_some_and(|b| b.group == 0 && b.binding == binding)
        })
        .ok_or_else(|| format!("nothing at binding {binding}"))?;
    let ty = module.types[var.ty].name.as_deref();
    if var.space != naga::AddressSpace::Uniform || ty != Some(name) {
        return Err(format!(
            "binding {binding} is {:?} {ty:?}, not the uniform {name}",
            var.space
        ));
    }
    Ok(())
}

fn check_contract(c: &StructContract, source: &str) -> Result<(), String> {
    compare_struct(source, c.wgsl_name, &c.layout)?;
    match c.uniform_at {
        Some(b) => check_uniform_binding(source, b, c.wgsl_name),
        None => Ok(()),
    }
}

#[test]
fn every_shared_struct_matches_its_wgsl() {
    let contracts = struct_contracts();
    let mut errors = vec![];
    let mut checked = 0;
    for c in &contracts {
        assert!(!c.modules.is_empty(), "{}: no module", c.layout.name);
        for (what, source) in &c.modules {
            checked += 1;
            if let Err(e) = check_contract(c, source) {
                errors.push(format!("{what}: {e}"));
            }
        }
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    // matmul ×4 (two tiles, the vec4 kernel's two operand forms), gather,
    // softmax ×3 (Dims, Stats, Partial), batchnorm ×2, dropout, optimizer,
    // and the window kernels ×6 (im2col, col2im, max pooling forward and
    // backward, each also by quads over tiling windows).
    assert_eq!(checked, 18, "a kernel's contract went missing");
}

/// Each group 0 binding after the uniform in `source`: (number, name,
/// access) as naga reads the module.
fn shader_bindings(source: &str) -> Result<Vec<(u32, String, Access)>, String> {
    let module = parse(source)?;
    let mut out = vec![];
    for (_, var) in module.global_variables.iter() {
        let Some(b) = &var.binding else { continue };
        if b.group != 0 || b.binding == 0 {
            continue;
        }
        let name = var.name.clone().unwrap_or_default();
        let access = match (var.space, &module.types[var.ty].inner) {
            (naga::AddressSpace::Storage { access }, _) => {
                if access.contains(naga::StorageAccess::STORE) {
                    Access::ReadWrite
                } else {
                    Access::Read
                }
            }
            (naga::AddressSpace::Handle, TypeInner::Image { .. }) => Access::Texture,
            (space, _) => return Err(format!("binding {}: {name} in {space:?}", b.binding)),
        };
        out.push((b.binding, name, access));
    }
    out.sort_by_key(|(n, _, _)| *n);
    Ok(out)
}

/// Holds `source`'s bindings 1.. to the kernel's declared `slots`.
fn check_bindings(kernel: &str, slots: &[Slot], source: &str) -> Result<(), String> {
    let found = shader_bindings(source)?;
    let declared: Vec<(u32, String, Access)> = slots
        .iter()
        .enumerate()
        .map(|(i, s)| (i as u32 + 1, s.name.to_string(), s.access))
        .collect();
    if found == declared {
        return Ok(());
    }
    let show = |list: &[(u32, String, Access)]| {
        list.iter()
            .map(|(n, name, a)| format!("@binding({n}) {name} {a:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    Err(format!(
        "the shader declares {}; {kernel} binds {}",
        show(&found),
        show(&declared)
    ))
}

fn check_binding_contract(c: &BindingContract) -> Vec<String> {
    c.modules
        .iter()
        .filter_map(|(what, source)| {
            check_bindings(c.kernel, c.slots, source)
                .err()
                .map(|e| format!("{what}: {e}"))
        })
        .collect()
}

#[test]
fn every_kernels_bindings_match_its_shaders() {
    let contracts = binding_contracts();
    let errors: Vec<String> = contracts.iter().flat_map(check_binding_contract).collect();
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    let modules: usize = contracts.iter().map(|c| c.modules.len()).sum();
    // matmul ×4 (two tiles and the vec4 kernel on buffers, the vec4 kernel
    // on textures), gather, softmax, batchnorm ×2, dropout, optimizer, and
    // the window kernels ×6.
    assert_eq!(modules, 16, "a kernel's bindings went missing");
}

/// Batch normalization's forward, whose bindings 1, 2 (`a`, `z`) are both
/// read_write: a swap of the two is invisible to wgpu's validation.
fn batchnorm_forward() -> BindingContract {
    binding_contracts()
        .into_iter()
        .find(|c| c.kernel == "batchnorm forward")
        .expect("the batchnorm forward contract")
}

#[test]
fn a_swap_of_two_bindings_is_caught_on_either_side() {
    let c = batchnorm_forward();
    let source = &c.modules[0].1;
    check_bindings(c.kernel, c.slots, source).expect("as the program has them");
    // Swapped in the declaration.
    let mut slots = c.slots.to_vec();
    slots.swap(0, 1);
    let e = check_bindings(c.kernel, &slots, source).expect_err("a and z swapped in Rust");
    assert!(
        e.contains("@binding(1) a ReadWrite, @binding(2) z ReadWrite"),
        "{e}"
    );
    assert!(
        e.contains("binds @binding(1) z ReadWrite, @binding(2) a ReadWrite"),
        "{e}"
    );
    // Swapped in the shader.
    let swapped = source
        .replacen(
            "@binding(1) var<storage, read_write> a:",
            "@binding(9) var<storage, read_write> a:",
            1,
        )
        .replacen(
            "@binding(2) var<storage, read_write> z:",
            "@binding(1) var<storage, read_write> z:",
            1,
        )
        .replacen("@binding(9)", "@binding(2)", 1);
    assert_ne!(&swapped, source, "the edit applied");
    let e = check_bindings(c.kernel, c.slots, &swapped).expect_err("a and z swapped in WGSL");
    assert!(
        e.contains("@binding(1) z ReadWrite, @binding(2) a ReadWrite"),
        "{e}"
    );
}

#[test]
fn a_changed_access_renamed_or_extra_binding_is_caught() {
    let c = batchnorm_forward();
    let source = &c.modules[0].1;
    let read_only = source.replacen(
        "var<storage, read_write> running",
        "var<storage, read> running",
        1,
    );
    let e = check_bindings(c.kernel, c.slots, &read_only).expect_err("running made read-only");
    assert!(e.contains("@binding(4) running Read"), "{e}");
    let renamed = source.replace("std_dev", "sigma");
    let e = check_bindings(c.kernel, c.slots, &renamed).expect_err("std_dev renamed");
    assert!(e.contains("@binding(5) sigma ReadWrite"), "{e}");
    let extra = format!("{source}\n@group(0) @binding(6) var<storage, read> spare: array<f32>;\n");
    let e = check_bindings(c.kernel, c.slots, &extra).expect_err("a binding nobody binds");
    assert!(e.contains("@binding(6) spare Read"), "{e}");
}

/// The matmul uniform as the tiled shader declares it, with `edit` applied.
fn matmul_source_with(edit: impl Fn(&str) -> String) -> (String, StructContract) {
    let c = struct_contracts()
        .into_iter()
        .find(|c| c.modules[0].0.starts_with("shaders/matmul+tiled"))
        .expect("the matmul contract");
    (edit(&c.modules[0].1), c)
}

#[test]
fn swapped_fields_are_caught_by_name() {
    let (source, c) = matmul_source_with(|s| {
        let swapped = s.replacen("    lr: f32,\n", "    @@,\n", 1);
        let swapped = swapped.replacen("    decay: f32,\n", "    lr: f32,\n", 1);
        swapped.replacen("    @@,\n", "    decay: f32,\n", 1)
    });
    assert!(
        source.contains("    decay: f32,\n    // Weight decay"),
        "the edit applied"
    );
    let e = check_contract(&c, &source).expect_err("lr and decay swapped");
    assert!(e.contains("Dims.lr: at byte 36 in WGSL, 32 in Rust"), "{e}");
    assert!(
        e.contains("Dims.decay: at byte 32 in WGSL, 36 in Rust"),
        "{e}"
    );
}

#[test]
fn a_renamed_retyped_or_added_field_is_caught() {
    // Renamed where it is declared and where it is read.
    let (renamed, c) = matmul_source_with(|s| s.replace("ldb", "ld_b"));
    let e = check_contract(&c, &renamed).expect_err("ldb renamed");
    assert!(e.contains("Dims.ld_b: no Rust field"), "{e}");
    assert!(e.contains("Dims.ldb: no WGSL member"), "{e}");

    // Same size, other type: the shader never reads the padding, so it
    // still compiles.
    let stats = struct_contracts()
        .into_iter()
        .find(|c| c.wgsl_name == "Stats")
        .expect("the Stats contract");
    let retyped = stats.modules[0]
        .1
        .replacen("    _pad: u32,", "    _pad: f32,", 1);
    let e = check_contract(&stats, &retyped).expect_err("_pad retyped");
    assert_eq!(e, "Stats._pad: f32 in WGSL, u32 in Rust");

    let (added, c) = matmul_source_with(|s| {
        s.replacen(
            "    col_ones: u32,\n",
            "    col_ones: u32,\n    extra: u32,\n",
            1,
        )
    });
    let e = check_contract(&c, &added).expect_err("a field added");
    assert!(e.contains("Dims: 104 bytes in WGSL, 100 in Rust"), "{e}");
    assert!(e.contains("Dims.extra: no Rust field"), "{e}");

    let (rebound, c) = matmul_source_with(|s| {
        s.replacen(
            "var<uniform> dims: Dims",
            "var<storage, read> dims: Dims",
            1,
        )
    });
    let e = check_contract(&c, &rebound).expect_err("not a uniform");
    assert!(e.contains("not the uniform Dims"), "{e}");
}

/// The `const NAME: u32` values of a WGSL module.
fn u32_consts(source: &str) -> Result<Vec<(String, u32)>, String> {
    let module = parse(source)?;
    Ok(module
        .constants
        .iter()
        .filter_map(|(_, c)| match module.global_expressions[c.init] {
            naga::Expression::Literal(naga::Literal::U32(v)) => Some((c.name.clone()?, v)),
            _ => None,
        })
        .collect())
}

/// Checks that `source` declares each of `codes` with the same value.
fn check_codes(source: &str, codes: &[(&str, u32)]) -> Result<(), String> {
    let consts = u32_consts(source)?;
    let errors: Vec<String> = codes
        .iter()
        .filter_map(
            |&(name, rust)| match consts.iter().find(|(n, _)| n == name) {
                None => Some(format!("no `const {name}: u32` in WGSL (Rust: {rust})")),
                Some((_, wgsl)) if *wgsl != rust => {
                    Some(format!("{name}: {wgsl} in WGSL, {rust} in Rust"))
                }
                Some(_) => None,
            },
        )
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("\n"))
    }
}

#[test]
fn epilogue_codes_match_the_shaders() {
    let values: BTreeSet<u32> = EPILOGUE_CODES.iter().map(|&(_, v)| v).collect();
    assert_eq!(
        values.len(),
        EPILOGUE_CODES.len(),
        "two codes share a value"
    );
    for (what, source) in matmul_modules() {
        check_codes(&source, &EPILOGUE_CODES).unwrap_or_else(|e| panic!("{what}: {e}"));
        // No code is written as a number where its name would do.
        for n in 1..EPILOGUE_CODES.len() {
            for pattern in [format!("EPILOGUE == {n}u"), format!("case {n}u:")] {
                assert!(!source.contains(&pattern), "{what}: `{pattern}`");
            }
        }
    }
}

#[test]
fn a_changed_epilogue_code_is_caught() {
    let (_, source) = &matmul_modules()[1];
    let planted = source.replacen("const RELU: u32 = 1u;", "const RELU: u32 = 7u;", 1);
    assert_ne!(&planted, source, "the edit applied");
    let e = check_codes(&planted, &EPILOGUE_CODES).expect_err("RELU changed");
    assert_eq!(e, "RELU: 7 in WGSL, 1 in Rust");
    // A code the Rust side has and the shader does not name.
    let e = check_codes(source, &[("SCALE", 6)]).expect_err("no SCALE in WGSL");
    assert_eq!(e, "no `const SCALE: u32` in WGSL (Rust: 6)");
}

#[test]
fn optimizer_rule_codes_match_the_shader() {
    let codes: BTreeSet<u32> = OptimizerKind::ALL.iter().map(|&k| rule_code(k)).collect();
    assert_eq!(
        codes.len(),
        OptimizerKind::ALL.len(),
        "two rules share a code"
    );
    let named: BTreeSet<u32> = RULE_CODES.iter().map(|&(_, v)| v).collect();
    assert_eq!(named, codes, "RULE_CODES names every rule's code once");
    check_codes(OPTIMIZER_SOURCE, &RULE_CODES).unwrap();
    for n in 1..RULE_CODES.len() {
        let pattern = format!("case {n}u:");
        assert!(!OPTIMIZER_SOURCE.contains(&pattern), "`{pattern}`");
    }
    let planted = OPTIMIZER_SOURCE.replacen("const ADAM: u32 = 5u;", "const ADAM: u32 = 4u;", 1);
    assert_ne!(planted, OPTIMIZER_SOURCE, "the edit applied");
    let e = check_codes(&planted, &RULE_CODES).expect_err("ADAM changed");
    assert_eq!(e, "ADAM: 4 in WGSL, 5 in Rust");
}

/// The images' layouts are the same codes in Rust and in every module that
/// reads images through shaders/lib/columns.wgsl: the window kernels and
/// the tiled product.
#[test]
fn image_layout_codes_match_the_shaders() {
    use gpu_net::gpu::kernels::window::{IMAGE_LAYOUT_CODES, sources};
    let tiled = matmul_modules()
        .into_iter()
        .filter(|(n, _)| n.contains("tiled"));
    let window = sources().map(|(n, s)| (n, s.to_string()));
    let modules: Vec<_> = tiled.chain(window).collect();
    assert_eq!(modules.len(), 8, "two tiled modules and six window ones");
    for (what, source) in modules {
        check_codes(&source, &IMAGE_LAYOUT_CODES).unwrap_or_else(|e| panic!("{what}: {e}"));
    }
}

/// The uniform entry of a kernel's layout gives its struct's size, so a
/// smaller buffer is refused when the bind group is made (not only when a
/// dispatch runs); the same buffer passes a layout without the size.
#[test]
fn a_uniform_binding_is_sized() {
    let Some(ctx) = common::gpu() else { return };
    use gpu_net::gpu::dispatch::uniform_layout_entry;
    use gpu_net::gpu::kernels::Stats;
    let sized = uniform_layout_entry::<Stats>(0);
    let unsized_entry = wgpu::BindGroupLayoutEntry {
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Uniform,
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        ..sized
    };
    let small = ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("8 bytes"),
        size: 8,
        usage: wgpu::BufferUsages::UNIFORM,
        mapped_at_creation: false,
    });
    let bind = |entry: wgpu::BindGroupLayoutEntry| {
        let layout = ctx
            .device
            .create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: None,
                entries: &[entry],
            });
        let _group = ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &layout,
            entries: &[wgpu::BindGroupEntry {
                binding: 0,
                resource: small.as_entire_binding(),
            }],
        });
        ctx.check()
    };
    bind(unsized_entry).expect("without a size, an 8-byte uniform binds");
    let e = bind(sized).expect_err("a 16-byte uniform in 8 bytes");
    assert!(e.to_string().contains("16"), "{e}");
}
