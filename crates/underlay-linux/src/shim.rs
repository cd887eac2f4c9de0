//! Host access to macvlan endpoints. The kernel keeps a parent and its macvlan children
//! apart, so the host cannot reach its own containers through the parent. A "shim" — a
//! host-side macvlan in bridge mode on the same parent — can. Done carelessly (the
//! seed's `192.168.1.254/24` on `macvlan0`) it adds a second route to the host's own
//! subnet and the host's traffic to the LAN may leave through it. Done here: the shim's
//! address is a host address (/32, /128, no prefix route), routes go to the endpoints
//! only (their range, or one per endpoint) with the shim's address as source, and ARP
//! flux is stopped (`arp_ignore=1`, `arp_announce=2` on parent and shim), so the host's
//! own address is answered from the parent's MAC alone.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::addr::AddressOptions;
use crate::error::{Error, Result};
use crate::macvlan::{MacvlanMode, MacvlanSpec};
use crate::netlink::Netlink;
use crate::route::{Route, SCOPE_LINK};
use crate::sysctl;

/// A sysctl and the value it had before host access changed it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Saved {
    pub key: String,
    pub value: String,
}

/// Why an address cannot be the shim's.
pub fn refuse_address(requested: &str, parent: &str) -> Option<String> {
    let net: IpNet = requested.parse().ok()?;
    if net.prefix_len() == net.max_prefix_len() {
        return None;
    }
    let host = IpNet::from(net.addr());
    Some(format!(
        "refusing to give the shim {requested}: an address with prefix /{len} on a macvlan of {parent} adds a second \
         route to {subnet} beside {parent}'s own, and the host's traffic to its LAN (your SSH session too) can then \
         leave through the shim, where the parent's neighbours do not expect it, and stop. Use the bare address \
         ({host}): underlay gives it the shim as a host address and routes only the containers through it.",
        len = net.prefix_len(),
        subnet = net.trunc(),
    ))
}

/// Creates the shim `name` on `parent` with host address `address`, up.
pub fn create(nl: &mut Netlink, name: &str, parent: u32, address: IpAddr) -> Result<u32> {
    nl.create_macvlan(&MacvlanSpec::new(name, parent, MacvlanMode::Bridge))?;
    let link = nl.link(name)?;
    let host = IpNet::from(address);
    let made = (|| -> Result<()> {
        if address.is_ipv6() {
            sysctl::ensure(&format!("net/ipv6/conf/{name}/disable_ipv6"), "0")?;
        }
        nl.add_address(link.index, host, AddressOptions { nodad: true, noprefixroute: true })?;
        nl.set_up(link.index, true)
    })();
    if let Err(e) = made {
        let _ = nl.delete_link(link.index);
        return Err(e);
    }
    Ok(link.index)
}

/// The route that sends `dst` (the endpoints) through the shim, from the shim's address.
pub fn route(dst: IpNet, shim: u32, src: IpAddr) -> Route {
    let mut r = Route::new(dst, None, Some(shim));
    r.scope = SCOPE_LINK;
    r.src = Some(src);
    r
}

/// The ARP-flux sysctls of `interfaces` as they are now, to be recorded before
/// [`stop_arp_flux`] changes them.
pub fn arp_flux_values(interfaces: &[&str]) -> Result<Vec<Saved>> {
    let mut saved = Vec::new();
    for ifname in interfaces {
        for knob in ["arp_ignore", "arp_announce"] {
            let key = format!("net/ipv4/conf/{ifname}/{knob}");
            saved.push(Saved { value: sysctl::read(&key)?, key });
        }
    }
    Ok(saved)
}

/// Sets the ARP-flux sysctls on `interfaces` (IPv4), returning what they were.
pub fn stop_arp_flux(interfaces: &[&str]) -> Result<Vec<Saved>> {
    let mut saved = Vec::new();
    for ifname in interfaces {
        for (knob, value) in [("arp_ignore", "1"), ("arp_announce", "2")] {
            let key = format!("net/ipv4/conf/{ifname}/{knob}");
            let before = sysctl::read(&key)?;
            if before != value {
                sysctl::write(&key, value)?;
            }
            saved.push(Saved { key, value: before });
        }
    }
    Ok(saved)
}

/// Puts saved sysctls back (those of links that no longer exist are skipped).
pub fn restore(saved: &[Saved]) -> Vec<Error> {
    saved
        .iter()
        .filter(|s| sysctl::path(&s.key).map(|p| p.exists()).unwrap_or(false))
        .filter_map(|s| sysctl::write(&s.key, &s.value).err())
        .collect()
}
