//! host-local's on-disk store, byte for byte: `<dataDir>/<network>/<ip>` holding
//! `<containerID>\r\n<ifname>`, `last_reserved_ip.<set>`, and `lock` taken with flock,
//! so the reference Go plugin and this one can share a store, even at the same time.
//!
//! What the reference does in O(n) (it reads every reservation on every call to find a
//! container's addresses) is O(1) here: an owner index lives beside the store, in
//! `<dataDir>/.underlay/<network>/`, which the reference never looks at. The index is
//! trusted only while the store directory's inode, mtime and ctime are what the index
//! last saw; any change made by someone else (the reference plugin, an operator)
//! changes them, and the index is rebuilt from the files. The boot ID is kept there
//! too, so reservations made before a reboot can be recognised.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::net::IpAddr;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::store::{Store, decode_owner, encode_owner};
use crate::cni::{Attachment, CniError};

const LAST_RESERVED: &str = "last_reserved_ip.";
const SIDE_DIR: &str = ".underlay";

/// The running boot: its random ID and when it started (seconds since the epoch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Boot {
    pub id: String,
    pub btime: i64,
}

impl Boot {
    pub fn current() -> Result<Boot, CniError> {
        let id = fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .map_err(|e| CniError::io(format!("read boot id: {e}")))?
            .trim()
            .to_string();
        let stat = fs::read_to_string("/proc/stat")
            .map_err(|e| CniError::io(format!("read /proc/stat: {e}")))?;
        let btime = stat
            .lines()
            .find_map(|l| l.strip_prefix("btime "))
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| CniError::io("no btime in /proc/stat"))?;
        Ok(Boot { id, btime })
    }
}

/// What the index last saw of the store directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Stamp {
    ino: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    boot_id: String,
    store: Option<Stamp>,
}

enum Index {
    /// `<side>/owners/` is in step with the store.
    Files(PathBuf),
    /// No side directory could be used: built by reading every reservation.
    Memory(HashMap<Attachment, Vec<IpAddr>>),
}

/// An open, locked store. The lock is released when it is dropped.
pub struct DiskStore {
    dir: PathBuf,
    index: Index,
    boot_id: String,
    /// The store changed since the index's stamp was written.
    dirty: bool,
    /// Reservations dropped because they predate the running boot.
    pub reclaimed: Vec<IpAddr>,
    _lock: File,
}

fn io(what: impl std::fmt::Display, e: std::io::Error) -> CniError {
    CniError::io(format!("{what}: {e}"))
}

fn stamp(dir: &Path) -> Result<Stamp, CniError> {
    let m = fs::metadata(dir).map_err(|e| io(format_args!("stat {}", dir.display()), e))?;
    Ok(Stamp {
        ino: m.ino(),
        mtime: (m.mtime(), m.mtime_nsec()),
        ctime: (m.ctime(), m.ctime_nsec()),
    })
}

/// Writes `content` to `dest` through a temporary file in `tmp_dir` and a rename, so a
/// reader never sees half of it.
fn write_atomic(tmp_dir: &Path, dest: &Path, content: &[u8]) -> Result<(), CniError> {
    let tmp = tmp_dir.join(format!(".tmp-{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(content)?;
        fs::rename(&tmp, dest)
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        io(format_args!("write {}", dest.display()), e)
    })
}

fn owner_file_name(owner: &Attachment) -> String {
    let plain = format!("{}:{}", owner.container_id, owner.ifname);
    if plain.len() <= 200 && !plain.starts_with('.') && !plain.contains(['/', '\0']) {
        return plain;
    }
    // FNV-1a: names too long for the filesystem get a stable short one; the file
    // itself names its owner, so a collision is detected, not trusted.
    let hash = plain.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("#{hash:016x}")
}

/// An owner file: its owner on two lines, then one address per line.
fn encode_owner_file(owner: &Attachment, ips: &[IpAddr]) -> String {
    let mut s = format!("{}\n{}\n", owner.container_id, owner.ifname);
    for ip in ips {
        s += &format!("{ip}\n");
    }
    s
}

fn decode_owner_file(text: &str, owner: &Attachment) -> Vec<IpAddr> {
    let mut lines = text.lines();
    if lines.next() != Some(owner.container_id.as_str())
        || lines.next() != Some(owner.ifname.as_str())
    {
        return Vec::new();
    }
    lines.filter_map(|l| l.parse().ok()).collect()
}

impl DiskStore {
    /// Opens (creating if needed) and locks the store at `dir` (`<dataDir>/<network>`).
    /// With `reclaim`, reservations made before the running boot are dropped on the
    /// first use after a reboot.
    pub fn open(dir: &Path, boot: &Boot, reclaim: bool) -> Result<DiskStore, CniError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(dir)
            .map_err(|e| io(format_args!("create store {}", dir.display()), e))?;
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .open(dir.join("lock"))
            .map_err(|e| io(format_args!("open {}/lock", dir.display()), e))?;
        lock.lock()
            .map_err(|e| io(format_args!("lock {}/lock", dir.display()), e))?;
        let mut store = DiskStore {
            dir: dir.to_path_buf(),
            index: Index::Memory(HashMap::new()),
            boot_id: boot.id.clone(),
            dirty: false,
            reclaimed: Vec::new(),
            _lock: lock,
        };
        let side = dir
            .parent()
            .zip(dir.file_name())
            .map(|(p, n)| p.join(SIDE_DIR).join(n));
        let side = side.filter(|s| {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(s.join("owners"))
                .is_ok()
        });
        let state: State = side
            .as_ref()
            .and_then(|s| fs::read(s.join("state")).ok())
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let new_boot = state.boot_id != boot.id;
        if new_boot && reclaim {
            store.reclaim_before(boot.btime)?;
        }
        match side {
            Some(side) if !new_boot && state.store == Some(stamp(dir)?) => {
                store.index = Index::Files(side)
            }
            Some(side) => {
                let owners = store.scan_owners()?;
                store.index = Index::Files(side);
                store.rewrite_owner_files(&owners)?;
                store.dirty = true;
                store.commit()?;
            }
            None => store.index = Index::Memory(store.scan_owners()?),
        }
        Ok(store)
    }

    /// Every reservation file: (address, owner or `None` if unreadable).
    fn scan(&self) -> Result<Vec<(IpAddr, Option<Attachment>)>, CniError> {
        let entries = fs::read_dir(&self.dir)
            .map_err(|e| io(format_args!("read {}", self.dir.display()), e))?;
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let Some(ip) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<IpAddr>().ok())
            else {
                continue;
            };
            let owner = fs::read_to_string(entry.path())
                .ok()
                .and_then(|t| decode_owner(&t));
            out.push((ip, owner));
        }
        Ok(out)
    }

    fn scan_owners(&self) -> Result<HashMap<Attachment, Vec<IpAddr>>, CniError> {
        let mut owners: HashMap<Attachment, Vec<IpAddr>> = HashMap::new();
        for (ip, owner) in self.scan()? {
            if let Some(o) = owner {
                owners.entry(o).or_default().push(ip);
            }
        }
        Ok(owners)
    }

    /// Drops reservation files last changed before the running boot started: their
    /// containers' namespaces died with the previous boot.
    fn reclaim_before(&mut self, btime: i64) -> Result<(), CniError> {
        let entries = fs::read_dir(&self.dir)
            .map_err(|e| io(format_args!("read {}", self.dir.display()), e))?;
        for entry in entries.flatten() {
            let Some(ip) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<IpAddr>().ok())
            else {
                continue;
            };
            let stale = entry.metadata().map(|m| m.ctime() < btime).unwrap_or(false);
            if stale && fs::remove_file(entry.path()).is_ok() {
                self.reclaimed.push(ip);
                self.dirty = true;
            }
        }
        Ok(())
    }

    fn side(&self) -> Option<&Path> {
        match &self.index {
            Index::Files(side) => Some(side),
            Index::Memory(_) => None,
        }
    }

    fn rewrite_owner_files(
        &self,
        owners: &HashMap<Attachment, Vec<IpAddr>>,
    ) -> Result<(), CniError> {
        let Some(side) = self.side() else {
            return Ok(());
        };
        let dir = side.join("owners");
        if let Ok(entries) = fs::read_dir(&dir) {
            for e in entries.flatten() {
                let _ = fs::remove_file(e.path());
            }
        }
        for (owner, ips) in owners {
            write_atomic(
                side,
                &dir.join(owner_file_name(owner)),
                encode_owner_file(owner, ips).as_bytes(),
            )?;
        }
        Ok(())
    }

    /// Addresses the index lists for exactly this owner record.
    fn indexed(&self, owner: &Attachment) -> Vec<IpAddr> {
        match &self.index {
            Index::Files(side) => {
                fs::read_to_string(side.join("owners").join(owner_file_name(owner)))
                    .map(|t| decode_owner_file(&t, owner))
                    .unwrap_or_default()
            }
            Index::Memory(m) => m.get(owner).cloned().unwrap_or_default(),
        }
    }

    fn set_indexed(&mut self, owner: &Attachment, ips: Vec<IpAddr>) -> Result<(), CniError> {
        match &mut self.index {
            Index::Files(side) => {
                let path = side.join("owners").join(owner_file_name(owner));
                if ips.is_empty() {
                    match fs::remove_file(&path) {
                        Err(e) if e.kind() != ErrorKind::NotFound => {
                            Err(io(format_args!("remove {}", path.display()), e))
                        }
                        _ => Ok(()),
                    }
                } else {
                    write_atomic(side, &path, encode_owner_file(owner, &ips).as_bytes())
                }
            }
            Index::Memory(m) => {
                if ips.is_empty() {
                    m.remove(owner);
                } else {
                    m.insert(owner.clone(), ips);
                }
                Ok(())
            }
        }
    }

    /// The owner recorded in the reservation file for `ip`, if it exists.
    fn record(&self, ip: IpAddr) -> Option<Attachment> {
        fs::read_to_string(self.dir.join(ip.to_string()))
            .ok()
            .and_then(|t| decode_owner(&t))
    }

    /// Addresses held under exactly this owner record, checked against the files.
    fn held_by_record(&self, record: &Attachment) -> Vec<IpAddr> {
        self.indexed(record)
            .into_iter()
            .filter(|ip| self.record(*ip).as_ref() == Some(record))
            .collect()
    }

    /// Makes the index's stamp match the store again; until then a crash leaves the
    /// stamp stale and the next user rebuilds the index.
    pub fn commit(&mut self) -> Result<(), CniError> {
        if !self.dirty {
            return Ok(());
        }
        if let Some(side) = self.side() {
            let state = State {
                boot_id: self.boot_id.clone(),
                store: Some(stamp(&self.dir)?),
            };
            let bytes = serde_json::to_vec(&state).expect("state serializes");
            write_atomic(side, &side.join("state"), &bytes)?;
        }
        self.dirty = false;
        Ok(())
    }

    /// Creates the reservation file with its content in one step: the record is
    /// written to a temporary file beside the store and hard-linked into place, which
    /// fails if the address is taken. A reader never sees an empty reservation.
    fn create_record(&self, ip: IpAddr, owner: &Attachment) -> Result<bool, CniError> {
        let dest = self.dir.join(ip.to_string());
        let content = encode_owner(owner);
        if let Some(side) = self.side() {
            let tmp = side.join(format!(".rec-{}", std::process::id()));
            let linked = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)
                .and_then(|mut f| f.write_all(content.as_bytes()))
                .and_then(|()| fs::hard_link(&tmp, &dest));
            let _ = fs::remove_file(&tmp);
            match linked {
                Ok(()) => return Ok(true),
                Err(e) if e.kind() == ErrorKind::AlreadyExists => return Ok(false),
                // Not on the same filesystem: fall through to the reference's way.
                Err(e) if e.kind() == ErrorKind::CrossesDevices => {}
                Err(e) => return Err(io(format_args!("reserve {}", dest.display()), e)),
            }
        }
        let mut f = match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&dest)
        {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::AlreadyExists => return Ok(false),
            Err(e) => return Err(io(format_args!("reserve {}", dest.display()), e)),
        };
        if let Err(e) = f.write_all(content.as_bytes()) {
            let _ = fs::remove_file(&dest);
            return Err(io(format_args!("write {}", dest.display()), e));
        }
        Ok(true)
    }
}

impl Store for DiskStore {
    fn reserve(&mut self, ip: IpAddr, owner: &Attachment, set: usize) -> Result<bool, CniError> {
        if !self.create_record(ip, owner)? {
            return Ok(false);
        }
        self.dirty = true;
        let mut ips = self.indexed(owner);
        ips.push(ip);
        self.set_indexed(owner, ips)?;
        let tmp_dir = self
            .side()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| self.dir.clone());
        write_atomic(
            &tmp_dir,
            &self.dir.join(format!("{LAST_RESERVED}{set}")),
            ip.to_string().as_bytes(),
        )?;
        Ok(true)
    }

    fn owned(&mut self, owner: &Attachment) -> Result<Vec<IpAddr>, CniError> {
        let old = Attachment {
            container_id: owner.container_id.clone(),
            ifname: String::new(),
        };
        let mut ips = self.held_by_record(owner);
        if !owner.ifname.is_empty() {
            ips.extend(self.held_by_record(&old));
        }
        Ok(ips)
    }

    fn release(&mut self, owner: &Attachment) -> Result<Vec<IpAddr>, CniError> {
        // As the reference does: records naming the interface first; records naming
        // only the container (written by old versions) when there are none.
        let mut record = owner.clone();
        let mut ips = self.held_by_record(&record);
        if ips.is_empty() && !owner.ifname.is_empty() {
            record.ifname.clear();
            ips = self.held_by_record(&record);
        }
        for ip in &ips {
            let path = self.dir.join(ip.to_string());
            match fs::remove_file(&path) {
                Err(e) if e.kind() != ErrorKind::NotFound => {
                    return Err(io(format_args!("release {}", path.display()), e));
                }
                _ => self.dirty = true,
            }
        }
        self.set_indexed(&record, Vec::new())?;
        Ok(ips)
    }

    fn remove(&mut self, ip: IpAddr) -> Result<(), CniError> {
        let owner = self.record(ip);
        let path = self.dir.join(ip.to_string());
        match fs::remove_file(&path) {
            Ok(()) => self.dirty = true,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io(format_args!("remove {}", path.display()), e)),
        }
        if let Some(owner) = owner {
            let ips: Vec<IpAddr> = self
                .indexed(&owner)
                .into_iter()
                .filter(|i| *i != ip)
                .collect();
            self.set_indexed(&owner, ips)?;
        }
        Ok(())
    }

    fn last_reserved(&mut self, set: usize) -> Result<Option<IpAddr>, CniError> {
        // A missing or torn file only costs round-robin its starting point.
        Ok(
            fs::read_to_string(self.dir.join(format!("{LAST_RESERVED}{set}")))
                .ok()
                .and_then(|s| s.trim().parse().ok()),
        )
    }

    fn reservations(&mut self) -> Result<Vec<(IpAddr, Option<Attachment>)>, CniError> {
        self.scan()
    }
}

impl Drop for DiskStore {
    fn drop(&mut self) {
        // Best effort: if it fails the stamp stays stale and the next user rebuilds.
        let _ = self.commit();
    }
}

#[cfg(test)]
#[path = "disk_tests.rs"]
mod tests;
