fn main() {
    underlay::cni::plugin::main(&host_local::HostLocal)
}
