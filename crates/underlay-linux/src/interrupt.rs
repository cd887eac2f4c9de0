//! Ctrl-C while a test world is up (the lab, benchmarks): the first SIGINT/SIGTERM
//! only marks the run as interrupted, so the current step stops and the destructors
//! remove everything made so far (worlds, daemons, temporary files); a second one ends
//! the process at once (`underlay lab down` then cleans up the lab's).

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

/// The error a step returns when the user interrupted.
#[derive(Debug)]
pub struct Interrupted;

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("interrupted")
    }
}

impl std::error::Error for Interrupted {}

/// Fails with `Interrupted` once the user has asked to stop.
pub fn check() -> Result<(), Interrupted> {
    if INTERRUPTED.load(Ordering::SeqCst) { Err(Interrupted) } else { Ok(()) }
}
