//! `underlay network create | ls | inspect | rm | prune | holds | release-hold`, with Docker's flags: the
//! command and the verbs on existing networks (create is `network_create`).

use clap::Subcommand;
use underlay_linux::Netlink;

use crate::failure::{Failure, Result};
use crate::model::short;
use crate::network_create::{CreateArgs, create, release_network};
use crate::output::{Format, print_json, table};
use crate::state::{Dirs, State};

#[derive(Subcommand)]
pub enum NetworkCommand {
    /// Create a network on a parent interface (Docker's `network create`).
    Create(Box<CreateArgs>),
    /// List networks.
    #[command(alias = "list")]
    Ls {
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Show networks in detail (JSON).
    Inspect {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove networks; refused while a network has endpoints.
    #[command(alias = "remove")]
    Rm {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove every network without endpoints.
    Prune {
        /// Do not ask.
        #[arg(short, long)]
        force: bool,
    },
    /// List addresses held for devices found using them on the LAN (conflict detection).
    Holds {
        name: String,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Release addresses held for devices on the LAN.
    ReleaseHold {
        name: String,
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
        NetworkCommand::Ls { format } => ls(dirs, format),
        NetworkCommand::Inspect { names } => inspect(dirs, &names),
        NetworkCommand::Rm { names } => {
            for name in names {
                remove(&State::lock(dirs)?, &name)?;
                println!("{name}");
            }
            Ok(())
        }
        NetworkCommand::Prune { force } => prune(dirs, force),
        NetworkCommand::Holds { name, format } => crate::holds::list(dirs, &name, format),
        NetworkCommand::ReleaseHold { name, ips, expired, all } => {
            crate::holds::release(dirs, &name, &ips, expired, all)
        }
    }
}

pub fn remove(state: &State, name: &str) -> Result<()> {
    let net = state.network(name)?;
    let users: Vec<String> = state.endpoints()?.into_iter().filter(|e| e.network == name).map(|e| e.name).collect();
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

fn ls(dirs: &Dirs, format: Format) -> Result<()> {
    let state = State::lock(dirs)?;
    let (nets, eps) = (state.networks()?, state.endpoints()?);
    match format {
        Format::Json => print_json(&crate::state::with_damaged(&nets, state.damaged()?, "networks")),
        Format::Table => {
            let rows = nets.iter().map(|n| {
                let subnets: Vec<String> = n.subnets.iter().map(|s| s.subnet.to_string()).collect();
                vec![
                    n.name.clone(),
                    short(&n.id, 12).to_string(),
                    n.driver.as_str().to_string(),
                    n.parent.clone(),
                    n.mode.to_string(),
                    subnets.join(", "),
                    eps.iter().filter(|e| e.network == n.name).count().to_string(),
                ]
            });
            table(&["NAME", "ID", "DRIVER", "PARENT", "MODE", "SUBNETS", "ENDPOINTS"], rows);
        }
    }
    Ok(())
}

fn inspect(dirs: &Dirs, names: &[String]) -> Result<()> {
    let state = State::lock(dirs)?;
    let eps = state.endpoints()?;
    let mut out = Vec::new();
    for name in names {
        let n = state.network(name)?;
        let mut v = serde_json::to_value(&n).expect("serializes");
        let members: Vec<serde_json::Value> = eps
            .iter()
            .filter(|e| &e.network == name)
            .map(|e| serde_json::json!({"name": e.name, "id": e.id, "ips": e.ips, "mac": e.mac}))
            .collect();
        v["endpoints"] = serde_json::Value::Array(members);
        out.push(v);
    }
    print_json(&out);
    Ok(())
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
