//! What the allocator needs from a reservation store, and the owner record that
//! host-local writes into each reservation file.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::cni::{Attachment, CniError};

/// Reservations of one network. All calls happen under the store's lock.
pub trait Store {
    /// Claims `ip` for `owner` unless someone holds it; remembers it as the last one
    /// reserved in range set `set`. `Ok(false)` when it is taken.
    fn reserve(&mut self, ip: IpAddr, owner: &Attachment, set: usize) -> Result<bool, CniError>;
    /// The addresses `owner` holds (including records that name only its container,
    /// as host-local wrote before it recorded interface names).
    fn owned(&mut self, owner: &Attachment) -> Result<Vec<IpAddr>, CniError>;
    /// Frees everything `owner` holds; returns what was freed.
    fn release(&mut self, owner: &Attachment) -> Result<Vec<IpAddr>, CniError>;
    /// Frees one address whoever holds it.
    fn remove(&mut self, ip: IpAddr) -> Result<(), CniError>;
    fn last_reserved(&mut self, set: usize) -> Result<Option<IpAddr>, CniError>;
    /// Every reservation with its owner (`None` when the record is unreadable).
    fn reservations(&mut self) -> Result<Vec<(IpAddr, Option<Attachment>)>, CniError>;
    /// Records `ip` as held by `owner` (a foreign device, see `hold`) without moving
    /// round-robin's position. `Ok(false)` when it is taken, or when the store keeps no
    /// foreign holds (then the caller's probes find the device again).
    fn hold(&mut self, ip: IpAddr, owner: &Attachment) -> Result<bool, CniError> {
        let _ = (ip, owner);
        Ok(false)
    }
}

/// host-local's record format: `<containerID>\r\n<ifname>`, or just the container ID in
/// records written by versions before 0.7.
pub fn encode_owner(owner: &Attachment) -> String {
    format!("{}\r\n{}", owner.container_id.trim(), owner.ifname)
}

pub fn decode_owner(text: &str) -> Option<Attachment> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let (id, ifname) = text.split_once("\r\n").unwrap_or((text, ""));
    Some(Attachment { container_id: id.trim().to_string(), ifname: ifname.trim().to_string() })
}

/// Records and `last_reserved_ip.N` hold an ID and an address; anything longer is not one.
const SMALL_FILE_CAP: u64 = 64 << 10;

/// The text of a small store file (a record, `last_reserved_ip.N`): `None` unless it is
/// a regular file (not followed through a symlink) of at most 64 KiB. A FIFO, a device
/// or a link planted under an address's name would otherwise block or flood the
/// plugin while it holds the store's lock; unreadable, the address stays reserved.
pub fn read_small(path: &std::path::Path) -> Option<String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .ok()?;
    if !f.metadata().ok()?.is_file() {
        return None;
    }
    let mut text = String::new();
    f.take(SMALL_FILE_CAP + 1).read_to_string(&mut text).ok()?;
    (text.len() as u64 <= SMALL_FILE_CAP).then_some(text)
}

/// Whether a record written for `record` belongs to `owner` (old records match any
/// interface of their container, as the reference plugin treats them).
pub fn matches(record: &Attachment, owner: &Attachment) -> bool {
    record.container_id == owner.container_id && (record.ifname == owner.ifname || record.ifname.is_empty())
}

/// An in-memory store: the allocator's reference model in property tests.
#[derive(Debug, Default)]
pub struct MemStore {
    pub held: HashMap<IpAddr, Attachment>,
    pub last: HashMap<usize, IpAddr>,
}

impl Store for MemStore {
    fn reserve(&mut self, ip: IpAddr, owner: &Attachment, set: usize) -> Result<bool, CniError> {
        if self.held.contains_key(&ip) {
            return Ok(false);
        }
        self.held.insert(ip, owner.clone());
        self.last.insert(set, ip);
        Ok(true)
    }
    fn owned(&mut self, owner: &Attachment) -> Result<Vec<IpAddr>, CniError> {
        let mut ips: Vec<IpAddr> = self.held.iter().filter(|(_, o)| matches(o, owner)).map(|(ip, _)| *ip).collect();
        ips.sort();
        Ok(ips)
    }
    fn release(&mut self, owner: &Attachment) -> Result<Vec<IpAddr>, CniError> {
        let ips = self.owned(owner)?;
        for ip in &ips {
            self.held.remove(ip);
        }
        Ok(ips)
    }
    fn remove(&mut self, ip: IpAddr) -> Result<(), CniError> {
        self.held.remove(&ip);
        Ok(())
    }
    fn last_reserved(&mut self, set: usize) -> Result<Option<IpAddr>, CniError> {
        Ok(self.last.get(&set).copied())
    }
    fn reservations(&mut self) -> Result<Vec<(IpAddr, Option<Attachment>)>, CniError> {
        Ok(self.held.iter().map(|(ip, o)| (*ip, Some(o.clone()))).collect())
    }
    fn hold(&mut self, ip: IpAddr, owner: &Attachment) -> Result<bool, CniError> {
        if self.held.contains_key(&ip) {
            return Ok(false);
        }
        self.held.insert(ip, owner.clone());
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_records_round_trip_and_old_records_match_any_ifname() {
        let o = Attachment { container_id: "abc".into(), ifname: "eth0".into() };
        assert_eq!(encode_owner(&o), "abc\r\neth0");
        assert_eq!(decode_owner("abc\r\neth0"), Some(o.clone()));
        let old = decode_owner("abc\n").unwrap();
        assert!(matches(&old, &o));
        assert!(!matches(&decode_owner("abc\r\neth1").unwrap(), &o));
        assert_eq!(decode_owner(""), None);
    }
}
