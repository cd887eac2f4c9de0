//! A Docker network's options (`-o key=value`, `--subnet`, `--gateway`, `--ipv6`)
//! parsed once, at the edge, into a typed spec, with errors that name the bad key.

use std::collections::HashMap;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use underlay_linux::MacvlanMode;
use underlay_linux::ipvlan::{IpvlanFlag, IpvlanMode};

use crate::api::{CreateNetwork, IpamData};

/// Where `-o key=value` arrives in CreateNetwork.
const GENERIC: &str = "com.docker.network.generic";
pub const MTU_KEY: &str = "com.docker.network.driver.mtu";
/// Where `--internal` arrives.
const INTERNAL: &str = "com.docker.network.internal";

/// One subnet of a network with its gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pool {
    pub subnet: IpNet,
    pub gateway: Option<IpAddr>,
}

/// What `docker network create -d underlay` asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkSpec {
    /// `-o parent=`; None: the interface of the default route.
    pub parent: Option<String>,
    /// Stored as the word `-o macvlan_mode=` takes.
    pub mode: MacvlanMode,
    /// 0: the parent's.
    pub mtu: u32,
    pub pools: Vec<Pool>,
    /// `-o host_access=`: a shim lets this host reach the network's containers.
    #[serde(default)]
    pub host_access: Option<HostAccessAsk>,
    /// `--internal`: containers get no default route (Docker's macvlan does the same).
    #[serde(default)]
    pub internal: bool,
    /// `-o ipvlan_mode=` / `-o ipvlan_flag=`: an ipvlan network instead of macvlan.
    #[serde(default)]
    pub ipvlan: Option<Ipvlan>,
    /// Our IPAM hands out the addresses and probes them first; with another IPAM (or
    /// a record from before this was kept) CreateEndpoint probes instead.
    #[serde(default)]
    pub own_ipam: bool,
    /// `-o conflict_detection=false` turns the ARP probes off (a LAN where every
    /// address is managed); on by default, as in the CNI plugins.
    #[serde(default = "on")]
    pub conflict_detection: bool,
    /// `-o stable_mac=true`: a container without `--mac-address` gets a MAC derived
    /// from its address (the one stable name Docker gives a driver), so a container
    /// run again with the same `--ip` keeps its MAC.
    #[serde(default)]
    pub stable_mac: bool,
}

fn on() -> bool {
    true
}

/// An ipvlan network's mode and flag (Docker's ipvlan driver's options).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ipvlan {
    pub mode: IpvlanMode,
    pub flag: IpvlanFlag,
}

/// What `-o host_access=` asked for the shim's address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HostAccessAsk {
    /// The next free address of the network's pool (needs `--ipam-driver underlay`).
    Auto,
    Address(IpAddr),
}

impl HostAccessAsk {
    fn parse(value: &str, parent: &str) -> Result<HostAccessAsk, String> {
        if value == "auto" {
            return Ok(HostAccessAsk::Auto);
        }
        if let Some(why) = underlay_linux::shim::refuse_address(value, parent) {
            return Err(format!("-o host_access={value}: {why}"));
        }
        value.parse().map(HostAccessAsk::Address).map_err(|_| {
            format!("-o host_access={value}: expected the shim's address (a bare IP address of the subnet) or auto")
        })
    }
}

fn string_value(key: &str, v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => Err(format!("option {key}: expected a string, got {other}")),
    }
}

fn pool(d: &IpamData, family: &str) -> Result<Pool, String> {
    let subnet: IpNet = d.pool.parse().map_err(|_| format!("{family} subnet {:?} is not an address/prefix", d.pool))?;
    let gateway = match d.gateway.as_str() {
        "" => None,
        g => {
            let net: IpNet = g
                .parse()
                .or_else(|_| g.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| format!("{family} gateway {g:?} is not an address"))?;
            if !subnet.contains(&net.addr()) {
                return Err(format!("gateway {} is outside subnet {subnet}", net.addr()));
            }
            Some(net.addr())
        }
    };
    Ok(Pool { subnet, gateway })
}

impl NetworkSpec {
    pub fn parse(req: &CreateNetwork) -> Result<NetworkSpec, String> {
        let mut generic: HashMap<String, String> = HashMap::new();
        match req.options.get(GENERIC) {
            None | Some(Value::Null) => {}
            Some(Value::Object(m)) => {
                for (k, v) in m {
                    generic.insert(k.clone(), string_value(k, v)?);
                }
            }
            Some(other) => return Err(format!("option {GENERIC}: expected an object, got {other}")),
        }
        let mut spec = NetworkSpec {
            parent: None,
            mode: MacvlanMode::Bridge,
            mtu: 0,
            pools: Vec::new(),
            host_access: None,
            internal: false,
            ipvlan: None,
            own_ipam: NetworkSpec::own_ipam(req),
            conflict_detection: true,
            stable_mac: false,
        };
        let mut macvlan_mode = false;
        let mut host_access = None;
        for (key, value) in &generic {
            match key.as_str() {
                "parent" | "host_iface" => {
                    if value.is_empty() || value.len() > 15 || value.contains(['/', ' ']) {
                        return Err(format!("-o parent={value:?}: not an interface name"));
                    }
                    spec.parent = Some(value.clone())
                }
                "macvlan_mode" => {
                    macvlan_mode = true;
                    spec.mode = value.parse().map_err(|e| {
                        format!("-o macvlan_mode={value}: {e} (use bridge, private, vepa, passthru or source)")
                    })?
                }
                "ipvlan_mode" => {
                    let mode = value.parse().map_err(|e| format!("-o ipvlan_mode={value}: {e} (use l2, l3 or l3s)"))?;
                    spec.ipvlan.get_or_insert(Ipvlan { mode, flag: IpvlanFlag::Bridge }).mode = mode;
                }
                "ipvlan_flag" => {
                    let flag = value
                        .parse()
                        .map_err(|e| format!("-o ipvlan_flag={value}: {e} (use bridge, private or vepa)"))?;
                    spec.ipvlan.get_or_insert(Ipvlan { mode: IpvlanMode::L2, flag }).flag = flag;
                }
                MTU_KEY => {
                    spec.mtu = value
                        .parse()
                        .ok()
                        .filter(|m| (68..=65535).contains(m))
                        .ok_or_else(|| format!("-o {MTU_KEY}={value}: expected a number from 68 to 65535"))?
                }
                "host_access" => host_access = Some(value.clone()),
                "stable_mac" => {
                    spec.stable_mac = match value.as_str() {
                        "true" => true,
                        "false" => false,
                        _ => return Err(format!("-o stable_mac={value}: expected true or false")),
                    }
                }
                "conflict_detection" => {
                    spec.conflict_detection = match value.as_str() {
                        "true" => true,
                        "false" => false,
                        _ => return Err(format!("-o conflict_detection={value}: expected true or false")),
                    }
                }
                // Docker's own keys (labels, scopes) are not ours to judge.
                k if k.starts_with("com.docker.") => {}
                other => {
                    return Err(format!(
                        "unknown option -o {other}={value}: underlay knows parent, macvlan_mode, ipvlan_mode, ipvlan_flag, host_access, conflict_detection, stable_mac and {MTU_KEY}"
                    ));
                }
            }
        }
        if macvlan_mode && spec.ipvlan.is_some() {
            return Err(
                "-o macvlan_mode and -o ipvlan_mode/ipvlan_flag exclude each other: pick macvlan or ipvlan".into()
            );
        }
        if spec.ipvlan.is_some() && spec.stable_mac {
            return Err(
                "-o stable_mac is for macvlan networks: an ipvlan network's containers share the parent's MAC".into()
            );
        }
        if spec.ipvlan.is_some() && host_access.is_some() {
            return Err(
                "-o host_access is for macvlan networks; an ipvlan network's host access is not supported yet".into()
            );
        }
        // dockerd puts --internal beside the generic options, as a bool.
        spec.internal = match req.options.get(INTERNAL) {
            None | Some(Value::Null) | Some(Value::Bool(false)) => false,
            Some(Value::Bool(true)) => true,
            Some(Value::String(s)) if s == "true" || s == "false" => s == "true",
            Some(other) => return Err(format!("option {INTERNAL}: expected true or false, got {other}")),
        };
        if let Some(v) = host_access {
            spec.host_access = Some(HostAccessAsk::parse(&v, spec.parent.as_deref().unwrap_or("the parent"))?);
        }
        for d in req.ipv4_data.iter().flatten() {
            spec.pools.push(pool(d, "IPv4")?);
        }
        for d in req.ipv6_data.iter().flatten() {
            spec.pools.push(pool(d, "IPv6")?);
        }
        Ok(spec)
    }

    /// The first pool of the overlapping pair, if this network shares address space
    /// with `other` on the same parent.
    pub fn overlap(&self, other: &NetworkSpec) -> Option<(IpNet, IpNet)> {
        for a in &self.pools {
            for b in &other.pools {
                if a.subnet.contains(&b.subnet.network()) || b.subnet.contains(&a.subnet.network()) {
                    return Some((a.subnet, b.subnet));
                }
            }
        }
        None
    }

    /// Whether the underlay IPAM driver manages the network's addresses.
    pub fn own_ipam(req: &CreateNetwork) -> bool {
        req.ipv4_data
            .iter()
            .chain(req.ipv6_data.iter())
            .flatten()
            .any(|d| d.address_space == crate::ipam::ADDRESS_SPACE)
    }

    /// Where the network's probes go out; None with conflict detection off.
    pub fn prober(&self, parent: &str) -> Option<crate::probe::Prober> {
        self.conflict_detection
            .then(|| crate::probe::Prober { parent: parent.to_string(), ipvlan: self.ipvlan.is_some() })
    }

    /// The gateway of the family of `addr`, as Join returns it.
    pub fn gateway_for(&self, v6: bool) -> Option<IpAddr> {
        self.pools.iter().find(|p| p.subnet.addr().is_ipv6() == v6).and_then(|p| p.gateway)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(generic: Value) -> CreateNetwork {
        serde_json::from_value(serde_json::json!({
            "NetworkID": "n1",
            "Options": {"com.docker.network.generic": generic},
            "IPv4Data": [{"AddressSpace": "LocalDefault", "Pool": "192.168.1.0/24", "Gateway": "192.168.1.1/24"}],
        }))
        .unwrap()
    }

    #[test]
    fn reads_docker_options() {
        let s = NetworkSpec::parse(&req(serde_json::json!({"parent": "enp0s3", "macvlan_mode": "private",
            "com.docker.network.driver.mtu": "1400"})))
        .unwrap();
        assert_eq!(s.parent.as_deref(), Some("enp0s3"));
        assert_eq!(s.mode, MacvlanMode::Private);
        assert_eq!(s.mtu, 1400);
        assert_eq!(s.pools[0].gateway, Some("192.168.1.1".parse().unwrap()));
    }

    #[test]
    fn names_the_bad_key_and_value() {
        let e = NetworkSpec::parse(&req(serde_json::json!({"macvlan_mode": "bridged"}))).unwrap_err();
        assert!(e.contains("macvlan_mode=bridged"), "{e}");
        let e = NetworkSpec::parse(&req(serde_json::json!({"colour": "red"}))).unwrap_err();
        assert!(e.contains("colour=red"), "{e}");
        let e = NetworkSpec::parse(&req(serde_json::json!({"host_access": "192.168.1.5/24"}))).unwrap_err();
        assert!(e.contains("host_access=192.168.1.5/24") && e.contains("192.168.1.5"), "{e}");
        let e = NetworkSpec::parse(&req(serde_json::json!({"host_access": "yes"}))).unwrap_err();
        assert!(e.contains("host_access=yes"), "{e}");
        let s = NetworkSpec::parse(&req(serde_json::json!({"host_access": "auto"}))).unwrap();
        assert_eq!(s.host_access, Some(HostAccessAsk::Auto));
        let s = NetworkSpec::parse(&req(serde_json::json!({"ipvlan_flag": "private"}))).unwrap();
        assert_eq!(s.ipvlan, Some(Ipvlan { mode: IpvlanMode::L2, flag: IpvlanFlag::Private }));
        let e = NetworkSpec::parse(&req(serde_json::json!({"ipvlan_mode": "l3", "host_access": "auto"}))).unwrap_err();
        assert!(e.contains("host_access") && e.contains("ipvlan"), "{e}");
        let e = NetworkSpec::parse(&req(serde_json::json!({"com.docker.network.driver.mtu": "9x"}))).unwrap_err();
        assert!(e.contains("9x"), "{e}");
    }
}
