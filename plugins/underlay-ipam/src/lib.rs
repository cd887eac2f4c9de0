//! `underlay-ipam`: cluster-wide IPAM on etcd. Pods on every node of one L2 subnet
//! draw from one pool, so no two get the same address — what node-local host-local
//! cannot promise. The allocator is host-local's (round robin, idempotent ADD,
//! requested addresses); only the store differs (see `store`).

pub mod admin;
#[cfg(feature = "cluster")]
pub mod cluster;
pub mod conf;
pub mod etcd;
mod guard;
mod keys;
mod spread;
pub mod store;
mod view;

use std::net::IpAddr;

use ipnet::IpNet;
use underlay::cni::{Attachment, Call, CniError, CniResult, Plugin, code};
use underlay::ipam::{RangeSet, host_local, to_u128};

pub use conf::{EtcdConf, IpamConf};
use store::EtcdStore;

pub struct UnderlayIpam;

fn conf(call: &Call) -> Result<IpamConf, CniError> {
    IpamConf::parse(&call.raw, call.version, &call.env.args)
}

fn owner(call: &Call) -> Attachment {
    Attachment { container_id: call.env.container_id.clone(), ifname: call.env.ifname.clone() }
}

impl Plugin for UnderlayIpam {
    fn add(&self, call: &Call) -> Result<CniResult, CniError> {
        let conf = conf(call)?;
        let mut store = EtcdStore::open(&conf)?;
        add_in(&mut store, &conf, &owner(call))
    }

    fn del(&self, call: &Call) -> Result<(), CniError> {
        let conf = conf(call)?;
        let mut store = EtcdStore::open(&conf)?;
        underlay::ipam::store::Store::release(&mut store, &owner(call)).map(drop)
    }

    fn check(&self, call: &Call) -> Result<(), CniError> {
        let conf = conf(call)?;
        let mut store = EtcdStore::open(&conf)?;
        host_local::check_in(&mut store, &conf.ranges, &owner(call), call.prev_result()?.as_ref())
    }

    /// 50 when the store cannot be reached or a range set has no free address.
    fn status(&self, call: &Call) -> Result<(), CniError> {
        let conf = conf(call)?;
        let unavailable = |e: CniError| CniError::not_available(e.msg);
        let mut store = EtcdStore::open(&conf).map_err(unavailable)?;
        let held: Vec<IpAddr> = store.all().map_err(unavailable)?.into_iter().map(|(ip, _)| ip).collect();
        for (i, set) in conf.ranges.range_sets.iter().enumerate() {
            let used = held.iter().filter(|ip| set.contains(**ip)).count() as u128;
            let capacity = capacity(set, &conf.exclude);
            if used >= capacity {
                return Err(CniError::not_available(format!(
                    "range set {i} ({set}) is exhausted: {used} of its {capacity} usable addresses are reserved"
                )));
            }
        }
        Ok(())
    }

    /// This node's reservations that the runtime no longer knows go; other nodes' stay.
    fn gc(&self, call: &Call) -> Result<(), CniError> {
        let conf = conf(call)?;
        let valid = call.conf.valid_attachments()?;
        let mut store = EtcdStore::open(&conf)?;
        host_local::gc_in(&mut store, &valid).map(drop)
    }
}

/// How many times an ADD starts over after losing to another ADD of the same owner
/// (each loss means that owner gained an address, so this is never reached in practice).
const CONFLICTS: usize = 8;

/// ADD on an open store: host-local's allocation, started over from a fresh read when
/// another call for the same owner claimed meanwhile — the fresh read then returns
/// what the owner holds, so one owner never ends up with two addresses in a set.
pub fn add_in(store: &mut EtcdStore, conf: &IpamConf, owner: &Attachment) -> Result<CniResult, CniError> {
    let mut conflicts = 0;
    loop {
        let outcome = match host_local::add_in(store, &conf.ranges, owner) {
            // Jumps past contended stretches may have passed over the last free
            // addresses: look again, every candidate in order.
            Err(e) if e.code == code::POOL_EXHAUSTED && store.stop_jumping() => {
                host_local::add_in(store, &conf.ranges, owner)
            }
            other => other,
        };
        match outcome {
            Err(_) if store.take_conflict() && conflicts < CONFLICTS => conflicts += 1,
            other => return other,
        }
    }
}

/// How many addresses of `set` can be handed out: its ranges less the gateways and
/// the excluded addresses.
pub fn capacity(set: &RangeSet, exclude: &[IpNet]) -> u128 {
    // Excluded intervals, merged so overlaps count once.
    let mut ex: Vec<(u128, u128)> = exclude.iter().map(|n| (to_u128(n.network()), to_u128(n.broadcast()))).collect();
    ex.sort();
    let mut merged: Vec<(u128, u128)> = Vec::new();
    for (a, b) in ex {
        match merged.last_mut() {
            Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
            _ => merged.push((a, b)),
        }
    }
    let mut total = 0u128;
    for r in &set.0 {
        let (s, e) = (to_u128(r.start), to_u128(r.end));
        let mut n = e - s + 1;
        for (a, b) in &merged {
            let (lo, hi) = (s.max(*a), e.min(*b));
            if lo <= hi {
                n -= hi - lo + 1;
            }
        }
        let gw = to_u128(r.gateway);
        if (s..=e).contains(&gw) && !merged.iter().any(|(a, b)| (*a..=*b).contains(&gw)) {
            n -= 1;
        }
        total += n;
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use underlay::ipam::RangeConf;

    #[test]
    fn capacity_counts_gateway_and_exclusions_once() {
        let conf =
            RangeConf { subnet: "10.0.0.0/24".parse().unwrap(), range_start: None, range_end: None, gateway: None };
        let set = RangeSet(vec![conf.canonicalize().unwrap()]);
        assert_eq!(capacity(&set, &[]), 253, ".1-.254 less the gateway .1");
        let ex: Vec<IpNet> =
            ["10.0.0.0/28", "10.0.0.8/29", "10.0.0.200/32"].iter().map(|s| s.parse().unwrap()).collect();
        assert_eq!(capacity(&set, &ex), 254 - 15 - 1, ".1-.15 (gateway inside) and .200 excluded");
    }
}
