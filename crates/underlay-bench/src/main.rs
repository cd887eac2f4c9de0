//! `underlay-bench`: runs our plugins and the reference plugins side by side, in the
//! same run, and prints latencies, ratios and peak memory. A command, not a test.

mod containerd;
mod cri;
mod docker;
mod etcd_ipam;
mod floor;
mod host_local;
mod ipvlan;
mod macvlan;
mod measure;
mod podman;
mod scale;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "underlay-bench", version, about = "underlay's plugins against the reference plugins, side by side")]
struct Cli {
    /// A few iterations of everything: proves the benchmark runs, measures nothing
    /// worth reading (a test runs each benchmark this way).
    #[arg(long, global = true)]
    quick: bool,
    #[command(subcommand)]
    bench: Bench,
}

#[derive(Subcommand)]
enum Bench {
    /// host-local allocation latency with 1, 1000 and 4000 existing reservations.
    HostLocal(host_local::Args),
    /// ipvlan ADD/DEL latency and peak memory against the reference (needs ipvlan:
    /// `scripts/kernel-lane --bench 'underlay-bench ipvlan'`).
    Ipvlan(ipvlan::Args),
    /// macvlan ADD/DEL latency, concurrent ADDs, and the kernel's deletion floor.
    Macvlan(macvlan::Args),
    /// podman run --rm with our plugins, the reference plugins and netavark, and the floor.
    Podman(podman::Args),
    /// containerd CRI RunPodSandbox -> StopPodSandbox -> RemovePodSandbox with our plugins
    /// and the reference plugins, against a sandbox in the node's network, and the floor.
    Cri(cri::Args),
    /// docker run --rm with our Docker driver against Docker's built-in macvlan, and
    /// the driver daemon's peak memory.
    Docker(docker::Args),
    /// macvlan ADD/DEL latency with 0, 250 and 1,000 live endpoints on one parent.
    Scale(scale::Args),
    /// underlay-ipam on etcd: allocations per second for 1 and 10 nodes against the
    /// cluster's raw transaction rate.
    EtcdIpam(etcd_ipam::Args),
    /// (Internal) delete a link in a namespace and exit: the smallest process that
    /// can do what DEL must, for the macvlan benchmark's floor.
    #[command(hide = true)]
    DeleteLink { netns: std::path::PathBuf, ifname: String },
    /// (Internal) connect to etcd as underlay-ipam does, make one claim transaction and
    /// exit: the floor under an ADD that is a process, for the etcd-ipam benchmark.
    #[command(hide = true)]
    EtcdClaim { etcd: String, key: String },
    /// (Internal) make a macvlan (ipvlan) in a namespace the way ADD does and exit: the floor
    /// under ADD.
    #[command(hide = true)]
    AddLink {
        netns: std::path::PathBuf,
        master: String,
        ifname: String,
        address: ipnet::IpNet,
        /// An l2 ipvlan instead of a macvlan.
        #[arg(long)]
        ipvlan: bool,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let quick = cli.quick;
    if !matches!(cli.bench, Bench::DeleteLink { .. } | Bench::AddLink { .. } | Bench::EtcdClaim { .. }) {
        // Ctrl-C stops a benchmark at its next step; returning from `run` drops its
        // world, daemons and temporary files (a second Ctrl-C ends it at once).
        underlay_linux::interrupt::catch();
    }
    let result = run(cli.bench, quick);
    if underlay_linux::interrupt::check().is_err() {
        eprintln!("underlay-bench: interrupted; what it had made is removed");
        std::process::exit(130);
    }
    result
}

fn run(bench: Bench, quick: bool) -> anyhow::Result<()> {
    match bench {
        Bench::HostLocal(args) => host_local::run(if quick { args.quick() } else { args }),
        Bench::Ipvlan(args) => ipvlan::run(if quick { args.quick() } else { args }),
        Bench::Macvlan(args) => macvlan::run(if quick { args.quick() } else { args }),
        Bench::EtcdIpam(args) => etcd_ipam::run(if quick { args.quick() } else { args }),
        Bench::Scale(args) => scale::run(if quick { args.quick() } else { args }),
        Bench::Cri(args) => cri::run(if quick { args.quick() } else { args }),
        Bench::Docker(args) => docker::run(if quick { args.quick() } else { args }),
        Bench::Podman(args) => podman::run(if quick { args.quick() } else { args }),
        Bench::EtcdClaim { etcd, key } => etcd_ipam::claim(&etcd, &key),
        Bench::DeleteLink { netns, ifname } => floor::delete_link(&netns, &ifname),
        Bench::AddLink { netns, master, ifname, address, ipvlan } => {
            floor::add_link(&netns, &master, &ifname, address, ipvlan)
        }
    }
}
