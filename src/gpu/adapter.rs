//! Which adapter to open. The command line's flags come first, then wgpu's
//! own environment conventions (`WGPU_BACKEND`, `WGPU_ADAPTER_NAME`,
//! `WGPU_POWER_PREF`), then the adapter wgpu ranks best. `gpu-net devices`
//! and `--adapter` both number the list [`enumerate`] makes for the same
//! backends, so an index printed by one is the adapter the other opens.

use super::error::{GpuError, Result};

/// The backends this build can use (Cargo.toml's wgpu features).
const BUILT: wgpu::Backends = wgpu::Backends::VULKAN
    .union(wgpu::Backends::METAL)
    .union(wgpu::Backends::DX12)
    .union(wgpu::Backends::GL);

/// Parses a `--backend` or `WGPU_BACKEND` value: one backend or a comma
/// separated list, with wgpu's names (`vulkan`/`vk`, `metal`/`mtl`,
/// `dx12`/`d3d12`, `gl`/`gles`/`opengl`).
pub fn parse_backends(s: &str) -> std::result::Result<wgpu::Backends, String> {
    let mut set = wgpu::Backends::empty();
    for name in s.split(',') {
        // wgpu's own table, one name at a time: given a list, wgpu skips an
        // unknown name silently, and a typo would then search no backend.
        let one = wgpu::Backends::from_comma_list(name);
        if one.is_empty() || !BUILT.contains(one) {
            return Err(format!(
                "unknown backend {:?}; expected vulkan, metal, dx12 or gl (or several, comma separated)",
                name.trim()
            ));
        }
        set |= one;
    }
    Ok(set)
}

/// "vulkan,gl": the names `--backend` takes, in wgpu's order.
pub fn backend_names(set: wgpu::Backends) -> String {
    [
        (wgpu::Backends::VULKAN, "vulkan"),
        (wgpu::Backends::METAL, "metal"),
        (wgpu::Backends::DX12, "dx12"),
        (wgpu::Backends::GL, "gl"),
    ]
    .iter()
    .filter(|(b, _)| set.contains(*b))
    .map(|(_, n)| *n)
    .collect::<Vec<_>>()
    .join(",")
}

/// The backends to search, and what narrowed them (for messages).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendChoice {
    pub backends: wgpu::Backends,
    /// `--backend gl` or `WGPU_BACKEND=gl`; `None` when every backend is searched.
    pub named_by: Option<String>,
}

impl BackendChoice {
    /// `--backend` when given, else `WGPU_BACKEND`, else every backend.
    pub fn resolve(flag: Option<wgpu::Backends>) -> Result<Self> {
        if let Some(backends) = flag {
            return Ok(BackendChoice {
                backends,
                named_by: Some(format!("--backend {}", backend_names(backends))),
            });
        }
        match env("WGPU_BACKEND")? {
            Some(value) => {
                let backends = parse_backends(&value).map_err(|why| GpuError::BadEnv {
                    var: "WGPU_BACKEND",
                    value: value.clone(),
                    why,
                })?;
                Ok(BackendChoice {
                    backends,
                    named_by: Some(format!("WGPU_BACKEND={value}")),
                })
            }
            None => Ok(BackendChoice {
                backends: wgpu::Backends::all(),
                named_by: None,
            }),
        }
    }

    /// The error for a search that found nothing: an explicit choice names
    /// itself (and is never a reason to fall back to the CPU).
    pub fn nothing_found(&self) -> GpuError {
        match &self.named_by {
            None => GpuError::NoAdapter(String::new()),
            Some(by) => GpuError::NoAdapterOn {
                by: by.clone(),
                hint: install_hint(self.backends),
            },
        }
    }
}

/// How to get a driver for `backends` (the first one that has a hint).
fn install_hint(backends: wgpu::Backends) -> &'static str {
    if backends.contains(wgpu::Backends::VULKAN) {
        "on Linux, `apt-get install mesa-vulkan-drivers libvulkan1` gives lavapipe, a software Vulkan GPU"
    } else if backends.contains(wgpu::Backends::GL) {
        "GL runs through EGL: on Linux, `apt-get install libegl1 libegl-mesa0 libgl1-mesa-dri` gives llvmpipe, a software GL GPU"
    } else if backends.contains(wgpu::Backends::METAL) {
        "Metal exists only on macOS and iOS"
    } else {
        "DX12 exists only on Windows"
    }
}

/// A variable of wgpu's conventions; empty counts as unset (as `VAR= cmd` reads).
fn env(var: &'static str) -> Result<Option<String>> {
    match std::env::var(var) {
        Ok(v) if v.trim().is_empty() => Ok(None),
        Ok(v) => Ok(Some(v)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(v)) => Err(GpuError::BadEnv {
            var,
            value: v.to_string_lossy().into_owned(),
            why: "not valid UTF-8".into(),
        }),
    }
}

fn instance(backends: wgpu::Backends) -> wgpu::Instance {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = backends;
    wgpu::Instance::new(desc)
}

/// Every adapter on `backends`, in the order `--adapter` and `gpu-net
/// devices` number them. (An adapter keeps what it needs of its instance
/// alive, so the instance can go.)
pub fn enumerate(backends: wgpu::Backends) -> Vec<wgpu::Adapter> {
    pollster::block_on(instance(backends).enumerate_adapters(backends))
}

/// The adapter the flags (`None` where not given) and the environment ask for.
pub fn select(backend: Option<wgpu::Backends>, index: Option<usize>) -> Result<wgpu::Adapter> {
    let choice = BackendChoice::resolve(backend)?;
    if let Some(index) = index {
        let mut all = enumerate(choice.backends);
        if index >= all.len() {
            return Err(GpuError::AdapterIndex {
                index,
                count: all.len(),
                on: choice
                    .named_by
                    .map_or(String::new(), |by| format!(" on {by}")),
            });
        }
        return Ok(all.swap_remove(index));
    }
    if let Some(name) = env("WGPU_ADAPTER_NAME")? {
        return by_name(&choice, &name);
    }
    let power_preference = power_preference()?;
    pollster::block_on(
        instance(choice.backends).request_adapter(&wgpu::RequestAdapterOptions {
            power_preference,
            ..Default::default()
        }),
    )
    .map_err(|e| match choice.named_by {
        None => GpuError::NoAdapter(format!(" ({e})")),
        Some(_) => choice.nothing_found(),
    })
}

/// The first adapter whose name contains `name`, ignoring case: what
/// `wgpu::util::initialize_adapter_from_env` does, but an error rather than
/// its panic when none matches.
fn by_name(choice: &BackendChoice, name: &str) -> Result<wgpu::Adapter> {
    let wanted = name.to_lowercase();
    let all = enumerate(choice.backends);
    let names: Vec<String> = all.iter().map(|a| describe(&a.get_info())).collect();
    all.into_iter()
        .find(|a| a.get_info().name.to_lowercase().contains(&wanted))
        .ok_or_else(|| GpuError::AdapterName {
            name: name.to_string(),
            among: if names.is_empty() {
                "there are none".into()
            } else {
                format!("there are {}", names.join(", "))
            },
            on: choice
                .named_by
                .as_ref()
                .map_or(String::new(), |by| format!(" on {by}")),
        })
}

/// `WGPU_POWER_PREF` (`low`, `high`, `none`); high performance by default.
fn power_preference() -> Result<wgpu::PowerPreference> {
    match env("WGPU_POWER_PREF")? {
        None => Ok(wgpu::PowerPreference::HighPerformance),
        Some(value) => wgpu::PowerPreference::from_env().ok_or(GpuError::BadEnv {
            var: "WGPU_POWER_PREF",
            value,
            why: "expected low, high or none".into(),
        }),
    }
}

/// Which backends lack an adapter, of those in `required`.
pub fn missing_backends(required: wgpu::Backends) -> Vec<String> {
    [
        wgpu::Backends::VULKAN,
        wgpu::Backends::METAL,
        wgpu::Backends::DX12,
        wgpu::Backends::GL,
    ]
    .into_iter()
    .filter(|b| required.contains(*b) && enumerate(*b).is_empty())
    .map(backend_names)
    .collect()
}

/// Every adapter `--adapter` can open with these flags (`--backend`, or
/// `None`), in its numbering, and what chose the backends.
pub fn list_adapters(
    backend: Option<wgpu::Backends>,
) -> Result<(BackendChoice, Vec<wgpu::AdapterInfo>)> {
    let choice = BackendChoice::resolve(backend)?;
    let infos = enumerate(choice.backends)
        .iter()
        .map(|a| a.get_info())
        .collect();
    Ok((choice, infos))
}

/// "llvmpipe (LLVM 15.0.6, 256 bits) (Vulkan, Mesa 22.3.6)"
pub fn describe(info: &wgpu::AdapterInfo) -> String {
    let driver = [info.driver.as_str(), info.driver_info.as_str()]
        .iter()
        .filter(|s| !s.is_empty())
        .cloned()
        .collect::<Vec<_>>()
        .join(" ");
    format!(
        "{} ({:?}, {})",
        info.name,
        info.backend,
        if driver.is_empty() {
            "driver unknown"
        } else {
            &driver
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_names_are_wgpus() {
        use wgpu::Backends as B;
        assert_eq!(parse_backends("vulkan"), Ok(B::VULKAN));
        assert_eq!(parse_backends("VK"), Ok(B::VULKAN));
        assert_eq!(parse_backends("mtl"), Ok(B::METAL));
        assert_eq!(parse_backends("d3d12"), Ok(B::DX12));
        assert_eq!(parse_backends("gles"), Ok(B::GL));
        assert_eq!(parse_backends("vulkan, gl"), Ok(B::VULKAN | B::GL));
        assert_eq!(backend_names(B::GL | B::VULKAN), "vulkan,gl");
        for bad in ["vulcan", "", "vulkan,", "webgpu", "noop"] {
            let err = parse_backends(bad).unwrap_err();
            assert!(
                err.contains("expected vulkan, metal, dx12 or gl"),
                "{bad:?}: {err}"
            );
        }
    }
}
