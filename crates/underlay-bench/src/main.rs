//! `underlay-bench`: runs our plugins and the reference plugins side by side, in the
//! same run, and prints latencies, ratios and peak memory. A command, not a test.

mod etcd_ipam;
mod host_local;
mod macvlan;
mod measure;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "underlay-bench", about = "underlay's plugins against the reference plugins, side by side")]
struct Cli {
    #[command(subcommand)]
    bench: Bench,
}

#[derive(Subcommand)]
enum Bench {
    /// host-local allocation latency with 1, 1000 and 4000 existing reservations.
    HostLocal(host_local::Args),
    /// macvlan ADD/DEL latency, concurrent ADDs, and the kernel's deletion floor.
    Macvlan(macvlan::Args),
    /// underlay-ipam on etcd: allocations per second for 1 and 10 nodes against the
    /// cluster's raw transaction rate.
    EtcdIpam(etcd_ipam::Args),
    /// (Internal) delete a link in a namespace and exit: the smallest process that
    /// can do what DEL must, for the macvlan benchmark's floor.
    #[command(hide = true)]
    DeleteLink { netns: std::path::PathBuf, ifname: String },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().bench {
        Bench::HostLocal(args) => host_local::run(args),
        Bench::Macvlan(args) => macvlan::run(args),
        Bench::EtcdIpam(args) => etcd_ipam::run(args),
        Bench::DeleteLink { netns, ifname } => macvlan::delete_link(&netns, &ifname),
    }
}
