//! Metal and DX12 cannot run here, so what can be proved without them is:
//! every WGSL file in shaders/, with every combination of override values
//! the program compiles it with, goes through naga 30.0.2 (the naga wgpu 30
//! uses) to SPIR-V, MSL, HLSL and GLSL ES 3.1 without error. With
//! `GPU_NET_SHADER_OUT=DIR` the SPIR-V and the GLSL ES are written there (one
//! file per shader, override combination and target) for CI to run the
//! Khronos validators on (`spirv-val`, `glslangValidator`); Apple's and
//! Microsoft's compilers do not run on Linux, so MSL and HLSL are not kept.

// The crate root is tests/, so the helpers' folder is named.
#[path = "translate/overrides.rs"]
mod overrides;
#[path = "translate/targets.rs"]
mod targets;

use std::path::{Path, PathBuf};

use naga::valid::{Capabilities, ValidationFlags, Validator};

/// What one shader produced.
struct Report {
    /// Override combinations translated.
    variants: usize,
    /// Override names the shader declares.
    overrides: Vec<String>,
}

/// Parses, validates and translates `source` for every override combination
/// and target; the SPIR-V and GLSL ES go to `out` when given. Every failure is
/// collected (not only the first), each naming the shader, the combination
/// and the target.
fn check(
    name: &str,
    source: &str,
    table: &overrides::Table,
    out: Option<&Path>,
) -> Result<Report, Vec<String>> {
    let module = naga::front::wgsl::parse_str(source).map_err(|e| {
        vec![format!(
            "{name}: WGSL parse error:\n{}",
            e.emit_to_string(source)
        )]
    })?;
    // No capabilities: our pipelines ask wgpu for no shader features, so a
    // shader that needed one would fail on some device.
    let info = Validator::new(ValidationFlags::all(), Capabilities::empty())
        .validate(&module)
        .map_err(|e| vec![format!("{name}: invalid:\n{}", e.emit_to_string(source))])?;
    let combos =
        overrides::combinations(&module, table).map_err(|e| vec![format!("{name}: {e}")])?;
    let mut errors = vec![];
    for combo in &combos {
        let label = overrides::label(combo);
        let mut constants = naga::back::PipelineConstants::default();
        for (n, v) in combo {
            constants.insert(n.clone(), *v);
        }
        for ep in &module.entry_points {
            let at = format!("{name} entry {} with {label}", ep.name);
            let (module, info) = match naga::back::pipeline_constants::process_overrides(
                &module,
                &info,
                Some((ep.stage, &ep.name)),
                &constants,
            ) {
                Ok(r) => r,
                Err(e) => {
                    errors.push(format!("{at}: the override values do not apply: {e}"));
                    continue;
                }
            };
            for target in targets::ALL {
                let file = out_file(name, &ep.name, combo, target);
                if let Err(e) = targets::write(&module, &info, ep.stage, &ep.name, target)
                    .and_then(|output| keep(output, out.zip(file)))
                {
                    errors.push(format!("{at} -> {}: {e}", target.name()));
                }
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Report {
        variants: combos.len(),
        overrides: module
            .overrides
            .iter()
            .filter_map(|(_, o)| o.name.clone())
            .collect(),
    })
}

/// Checks that a writer made something, and writes it to `to` (folder, file).
fn keep(output: targets::Output, to: Option<(&Path, String)>) -> Result<(), String> {
    let bytes = match output {
        targets::Output::Words(words) if words.first() == Some(&0x0723_0203) => {
            words.iter().flat_map(|w| w.to_le_bytes()).collect()
        }
        targets::Output::Words(_) => return Err("not SPIR-V (no magic number)".into()),
        targets::Output::Text(text) if text.trim().is_empty() => {
            return Err("nothing written".into());
        }
        targets::Output::Text(text) => text.into_bytes(),
    };
    match to {
        Some((dir, file)) => {
            let path = dir.join(file);
            std::fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))
        }
        None => Ok(()),
    }
}

/// "matmul.main.TRANS_A-0.TRANS_B-1.EPILOGUE-3.spv1.0.spv" or
/// "....glsl-es310.comp": the target last, so CI can pick the validator and
/// its target environment from it. `None` for targets no validator here reads.
fn out_file(
    shader: &str,
    entry: &str,
    combo: &[(String, f64)],
    target: targets::Target,
) -> Option<String> {
    let ext = match target {
        targets::Target::Spirv(..) => "spv",
        targets::Target::GlslEs310 => "comp",
        targets::Target::Msl(..) | targets::Target::Hlsl(_) => return None,
    };
    let stem = Path::new(shader).file_stem().unwrap().to_string_lossy();
    let values: String = combo.iter().map(|(n, v)| format!(".{n}-{v}")).collect();
    Some(format!("{stem}.{entry}{values}.{}.{ext}", target.name()))
}

/// The .wgsl files in `dir`, sorted.
fn wgsl_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "wgsl"))
        .collect();
    files.sort();
    files
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every module the program compiles, as (name, source), sorted: each .wgsl
/// file under shaders/ without a folder of its own, composed as the program
/// composes it (`dispatch::compose`): after the file of each folder above it,
/// shared first, one line apart. `shaders/matmul/tiled/tile64.wgsl` is
/// `shaders/matmul.wgsl`, `shaders/matmul/tiled.wgsl`, then itself, named
/// `shaders/matmul+tiled+tile64.wgsl`. Before all of them, each library file
/// of `shaders/lib/` whose functions the module calls (`library_first`). A
/// new shader or variant is covered without touching this test.
fn shader_modules() -> Vec<(String, String)> {
    let mut modules = vec![];
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    collect_modules(&dir, &[], &mut modules);
    let libraries: Vec<String> = wgsl_files(&dir.join("lib"))
        .iter()
        .map(|p| read(p))
        .collect();
    for (_, source) in &mut modules {
        *source = library_first(&libraries, source);
    }
    modules.sort();
    modules
}

/// `source` after each of `libraries` one of whose functions it calls.
fn library_first(libraries: &[String], source: &str) -> String {
    let calls = |library: &String| {
        library
            .lines()
            .filter_map(|l| l.strip_prefix("fn "))
            .filter_map(|l| l.split('(').next())
            .any(|name| source.contains(&format!("{name}(")))
    };
    let mut parts: Vec<&str> = libraries
        .iter()
        .filter(|l| calls(l))
        .map(|l| l.as_str())
        .collect();
    parts.push(source);
    parts.join("\n")
}

/// The modules of `dir`, each after `above`: (stem, source) of the shared
/// files of the folders above it.
fn collect_modules(dir: &Path, above: &[(String, String)], out: &mut Vec<(String, String)>) {
    for path in wgsl_files(dir) {
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        let mut chain = above.to_vec();
        chain.push((stem, read(&path)));
        let folder = path.with_extension("");
        if folder.is_dir() {
            collect_modules(&folder, &chain, out);
            continue;
        }
        let names: Vec<&str> = chain.iter().map(|(n, _)| n.as_str()).collect();
        let sources: Vec<&str> = chain.iter().map(|(_, s)| s.as_str()).collect();
        out.push((
            format!("shaders/{}.wgsl", names.join("+")),
            sources.join("\n"),
        ));
    }
}

/// The window kernels' modules are the ones the program compiles.
#[test]
fn the_window_modules_are_the_programs() {
    let modules = shader_modules();
    for (name, source) in gpu_net::gpu::kernels::window::sources() {
        let found = modules.iter().find(|(n, _)| n == name);
        let (_, tested) = found.unwrap_or_else(|| panic!("no module {name}"));
        assert_eq!(tested, source, "{name}");
    }
}

/// The composition is the one the program compiles.
#[test]
fn the_vec4_modules_are_the_programs() {
    let modules = shader_modules();
    for (textures, stem) in [(false, "buffers"), (true, "textures")] {
        let name = format!("shaders/matmul+vec4+{stem}.wgsl");
        let (_, source) = modules
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("no module {name}"));
        assert_eq!(
            *source,
            gpu_net::gpu::kernels::matmul::vec4_source(textures)
        );
    }
    // The texture width the copies use is the one the shader divides by.
    let log2 = gpu_net::gpu::kernels::matmul::TEXELS_LOG2;
    assert!(
        gpu_net::gpu::kernels::matmul::vec4_source(true)
            .contains(&format!("const TEXELS_LOG2: u32 = {log2}u;")),
        "TEXELS_LOG2 in shaders/matmul/vec4/textures.wgsl is not {log2}"
    );
}

/// The tiled product's modules are the program's, and each tile's
/// constants, and the reduction's reads in flight, are the ones the
/// planner, the grid and the cost model use.
#[test]
fn the_tiled_modules_are_the_programs() {
    use gpu_net::gpu::kernels::{Tile, matmul::tiled_source};
    let modules = shader_modules();
    for tile in Tile::ALL {
        let name = format!("shaders/matmul+tiled+tile{}.wgsl", tile.edge());
        let (_, source) = modules
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("no module {name}"));
        assert_eq!(*source, tiled_source(tile));
        let in_flight = gpu_net::gpu::cost::REDUCE_IN_FLIGHT as u32;
        for (constant, value) in [
            ("TILE", tile.edge()),
            ("PER", tile.per_invocation()),
            ("REDUCE_IN_FLIGHT", in_flight),
        ] {
            let line = format!("const {constant}: u32 = {value}u;");
            assert!(source.contains(&line), "{name} lacks `{line}`");
        }
    }
}

#[test]
fn every_kernel_translates_to_every_backend() {
    let out = std::env::var_os("GPU_NET_SHADER_OUT").map(PathBuf::from);
    if let Some(dir) = &out {
        std::fs::create_dir_all(dir)
            .unwrap_or_else(|e| panic!("GPU_NET_SHADER_OUT={}: {e}", dir.display()));
    }
    let table = overrides::program();
    let files = shader_modules();
    assert!(!files.is_empty(), "no .wgsl files in shaders/");
    let (mut errors, mut declared, mut variants) = (vec![], vec![], 0);
    for (name, source) in &files {
        match check(name, source, &table, out.as_deref()) {
            Ok(r) => {
                eprintln!(
                    "{name}: {} override combinations {:?}",
                    r.variants, r.overrides
                );
                variants += r.variants;
                declared.extend(r.overrides);
            }
            Err(e) => errors.extend(e),
        }
    }
    assert!(
        errors.is_empty(),
        "{} failures:\n{}",
        errors.len(),
        errors.join("\n")
    );
    // A table entry no shader declares is a renamed or removed override
    // whose replacement may be going untested.
    let stale: Vec<_> = table
        .iter()
        .filter(|(n, _)| !declared.iter().any(|d| d == n))
        .collect();
    assert!(
        stale.is_empty(),
        "no shader declares {stale:?}: update tests/translate/overrides.rs"
    );
    eprintln!(
        "{} shaders, {variants} override combinations, {} targets each",
        files.len(),
        targets::ALL.len()
    );
}

/// The check fails, naming the cause, for each way a shader can be wrong.
#[test]
fn a_shader_that_does_not_translate_fails_the_check() {
    let table = overrides::program();
    let failure = |source: &str, table: &overrides::Table| -> String {
        match check("bad.wgsl", source, table, None) {
            Ok(_) => panic!("accepted:\n{source}"),
            Err(e) => e.join("\n"),
        }
    };
    let err = failure("@compute @workgroup_size(1) fn main( {}", &table);
    assert!(err.contains("bad.wgsl: WGSL parse error"), "{err}");
    // Parses, but f64 needs a capability no pipeline of ours asks for.
    let err = failure(
        "@group(0) @binding(0) var<storage, read_write> out: array<f32>;
         @compute @workgroup_size(1) fn main() { let x: f64 = 1.0lf; out[0] = f32(x); }",
        &table,
    );
    assert!(err.contains("bad.wgsl: invalid"), "{err}");
    // An override the table does not know (say, a new split-K factor).
    let err = failure(
        "override SPLIT_K: u32 = 4u;
         @group(0) @binding(0) var<storage, read_write> out: array<u32>;
         @compute @workgroup_size(1) fn main() { out[0] = SPLIT_K; }",
        &table,
    );
    assert!(
        err.contains("override SPLIT_K is not in the table"),
        "{err}"
    );
    // Values the table gives that the shader cannot take: a workgroup of 0.
    let err = failure(
        "override WG: u32 = 8u;
         @group(0) @binding(0) var<storage, read_write> out: array<u32>;
         @compute @workgroup_size(WG) fn main(@builtin(local_invocation_index) i: u32) { out[i] = i; }",
        &[("WG", &[8.0, 0.0])],
    );
    assert!(
        err.contains("entry main with WG=0: the override values do not apply"),
        "{err}"
    );
    assert!(!err.contains("WG=8"), "{err}");
}

/// Every combination is covered: two overrides of 2 and 3 values make 6
/// variants, each written for every SPIR-V version and GLSL ES.
#[test]
fn every_override_combination_is_written() {
    let dir = std::env::temp_dir().join(format!("gpu-net-translate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let source = "override A: bool = false;
        override B: u32 = 0u;
        @group(0) @binding(0) var<storage, read_write> out: array<u32>;
        @compute @workgroup_size(1) fn main() { out[0] = select(0u, 1u, A) + B; }";
    let table: &overrides::Table = &[("A", &[0.0, 1.0]), ("B", &[0.0, 1.0, 2.0][..])];
    let report = check("two.wgsl", source, table, Some(&dir)).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(report.variants, 6);
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    std::fs::remove_dir_all(&dir).unwrap();
    let kept = targets::ALL
        .iter()
        .filter(|&&t| out_file("two.wgsl", "main", &[], t).is_some())
        .count();
    assert_eq!(kept, 3, "SPIR-V 1.0 and 1.6, GLSL ES");
    assert_eq!(files.len(), 6 * kept, "{files:?}");
    for f in [
        "two.main.A-1.B-2.spv1.0.spv",
        "two.main.A-0.B-1.glsl-es310.comp",
    ] {
        assert!(files.contains(&f.to_string()), "{f} not in {files:?}");
    }
}
