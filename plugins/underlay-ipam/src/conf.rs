//! underlay-ipam's configuration: host-local's range vocabulary, read by the same code
//! (`subnet`, `rangeStart`, `rangeEnd`, `gateway`, `ranges`, `routes`, requested
//! addresses from every channel), plus `exclude`, `node` and the `etcd` section.
//!
//! ```json
//! "ipam": {
//!   "type": "underlay-ipam",
//!   "subnet": "192.168.1.0/24", "rangeStart": "192.168.1.100", "rangeEnd": "192.168.1.200",
//!   "exclude": ["192.168.1.150/31"],
//!   "etcd": {"endpoints": ["https://10.0.0.5:2379"], "caFile": "/etc/underlay/ca.pem",
//!            "certFile": "/etc/underlay/node.pem", "keyFile": "/etc/underlay/node-key.pem"}
//! }
//! ```

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use underlay::cni::conf::typed;
use underlay::cni::{CniArgs, CniError, Version};
use underlay::ipam::HostLocalConf;

/// Where reservations live in etcd unless `etcd.prefix` says otherwise.
pub const DEFAULT_PREFIX: &str = "/underlay/ipam";
const DEFAULT_TIMEOUT_MS: u64 = 5000;

#[derive(Debug, Clone)]
pub struct IpamConf {
    /// Ranges, routes, requested addresses and the network's name, as host-local has them.
    pub ranges: HostLocalConf,
    /// Never handed out.
    pub exclude: Vec<IpNet>,
    /// Whose reservations these are (GC and `release-node` go by it).
    pub node: String,
    pub etcd: EtcdConf,
}

/// How to reach the store.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EtcdConf {
    pub endpoints: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
    /// Per request, and for connecting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Section {
    #[serde(default)]
    exclude: Vec<String>,
    node: Option<String>,
    etcd: Option<Value>,
}

impl IpamConf {
    /// Reads the whole network config (an IPAM plugin gets the caller's) and `CNI_ARGS`.
    pub fn parse(raw: &Value, version: Version, args: &CniArgs) -> Result<IpamConf, CniError> {
        let ranges = HostLocalConf::parse(raw, version, args)?;
        let section: Section = typed(raw.get("ipam").cloned().unwrap_or_default(), "ipam")?;
        let etcd: EtcdConf = match section.etcd {
            Some(v) => typed(v, "ipam.etcd")?,
            None => {
                return Err(CniError::config("ipam has no \"etcd\" section: it says where the reservations are kept"));
            }
        };
        etcd.validate()?;
        let exclude = section
            .exclude
            .iter()
            .map(|s| {
                s.parse::<IpNet>()
                    .map(|n| n.trunc())
                    .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| CniError::config(format!("ipam.exclude: \"{s}\" is neither an address nor a CIDR")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(ip) = ranges.requested.iter().find(|ip| exclude.iter().any(|n| n.contains(*ip))) {
            return Err(CniError::config(format!("requested address {ip} is excluded by ipam.exclude")));
        }
        let node = match section.node {
            Some(n) => n,
            None => nix::unistd::gethostname()
                .map_err(|e| CniError::io(format!("read the hostname for ipam.node: {e}")))?
                .to_string_lossy()
                .into_owned(),
        };
        if node.is_empty() || node.contains('/') || node.chars().any(char::is_whitespace) {
            return Err(CniError::config(format!("ipam.node \"{node}\" is not a usable node name")));
        }
        if ranges.network.contains('/') || ranges.network.is_empty() {
            return Err(CniError::config(format!("network name \"{}\" cannot be an etcd key segment", ranges.network)));
        }
        Ok(IpamConf { ranges, exclude, node, etcd })
    }

    pub fn excluded(&self, ip: IpAddr) -> bool {
        self.exclude.iter().any(|n| n.contains(&ip))
    }
}

impl EtcdConf {
    /// Checks what can be checked without connecting; errors name the key and value.
    pub fn validate(&self) -> Result<(), CniError> {
        let bad = |key: &str, why: String| Err(CniError::config(format!("ipam.etcd.{key}: {why}")));
        if self.endpoints.is_empty() {
            return bad("endpoints", "is empty: list at least one etcd client URL".into());
        }
        for e in &self.endpoints {
            let rest = e.strip_prefix("http://").or_else(|| e.strip_prefix("https://"));
            match rest {
                Some(hostport) if !hostport.is_empty() && !hostport.contains('/') => {
                    if let Err(why) = check_host_port(hostport) {
                        return bad("endpoints", format!("\"{e}\": {why}"));
                    }
                }
                _ => {
                    return bad(
                        "endpoints",
                        format!("\"{e}\" is not an etcd client URL (http://HOST:PORT or https://HOST:PORT)"),
                    );
                }
            }
            if e.starts_with("https://") && self.ca_file.is_none() {
                return bad("caFile", format!("is needed to verify the TLS endpoint \"{e}\""));
            }
        }
        if self.cert_file.is_some() != self.key_file.is_some() {
            return bad("certFile", "and keyFile come together (a client certificate and its key)".into());
        }
        if self.password.is_some() && self.password_file.is_some() {
            return bad("password", "and passwordFile are alternatives; give one".into());
        }
        if self.username.is_some() && self.password.is_none() && self.password_file.is_none() {
            return bad("username", "needs a password or passwordFile".into());
        }
        if let Some(p) = &self.prefix
            && (!p.starts_with('/') || p.trim_end_matches('/').is_empty())
        {
            return bad("prefix", format!("\"{p}\" must start with / and name a key space, e.g. \"{DEFAULT_PREFIX}\""));
        }
        if let Some(t) = self.timeout_ms
            && !(100..=600_000).contains(&t)
        {
            return bad("timeoutMs", format!("{t} is outside 100-600000"));
        }
        Ok(())
    }

    pub fn prefix(&self) -> &str {
        self.prefix.as_deref().unwrap_or(DEFAULT_PREFIX).trim_end_matches('/')
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS))
    }

    /// The password, from the config or its file.
    pub fn password(&self) -> Result<Option<String>, CniError> {
        match (&self.password, &self.password_file) {
            (Some(p), _) => Ok(Some(p.clone())),
            (None, Some(f)) => {
                warn_if_world_readable(f);
                underlay::safe_read::read_config_text(f, "ipam.etcd.passwordFile", underlay::safe_read::CONFIG_FILE_CAP)
                    .map(|s| Some(s.trim_end_matches(['\n', '\r']).to_string()))
            }
            (None, None) => Ok(None),
        }
    }
}

/// A secret every user can read is no secret: say so (stderr reaches the runtime's
/// log; the call goes on, as etcdctl's would).
fn warn_if_world_readable(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o004 != 0
    {
        eprintln!(
            "underlay-ipam: warning: ipam.etcd.passwordFile {} is readable by every user (mode {:o}); chmod o-r it",
            path.display(),
            meta.permissions().mode() & 0o7777
        );
    }
}

/// The `HOST[:PORT]` of an endpoint URL: a port, when given, is 1-65535, and an IPv6
/// host is in brackets. Caught here, a typo is a config error now rather than "cannot
/// reach etcd" once the timeout has passed.
fn check_host_port(hostport: &str) -> Result<(), String> {
    let (host, port) = match hostport.strip_prefix('[') {
        Some(v6) => {
            let (addr, rest) = v6.split_once(']').ok_or("the IPv6 host has no closing ]")?;
            if addr.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(format!("[{addr}] is not an IPv6 address"));
            }
            match rest {
                "" => return Ok(()),
                r => ("[v6]", r.strip_prefix(':').ok_or(format!("\"{r}\" after the IPv6 host is not :PORT"))?),
            }
        }
        None => match hostport.rsplit_once(':') {
            Some((h, _)) if h.contains(':') => return Err("an IPv6 host must be in brackets: [ADDRESS]:PORT".into()),
            Some((h, p)) => (h, p),
            None => return Ok(()),
        },
    };
    if host.is_empty() {
        return Err("the host is empty".into());
    }
    match port.parse::<u16>() {
        Ok(1..) => Ok(()),
        _ => Err(format!("port \"{port}\" is not a number from 1 to 65535")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(ipam: Value) -> Result<IpamConf, CniError> {
        IpamConf::parse(
            &json!({"cniVersion": "1.0.0", "name": "lan", "ipam": ipam}),
            Version::V1_0_0,
            &CniArgs::default(),
        )
    }

    #[test]
    fn host_local_ranges_plus_the_store() {
        let c =
            parse(json!({"type": "underlay-ipam", "subnet": "10.9.0.0/24", "exclude": ["10.9.0.16/28", "10.9.0.5"],
            "node": "n1", "etcd": {"endpoints": ["http://127.0.0.1:2379"]}}))
            .unwrap();
        assert_eq!(c.ranges.range_sets.len(), 1);
        assert!(c.excluded("10.9.0.20".parse().unwrap()) && c.excluded("10.9.0.5".parse().unwrap()));
        assert!(!c.excluded("10.9.0.6".parse().unwrap()));
        assert_eq!((c.node.as_str(), c.etcd.prefix()), ("n1", DEFAULT_PREFIX));
        assert_eq!(c.etcd.timeout(), Duration::from_secs(5));
    }

    #[test]
    fn bad_input_names_key_and_value() {
        let ok_etcd = json!({"endpoints": ["http://127.0.0.1:2379"]});
        let cases = [
            (json!({"subnet": "10.9.0.0/24"}), "etcd"),
            (json!({"subnet": "10.9.0.0/24", "etcd": {"endpoints": []}}), "ipam.etcd.endpoints"),
            (json!({"subnet": "10.9.0.0/24", "etcd": {"endpoints": ["127.0.0.1:2379"]}}), "127.0.0.1:2379"),
            (json!({"subnet": "10.9.0.0/24", "etcd": {"endpoints": ["https://e:2379"]}}), "caFile"),
            (json!({"subnet": "10.9.0.0/24", "etcd": {"endpoints": ["http://e:2379"], "certFile": "/c"}}), "keyFile"),
            (json!({"subnet": "10.9.0.0/24", "etcd": {"endpoints": ["http://e:2379"], "username": "u"}}), "password"),
            (json!({"subnet": "10.9.0.0/24", "etcd": {"endpoints": ["http://e:2379"], "prefix": "x"}}), "\"x\""),
            (json!({"subnet": "10.9.0.0/24", "etcd": {"endpoints": ["http://e:2379"], "timeoutMs": 5}}), "timeoutMs"),
            (json!({"subnet": "10.9.0.0/24", "etcd": {"endpoints": ["http://e:2379"], "tls": true}}), "tls"),
            (json!({"subnet": "10.9.0.0/24", "etcd": {"endpoints": ["http://e:abc"]}}), "\"abc\""),
            (json!({"subnet": "10.9.0.0/24", "etcd": {"endpoints": ["http://e:99999"]}}), "\"99999\""),
            (json!({"subnet": "10.9.0.0/24", "etcd": {"endpoints": ["http://e:0"]}}), "\"0\""),
            (json!({"subnet": "10.9.0.0/24", "etcd": {"endpoints": ["http://e:"]}}), "http://e:"),
            (json!({"subnet": "10.9.0.0/24", "etcd": {"endpoints": ["http://[::1]:x"]}}), "\"x\""),
            (json!({"subnet": "10.9.0.0/24", "etcd": {"endpoints": ["http://::1:2379"]}}), "brackets"),
            (json!({"subnet": "10.9.0.0/24", "exclude": ["10.9.0.x"], "etcd": ok_etcd}), "10.9.0.x"),
            (json!({"subnet": "10.9.0.0/24", "node": "a/b", "etcd": ok_etcd}), "a/b"),
        ];
        for good in ["http://e", "http://e:2379", "http://[::1]:2379", "http://[fd00::5]", "https://10.0.0.5:65535"] {
            let etcd = json!({"endpoints": [good], "caFile": "/ca.pem"});
            assert!(parse(json!({"subnet": "10.9.0.0/24", "etcd": etcd})).is_ok(), "{good}");
        }
        for (ipam, needle) in cases {
            let e = parse(ipam.clone()).unwrap_err();
            assert_eq!(e.code, 7, "{ipam}: {e}");
            assert!(e.msg.contains(needle), "{ipam}: {}", e.msg);
        }
    }
}
