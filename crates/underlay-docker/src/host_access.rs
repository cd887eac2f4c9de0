//! `-o host_access=ADDRESS|auto`: the same checked shim as `underlay host-access`
//! (`underlay_cli::host_access`), made with the network, removed with it, made again
//! at plugin start, with one host route per endpoint while it is joined.

use std::net::IpAddr;

use ipnet::IpNet;
use underlay::cni::Attachment;
use underlay_cli::host_access as cli;
use underlay_cli::model::HostAccess;
use underlay_linux::{Link, Netlink};

use crate::api::CreateNetwork;
use crate::ipam::Ipam;
use crate::options::{HostAccessAsk, NetworkSpec};
use crate::records::{EndpointRecord, NetworkRecord};

/// Shims of Docker networks start with this (the CLI's are `ulh-`).
pub const SHIM_PREFIX: &str = "uld";

/// The owner of the shim's address in the underlay IPAM store.
pub fn owner(net_id: &str) -> Attachment {
    Attachment {
        container_id: format!("docker-host-access-{}", &net_id[..net_id.len().min(12)]),
        ifname: String::new(),
    }
}

/// Docker's `--aux-address` values (`a=IP` or `a=IP/LEN`): addresses its IPAM skips.
fn aux_addresses(req: &CreateNetwork) -> Vec<IpAddr> {
    let datas = req.ipv4_data.iter().chain(req.ipv6_data.iter()).flatten();
    let values = datas.flat_map(|d| d.aux_addresses.iter().flatten().map(|(_, v)| v.clone()));
    values.filter_map(|v| v.split('/').next().and_then(|a| a.parse().ok())).collect()
}

/// Makes the shim for a network being created, with the pool ID our IPAM holds its
/// address in; everything is undone on failure.
pub fn make(
    nl: &mut Netlink,
    req: &CreateNetwork,
    spec: &NetworkSpec,
    parent: &Link,
    ipam: &Ipam,
) -> Result<Option<(HostAccess, Option<String>)>, String> {
    let Some(ask) = spec.host_access else { return Ok(None) };
    let id = &req.network_id;
    let own_ipam = NetworkSpec::own_ipam(req);
    let (subnet, want) = match ask {
        HostAccessAsk::Address(ip) => {
            let pool = spec.pools.iter().find(|p| p.subnet.contains(&ip)).ok_or_else(|| {
                format!(
                    "-o host_access={ip}: {ip} is not in a subnet of this network; give one of its addresses or auto"
                )
            })?;
            if !own_ipam && !aux_addresses(req).contains(&ip) {
                return Err(format!(
                    "-o host_access={ip}: Docker's own IPAM could hand {ip} to a container as well; add \
                     --aux-address shim={ip} so it never does (or use --ipam-driver underlay)"
                ));
            }
            (pool.subnet, Some(ip))
        }
        HostAccessAsk::Auto => {
            if !own_ipam {
                return Err("-o host_access=auto needs --ipam-driver underlay to pick the shim's address; with \
                            Docker's own IPAM give -o host_access=ADDRESS and --aux-address shim=ADDRESS"
                    .into());
            }
            let pool = spec.pools.iter().find(|p| p.subnet.addr().is_ipv4()).or(spec.pools.first());
            (pool.ok_or("-o host_access=auto: the network has no subnet")?.subnet, None)
        }
    };
    let (ip, pool) = if own_ipam {
        let (ip, pool) = ipam.hold(subnet, want, &owner(id), spec.prober(&parent.name).as_ref())?;
        (ip, Some(pool))
    } else {
        let own = crate::host_addresses::within(&subnet)?;
        let ip = want.expect("checked above: an address is given with Docker's IPAM");
        crate::host_addresses::refuse(ip, &own, "-o host_access=")?;
        (ip, None)
    };
    let mut ha = HostAccess {
        network: id[..id.len().min(12)].to_string(),
        shim: format!("{SHIM_PREFIX}{}", &id[..id.len().min(12)]),
        parent: parent.name.clone(),
        addresses: vec![ip],
        ranges: vec![],
        sysctls: vec![],
        created: underlay_cli::model::now(),
    };
    let gateways: Vec<IpAddr> = spec.pools.iter().filter_map(|p| p.gateway).collect();
    if let Err(e) = cli::make(nl, &mut ha, &[], &gateways) {
        if let Some(pool) = &pool {
            let _ = ipam.release(pool, ip);
        }
        return Err(format!("-o host_access: {e}"));
    }
    Ok(Some((ha, pool)))
}

/// Removes the shim (its routes go with it), restores the sysctls and frees the address.
pub fn remove(nl: &mut Netlink, net: &NetworkRecord, ipam: &Ipam) -> Vec<String> {
    let Some(ha) = &net.host_access else { return Vec::new() };
    let mut errors: Vec<String> = cli::undo(nl, ha).into_iter().map(|e| format!("remove host access: {e}")).collect();
    if let Some(pool) = &net.shim_pool {
        for ip in &ha.addresses {
            if let Err(e) = ipam.release(pool, *ip) {
                errors.push(e);
            }
        }
    }
    errors
}

/// Host routes through the shim to a joined endpoint's addresses (`add`), or away.
pub fn route(nl: &mut Netlink, net: &NetworkRecord, ep: &EndpointRecord, add: bool) -> Result<(), String> {
    let Some(ha) = &net.host_access else { return Ok(()) };
    let shim = nl.link_by_name(&ha.shim).map_err(|e| e.to_string())?;
    let Some(shim) = shim else {
        return if add {
            Err(format!("host-access shim {} is missing; restart the plugin to make it again", ha.shim))
        } else {
            Ok(())
        };
    };
    for a in &ep.addresses {
        let dst = IpNet::from(a.addr());
        if add {
            cli::add_route(nl, ha, shim.index, dst).map_err(|e| format!("route {dst} through {}: {e}", ha.shim))?;
        } else {
            cli::del_route(nl, ha, shim.index, dst);
        }
    }
    Ok(())
}

/// At start: a shim that is gone (after a reboot) is made again with its routes.
pub fn restore(nl: &mut Netlink, net: &NetworkRecord, endpoints: &[EndpointRecord]) -> Option<String> {
    let ha = net.host_access.as_ref()?;
    if nl.link_by_name(&ha.shim).ok()?.is_some() {
        return None;
    }
    // The sysctls' original values stay as first recorded.
    let mut made = ha.clone();
    let routes: Vec<IpNet> = endpoints
        .iter()
        .filter(|e| e.network == net.id)
        .flat_map(|e| e.addresses.iter().map(|a| IpNet::from(a.addr())))
        .collect();
    Some(match cli::apply(nl, &mut made, &routes) {
        Ok(()) => format!("made host-access shim {} again", ha.shim),
        Err(e) => {
            let _ = nl.delete_link_by_name(&ha.shim);
            format!("could not make host-access shim {} again: {e}", ha.shim)
        }
    })
}

/// At start: a shim no network record names is a leftover of a CreateNetwork that died
/// between making it and writing the record; it goes (its sysctls' old values were
/// never recorded, so they stay as host access set them).
pub fn leftovers(nl: &mut Netlink, networks: &[NetworkRecord]) -> Vec<String> {
    let known: Vec<&str> = networks.iter().filter_map(|n| n.host_access.as_ref()).map(|h| h.shim.as_str()).collect();
    let mut done = Vec::new();
    for link in nl.links().unwrap_or_default() {
        if link.name.starts_with(SHIM_PREFIX)
            && link.is_macvlan()
            && !known.contains(&link.name.as_str())
            && nl.delete_link(link.index).is_ok()
        {
            done.push(format!("removed leftover host-access shim {}", link.name));
        }
    }
    done
}
