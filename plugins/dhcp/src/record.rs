//! One attachment the daemon keeps a lease for, and its file in the state directory.
//! Every change is written before it is acted on (temp file, fsync, rename), so a
//! daemon killed at any point restarts with the leases it had.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::net::Ipv4Addr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::lease::Lease;
use crate::wire::Identity;

/// Identifies an attachment: network, container, interface.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Key {
    pub network: String,
    pub container_id: String,
    pub ifname: String,
}

impl Key {
    /// Each part is usable in a file name of the state directory: a record read from
    /// a damaged or planted file must not make the daemon write elsewhere.
    pub fn is_valid(&self) -> bool {
        [&self.network, &self.container_id, &self.ifname]
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 255 && !p.starts_with('.') && !p.bytes().any(|b| b == b'/' || b == 0))
    }

    /// The file name; all three parts are validated CNI names (no `/`).
    fn file_name(&self) -> String {
        format!("{}.{}.{}.json", self.network, self.container_id, self.ifname)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub key: Key,
    pub netns: PathBuf,
    pub mac: [u8; 6],
    pub client_id: Vec<u8>,
    #[serde(default)]
    pub hostname: Option<String>,
    #[serde(default)]
    pub request: Vec<u8>,
    /// None while the lease is lost and being asked for again.
    pub lease: Option<Lease>,
    /// The address last put on the interface, to ask for again after a loss.
    #[serde(default)]
    pub last_address: Option<std::net::Ipv4Addr>,
}

impl Record {
    pub fn identity(&self) -> Identity {
        Identity {
            mac: self.mac,
            client_id: self.client_id.clone(),
            hostname: self.hostname.clone(),
            request: self.request.clone(),
        }
    }
}

/// The state directory.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    pub fn open(dir: &Path) -> io::Result<Store> {
        fs::create_dir_all(dir)?;
        Ok(Store { dir: dir.to_path_buf() })
    }

    pub fn save(&self, r: &Record) -> io::Result<()> {
        let path = self.dir.join(r.key.file_name());
        let tmp = self.dir.join(format!(".{}.tmp", r.key.file_name()));
        let _ = fs::remove_file(&tmp);
        let mut f = OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
        f.write_all(&serde_json::to_vec_pretty(r).map_err(io::Error::other)?)?;
        f.sync_all()?;
        fs::rename(&tmp, &path)?;
        File::open(&self.dir)?.sync_all()
    }

    pub fn remove(&self, key: &Key) -> io::Result<()> {
        match fs::remove_file(self.dir.join(key.file_name())) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Remembers the address a client id last had, so the same container asking again
    /// after DEL (its lease released) requests it back.
    pub fn remember(&self, client_id: &[u8], addr: Ipv4Addr) {
        let _ = fs::write(self.dir.join(previous_name(client_id)), addr.to_string());
    }

    pub fn recall(&self, client_id: &[u8]) -> Option<Ipv4Addr> {
        let path = self.dir.join(previous_name(client_id));
        let mut f = OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(path).ok()?;
        let mut s = String::new();
        Read::by_ref(&mut f).take(64).read_to_string(&mut s).ok()?;
        s.trim().parse().ok()
    }

    /// Every readable record. Damaged files, symlinks and anything not a regular file
    /// are reported on stderr and skipped (left in place for a human to look at).
    pub fn load(&self) -> io::Result<Vec<Record>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let path = entry?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            if name.starts_with('.') || !name.ends_with(".json") {
                continue;
            }
            match read_record(&path) {
                Ok(r) => out.push(r),
                Err(e) => eprintln!("dhcp daemon: skip state file {}: {e}", path.display()),
            }
        }
        Ok(out)
    }
}

fn previous_name(client_id: &[u8]) -> String {
    let hex: String = client_id.iter().map(|b| format!("{b:02x}")).collect();
    format!("previous.{hex}")
}

fn read_record(path: &Path) -> io::Result<Record> {
    // O_NOFOLLOW refuses symlinks; O_NONBLOCK keeps a FIFO from hanging the open.
    let mut f = OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(path)?;
    if !f.metadata()?.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    let mut buf = Vec::new();
    Read::by_ref(&mut f).take(1 << 20).read_to_end(&mut buf)?;
    let r: Record = serde_json::from_slice(&buf).map_err(|e| io::Error::other(format!("damaged record: {e}")))?;
    if !r.key.is_valid() {
        return Err(io::Error::other(format!("record names an unusable attachment {:?}", r.key)));
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(cid: &str) -> Record {
        Record {
            key: Key { network: "n".into(), container_id: cid.into(), ifname: "eth0".into() },
            netns: "/run/netns/x".into(),
            mac: [2, 0, 0, 0, 0, 1],
            client_id: vec![0, 1],
            hostname: None,
            request: vec![],
            lease: None,
            last_address: None,
        }
    }

    #[test]
    fn saved_records_load_and_damaged_or_hostile_files_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.save(&record("a")).unwrap();
        fs::write(dir.path().join("bad.json"), b"{not json").unwrap();
        std::os::unix::fs::symlink(dir.path().join("n.a.eth0.json"), dir.path().join("link.json")).unwrap();
        let mut planted = record("x");
        planted.key.container_id = "../../escape".into();
        fs::write(dir.path().join("planted.json"), serde_json::to_vec(&planted).unwrap()).unwrap();
        nix::unistd::mkfifo(&dir.path().join("fifo.json"), nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let loaded = store.load().unwrap();
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded[0].key.container_id, "a");
        store.remove(&loaded[0].key).unwrap();
        store.remove(&loaded[0].key).unwrap();
        assert!(store.load().unwrap().is_empty());
    }
}
