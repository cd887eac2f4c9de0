//! VLAN sub-interfaces (`IF.VID`) made as parents for macvlan/ipvlan links, shared by
//! CNI attachments and the `underlay` command's networks through one reference count.
//!
//! The count lives on disk, one directory per sub-interface under
//! `/run/underlay/parents/<netns inode>/<IF.VID>/`: an `owned` marker (we made the link,
//! or are about to) and one file per user in `users/`. Everything happens under one flock,
//! and the marker is written before the link is made, so a crash between any two steps
//! leaves either a marker whose link the next `acquire` makes, or a link whose marker
//! the next `release`/`collect` deletes once no user is left. A sub-interface that
//! existed before us has no marker and is never deleted.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use crate::error::{Errno, Error, Result};
use crate::netlink::Netlink;

/// Where the records live unless `UNDERLAY_PARENTS_DIR` says otherwise.
pub const DEFAULT_DIR: &str = "/run/underlay/parents";

/// `enp0s3.10` -> (`enp0s3`, 10) when VID is 1–4094.
pub fn vlan_name(name: &str) -> Option<(&str, u16)> {
    let (base, vid) = name.rsplit_once('.')?;
    let vid: u16 = vid.parse().ok()?;
    ((1..=4094).contains(&vid) && !base.is_empty()).then_some((base, vid))
}

/// What the count needs from the kernel (a trait so the bookkeeping is testable on a
/// kernel without 802.1Q).
pub trait Links {
    fn exists(&mut self, name: &str) -> Result<bool>;
    /// Makes `name` as VLAN `vid` of `base` and sets it up; an existing one is fine.
    fn create(&mut self, name: &str, base: &str, vid: u16) -> Result<()>;
    /// Deletes `name`; a missing one is fine.
    fn delete(&mut self, name: &str) -> Result<()>;
}

impl Links for Netlink {
    fn exists(&mut self, name: &str) -> Result<bool> {
        Ok(self.link_by_name(name)?.is_some())
    }

    fn create(&mut self, name: &str, base: &str, vid: u16) -> Result<()> {
        let parent = self
            .link_by_name(base)?
            .ok_or_else(|| Error::new(format!("VLAN {name}"), format!("its base interface {base} does not exist")))?;
        match self.create_vlan(name, parent.index, vid) {
            Err(e) if !e.is(Errno::EEXIST) => return Err(e),
            _ => {}
        }
        let link = self.link(name)?;
        self.set_up(link.index, true)
    }

    fn delete(&mut self, name: &str) -> Result<()> {
        let Some(link) = self.link_by_name(name)? else { return Ok(()) };
        match self.delete_link(link.index) {
            Err(e) if !e.is_not_found() => Err(e),
            _ => Ok(()),
        }
    }
}

/// The records of one network namespace's VLAN parents.
pub struct Parents {
    dir: PathBuf,
}

/// What `acquire` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acquired {
    /// The link existed before any of our users: it is left alone, now and on release.
    PreExisting,
    /// Ours, counted (made now or by an earlier user).
    Counted,
}

impl Parents {
    /// The records for the calling thread's network namespace.
    pub fn here() -> Result<Parents> {
        let root = std::env::var_os("UNDERLAY_PARENTS_DIR").map(PathBuf::from).unwrap_or_else(|| DEFAULT_DIR.into());
        // Keyed by the namespace, so test worlds (and containers) never share counts.
        let ino = fs::metadata("/proc/thread-self/ns/net")
            .map_err(|e| Error::from(e).context("stat /proc/thread-self/ns/net"))?
            .ino();
        Ok(Parents { dir: root.join(ino.to_string()) })
    }

    pub fn at(dir: impl Into<PathBuf>) -> Parents {
        Parents { dir: dir.into() }
    }

    fn lock(&self) -> Result<Flock<File>> {
        fs::create_dir_all(&self.dir).map_err(|e| io(e, &self.dir))?;
        let path = self.dir.join(".lock");
        let f = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&path)
            .map_err(|e| io(e, &path))?;
        Flock::lock(f, FlockArg::LockExclusive)
            .map_err(|(_, e)| Error::from(e).context(format!("lock {}", path.display())))
    }

    /// Counts `user` as a user of VLAN sub-interface `name` (`IF.VID`), making it when
    /// it does not exist. Repeating it for the same user counts once.
    pub fn acquire(&self, links: &mut impl Links, name: &str, user: &str) -> Result<Acquired> {
        let (base, vid) =
            vlan_name(name).ok_or_else(|| Error::new(format!("parent {name}"), "is not of the form IF.VID"))?;
        let _lock = self.lock()?;
        let d = self.dir.join(name);
        let marker = d.join("owned");
        let ours = is_file(&marker);
        let exists = links.exists(name)?;
        if !ours && exists {
            return Ok(Acquired::PreExisting);
        }
        let users = d.join("users");
        fs::create_dir_all(&users).map_err(|e| io(e, &users))?;
        if !ours {
            write_file(&marker, &format!("{base} {vid}\n"))?;
        }
        // Made after the marker: a crash now leaves a marker that the next call repairs.
        if let Err(e) = if exists { Ok(()) } else { links.create(name, base, vid) } {
            if count(&users) == 0 {
                let _ = fs::remove_dir_all(&d);
            }
            return Err(e);
        }
        write_file(&users.join(file_name(user)), user)?;
        Ok(Acquired::Counted)
    }

    /// Drops `user`; the sub-interface goes when it was ours and no user is left.
    pub fn release(&self, links: &mut impl Links, name: &str, user: &str) -> Result<()> {
        let _lock = self.lock()?;
        let users = self.dir.join(name).join("users");
        match fs::remove_file(users.join(file_name(user))) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(e, &users)),
            _ => {}
        }
        self.settle(links, name)
    }

    /// GC: drops the users of `name` whose names start with `prefix` and that `live`
    /// does not keep, then settles as `release` does (this also removes a link left by
    /// a crash before its first user was counted).
    pub fn collect(&self, links: &mut impl Links, name: &str, prefix: &str, live: &dyn Fn(&str) -> bool) -> Result<()> {
        let _lock = self.lock()?;
        for user in self.users(name) {
            if user.starts_with(prefix) && !live(&user) {
                let _ = fs::remove_file(self.dir.join(name).join("users").join(file_name(&user)));
            }
        }
        self.settle(links, name)
    }

    /// The users counted for `name`.
    pub fn users(&self, name: &str) -> Vec<String> {
        let Ok(rd) = fs::read_dir(self.dir.join(name).join("users")) else { return Vec::new() };
        rd.flatten().filter_map(|e| fs::read_to_string(e.path()).ok()).collect()
    }

    fn settle(&self, links: &mut impl Links, name: &str) -> Result<()> {
        let d = self.dir.join(name);
        if !is_file(&d.join("owned")) || count(&d.join("users")) > 0 {
            return Ok(());
        }
        links.delete(name)?;
        // The marker goes last: a crash before this leaves it, and the link is gone.
        fs::remove_dir_all(&d).map_err(|e| io(e, &d))
    }
}

fn io(e: std::io::Error, path: &Path) -> Error {
    Error::from(e).context(path.display())
}

/// A regular file, not a symlink or FIFO planted in its place.
fn is_file(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.is_file())
}

fn count(dir: &Path) -> usize {
    fs::read_dir(dir).map(|rd| rd.flatten().count()).unwrap_or(0)
}

fn write_file(path: &Path, text: &str) -> Result<()> {
    let mut f = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| io(e, path))?;
    f.write_all(text.as_bytes()).and_then(|_| f.sync_all()).map_err(|e| io(e, path))
}

/// A user name as one file name: anything but `[A-Za-z0-9._-]` as `%XX`.
fn file_name(user: &str) -> String {
    let mut out = String::new();
    for b in user.bytes() {
        if b.is_ascii_alphanumeric() || b"._-".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    match out.strip_prefix('.') {
        Some(rest) => format!("%2E{rest}"),
        None => out,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// A kernel that remembers names; `fail_create` makes creation fail.
    #[derive(Default)]
    struct Fake {
        links: BTreeSet<String>,
        created: usize,
        fail_create: bool,
    }

    impl Links for Fake {
        fn exists(&mut self, name: &str) -> Result<bool> {
            Ok(self.links.contains(name))
        }
        fn create(&mut self, name: &str, _: &str, _: u16) -> Result<()> {
            if self.fail_create {
                return Err(Error::new("create", "refused"));
            }
            self.created += usize::from(self.links.insert(name.to_string()));
            Ok(())
        }
        fn delete(&mut self, name: &str) -> Result<()> {
            self.links.remove(name);
            Ok(())
        }
    }

    #[test]
    fn made_once_shared_and_removed_with_the_last_user() {
        let t = tempfile::tempdir().unwrap();
        let p = Parents::at(t.path());
        let mut k = Fake::default();
        assert_eq!(p.acquire(&mut k, "eth0.10", "cni:a").unwrap(), Acquired::Counted);
        assert_eq!(p.acquire(&mut k, "eth0.10", "net:web").unwrap(), Acquired::Counted);
        assert_eq!(p.acquire(&mut k, "eth0.10", "cni:a").unwrap(), Acquired::Counted);
        assert_eq!(k.created, 1);
        p.release(&mut k, "eth0.10", "cni:a").unwrap();
        assert!(k.links.contains("eth0.10"), "net:web still uses it");
        p.release(&mut k, "eth0.10", "net:web").unwrap();
        assert!(!k.links.contains("eth0.10"));
        assert!(!t.path().join("eth0.10").exists());
        p.release(&mut k, "eth0.10", "net:web").unwrap();
    }

    #[test]
    fn a_pre_existing_one_is_never_deleted() {
        let t = tempfile::tempdir().unwrap();
        let p = Parents::at(t.path());
        let mut k = Fake::default();
        k.links.insert("eth0.20".into());
        assert_eq!(p.acquire(&mut k, "eth0.20", "cni:a").unwrap(), Acquired::PreExisting);
        p.release(&mut k, "eth0.20", "cni:a").unwrap();
        p.collect(&mut k, "eth0.20", "", &|_| false).unwrap();
        assert!(k.links.contains("eth0.20"));
    }

    #[test]
    fn crashes_between_steps_are_repaired() {
        let t = tempfile::tempdir().unwrap();
        let p = Parents::at(t.path());
        let mut k = Fake::default();
        // Crash after the marker, before the link: the next acquire makes it and counts.
        fs::create_dir_all(t.path().join("eth0.10/users")).unwrap();
        fs::write(t.path().join("eth0.10/owned"), "eth0 10\n").unwrap();
        assert_eq!(p.acquire(&mut k, "eth0.10", "cni:b").unwrap(), Acquired::Counted);
        assert!(k.links.contains("eth0.10"));
        // Crash after the link, before the user was counted: GC removes it.
        p.release(&mut k, "eth0.10", "cni:b").unwrap();
        fs::create_dir_all(t.path().join("eth0.11/users")).unwrap();
        fs::write(t.path().join("eth0.11/owned"), "eth0 11\n").unwrap();
        k.links.insert("eth0.11".into());
        p.collect(&mut k, "eth0.11", "cni:", &|_| true).unwrap();
        assert!(!k.links.contains("eth0.11"));
        // GC drops users that are gone and keeps live ones.
        p.acquire(&mut k, "eth0.12", "cni:net/c1/eth0").unwrap();
        p.acquire(&mut k, "eth0.12", "cni:net/c2/eth0").unwrap();
        p.collect(&mut k, "eth0.12", "cni:net/", &|u| u.ends_with("c2/eth0")).unwrap();
        assert_eq!(p.users("eth0.12"), ["cni:net/c2/eth0"]);
        assert!(k.links.contains("eth0.12"));
    }

    #[test]
    fn a_failed_creation_leaves_no_record() {
        let t = tempfile::tempdir().unwrap();
        let p = Parents::at(t.path());
        let mut k = Fake { fail_create: true, ..Fake::default() };
        assert!(p.acquire(&mut k, "eth0.10", "cni:a").is_err());
        assert!(!t.path().join("eth0.10").exists());
    }

    #[test]
    fn a_symlink_planted_as_marker_is_not_trusted() {
        let t = tempfile::tempdir().unwrap();
        let p = Parents::at(t.path());
        let mut k = Fake::default();
        k.links.insert("eth0.30".into());
        fs::create_dir_all(t.path().join("eth0.30")).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", t.path().join("eth0.30/owned")).unwrap();
        assert_eq!(p.acquire(&mut k, "eth0.30", "cni:a").unwrap(), Acquired::PreExisting);
        p.release(&mut k, "eth0.30", "cni:a").unwrap();
        assert!(k.links.contains("eth0.30"));
    }

    /// A fake shared by threads, locked per operation only: the flock alone orders the
    /// steps of concurrent acquires (as between processes).
    #[derive(Clone, Default)]
    struct Shared(std::sync::Arc<std::sync::Mutex<Fake>>);

    impl Links for Shared {
        fn exists(&mut self, name: &str) -> Result<bool> {
            let found = self.0.lock().unwrap().exists(name);
            // Widen the window between looking and making.
            std::thread::sleep(std::time::Duration::from_millis(2));
            found
        }
        fn create(&mut self, name: &str, base: &str, vid: u16) -> Result<()> {
            let mut k = self.0.lock().unwrap();
            if k.links.contains(name) {
                // The kernel's answer to a second creation; Netlink's `create` takes EEXIST
                // as success, so a lost race is not an error either way.
                k.created += 100;
            }
            k.create(name, base, vid)
        }
        fn delete(&mut self, name: &str) -> Result<()> {
            self.0.lock().unwrap().delete(name)
        }
    }

    #[test]
    fn racing_acquires_make_it_once_and_both_count() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().to_path_buf();
        let kernel = Shared::default();
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let (dir, mut k) = (dir.clone(), kernel.clone());
                // Each thread its own Parents and lock file descriptor, as separate processes.
                std::thread::spawn(move || Parents::at(dir).acquire(&mut k, "eth0.10", &format!("cni:{i}")).unwrap())
            })
            .collect();
        for t in threads {
            assert_eq!(t.join().unwrap(), Acquired::Counted);
        }
        assert_eq!(kernel.0.lock().unwrap().created, 1, "made once, never twice");
        assert_eq!(Parents::at(&dir).users("eth0.10").len(), 8);
    }

    #[test]
    fn vlan_names() {
        assert_eq!(vlan_name("enp0s3.10"), Some(("enp0s3", 10)));
        assert_eq!(vlan_name("a.b.4094"), Some(("a.b", 4094)));
        for bad in ["enp0s3", "enp0s3.0", "enp0s3.4095", ".10", "enp0s3.x"] {
            assert_eq!(vlan_name(bad), None, "{bad}");
        }
    }
}
