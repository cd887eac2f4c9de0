//! IPv4 conflict detection for the addresses this driver's IPAM hands out (RFC 5227
//! probes through `underlay_linux::probe`, with the CNI plugins' defaults): a device on
//! the LAN that answers for an address keeps it. Docker's calls leave no other place
//! for it: the IPAM picks the address before any link exists, and only the IPAM can
//! pick another.

use std::net::{IpAddr, Ipv4Addr};

use underlay::ipam::hold::{ForeignHold, now};
use underlay_attach::conflict::Detection;
use underlay_linux::Netlink;
use underlay_linux::probe::{self, Conflict};

/// Where a network's probes go out: its parent, and whether its containers are ipvlan
/// children (which share the parent's MAC, so the parent itself probes; a macvlan of
/// our own cannot sit beside ipvlan children).
#[derive(Debug, Clone)]
pub struct Prober {
    pub parent: String,
    pub ipvlan: bool,
}

impl Prober {
    /// The device using `ip`, if one answers. Nothing is probed for IPv6 (DAD is the
    /// kernel's there) or on a parent that is down (nothing could answer).
    pub fn conflict(&self, ip: IpAddr) -> Result<Option<Conflict>, String> {
        let IpAddr::V4(v4) = ip else { return Ok(None) };
        let detection = Detection::default();
        let fail = |e: underlay_linux::Error| format!("probe {ip} on {}: {e}", self.parent);
        let parent = Netlink::new().map_err(fail)?.link(&self.parent).map_err(fail)?;
        if !parent.up {
            return Ok(None);
        }
        let targets: [Ipv4Addr; 1] = [v4];
        let found = match (self.ipvlan, parent.mac) {
            (true, Some(mac)) => probe::conflicts(parent.index, mac, &targets, &detection.probing),
            (true, None) => return Ok(None),
            (false, _) => probe::conflicts_from_parent(parent.index, &targets, &detection.probing),
        };
        Ok(found.map_err(fail)?.into_iter().next())
    }
}

/// The hold recorded for the device found on `c.ip`.
pub fn hold(c: &Conflict) -> ForeignHold {
    ForeignHold { ip: IpAddr::V4(c.ip), mac: c.mac, until: now() + Detection::default().hold.as_secs() }
}

/// What a requested address's conflict is called in `docker run`'s error.
pub fn refusal(flag: &str, c: &Conflict) -> String {
    format!(
        "{flag} {}: the address is already in use on the LAN by MAC {} (it answered an ARP probe); choose \
         another or find that device",
        c.ip, c.mac
    )
}
