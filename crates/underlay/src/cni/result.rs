//! ADD results. One model (the 1.1.0 shape) inside; each spec version's JSON at the
//! edge, converted both ways so a `prevResult` of any version can be read and the
//! output always matches the config's `cniVersion`.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::CniError;
use super::version::Version;
use crate::mac::HwAddr;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Interface {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<HwAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket_path: Option<String>,
    #[serde(default, rename = "pciID", skip_serializing_if = "Option::is_none")]
    pub pci_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpConfig {
    /// Index into `interfaces`; IPAM plugins leave it unset.
    pub interface: Option<usize>,
    pub address: IpNet,
    pub gateway: Option<IpAddr>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub dst: IpNet,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gw: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advmss: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<u32>,
    /// 0 universe, 253 link, 254 host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<u8>,
}

impl Route {
    pub fn new(dst: IpNet, gw: Option<IpAddr>) -> Route {
        Route { dst, gw, mtu: None, advmss: None, priority: None, table: None, scope: None }
    }

    fn strip_1_1(&mut self) {
        *self = Route::new(self.dst, self.gw);
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dns {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nameservers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub search: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

impl Dns {
    pub fn is_empty(&self) -> bool {
        *self == Dns::default()
    }

    /// Adds `other`'s entries that are not here yet; this side wins for `domain`.
    pub fn merge(&mut self, other: &Dns) {
        fn add(into: &mut Vec<String>, from: &[String]) {
            for s in from {
                if !into.contains(s) {
                    into.push(s.clone());
                }
            }
        }
        add(&mut self.nameservers, &other.nameservers);
        add(&mut self.search, &other.search);
        add(&mut self.options, &other.options);
        if self.domain.is_none() {
            self.domain.clone_from(&other.domain);
        }
    }
}

/// The result of ADD, in the 1.1.0 model.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CniResult {
    pub interfaces: Vec<Interface>,
    pub ips: Vec<IpConfig>,
    pub routes: Vec<Route>,
    pub dns: Dns,
}

// Wire shapes. Field order follows the reference plugins' output.

#[derive(Serialize, Deserialize)]
struct CurrentWire {
    #[serde(rename = "cniVersion", default)]
    cni_version: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    interfaces: Vec<Interface>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    ips: Vec<IpWire>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    routes: Vec<Route>,
    // Go always prints `"dns":{}`; keeping it keeps the shape byte-compatible.
    #[serde(default)]
    dns: Dns,
}

#[derive(Serialize, Deserialize)]
struct IpWire {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    interface: Option<usize>,
    address: IpNet,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gateway: Option<IpAddr>,
}

#[derive(Serialize, Deserialize)]
struct LegacyWire {
    #[serde(rename = "cniVersion", default)]
    cni_version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ip4: Option<LegacyIp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ip6: Option<LegacyIp>,
    #[serde(default)]
    dns: Dns,
}

#[derive(Serialize, Deserialize)]
struct LegacyIp {
    ip: IpNet,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gateway: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    routes: Vec<LegacyRoute>,
}

#[derive(Serialize, Deserialize)]
struct LegacyRoute {
    dst: IpNet,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gw: Option<IpAddr>,
}

impl CniResult {
    /// The JSON for `version`. Older versions hold less: 1.1.0-only fields are dropped,
    /// and 0.1.0/0.2.0 keep the first address of each family with its routes.
    pub fn to_json(&self, version: Version) -> Value {
        let cni_version = version.to_string();
        let wire = if version.is_legacy_result() {
            serde_json::to_value(self.to_legacy(cni_version))
        } else {
            serde_json::to_value(self.to_current(cni_version, version))
        };
        wire.expect("results always serialize")
    }

    fn to_current(&self, cni_version: String, version: Version) -> CurrentWire {
        let mut interfaces = self.interfaces.clone();
        let mut routes = self.routes.clone();
        if !version.has_1_1() {
            for i in &mut interfaces {
                i.mtu = None;
                i.socket_path = None;
                i.pci_id = None;
            }
            routes.iter_mut().for_each(Route::strip_1_1);
        }
        let ips = self
            .ips
            .iter()
            .map(|ip| IpWire {
                version: version.tags_ip_version().then(|| family(&ip.address).to_string()),
                interface: ip.interface,
                address: ip.address,
                gateway: ip.gateway,
            })
            .collect();
        CurrentWire { cni_version, interfaces, ips, routes, dns: self.dns.clone() }
    }

    fn to_legacy(&self, cni_version: String) -> LegacyWire {
        let pick = |v4: bool| {
            let ip = self.ips.iter().find(|ip| ip.address.addr().is_ipv4() == v4)?;
            let routes = self
                .routes
                .iter()
                .filter(|r| r.dst.addr().is_ipv4() == v4)
                .map(|r| LegacyRoute { dst: r.dst, gw: r.gw })
                .collect();
            Some(LegacyIp { ip: ip.address, gateway: ip.gateway, routes })
        };
        LegacyWire { cni_version, ip4: pick(true), ip6: pick(false), dns: self.dns.clone() }
    }

    /// Reads a result of any version. `default` is used when it carries no
    /// `cniVersion` (a `prevResult` then has the config's version).
    pub fn from_json(value: &Value, default: Version) -> Result<(CniResult, Version), CniError> {
        let version = match value.get("cniVersion").and_then(Value::as_str) {
            Some(v) => Version::parse(v)?,
            None => default,
        };
        let decode = |e: serde_json::Error| CniError::decode(format!("decode {version} result: {e}"));
        let result = if version.is_legacy_result() {
            let w: LegacyWire = serde_json::from_value(value.clone()).map_err(decode)?;
            CniResult::from_legacy(w)
        } else {
            let w: CurrentWire = serde_json::from_value(value.clone()).map_err(decode)?;
            CniResult {
                interfaces: w.interfaces,
                ips: w
                    .ips
                    .into_iter()
                    .map(|ip| IpConfig { interface: ip.interface, address: ip.address, gateway: ip.gateway })
                    .collect(),
                routes: w.routes,
                dns: w.dns,
            }
        };
        Ok((result, version))
    }

    fn from_legacy(w: LegacyWire) -> CniResult {
        let mut result = CniResult { dns: w.dns, ..CniResult::default() };
        for ip in [w.ip4, w.ip6].into_iter().flatten() {
            result.ips.push(IpConfig { interface: None, address: ip.ip, gateway: ip.gateway });
            result.routes.extend(ip.routes.into_iter().map(|r| Route::new(r.dst, r.gw)));
        }
        result
    }
}

fn family(net: &IpNet) -> &'static str {
    if net.addr().is_ipv4() { "4" } else { "6" }
}

#[cfg(test)]
#[path = "result_tests.rs"]
mod tests;
