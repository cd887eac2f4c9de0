//! host-local's on-disk store, byte for byte: `<dataDir>/<network>/<ip>` holding
//! `<containerID>\r\n<ifname>`, `last_reserved_ip.<set>`, and `lock` taken with flock,
//! so the reference Go plugin and this one can share a store, even at the same time.
//!
//! What the reference does in O(n) (it reads every reservation on every call to find a
//! container's addresses) is O(1) here: an owner index lives beside the store, in
//! `<dataDir>/.underlay/<network>/`, where the reference never looks. The index is
//! trusted only while the store directory's inode, mtime and ctime are what the index
//! last saw; any change made by someone else (the reference plugin, an operator)
//! changes them, and the index is rebuilt from the files. The boot ID is kept there
//! too, so reservations made before a reboot can be recognised.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AT_FDCWD, AtFlags, RenameFlags, renameat2};
use nix::unistd::linkat;

use super::boot::Boot;
use super::owner_index::{OwnerIndex, State, load_state, save_state, write_in_place};
use super::stamp::{Stamp, fine_grained};
use super::store::{Store, decode_owner, encode_owner, read_small};
use crate::cni::error::io_error;
use crate::cni::{Attachment, CniError};

const LAST_RESERVED: &str = "last_reserved_ip.";
const SIDE_DIR: &str = ".underlay";
/// Released reservation files are kept (renamed) in this many spare slots beside the
/// store and reused for the next reservation: on ext4, allocating a fresh inode right
/// after many were freed costs more than the rest of an ADD.
const SPARES: usize = 16;

/// An open, locked store. The lock is released when it is dropped.
pub struct DiskStore {
    dir: PathBuf,
    index: OwnerIndex,
    boot_id: String,
    /// The store changed since the index's stamp was written.
    dirty: bool,
    /// Reservations dropped because they predate the running boot.
    pub reclaimed: Vec<IpAddr>,
    _lock: File,
}

fn ip_named(entry: &fs::DirEntry) -> Option<IpAddr> {
    entry.file_name().to_str()?.parse().ok()
}

impl DiskStore {
    /// Opens (creating if needed) and locks the store at `dir` (`<dataDir>/<network>`).
    /// With `reclaim`, reservations made before the running boot are dropped on the
    /// first use after a reboot.
    pub fn open(dir: &Path, boot: &Boot, reclaim: bool) -> Result<DiskStore, CniError> {
        let open_lock = || {
            OpenOptions::new().read(true).write(true).create(true).truncate(false).mode(0o644).open(dir.join("lock"))
        };
        // The directory is there on every call but the first: try before creating.
        let lock = match open_lock() {
            Err(e) if e.kind() == ErrorKind::NotFound => fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(dir)
                .and_then(|()| open_lock())
                .map_err(|e| io_error(format_args!("create store {}", dir.display()), e))?,
            other => other.map_err(|e| io_error(format_args!("open {}/lock", dir.display()), e))?,
        };
        lock.lock().map_err(|e| io_error(format_args!("lock {}/lock", dir.display()), e))?;
        let mut store = DiskStore {
            dir: dir.to_path_buf(),
            index: OwnerIndex::Memory(HashMap::new()),
            boot_id: boot.id.clone(),
            dirty: false,
            reclaimed: Vec::new(),
            _lock: lock,
        };
        let side = dir.parent().zip(dir.file_name()).map(|(p, n)| p.join(SIDE_DIR).join(n));
        let state = side.as_deref().and_then(load_state);
        // No state: a first use (or an unusable side directory, then the index is kept
        // in memory).
        let side = match state {
            Some(_) => side,
            None => side.filter(|s| fs::DirBuilder::new().recursive(true).mode(0o700).create(s.join("owners")).is_ok()),
        };
        let state = state.unwrap_or_default();
        let new_boot = state.boot_id != boot.id;
        if new_boot && reclaim {
            store.reclaim_before(boot.btime()?)?;
        }
        match side {
            Some(side) if !new_boot && state.store == Some(Stamp::of(dir)?) => {
                store.index = OwnerIndex::Buckets(side.join("owners"));
            }
            Some(side) => {
                store.index = OwnerIndex::Buckets(side.join("owners"));
                let owners = store.scan_owners()?;
                store.index.rebuild(owners)?;
                store.dirty = true;
                store.commit()?;
            }
            None => store.index = OwnerIndex::Memory(store.scan_owners()?),
        }
        Ok(store)
    }

    /// Every reservation file: (address, owner or `None` if unreadable).
    fn scan(&self) -> Result<Vec<(IpAddr, Option<Attachment>)>, CniError> {
        let entries = fs::read_dir(&self.dir).map_err(|e| io_error(format_args!("read {}", self.dir.display()), e))?;
        Ok(entries.flatten().filter_map(|e| Some((ip_named(&e)?, self.record_at(&e.path())))).collect())
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
        let entries = fs::read_dir(&self.dir).map_err(|e| io_error(format_args!("read {}", self.dir.display()), e))?;
        for entry in entries.flatten() {
            let Some(ip) = ip_named(&entry) else { continue };
            let stale = entry.metadata().map(|m| m.ctime() < btime).unwrap_or(false);
            if stale && fs::remove_file(entry.path()).is_ok() {
                self.reclaimed.push(ip);
                self.dirty = true;
            }
        }
        Ok(())
    }

    fn record_at(&self, path: &Path) -> Option<Attachment> {
        read_small(path).and_then(|t| decode_owner(&t))
    }

    /// The owner recorded in the reservation file for `ip`, if it exists.
    fn record(&self, ip: IpAddr) -> Option<Attachment> {
        self.record_at(&self.dir.join(ip.to_string()))
    }

    /// Addresses held under exactly this owner record, checked against the files. A
    /// listed file that names someone else means the index is wrong (a record was
    /// rewritten in place, which no directory timestamp shows): it is rebuilt.
    fn held_by_record(&mut self, record: &Attachment) -> Result<Vec<IpAddr>, CniError> {
        let listed = self.index.get(record);
        let held: Vec<IpAddr> = listed.iter().copied().filter(|ip| self.record(*ip).as_ref() == Some(record)).collect();
        if held.len() == listed.len() {
            return Ok(held);
        }
        self.rebuild_index()?;
        Ok(self.index.get(record))
    }

    fn rebuild_index(&mut self) -> Result<(), CniError> {
        let owners = self.scan_owners()?;
        self.index.rebuild(owners)?;
        self.dirty = true;
        Ok(())
    }

    /// Makes the index's stamp match the store again; until then a crash leaves the
    /// stamp stale and the next user rebuilds the index.
    pub fn commit(&mut self) -> Result<(), CniError> {
        if !self.dirty {
            return Ok(());
        }
        if let Some(side) = self.index.side() {
            let stamp = Stamp::of(&self.dir)?;
            save_state(side, &State { boot_id: self.boot_id.clone(), store: Some(stamp) })?;
            // With coarse timestamps, a write by the next lock holder (the reference
            // plugin) in this same clock tick would leave the stamp unchanged and go
            // unseen. Holding the lock until the tick is over makes every later change
            // visible; fine-grained ones make it so at once (stamp.rs).
            if !fine_grained(&self.dir, &side.join("clock")) {
                stamp.wait_until_past();
            }
        }
        self.dirty = false;
        Ok(())
    }

    /// Creates the reservation file with its content in one step, so no reader (and
    /// no crash) ever sees an empty one: the record is written into a file that has no
    /// name in the store yet (a spare, or an O_TMPFILE) and then linked into place,
    /// which fails if the address is taken. Without either, the reference's way.
    fn create_record(&self, ip: IpAddr, owner: &Attachment) -> Result<bool, CniError> {
        let dest = self.dir.join(ip.to_string());
        let content = encode_owner(owner);
        let what = || format!("reserve {}", dest.display());
        if let Some(taken) = self.reuse_spare(&dest, content.as_bytes()).map_err(|e| io_error(what(), e))? {
            return Ok(taken);
        }
        match OpenOptions::new().write(true).mode(0o600).custom_flags(libc::O_TMPFILE).open(&self.dir) {
            Ok(mut f) => {
                f.write_all(content.as_bytes()).map_err(|e| io_error(what(), e))?;
                return link_fd(&f, &dest).map_err(|e| io_error(what(), e));
            }
            Err(e) if matches!(e.raw_os_error(), Some(libc::EOPNOTSUPP | libc::EISDIR | libc::EINVAL)) => {}
            Err(e) => return Err(io_error(what(), e)),
        }
        let mut f = match OpenOptions::new().write(true).create_new(true).mode(0o600).open(&dest) {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::AlreadyExists => return Ok(false),
            Err(e) => return Err(io_error(what(), e)),
        };
        if let Err(e) = f.write_all(content.as_bytes()) {
            let _ = fs::remove_file(&dest);
            return Err(io_error(what(), e));
        }
        Ok(true)
    }

    /// Writes `content` into a spare file and links it to `dest`. `None` when there is
    /// no usable spare.
    fn reuse_spare(&self, dest: &Path, content: &[u8]) -> std::io::Result<Option<bool>> {
        use std::os::unix::fs::FileExt;
        let Some(side) = self.index.side() else { return Ok(None) };
        for k in 0..SPARES {
            let spare = side.join(format!("spare.{k}"));
            let f = match OpenOptions::new().write(true).custom_flags(libc::O_NOFOLLOW).open(&spare) {
                Ok(f) => f,
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            // A spare still linked into the store (a crash between link and unlink)
            // is someone's reservation: drop the spare name, never write into it.
            if f.metadata()?.nlink() != 1 {
                fs::remove_file(&spare)?;
                continue;
            }
            f.write_all_at(content, 0)?;
            f.set_len(content.len() as u64)?;
            return match fs::hard_link(&spare, dest) {
                Ok(()) => fs::remove_file(&spare).map(|()| Some(true)),
                Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(Some(false)),
                Err(e) => Err(e),
            };
        }
        Ok(None)
    }

    /// Removes the reservation file for `ip`, keeping its inode as a spare when a slot
    /// is free. `Ok(false)` if there was none.
    fn unlink_record(&self, ip: IpAddr) -> Result<bool, CniError> {
        let path = self.dir.join(ip.to_string());
        if let Some(side) = self.index.side() {
            for k in 0..SPARES {
                match rename_noreplace(&path, &side.join(format!("spare.{k}"))) {
                    Ok(()) => return Ok(true),
                    Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
                    Err(e) if e.kind() == ErrorKind::NotFound => return Ok(false),
                    // Another filesystem, or no renameat2: plain unlink below.
                    Err(_) => break,
                }
            }
        }
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_error(format_args!("release {}", path.display()), e)),
        }
    }
}

/// rename(2) that fails with EEXIST instead of replacing `to`.
fn rename_noreplace(from: &Path, to: &Path) -> std::io::Result<()> {
    renameat2(AT_FDCWD, from, AT_FDCWD, to, RenameFlags::RENAME_NOREPLACE).map_err(std::io::Error::from)
}

/// Gives the unnamed file `f` the name `dest`; `Ok(false)` if `dest` exists.
fn link_fd(f: &File, dest: &Path) -> std::io::Result<bool> {
    let from = format!("/proc/self/fd/{}", f.as_raw_fd());
    match linkat(AT_FDCWD, from.as_str(), AT_FDCWD, dest, AtFlags::AT_SYMLINK_FOLLOW) {
        Ok(()) => Ok(true),
        Err(Errno::EEXIST) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

impl DiskStore {
    /// Reserves `ip` for `owner` without touching round-robin's position (addresses
    /// held aside, like Docker's aux addresses). `Ok(false)` when it is taken.
    pub fn hold(&mut self, ip: IpAddr, owner: &Attachment) -> Result<bool, CniError> {
        if !self.create_record(ip, owner)? {
            return Ok(false);
        }
        self.dirty = true;
        let mut ips = self.index.get(owner);
        ips.push(ip);
        self.index.set(owner, &ips)?;
        Ok(true)
    }
}

impl Store for DiskStore {
    fn reserve(&mut self, ip: IpAddr, owner: &Attachment, set: usize) -> Result<bool, CniError> {
        if !self.hold(ip, owner)? {
            return Ok(false);
        }
        write_in_place(&self.dir.join(format!("{LAST_RESERVED}{set}")), ip.to_string().as_bytes())?;
        Ok(true)
    }

    fn owned(&mut self, owner: &Attachment) -> Result<Vec<IpAddr>, CniError> {
        let old = Attachment { container_id: owner.container_id.clone(), ifname: String::new() };
        let mut ips = self.held_by_record(owner)?;
        if !owner.ifname.is_empty() {
            ips.extend(self.held_by_record(&old)?);
        }
        Ok(ips)
    }

    fn release(&mut self, owner: &Attachment) -> Result<Vec<IpAddr>, CniError> {
        // As the reference does: records naming the interface first; records naming
        // only the container (written by old versions) when there are none.
        let lookup = |store: &mut Self| -> Result<(Attachment, Vec<IpAddr>), CniError> {
            let mut record = owner.clone();
            let mut ips = store.held_by_record(&record)?;
            if ips.is_empty() && !owner.ifname.is_empty() {
                record.ifname.clear();
                ips = store.held_by_record(&record)?;
            }
            Ok((record, ips))
        };
        let (mut record, mut ips) = lookup(self)?;
        // Nothing under this owner: a DEL of an unknown owner is rare (a repeated DEL),
        // so confirm from the files, which a record rewritten in place may contradict.
        if ips.is_empty() {
            self.rebuild_index()?;
            (record, ips) = lookup(self)?;
        }
        for ip in &ips {
            self.unlink_record(*ip)?;
            self.dirty = true;
        }
        if !ips.is_empty() {
            self.index.set(&record, &[])?;
        }
        Ok(ips)
    }

    fn remove(&mut self, ip: IpAddr) -> Result<(), CniError> {
        let owner = self.record(ip);
        if !self.unlink_record(ip)? {
            return Ok(());
        }
        self.dirty = true;
        if let Some(owner) = owner {
            let ips: Vec<IpAddr> = self.index.get(&owner).into_iter().filter(|i| *i != ip).collect();
            self.index.set(&owner, &ips)?;
        }
        Ok(())
    }

    fn last_reserved(&mut self, set: usize) -> Result<Option<IpAddr>, CniError> {
        // A missing or torn file only costs round-robin its starting point.
        Ok(read_small(&self.dir.join(format!("{LAST_RESERVED}{set}"))).and_then(|s| s.trim().parse().ok()))
    }

    fn reservations(&mut self) -> Result<Vec<(IpAddr, Option<Attachment>)>, CniError> {
        self.scan()
    }

    fn hold(&mut self, ip: IpAddr, owner: &Attachment) -> Result<bool, CniError> {
        DiskStore::hold(self, ip, owner)
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
