//! The neighbour (ARP / NDP) table.

use std::net::IpAddr;

use netlink_packet_route::neighbour::{NeighbourAddress, NeighbourAttribute, NeighbourMessage, NeighbourState};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use underlay::MacAddr;

use crate::error::{Context, Result};
use crate::netlink::Netlink;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neighbour {
    pub index: u32,
    pub ip: IpAddr,
    pub mac: Option<MacAddr>,
    pub state: NeighbourState,
}

impl Neighbour {
    /// The entry holds a usable answer (not failed, not still being resolved).
    pub fn is_resolved(&self) -> bool {
        self.mac.is_some()
            && !matches!(self.state, NeighbourState::Failed | NeighbourState::Incomplete | NeighbourState::None)
    }
}

impl Netlink {
    /// The neighbour table, or only link `index`'s entries.
    pub fn neighbours(&mut self, index: Option<u32>) -> Result<Vec<Neighbour>> {
        let mut out = Vec::new();
        for fam in [AddressFamily::Inet, AddressFamily::Inet6] {
            let mut req = NeighbourMessage::default();
            req.header.family = fam;
            let replies = self.dump(RouteNetlinkMessage::GetNeighbour(req)).context("list neighbours")?;
            for r in &replies {
                let RouteNetlinkMessage::NewNeighbour(m) = r else {
                    continue;
                };
                if index.is_some_and(|i| i != m.header.ifindex) {
                    continue;
                }
                let mut ip = None;
                let mut mac = None;
                for a in &m.attributes {
                    match a {
                        NeighbourAttribute::Destination(NeighbourAddress::Inet(v4)) => ip = Some(IpAddr::V4(*v4)),
                        NeighbourAttribute::Destination(NeighbourAddress::Inet6(v6)) => ip = Some(IpAddr::V6(*v6)),
                        NeighbourAttribute::LinkLayerAddress(l) => {
                            mac = <[u8; 6]>::try_from(l.as_slice()).ok().map(MacAddr)
                        }
                        _ => {}
                    }
                }
                if let Some(ip) = ip {
                    out.push(Neighbour { index: m.header.ifindex, ip, mac, state: m.header.state });
                }
            }
        }
        Ok(out)
    }
}

/// A bridge's forwarding-database entry: the switch has seen `mac` behind `port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FdbEntry {
    pub mac: MacAddr,
    /// The bridge port's interface index.
    pub port: u32,
    /// Learned from traffic (not one of the bridge's own or a static entry).
    pub learned: bool,
}

impl Netlink {
    /// Every bridge's forwarding database in this namespace.
    pub fn fdb(&mut self) -> Result<Vec<FdbEntry>> {
        let mut req = NeighbourMessage::default();
        req.header.family = AddressFamily::Bridge;
        let replies = self.dump(RouteNetlinkMessage::GetNeighbour(req)).context("list bridge fdb")?;
        let mut out = Vec::new();
        for r in &replies {
            let RouteNetlinkMessage::NewNeighbour(m) = r else {
                continue;
            };
            let mac = m.attributes.iter().find_map(|a| match a {
                NeighbourAttribute::LinkLayerAddress(l) => <[u8; 6]>::try_from(l.as_slice()).ok().map(MacAddr),
                _ => None,
            });
            if let Some(mac) = mac {
                let learned = !matches!(m.header.state, NeighbourState::Permanent | NeighbourState::Noarp);
                out.push(FdbEntry { mac, port: m.header.ifindex, learned });
            }
        }
        Ok(out)
    }
}
