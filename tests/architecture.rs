//! The direction of imports in `src/`, read from the source: every
//! `crate::`, `super::` and `gpu_net::` path is resolved to the file that
//! defines what it names (through `pub use` re-exports), and the graph of
//! files must have no cycle and keep to the ranks:
//! - the folders of `src/` by rank ([`RANKS`]): `core` imports nothing of
//!   the crate above it, the CPU and GPU paths only `core` (and never each
//!   other), up to the command line, which nothing imports;
//! - the modules of `src/gpu` by rank ([`GPU_RANKS`]), the same way;
//! - the command line reaches the library only through `gpu_net::`, and
//!   the CPU and GPU paths only through the jobs (`gpu_net::run`) and the
//!   device's options.
//!
//! Each rule is shown to fail on an import planted in a copy of the tree.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

type Tree = BTreeMap<String, String>;

/// Every `.rs` file under `src/`, by path relative to the crate root.
fn real_tree() -> Tree {
    fn walk(dir: &Path, root: &Path, out: &mut Tree) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, root, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                out.insert(rel, std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut tree = Tree::new();
    walk(&root.join("src"), root, &mut tree);
    tree
}

/// The module path of a file: `src/gpu/kernels/mod.rs` is `gpu::kernels`,
/// `src/cli/train.rs` is `cli::train`; the crate roots are empty.
fn module_of(file: &str) -> Vec<String> {
    let inner = file.trim_start_matches("src/").trim_end_matches(".rs");
    let mut parts: Vec<String> = inner.split('/').map(String::from).collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// The file of a module path, if there is one: `a/b.rs` or `a/b/mod.rs`.
fn file_of(tree: &Tree, module: &[String], bin: bool) -> Option<String> {
    if module.is_empty() {
        return Some(if bin { "src/main.rs" } else { "src/lib.rs" }.into());
    }
    let base = format!("src/{}", module.join("/"));
    [format!("{base}.rs"), format!("{base}/mod.rs")]
        .into_iter()
        .find(|f| tree.contains_key(f))
}

/// The source without comments (line comments and doc comments), so a path
/// named in prose is not an import.
fn code(text: &str) -> String {
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Expands `a::{b, c::{d, e}}` into `a::b`, `a::c::d`, `a::c::e`.
fn expand(path: &str) -> Vec<String> {
    let path: String = path.chars().filter(|c| !c.is_whitespace()).collect();
    let Some(open) = path.find('{') else {
        return vec![path];
    };
    let (prefix, rest) = (&path[..open], &path[open + 1..path.len() - 1]);
    let (mut items, mut depth, mut start) = (vec![], 0, 0);
    for (i, c) in rest.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&rest[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&rest[start..]);
    items
        .into_iter()
        .filter(|i| !i.is_empty())
        .flat_map(|i| expand(&format!("{prefix}{i}")))
        .collect()
}

/// Every path a file names: its `use` declarations (expanded) and inline
/// `crate::`/`super::`/`gpu_net::` paths.
fn paths_in(text: &str) -> Vec<String> {
    let code = code(text);
    let mut out = vec![];
    for stmt in code.split(';') {
        let s = stmt.trim();
        let s = s.strip_prefix("pub ").unwrap_or(s).trim_start();
        let s = s.strip_prefix("pub(crate) ").unwrap_or(s);
        if let Some(u) = s.strip_prefix("use ") {
            out.extend(expand(u));
        }
    }
    for root in ["crate::", "super::", "gpu_net::"] {
        for (i, _) in code.match_indices(root) {
            let before = code[..i].chars().last().unwrap_or(' ');
            if before.is_alphanumeric() || before == '_' || before == ':' {
                continue;
            }
            let end = code[i..]
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .map_or(code.len(), |e| i + e);
            let path = code[i..end].trim_end_matches(':');
            // `use super::{a, b}` is read above, expanded.
            if path.contains("::") {
                out.push(path.to_string());
            }
        }
    }
    out
}

/// Where an item named by `pub use` in a facade file comes from.
fn reexport_of(tree: &Tree, facade: &str, item: &str) -> Option<String> {
    paths_in(&tree[facade])
        .into_iter()
        .find(|p| p.rsplit("::").next() == Some(item) && p.contains("::"))
}

/// The file that defines what `path` (as written in `file`) names.
fn resolve(tree: &Tree, file: &str, path: &str, depth: usize) -> Option<String> {
    let in_bin = file == "src/main.rs" || file.starts_with("src/cli/");
    let segs: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
    let first = *segs.first()?;
    let bin = in_bin && first != "gpu_net";
    let (mut module, rest): (Vec<String>, &[&str]) = match first {
        "crate" | "gpu_net" => (vec![], &segs[1..]),
        "self" => (module_of(file), &segs[1..]),
        "super" => {
            let mut m = module_of(file);
            let mut i = 0;
            while segs.get(i) == Some(&"super") {
                m.pop();
                i += 1;
            }
            (m, &segs[i..])
        }
        // A child module named without `self::` (`pub use batchnorm::X`).
        child => {
            let mut m = module_of(file);
            m.push(child.to_string());
            file_of(tree, &m, bin)?;
            (m, &segs[1..])
        }
    };
    for seg in rest {
        if *seg == "self" {
            continue;
        }
        let mut next = module.clone();
        next.push(seg.to_string());
        if file_of(tree, &next, bin).is_some() {
            module = next;
            continue;
        }
        // An item of `module`: defined there, or re-exported from elsewhere.
        let here = file_of(tree, &module, bin)?;
        if depth < 8 {
            if let Some(source) = reexport_of(tree, &here, seg) {
                return resolve(tree, &here, &source, depth + 1);
            }
        }
        return Some(here);
    }
    file_of(tree, &module, bin)
}

/// The files each file imports.
fn graph(tree: &Tree) -> BTreeMap<String, BTreeSet<String>> {
    tree.keys()
        .map(|file| {
            let deps = paths_in(&tree[file])
                .iter()
                .filter_map(|p| resolve(tree, file, p, 0))
                .filter(|d| d != file)
                .collect();
            (file.clone(), deps)
        })
        .collect()
}

/// The folder a file belongs to: `core`, `cpu`, `gpu`, `cli`, ...; the
/// crate roots are `lib` (which only names the folders) and `cli`.
fn part(file: &str) -> String {
    match module_of(file).first() {
        Some(m) if file.matches('/').count() > 1 => m.clone(),
        _ if file == "src/main.rs" => "cli".into(),
        _ => "lib".into(),
    }
}

/// The folders of `src/` by rank: a file may import files of its own
/// folder and of folders of a lower rank, nothing else. The CPU reference
/// and the GPU share a rank, so neither imports the other.
const RANKS: [(&str, u32); 7] = [
    ("core", 0),   // shapes, parameters, settings, data, limits, errors
    ("cpu", 1),    // the f64 reference path
    ("gpu", 1),    // the WGSL kernels and their driver
    ("report", 2), // figures, pictures, photos, predictions
    ("run", 3),    // the epoch loop, devices, checkpoints, and the jobs
    ("book", 4),   // the book's chapter scripts, on the loop
    ("cli", 5),    // flags in, lines out
];

/// The modules of `src/gpu` by rank, in the same way: each may import only
/// those of a lower rank (budget and net share one, as trainer and host_fed
/// do: neither of a pair imports the other). A file in a folder belongs to
/// the folder's module.
const GPU_RANKS: [(&str, u32); 21] = [
    ("error", 0),
    ("adapter", 1),
    ("profile", 1),
    ("cost", 2),
    ("plan", 3),
    ("context", 4),
    ("dispatch", 5),
    ("kernels", 6),
    ("layout", 7),
    ("tune", 7),
    ("front", 8),
    ("forecast", 8),
    ("stages", 8),
    ("ops", 8),
    ("budget", 9),
    ("net", 9),
    ("eval", 10),
    ("sequential", 10),
    ("trainer", 11),
    ("host_fed", 11),
    ("list_trainer", 12),
];

/// What the command line may import: the settings and values (`core`),
/// the reports, the jobs (`run`) and the book's scripts, and of the GPU
/// path only the device's options and description (`gpu-net devices`).
const CLI_MAY_IMPORT: [&str; 3] = ["src/gpu/mod.rs", "src/gpu/profile.rs", "src/gpu/adapter.rs"];
const CLI_MAY_IMPORT_FOLDERS: [&str; 4] = ["core", "report", "run", "book"];

fn rank_of(table: &[(&str, u32)], name: &str) -> Option<u32> {
    table.iter().find(|(n, _)| *n == name).map(|&(_, r)| r)
}

/// The module of `src/gpu` a file belongs to (`kernels` for `kernels/*`),
/// or None for the aggregator `src/gpu/mod.rs` and files elsewhere.
fn gpu_module(file: &str) -> Option<String> {
    let m = module_of(file);
    (m.first().map(String::as_str) == Some("gpu") && m.len() > 1).then(|| m[1].clone())
}

/// Why importing `dep` from `file` breaks a rank, if it does.
fn against_rank(file: &str, dep: &str) -> Option<String> {
    let (from, to) = (part(file), part(dep));
    if from == "lib" || to == "lib" {
        return None;
    }
    if from != to {
        let (rf, rt) = (rank_of(&RANKS, &from), rank_of(&RANKS, &to));
        return match (rf, rt) {
            (Some(a), Some(b)) if b < a => None,
            _ => Some(format!("{from} → {to} is against the ranks")),
        };
    }
    let (Some(a), Some(b)) = (gpu_module(file), gpu_module(dep)) else {
        return None;
    };
    match (rank_of(&GPU_RANKS, &a), rank_of(&GPU_RANKS, &b)) {
        _ if a == b => None,
        (Some(ra), Some(rb)) if rb < ra => None,
        _ => Some(format!("gpu::{a} → gpu::{b} is against the ranks")),
    }
}

/// Whether the command line may import `dep`.
fn cli_may_import(dep: &str) -> bool {
    let to = part(dep);
    to == "cli" || CLI_MAY_IMPORT.contains(&dep) || CLI_MAY_IMPORT_FOLDERS.contains(&to.as_str())
}

/// Every broken rule, in words.
fn violations(tree: &Tree) -> Vec<String> {
    let g = graph(tree);
    let mut out = vec![];
    for (file, deps) in &g {
        if part(file) == "lib" && file != "src/lib.rs" {
            out.push(format!("{file} is outside the folders of RANKS"));
        }
        for dep in deps {
            if let Some(why) = against_rank(file, dep) {
                out.push(format!("{file} imports {dep}: {why}"));
            }
            if part(file) == "cli" && !cli_may_import(dep) {
                out.push(format!(
                    "{file} imports {dep}: the command line reaches the CPU and GPU paths only through the jobs (gpu_net::run) and the device's options"
                ));
            }
        }
        if part(file) == "cli" && file != "src/main.rs" {
            let through_crate = paths_in(&tree[file])
                .into_iter()
                .filter(|p| p.starts_with("crate::") && !p.starts_with("crate::cli"))
                .collect::<Vec<_>>();
            for p in through_crate {
                out.push(format!(
                    "{file} names {p}: the command line reaches the library as gpu_net::"
                ));
            }
        }
    }
    out.extend(cycles(&g));
    out
}

/// One line per cycle found by a depth-first search.
fn cycles(g: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    fn visit(
        n: &str,
        g: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
        out: &mut Vec<String>,
    ) {
        if let Some(i) = stack.iter().position(|s| s == n) {
            let mut cycle = stack[i..].to_vec();
            cycle.push(n.to_string());
            out.push(format!("import cycle: {}", cycle.join(" → ")));
            return;
        }
        if done.contains(n) {
            return;
        }
        stack.push(n.to_string());
        for d in g.get(n).into_iter().flatten() {
            visit(d, g, stack, done, out);
        }
        stack.pop();
        done.insert(n.to_string());
    }
    let (mut done, mut out) = (BTreeSet::new(), vec![]);
    for n in g.keys() {
        visit(n, g, &mut vec![], &mut done, &mut out);
    }
    out
}

#[test]
fn imports_go_one_way() {
    let v = violations(&real_tree());
    assert!(v.is_empty(), "{}", v.join("\n"));
}

#[test]
fn the_resolver_finds_the_defining_file() {
    let tree = real_tree();
    let at = |file: &str, path: &str| resolve(&tree, file, path, 0);
    assert_eq!(
        at("src/run/device.rs", "crate::cpu::CpuTrainer").as_deref(),
        Some("src/cpu/trainer.rs")
    );
    assert_eq!(
        at("src/cli/train.rs", "gpu_net::run::checkpoint::Checkpoint").as_deref(),
        Some("src/run/checkpoint.rs")
    );
    assert_eq!(
        at("src/cli/train.rs", "super::output::Output").as_deref(),
        Some("src/cli/output.rs")
    );
    assert_eq!(
        at("src/run/epochs.rs", "crate::run::epoch_loop::Trainer").as_deref(),
        Some("src/core/trainer.rs"),
        "through the loop's re-export"
    );
    assert_eq!(at("src/run/epoch_loop.rs", "std::time::Instant"), None);
    let deps = &graph(&tree)["src/run/device.rs"];
    assert!(deps.contains("src/cpu/trainer.rs") && deps.contains("src/core/trainer.rs"));
    let gpu = &graph(&tree)["src/gpu/budget.rs"];
    assert!(gpu.iter().any(|d| d.starts_with("src/gpu/kernels/")));
}

/// The real tree with `line` added to `file`.
fn planted(file: &str, line: &str) -> Vec<String> {
    let mut tree = real_tree();
    let text = tree.get_mut(file).unwrap();
    text.push_str(line);
    violations(&tree)
}

#[test]
fn each_rule_fails_on_a_planted_import() {
    let cases = [
        (
            "src/cpu/net.rs",
            "\nuse crate::gpu::GpuContext;\n",
            "cpu → gpu",
        ),
        ("src/gpu/layout.rs", "\nuse crate::cpu::Net;\n", "gpu → cpu"),
        (
            "src/core/error.rs",
            "\nuse crate::gpu::GpuError;\n",
            "core → gpu",
        ),
        (
            "src/run/epoch_loop.rs",
            "\nuse crate::book::experiment::run;\n",
            "run → book",
        ),
        (
            "src/core/model.rs",
            "\nuse crate::core::config::RunConfig;\n",
            "import cycle",
        ),
        ("src/core/data.rs", "\nuse crate::cli::run;\n", "core → cli"),
        (
            "src/cli/eval.rs",
            "\nuse crate::core::model::Arch;\n",
            "as gpu_net::",
        ),
        (
            "src/cpu/layers.rs",
            "\nfn f() { crate::gpu::budget::x(); }\n",
            "cpu → gpu",
        ),
        (
            "src/gpu/kernels/gather.rs",
            "\nuse crate::gpu::budget::Budget;\n",
            "gpu::kernels → gpu::budget",
        ),
        (
            "src/gpu/net.rs",
            "\nuse super::budget::Budget;\n",
            "gpu::net → gpu::budget",
        ),
        (
            "src/cli/eval.rs",
            "\nuse gpu_net::gpu::GpuEvaluator;\n",
            "only through the jobs",
        ),
        (
            "src/cli/predict.rs",
            "\nuse gpu_net::cpu::Net;\n",
            "only through the jobs",
        ),
    ];
    for (file, line, needle) in cases {
        let v = planted(file, line);
        assert!(
            v.iter().any(|l| l.contains(needle)),
            "{line:?} in {file}: expected a violation with {needle:?}, got {v:?}"
        );
    }
}

#[test]
fn a_file_outside_the_folders_is_caught() {
    let mut tree = real_tree();
    tree.insert(
        "src/stray.rs".into(),
        "use crate::core::model::Arch;\n".into(),
    );
    let v = violations(&tree);
    assert!(
        v.iter().any(|l| l.contains("src/stray.rs is outside")),
        "{v:?}"
    );
}
