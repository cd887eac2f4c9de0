//! The per-network record of `underlay-host-access`: the shim, the sysctl values found
//! before the shim changed them, and the pods routed through it. It is written before
//! anything is changed, so a process killed between any two steps leaves a record that
//! says what to undo. Opened without following links and never blocking (a FIFO or a
//! symlink planted in the data directory is refused or moved aside, never followed).

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read};
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use underlay::cni::CniError;
use underlay::cni::error::io_error;
use underlay_linux::shim::Saved;

/// A record is a few hundred bytes per pod; anything far larger is not ours.
const RECORD_CAP: u64 = 16 << 20;

/// One network's shim and the pods routed through it.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Record {
    pub shim: String,
    pub address: Option<IpAddr>,
    /// The master's ARP sysctls as they were before the shim existed.
    pub sysctls: Vec<Saved>,
    /// "containerID/ifname" -> the pod's addresses.
    pub pods: BTreeMap<String, Vec<IpAddr>>,
}

/// The locked record of a network; written back with `save`.
pub struct Store {
    path: PathBuf,
    pub record: Record,
    _lock: File,
}

fn io(what: &str, path: &Path, e: std::io::Error) -> CniError {
    io_error(format!("{what} {}", path.display()), e)
}

impl Store {
    pub fn open(dir: &Path, network: &str) -> Result<Store, CniError> {
        fs::create_dir_all(dir).map_err(|e| io("create", dir, e))?;
        let lock_path = dir.join(format!("{network}.lock"));
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&lock_path)
            .map_err(|e| io("open lock", &lock_path, e))?;
        lock.lock().map_err(|e| io("lock", &lock_path, e))?;
        let path = dir.join(format!("{network}.json"));
        let record = read(&path)?;
        Ok(Store { path, record, _lock: lock })
    }

    /// Writes the record (or removes it when it holds nothing) through a new file
    /// renamed over the old one, so a kill mid-write leaves the old or the new record.
    pub fn save(&self) -> Result<(), CniError> {
        if self.record.pods.is_empty() && self.record.address.is_none() && self.record.sysctls.is_empty() {
            return match fs::remove_file(&self.path) {
                Err(e) if e.kind() != ErrorKind::NotFound => Err(io("remove", &self.path, e)),
                _ => Ok(()),
            };
        }
        // The crash tests make this write fail (the temporary's name is random, so they
        // cannot block it with a file in its place).
        crate::fault::at("write-record")?;
        underlay::safe_write::write_json(&self.path, &self.record).map_err(|e| io("write", &self.path, e))
    }
}

/// The record at `path`: none yet is an empty record; one that cannot be a record
/// (damaged JSON, a FIFO, a symlink, a directory) is moved aside with a warning, so
/// one bad file does not stop every pod of the network.
fn read(path: &Path) -> Result<Record, CniError> {
    let file = match OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Record::default()),
        // ELOOP: a symlink where the record belongs.
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return aside(path, "is a symlink"),
        Err(e) => return Err(io("open", path, e)),
    };
    let meta = file.metadata().map_err(|e| io("stat", path, e))?;
    if !meta.is_file() {
        return aside(path, "is not a regular file");
    }
    let mut bytes = Vec::new();
    file.take(RECORD_CAP + 1).read_to_end(&mut bytes).map_err(|e| io("read", path, e))?;
    if bytes.len() as u64 > RECORD_CAP {
        return aside(path, "is larger than any record");
    }
    match decode(&bytes) {
        Ok(r) => Ok(r),
        Err(e) => aside(path, &format!("is damaged ({e})")),
    }
}

/// A record's bytes as read from its file; public for the fuzz target.
pub fn decode(bytes: &[u8]) -> Result<Record, serde_json::Error> {
    serde_json::from_slice(bytes)
}

fn aside(path: &Path, why: &str) -> Result<Record, CniError> {
    let to = path.with_extension(format!("bad-{}", std::process::id()));
    fs::rename(path, &to).map_err(|e| io("move aside", path, e))?;
    eprintln!(
        "underlay-host-access: {} {why}; moved to {} and started afresh (the sysctls it held are not restored)",
        path.display(),
        to.display()
    );
    Ok(Record::default())
}
