//! Reservations in etcd, behind the same `Store` the host-local allocator uses. One
//! address is one transaction: it writes the address record and the owner record
//! together, only if nobody holds the address and the owner holds nothing this call
//! did not read (`guard`) — no lock, no leader election. A lost race moves on.
//! An ADD nobody races is two requests: one read of the caller's records and its
//! node's positions, then the claim. Candidates are claimed without reading first;
//! a claim that loses reads, in the same transaction, who holds the address, the
//! caller's records and the window of held addresses after it.
//!
//! Keys, under the prefix (default `/underlay/ipam`):
//! - `<prefix>/<network>/ip4/<8 hex digits>`, `ip6/<32 hex digits>` → `{"ip",
//!   "containerID", "ifname", "node"}`: fixed-width hex sorts like the addresses, so
//!   a lost claim reads only a window of keys after it, not the whole pool;
//! - `<prefix>/<network>/owner/<node>/<containerID>/<ifname>/<address>` → empty;
//! - `<prefix>/<network>/last/<node>/<range set>` → the node's last address.
//!
//! Both records are only ever written and removed together, so each has the other.
//! A foreign hold (an address a probe found in use) is such a pair with the owner
//! `foreign-hold <MAC> <until>` and no interface name.

use std::collections::HashSet;
use std::net::IpAddr;

use etcd_client::{Compare, CompareOp, GetOptions, Txn, TxnOp};
use underlay::cni::{Attachment, CniError};
use underlay::ipam::store::Store;
use underlay::ipam::{RangeSet, from_u128, to_u128};

use crate::conf::IpamConf;
use crate::etcd::{Etcd, Kv};
use crate::guard;
pub use crate::keys::{Keys, Record};
use crate::spread::spread;
use crate::view::View;

/// Addresses read per window while looking for a free one.
const WINDOW: u128 = 128;

pub struct EtcdStore<'c> {
    pub etcd: Etcd,
    conf: &'c IpamConf,
    pub keys: Keys,
    view: Option<View>,
    /// After a lost race, candidates are passed over until this address: another node
    /// is walking the same stretch, and following it would lose again and again.
    jump: Option<IpAddr>,
    /// Whether any candidate was passed over (so "exhausted" may not be true).
    jumped: bool,
    /// No more jumps (the retry after a false "exhausted").
    steady: bool,
    /// A claim found the owner holding addresses this call did not read (another ADD
    /// of the same container committed meanwhile): the call starts over from a fresh
    /// read, and what this call claimed stays (the fresh read finds it).
    conflict: bool,
    /// The last lost claim lost to a claim made after this call's first read (a
    /// race), not to an address held all along.
    raced: bool,
}

impl<'c> EtcdStore<'c> {
    pub fn open(conf: &'c IpamConf) -> Result<EtcdStore<'c>, CniError> {
        // One deadline for the whole CNI call: every request gets what is left of it.
        let etcd = Etcd::connect_by(&conf.etcd, std::time::Instant::now() + conf.etcd.timeout())?;
        let keys = Keys::new(conf.etcd.prefix(), &conf.ranges.network);
        Ok(EtcdStore {
            etcd,
            conf,
            keys,
            view: None,
            jump: None,
            jumped: false,
            steady: false,
            conflict: false,
            raced: false,
        })
    }

    /// Whether candidates were passed over by a jump; from now on none are.
    pub fn stop_jumping(&mut self) -> bool {
        let jumped = self.jumped;
        (self.steady, self.jump, self.jumped) = (true, None, false);
        jumped
    }

    /// Whether the last allocation lost to another ADD of the same container; the
    /// next one starts from a fresh read of the store.
    pub fn take_conflict(&mut self) -> bool {
        let conflict = self.conflict;
        if conflict {
            (self.conflict, self.view, self.jump, self.jumped) = (false, None, None, false);
        }
        conflict
    }

    /// A random usable address of `ip`'s range set, to jump to.
    fn jump_target(&self, ip: IpAddr) -> Option<IpAddr> {
        use std::hash::BuildHasher;
        let set = self.conf.ranges.range_sets.iter().find(|s| s.contains(ip))?;
        let size = set.size();
        // RandomState is seeded afresh in each process: random enough to scatter.
        let k = u128::from(std::collections::hash_map::RandomState::new().hash_one(ip)) % size.max(1);
        set.nth(k).filter(|t| *t != ip && set.range_for(*t).is_some_and(|r| r.gateway != *t))
    }

    /// What an allocation for `owner` starts from, in one round trip, once.
    fn view(&mut self, owner: &Attachment) -> Result<&mut View, CniError> {
        if self.view.as_ref().is_none_or(|v| v.owner != *owner) {
            let node = self.conf.node.clone();
            let (mine, lasts) = (self.keys.owned_by(&node, owner), self.keys.lasts(&node));
            let (revision, read) =
                self.etcd.read_at("read the caller's reservations", &[(mine.clone(), true), (lasts.clone(), false)])?;
            let tail = |kv: &Kv, prefix: &str| kv.key.strip_prefix(prefix).map(str::to_string);
            let last = |kv: &Kv| -> Option<(usize, IpAddr)> {
                Some((tail(kv, &lasts)?.parse().ok()?, String::from_utf8(kv.value.clone()).ok()?.parse().ok()?))
            };
            self.view = Some(View {
                owner: owner.clone(),
                owned: read[0].iter().filter_map(|kv| tail(kv, &mine)?.parse().ok()).collect(),
                owner_keys: read[0].iter().map(|kv| kv.key.clone()).collect(),
                lasts: read[1].iter().filter_map(last).collect(),
                windows: Vec::new(),
                taken: HashSet::new(),
                revision,
            });
        }
        Ok(self.view.as_mut().expect("just read"))
    }

    /// The window of addresses read from `ip`: its first and last address numbers,
    /// and the key range holding their records.
    fn window(&self, ip: IpAddr) -> (u128, u128, String, String) {
        let first = to_u128(ip);
        let max = if ip.is_ipv4() { u128::from(u32::MAX) } else { u128::MAX };
        let last = first.saturating_add(WINDOW - 1).min(max);
        let start = self.keys.ip(ip);
        // One past the window; past the family's last address, "g" (after every hex
        // digit) ends the family's keys.
        let end = match (last < max).then(|| from_u128(last + 1, ip)) {
            Some(next) => self.keys.ip(next),
            None => format!("{}g", &start[..=start.rfind('/').expect("a key has slashes")]),
        };
        (first, last, start, end)
    }

    /// Records the held addresses of the window from `ip` as read.
    fn learn(&mut self, ip: IpAddr, owner: &Attachment, held: &[Kv]) -> Result<(), CniError> {
        let (first, last, ..) = self.window(ip);
        let held: Vec<IpAddr> = held.iter().filter_map(|kv| self.keys.parse_ip(&kv.key)).collect();
        let view = self.view(owner)?;
        view.windows.push((first, last, ip.is_ipv4()));
        view.taken.extend(held);
        Ok(())
    }

    /// Whether `ip` is known to be held. Unread addresses count as free: the claim's
    /// transaction is what decides, and a lost one brings the window back.
    fn taken(&mut self, ip: IpAddr, owner: &Attachment) -> Result<bool, CniError> {
        let view = self.view(owner)?;
        Ok(view.covers(ip) && view.taken.contains(&ip))
    }

    /// Every address record of the network.
    pub fn all(&mut self) -> Result<Vec<(IpAddr, Option<Record>)>, CniError> {
        let mut out = Vec::new();
        for prefix in self.keys.ips() {
            for kv in self.etcd.list(&prefix, false)? {
                if let Some(ip) = self.keys.parse_ip(&kv.key) {
                    out.push((ip, serde_json::from_slice(&kv.value).ok()));
                }
            }
        }
        Ok(out)
    }

    /// Where this node starts looking in `set` when it has no last address: spread by
    /// the node's name, so nodes rarely race for the same candidates.
    fn start_of(&self, set: &RangeSet) -> Option<IpAddr> {
        let size = set.size();
        if size == 0 {
            return None;
        }
        set.nth(u128::from(spread(underlay::stable_hash(self.conf.node.bytes()))) % size)
    }

    /// Holds `ip` for `owner` outside allocation (a network's aux address): claimed
    /// like any address, without moving the node's round-robin position. Already held
    /// by the same owner from another node counts as held.
    pub fn hold(&mut self, ip: IpAddr, owner: &Attachment) -> Result<bool, CniError> {
        if self.claim(ip, owner, None)? {
            return Ok(true);
        }
        let held = self.etcd.get(&self.keys.ip(ip))?.and_then(|kv| serde_json::from_slice::<Record>(&kv.value).ok());
        Ok(held.is_some_and(|r| r.owner() == *owner))
    }

    /// One transaction: the address record and the owner record (and the node's
    /// position in range set `set`), only if nobody holds the address.
    fn claim(&mut self, ip: IpAddr, owner: &Attachment, set: Option<usize>) -> Result<bool, CniError> {
        let node = &self.conf.node;
        let record =
            Record { ip, container_id: owner.container_id.clone(), ifname: owner.ifname.clone(), node: node.clone() };
        let key = self.keys.ip(ip);
        let mut ops = vec![
            TxnOp::put(key.clone(), serde_json::to_vec(&record).expect("serializes"), None),
            TxnOp::put(self.keys.owner(node, owner, ip), "", None),
        ];
        if let Some(set) = set {
            ops.push(TxnOp::put(self.keys.last(node, set), ip.to_string(), None));
        }
        let mut when = vec![Compare::version(key.clone(), CompareOp::Equal, 0)];
        let mine = self.keys.owned_by(node, owner);
        let known = self.view.as_ref().filter(|_| set.is_some()).map(|v| v.owner_keys.clone()).unwrap_or_default();
        if set.is_some() {
            when.extend(guard::only(&mine, &known));
        }
        // What a lost claim needs, read in the same transaction: who holds the address
        // (a retried try may have won), the caller's owner records, and the window of
        // held addresses from here on (unless read already).
        let window = self.window(ip);
        let unread = set.is_some() && !self.view.as_ref().is_some_and(|v| v.covers(ip));
        let mut reads = vec![
            TxnOp::get(key.clone(), None),
            TxnOp::get(mine.clone(), Some(GetOptions::new().with_prefix().with_keys_only())),
        ];
        if unread {
            reads.push(TxnOp::get(window.2, Some(GetOptions::new().with_range(window.3).with_keys_only())));
        }
        let txn = Txn::new().when(when).and_then(ops).or_else(reads);
        let (won, read, _) = self.etcd.txn_reading(&format!("reserve {ip}"), txn)?;
        if won {
            return Ok(true);
        }
        if unread && let Some(held) = read.get(2) {
            self.learn(ip, owner, held)?;
        }
        // Lost, or won by a try whose answer was lost, or the owner gained an address.
        if read[0].first().and_then(|kv| serde_json::from_slice::<Record>(&kv.value).ok()) == Some(record) {
            return Ok(true);
        }
        let read_at = self.view.as_ref().map_or(i64::MAX, |v| v.revision);
        self.raced = read[0].first().is_none_or(|kv| kv.mod_revision > read_at);
        if set.is_some() && read[1].iter().any(|kv| !known.contains(&kv.key)) {
            self.conflict = true;
            return Err(CniError::try_again(format!(
                "container {} interface {} got an address from another call while this one allocated",
                owner.container_id, owner.ifname
            )));
        }
        Ok(false)
    }

    /// Frees `ip` if its record is still the one read (a concurrent change wins).
    fn free(&mut self, ip: IpAddr, record: &Record, mod_revision: i64) -> Result<bool, CniError> {
        let key = self.keys.ip(ip);
        let txn = Txn::new().when([Compare::mod_revision(key.clone(), CompareOp::Equal, mod_revision)]).and_then([
            TxnOp::delete(key, None),
            TxnOp::delete(self.keys.owner(&record.node, &record.owner(), ip), None),
        ]);
        self.etcd.txn(&format!("release {ip}"), txn)
    }
}

impl Store for EtcdStore<'_> {
    fn reserve(&mut self, ip: IpAddr, owner: &Attachment, set: usize) -> Result<bool, CniError> {
        if let Some(target) = self.jump {
            if target != ip {
                self.jumped = true;
                return Ok(false);
            }
            self.jump = None;
        }
        if self.conf.excluded(ip) || self.taken(ip, owner)? {
            return Ok(false);
        }
        let won = self.claim(ip, owner, Some(set))?;
        let owner_key = self.keys.owner(&self.conf.node, owner, ip);
        if !won && self.raced && !self.steady {
            self.jump = self.jump_target(ip);
        }
        let view = self.view(owner)?;
        view.taken.insert(ip);
        if won {
            view.owned.push(ip);
            view.owner_keys.push(owner_key);
            view.lasts.insert(set, ip);
        }
        Ok(won)
    }

    fn owned(&mut self, owner: &Attachment) -> Result<Vec<IpAddr>, CniError> {
        Ok(self.view(owner)?.owned.clone())
    }

    fn release(&mut self, owner: &Attachment) -> Result<Vec<IpAddr>, CniError> {
        let mut freed = Vec::new();
        let held = self.owned(owner)?;
        self.view = None;
        let node = self.conf.node.clone();
        for ip in held {
            let record = self.etcd.get(&self.keys.ip(ip))?;
            match record {
                Some(kv)
                    if serde_json::from_slice::<Record>(&kv.value)
                        .is_ok_and(|r| r.node == node && r.owner() == *owner) =>
                {
                    let r: Record = serde_json::from_slice(&kv.value).expect("parsed above");
                    if self.free(ip, &r, kv.mod_revision)? {
                        freed.push(ip);
                    }
                }
                // An owner record without its address record cannot be written by this
                // plugin; if one exists anyway, it goes, and nothing else.
                _ => {
                    let key = self.keys.owner(&node, owner, ip);
                    let txn = Txn::new().and_then([TxnOp::delete(key.clone(), None)]);
                    self.etcd.txn(&format!("drop the stale owner record {key}"), txn)?;
                }
            }
        }
        Ok(freed)
    }

    fn remove(&mut self, ip: IpAddr) -> Result<(), CniError> {
        // Undoing an ADD that lost to another of the same owner: what it claimed stays.
        if self.conflict {
            return Ok(());
        }
        self.view = None;
        let key = self.keys.ip(ip);
        if let Some(kv) = self.etcd.get(&key)? {
            match serde_json::from_slice::<Record>(&kv.value) {
                Ok(record) => {
                    self.free(ip, &record, kv.mod_revision)?;
                }
                Err(_) => {
                    let txn = Txn::new()
                        .when([Compare::mod_revision(key.clone(), CompareOp::Equal, kv.mod_revision)])
                        .and_then([TxnOp::delete(key, None)]);
                    self.etcd.txn(&format!("release {ip}"), txn)?;
                }
            }
        }
        Ok(())
    }

    fn last_reserved(&mut self, set: usize) -> Result<Option<IpAddr>, CniError> {
        let range_set = &self.conf.ranges.range_sets[set];
        let last = match &self.view {
            Some(v) => v.lasts.get(&set).copied(),
            None => self
                .etcd
                .get(&self.keys.last(&self.conf.node, set))?
                .and_then(|kv| String::from_utf8(kv.value).ok()?.parse().ok()),
        };
        match last {
            Some(ip) if range_set.contains(ip) => Ok(Some(ip)),
            _ => Ok(self.start_of(range_set)),
        }
    }

    /// A foreign device's address (`underlay::ipam::hold`): an address record naming
    /// the device's MAC and the hold's end, claimed by this node like an aux address.
    fn hold(&mut self, ip: IpAddr, owner: &Attachment) -> Result<bool, CniError> {
        if self.conf.excluded(ip) {
            return Ok(false);
        }
        let held = EtcdStore::hold(self, ip, owner)?;
        if let Some(view) = self.view.as_mut() {
            view.taken.insert(ip);
        }
        Ok(held)
    }

    /// This node's reservations only: GC never touches another node's.
    fn reservations(&mut self) -> Result<Vec<(IpAddr, Option<Attachment>)>, CniError> {
        let node = self.conf.node.clone();
        let prefix = self.keys.node(&node);
        Ok(self
            .etcd
            .list(&prefix, true)?
            .iter()
            .filter_map(|kv| self.keys.parse_owner(&node, &kv.key))
            .map(|(owner, ip)| (ip, Some(owner)))
            .collect())
    }
}
