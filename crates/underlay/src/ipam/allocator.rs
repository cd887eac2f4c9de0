//! Round-robin allocation over a range set, as host-local does it, plus what it gets
//! wrong fixed: a repeated ADD gets its existing address back.

use std::net::IpAddr;

use super::range::{Range, RangeSet};
use super::store::Store;
use crate::cni::{Attachment, CniError, code};

/// One address taken from one range set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation {
    pub ip: IpAddr,
    pub range: Range,
    /// Reserved by this call (and so to be undone if the call fails later).
    pub fresh: bool,
}

/// Gives `owner` an address from `set` (number `index`): the one it already holds, the
/// one it asked for, or the next free one after the last reserved.
pub fn allocate(
    set: &RangeSet,
    index: usize,
    store: &mut impl Store,
    owner: &Attachment,
    requested: Option<IpAddr>,
) -> Result<Allocation, CniError> {
    let held = store.owned(owner)?.into_iter().find_map(|ip| set.range_for(ip).map(|r| (ip, r.clone())));
    if let Some((ip, range)) = held {
        return match requested {
            Some(want) if want != ip => Err(CniError::config(format!(
                "container {} interface {} already holds {ip} in range set {index}; it asked for {want}",
                owner.container_id, owner.ifname
            ))),
            _ => Ok(Allocation { ip, range, fresh: false }),
        };
    }
    if let Some(ip) = requested {
        let range = set
            .range_for(ip)
            .ok_or_else(|| CniError::config(format!("requested address {ip} is not in range set {index} ({set})")))?;
        if ip == range.gateway {
            return Err(CniError::config(format!("requested address {ip} is the gateway of range {range}")));
        }
        if !store.reserve(ip, owner, index)? {
            return Err(CniError::new(
                code::ADDRESS_TAKEN,
                format!("requested address {ip} is already reserved by another container"),
            ));
        }
        return Ok(Allocation { ip, range: range.clone(), fresh: true });
    }
    let last = store.last_reserved(index)?;
    for (ip, range) in set.candidates(last) {
        if store.reserve(ip, owner, index)? {
            return Ok(Allocation { ip, range: range.clone(), fresh: true });
        }
    }
    Err(CniError::new(code::POOL_EXHAUSTED, format!("no free address left in range set {index} ({set})")))
}

#[cfg(test)]
mod tests {
    use super::super::range::RangeConf;
    use super::super::store::MemStore;
    use super::*;
    use proptest::prelude::*;

    fn set(subnet: &str, start: &str, end: &str) -> RangeSet {
        let c = RangeConf {
            subnet: subnet.parse().unwrap(),
            range_start: Some(start.parse().unwrap()),
            range_end: Some(end.parse().unwrap()),
            gateway: None,
        };
        RangeSet(vec![c.canonicalize().unwrap()])
    }

    fn owner(n: usize) -> Attachment {
        Attachment { container_id: format!("c{n}"), ifname: "eth0".into() }
    }

    #[test]
    fn round_robin_idempotent_requested_and_exhausted() {
        let s = set("10.0.0.0/24", "10.0.0.10", "10.0.0.12");
        let mut st = MemStore::default();
        let a = allocate(&s, 0, &mut st, &owner(1), None).unwrap();
        assert_eq!((a.ip.to_string(), a.fresh), ("10.0.0.10".into(), true));
        let again = allocate(&s, 0, &mut st, &owner(1), None).unwrap();
        assert_eq!((again.ip, again.fresh), (a.ip, false), "a repeated ADD gets the same address");
        st.release(&owner(1)).unwrap();
        let b = allocate(&s, 0, &mut st, &owner(2), None).unwrap();
        assert_eq!(b.ip.to_string(), "10.0.0.11", "round-robin: the freed .10 is not reused at once");
        let e = allocate(&s, 0, &mut st, &owner(3), Some("10.0.0.11".parse().unwrap())).unwrap_err();
        assert_eq!(e.code, code::ADDRESS_TAKEN);
        let c = allocate(&s, 0, &mut st, &owner(3), Some("10.0.0.10".parse().unwrap())).unwrap();
        assert_eq!(c.ip.to_string(), "10.0.0.10");
        allocate(&s, 0, &mut st, &owner(4), None).unwrap();
        let e = allocate(&s, 0, &mut st, &owner(5), None).unwrap_err();
        assert_eq!(e.code, code::POOL_EXHAUSTED);
        assert!(e.msg.contains("10.0.0.10-10.0.0.12"), "{}", e.msg);
        let e = allocate(&s, 0, &mut st, &owner(6), Some("10.0.0.50".parse().unwrap())).unwrap_err();
        assert_eq!(e.code, 7);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Add(usize),
        Del(usize),
    }

    proptest! {
        /// Any sequence of ADDs and DELs: no address is ever held by two owners, each
        /// owner holds at most one, and ADD fails only when the range is really full.
        #[test]
        fn never_double_allocates(ops in proptest::collection::vec(
            prop_oneof![(0usize..12).prop_map(Op::Add), (0usize..12).prop_map(Op::Del)], 1..80)) {
            let s = set("10.0.0.0/24", "10.0.0.10", "10.0.0.17");
            let mut st = MemStore::default();
            for op in ops {
                match op {
                    Op::Add(n) => match allocate(&s, 0, &mut st, &owner(n), None) {
                        Ok(a) => prop_assert_eq!(st.held.get(&a.ip), Some(&owner(n))),
                        Err(e) => {
                            prop_assert_eq!(e.code, code::POOL_EXHAUSTED);
                            prop_assert_eq!(st.held.len() as u128, s.size());
                        }
                    },
                    Op::Del(n) => { st.release(&owner(n)).unwrap(); }
                }
                for n in 0..12 {
                    prop_assert!(st.owned(&owner(n)).unwrap().len() <= 1);
                }
            }
        }
    }
}
