//! The owner index beside a host-local store: which addresses a (container, interface)
//! holds, without reading every reservation. 64 bucket files, chosen by a hash of the
//! owner, each holding `containerID<TAB>ifname<TAB>ip` lines. Buckets are rewritten in
//! place, so a busy store does not churn through inodes (on ext4, allocating inodes
//! right after freeing many is what gets slow). The index is only a hint: every address
//! it names is checked against its reservation file before it is used.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::net::IpAddr;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::stamp::Stamp;
use crate::cni::error::io_error;
use crate::cni::{Attachment, CniError};

/// Few enough that all of them are created once, when the index is first built (on
/// ext4, creating a file right after many were deleted is what costs), many enough that
/// a bucket stays a few KiB even for a /16 full of containers.
const BUCKETS: u64 = 64;

#[derive(Debug, Default, Serialize, Deserialize)]
pub(super) struct State {
    pub boot_id: String,
    pub store: Option<Stamp>,
}

pub(super) enum OwnerIndex {
    /// Bucket files under this directory, in step with the store.
    Buckets(PathBuf),
    /// No usable side directory: built by reading every reservation.
    Memory(HashMap<Attachment, Vec<IpAddr>>),
}

/// Reads a file of the side directory without following a symbolic link there (someone
/// who can write the directory must not make us read or write elsewhere). `None` when
/// it does not exist.
pub(super) fn read_nofollow(path: &Path) -> Result<Option<Vec<u8>>, CniError> {
    read_nofollow_io(path).map_err(|e| io_error(format_args!("read {}", path.display()), e))
}

fn read_nofollow_io(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    use std::io::Read;
    let mut f = match OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    f.read_to_end(&mut out)?;
    Ok(Some(out))
}

/// Writes `content` over `path` in place (no new inode). Only for files whose torn
/// state is harmless: a torn bucket or state fails the stamp check and the index is
/// rebuilt; a torn `last_reserved_ip.N` only restarts round-robin (and the reference
/// writes it the same way).
pub(super) fn write_in_place(path: &Path, content: &[u8]) -> Result<(), CniError> {
    let f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| io_error(format_args!("open {}", path.display()), e))?;
    f.write_all_at(content, 0)
        .and_then(|()| f.set_len(content.len() as u64))
        .map_err(|e| io_error(format_args!("write {}", path.display()), e))
}

fn bucket_of(owner: &Attachment) -> u64 {
    crate::stable_hash(owner.container_id.bytes().chain([0]).chain(owner.ifname.bytes())) % BUCKETS
}

/// The `(owner, address)` lines of an index bucket; damaged lines are skipped (the
/// index is only a cache of the records, rebuilt when it disagrees with them).
pub fn parse_bucket(text: &str) -> impl Iterator<Item = (Attachment, IpAddr)> + '_ {
    text.lines().filter_map(|l| {
        let mut parts = l.split('\t');
        let (id, ifname, ip) = (parts.next()?, parts.next()?, parts.next()?.parse().ok()?);
        Some((Attachment { container_id: id.to_string(), ifname: ifname.to_string() }, ip))
    })
}

fn line(owner: &Attachment, ip: IpAddr) -> String {
    format!("{}\t{}\t{ip}\n", owner.container_id, owner.ifname)
}

impl OwnerIndex {
    pub(super) fn side(&self) -> Option<&Path> {
        match self {
            OwnerIndex::Buckets(dir) => dir.parent(),
            OwnerIndex::Memory(_) => None,
        }
    }

    fn bucket_path(dir: &Path, owner: &Attachment) -> PathBuf {
        dir.join(format!("{:02x}", bucket_of(owner)))
    }

    /// The addresses listed for exactly this owner record.
    pub(super) fn get(&self, owner: &Attachment) -> Vec<IpAddr> {
        match self {
            OwnerIndex::Buckets(dir) => read_nofollow(&Self::bucket_path(dir, owner))
                .ok()
                .flatten()
                .map(|b| {
                    let t = String::from_utf8_lossy(&b);
                    parse_bucket(&t).filter(|(o, _)| o == owner).map(|(_, ip)| ip).collect()
                })
                .unwrap_or_default(),
            OwnerIndex::Memory(m) => m.get(owner).cloned().unwrap_or_default(),
        }
    }

    pub(super) fn set(&mut self, owner: &Attachment, ips: &[IpAddr]) -> Result<(), CniError> {
        match self {
            OwnerIndex::Buckets(dir) => {
                let path = Self::bucket_path(dir, owner);
                let old = String::from_utf8_lossy(&read_nofollow(&path)?.unwrap_or_default()).into_owned();
                let mut text: String =
                    parse_bucket(&old).filter(|(o, _)| o != owner).map(|(o, ip)| line(&o, ip)).collect();
                text.extend(ips.iter().map(|ip| line(owner, *ip)));
                write_in_place(&path, text.as_bytes())
            }
            OwnerIndex::Memory(m) => {
                if ips.is_empty() {
                    m.remove(owner);
                } else {
                    m.insert(owner.clone(), ips.to_vec());
                }
                Ok(())
            }
        }
    }

    /// Replaces the whole index with `owners`.
    pub(super) fn rebuild(&mut self, owners: HashMap<Attachment, Vec<IpAddr>>) -> Result<(), CniError> {
        match self {
            OwnerIndex::Buckets(dir) => {
                let mut buckets: HashMap<u64, String> = HashMap::new();
                for (owner, ips) in &owners {
                    let text = buckets.entry(bucket_of(owner)).or_default();
                    text.extend(ips.iter().map(|ip| line(owner, *ip)));
                }
                for b in 0..BUCKETS {
                    let text = buckets.get(&b).map(String::as_str).unwrap_or_default();
                    write_in_place(&dir.join(format!("{b:02x}")), text.as_bytes())?;
                }
                Ok(())
            }
            OwnerIndex::Memory(m) => {
                *m = owners;
                Ok(())
            }
        }
    }
}

/// The index's state; `None` if there is no state file, `Some(default)` if it is torn.
pub(super) fn load_state(side: &Path) -> Option<State> {
    // A state that cannot be read (a symlink among them) is torn: rebuild, and the
    // save that follows refuses the link by name.
    let bytes = match read_nofollow_io(&side.join("state")) {
        Ok(b) => b?,
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Some(State::default()),
        Err(_) => return None,
    };
    Some(serde_json::from_slice(&bytes).unwrap_or_default())
}

pub(super) fn save_state(side: &Path, state: &State) -> Result<(), CniError> {
    write_in_place(&side.join("state"), &serde_json::to_vec(state).expect("state serializes"))
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::MetadataExt;

    use super::*;

    fn o(id: &str, ifname: &str) -> Attachment {
        Attachment { container_id: id.into(), ifname: ifname.into() }
    }

    #[test]
    fn buckets_keep_owners_apart_and_shrink_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let mut idx = OwnerIndex::Buckets(dir.path().to_path_buf());
        let ip: IpAddr = "10.0.0.2".parse().unwrap();
        let ip6: IpAddr = "2001:db8::2".parse().unwrap();
        for i in 0..600 {
            idx.set(&o(&format!("c{i}"), "eth0"), &[ip]).unwrap();
        }
        idx.set(&o("c7", "eth0"), &[ip, ip6]).unwrap();
        assert_eq!(idx.get(&o("c7", "eth0")), [ip, ip6]);
        assert!(idx.get(&o("c7", "eth1")).is_empty());
        assert!(idx.get(&o("c7", "")).is_empty());
        let path = OwnerIndex::bucket_path(dir.path(), &o("c7", "eth0"));
        let ino = fs::metadata(&path).unwrap().ino();
        idx.set(&o("c7", "eth0"), &[]).unwrap();
        assert!(idx.get(&o("c7", "eth0")).is_empty());
        assert_eq!(fs::metadata(&path).unwrap().ino(), ino, "rewritten in place");
        assert_eq!(idx.get(&o("c8", "eth0")), [ip]);
        assert!(fs::read_dir(dir.path()).unwrap().count() <= BUCKETS as usize);
    }
}
