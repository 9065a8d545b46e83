//! Ctrl-C (SIGINT), SIGTERM and SIGHUP during a command: the first asks the
//! running loop to stop after the steps in flight (it then saves what it
//! has); a second stops at once, removing any checkpoint half written so the
//! previous one stays whole. Exit status 130 either way, as shells expect
//! of a run stopped by Ctrl-C.
//!
//! May import: the gpu_net library.

use std::sync::atomic::{AtomicUsize, Ordering};

/// The exit status of a run stopped by a signal (128 + SIGINT's 2).
pub const EXIT_STATUS: u8 = 130;

static SIGNALS: AtomicUsize = AtomicUsize::new(0);

/// Installs the handler (once per process; later calls do nothing).
pub fn install() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let installed = ctrlc::set_handler(|| {
            if SIGNALS.fetch_add(1, Ordering::SeqCst) == 0 {
                say_err!(
                    "\nstopping after the steps in flight and saving (Ctrl-C again stops at once)"
                );
            } else {
                gpu_net::core::files::remove_partial_writes();
                say_err!("\nstopped at once; any checkpoint keeps its previous contents");
                std::process::exit(EXIT_STATUS.into());
            }
        });
        if let Err(e) = installed {
            say_err!("warning: Ctrl-C will stop the run without saving ({e})");
        }
    });
}

/// Whether a signal asked the command to stop.
pub fn requested() -> bool {
    SIGNALS.load(Ordering::SeqCst) > 0
}
