//! The parent's own addresses: never handed out to an endpoint or a shim. A probe from
//! an endpoint cannot see them (macvlan keeps parent and children apart), so they are
//! read from the kernel: a requested one is refused, and the ranges allocation draws
//! from are cut around them (no state kept, so nothing goes stale or races).

use std::net::IpAddr;

use serde_json::{Value, json};
use underlay::ipam::without;
use underlay_linux::Netlink;

use crate::failure::{Failure, Result};
use crate::model::Network;

/// The addresses `parent` carries in this namespace (none when it does not exist: the
/// attach then fails on the parent itself).
pub fn own(parent: &str) -> Result<Vec<IpAddr>> {
    let mut nl = Netlink::new()?;
    let Some(link) = nl.link_by_name(parent)? else { return Ok(vec![]) };
    Ok(nl.addresses(Some(link.index))?.into_iter().map(|a| a.net.addr()).collect())
}

/// Refuses requested addresses the parent carries (`flag` names the option they came from).
pub fn refuse(net: &Network, requested: &[IpAddr], flag: &str) -> Result<()> {
    if requested.is_empty() {
        return Ok(());
    }
    let own = own(&net.parent)?;
    match requested.iter().find(|ip| own.contains(ip)) {
        Some(ip) => Err(Failure::conflict(format!(
            "{flag} {ip}: {ip} is {}'s own address on this host; choose another",
            net.parent
        ))
        .hint("an endpoint with the host's address would make the LAN's ARP answers flip between two MACs")),
        None => Ok(()),
    }
}

/// Cuts the parent's own addresses out of the ranges of `conf` (a CNI config built by
/// `cni_conf`), so the allocator never reaches them. A range that held only such an
/// address is dropped; a range set left empty is an error naming the address.
pub fn cut_out(conf: &mut Value, net: &Network) -> Result<()> {
    let own = own(&net.parent)?;
    let Some(sets) = conf["ipam"]["ranges"].as_array_mut() else { return Ok(()) };
    for set in sets.iter_mut() {
        let Some(ranges) = set.as_array() else { continue };
        let mut cut = Vec::new();
        for r in ranges {
            cut.extend(split(r, &own));
        }
        if cut.is_empty() {
            let taken: Vec<String> = own.iter().map(IpAddr::to_string).collect();
            return Err(Failure::conflict(format!(
                "network \"{}\" has no address to hand out: its range holds only {}, {}'s own address on this host",
                net.name,
                taken.join(", "),
                net.parent
            ))
            .hint("recreate the network with an --ip-range that leaves the host's address out"));
        }
        *set = Value::Array(cut);
    }
    Ok(())
}

/// `range` (a host-local range: subnet, optional rangeStart/rangeEnd) as the ranges that
/// remain once `own` is taken out.
fn split(range: &Value, own: &[IpAddr]) -> Vec<Value> {
    let Some(subnet) = range["subnet"].as_str().and_then(|s| s.parse::<ipnet::IpNet>().ok()) else {
        return vec![range.clone()];
    };
    let bound = |key: &str| range[key].as_str().and_then(|s| s.parse::<IpAddr>().ok());
    let (first, last) = crate::cni_conf::usable(subnet, subnet);
    let (start, end) = (bound("rangeStart").unwrap_or(first), bound("rangeEnd").unwrap_or(last));
    let pieces = without(start, end, own);
    if pieces == [(start, end)] {
        return vec![range.clone()];
    }
    pieces
        .into_iter()
        .map(|(from, to)| {
            let mut piece = range.clone();
            piece["rangeStart"] = json!(from);
            piece["rangeEnd"] = json!(to);
            piece
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ranges_are_cut_around_the_hosts_addresses() {
        let whole = json!({"subnet": "192.168.1.0/24", "gateway": "192.168.1.1"});
        let pieces = split(&whole, &[ip("192.168.1.10"), ip("10.0.0.1"), ip("fe80::1")]);
        let bounds: Vec<(&str, &str)> =
            pieces.iter().map(|p| (p["rangeStart"].as_str().unwrap(), p["rangeEnd"].as_str().unwrap())).collect();
        assert_eq!(bounds, [("192.168.1.1", "192.168.1.9"), ("192.168.1.11", "192.168.1.254")]);
        assert!(pieces.iter().all(|p| p["gateway"] == "192.168.1.1"));
        let edge = json!({"subnet": "192.168.1.0/24", "rangeStart": "192.168.1.10", "rangeEnd": "192.168.1.12"});
        let pieces = split(&edge, &[ip("192.168.1.10"), ip("192.168.1.12")]);
        assert_eq!(pieces.len(), 1);
        assert_eq!(
            (pieces[0]["rangeStart"].as_str(), pieces[0]["rangeEnd"].as_str()),
            (Some("192.168.1.11"), Some("192.168.1.11"))
        );
        let only = json!({"subnet": "192.168.1.0/24", "rangeStart": "192.168.1.10", "rangeEnd": "192.168.1.10"});
        assert!(split(&only, &[ip("192.168.1.10")]).is_empty());
        let untouched = json!({"subnet": "192.168.1.0/24", "rangeStart": "192.168.1.100"});
        assert_eq!(split(&untouched, &[ip("192.168.1.10")]), vec![untouched.clone()]);
    }
}
