//! `underlay-host-access`: a chained CNI plugin (after `macvlan` in a conflist) that
//! lets the node reach its pods. It keeps one shim per network on the master (see
//! `underlay_linux::shim`: a host address, never a second subnet route; no ARP flux)
//! and a host route per pod address through it: added on ADD, removed on DEL, checked
//! on CHECK, cleaned on GC. The shim goes with the network's last pod.
//!
//! ```json
//! {"type": "underlay-host-access", "master": "enp0s3", "address": "192.168.1.254"}
//! ```

mod fault;
pub mod store;

use std::net::IpAddr;
use std::path::PathBuf;

use ipnet::IpNet;
use serde::Deserialize;
use store::{Record, Store};
use underlay::cni::{Attachment, Call, CniError, CniResult, Plugin, code};
use underlay_linux::shim;
use underlay_linux::{Netlink, error::Errno};

pub use fault::VAR as FAULT_VAR;

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

fn key(a: &Attachment) -> String {
    format!("{}/{}", a.container_id, a.ifname)
}

struct Setup {
    conf: Conf,
    address: IpAddr,
    network: String,
}

/// What every command checks before touching anything (the config, its address);
/// public for the fuzz target.
pub fn check_input(call: &Call) -> Result<(), CniError> {
    setup(call).map(drop)
}

fn setup(call: &Call) -> Result<Setup, CniError> {
    let conf: Conf = call.conf_as()?;
    if let Some(why) =
        shim::refuse_address(&conf.address, if conf.master.is_empty() { "the master" } else { &conf.master })
    {
        return Err(CniError::config(format!("address: {why}")));
    }
    let address: IpAddr = conf
        .address
        .parse()
        .map_err(|_| CniError::config(format!("address \"{}\" is not an IP address", conf.address)))?;
    if let Some(why) = unusable(address) {
        return Err(CniError::config(format!("address \"{address}\" is {why}, not an address the host can own")));
    }
    Ok(Setup { conf, address, network: call.conf.name.clone() })
}

/// Why `ip` cannot be the shim's host address.
fn unusable(ip: IpAddr) -> Option<&'static str> {
    match ip {
        _ if ip.is_unspecified() => Some("unspecified"),
        _ if ip.is_loopback() => Some("a loopback address"),
        _ if ip.is_multicast() => Some("a multicast address"),
        IpAddr::V4(v4) if v4.is_broadcast() => Some("the broadcast address"),
        _ => None,
    }
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
        if self.conf.master.is_empty() {
            return nl
                .default_route_link()?
                .ok_or_else(|| CniError::config("no master and no default route with an interface"));
        }
        let name = &self.conf.master;
        nl.link_by_name(name)?.ok_or_else(|| CniError::config(format!("master \"{name}\" not found")))
    }
}

/// The pod's addresses of the shim's family.
fn pod_ips(prev: &CniResult, address: IpAddr) -> Vec<IpAddr> {
    prev.ips.iter().map(|i| i.address.addr()).filter(|ip| ip.is_ipv4() == address.is_ipv4()).collect()
}

fn attachment(call: &Call) -> Attachment {
    Attachment { container_id: call.env.container_id.clone(), ifname: call.env.ifname.clone() }
}

/// Removes the shim (its routes go with it) and puts the sysctls back. The record
/// keeps the saved values until the caller saves it, so a kill in between leaves them
/// for the next DEL to restore.
fn drop_shim(nl: &mut Netlink, record: &mut Record, name: &str) {
    if let Ok(Some(l)) = nl.link_by_name(name) {
        let _ = nl.delete_link(l.index);
    }
    let _ = fault::at("del-shim");
    for e in shim::restore(&record.sysctls) {
        eprintln!("underlay-host-access: {e}");
    }
    record.sysctls.clear();
    record.address = None;
}

/// What an ADD changed so far, to be undone if a later step fails.
#[derive(Default)]
struct Made {
    routes: Vec<underlay_linux::route::Route>,
}

impl HostAccess {
    fn add_steps(
        &self,
        s: &Setup,
        store: &mut Store,
        nl: &mut Netlink,
        ips: &[IpAddr],
        made: &mut Made,
        pod: &str,
    ) -> Result<(), CniError> {
        let master = s.master(nl)?;
        let name = s.shim_name();
        let index = match nl.link_by_name(&name)? {
            Some(l) => l.index,
            None => {
                // Record first: what the sysctls are now and which shim is ours, so a
                // failure or a kill in any later step leaves something to undo from.
                if store.record.sysctls.is_empty() {
                    store.record.sysctls = shim::arp_flux_values(&[master.name.as_str()])?;
                }
                store.record.shim = name.clone();
                store.record.address = Some(s.address);
                store.save()?;
                fault::at("recorded")?;
                let index = shim::create(nl, &name, master.index, s.address)?;
                fault::at("shim")?;
                index
            }
        };
        // Also when the shim was already there: a kill may have come before this.
        shim::stop_arp_flux(&[master.name.as_str(), name.as_str()])?;
        fault::at("sysctl")?;
        for ip in ips {
            let route = shim::route(IpNet::from(*ip), index, s.address);
            match nl.add_route(&route) {
                Ok(()) => made.routes.push(route),
                Err(e) if e.is(Errno::EEXIST) => {}
                Err(e) => return Err(CniError::from(e)),
            }
        }
        fault::at("route")?;
        store.record.pods.insert(pod.to_string(), ips.to_vec());
        store.save()?;
        fault::at("saved")
    }
}

impl Plugin for HostAccess {
    fn add(&self, call: &Call) -> Result<CniResult, CniError> {
        let s = setup(call)?;
        let prev = call
            .prev_result()?
            .ok_or_else(|| CniError::config("underlay-host-access is chained after macvlan: it needs prevResult"))?;
        let ips = pod_ips(&prev, s.address);
        if ips.is_empty() && !prev.ips.is_empty() {
            return Err(CniError::config(format!(
                "address \"{}\" is of another family than every pod address ({})",
                s.address,
                prev.ips.iter().map(|i| i.address.to_string()).collect::<Vec<_>>().join(", ")
            )));
        }
        let mut store = Store::open(&s.dir(), &s.network)?;
        let mut nl = Netlink::new()?;
        let pod = key(&attachment(call));
        let mut made = Made::default();
        let had = store.record.pods.contains_key(&pod);
        let Err(e) = self.add_steps(&s, &mut store, &mut nl, &ips, &mut made, &pod) else {
            return Ok(prev);
        };
        // Undo: this call's routes, and the shim if no pod is left on it.
        for r in &made.routes {
            let _ = nl.del_route(r);
        }
        // A repeated ADD of a pod already routed keeps its entry (and so the shim).
        if !had {
            store.record.pods.remove(&pod);
        }
        if store.record.pods.is_empty() {
            drop_shim(&mut nl, &mut store.record, &s.shim_name());
        }
        if let Err(e2) = store.save() {
            eprintln!("underlay-host-access: undoing a failed ADD: {}", e2.msg);
        }
        Err(e)
    }

    fn del(&self, call: &Call) -> Result<(), CniError> {
        let s = setup(call)?;
        let mut store = Store::open(&s.dir(), &s.network)?;
        let mut nl = Netlink::new()?;
        let recorded = store.record.pods.remove(&key(&attachment(call)));
        let ips = match (recorded, call.prev_result()?) {
            (Some(ips), _) => ips,
            (None, Some(prev)) => pod_ips(&prev, s.address),
            (None, None) => vec![],
        };
        if let Some(shim_link) = nl.link_by_name(&s.shim_name())? {
            for ip in ips {
                let _ = nl.del_route(&shim::route(IpNet::from(ip), shim_link.index, s.address));
            }
        }
        fault::at("del-routes")?;
        if store.record.pods.is_empty() {
            drop_shim(&mut nl, &mut store.record, &s.shim_name());
        }
        store.save()
    }

    fn check(&self, call: &Call) -> Result<(), CniError> {
        let s = setup(call)?;
        let prev = call.prev_result()?.ok_or_else(|| CniError::config("CHECK needs prevResult"))?;
        let mut nl = Netlink::new()?;
        let name = s.shim_name();
        let shim_link = nl.link_by_name(&name)?.filter(|l| l.up).ok_or_else(|| {
            CniError::new(code::CHECK_FAILED, format!("the host-access shim {name} is missing or down"))
        })?;
        let routes = nl.routes()?;
        for ip in pod_ips(&prev, s.address) {
            if !routes.iter().any(|r| r.dst == IpNet::from(ip) && r.oif == Some(shim_link.index)) {
                return Err(CniError::new(code::CHECK_FAILED, format!("no host route to {ip} through {name}")));
            }
        }
        Ok(())
    }

    fn status(&self, call: &Call) -> Result<(), CniError> {
        let s = setup(call)?;
        let mut nl = Netlink::new()?;
        s.master(&mut nl).map(drop).map_err(|e| CniError::not_available(e.msg))
    }

    fn gc(&self, call: &Call) -> Result<(), CniError> {
        let s = setup(call)?;
        let valid: Vec<String> = call.conf.valid_attachments()?.iter().map(key).collect();
        let mut store = Store::open(&s.dir(), &s.network)?;
        let mut nl = Netlink::new()?;
        let shim_link = nl.link_by_name(&s.shim_name())?;
        let stale: Vec<String> = store.record.pods.keys().filter(|k| !valid.contains(k)).cloned().collect();
        for k in stale {
            for ip in store.record.pods.remove(&k).unwrap_or_default() {
                if let Some(l) = &shim_link {
                    let _ = nl.del_route(&shim::route(IpNet::from(ip), l.index, s.address));
                }
            }
        }
        if store.record.pods.is_empty() && (store.record.address.is_some() || !store.record.sysctls.is_empty()) {
            drop_shim(&mut nl, &mut store.record, &s.shim_name());
        }
        store.save()
    }
}
