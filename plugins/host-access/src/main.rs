#![no_main]

#[unsafe(no_mangle)]
pub extern "C" fn main(_argc: i32, _argv: *const *const u8) -> i32 {
    underlay::cni::plugin::main(&host_access::HostAccess)
}
