//! `underlay-host-access`: a chained CNI plugin (after `macvlan` in a conflist) that
//! lets the node reach its pods. It keeps one shim per network on the master (see
//! `underlay_linux::shim`: a host address, never a second subnet route; no ARP flux)
//! and a host route per pod address through it: added on ADD, removed on DEL, checked
//! on CHECK, cleaned on GC. The shim goes with the network's last pod.
//!
//! ```json
//! {"type": "underlay-host-access", "master": "enp0s3", "address": "192.168.1.254"}
//! ```

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use underlay::cni::{Attachment, Call, CniError, CniResult, Plugin, code};
use underlay_linux::shim::{self, Saved};
use underlay_linux::{Netlink, error::Errno};

pub const DEFAULT_DATA_DIR: &str = "/var/lib/cni/underlay-host-access";

pub struct HostAccess;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Conf {
    #[serde(default)]
    master: String,
    address: String,
    data_dir: Option<PathBuf>,
}

/// One network's shim and the pods routed through it.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Record {
    shim: String,
    address: Option<IpAddr>,
    sysctls: Vec<Saved>,
    /// "containerID/ifname" -> the pod's addresses.
    pods: BTreeMap<String, Vec<IpAddr>>,
}

fn kernel(e: underlay_linux::Error) -> CniError {
    CniError::kernel(e.to_string())
}

fn key(a: &Attachment) -> String {
    format!("{}/{}", a.container_id, a.ifname)
}

/// The locked record of a network; written back with `save`.
struct Store {
    path: PathBuf,
    record: Record,
    _lock: File,
}

impl Store {
    fn open(dir: &Path, network: &str) -> Result<Store, CniError> {
        let io = |what: &str, e: std::io::Error| CniError::io(format!("{what} {}: {e}", dir.display()));
        fs::create_dir_all(dir).map_err(|e| io("create", e))?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(format!("{network}.lock")))
            .map_err(|e| io("open lock in", e))?;
        lock.lock().map_err(|e| io("lock", e))?;
        let path = dir.join(format!("{network}.json"));
        let record = match fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b)
                .map_err(|e| CniError::io(format!("{} is unreadable: {e}", path.display())))?,
            Err(_) => Record::default(),
        };
        Ok(Store { path, record, _lock: lock })
    }

    fn save(&self) -> Result<(), CniError> {
        if self.record.pods.is_empty() && self.record.address.is_none() {
            let _ = fs::remove_file(&self.path);
            return Ok(());
        }
        let tmp = self.path.with_extension("tmp");
        fs::write(&tmp, serde_json::to_vec_pretty(&self.record).expect("serializes"))
            .and_then(|()| fs::rename(&tmp, &self.path))
            .map_err(|e| CniError::io(format!("write {}: {e}", self.path.display())))
    }
}

struct Setup {
    conf: Conf,
    address: IpAddr,
    network: String,
}

fn setup(call: &Call) -> Result<Setup, CniError> {
    let conf: Conf = call.conf_as()?;
    if let Some(why) =
        shim::refuse_address(&conf.address, if conf.master.is_empty() { "the master" } else { &conf.master })
    {
        return Err(CniError::config(format!("address: {why}")));
    }
    let address = conf
        .address
        .parse()
        .map_err(|_| CniError::config(format!("address \"{}\" is not an IP address", conf.address)))?;
    Ok(Setup { conf, address, network: call.conf.name.clone() })
}

impl Setup {
    fn dir(&self) -> PathBuf {
        self.conf.data_dir.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR))
    }

    /// One shim per network, with a name that stays the same across versions.
    fn shim_name(&self) -> String {
        format!("ulh-{:08x}", underlay::stable_hash(self.network.bytes()) as u32)
    }

    fn master(&self, nl: &mut Netlink) -> Result<underlay_linux::Link, CniError> {
        let name = if self.conf.master.is_empty() {
            let route = nl
                .default_route()
                .map_err(kernel)?
                .ok_or_else(|| CniError::config("no master and no default route"))?;
            nl.link_by_index(route.oif.unwrap_or(0)).map_err(kernel)?.map(|l| l.name).unwrap_or_default()
        } else {
            self.conf.master.clone()
        };
        nl.link_by_name(&name).map_err(kernel)?.ok_or_else(|| CniError::config(format!("master \"{name}\" not found")))
    }
}

fn host(ip: IpAddr) -> IpNet {
    IpNet::new(ip, if ip.is_ipv4() { 32 } else { 128 }).expect("valid prefix")
}

/// The pod's addresses of the shim's family.
fn pod_ips(prev: &CniResult, address: IpAddr) -> Vec<IpAddr> {
    prev.ips.iter().map(|i| i.address.addr()).filter(|ip| ip.is_ipv4() == address.is_ipv4()).collect()
}

fn attachment(call: &Call) -> Attachment {
    Attachment { container_id: call.env.container_id.clone(), ifname: call.env.ifname.clone() }
}

/// Removes the shim (its routes go with it) and puts the sysctls back.
fn drop_shim(nl: &mut Netlink, record: &mut Record) {
    let _ = nl.delete_link_by_name(&record.shim);
    shim::restore(&record.sysctls);
    record.sysctls.clear();
    record.address = None;
}

impl Plugin for HostAccess {
    fn add(&self, call: &Call) -> Result<CniResult, CniError> {
        let s = setup(call)?;
        let prev = call
            .prev_result()?
            .ok_or_else(|| CniError::config("underlay-host-access is chained after macvlan: it needs prevResult"))?;
        let mut store = Store::open(&s.dir(), &s.network)?;
        let mut nl = Netlink::new().map_err(kernel)?;
        let master = s.master(&mut nl)?;
        let name = s.shim_name();
        let index = match nl.link_by_name(&name).map_err(kernel)? {
            Some(l) => l.index,
            None => {
                let index = shim::create(&mut nl, &name, master.index, s.address).map_err(kernel)?;
                if store.record.sysctls.is_empty() {
                    store.record.sysctls =
                        shim::stop_arp_flux(&[master.name.as_str(), name.as_str()]).map_err(kernel)?;
                }
                store.record.shim = name.clone();
                store.record.address = Some(s.address);
                index
            }
        };
        let ips = pod_ips(&prev, s.address);
        for ip in &ips {
            match nl.add_route(&shim::route(host(*ip), index, s.address)) {
                Err(e) if !e.is(Errno::EEXIST) => return Err(kernel(e)),
                _ => {}
            }
        }
        store.record.pods.insert(key(&attachment(call)), ips);
        store.save()?;
        Ok(prev)
    }

    fn del(&self, call: &Call) -> Result<(), CniError> {
        let s = setup(call)?;
        let mut store = Store::open(&s.dir(), &s.network)?;
        let mut nl = Netlink::new().map_err(kernel)?;
        let recorded = store.record.pods.remove(&key(&attachment(call)));
        let ips = match (recorded, call.prev_result()?) {
            (Some(ips), _) => ips,
            (None, Some(prev)) => pod_ips(&prev, s.address),
            (None, None) => vec![],
        };
        if let Some(shim_link) = nl.link_by_name(&s.shim_name()).map_err(kernel)? {
            for ip in ips {
                let _ = nl.del_route(&shim::route(host(ip), shim_link.index, s.address));
            }
        }
        if store.record.pods.is_empty() {
            store.record.shim = s.shim_name();
            drop_shim(&mut nl, &mut store.record);
        }
        store.save()
    }

    fn check(&self, call: &Call) -> Result<(), CniError> {
        let s = setup(call)?;
        let prev = call.prev_result()?.ok_or_else(|| CniError::config("CHECK needs prevResult"))?;
        let mut nl = Netlink::new().map_err(kernel)?;
        let name = s.shim_name();
        let shim_link = nl.link_by_name(&name).map_err(kernel)?.filter(|l| l.up).ok_or_else(|| {
            CniError::new(code::CHECK_FAILED, format!("the host-access shim {name} is missing or down"))
        })?;
        let routes = nl.routes().map_err(kernel)?;
        for ip in pod_ips(&prev, s.address) {
            if !routes.iter().any(|r| r.dst == host(ip) && r.oif == Some(shim_link.index)) {
                return Err(CniError::new(code::CHECK_FAILED, format!("no host route to {ip} through {name}")));
            }
        }
        Ok(())
    }

    fn status(&self, call: &Call) -> Result<(), CniError> {
        let s = setup(call)?;
        let mut nl = Netlink::new().map_err(kernel)?;
        s.master(&mut nl).map(drop).map_err(|e| CniError::not_available(e.msg))
    }

    fn gc(&self, call: &Call) -> Result<(), CniError> {
        let s = setup(call)?;
        let valid: Vec<String> = call.conf.valid_attachments()?.iter().map(key).collect();
        let mut store = Store::open(&s.dir(), &s.network)?;
        let mut nl = Netlink::new().map_err(kernel)?;
        let shim_link = nl.link_by_name(&s.shim_name()).map_err(kernel)?;
        let stale: Vec<String> = store.record.pods.keys().filter(|k| !valid.contains(k)).cloned().collect();
        for k in stale {
            for ip in store.record.pods.remove(&k).unwrap_or_default() {
                if let Some(l) = &shim_link {
                    let _ = nl.del_route(&shim::route(host(ip), l.index, s.address));
                }
            }
        }
        if store.record.pods.is_empty() && store.record.address.is_some() {
            drop_shim(&mut nl, &mut store.record);
        }
        store.save()
    }
}
