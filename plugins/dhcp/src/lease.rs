//! What a DHCP server granted one attachment, and the CNI result it becomes.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{SystemTime, UNIX_EPOCH};

use ipnet::{IpNet, Ipv4Net};
use serde::{Deserialize, Serialize};
use underlay::cni::{CniResult, Dns, IpConfig, Route};

/// One lease, as the ACK said it. Times are seconds; `acquired` is UNIX time, so a
/// restarted daemon knows how far into the lease it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub address: Ipv4Net,
    pub server: Ipv4Addr,
    #[serde(default)]
    pub router: Option<Ipv4Addr>,
    /// Option 121, (destination, gateway); an unspecified gateway means on-link.
    #[serde(default)]
    pub routes: Vec<(Ipv4Net, Ipv4Addr)>,
    #[serde(default)]
    pub dns: Vec<Ipv4Addr>,
    #[serde(default)]
    pub domain: Option<String>,
    #[serde(default)]
    pub search: Vec<String>,
    #[serde(default)]
    pub mtu: Option<u16>,
    pub lease_secs: u32,
    pub t1_secs: u32,
    pub t2_secs: u32,
    pub acquired: u64,
}

pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

impl Lease {
    pub fn renew_at(&self) -> u64 {
        self.acquired + u64::from(self.t1_secs)
    }

    pub fn rebind_at(&self) -> u64 {
        self.acquired + u64::from(self.t2_secs)
    }

    pub fn expires_at(&self) -> u64 {
        self.acquired + u64::from(self.lease_secs)
    }

    pub fn is_live(&self, at: u64) -> bool {
        at < self.expires_at()
    }

    /// The CNI result. With option 121 present its routes replace the router's default
    /// route (RFC 3442 says a client must then ignore option 3 for routing); the MTU
    /// rides on each route, the only place an IPAM result can carry it.
    pub fn to_result(&self) -> CniResult {
        let mtu = self.mtu.map(u32::from);
        let mut routes: Vec<Route> = if self.routes.is_empty() {
            self.router.map(|gw| Route::new(IpNet::V4(Ipv4Net::default()), Some(IpAddr::V4(gw)))).into_iter().collect()
        } else {
            self.routes
                .iter()
                .map(|(dst, gw)| Route::new(IpNet::V4(*dst), (!gw.is_unspecified()).then_some(IpAddr::V4(*gw))))
                .collect()
        };
        for r in &mut routes {
            r.mtu = mtu;
        }
        CniResult {
            interfaces: Vec::new(),
            ips: vec![IpConfig {
                interface: None,
                address: IpNet::V4(self.address),
                gateway: self.router.map(IpAddr::V4),
            }],
            routes,
            dns: Dns {
                nameservers: self.dns.iter().map(ToString::to_string).collect(),
                domain: self.domain.clone(),
                search: self.search.clone(),
                options: Vec::new(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease() -> Lease {
        Lease {
            address: "192.168.1.50/24".parse().unwrap(),
            server: "192.168.1.9".parse().unwrap(),
            router: Some("192.168.1.1".parse().unwrap()),
            routes: Vec::new(),
            dns: vec!["192.168.1.53".parse().unwrap()],
            domain: Some("lan".into()),
            search: vec!["lan".into(), "corp".into()],
            mtu: Some(1400),
            lease_secs: 120,
            t1_secs: 60,
            t2_secs: 105,
            acquired: 1000,
        }
    }

    #[test]
    fn router_becomes_default_route_without_option_121() {
        let r = lease().to_result();
        assert_eq!(r.routes.len(), 1);
        assert_eq!(r.routes[0].dst.to_string(), "0.0.0.0/0");
        assert_eq!(r.routes[0].gw, Some("192.168.1.1".parse().unwrap()));
        assert_eq!(r.routes[0].mtu, Some(1400));
        assert_eq!(r.dns.nameservers, vec!["192.168.1.53"]);
        assert_eq!(r.dns.search, vec!["lan", "corp"]);
    }

    #[test]
    fn classless_routes_replace_the_router_route() {
        let mut l = lease();
        l.routes = vec![
            ("10.0.0.0/8".parse().unwrap(), "192.168.1.254".parse().unwrap()),
            ("192.168.7.0/24".parse().unwrap(), Ipv4Addr::UNSPECIFIED),
        ];
        let r = l.to_result();
        assert_eq!(r.routes.len(), 2);
        assert_eq!(r.routes[0].gw, Some("192.168.1.254".parse().unwrap()));
        assert_eq!(r.routes[1].gw, None, "0.0.0.0 gateway means on-link");
    }

    #[test]
    fn times_follow_acquisition() {
        let l = lease();
        assert_eq!((l.renew_at(), l.rebind_at(), l.expires_at()), (1060, 1105, 1120));
        assert!(l.is_live(1119) && !l.is_live(1120));
    }
}
