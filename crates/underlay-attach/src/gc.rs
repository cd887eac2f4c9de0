//! GC: the links die with their namespaces, so only the IPAM has anything to collect.

use underlay::cni::{Call, CniError, Command};
use underlay::ipam::delegate;

pub fn gc(call: &Call) -> Result<(), CniError> {
    match call.conf.ipam_type()? {
        Some(ty) => delegate::run(call, ty, Command::Gc),
        None => Ok(()),
    }
}
