//! Ctrl-C during a benchmark that runs a daemon in a test world: the first SIGINT or
//! SIGTERM only marks the run as interrupted, so the benchmark stops between steps and
//! its destructors end the daemon, remove the world and the temporary files; a second
//! one ends the process at once. (The same pattern as `underlay lab`'s.)

use std::sync::atomic::{AtomicBool, Ordering};

use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: i32) {
    if INTERRUPTED.swap(true, Ordering::SeqCst) {
        // SAFETY: _exit(2) is async-signal-safe; neither std (`exit` runs atexit
        // handlers, not allowed in a handler) nor nix has a safe form of it.
        unsafe { nix::libc::_exit(130) };
    }
}

/// Catches SIGINT and SIGTERM from here on.
pub fn catch() {
    let action = SigAction::new(SigHandler::Handler(on_signal), SaFlags::SA_RESTART, SigSet::empty());
    for sig in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: nix's sigaction is unsafe (no safe form: it cannot check the handler);
        // the handler only touches an atomic and calls _exit, both async-signal-safe.
        let _ = unsafe { sigaction(sig, &action) };
    }
}

/// Fails once the user has asked to stop.
pub fn check() -> anyhow::Result<()> {
    anyhow::ensure!(!INTERRUPTED.load(Ordering::SeqCst), "interrupted");
    Ok(())
}
