//! The `macvlan` CNI plugin: the reference's config, defaults and results, and none of
//! its defects (failed ADDs leave nothing behind, IPAM DNS is kept, MTU is reported,
//! STATUS checks the master, errors carry meaningful codes). Adds `source` mode. The
//! same code serves ipvlan (`Ipvlan`): one link type with a kind, not two copies.

mod add;
mod check;
mod conf;
mod master;

use underlay::cni::{Call, CniError, CniResult, Command, Plugin};
use underlay::ipam::delegate;
use underlay_linux::Netns;

pub use conf::{Conf, Driver, Kind};

/// The `macvlan` plugin.
pub struct Macvlan;

/// The `ipvlan` plugin (keys `master`, `mode` l2|l3|l3s, `flag` bridge|private|vepa,
/// `mtu`, `linkInContainer`, `ipam`).
pub struct Ipvlan;

impl Plugin for Macvlan {
    fn add(&self, call: &Call) -> Result<CniResult, CniError> {
        add::add(call, Driver::Macvlan)
    }

    /// IPAM first, then the link. Succeeds when the namespace, the link or both are
    /// already gone, and when repeated (containerd's second DEL has no CNI_NETNS).
    /// (Running the two side by side was tried: the link deletion waits out RCU grace
    /// periods, which end later while another CPU is busy, and DEL got slower.)
    fn del(&self, call: &Call) -> Result<(), CniError> {
        del(call, Driver::Macvlan)
    }

    fn check(&self, call: &Call) -> Result<(), CniError> {
        check::check(call, Driver::Macvlan)
    }

    fn status(&self, call: &Call) -> Result<(), CniError> {
        status(call, Driver::Macvlan)
    }

    fn gc(&self, call: &Call) -> Result<(), CniError> {
        gc(call)
    }
}

impl Plugin for Ipvlan {
    fn add(&self, call: &Call) -> Result<CniResult, CniError> {
        add::add(call, Driver::Ipvlan)
    }

    fn del(&self, call: &Call) -> Result<(), CniError> {
        del(call, Driver::Ipvlan)
    }

    fn check(&self, call: &Call) -> Result<(), CniError> {
        check::check(call, Driver::Ipvlan)
    }

    fn status(&self, call: &Call) -> Result<(), CniError> {
        status(call, Driver::Ipvlan)
    }

    fn gc(&self, call: &Call) -> Result<(), CniError> {
        gc(call)
    }
}

/// IPAM first, then the link. Succeeds when the namespace, the link or both are already
/// gone, and when repeated (containerd's second DEL has no CNI_NETNS). (Running the two
/// side by side was tried: the link deletion waits out RCU grace periods, which end
/// later while another CPU is busy, and DEL got slower.)
fn del(call: &Call, driver: Driver) -> Result<(), CniError> {
    if let Some(ty) = call.conf.ipam_type()? {
        delegate::run(call, ty, Command::Del)?;
    }
    match &call.env.netns {
        Some(path) => delete_link(path, &call.env.ifname, &call.env.container_id, driver),
        None => Ok(()),
    }
}

/// Ready when the master exists and is up, and the IPAM is ready.
fn status(call: &Call, driver: Driver) -> Result<(), CniError> {
    let conf = Conf::parse(call, driver)?;
    if !conf.link_in_container {
        let (_, master) = master::resolve(&conf, None).map_err(|e| CniError::not_available(e.msg))?;
        if !master.up {
            return Err(CniError::not_available(format!("master {} is down", master.name)));
        }
    }
    match &conf.ipam {
        Some(ty) => delegate::run(call, ty, Command::Status),
        None => Ok(()),
    }
}

fn gc(call: &Call) -> Result<(), CniError> {
    match call.conf.ipam_type()? {
        Some(ty) => delegate::run(call, ty, Command::Gc),
        None => Ok(()),
    }
}

/// Deletes the macvlan (ipvlan) `ifname` in the namespace at `path`, if both still
/// exist. Only a link of our kind that this container's ADD made is ours to delete: one
/// marked for another container (whose ADD made it; ours was refused with 106) and
/// anything else under that name are left alone. An unmarked link of our kind (made
/// by the reference plugin or an older version) is deleted, as before.
fn delete_link(path: &std::path::Path, ifname: &str, container_id: &str, driver: Driver) -> Result<(), CniError> {
    let Ok(pod) = Netns::open(path) else { return Ok(()) };
    let mut nl = add::pod_netlink(&pod)?;
    let mark = add::owner_mark(container_id);
    let ours = |alias: &Option<String>| alias.as_deref().is_none_or(|a| a == mark || !a.starts_with("cni"));
    match nl.link_by_name(ifname).map_err(master::kernel)? {
        Some(link) if link.kind.as_deref() == Some(driver.as_str()) && ours(&link.alias) => {
            match nl.delete_link(link.index) {
                Err(e) if !e.is_not_found() => Err(master::kernel(e)),
                _ => Ok(()),
            }
        }
        _ => Ok(()),
    }
}
