#![no_main]

use nix::sys::signal::{SigHandler, Signal, signal};

// A plain C `main`, as the other plugins have: std's start-up work is skipped. That
// work includes ignoring SIGPIPE, which this plugin needs: a TLS peer that hangs up
// (say, refusing our certificate) would otherwise kill it before it can say why.
// SAFETY: `no_mangle` is unsafe because the symbol could clash; with `#![no_main]`
// this is the program's only `main`, the C entry point no safe attribute can declare.
#[unsafe(no_mangle)]
pub extern "C" fn main(_argc: i32, _argv: *const *const u8) -> i32 {
    // SAFETY: nix's signal() is unsafe (no safe form: it cannot check a handler);
    // SIG_IGN installs no handler code, and nothing else runs yet.
    let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigIgn) };
    underlay::cni::plugin::main(&underlay_ipam::UnderlayIpam)
}
