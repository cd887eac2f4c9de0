#![no_main]

/// Tells `macvlan` (and other underlay plugins) that this is their host-local, so they
/// may run it in-process.
#[used]
// SAFETY: `link_section` is unsafe because a section can be misused; this one only
// holds these bytes for readers of the ELF file, and no attribute does it safely.
#[unsafe(link_section = ".underlay.identity")]
static IDENTITY: [u8; 48] = underlay::identity::HOST_LOCAL;

// A plain C `main`: std's start-up (stack-overflow guard discovery, which reads
// /proc/self/maps, and signal setup) is skipped; a CNI call is over before it would
// matter.
// SAFETY: `no_mangle` is unsafe because the symbol could clash; with `#![no_main]`
// this is the program's only `main`, the C entry point no safe attribute can declare.
#[unsafe(no_mangle)]
pub extern "C" fn main(_argc: i32, _argv: *const *const u8) -> i32 {
    underlay::cni::plugin::main(&host_local::HostLocal)
}
