//! host-local's configuration: the legacy single range, `ranges`, the `ipRanges`
//! capability, requested addresses from every channel, routes, `dataDir`, `resolvConf`.

use std::net::IpAddr;
use std::path::PathBuf;

use ipnet::IpNet;
use serde::Deserialize;
use serde_json::Value;

use super::range::{RangeConf, RangeSet};
use crate::cni::conf::typed;
use crate::cni::golike::get;
use crate::cni::{CniArgs, CniError, Route, Version};

/// Where the reference plugin keeps its store; ours is the same so a node can switch.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/cni/networks";

/// The longest file name Linux file systems take (`NAME_MAX`).
const NAME_MAX: usize = 255;

#[derive(Debug, Clone, PartialEq)]
pub struct HostLocalConf {
    pub network: String,
    pub version: Version,
    /// One address is taken from each set, in order.
    pub range_sets: Vec<RangeSet>,
    pub routes: Vec<Route>,
    pub data_dir: PathBuf,
    pub resolv_conf: Option<PathBuf>,
    /// Addresses the runtime asked for (CNI_ARGS `IP=`, `args.cni.ips`, `runtimeConfig.ips`).
    pub requested: Vec<IpAddr>,
    /// Drop reservations left from before the last reboot (see the README).
    pub reclaim_after_reboot: bool,
    /// Addresses a probe found in use on the LAN, to record before allocating (the
    /// `underlay` extension key, see `hold`).
    pub foreign_holds: Vec<super::hold::ForeignHold>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Section {
    subnet: Option<IpNet>,
    range_start: Option<IpAddr>,
    range_end: Option<IpAddr>,
    gateway: Option<IpAddr>,
    #[serde(default)]
    ranges: Vec<Vec<RangeConf>>,
    #[serde(default)]
    routes: Vec<Route>,
    data_dir: Option<PathBuf>,
    resolv_conf: Option<PathBuf>,
    reclaim_after_reboot: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Runtime {
    #[serde(default)]
    ip_ranges: Vec<Vec<RangeConf>>,
    #[serde(default)]
    ips: Vec<String>,
}

impl HostLocalConf {
    /// Reads the whole network config (IPAM plugins get the caller's config, not just
    /// the `ipam` section) plus `CNI_ARGS`.
    pub fn parse(raw: &Value, version: Version, args: &CniArgs) -> Result<HostLocalConf, CniError> {
        let network = get(raw, "name").and_then(Value::as_str).unwrap_or_default().to_string();
        // The store is `<dataDir>/<name>/`: a name the file system cannot hold is a
        // config error, not an I/O failure at the first write.
        if network.len() > NAME_MAX {
            return Err(CniError::config(format!(
                "name \"{network}\" is {} bytes; the address store allows at most {NAME_MAX}",
                network.len()
            )));
        }
        let section = match get(raw, "ipam") {
            Some(v @ Value::Object(_)) => typed::<Section>(v.clone(), "ipam")?,
            _ => return Err(CniError::config("network config has no \"ipam\" section")),
        };
        let runtime: Runtime = match get(raw, "runtimeConfig") {
            Some(v) => typed(v.clone(), "runtimeConfig")?,
            None => Runtime::default(),
        };

        let mut requested = Vec::new();
        args.check_known(&["IP", "MAC"])?;
        if let Some(s) = args.single("IP")? {
            for piece in s.split(',').filter(|p| !p.is_empty()) {
                requested.push(
                    parse_ip(piece)
                        .ok_or_else(|| CniError::env(format!("CNI_ARGS IP=\"{piece}\" is not an IP address")))?,
                );
            }
        }
        let args_ips = get(raw, "args").and_then(|a| get(a, "cni")).and_then(|c| get(c, "ips"));
        let args_ips: Vec<String> = match args_ips {
            Some(v) => typed(v.clone(), "args.cni.ips")?,
            None => vec![],
        };
        for (key, list) in [("args.cni.ips", &args_ips), ("runtimeConfig.ips", &runtime.ips)] {
            for s in list {
                requested
                    .push(parse_ip(s).ok_or_else(|| CniError::config(format!("{key}: \"{s}\" is not an IP address")))?);
            }
        }

        // The runtime's ranges come first, then the legacy single range, then `ranges`.
        let mut confs = runtime.ip_ranges;
        if let Some(subnet) = section.subnet {
            confs.push(vec![RangeConf {
                subnet,
                range_start: section.range_start,
                range_end: section.range_end,
                gateway: section.gateway,
            }]);
        }
        confs.extend(section.ranges);
        if confs.is_empty() {
            return Err(CniError::config("ipam has neither \"subnet\" nor \"ranges\": no addresses to hand out"));
        }
        for (i, set) in confs.iter().enumerate() {
            if let Some(r) = set.iter().find(|r| r.subnet.prefix_len() == 0) {
                return Err(CniError::config(format!(
                    "range set {i}: subnet \"{}\" is a default route, not a network to hand out addresses from",
                    r.subnet
                )));
            }
        }
        let range_sets =
            confs.iter().enumerate().map(|(i, c)| RangeSet::canonicalize(c, i)).collect::<Result<Vec<_>, _>>()?;
        for (i, a) in range_sets.iter().enumerate() {
            if let Some(j) = range_sets[i + 1..].iter().position(|b| a.overlaps(b)) {
                return Err(CniError::config(format!("range set {i} overlaps with range set {}", i + j + 1)));
            }
        }
        let v4 = range_sets.iter().filter(|s| s.is_ipv4()).count();
        if version < Version::V0_3_0 && (v4 > 1 || range_sets.len() - v4 > 1) {
            return Err(CniError::config(format!(
                "cniVersion {version} results hold one address per family; use 0.3.0 or later for more range sets"
            )));
        }
        Ok(HostLocalConf {
            network,
            version,
            range_sets,
            routes: section.routes,
            // `""` is the reference's default too, not the current directory.
            data_dir: section
                .data_dir
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
            resolv_conf: section.resolv_conf,
            requested,
            reclaim_after_reboot: section.reclaim_after_reboot.unwrap_or(true),
            foreign_holds: super::hold::from_conf(raw)?,
        })
    }

    /// The store directory of this network: `<dataDir>/<name>`.
    pub fn store_dir(&self) -> PathBuf {
        self.data_dir.join(&self.network)
    }
}

/// An address with or without a prefix (`10.0.0.5` or `10.0.0.5/24`).
fn parse_ip(s: &str) -> Option<IpAddr> {
    s.parse::<IpAddr>().ok().or_else(|| s.parse::<IpNet>().ok().map(|n| n.addr()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value, args: &str) -> Result<HostLocalConf, CniError> {
        HostLocalConf::parse(&v, Version::V1_0_0, &CniArgs::parse(args).unwrap())
    }

    #[test]
    fn the_seed_config() {
        let c = parse(
            json!({"cniVersion":"0.4.0","name":"macvlan-conf","type":"macvlan","ipam":{"type":"host-local",
                   "subnet":"192.168.1.0/24","gateway":"192.168.1.1","rangeStart":"192.168.1.100","rangeEnd":"192.168.1.200"}}),
            "",
        )
        .unwrap();
        assert_eq!(c.range_sets.len(), 1);
        assert_eq!(c.range_sets[0].0[0].start.to_string(), "192.168.1.100");
        assert_eq!(c.store_dir(), PathBuf::from("/var/lib/cni/networks/macvlan-conf"));
        assert!(c.reclaim_after_reboot);
    }

    #[test]
    fn requested_addresses_from_every_channel_and_ranges_in_order() {
        let c = parse(
            json!({"name":"n","ipam":{"subnet":"10.0.0.0/24","ranges":[[{"subnet":"2001:db8::/64"}]]},
                   "runtimeConfig":{"ips":["10.0.0.7/24"],"ipRanges":[[{"subnet":"10.1.0.0/24"}]]},
                   "args":{"cni":{"ips":["2001:db8::9"]}}}),
            "IgnoreUnknown=1;IP=10.0.0.5",
        )
        .unwrap();
        let req: Vec<String> = c.requested.iter().map(|i| i.to_string()).collect();
        assert_eq!(req, ["10.0.0.5", "2001:db8::9", "10.0.0.7"]);
        let subnets: Vec<String> = c.range_sets.iter().map(|s| s.0[0].subnet.to_string()).collect();
        assert_eq!(subnets, ["10.1.0.0/24", "10.0.0.0/24", "2001:db8::/64"]);
    }

    #[test]
    fn errors_name_what_is_wrong() {
        let cases = [
            (json!({"name":"n"}), "", 7, "ipam"),
            (json!({"name":"n","ipam":{}}), "", 7, "subnet"),
            (json!({"name":"n","ipam":{"subnet":"10.0.0.0/33"}}), "", 7, "ipam.subnet"),
            (
                json!({"name":"n","ipam":{"subnet":"10.0.0.0/24","ranges":[[{"subnet":"10.0.0.0/25"}]]}}),
                "",
                7,
                "overlaps",
            ),
            (json!({"name":"n","ipam":{"subnet":"10.0.0.0/24"},"runtimeConfig":{"ips":["nope"]}}), "", 7, "nope"),
            (json!({"name":"n","ipam":{"subnet":"10.0.0.0/24"}}), "IP=10.0.0.999", 4, "10.0.0.999"),
            (json!({"name":"n","ipam":{"subnet":"10.0.0.0/24"}}), "FOO=1", 2, "FOO"),
            (json!({"name":"n","ipam":{"subnet":"0.0.0.0/0"}}), "", 7, "0.0.0.0/0"),
            (json!({"name":"n","ipam":{"ranges":[[{"subnet":"::/0"}]]}}), "", 7, "::/0"),
            (json!({"name":"n","ipam":{"subnet":"10.0.0.0/24"}}), "IP=10.0.0.5;IP=10.0.0.6", 7, "10.0.0.6"),
            (json!({"name":"x".repeat(256),"ipam":{"subnet":"10.0.0.0/24"}}), "", 7, "256 bytes"),
        ];
        for (v, args, code, needle) in cases {
            let e = parse(v.clone(), args).unwrap_err();
            assert_eq!(e.code, code, "{v}: {e}");
            assert!(e.msg.contains(needle), "{v}: {}", e.msg);
        }
    }

    #[test]
    fn nulls_are_unset_and_keys_match_in_any_case_as_in_go() {
        let c = parse(
            json!({"Name":"n","IPAM":{"type":"host-local","Subnet":"10.0.0.0/24","RangeStart":"10.0.0.50",
                   "routes":null,"ranges":null,"dataDir":null,"resolvConf":null,"gateway":null},
                   "RuntimeConfig":{"IPs":["10.0.0.60"],"ipRanges":null},"Args":{"CNI":{"IPS":null}}}),
            "",
        )
        .unwrap();
        assert_eq!(c.network, "n");
        assert_eq!(c.range_sets[0].0[0].start.to_string(), "10.0.0.50");
        assert!(c.routes.is_empty());
        assert_eq!(c.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
        let empty = parse(json!({"name":"n","ipam":{"subnet":"10.0.0.0/24","dataDir":""}}), "").unwrap();
        assert_eq!(empty.store_dir(), PathBuf::from("/var/lib/cni/networks/n"), "\"\" is the default, not the cwd");
        assert_eq!(c.requested, ["10.0.0.60".parse::<IpAddr>().unwrap()]);
        // The exact spelling wins over another case.
        let c = parse(json!({"name":"n","ipam":{"subnet":"10.0.0.0/24","Subnet":"10.9.0.0/24"}}), "").unwrap();
        assert_eq!(c.range_sets[0].0[0].subnet.to_string(), "10.0.0.0/24");
    }

    #[test]
    fn old_versions_hold_one_address_per_family() {
        let v = json!({"name":"n","ipam":{"ranges":[[{"subnet":"10.0.0.0/24"}],[{"subnet":"10.1.0.0/24"}]]}});
        let e = HostLocalConf::parse(&v, Version::V0_2_0, &CniArgs::default()).unwrap_err();
        assert!(e.msg.contains("0.2.0"), "{}", e.msg);
        HostLocalConf::parse(&v, Version::V0_3_1, &CniArgs::default()).unwrap();
    }
}
