//! The command line of `underlay` and what each command runs.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use underlay::MacAddr;

use crate::failure::{self, Failure, exit};
use crate::output::Format;
use crate::state::{self, Dirs};
use crate::{docker_plugin, doctor, endpoint, gc, host_access, ipam, lab, network, run, show};

#[derive(Parser)]
#[command(
    name = "underlay",
    version,
    about = "Containers straight on the LAN: macvlan networking, checked on the real kernel"
)]
pub struct Cli {
    /// Where networks, endpoints and address reservations are kept.
    #[arg(long, global = true, env = "UNDERLAY_STATE_DIR", default_value = "/var/lib/underlay")]
    state_dir: PathBuf,
    /// Where the namespaces `run` makes are pinned.
    #[arg(long, global = true, env = "UNDERLAY_RUN_DIR", default_value = "/run/underlay")]
    run_dir: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Manage networks.
    #[command(subcommand)]
    Network(network::NetworkCommand),
    /// Run a command in a new network namespace attached to a network.
    Run(run::RunArgs),
    /// Stop commands started by `run` (SIGTERM, then SIGKILL after --time seconds).
    Stop {
        #[arg(required = true)]
        names: Vec<String>,
        #[arg(short, long, default_value_t = 10)]
        time: u64,
    },
    /// Attach a network namespace made by someone else.
    Attach {
        network: String,
        /// The namespace, as a path (/run/netns/x, /proc/PID/ns/net).
        #[arg(long, conflicts_with = "pid", required_unless_present = "pid")]
        netns: Option<PathBuf>,
        /// The namespace of this process.
        #[arg(long)]
        pid: Option<u32>,
        #[arg(long = "ip")]
        ips: Vec<IpAddr>,
        #[arg(long = "mac-address")]
        mac: Option<MacAddr>,
        #[arg(long)]
        name: Option<String>,
    },
    /// Detach endpoints made by `attach`.
    Detach {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// List endpoints.
    Ps {
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Show endpoints in detail (JSON).
    Inspect {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Release what crashed or killed `underlay` processes left behind.
    Gc,
    /// Explain what stands between a network's endpoints and the LAN (exit 1 on errors).
    Doctor(doctor::DoctorArgs),
    /// Let this host reach a network's endpoints, safely.
    #[command(subcommand)]
    HostAccess(host_access::HostAccessCommand),
    /// The cluster-wide address store (underlay-ipam on etcd): list, release a dead node.
    #[command(subcommand)]
    Ipam(ipam::IpamCommand),
    /// Build the seed's LAN in network namespaces and check it (runs `underlay-lab`).
    #[command(disable_help_flag = true)]
    Lab {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<std::ffi::OsString>,
    },
    /// Serve Docker's network and IPAM driver API (runs `underlay-docker-plugin`).
    #[command(name = "docker-plugin", disable_help_flag = true)]
    DockerPlugin {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<std::ffi::OsString>,
    },
    /// (Internal) look after a detached `run`.
    #[command(name = "__keep", hide = true)]
    Keep { id: String },
}

/// Runs the command `cli` names; the exit code says how it went.
pub fn dispatch(cli: Cli) -> ExitCode {
    // This program is underlay: its host-local is this code, whatever is on CNI_PATH.
    underlay::ipam::delegate::host_local_in_process();
    // And so is its cluster-wide IPAM.
    underlay::ipam::delegate::link("underlay-ipam", &underlay_ipam::UnderlayIpam);
    // And its DHCP client side (the leases themselves live in the dhcp daemon).
    underlay::ipam::delegate::link("dhcp", &dhcp::Dhcp);
    let dirs = Dirs { state: cli.state_dir, run: cli.run_dir };
    let result = match cli.command {
        Command::Run(args) => return ExitCode::from(run::run(&dirs, args)),
        Command::Keep { id } => {
            return match state::State::lock(&dirs).and_then(|s| s.endpoint(&id)) {
                Ok(ep) => ExitCode::from(run::keep(&dirs, ep)),
                Err(e) => report(e),
            };
        }
        Command::Network(cmd) => network::run(&dirs, cmd),
        Command::Stop { names, time } => run::stop(&dirs, &names, Duration::from_secs(time)),
        Command::Attach { network, netns, pid, ips, mac, name } => {
            let netns = netns.unwrap_or_else(|| PathBuf::from(format!("/proc/{}/ns/net", pid.unwrap_or_default())));
            run::attach_existing(&dirs, run::AttachArgs { network, netns, ips, mac, name, pid })
                .map(|e| println!("{}", e.id))
        }
        Command::Detach { names } => detach(&dirs, &names),
        Command::Ps { format } => show::ps(&dirs, format),
        Command::Inspect { names } => show::inspect(&dirs, &names),
        Command::Gc => gc::gc(&dirs),
        Command::HostAccess(cmd) => host_access::run(&dirs, cmd),
        Command::Ipam(cmd) => ipam::run(&dirs, cmd),
        Command::Doctor(args) => match doctor::doctor(&dirs, args) {
            Ok(true) => Ok(()),
            Ok(false) => return ExitCode::from(exit::FAILED),
            Err(e) => Err(e),
        },
        Command::Lab { args } => Err(lab::exec(&dirs, &args)),
        Command::DockerPlugin { args } => Err(docker_plugin::exec(&args)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => report(e),
    }
}

fn report(e: Failure) -> ExitCode {
    eprintln!("underlay: {e}");
    ExitCode::from(e.code)
}

fn detach(dirs: &Dirs, names: &[String]) -> failure::Result<()> {
    for name in names {
        let ep = state::State::lock(dirs)?.endpoint(name)?;
        if !ep.command.is_empty() {
            return Err(Failure::usage(format!("\"{name}\" runs a command; use `underlay stop {name}`")));
        }
        endpoint::detach(dirs, &ep)?;
        println!("{name}");
    }
    Ok(())
}
