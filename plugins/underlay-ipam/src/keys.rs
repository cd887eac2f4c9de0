//! What a network's records are in etcd and where they live (the layout is in
//! `store`'s doc): the holder record, the key of each record, and the parsing of keys
//! back into addresses and owners.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use underlay::cni::Attachment;

/// Who holds an address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// For people reading the store with etcdctl; the key says it too.
    pub ip: IpAddr,
    #[serde(rename = "containerID")]
    pub container_id: String,
    pub ifname: String,
    pub node: String,
}

impl Record {
    pub fn owner(&self) -> Attachment {
        Attachment { container_id: self.container_id.clone(), ifname: self.ifname.clone() }
    }
}

/// The key layout of one network.
#[derive(Debug, Clone)]
pub struct Keys {
    base: String,
}

impl Keys {
    pub fn new(prefix: &str, network: &str) -> Keys {
        Keys { base: format!("{prefix}/{network}") }
    }

    pub fn ip(&self, ip: IpAddr) -> String {
        match ip {
            IpAddr::V4(a) => format!("{}/ip4/{:08x}", self.base, u32::from(a)),
            IpAddr::V6(a) => format!("{}/ip6/{:032x}", self.base, u128::from(a)),
        }
    }

    /// The address records of both families.
    pub fn ips(&self) -> [String; 2] {
        [format!("{}/ip4/", self.base), format!("{}/ip6/", self.base)]
    }

    pub fn parse_ip(&self, key: &str) -> Option<IpAddr> {
        if let Some(hex) = key.strip_prefix(&format!("{}/ip4/", self.base)) {
            return u32::from_str_radix(hex, 16).ok().map(|n| IpAddr::V4(n.into()));
        }
        let hex = key.strip_prefix(&format!("{}/ip6/", self.base))?;
        u128::from_str_radix(hex, 16).ok().map(|n| IpAddr::V6(n.into()))
    }

    pub fn owner(&self, node: &str, owner: &Attachment, ip: IpAddr) -> String {
        format!("{}{ip}", self.owned_by(node, owner))
    }

    pub fn owned_by(&self, node: &str, owner: &Attachment) -> String {
        format!("{}/owner/{node}/{}/{}/", self.base, owner.container_id, owner.ifname)
    }

    pub fn node(&self, node: &str) -> String {
        format!("{}/owner/{node}/", self.base)
    }

    pub fn last(&self, node: &str, set: usize) -> String {
        format!("{}/last/{node}/{set}", self.base)
    }

    pub fn lasts(&self, node: &str) -> String {
        format!("{}/last/{node}/", self.base)
    }

    /// Splits an owner key below `node(node)` into its owner and address.
    pub fn parse_owner(&self, node: &str, key: &str) -> Option<(Attachment, IpAddr)> {
        let rest = key.strip_prefix(&self.node(node))?;
        let (rest, ip) = rest.rsplit_once('/')?;
        let (id, ifname) = rest.rsplit_once('/')?;
        Some((Attachment { container_id: id.to_string(), ifname: ifname.to_string() }, ip.parse().ok()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_like_addresses_and_round_trip() {
        let k = Keys::new("/underlay/ipam", "lan");
        let owner = Attachment { container_id: "abc".into(), ifname: "eth0".into() };
        let ip: IpAddr = "2001:db8::5".parse().unwrap();
        let key = k.owner("n1", &owner, ip);
        assert_eq!(key, "/underlay/ipam/lan/owner/n1/abc/eth0/2001:db8::5");
        assert_eq!(k.parse_owner("n1", &key), Some((owner, ip)));
        assert_eq!(k.parse_owner("n2", &key), None);
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.9".parse().unwrap(), "10.0.0.10".parse().unwrap());
        assert_eq!(k.ip(a), "/underlay/ipam/lan/ip4/0a000009");
        assert!(k.ip(a) < k.ip(b), "hex keys sort as numbers; dotted ones would not");
        assert_eq!(k.parse_ip(&k.ip(b)), Some(b));
        assert_eq!(k.parse_ip(&k.ip(ip)), Some(ip));
    }
}
