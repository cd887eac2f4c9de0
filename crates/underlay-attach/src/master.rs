//! Finding the master (parent) interface: the configured one, or the interface of the
//! default route, in the node's namespace (or the container's, with linkInContainer).

use underlay::cni::CniError;
use underlay_linux::{Link, Netlink, Netns};

use crate::conf::Conf;
use crate::pod::{kernel, pod_netlink};

/// A netlink socket in the master's namespace, and the master.
pub fn resolve(conf: &Conf, pod: Option<&Netns>) -> Result<(Netlink, Link), CniError> {
    let (mut nl, place) = match (conf.link_in_container, pod) {
        (true, Some(pod)) => (pod_netlink(pod)?, "the container's network namespace"),
        (true, None) => return Err(CniError::config("linkInContainer needs the container's namespace (CNI_NETNS)")),
        (false, _) => (Netlink::new().map_err(kernel)?, "the node's network namespace"),
    };
    let name = match &conf.master {
        Some(name) => name.clone(),
        None => {
            let route = nl.default_route().map_err(kernel)?.ok_or_else(|| {
                CniError::config(format!("no \"master\" given and no default route in {place} to take one from"))
            })?;
            let oif =
                route.oif.ok_or_else(|| CniError::config(format!("the default route in {place} has no interface")))?;
            nl.link_by_index(oif).map_err(kernel)?.map(|l| l.name).unwrap_or_default()
        }
    };
    match nl.link_by_name(&name).map_err(kernel)? {
        Some(link) => Ok((nl, link)),
        None => {
            let names: Vec<String> = nl.links().map_err(kernel)?.into_iter().map(|l| l.name).collect();
            Err(CniError::config(format!(
                "master \"{name}\" not found in {place}; interfaces there: {}",
                names.join(", ")
            )))
        }
    }
}
