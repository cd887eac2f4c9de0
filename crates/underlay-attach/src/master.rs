//! Finding the master (parent) interface: the configured one, or the interface of the
//! default route, in the node's namespace (or the container's, with linkInContainer);
//! VLAN masters (`IF.VID`) made and counted through `underlay_linux::parent`.

use std::net::IpAddr;

use underlay::cni::{CniError, code};
use underlay_linux::parent::{Acquired, Parents, vlan_name};
use underlay_linux::{Link, Netlink, Netns};

use crate::conf::Conf;
use crate::pod::pod_netlink;

/// The name an attachment is counted under as a user of a VLAN master.
pub fn user(call: &underlay::cni::Call) -> String {
    format!("{}{}/{}", user_prefix(&call.conf.name), call.env.container_id, call.env.ifname)
}

/// The prefix of all of network `name`'s attachments, for GC.
pub fn user_prefix(name: &str) -> String {
    format!("cni:{name}/")
}

/// A netlink socket in the master's namespace, and the master.
pub fn resolve(conf: &Conf, pod: Option<&Netns>) -> Result<(Netlink, Link), CniError> {
    let (mut nl, place) = socket(conf, pod)?;
    let name = name(conf, &mut nl, place)?;
    let link = lookup(&mut nl, &name, place)?;
    Ok((nl, link))
}

/// As `resolve`, for ADD: a master `IF.VID` (or `"vlan": VID`) in the node's namespace
/// is counted as used by `user`, and made as an 802.1Q sub-interface of `IF` when it does
/// not exist but `IF` does. Returns the name to release when the ADD fails later.
pub fn acquire(conf: &Conf, pod: &Netns, user: &str) -> Result<(Netlink, Link, Option<String>), CniError> {
    let (mut nl, place) = socket(conf, Some(pod))?;
    let name = name(conf, &mut nl, place)?;
    let Some((base, _)) = vlan_parent(conf, &name) else {
        let link = lookup(&mut nl, &name, place)?;
        return Ok((nl, link, None));
    };
    if nl.link_by_name(&name)?.is_none() && nl.link_by_name(base)?.is_none() {
        // Neither the sub-interface nor its base: the plain "not found" error.
        lookup(&mut nl, &name, place)?;
    }
    let parents = Parents::here()?;
    let acquired = parents.acquire(&mut nl, &name, user).map_err(|e| vlan_error(e, &name))?;
    match lookup(&mut nl, &name, place) {
        Ok(link) => Ok((nl, link, (acquired == Acquired::Counted).then_some(name))),
        Err(e) => {
            let _ = parents.release(&mut nl, &name, user);
            Err(e)
        }
    }
}

/// Refuses (code 101) an address the master itself carries: the endpoint and the host
/// would answer ARP for it with two MACs.
pub fn refuse_own(nl: &mut Netlink, master: &Link, ips: impl Iterator<Item = IpAddr>) -> Result<(), CniError> {
    let own: Vec<IpAddr> = nl.addresses(Some(master.index))?.into_iter().map(|a| a.net.addr()).collect();
    if let Some(ip) = ips.into_iter().find(|ip| own.contains(ip)) {
        return Err(CniError::new(
            code::ADDRESS_CONFLICT,
            format!(
                "{ip} is master {}'s own address on this host; the IPAM handed it out: leave it out of the \
                 IPAM's ranges (rangeStart/rangeEnd) or ask for another",
                master.name
            ),
        ));
    }
    Ok(())
}

/// For DEL: drops `user` from the count of a VLAN master; the sub-interface goes with its
/// last user, if we made it. Nothing to do for other masters (or when the default route
/// that named the master is gone: then GC settles it).
pub fn release(conf: &Conf, user: &str) -> Result<(), CniError> {
    if !maybe_vlan(conf) {
        return Ok(());
    }
    let Ok((mut nl, place)) = socket(conf, None) else { return Ok(()) };
    let Ok(name) = name(conf, &mut nl, place) else { return Ok(()) };
    if vlan_parent(conf, &name).is_none() {
        return Ok(());
    }
    Parents::here().and_then(|p| p.release(&mut nl, &name, user)).map_err(CniError::from)
}

/// For GC: drops the users under `prefix` that `live` does not keep, and removes a
/// sub-interface of ours left with none (also after a crash before its first user).
pub fn collect(conf: &Conf, prefix: &str, live: &dyn Fn(&str) -> bool) -> Result<(), CniError> {
    if !maybe_vlan(conf) {
        return Ok(());
    }
    let Ok((mut nl, place)) = socket(conf, None) else { return Ok(()) };
    let Ok(name) = name(conf, &mut nl, place) else { return Ok(()) };
    if vlan_parent(conf, &name).is_none() {
        return Ok(());
    }
    Parents::here().and_then(|p| p.collect(&mut nl, &name, prefix, live)).map_err(CniError::from)
}

/// Whether the config can name a VLAN master (without asking the kernel).
fn maybe_vlan(conf: &Conf) -> bool {
    !conf.link_in_container && (conf.vlan.is_some() || conf.master.as_deref().and_then(vlan_name).is_some())
}

/// `(IF, VID)` when `name` is a VLAN master we may make: named `IF.VID` (or given by
/// the `vlan` key) and in the node's namespace.
fn vlan_parent<'a>(conf: &Conf, name: &'a str) -> Option<(&'a str, u16)> {
    (!conf.link_in_container).then(|| vlan_name(name)).flatten()
}

fn vlan_error(e: underlay_linux::Error, name: &str) -> CniError {
    use underlay_linux::support::{Feature, has};
    if has(Feature::Vlan).ok() == Some(false) {
        return CniError::kernel(format!("cannot create VLAN master {name}: {}", Feature::Vlan.missing()));
    }
    CniError::from(e.context(format!("VLAN master {name}")))
}

fn socket(conf: &Conf, pod: Option<&Netns>) -> Result<(Netlink, &'static str), CniError> {
    match (conf.link_in_container, pod) {
        (true, Some(pod)) => Ok((pod_netlink(pod)?, "the container's network namespace")),
        (true, None) => Err(CniError::config("linkInContainer needs the container's namespace (CNI_NETNS)")),
        (false, _) => Ok((Netlink::new()?, "the node's network namespace")),
    }
}

/// The master's name: the configured one or the default route's interface, with
/// `.VID` when the config has `vlan`.
fn name(conf: &Conf, nl: &mut Netlink, place: &str) -> Result<String, CniError> {
    let name = match &conf.master {
        Some(name) => name.clone(),
        None => {
            let link = nl.default_route_link()?.ok_or_else(|| {
                CniError::config(format!(
                    "no \"master\" given and no default route with an interface in {place} to take one from"
                ))
            })?;
            link.name
        }
    };
    Ok(match conf.vlan {
        Some(vid) => format!("{name}.{vid}"),
        None => name,
    })
}

fn lookup(nl: &mut Netlink, name: &str, place: &str) -> Result<Link, CniError> {
    match nl.link_by_name(name)? {
        Some(link) => Ok(link),
        None => {
            let names: Vec<String> = nl.links()?.into_iter().map(|l| l.name).collect();
            Err(CniError::config(format!(
                "master \"{name}\" not found in {place}; interfaces there: {}",
                names.join(", ")
            )))
        }
    }
}
