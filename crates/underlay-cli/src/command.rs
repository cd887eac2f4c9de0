//! The command line of `underlay` and what each command runs.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use underlay::MacAddr;

use crate::failure::{self, Failure, exit};
use crate::output::ListArgs;
use crate::state::{self, Dirs};
use crate::{docker_plugin, doctor, endpoint, exited, gc, host_access, ipam, lab, network, run, show, stop};

#[derive(Parser)]
#[command(
    name = "underlay",
    version,
    about = "Containers straight on the LAN: macvlan networking, checked on the real kernel"
)]
pub struct Cli {
    /// Where networks, endpoints, address reservations and logs are kept.
    #[arg(
        long,
        global = true,
        env = "UNDERLAY_STATE_DIR",
        default_value = "/var/lib/underlay",
        value_name = "DIR",
        help_heading = "Global options"
    )]
    state_dir: PathBuf,
    /// Where the namespaces `run` makes are pinned.
    #[arg(
        long,
        global = true,
        env = "UNDERLAY_RUN_DIR",
        default_value = "/run/underlay",
        value_name = "DIR",
        help_heading = "Global options"
    )]
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
    /// Stop commands started by `run` (SIGTERM, then SIGKILL after --time seconds) and
    /// remove their endpoints and logs.
    Stop {
        /// Endpoints: name, ID or unique ID prefix.
        #[arg(required = true, value_name = "ENDPOINT")]
        names: Vec<String>,
        /// Seconds to wait after SIGTERM before SIGKILL.
        #[arg(short, long, default_value_t = 10, value_name = "SECONDS")]
        time: u64,
    },
    /// Remove exited endpoints (kept by `run -d` for `ps -a` and `logs`).
    Rm {
        /// Endpoints: name, ID or unique ID prefix.
        #[arg(required = true, value_name = "ENDPOINT")]
        names: Vec<String>,
    },
    /// Show what a detached command (`run -d`) wrote to stdout and stderr.
    Logs {
        /// The endpoint: name, ID or unique ID prefix.
        #[arg(value_name = "ENDPOINT")]
        name: String,
    },
    /// Attach a network namespace made by someone else.
    #[command(override_usage = "underlay attach [OPTIONS] <NETWORK> <--netns <NETNS>|--pid <PID>>")]
    Attach {
        /// The network: name, ID or unique ID prefix.
        network: String,
        /// The namespace, as a path (/run/netns/x, /proc/PID/ns/net).
        #[arg(long, conflicts_with = "pid", required_unless_present = "pid")]
        netns: Option<PathBuf>,
        /// The namespace of this process.
        #[arg(long)]
        pid: Option<u32>,
        /// Address to use (one per address family; default: the next free one).
        #[arg(long = "ip", value_name = "IP")]
        ips: Vec<IpAddr>,
        /// MAC address of the endpoint (macvlan; default: random).
        #[arg(long = "mac-address", value_name = "MAC")]
        mac: Option<MacAddr>,
        /// A name for the endpoint (default: ep-<id>).
        #[arg(long)]
        name: Option<String>,
    },
    /// Detach endpoints made by `attach`.
    Detach {
        /// Endpoints: name, ID or unique ID prefix.
        #[arg(required = true, value_name = "ENDPOINT")]
        names: Vec<String>,
    },
    /// List endpoints.
    Ps {
        /// Show exited endpoints too (`run -d` commands that ended, with their code).
        #[arg(short, long)]
        all: bool,
        #[command(flatten)]
        list: ListArgs,
    },
    /// Show endpoints in detail (JSON).
    Inspect {
        /// Endpoints: name, ID or unique ID prefix.
        #[arg(required = true, value_name = "ENDPOINT")]
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
        /// `underlay-lab`'s subcommand and options (`underlay lab --help` lists them).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<std::ffi::OsString>,
    },
    /// Serve Docker's network and IPAM driver API (runs `underlay-docker-plugin`).
    #[command(name = "docker-plugin", disable_help_flag = true)]
    DockerPlugin {
        /// `underlay-docker-plugin`'s options (`underlay docker-plugin --help` lists them).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<std::ffi::OsString>,
    },
    /// (Internal) look after a detached `run`.
    #[command(name = "__keep", hide = true)]
    Keep {
        /// The endpoint's ID.
        id: String,
    },
}

impl Cli {
    /// Parses the command line; where a Docker habit made it wrong, says what
    /// underlay's shape is (exit 2, as for any bad command line).
    pub fn parse_with_hints() -> Cli {
        let args: Vec<String> = std::env::args().collect();
        Cli::try_parse_from(&args).unwrap_or_else(|e| {
            use clap::error::ErrorKind::{DisplayHelp, DisplayHelpOnMissingArgumentOrSubcommand, DisplayVersion};
            if matches!(e.kind(), DisplayHelp | DisplayVersion | DisplayHelpOnMissingArgumentOrSubcommand) {
                e.exit();
            }
            let _ = e.print();
            // `run` whose command came without `--` (clap then takes it for an argument).
            if args.iter().any(|a| a == "run") && !args.iter().any(|a| a == "--") {
                eprintln!("\nhint: put the command after `--`, e.g. underlay run --network NET -- CMD [ARGS]");
            }
            std::process::exit(e.exit_code());
        })
    }
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
        Command::Stop { names, time } => stop::stop(&dirs, &names, Duration::from_secs(time)),
        Command::Rm { names } => exited::rm(&dirs, &names),
        Command::Logs { name } => exited::logs(&dirs, &name),
        Command::Attach { network, netns, pid, ips, mac, name } => {
            let netns = netns.unwrap_or_else(|| PathBuf::from(format!("/proc/{}/ns/net", pid.unwrap_or_default())));
            run::attach_existing(&dirs, run::AttachArgs { network, netns, ips, mac, name, pid })
                .map(|e| println!("{}", e.id))
        }
        Command::Detach { names } => detach(&dirs, &names),
        Command::Ps { all, list } => show::ps(&dirs, all, &list),
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
    e.eprint();
    ExitCode::from(e.code)
}

fn detach(dirs: &Dirs, names: &[String]) -> failure::Result<()> {
    failure::each(names, |name| {
        let ep = state::State::lock(dirs)?.endpoint(name)?;
        if !ep.command.is_empty() {
            return Err(Failure::usage(format!("\"{name}\" runs a command; use `underlay stop {name}`")));
        }
        endpoint::detach(dirs, &ep)?;
        println!("{name}");
        Ok(())
    })
}
