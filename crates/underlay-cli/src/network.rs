//! `underlay network create | ls | inspect | rm | prune | holds | release-hold`, with
//! Docker's flags: the command and the verbs on existing networks (create is
//! `network_create`; holds are `holds`).

use clap::Subcommand;
use underlay_linux::Netlink;

use crate::failure::{Failure, Result, each};
use crate::model::{Network, Phase, short};
use crate::network_create::{CreateArgs, create, release_network};
use crate::output::{ListArgs, Listing, print_json};
use crate::state::{Dirs, State};

#[derive(Subcommand)]
pub enum NetworkCommand {
    /// Create a network on a parent interface (Docker's `network create`).
    Create(Box<CreateArgs>),
    /// List networks.
    #[command(alias = "list")]
    Ls {
        #[command(flatten)]
        list: ListArgs,
    },
    /// Show networks in detail (JSON).
    Inspect {
        /// Networks: name, ID or unique ID prefix.
        #[arg(required = true, value_name = "NETWORK")]
        names: Vec<String>,
    },
    /// Remove networks; refused while a network has endpoints.
    #[command(alias = "remove")]
    Rm {
        /// Networks: name, ID or unique ID prefix.
        #[arg(required = true, value_name = "NETWORK")]
        names: Vec<String>,
    },
    /// Docker's `network connect`: underlay's is `underlay attach`.
    #[command(hide = true)]
    Connect {
        /// Ignored: the command only points to `attach`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Docker's `network disconnect`: underlay's is `underlay detach`.
    #[command(hide = true)]
    Disconnect {
        /// Ignored: the command only points to `detach`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Remove every network without endpoints.
    Prune {
        /// Do not ask.
        #[arg(short, long)]
        force: bool,
    },
    /// List addresses held for devices found using them on the LAN (conflict detection).
    Holds {
        /// The network.
        #[arg(value_name = "NETWORK")]
        name: String,
        /// Output: a table, or JSON (ip, mac, until in seconds since the epoch).
        #[arg(long, value_enum, default_value_t = crate::output::Format::Table)]
        format: crate::output::Format,
    },
    /// Release addresses held for devices on the LAN.
    ReleaseHold {
        /// The network.
        #[arg(value_name = "NETWORK")]
        name: String,
        /// The held addresses to release.
        #[arg(value_name = "IP")]
        ips: Vec<std::net::IpAddr>,
        /// Every hold that has expired.
        #[arg(long)]
        expired: bool,
        /// Every hold.
        #[arg(long)]
        all: bool,
    },
}

pub fn run(dirs: &Dirs, cmd: NetworkCommand) -> Result<()> {
    match cmd {
        NetworkCommand::Create(args) => {
            let n = create(dirs, *args)?;
            println!("{}", n.id);
            Ok(())
        }
        NetworkCommand::Ls { list } => ls(dirs, &list),
        NetworkCommand::Inspect { names } => inspect(dirs, &names),
        NetworkCommand::Rm { names } => each(&names, |name| {
            remove(&State::lock(dirs)?, name)?;
            println!("{name}");
            Ok(())
        }),
        NetworkCommand::Connect { .. } => Err(Failure::usage("underlay has no `network connect`")
            .hint("attach a namespace with: underlay attach NETWORK --netns PATH (or --pid PID)")),
        NetworkCommand::Disconnect { .. } => Err(Failure::usage("underlay has no `network disconnect`")
            .hint("detach an endpoint with: underlay detach ENDPOINT")),
        NetworkCommand::Prune { force } => prune(dirs, force),
        NetworkCommand::Holds { name, format } => crate::holds::list(dirs, &name, format),
        NetworkCommand::ReleaseHold { name, ips, expired, all } => {
            crate::holds::release(dirs, &name, &ips, expired, all)
        }
    }
}

pub fn remove(state: &State, name: &str) -> Result<()> {
    let net = state.network(name)?;
    let name = net.name.as_str();
    // Exited endpoints hold nothing: they do not keep the network.
    let users: Vec<String> = state
        .endpoints()?
        .into_iter()
        .filter(|e| e.network == name && e.phase != Phase::Exited)
        .map(|e| e.name)
        .collect();
    if state.host_access(name)?.is_some() && users.is_empty() {
        return Err(Failure::conflict(format!("host access to \"{name}\" is enabled"))
            .hint(format!("disable it first: underlay host-access disable {name}")));
    }
    if !users.is_empty() {
        return Err(Failure::conflict(format!("network \"{name}\" has endpoints: {}", users.join(", ")))
            .hint("stop them (`underlay stop NAME`) or detach them (`underlay detach NAME`) first"));
    }
    release_network(state.dirs(), &mut Netlink::new()?, &net);
    state.remove_network(name)
}

/// The columns of `network ls`: template field and header.
const COLUMNS: &[(&str, &str)] = &[
    ("Name", "NAME"),
    ("ID", "ID"),
    ("Driver", "DRIVER"),
    ("Parent", "PARENT"),
    ("Mode", "MODE"),
    ("Subnets", "SUBNETS"),
    ("Endpoints", "ENDPOINTS"),
    ("HostAccess", "HOST-ACCESS"),
];

fn ls(dirs: &Dirs, list: &ListArgs) -> Result<()> {
    let state = State::lock(dirs)?;
    let (nets, eps) = (state.networks()?, state.endpoints()?);
    let count = |n: &Network| eps.iter().filter(|e| e.network == n.name && e.phase != Phase::Exited).count();
    let mut host_access = Vec::new();
    for n in &nets {
        host_access.push(if state.host_access(&n.name)?.is_some() { "on" } else { "off" });
    }
    let rows = nets
        .iter()
        .zip(&host_access)
        .map(|(n, ha)| {
            let subnets: Vec<String> = n.subnets.iter().map(|s| s.subnet.to_string()).collect();
            vec![
                n.name.clone(),
                short(&n.id, 12).to_string(),
                n.driver.as_str().to_string(),
                n.parent.clone(),
                // One word per cell, so a plain table splits on blanks.
                n.mode.to_string().replace(' ', "/"),
                subnets.join(","),
                count(n).to_string(),
                ha.to_string(),
            ]
        })
        .collect();
    Listing { columns: COLUMNS, rows }.print(list, || {
        // The record, plus what the table shows; damaged records are listed too.
        let mut out = crate::state::with_damaged(&nets, state.damaged().unwrap_or_default(), "networks");
        for ((v, n), ha) in out.iter_mut().zip(&nets).zip(&host_access) {
            v["endpoint_count"] = serde_json::json!(count(n));
            v["host_access"] = serde_json::json!(ha);
        }
        serde_json::Value::Array(out)
    })
}

/// Prints the networks named (those found, as one JSON array, each with its
/// endpoints); each one not found is reported.
fn inspect(dirs: &Dirs, names: &[String]) -> Result<()> {
    let state = State::lock(dirs)?;
    let eps = state.endpoints()?;
    let mut out = Vec::new();
    let result = each(names, |name| {
        let n = state.network(name)?;
        let mut v = serde_json::to_value(&n).expect("serializes");
        let members: Vec<serde_json::Value> = eps
            .iter()
            .filter(|e| e.network == n.name && e.phase != Phase::Exited)
            .map(|e| serde_json::json!({"name": e.name, "id": e.id, "ips": e.ips, "mac": e.mac}))
            .collect();
        v["endpoints"] = serde_json::Value::Array(members);
        v["host_access"] = serde_json::json!(if state.host_access(&n.name)?.is_some() { "on" } else { "off" });
        out.push(v);
        Ok(())
    });
    if !out.is_empty() {
        print_json(&out);
    }
    result
}

fn prune(dirs: &Dirs, force: bool) -> Result<()> {
    if !force {
        use std::io::IsTerminal;
        if !std::io::stdin().is_terminal() {
            return Err(Failure::usage("network prune removes every network without endpoints; add --force"));
        }
        eprint!("Remove every network without endpoints? [y/N] ");
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        if !answer.trim().eq_ignore_ascii_case("y") {
            return Ok(());
        }
    }
    let state = State::lock(dirs)?;
    let used: Vec<String> = state.endpoints()?.into_iter().map(|e| e.network).collect();
    for n in state.networks()? {
        if !used.contains(&n.name) && state.host_access(&n.name)?.is_none() {
            remove(&state, &n.name)?;
            println!("{}", n.name);
        }
    }
    Ok(())
}
