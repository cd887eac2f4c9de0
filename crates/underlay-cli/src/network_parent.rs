//! A network's parent interface: the default route's when none is given, checked at
//! create, and an `IF.VID` parent made and counted in the shared parent records.

use underlay_linux::Netlink;
use underlay_linux::parent::{Acquired, Parents};
use underlay_linux::support::{Feature, has};

use crate::failure::{Failure, Result};
use crate::model::Vlan;

pub fn default_parent(nl: &mut Netlink) -> Result<String> {
    let link = nl.default_route_link()?.ok_or_else(|| {
        Failure::usage("no -o parent=IF given and no default route with an interface to take it from")
            .hint("add -o parent=IF")
    })?;
    Ok(link.name)
}

/// Refuses at create what every `run` would fail on: the loopback device as parent,
/// and an MTU above the parent's (for `IF.VID` still to be made: IF's).
pub fn check_parent(nl: &mut Netlink, parent: &str, mtu: Option<u32>) -> Result<()> {
    let base = vlan_name(parent).map(|(b, _)| b);
    if parent == "lo" || base.as_deref() == Some("lo") {
        return Err(Failure::usage(format!(
            "-o parent={parent}: the loopback device cannot carry macvlan or ipvlan endpoints"
        ))
        .hint("give the interface of the LAN, like -o parent=enp0s3"));
    }
    let link = match nl.link_by_name(parent)? {
        Some(l) => Some(l),
        None => match &base {
            Some(b) => nl.link_by_name(b)?,
            None => None,
        },
    };
    if let (Some(want), Some(link)) = (mtu, link)
        && want > link.mtu
    {
        return Err(Failure::usage(format!("--mtu {want} is larger than parent {}'s MTU {}", link.name, link.mtu)));
    }
    Ok(())
}

/// The name a network is counted under as a user of its VLAN parent (the CNI plugins
/// count each attachment in the same records).
pub fn parent_user(network: &str) -> String {
    format!("net:{network}")
}

/// Checks the parent exists; `IF.VID` creates the VLAN sub-interface when missing. Every
/// network on an `IF.VID` parent is counted in the shared parent records
/// (`underlay_linux::parent`), so the sub-interface goes with the last network or
/// attachment that uses it, and one that existed before is never removed.
pub fn ensure_parent(nl: &mut Netlink, parent: &str, network: &str) -> Result<Option<Vlan>> {
    let exists = nl.link_by_name(parent)?.is_some();
    let Some((base, id)) = vlan_name(parent) else {
        if exists {
            return Ok(None);
        }
        return Err(Failure::not_found(format!("parent interface \"{parent}\" does not exist"))
            .hint(format!("parents here: {}", real_parents(nl)?.join(", "))));
    };
    if !exists {
        if nl.link_by_name(&base)?.is_none() {
            return Err(Failure::not_found(format!(
                "parent \"{parent}\": its base interface \"{base}\" does not exist"
            )));
        }
        if !has(Feature::Vlan)? {
            return Err(Failure::system(format!("cannot create {parent}: {}", Feature::Vlan.missing()))
                .hint("load the 8021q module, or create the sub-interface yourself"));
        }
    }
    let acquired = Parents::here()?.acquire(nl, parent, &parent_user(network))?;
    Ok(Some(Vlan { base, id, created: acquired == Acquired::Counted }))
}

/// The interfaces that can be a parent: not loopback, not a macvlan or ipvlan (host
/// access shims, other endpoints), not a bridge port.
pub fn real_parents(nl: &mut Netlink) -> Result<Vec<String>> {
    let links = nl.links()?;
    Ok(links
        .into_iter()
        .filter(|l| l.name != "lo" && l.macvlan.is_none() && l.ipvlan.is_none() && l.controller.is_none())
        .filter(|l| !matches!(l.kind.as_deref(), Some("macvlan" | "macvtap" | "ipvlan" | "ipvtap")))
        .map(|l| l.name)
        .collect())
}

/// `enp0s3.10` -> (`enp0s3`, 10) when VID is 1–4094.
fn vlan_name(name: &str) -> Option<(String, u16)> {
    underlay_linux::parent::vlan_name(name).map(|(base, id)| (base.to_string(), id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vlan_names() {
        assert_eq!(vlan_name("enp0s3.10"), Some(("enp0s3".into(), 10)));
        assert_eq!(vlan_name("enp0s3"), None);
        assert_eq!(vlan_name("enp0s3.0"), None);
        assert_eq!(vlan_name("enp0s3.4095"), None);
        assert_eq!(vlan_name(".10"), None);
    }
}
