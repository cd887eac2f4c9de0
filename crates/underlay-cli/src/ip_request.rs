//! An address asked for with `--ip`: like Docker, anywhere in the network's subnet
//! (not only its `--ip-range`), but never one that is spoken for. Each refusal names
//! who holds the address, which the allocator alone could not say.

use std::net::IpAddr;

use serde_json::Value;

use crate::failure::{Failure, Result};
use crate::model::{Network, short};
use crate::state::State;

/// Refuses requested addresses outside the subnets or held by the gateway, an aux
/// address, the host-access shim or another endpoint (`flag` names the option).
pub fn check(state: &State, net: &Network, requested: &[IpAddr], flag: &str) -> Result<()> {
    if requested.is_empty() {
        return Ok(());
    }
    let endpoints = state.endpoints()?;
    let shim = state.host_access(&net.name)?;
    for ip in requested {
        let Some(subnet) = net.subnets.iter().find(|s| s.subnet.contains(ip)) else {
            let subnets: Vec<String> = net.subnets.iter().map(|s| s.subnet.to_string()).collect();
            return Err(Failure::usage(format!(
                "{flag} {ip} is outside network \"{}\"'s subnet {}",
                net.name,
                subnets.join(", ")
            )));
        };
        let taken = |holder: String| Failure::conflict(format!("{flag} {ip} is taken: it is {holder}"));
        if *ip == subnet.subnet.network() || (ip.is_ipv4() && *ip == subnet.subnet.broadcast()) {
            return Err(Failure::usage(format!(
                "{flag} {ip} is the address of subnet {} itself (or its broadcast), not a host's",
                subnet.subnet
            )));
        }
        if subnet.gateway == Some(*ip) {
            return Err(taken(format!("network \"{}\"'s gateway", net.name)));
        }
        if let Some((name, _)) = subnet.aux_addresses.iter().find(|(_, a)| *a == ip) {
            return Err(taken(format!("network \"{}\"'s aux address \"{name}\"", net.name)));
        }
        if let Some(ha) = shim.as_ref().filter(|ha| ha.addresses.contains(ip)) {
            return Err(taken(format!("the host-access shim {}'s address", ha.shim)).hint(format!(
                "`underlay host-access status` shows it; disable with `underlay host-access disable {}`",
                net.name
            )));
        }
        if let Some(e) = endpoints.iter().find(|e| e.network == net.name && e.ips.iter().any(|n| n.addr() == *ip)) {
            return Err(taken(format!("endpoint \"{}\"'s ({})", e.name, short(&e.id, 12))));
        }
        if let Some(holder) = net.ipam.as_ref().and_then(|c| cluster_holder(c, &net.name, *ip)) {
            return Err(taken(holder));
        }
    }
    Ok(())
}

/// Who holds `ip` in a cluster network's etcd store (another host's endpoint, a device
/// a probe found), if anyone. Unreachable etcd says nothing here: the plugin's ADD
/// reports that in its own words.
fn cluster_holder(ipam: &crate::model::ClusterIpam, network: &str, ip: IpAddr) -> Option<String> {
    let mut admin = underlay_ipam::admin::Admin::connect(&ipam.etcd).ok()?;
    let held = admin.list(Some(network)).ok()?.into_iter().find(|r| r.ip == ip)?;
    let Some(rec) = held.holder else { return Some("held by a record the store cannot read".into()) };
    if let Some(h) = underlay::ipam::hold::ForeignHold::from_record(ip, &rec.owner()) {
        return Some(format!("in use on the LAN by MAC {} (a probe found it)", h.mac));
    }
    Some(format!("held by container {} on node \"{}\"", short(&rec.container_id, 12), rec.node))
}

/// Opens the ranges of `conf` (a CNI config built by `cni_conf`) to their whole
/// subnets, so an address asked for outside `--ip-range` is granted as Docker does.
pub fn whole_subnets(conf: &mut Value) {
    let Some(sets) = conf["ipam"]["ranges"].as_array_mut() else { return };
    for range in sets.iter_mut().filter_map(Value::as_array_mut).flatten() {
        if let Some(r) = range.as_object_mut() {
            r.remove("rangeStart");
            r.remove("rangeEnd");
        }
    }
}
