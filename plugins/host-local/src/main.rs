/// Tells `macvlan` (and other underlay plugins) that this is their host-local, so they
/// may run it in-process.
#[used]
#[unsafe(link_section = ".underlay.identity")]
static IDENTITY: [u8; 48] = underlay::identity::HOST_LOCAL;

fn main() {
    underlay::cni::plugin::main(&host_local::HostLocal)
}
