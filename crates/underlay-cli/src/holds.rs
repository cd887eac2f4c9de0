//! `underlay network holds | release-hold`: addresses a probe found in use by a device
//! on the LAN (foreign holds, see `underlay::ipam::hold`), listed and released. They
//! expire by themselves (`gc` drops expired ones); releasing one early is for a
//! device that has since left the address.

use std::net::IpAddr;

use underlay::ipam::hold::{ForeignHold, now};

use crate::address_store::AddressStore;
use crate::failure::{Failure, Result};
use crate::output::{Format, print_json, table};
use crate::state::{Dirs, State};

fn store(dirs: &Dirs, name: &str) -> Result<AddressStore> {
    let net = State::lock(dirs)?.network(name)?;
    AddressStore::of(&net, dirs)
}

/// Prints the network's foreign holds.
pub fn list(dirs: &Dirs, name: &str, format: Format) -> Result<()> {
    let mut holds = store(dirs, name)?.holds()?;
    holds.sort_by_key(|h| h.ip);
    match format {
        Format::Json => print_json(&holds),
        Format::Table => {
            let t = now();
            table(
                &["ADDRESS", "IN USE BY MAC", "HELD FOR"],
                holds.iter().map(|h| {
                    let left = if h.expired(t) { "expired".to_string() } else { format!("{} s", h.until - t) };
                    vec![h.ip.to_string(), h.mac.to_string(), left]
                }),
            )
        }
    }
    Ok(())
}

/// Releases the holds on `ips`, or every expired one (`expired`), or all (`all`).
pub fn release(dirs: &Dirs, name: &str, ips: &[IpAddr], expired: bool, all: bool) -> Result<()> {
    if ips.is_empty() && !expired && !all {
        return Err(Failure::usage("name the addresses to release, or use --expired or --all"));
    }
    let store = store(dirs, name)?;
    let holds = store.holds()?;
    for ip in ips {
        if !holds.iter().any(|h| h.ip == *ip) {
            return Err(Failure::not_found(format!("network \"{name}\" holds no address {ip} for a device")));
        }
    }
    let t = now();
    let chosen: Vec<&ForeignHold> =
        holds.iter().filter(|h| all || ips.contains(&h.ip) || (expired && h.expired(t))).collect();
    for h in chosen {
        store.release_hold(h)?;
        println!("{}", h.ip);
    }
    Ok(())
}
