//! The `macvlan` CNI plugin binary; the plugin itself is `underlay_attach::Macvlan`.

#![no_main]

// A plain C `main`: std's start-up (stack-overflow guard discovery, which reads
// /proc/self/maps, and signal setup) is skipped; a CNI call is over before it would
// matter.
// SAFETY: `no_mangle` is unsafe because the symbol could clash; with `#![no_main]`
// this is the program's only `main`, the C entry point no safe attribute can declare.
#[unsafe(no_mangle)]
pub extern "C" fn main(_argc: i32, _argv: *const *const u8) -> i32 {
    // Started again by ourselves to send the later announcements of an ADD.
    if let Some(job) = underlay_linux::announce::Job::from_env() {
        return i32::from(job.run().is_err());
    }
    underlay::cni::plugin::main(&underlay_attach::Macvlan)
}
