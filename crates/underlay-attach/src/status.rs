//! STATUS: can this plugin ADD right now? Read-only, so nothing to undo.

use underlay::cni::{Call, CniError, Command};
use underlay::ipam::delegate;

use crate::conf::{Conf, Driver};
use crate::master;

/// Ready when the master exists and is up, and the IPAM is ready.
pub fn status(call: &Call, driver: Driver) -> Result<(), CniError> {
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
