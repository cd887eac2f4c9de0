//! The CNI config that attaches an endpoint to a network: what the plugins read, built
//! from the network's record (used by endpoints and by the address store).

use std::net::IpAddr;

use serde_json::{Value, json};
use underlay::cni::Version;
use underlay::ipam::{from_u128, to_u128};

use crate::model::{Mode, Network};
use crate::state::Dirs;

/// The CNI config that attaches to `net`; kept in the endpoint so DEL uses exactly
/// what ADD used (the spec's rule), even if the network changes or goes.
pub fn cni_conf(net: &Network, dirs: &Dirs) -> Value {
    let mut ranges = Vec::new();
    let mut routes = Vec::new();
    for s in net.subnets.iter().filter(|s| net.ipv6 || s.subnet.addr().is_ipv4()) {
        let mut r = json!({"subnet": s.subnet});
        if let Some(gw) = s.gateway {
            r["gateway"] = json!(gw);
            let default = if s.subnet.addr().is_ipv4() { "0.0.0.0/0" } else { "::/0" };
            if !net.internal && !routes.iter().any(|r: &Value| r["dst"] == default) {
                routes.push(json!({"dst": default, "gw": gw}));
            }
        }
        if let Some(range) = s.ip_range {
            let (start, end) = usable(range, s.subnet);
            r["rangeStart"] = json!(start);
            r["rangeEnd"] = json!(end);
        }
        ranges.push(json!([r]));
    }
    let ipam = match &net.ipam {
        _ if net.dhcp.is_some() => {
            json!({"type": "dhcp", "daemonSocketPath": net.dhcp.as_ref().map(|d| &d.socket)})
        }
        None => json!({"type": "host-local", "dataDir": dirs.ipam(), "ranges": ranges, "routes": routes}),
        Some(c) => {
            let mut ipam = json!({"type": "underlay-ipam", "ranges": ranges, "routes": routes, "etcd": c.etcd});
            if let Some(node) = &c.node {
                ipam["node"] = json!(node);
            }
            ipam
        }
    };
    let mut conf = json!({
        "cniVersion": Version::LATEST,
        "name": net.name,
        "type": net.driver.as_str(),
        "master": net.parent,
        "ipam": ipam,
    });
    match net.mode {
        Mode::Macvlan(mode) => conf["mode"] = json!(mode),
        Mode::Ipvlan(mode, flag) => {
            conf["mode"] = json!(mode);
            conf["flag"] = json!(flag);
        }
    }
    if net.mtu > 0 {
        conf["mtu"] = json!(net.mtu);
    }
    conf
}

/// The first and last address of `range` that may be handed out in `subnet` (never the
/// subnet's own address, nor its IPv4 broadcast).
pub(crate) fn usable(range: ipnet::IpNet, subnet: ipnet::IpNet) -> (IpAddr, IpAddr) {
    let step = |ip: IpAddr, up: bool| -> IpAddr {
        let n = to_u128(ip);
        from_u128(if up { n + 1 } else { n - 1 }, ip)
    };
    let start = if range.network() == subnet.network() { step(range.network(), true) } else { range.network() };
    let end = match (range, subnet) {
        (ipnet::IpNet::V4(r), ipnet::IpNet::V4(s)) if r.broadcast() == s.broadcast() => step(range.broadcast(), false),
        _ => range.broadcast(),
    };
    (start, end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_ranges_skip_network_and_broadcast() {
        let s: ipnet::IpNet = "192.168.1.0/24".parse().unwrap();
        let u = |r: &str| usable(r.parse().unwrap(), s);
        assert_eq!(u("192.168.1.128/25"), ("192.168.1.128".parse().unwrap(), "192.168.1.254".parse().unwrap()));
        assert_eq!(u("192.168.1.0/25"), ("192.168.1.1".parse().unwrap(), "192.168.1.127".parse().unwrap()));
        assert_eq!(u("192.168.1.64/27"), ("192.168.1.64".parse().unwrap(), "192.168.1.95".parse().unwrap()));
    }
}
