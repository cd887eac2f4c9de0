#![no_main]

// SAFETY: `no_mangle` is unsafe because the symbol could clash; with `#![no_main]`
// this is the program's only `main`, the C entry point no safe attribute can declare.
#[unsafe(no_mangle)]
pub extern "C" fn main(_argc: i32, _argv: *const *const u8) -> i32 {
    underlay::cni::plugin::main(&host_access::HostAccess)
}
