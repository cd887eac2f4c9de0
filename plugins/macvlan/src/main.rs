fn main() {
    underlay::cni::plugin::main(&macvlan::Macvlan)
}
