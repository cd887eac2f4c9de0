//! `underlay host-access enable | disable | status | restore`: lets the host reach the
//! endpoints of a network through a shim (see `underlay_linux::shim`) without ever
//! cutting the host off. Every change is checked: whatever the host reached before
//! (its gateways) it must still reach after, or the change is undone.

use std::net::IpAddr;
use std::time::Duration;

use clap::Subcommand;
use ipnet::IpNet;
use underlay::cni::Attachment;
use underlay_linux::reach::reachable_here;
use underlay_linux::shim;
use underlay_linux::{Error, Netlink};

use crate::address_store::AddressStore;
use crate::failure::{Failure, Result};
use crate::model::{Endpoint, HostAccess, Network, now, short};
use crate::output::{Format, print_json, table};
use crate::state::{Dirs, State};

#[derive(Subcommand)]
pub enum HostAccessCommand {
    /// Let this host reach the network's endpoints.
    Enable {
        /// The network: name, ID or unique ID prefix.
        network: String,
        /// The shim's address (default: the next free one of the network). A bare
        /// address: it becomes a host address, never a second route to the subnet.
        #[arg(long)]
        address: Option<String>,
    },
    /// Remove exactly what `enable` made.
    Disable {
        /// The network: name, ID or unique ID prefix (nothing to do if not enabled).
        network: String,
    },
    /// Show host access per network.
    Status {
        /// A table for people, or JSON for scripts.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Make it all again after a reboot (the systemd unit runs this).
    Restore,
}

pub fn run(dirs: &Dirs, cmd: HostAccessCommand) -> Result<()> {
    match cmd {
        HostAccessCommand::Enable { network, address } => {
            let ha = enable(dirs, &network, address.as_deref())?;
            let addrs: Vec<String> = ha.addresses.iter().map(IpAddr::to_string).collect();
            println!("host access to {} through {} ({})", ha.network, ha.shim, addrs.join(", "));
            Ok(())
        }
        HostAccessCommand::Disable { network } => {
            disable(dirs, &network)?;
            println!("{network}");
            Ok(())
        }
        HostAccessCommand::Status { format } => status(dirs, format),
        HostAccessCommand::Restore => restore(dirs),
    }
}

/// The owner of the shim's addresses in the network's IPAM store.
pub fn owner(net: &Network) -> Attachment {
    Attachment { container_id: format!("host-access-{}", short(&net.id, 12)), ifname: "shim".into() }
}

/// Where the host goes first: its default routes' next hops, and the network's gateways.
fn gateways(nl: &mut Netlink, net_gateways: &[IpAddr]) -> Result<Vec<IpAddr>> {
    let mut out: Vec<IpAddr> =
        nl.routes()?.into_iter().filter(|r| r.unicast && r.dst.prefix_len() == 0).filter_map(|r| r.gw).collect();
    out.extend_from_slice(net_gateways);
    out.sort();
    out.dedup();
    Ok(out)
}

fn reachable(targets: &[IpAddr]) -> Vec<IpAddr> {
    targets.iter().copied().filter(|t| reachable_here(*t, Duration::from_secs(1)).unwrap_or(false)).collect()
}

/// The routes through the shim: the ranges, or one host route per endpoint address.
fn wanted(ha: &HostAccess, endpoints: &[Endpoint]) -> Vec<IpNet> {
    if !ha.ranges.is_empty() {
        return ha.ranges.clone();
    }
    endpoints
        .iter()
        .filter(|e| e.network == ha.network)
        .flat_map(|e| e.ips.iter().map(|ip| IpNet::from(ip.addr())))
        .collect()
}

pub fn add_route(nl: &mut Netlink, ha: &HostAccess, shim_index: u32, dst: IpNet) -> Result<()> {
    let Some(src) = ha.addresses.iter().find(|a| a.is_ipv4() == dst.addr().is_ipv4()) else { return Ok(()) };
    match nl.add_route(&shim::route(dst, shim_index, *src)) {
        Err(e) if e.is(underlay_linux::error::Errno::EEXIST) => Ok(()),
        other => other.map_err(Failure::from),
    }
}

pub fn del_route(nl: &mut Netlink, ha: &HostAccess, shim_index: u32, dst: IpNet) {
    if let Some(src) = ha.addresses.iter().find(|a| a.is_ipv4() == dst.addr().is_ipv4()) {
        let _ = nl.del_route(&shim::route(dst, shim_index, *src));
    }
}

pub fn enable(dirs: &Dirs, name: &str, address: Option<&str>) -> Result<HostAccess> {
    let state = State::lock(dirs)?;
    let net = state.network(name)?;
    // Named by ID or prefix: from here on, by its name.
    let name = net.name.clone();
    let name = name.as_str();
    if let Some(ha) = state.host_access(name)? {
        return Ok(ha);
    }
    if net.dhcp.is_some() {
        return Err(Failure::usage(format!(
            "network \"{name}\" gets its addresses from the LAN's DHCP server; host access needs a network with --subnet"
        )));
    }
    let requested = match address {
        Some(a) => {
            if let Some(why) = shim::refuse_address(a, &net.parent) {
                return Err(Failure::usage(why));
            }
            let ip: IpAddr =
                a.parse().map_err(|_| Failure::usage(format!("--address \"{a}\" is not an IP address")))?;
            if !net.subnets.iter().any(|s| s.subnet.contains(&ip)) {
                return Err(Failure::usage(format!("--address {ip} is not in a subnet of network \"{name}\"")));
            }
            crate::parent_addresses::refuse(&net, &[ip], "--address")?;
            crate::ip_request::check(&state, &net, &[ip], "--address")?;
            vec![ip]
        }
        None => vec![],
    };
    let store = AddressStore::of(&net, dirs)?;
    // The shim's address is drawn from ranges without the parent's own addresses.
    // One asked for may lie anywhere in the subnet, as `run --ip`.
    let alloc = if requested.is_empty() {
        AddressStore::for_allocation(&net, dirs)?
    } else {
        AddressStore::for_request(&net, dirs)?
    };
    let addresses = crate::holds::probed(&net, &alloc, &owner(&net), requested)?;
    let release = || {
        let _ = store.del(&owner(&net));
    };
    let ranges: Vec<IpNet> = net.subnets.iter().filter_map(|s| s.ip_range).collect();
    let mut ha = HostAccess {
        network: net.name.clone(),
        shim: format!("ulh-{}", short(&net.id, 8)),
        parent: net.parent.clone(),
        addresses,
        ranges,
        sysctls: vec![],
        created: now(),
    };
    let mut nl = Netlink::new()?;
    let net_gateways: Vec<IpAddr> = net.subnets.iter().filter_map(|s| s.gateway).collect();
    let routes = wanted(&ha, &state.endpoints()?);
    if let Err(e) = make(&mut nl, &mut ha, &routes, &net_gateways) {
        release();
        return Err(e);
    }
    state.save_host_access(&ha)?;
    Ok(ha)
}

/// Makes the shim of `ha` with routes to `routes`, checked: whatever the host reached
/// before (its default gateways and `net_gateways`) it must still reach after, or
/// everything made is undone. The Docker driver makes its shims through this too.
pub fn make(nl: &mut Netlink, ha: &mut HostAccess, routes: &[IpNet], net_gateways: &[IpAddr]) -> Result<()> {
    let targets = gateways(nl, net_gateways)?;
    let before = reachable(&targets);
    if let Err(e) = apply(nl, ha, routes) {
        undo(nl, ha);
        return Err(e);
    }
    let after = reachable(&before);
    let lost: Vec<String> = before.iter().filter(|t| !after.contains(t)).map(IpAddr::to_string).collect();
    if !lost.is_empty() {
        undo(nl, ha);
        return Err(Failure::system(format!(
            "host access to \"{}\" was rolled back: with the shim in place this host could no longer reach {} \
             (it could before), so the change was undone",
            ha.network,
            lost.join(", ")
        ))
        .hint(
            "a route through the shim covers that address (an --ip-range including the gateway?), and the LAN \
               does not take frames from the shim's MAC (a switch or cloud that drops unknown MACs); \
               `underlay doctor --probe` tells which",
        ));
    }
    Ok(())
}

/// Makes the shim and its routes, unchecked (`restore` after a reboot).
pub fn apply(nl: &mut Netlink, ha: &mut HostAccess, routes: &[IpNet]) -> Result<()> {
    let parent = nl
        .link_by_name(&ha.parent)?
        .ok_or_else(|| Failure::not_found(format!("parent {} does not exist", ha.parent)))?;
    let first = ha.addresses.first().copied().ok_or_else(|| Failure::system("the IPAM gave the shim no address"))?;
    let index = shim::create(nl, &ha.shim, parent.index, first)?;
    for extra in &ha.addresses[1..] {
        let host = IpNet::from(*extra);
        nl.add_address(index, host, underlay_linux::addr::AddressOptions { nodad: true, noprefixroute: true })?;
    }
    ha.sysctls = shim::stop_arp_flux(&[ha.parent.as_str(), ha.shim.as_str()])?;
    for dst in routes {
        add_route(nl, ha, index, *dst)?;
    }
    Ok(())
}

/// Removes what `apply` made: the shim (its routes go with it) and the sysctls.
pub fn undo(nl: &mut Netlink, ha: &HostAccess) -> Vec<Error> {
    let mut errors = shim::restore(&ha.sysctls);
    if let Err(e) = nl.delete_link_by_name(&ha.shim) {
        errors.push(e);
    }
    errors
}

pub fn disable(dirs: &Dirs, name: &str) -> Result<()> {
    let state = State::lock(dirs)?;
    // A network named by ID or prefix; a record whose network is gone, by its name.
    let name = match state.network(name) {
        Ok(net) => net.name,
        Err(_) if state.host_access(name)?.is_some() => name.to_string(),
        Err(e) => return Err(e),
    };
    let name = name.as_str();
    // Like `enable`, safe to repeat: nothing to remove is not an error.
    let Some(ha) = state.host_access(name)? else {
        eprintln!("underlay: host access to \"{name}\" is not enabled; nothing to do");
        return Ok(());
    };
    let errors = undo(&mut Netlink::new()?, &ha);
    if let Ok(net) = state.network(name) {
        let _ = AddressStore::of(&net, dirs)?.del(&owner(&net));
    }
    state.remove_host_access(name)?;
    if let Some(e) = errors.into_iter().next() {
        return Err(e.into());
    }
    Ok(())
}

/// What a record's shim is now: "up", "down" or "missing" (gone, as after a reboot or
/// an `ip link del`). `doctor` says the same.
pub fn shim_state(nl: &mut Netlink, ha: &HostAccess) -> &'static str {
    match nl.link_by_name(&ha.shim).ok().flatten() {
        Some(l) if l.up => "up",
        Some(_) => "down",
        None => "missing",
    }
}

/// Shows each network's host access; exit 1 when a shim is not up.
fn status(dirs: &Dirs, format: Format) -> Result<()> {
    let state = State::lock(dirs)?;
    let all = state.all_host_access()?;
    let mut nl = Netlink::new()?;
    let states: Vec<&str> = all.iter().map(|ha| shim_state(&mut nl, ha)).collect();
    match format {
        Format::Json => {
            // The record, its shim's state, and the sysctls as what they are: the
            // values saved at enable, put back by disable (not the live values).
            let out: Vec<serde_json::Value> = all
                .iter()
                .zip(&states)
                .map(|(ha, st)| {
                    let mut v = serde_json::to_value(ha).expect("records serialize");
                    let saved: Vec<serde_json::Value> =
                        ha.sysctls.iter().map(|s| serde_json::json!({"key": s.key, "saved_value": s.value})).collect();
                    v.as_object_mut().map(|o| o.remove("sysctls"));
                    v["saved_sysctls"] = serde_json::Value::Array(saved);
                    v["state"] = serde_json::json!(st);
                    v
                })
                .collect();
            print_json(&out);
        }
        Format::Table => {
            let rows = all.iter().zip(&states).map(|(ha, st)| {
                let addrs: Vec<String> = ha.addresses.iter().map(IpAddr::to_string).collect();
                let routes = if ha.ranges.is_empty() {
                    "per-endpoint".to_string()
                } else {
                    ha.ranges.iter().map(IpNet::to_string).collect::<Vec<_>>().join(",")
                };
                vec![ha.network.clone(), ha.shim.clone(), addrs.join(","), routes, st.to_string()]
            });
            table(&["NETWORK", "SHIM", "ADDRESS", "ROUTES", "STATE"], rows);
        }
    }
    let broken: Vec<String> = all
        .iter()
        .zip(&states)
        .filter(|(_, st)| **st != "up")
        .map(|(ha, st)| format!("{} ({st})", ha.network))
        .collect();
    if broken.is_empty() {
        return Ok(());
    }
    Err(Failure::new(crate::failure::exit::FAILED, format!("host access is not working for {}", broken.join(", ")))
        .hint("make the shims again: underlay host-access restore"))
}

/// Makes every enabled shim again, with its routes (after a reboot the links are gone).
pub fn restore(dirs: &Dirs) -> Result<()> {
    let state = State::lock(dirs)?;
    let endpoints = state.endpoints()?;
    let mut nl = Netlink::new()?;
    for mut ha in state.all_host_access()? {
        if nl.link_by_name(&ha.shim)?.is_none() {
            // The original sysctl values stay as first saved.
            let saved = ha.sysctls.clone();
            let routes = wanted(&ha, &endpoints);
            apply(&mut nl, &mut ha, &routes)?;
            ha.sysctls = saved;
            state.save_host_access(&ha)?;
            println!("restored host access to {}", ha.network);
        }
    }
    Ok(())
}

/// Keeps per-endpoint routes in step: called after an endpoint is attached (`added`)
/// or before it is detached.
pub fn endpoint_changed(dirs: &Dirs, ep: &Endpoint, added: bool) {
    let Ok(state) = State::lock(dirs) else { return };
    let Ok(Some(ha)) = state.host_access(&ep.network) else { return };
    if !ha.ranges.is_empty() {
        return;
    }
    let Ok(mut nl) = Netlink::new() else { return };
    let Ok(Some(link)) = nl.link_by_name(&ha.shim) else { return };
    for dst in wanted(&ha, std::slice::from_ref(ep)) {
        if added {
            if let Err(e) = add_route(&mut nl, &ha, link.index, dst) {
                eprintln!("underlay: host route to {dst}: {e}");
            }
        } else {
            del_route(&mut nl, &ha, link.index, dst);
        }
    }
}
