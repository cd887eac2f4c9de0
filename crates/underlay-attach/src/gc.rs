//! GC: the links die with their namespaces; the IPAM collects its addresses, and a VLAN
//! master of ours loses the users that are no longer valid attachments.

use underlay::cni::{Call, CniError, Command};
use underlay::ipam::delegate;

use crate::conf::{Conf, Driver};
use crate::master;

/// IPAM's GC, then the VLAN master's count: a sub-interface of ours left without users
/// goes.
pub fn gc(call: &Call, driver: Driver) -> Result<(), CniError> {
    if let Some(ty) = call.conf.ipam_type()? {
        delegate::run(call, ty, Command::Gc)?;
    }
    let Ok(conf) = Conf::parse(call, driver) else { return Ok(()) };
    let prefix = master::user_prefix(&call.conf.name);
    let live: Vec<String> =
        call.conf.valid_attachments()?.iter().map(|a| format!("{prefix}{}/{}", a.container_id, a.ifname)).collect();
    master::collect(&conf, &prefix, &|u| live.iter().any(|l| l == u))
}
