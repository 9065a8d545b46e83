//! `gpu-net`: the binary. Everything it does is in `cli` (the command line)
//! over the `gpu_net` library.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    quiet_headless_drivers();
    cli::run()
}

/// Mesa's drivers print "XDG_RUNTIME_DIR is invalid or not set" on a
/// headless machine where the variable is missing, which a new user reads as
/// an error. Give them the system's temporary folder instead; a valid
/// setting is left alone.
fn quiet_headless_drivers() {
    let valid = std::env::var_os("XDG_RUNTIME_DIR")
        .map(|d| std::path::Path::new(&d).is_dir())
        .unwrap_or(false);
    if !valid {
        // SAFETY: called first thing in main, before any other thread exists.
        unsafe { std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir()) };
    }
}
