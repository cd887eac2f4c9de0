//! The container's side: opening its network namespace and a netlink socket inside it
//! (kernel errors become `CniError`s through underlay-linux's `From`).

use underlay::cni::CniError;
use underlay_linux::{Netlink, Netns};

pub fn open_netns(path: &std::path::Path) -> Result<Netns, CniError> {
    Netns::open(path).map_err(|e| CniError::env(format!("CNI_NETNS: {e}")))
}

/// A netlink socket in the pod's namespace, made on this thread (see `Netns::enter`).
pub fn pod_netlink(pod: &Netns) -> Result<Netlink, CniError> {
    let _inside = pod.enter()?;
    Ok(Netlink::new()?)
}
