#![no_main]

/// Tells `macvlan` (and other underlay plugins) that this is their host-local, so they
/// may run it in-process.
#[used]
#[unsafe(link_section = ".underlay.identity")]
static IDENTITY: [u8; 48] = underlay::identity::HOST_LOCAL;

// A plain C `main`: std's start-up (stack-overflow guard discovery, which reads
// /proc/self/maps, and signal setup) is skipped; a CNI call is over before it would
// matter.
#[unsafe(no_mangle)]
pub extern "C" fn main(_argc: i32, _argv: *const *const u8) -> i32 {
    underlay::cni::plugin::main(&host_local::HostLocal)
}
