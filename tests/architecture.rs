//! The direction of imports in `src/`, read from the source: every
//! `crate::`, `super::` and `gpu_net::` path is resolved to the file that
//! defines what it names (through `pub use` re-exports), and the graph of
//! files must have no cycle and none of the forbidden directions:
//! - the CPU reference path and the GPU path never import each other;
//! - the library never imports the command line (`src/cli/`, `src/main.rs`);
//! - nothing below the commands imports a command (verify, bench,
//!   experiment, eval, and `run`, the jobs the command line calls);
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

/// The top-level part a file belongs to: `cpu`, `gpu`, `cli`, `train`, ...
fn part(file: &str) -> String {
    match module_of(file).first() {
        Some(m) => m.clone(),
        None if file == "src/main.rs" => "cli".into(),
        None => "lib".into(),
    }
}

const COMMANDS: [&str; 5] = ["verify", "bench", "experiment", "eval", "run"];
/// What sits below the commands.
const BELOW: [&str; 12] = [
    "cpu",
    "gpu",
    "model",
    "optim",
    "data",
    "limits",
    "config",
    "checkpoint",
    "error",
    "train",
    "device",
    "dropout_mask",
];

/// What the command line may import of the CPU and GPU paths: the
/// device's options and description (`gpu-net devices` lists adapters);
/// the rest it reaches through `run`, and errors' kinds through
/// `gpu_net::error::is_usage`.
const CLI_MAY_IMPORT: [&str; 3] = ["src/gpu/mod.rs", "src/gpu/profile.rs", "src/gpu/adapter.rs"];

/// A file inside the CPU or GPU path that the command line may not import.
fn reaches_inside(dep: &str) -> bool {
    (dep.starts_with("src/gpu/") || dep.starts_with("src/cpu/")) && !CLI_MAY_IMPORT.contains(&dep)
}

/// Every broken rule, in words.
fn violations(tree: &Tree) -> Vec<String> {
    let g = graph(tree);
    let mut out = vec![];
    for (file, deps) in &g {
        let from = part(file);
        for dep in deps {
            let to = part(dep);
            let forbidden = (from == "cpu" && to == "gpu")
                || (from == "gpu" && to == "cpu")
                || (from != "cli" && to == "cli")
                || (BELOW.contains(&from.as_str()) && COMMANDS.contains(&to.as_str()));
            if forbidden {
                out.push(format!("{file} imports {dep}: {from} → {to} is forbidden"));
            }
            if from == "cli" && reaches_inside(dep) {
                out.push(format!(
                    "{file} imports {dep}: the command line reaches the CPU and GPU paths only through the jobs (gpu_net::run) and the device's options"
                ));
            }
        }
        if from == "cli" && file != "src/main.rs" {
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
        at("src/device.rs", "crate::cpu::CpuTrainer").as_deref(),
        Some("src/cpu/trainer.rs")
    );
    assert_eq!(
        at("src/cli/train.rs", "gpu_net::checkpoint::Checkpoint").as_deref(),
        Some("src/checkpoint.rs")
    );
    assert_eq!(
        at("src/cli/train.rs", "super::output::Output").as_deref(),
        Some("src/cli/output.rs")
    );
    assert_eq!(at("src/train.rs", "std::time::Instant"), None);
    let deps = &graph(&tree)["src/device.rs"];
    assert!(deps.contains("src/cpu/trainer.rs") && deps.contains("src/train.rs"));
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
            "src/train.rs",
            "\nuse crate::verify::verify;\n",
            "train → verify",
        ),
        (
            "src/model.rs",
            "\nuse crate::train::Trainer;\n",
            "import cycle",
        ),
        ("src/data.rs", "\nuse crate::cli::run;\n", "data → cli"),
        (
            "src/cli/eval.rs",
            "\nuse crate::model::Arch;\n",
            "as gpu_net::",
        ),
        (
            "src/cpu/layers.rs",
            "\nfn f() { crate::gpu::budget::x(); }\n",
            "cpu → gpu",
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
