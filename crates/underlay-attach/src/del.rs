//! DEL: release the addresses, then remove the link. Nothing to undo: every step is
//! idempotent, so a repeated or interrupted DEL simply runs again.

use underlay::cni::{Call, CniError, Command};
use underlay::ipam::delegate;
use underlay_linux::Netns;

use crate::conf::{Conf, Driver};
use crate::master;
use crate::pod::pod_netlink;

/// IPAM first, then the link. Succeeds when the namespace, the link or both are already
/// gone, and when repeated (containerd's second DEL has no CNI_NETNS). (Running the two
/// side by side was tried: the link deletion waits out RCU grace periods, which end
/// later while another CPU is busy, and DEL got slower.)
pub fn del(call: &Call, driver: Driver) -> Result<(), CniError> {
    if let Some(ty) = call.conf.ipam_type()? {
        delegate::run(call, ty, Command::Del)?;
    }
    if let Some(path) = &call.env.netns {
        delete_link(path, &call.env.ifname, &call.env.container_id, driver)?;
    }
    // After the link: a VLAN master goes with its last user. A config that no longer
    // parses has nothing to release by (GC settles it).
    match Conf::parse(call, driver) {
        Ok(conf) => master::release(&conf, &master::user(call)),
        Err(_) => Ok(()),
    }
}

/// Deletes the macvlan (ipvlan) `ifname` in the namespace at `path`, if both still
/// exist. Only a link of our kind that this container's ADD made is ours to delete: one
/// marked for another container (whose ADD made it; ours was refused with 106) and
/// anything else under that name are left alone. An unmarked link of our kind (made
/// by the reference plugin or an older version) is deleted, as before.
fn delete_link(path: &std::path::Path, ifname: &str, container_id: &str, driver: Driver) -> Result<(), CniError> {
    let Ok(pod) = Netns::open(path) else { return Ok(()) };
    let mut nl = pod_netlink(&pod)?;
    let mark = crate::add::owner_mark(container_id);
    let ours = |alias: &Option<String>| alias.as_deref().is_none_or(|a| a == mark || !a.starts_with("cni"));
    match nl.link_by_name(ifname)? {
        Some(link) if link.kind.as_deref() == Some(driver.as_str()) && ours(&link.alias) => {
            match nl.delete_link(link.index) {
                Err(e) if !e.is_not_found() => Err(CniError::from(e)),
                _ => Ok(()),
            }
        }
        _ => Ok(()),
    }
}
