//! Routes: add, delete and list, with table, scope, metric and the per-route MTU/MSS
//! that CNI 1.1 results can carry.

use std::net::IpAddr;

use ipnet::IpNet;
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteMetric, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use crate::error::{Context, Result};
use crate::netlink::Netlink;

pub const TABLE_MAIN: u32 = 254;
pub const SCOPE_UNIVERSE: u8 = 0;
pub const SCOPE_LINK: u8 = 253;
pub const SCOPE_HOST: u8 = 254;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub dst: IpNet,
    pub gw: Option<IpAddr>,
    pub oif: Option<u32>,
    pub table: u32,
    pub scope: u8,
    /// The route's priority (`metric` in `ip route`).
    pub metric: Option<u32>,
    pub mtu: Option<u32>,
    pub advmss: Option<u32>,
    /// The source address the host prefers on this route.
    pub src: Option<IpAddr>,
    /// Unicast routes are the ones configured by hand; the kernel also keeps local and
    /// broadcast routes in the `local` table.
    pub unicast: bool,
}

impl Route {
    /// A route in the main table: universe scope via a gateway, link scope without one
    /// (what `ip route add` does).
    pub fn new(dst: IpNet, gw: Option<IpAddr>, oif: Option<u32>) -> Route {
        let scope = if gw.is_some() { SCOPE_UNIVERSE } else { SCOPE_LINK };
        Route {
            dst,
            gw,
            oif,
            table: TABLE_MAIN,
            scope,
            metric: None,
            mtu: None,
            advmss: None,
            src: None,
            unicast: true,
        }
    }

    fn to_message(&self) -> RouteMessage {
        let mut m = RouteMessage::default();
        m.header.address_family = family(self.dst.addr());
        m.header.destination_prefix_length = self.dst.prefix_len();
        m.header.protocol = RouteProtocol::Boot;
        m.header.scope = RouteScope::from(self.scope);
        m.header.kind = RouteType::Unicast;
        m.header.table = u8::try_from(self.table).unwrap_or(RouteHeader::RT_TABLE_UNSPEC);
        if self.table > 255 || self.table == 0 {
            m.attributes.push(RouteAttribute::Table(self.table));
        }
        if self.dst.prefix_len() > 0 {
            m.attributes.push(RouteAttribute::Destination(address(self.dst.network())));
        }
        if let Some(gw) = self.gw {
            m.attributes.push(RouteAttribute::Gateway(address(gw)));
        }
        if let Some(oif) = self.oif {
            m.attributes.push(RouteAttribute::Oif(oif));
        }
        if let Some(p) = self.metric {
            m.attributes.push(RouteAttribute::Priority(p));
        }
        if let Some(src) = self.src {
            m.attributes.push(RouteAttribute::PrefSource(address(src)));
        }
        let mut metrics = Vec::new();
        if let Some(mtu) = self.mtu {
            metrics.push(RouteMetric::Mtu(mtu));
        }
        if let Some(mss) = self.advmss {
            metrics.push(RouteMetric::Advmss(mss));
        }
        if !metrics.is_empty() {
            m.attributes.push(RouteAttribute::Metrics(metrics));
        }
        m
    }

    fn from_message(m: &RouteMessage) -> Option<Route> {
        let mut dst_ip = match m.header.address_family {
            AddressFamily::Inet => IpAddr::from([0u8; 4]),
            AddressFamily::Inet6 => IpAddr::from([0u16; 8]),
            _ => return None,
        };
        let mut r = Route {
            dst: IpNet::new(dst_ip, 0).ok()?,
            gw: None,
            oif: None,
            table: u32::from(m.header.table),
            scope: m.header.scope.into(),
            metric: None,
            mtu: None,
            advmss: None,
            src: None,
            unicast: m.header.kind == RouteType::Unicast,
        };
        for a in &m.attributes {
            match a {
                RouteAttribute::Destination(d) => dst_ip = ip_of(d)?,
                RouteAttribute::Gateway(g) => r.gw = ip_of(g),
                RouteAttribute::Oif(o) => r.oif = Some(*o),
                RouteAttribute::Table(t) => r.table = *t,
                RouteAttribute::Priority(p) => r.metric = Some(*p),
                RouteAttribute::PrefSource(s) => r.src = ip_of(s),
                RouteAttribute::Metrics(ms) => {
                    for metric in ms {
                        match metric {
                            RouteMetric::Mtu(v) => r.mtu = Some(*v),
                            RouteMetric::Advmss(v) => r.advmss = Some(*v),
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        r.dst = IpNet::new(dst_ip, m.header.destination_prefix_length).ok()?;
        Some(r)
    }
}

fn family(ip: IpAddr) -> AddressFamily {
    if ip.is_ipv4() { AddressFamily::Inet } else { AddressFamily::Inet6 }
}

fn address(ip: IpAddr) -> RouteAddress {
    match ip {
        IpAddr::V4(a) => RouteAddress::Inet(a),
        IpAddr::V6(a) => RouteAddress::Inet6(a),
    }
}

fn ip_of(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(a) => Some(IpAddr::V4(*a)),
        RouteAddress::Inet6(a) => Some(IpAddr::V6(*a)),
        _ => None,
    }
}

impl Netlink {
    pub fn add_route(&mut self, route: &Route) -> Result<()> {
        use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
        self.request(RouteNetlinkMessage::NewRoute(route.to_message()), NLM_F_CREATE | NLM_F_EXCL)
            .map(drop)
            .with_context(|| describe("add", route))
    }

    /// Adds `route` after any with the same destination and metric (what the kernel does
    /// for an address's subnet route), instead of failing on them.
    pub fn append_route(&mut self, route: &Route) -> Result<()> {
        use netlink_packet_core::{NLM_F_APPEND, NLM_F_CREATE};
        self.request(RouteNetlinkMessage::NewRoute(route.to_message()), NLM_F_CREATE | NLM_F_APPEND)
            .map(drop)
            .with_context(|| describe("append", route))
    }

    pub fn del_route(&mut self, route: &Route) -> Result<()> {
        // Like `ip route del`: any protocol (the kernel's own routes are "kernel").
        let mut m = route.to_message();
        m.header.protocol = RouteProtocol::Unspec;
        self.request(RouteNetlinkMessage::DelRoute(m), 0).map(drop).with_context(|| describe("delete", route))
    }

    /// Every route of every table, both families.
    pub fn routes(&mut self) -> Result<Vec<Route>> {
        let mut out = Vec::new();
        for fam in [AddressFamily::Inet, AddressFamily::Inet6] {
            let mut req = RouteMessage::default();
            req.header.address_family = fam;
            let replies = self.dump(RouteNetlinkMessage::GetRoute(req)).context("list routes")?;
            out.extend(replies.iter().filter_map(|r| match r {
                RouteNetlinkMessage::NewRoute(m) => Route::from_message(m),
                _ => None,
            }));
        }
        Ok(out)
    }

    /// The route the kernel would use to reach `ip` now (`ip route get`).
    pub fn route_to(&mut self, ip: IpAddr) -> Result<Option<Route>> {
        let mut req = RouteMessage::default();
        req.header.address_family = family(ip);
        req.header.destination_prefix_length = if ip.is_ipv4() { 32 } else { 128 };
        req.attributes.push(RouteAttribute::Destination(address(ip)));
        let replies = self.request(RouteNetlinkMessage::GetRoute(req), 0);
        match replies {
            Ok(r) => Ok(r.iter().find_map(|m| match m {
                RouteNetlinkMessage::NewRoute(m) => Route::from_message(m),
                _ => None,
            })),
            Err(e) if e.is_not_found() || e.is(crate::error::Errno::ENETUNREACH) => Ok(None),
            Err(e) => Err(e.context(format!("look up the route to {ip}"))),
        }
    }

    /// The main table's default route (IPv4 first, then IPv6), if any.
    pub fn default_route(&mut self) -> Result<Option<Route>> {
        let routes = self.routes()?;
        let pick = |v4: bool| {
            routes
                .iter()
                .filter(|r| r.unicast && r.table == TABLE_MAIN && r.dst.prefix_len() == 0)
                .find(|r| r.dst.addr().is_ipv4() == v4)
                .cloned()
        };
        Ok(pick(true).or_else(|| pick(false)))
    }

    /// The interface the default route leaves through: the parent every front-end takes
    /// when none is named. `None` when there is no default route, it names no interface,
    /// or that interface is gone.
    pub fn default_route_link(&mut self) -> Result<Option<crate::Link>> {
        match self.default_route()?.and_then(|r| r.oif) {
            Some(oif) => self.link_by_index(oif),
            None => Ok(None),
        }
    }
}

fn describe(verb: &str, r: &Route) -> String {
    let mut s = format!("{verb} route {}", r.dst);
    if let Some(gw) = r.gw {
        s += &format!(" via {gw}");
    }
    if let Some(oif) = r.oif {
        s += &format!(" dev #{oif}");
    }
    if r.table != TABLE_MAIN {
        s += &format!(" table {}", r.table);
    }
    s
}
