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

/// One sentence per foreign hold of network `name`, for `doctor`.
pub fn describe(dirs: &Dirs, net: &crate::model::Network) -> Result<Vec<String>> {
    let t = now();
    let mut holds = AddressStore::of(net, dirs)?.holds()?;
    holds.sort_by_key(|h| h.ip);
    Ok(holds
        .iter()
        .map(|h| {
            let state = if h.expired(t) { "expired".to_string() } else { format!("held for {} s more", h.until - t) };
            format!(
                "{} answered ARP probes from MAC {}: a device on the LAN uses it, so it is not handed out ({state})",
                h.ip, h.mac
            )
        })
        .collect())
}

/// Addresses for `owner` from `store` that no device on the LAN answers for (probed
/// from a fresh MAC on the network's parent, with the plugins' defaults): a used
/// address the store chose is held for the device and another taken; one in
/// `requested` is refused, naming the device. Nothing is kept on failure.
pub fn probed(
    net: &crate::model::Network,
    store: &AddressStore,
    owner: &underlay::cni::Attachment,
    requested: Vec<IpAddr>,
) -> Result<Vec<IpAddr>> {
    use underlay_attach::conflict::{Detection, MAX_TRIES};
    let detection = Detection::default();
    let parent = underlay_linux::Netlink::new()?.link(&net.parent)?;
    let mut found = Vec::new();
    for _ in 0..MAX_TRIES {
        let got: Vec<IpAddr> = store.add(owner, requested.clone())?.ips.iter().map(|i| i.address.addr()).collect();
        let v4: Vec<std::net::Ipv4Addr> =
            got.iter().filter_map(|ip| if let IpAddr::V4(a) = ip { Some(*a) } else { None }).collect();
        let conflicts = if v4.is_empty() || !parent.up {
            vec![]
        } else {
            underlay_linux::probe::conflicts_from_parent(parent.index, &v4, &detection.probing)
                .inspect_err(|_| drop(store.del(owner)))?
        };
        if conflicts.is_empty() {
            return Ok(got);
        }
        store.del(owner)?;
        if let Some(c) = conflicts.iter().find(|c| requested.contains(&IpAddr::V4(c.ip))) {
            return Err(Failure::conflict(format!("{} is already in use on the LAN by MAC {}", c.ip, c.mac)));
        }
        let until = now() + detection.hold.as_secs();
        for c in &conflicts {
            store.hold_for_device(&ForeignHold { ip: IpAddr::V4(c.ip), mac: c.mac, until })?;
        }
        found.extend(conflicts.iter().map(|c| c.to_string()));
    }
    Err(Failure::conflict(format!(
        "no address free of conflicts after {MAX_TRIES} tries; in use on the LAN: {}",
        found.join(", ")
    )))
}
