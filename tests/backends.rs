//! Backends and adapter selection: CI's required backends exist, GPU tests
//! run where `WGPU_BACKEND` says, `gpu-net devices` numbers adapters as
//! `--adapter` takes them, wgpu's environment variables are obeyed and
//! checked, and `--device` says what it will not do.

mod common;

use std::process::{Command, Output};

use gpu_net::gpu::adapter::{self, BackendChoice};
use gpu_net::gpu::context::{describe, list_adapters};

/// A backend this build knows but this operating system never has.
const ABSENT: &str = if cfg!(target_os = "macos") {
    "dx12"
} else {
    "metal"
};

/// `gpu-net ARGS` with `env` set (`None` removes a variable).
fn gpu_net(args: &[&str], env: &[(&str, Option<&str>)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gpu-net"));
    cmd.args(args).env("XDG_RUNTIME_DIR", "/tmp");
    for (k, v) in env {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    cmd.output().expect("gpu-net runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn assert_exit(o: &Output, code: i32, needles: &[&str], what: &str) {
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(code), "{what}: {err}");
    assert!(!err.contains("panicked"), "{what} panicked: {err}");
    for n in needles {
        assert!(err.contains(n), "{what}: {n:?} not in {err}");
    }
}

/// The adapter a one-iteration `train` ran on ("gpu: ..."), from its --json.
fn trained_on(o: &Output, what: &str) -> String {
    assert!(o.status.success(), "{what}: {}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("one JSON object");
    v["device"].as_str().expect("device").to_string()
}

const ONE_STEP: [&str; 10] = [
    "train",
    "--device",
    "gpu",
    "--iters",
    "1",
    "--batch",
    "10",
    "--train-size",
    "100",
    "--json",
];

#[test]
fn gpu_net_require_gpu_zero_means_not_required() {
    use std::ffi::OsStr;
    assert!(!common::gpu_required(None));
    assert!(!common::gpu_required(Some(OsStr::new("0"))));
    for v in ["1", "yes", "true", ""] {
        assert!(common::gpu_required(Some(OsStr::new(v))), "{v:?}");
    }
}

/// CI lists the backends it installed (`GPU_NET_REQUIRE_BACKENDS=vulkan,gl`):
/// each must have an adapter, or this fails rather than letting the GPU
/// tests skip or run elsewhere.
#[test]
fn required_backends_have_adapters() {
    let Some(list) = std::env::var("GPU_NET_REQUIRE_BACKENDS")
        .ok()
        .filter(|v| !v.trim().is_empty())
    else {
        eprintln!("GPU_NET_REQUIRE_BACKENDS is not set: no backend is required");
        return;
    };
    let required = adapter::parse_backends(&list)
        .unwrap_or_else(|e| panic!("GPU_NET_REQUIRE_BACKENDS={list:?}: {e}"));
    let missing = adapter::missing_backends(required);
    assert!(
        missing.is_empty(),
        "GPU_NET_REQUIRE_BACKENDS={list}: no adapter on {}",
        missing.join(", ")
    );
}

/// The check above can fail: a backend this OS lacks is reported missing,
/// and one that has an adapter is not.
#[test]
fn missing_backends_names_the_absent_ones() {
    let absent = adapter::parse_backends(ABSENT).unwrap();
    assert_eq!(adapter::missing_backends(absent), vec![ABSENT.to_string()]);
    let (_, present) = list_adapters(None).unwrap();
    for info in present {
        let b = wgpu::Backends::from(info.backend);
        assert!(
            adapter::missing_backends(b | absent) == vec![ABSENT.to_string()],
            "{:?} has an adapter",
            info.backend
        );
    }
}

/// `WGPU_BACKEND=gl cargo test` must test GL, not whatever comes first.
#[test]
fn gpu_tests_run_on_the_backend_wgpu_backend_names() {
    let choice = BackendChoice::resolve(None).expect("WGPU_BACKEND is valid");
    let Some(ctx) = common::gpu() else { return };
    assert!(
        choice
            .backends
            .contains(wgpu::Backends::from(ctx.info.backend)),
        "{:?} asks for {:?}, the GPU tests run on {}",
        choice.named_by,
        choice.backends,
        ctx.describe()
    );
}

/// Line N of `gpu-net devices [--backend B]` is the adapter that
/// `--adapter N [--backend B]` opens, and N = the count is refused.
#[test]
fn devices_numbers_adapters_as_adapter_takes_them() {
    for backend in [
        None,
        Some("vulkan"),
        Some("gl"),
        Some("vulkan,gl"),
        Some(ABSENT),
    ] {
        let flag: Vec<&str> = backend.map_or(vec![], |b| vec!["--backend", b]);
        let what = format!("devices {flag:?}");
        let o = gpu_net(&[&["devices"], &flag[..]].concat(), &[]);
        if !o.status.success() {
            // Only a backend without adapters may fail, and says which.
            let by = backend.map_or("".to_string(), |b| format!("--backend {b}"));
            assert_exit(&o, 1, &["no GPU adapter", &by], &what);
            assert!(
                backend.is_some() || common::gpu().is_none(),
                "{what} failed where the GPU tests have a GPU"
            );
            continue;
        }
        assert_ne!(backend, Some(ABSENT), "{what} listed adapters");
        let lines: Vec<String> = text(&o.stdout).lines().map(str::to_string).collect();
        assert!(!lines.is_empty(), "{what}: no lines");
        for (i, line) in lines.iter().enumerate() {
            let (n, rest) = line.split_once(": ").expect("N: adapter");
            assert_eq!(n, i.to_string(), "{what}: {line}");
            if let Some(b) = backend {
                let set = adapter::parse_backends(b).unwrap();
                assert!(
                    ["Vulkan", "Gl"]
                        .iter()
                        .zip([wgpu::Backends::VULKAN, wgpu::Backends::GL])
                        .any(
                            |(name, bit)| set.contains(bit) && rest.contains(&format!("({name}, "))
                        ),
                    "{what}: {line} is not on {b}"
                );
            }
            let index = i.to_string();
            let args = [&ONE_STEP[..], &flag[..], &["--adapter", &index]].concat();
            let device = trained_on(&gpu_net(&args, &[]), &format!("{args:?}"));
            let listed = rest.rsplit_once(" [").expect("a device type").0;
            assert_eq!(device, format!("gpu: {listed}"), "{args:?}");
        }
        let past = lines.len().to_string();
        let args = [&ONE_STEP[..], &flag[..], &["--adapter", &past]].concat();
        assert_exit(
            &gpu_net(&args, &[]),
            1,
            &[&format!("--adapter {past}"), "numbered from 0"],
            &format!("{args:?}"),
        );
    }
}

/// An explicit backend without an adapter is an error, never a CPU run.
#[test]
fn device_auto_on_a_backend_without_adapter_is_an_error() {
    let train = [
        "train",
        "--iters",
        "1",
        "--batch",
        "10",
        "--train-size",
        "100",
    ];
    let o = gpu_net(&[&train[..], &["--backend", ABSENT]].concat(), &[]);
    assert_exit(&o, 1, &[&format!("--backend {ABSENT}")], "--backend");
    assert!(!text(&o.stdout).contains("epoch"), "it trained anyway");
    let o = gpu_net(&train, &[("WGPU_BACKEND", Some(ABSENT))]);
    assert_exit(&o, 1, &[&format!("WGPU_BACKEND={ABSENT}")], "WGPU_BACKEND");
    assert!(!text(&o.stdout).contains("epoch"), "it trained anyway");
}

#[test]
fn device_cpu_says_gpu_flags_are_ignored() {
    let train = [
        "train",
        "--device",
        "cpu",
        "--iters",
        "1",
        "--batch",
        "10",
        "--train-size",
        "100",
    ];
    let gpu_flags = [
        "--backend",
        "gl",
        "--adapter",
        "0",
        "--matmul-kernel",
        "vec4",
        "--steps-per-submit",
        "2",
    ];
    let o = gpu_net(&[&train[..], &gpu_flags].concat(), &[]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let notes: Vec<String> = text(&o.stderr)
        .lines()
        .filter(|l| l.contains("ignores"))
        .map(str::to_string)
        .collect();
    assert_eq!(
        notes,
        [
            "note: --device cpu ignores --backend, --adapter, --matmul-kernel, --steps-per-submit (GPU only)"
        ]
    );
    // Without GPU flags, and on the GPU's side, nothing is said.
    let o = gpu_net(&train, &[]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(!text(&o.stderr).contains("ignores"), "{}", text(&o.stderr));
    let o = gpu_net(&["train", "--adapter", "99"], &[]);
    assert!(!text(&o.stderr).contains("ignores"), "{}", text(&o.stderr));
    // eval and experiment share the check (the note comes before the
    // missing model's error).
    let o = gpu_net(
        &[
            "eval",
            "--model",
            "/nonexistent",
            "--device",
            "cpu",
            "--adapter",
            "1",
        ],
        &[],
    );
    assert_exit(
        &o,
        1,
        &[
            "note: --device cpu ignores --adapter (GPU only)",
            "/nonexistent",
        ],
        "eval",
    );
}

#[test]
fn wgpu_environment_variables_are_checked() {
    let train = ["train", "--iters", "1", "--batch", "10"];
    for (var, value, needle) in [
        ("WGPU_BACKEND", "vulcan", "unknown backend \"vulcan\""),
        ("WGPU_BACKEND", "vulkan,", "unknown backend \"\""),
        ("WGPU_POWER_PREF", "fastest", "expected low, high or none"),
    ] {
        let o = gpu_net(&train, &[(var, Some(value))]);
        assert_exit(&o, 2, &[&format!("{var}=\"{value}\""), needle], var);
    }
    let o = gpu_net(&train, &[("WGPU_ADAPTER_NAME", Some("no-such-adapter"))]);
    assert_exit(
        &o,
        1,
        &["WGPU_ADAPTER_NAME=no-such-adapter", "no adapter"],
        "WGPU_ADAPTER_NAME",
    );
    // The flag wins over the variable: it is not even read.
    let o = gpu_net(
        &["devices", "--backend", ABSENT],
        &[("WGPU_BACKEND", Some("vulcan"))],
    );
    assert_exit(
        &o,
        1,
        &[&format!("--backend {ABSENT}")],
        "--backend over WGPU_BACKEND",
    );
}

/// `WGPU_ADAPTER_NAME` picks the first adapter (in `devices` order) whose
/// name contains it, ignoring case; `WGPU_BACKEND` narrows `devices`.
#[test]
fn wgpu_adapter_name_and_backend_select_the_adapter() {
    if common::gpu().is_none() {
        return;
    }
    let (_, all) = list_adapters(None).unwrap();
    for wanted in &all {
        let name = wanted.name.to_uppercase();
        let first = all
            .iter()
            .find(|a| a.name.to_uppercase().contains(&name))
            .unwrap();
        let device = trained_on(
            &gpu_net(&ONE_STEP, &[("WGPU_ADAPTER_NAME", Some(&name))]),
            &name,
        );
        assert_eq!(device, format!("gpu: {}", describe(first)));
        // Narrowed to this adapter's backend, the name finds it.
        let backend = format!("{:?}", wanted.backend).to_lowercase();
        let device = trained_on(
            &gpu_net(
                &ONE_STEP,
                &[
                    ("WGPU_ADAPTER_NAME", Some(&name)),
                    ("WGPU_BACKEND", Some(&backend)),
                ],
            ),
            &backend,
        );
        assert!(
            device.contains(&format!("({:?}, ", wanted.backend)),
            "WGPU_BACKEND={backend}: {device}"
        );
        let o = gpu_net(&["devices"], &[("WGPU_BACKEND", Some(&backend))]);
        assert!(o.status.success(), "{}", text(&o.stderr));
        assert!(
            text(&o.stderr).contains(&format!("note: WGPU_BACKEND={backend}")),
            "{}",
            text(&o.stderr)
        );
        for line in text(&o.stdout).lines() {
            assert!(line.contains(&format!("({:?}, ", wanted.backend)), "{line}");
        }
    }
}
