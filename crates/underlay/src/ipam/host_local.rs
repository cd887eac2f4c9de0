//! host-local's verbs over the disk store: what the `host-local` plugin runs, and what
//! `macvlan` runs in-process when the IPAM on its path is ours.

use std::net::IpAddr;

use super::allocator::allocate;
use super::boot::Boot;
use super::conf::HostLocalConf;
use super::disk::DiskStore;
use super::hold::ForeignHold;
use super::resolv;
use super::store::{Store, matches};
use crate::cni::{Attachment, CniError, CniResult, IpConfig, code};

fn open(conf: &HostLocalConf) -> Result<DiskStore, CniError> {
    let boot = Boot::current()?;
    DiskStore::open(&conf.store_dir(), &boot, conf.reclaim_after_reboot)
}

/// One address from each range set for `owner`; the same ones again if it already has
/// them. On failure nothing this call reserved is kept.
pub fn add(conf: &HostLocalConf, owner: &Attachment) -> Result<CniResult, CniError> {
    // Before the lock: a slow or hostile resolvConf must not hold up other ADDs.
    let dns = read_dns(conf)?;
    let mut store = open(conf)?;
    let result = add_with_dns(&mut store, conf, owner, dns)?;
    store.commit()?;
    Ok(result)
}

/// ADD over any store (host-local's disk, or a cluster-wide one): one address from each
/// range set, the held ones again, and on failure the fresh ones released.
pub fn add_in(store: &mut impl Store, conf: &HostLocalConf, owner: &Attachment) -> Result<CniResult, CniError> {
    add_with_dns(store, conf, owner, read_dns(conf)?)
}

fn read_dns(conf: &HostLocalConf) -> Result<crate::cni::Dns, CniError> {
    match &conf.resolv_conf {
        Some(path) => resolv::read(path),
        None => Ok(Default::default()),
    }
}

fn add_with_dns(
    store: &mut impl Store,
    conf: &HostLocalConf,
    owner: &Attachment,
    dns: crate::cni::Dns,
) -> Result<CniResult, CniError> {
    // Before choosing: a device found on an address keeps anyone from taking it. A
    // hold that cannot be written (someone reserved the address meanwhile) is theirs
    // to find out about when they probe.
    for h in conf.foreign_holds.iter().filter(|h| conf.range_sets.iter().any(|s| s.contains(h.ip))) {
        store.hold(h.ip, &h.record())?;
    }
    let mut requested: Vec<IpAddr> = conf.requested.clone();
    let mut fresh: Vec<IpAddr> = Vec::new();
    let mut ips = Vec::new();
    let outcome = (|| {
        for (i, set) in conf.range_sets.iter().enumerate() {
            let want = requested.iter().position(|ip| set.contains(*ip)).map(|p| requested.remove(p));
            let a =
                allocate(set, i, store, owner, want).map_err(|e| e.context(format!("allocate from range set {i}")))?;
            if a.fresh {
                fresh.push(a.ip);
            }
            ips.push(IpConfig { interface: None, address: a.range.with_prefix(a.ip), gateway: Some(a.range.gateway) });
        }
        if let Some(e) = unplaced(conf, &requested) {
            return Err(e);
        }
        Ok(())
    })();
    if let Err(e) = outcome {
        for ip in fresh {
            let _ = store.remove(ip);
        }
        return Err(e);
    }
    Ok(CniResult { interfaces: vec![], ips, routes: conf.routes.clone(), dns })
}

/// Frees everything `owner` holds in this network. Succeeds if it holds nothing.
pub fn del(conf: &HostLocalConf, owner: &Attachment) -> Result<Vec<IpAddr>, CniError> {
    let mut store = open(conf)?;
    let freed = store.release(owner)?;
    store.commit()?;
    Ok(freed)
}

/// `owner` holds an address in every range set, and every address `prev` lists from
/// these ranges is held by it.
pub fn check(conf: &HostLocalConf, owner: &Attachment, prev: Option<&CniResult>) -> Result<(), CniError> {
    check_in(&mut open(conf)?, conf, owner, prev)
}

/// CHECK over any store.
pub fn check_in(
    store: &mut impl Store,
    conf: &HostLocalConf,
    owner: &Attachment,
    prev: Option<&CniResult>,
) -> Result<(), CniError> {
    let held = store.owned(owner)?;
    for (i, set) in conf.range_sets.iter().enumerate() {
        if !held.iter().any(|ip| set.contains(*ip)) {
            return Err(CniError::new(
                code::CHECK_FAILED,
                format!(
                    "container {} interface {} holds no address in range set {i} ({set})",
                    owner.container_id, owner.ifname
                ),
            ));
        }
    }
    for ip in prev.into_iter().flat_map(|r| &r.ips).map(|c| c.address.addr()) {
        if conf.range_sets.iter().any(|s| s.contains(ip)) && !held.contains(&ip) {
            return Err(CniError::new(
                code::CHECK_FAILED,
                format!("address {ip} from prevResult is not reserved for container {}", owner.container_id),
            ));
        }
    }
    Ok(())
}

/// Removes every reservation of this network whose (container, interface) is not in
/// `valid`, including records nobody can read. Returns what was removed.
pub fn gc(conf: &HostLocalConf, valid: &[Attachment]) -> Result<Vec<IpAddr>, CniError> {
    let mut store = open(conf)?;
    let removed = gc_in(&mut store, valid);
    store.commit()?;
    removed
}

/// GC over any store: what its `reservations` lists and `valid` does not name goes,
/// except foreign holds that have not expired.
pub fn gc_in(store: &mut impl Store, valid: &[Attachment]) -> Result<Vec<IpAddr>, CniError> {
    let mut removed = Vec::new();
    let mut errors = Vec::new();
    let now = super::hold::now();
    for (ip, record) in store.reservations()? {
        let held = record.as_ref().and_then(|r| ForeignHold::from_record(ip, r)).is_some_and(|h| !h.expired(now));
        let keep = held || record.is_some_and(|r| valid.iter().any(|v| matches(&r, v)));
        if keep {
            continue;
        }
        match store.remove(ip) {
            Ok(()) => removed.push(ip),
            Err(e) => errors.push(e.msg),
        }
    }
    if !errors.is_empty() {
        return Err(CniError::io(format!("GC could not remove every stale reservation: {}", errors.join("; "))));
    }
    Ok(removed)
}

/// Ready for ADD: the store opens and every range set has a free address; else 50.
pub fn status(conf: &HostLocalConf) -> Result<(), CniError> {
    let mut store = open(conf).map_err(|e| CniError::not_available(format!("store unusable: {}", e.msg)))?;
    let held: Vec<IpAddr> = store.reservations()?.into_iter().map(|(ip, _)| ip).collect();
    for (i, set) in conf.range_sets.iter().enumerate() {
        let used = held.iter().filter(|ip| set.contains(**ip)).count() as u128;
        if used >= set.size() {
            return Err(CniError::not_available(format!(
                "range set {i} ({set}) is exhausted: all {used} addresses are reserved"
            )));
        }
    }
    Ok(())
}

/// Why requested addresses were left over: outside every range, or a second address
/// for a range set that gives one per set.
fn unplaced(conf: &HostLocalConf, left: &[IpAddr]) -> Option<CniError> {
    let ip = *left.first()?;
    let list: Vec<String> = left.iter().map(IpAddr::to_string).collect();
    Some(match conf.range_sets.iter().position(|s| s.contains(ip)) {
        Some(i) => CniError::config(format!(
            "requested addresses {} fall in range set {i}, which already gave one of the requested addresses; \
             a range set hands out one address per attachment",
            list.join(", ")
        )),
        None => CniError::config(format!("requested addresses {} are in none of the ranges", list.join(", "))),
    })
}

#[cfg(test)]
#[path = "host_local_tests.rs"]
mod tests;
