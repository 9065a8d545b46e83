//! `gpu-net devices`: the adapters wgpu can see, numbered as `--adapter`
//! takes them.

use std::process::ExitCode;

use clap::Args;

use gpu_net::gpu;

use super::output;

#[derive(Args)]
pub struct DevicesArgs {
    /// Only these backends (as --backend of the other commands): the list
    /// is then numbered as `--backend B --adapter N` counts.
    #[arg(long, value_parser = gpu::adapter::parse_backends)]
    pub backend: Option<wgpu::Backends>,
}

pub fn run(args: DevicesArgs) -> anyhow::Result<ExitCode> {
    let (choice, adapters) = gpu::context::list_adapters(args.backend)?;
    if adapters.is_empty() {
        return Err(choice.nothing_found().into());
    }
    if args.backend.is_none() {
        if let Some(by) = &choice.named_by {
            say_err!("note: {by}: only those backends are listed");
        }
    }
    for (i, info) in adapters.iter().enumerate() {
        output::print(&format!(
            "{i}: {} [{:?}]\n",
            gpu::context::describe(info),
            info.device_type
        ));
    }
    // What the dispatch planner assumes of a device it opens.
    let profile_of =
        |info: &wgpu::AdapterInfo| gpu::DeviceProfile::for_adapter(info, &wgpu::Limits::default());
    if let Some(first) = adapters.first() {
        say_err!("planner: {}", profile_of(first)?.describe());
    }
    Ok(ExitCode::SUCCESS)
}
