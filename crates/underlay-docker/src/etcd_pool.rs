//! Pools in the cluster-wide etcd store (`--ipam-opt etcd.endpoints=...`), so several
//! Docker hosts on one LAN never hand out the same address. The store and its claim
//! path are the underlay-ipam CNI plugin's (`underlay_ipam`), reached through the same
//! configuration it reads; the options keep its key names. A pool's options are kept
//! in a file named by their hash, which the pool ID carries: ReleaseAddress brings only
//! the pool ID, and dockerd keeps pool IDs across restarts.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use serde_json::json;
use underlay::cni::{Attachment, CniArgs, Version};
use underlay::ipam::hold::ForeignHold;
use underlay::ipam::store::Store as _;
use underlay_ipam::IpamConf;
use underlay_ipam::store::EtcdStore;

/// `--ipam-opt` keys, as the underlay-ipam plugin's `ipam` section names them.
const ETCD_KEYS: [&str; 6] = ["endpoints", "prefix", "caFile", "certFile", "keyFile", "timeoutMs"];

/// A pool kept in etcd, as its options file holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EtcdPool {
    pub subnet: IpNet,
    pub range: Option<IpNet>,
    pub options: BTreeMap<String, String>,
    /// The network's gateway: never handed out, never held (other hosts share it).
    #[serde(default)]
    pub gateway: Option<IpAddr>,
}

fn file(dir: &Path, id: &str) -> PathBuf {
    dir.join("etcd").join(format!("{id}.json"))
}

/// Whether `id` could have been made by [`EtcdPool::save`] (it becomes a file name).
pub fn check_id(id: &str) -> bool {
    (1..=16).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_hexdigit())
}

impl EtcdPool {
    /// Reads and checks `--ipam-opt`s; `None` when none select etcd.
    pub fn from_options(
        subnet: IpNet,
        range: Option<IpNet>,
        options: &BTreeMap<String, String>,
    ) -> Result<Option<EtcdPool>, String> {
        if options.is_empty() {
            return Ok(None);
        }
        for (k, v) in options {
            let known = matches!(k.as_str(), "node" | "network")
                || k.strip_prefix("etcd.").is_some_and(|e| ETCD_KEYS.contains(&e));
            if !known {
                return Err(format!(
                    "unknown --ipam-opt {k}={v}: underlay IPAM knows etcd.endpoints (which selects the etcd store), \
                     etcd.prefix, etcd.caFile, etcd.certFile, etcd.keyFile, etcd.timeoutMs, node and network"
                ));
            }
        }
        if !options.contains_key("etcd.endpoints") {
            return Err("--ipam-opt etcd.endpoints=URL[,URL...] is missing: it selects the etcd store".into());
        }
        let pool = EtcdPool { subnet, range, options: options.clone(), gateway: None };
        // Connecting now shows an unreachable store at network create, not at docker run.
        EtcdStore::open(&pool.conf(&[], None)?).map_err(|e| format!("etcd store: {}", e.msg))?;
        Ok(Some(pool))
    }

    /// The pool ID's tail: the hash of what identifies the pool.
    pub fn id(&self) -> String {
        let text = serde_json::to_string(&(&self.subnet, &self.range, &self.options)).expect("serializes");
        format!("{:016x}", underlay::stable_hash(text.bytes()))
    }

    pub fn save(&self, dir: &Path) -> Result<(), String> {
        let path = file(dir, &self.id());
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d).map_err(|e| format!("create {}: {e}", d.display()))?;
        }
        underlay::safe_write::write_json(&path, self).map_err(|e| format!("write {}: {e}", path.display()))
    }

    pub fn load(dir: &Path, id: &str) -> Result<EtcdPool, String> {
        let path = file(dir, id);
        let text = underlay::ipam::store::read_small(&path)
            .ok_or_else(|| format!("pool {id}: {} is missing or unreadable", path.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("damaged pool file {}: {e}", path.display()))
    }

    /// The underlay-ipam configuration of this pool, with `exclude` never handed out and
    /// `requested` asked for.
    fn conf(&self, exclude: &[IpAddr], requested: Option<IpAddr>) -> Result<IpamConf, String> {
        let mut range = json!({"subnet": self.subnet.to_string()});
        if let Some(r) = self.range {
            if r.network() != self.subnet.network() {
                range["rangeStart"] = json!(r.network());
            }
            if r.broadcast() != self.subnet.broadcast() {
                range["rangeEnd"] = json!(r.broadcast());
            }
        }
        let mut etcd = serde_json::Map::new();
        for (k, v) in &self.options {
            let Some(key) = k.strip_prefix("etcd.") else { continue };
            etcd.insert(
                key.into(),
                match key {
                    "endpoints" => json!(v.split(',').map(str::trim).collect::<Vec<_>>()),
                    "timeoutMs" => {
                        json!(v.parse::<u64>().map_err(|_| format!("--ipam-opt etcd.timeoutMs={v}: not a number"))?)
                    }
                    _ => json!(v),
                },
            );
        }
        let mut excluded: Vec<String> = exclude.iter().map(IpAddr::to_string).collect();
        excluded.extend(self.gateway.map(|g| g.to_string()));
        let network = match self.options.get("network") {
            Some(n) => n.clone(),
            None => format!("docker-{}", self.subnet.to_string().replace('/', "_")),
        };
        let mut ipam = json!({"type": "underlay-ipam", "ranges": [[range]], "exclude": excluded, "etcd": etcd});
        if let Some(node) = self.options.get("node") {
            ipam["node"] = json!(node);
        }
        let raw = json!({"cniVersion": "1.0.0", "name": network, "ipam": ipam});
        let mut conf = IpamConf::parse(&raw, Version::LATEST, &CniArgs::default())
            .map_err(|e| format!("--ipam-opt: {}", e.msg.replace("ipam.etcd.", "etcd.")))?;
        conf.ranges.requested = requested.into_iter().collect();
        Ok(conf)
    }

    /// Reserves `want` (or the next free address) for `owner`, never one of `exclude`;
    /// `holds` (devices a probe found) are recorded in the same ADD, before choosing.
    pub fn take(
        &self,
        want: Option<IpAddr>,
        owner: &Attachment,
        exclude: &[IpAddr],
        holds: &[ForeignHold],
        flag: &str,
    ) -> Result<IpAddr, String> {
        let mut conf = self.conf(exclude, want)?;
        conf.ranges.foreign_holds = holds.to_vec();
        let mut store = EtcdStore::open(&conf).map_err(|e| format!("etcd store of {}: {}", self.subnet, e.msg))?;
        let got = underlay_ipam::add_in(&mut store, &conf, owner).map_err(|e| match want {
            Some(ip) => format!("{flag} {ip}: {} (subnet {}, etcd store)", e.msg, self.subnet),
            None => format!("{} (subnet {}, etcd store)", e.msg, self.subnet),
        })?;
        got.ips.first().map(|i| i.address.addr()).ok_or_else(|| "the etcd store returned no address".into())
    }

    /// Frees `ip` (the gateway stays: other hosts' networks share it).
    pub fn release(&self, ip: IpAddr) -> Result<(), String> {
        if Some(ip) == self.gateway {
            return Ok(());
        }
        let conf = self.conf(&[], None)?;
        let mut store = EtcdStore::open(&conf).map_err(|e| format!("etcd store of {}: {}", self.subnet, e.msg))?;
        store.remove(ip).map_err(|e| format!("release {ip} in the etcd store: {}", e.msg))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn options_are_checked_before_connecting() {
        let subnet: IpNet = "192.168.1.0/24".parse().unwrap();
        assert_eq!(EtcdPool::from_options(subnet, None, &opts(&[])), Ok(None));
        let e = EtcdPool::from_options(subnet, None, &opts(&[("colour", "red")])).unwrap_err();
        assert!(e.contains("--ipam-opt colour=red"), "{e}");
        let e = EtcdPool::from_options(subnet, None, &opts(&[("node", "n1")])).unwrap_err();
        assert!(e.contains("etcd.endpoints"), "{e}");
        let e = EtcdPool::from_options(subnet, None, &opts(&[("etcd.endpoints", "ftp://x")])).unwrap_err();
        assert!(e.contains("etcd.endpoints") && e.contains("ftp://x"), "{e}");
    }

    #[test]
    fn pool_ids_are_hex_file_names() {
        let p = EtcdPool { subnet: "10.0.0.0/8".parse().unwrap(), range: None, options: opts(&[]), gateway: None };
        assert!(check_id(&p.id()));
        for bad in ["", "../x", "abc/def", "0123456789abcdef0"] {
            assert!(!check_id(bad), "{bad}");
        }
    }
}
