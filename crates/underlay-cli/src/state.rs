//! The state store: one JSON file per network and per endpoint under the state
//! directory, changed only under one flock, each file replaced atomically (written
//! beside, then renamed), so concurrent `underlay` processes never see half a record
//! and a kill at any moment leaves every file whole.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::failure::{Failure, Result};
use crate::model::{Endpoint, HostAccess, Network, now};

/// Where things live.
#[derive(Debug, Clone)]
pub struct Dirs {
    /// Records and the IPAM store (default /var/lib/underlay).
    pub state: PathBuf,
    /// Namespaces made by `run` (default /run/underlay/netns; gone at reboot, as
    /// namespaces are).
    pub run: PathBuf,
}

impl Dirs {
    pub fn ipam(&self) -> PathBuf {
        self.state.join("ipam")
    }

    pub fn netns_dir(&self) -> PathBuf {
        self.run.join("netns")
    }

    pub fn logs(&self) -> PathBuf {
        self.state.join("logs")
    }
}

/// The store, locked for as long as this value lives.
pub struct State {
    dirs: Dirs,
    _lock: File,
}

fn read<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = fs::read(path).map_err(|e| Failure::system(format!("read {}: {e}", path.display())))?;
    serde_json::from_slice(&bytes).map_err(|e| Failure::system(format!("{} is unreadable: {e}", path.display())))
}

fn write<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    underlay::safe_write::write_json(path, value).map_err(|e| Failure::system(format!("write {}: {e}", path.display())))
}

/// A record that cannot be read (torn, garbage, not a file): skipped by every command
/// and reported, so one bad file never stops work on the healthy rest.
#[derive(Debug, Clone, Serialize)]
pub struct Damaged {
    pub damaged: PathBuf,
    pub error: String,
}

/// `records` as JSON values, followed by the damaged records of that kind.
pub fn with_damaged<T: serde::Serialize>(records: &[T], damaged: Vec<Damaged>, kind: &str) -> Vec<serde_json::Value> {
    let mut out: Vec<serde_json::Value> =
        records.iter().map(|r| serde_json::to_value(r).expect("records serialize")).collect();
    let of_kind = damaged.into_iter().filter(|d| d.damaged.parent().is_some_and(|p| p.ends_with(kind)));
    out.extend(of_kind.map(|d| serde_json::to_value(d).expect("serializes")));
    out
}

/// Reports each damaged record once per process, on stderr.
fn report(d: &Damaged) {
    static SEEN: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());
    let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
    if !seen.contains(&d.damaged) {
        eprintln!("underlay: skipping a damaged record: {} (`underlay gc` moves it aside)", d.error);
        seen.push(d.damaged.clone());
    }
}

fn list<T: DeserializeOwned>(dir: &Path) -> Result<(Vec<T>, Vec<Damaged>)> {
    let (mut out, mut bad) = (Vec::new(), Vec::new());
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((out, bad)),
        Err(e) => return Err(Failure::system(format!("read {}: {e}", dir.display()))),
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "json") {
            match read_record(&p) {
                Ok(v) => out.push(v),
                Err(f) => bad.push(Damaged { damaged: p, error: f.message }),
            }
        }
    }
    bad.iter().for_each(report);
    Ok((out, bad))
}

/// A record: a regular file (never through a symlink, never a FIFO) of sane size.
fn read_record<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let meta = fs::symlink_metadata(path).map_err(|e| Failure::system(format!("read {}: {e}", path.display())))?;
    if !meta.is_file() || meta.len() > 1 << 20 {
        return Err(Failure::system(format!("{} is not a regular file of at most 1 MiB", path.display())));
    }
    read(path)
}

impl State {
    pub fn lock(dirs: &Dirs) -> Result<State> {
        for d in [dirs.state.join("networks"), dirs.state.join("endpoints")] {
            fs::create_dir_all(&d).map_err(|e| {
                Failure::system(format!("create {}: {e}", d.display()))
                    .hint("underlay keeps its state there; run it as root")
            })?;
        }
        let path = dirs.state.join("lock");
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(|e| Failure::system(format!("open {}: {e}", path.display())))?;
        lock.lock().map_err(|e| Failure::system(format!("lock {}: {e}", path.display())))?;
        Ok(State { dirs: dirs.clone(), _lock: lock })
    }

    pub fn dirs(&self) -> &Dirs {
        &self.dirs
    }

    fn network_path(&self, name: &str) -> PathBuf {
        self.dirs.state.join("networks").join(format!("{name}.json"))
    }

    fn endpoint_path(&self, id: &str) -> PathBuf {
        self.dirs.state.join("endpoints").join(format!("{id}.json"))
    }

    pub fn networks(&self) -> Result<Vec<Network>> {
        let (mut v, _): (Vec<Network>, _) = list(&self.dirs.state.join("networks"))?;
        v.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(v)
    }

    /// The network called `name`, or whose ID is or begins with it.
    pub fn network(&self, name: &str) -> Result<Network> {
        let path = self.network_path(name);
        if fs::symlink_metadata(&path).is_ok() {
            return read_record(&path).map_err(|f| f.hint("`underlay gc` moves a damaged record aside"));
        }
        let all = self.networks()?;
        crate::resolve::pick("network", "underlay network ls", name, &all, |n| (&n.name, &n.id)).cloned()
    }

    /// The damaged network and endpoint records.
    pub fn damaged(&self) -> Result<Vec<Damaged>> {
        let (_, mut bad) = list::<Network>(&self.dirs.state.join("networks"))?;
        bad.extend(list::<Endpoint>(&self.dirs.state.join("endpoints"))?.1);
        Ok(bad)
    }

    /// Moves a damaged record into `<state>/damaged/`, out of every command's way;
    /// returns where it went.
    pub fn set_aside(&self, d: &Damaged) -> Result<PathBuf> {
        let dir = self.dirs.state.join("damaged");
        fs::create_dir_all(&dir).map_err(|e| Failure::system(format!("create {}: {e}", dir.display())))?;
        let kind = d.damaged.parent().and_then(Path::file_name).unwrap_or_default().to_string_lossy();
        let file = d.damaged.file_name().unwrap_or_default().to_string_lossy();
        let to = dir.join(format!("{kind}-{file}.{}", now()));
        fs::rename(&d.damaged, &to).map_err(|e| Failure::system(format!("move {}: {e}", d.damaged.display())))?;
        Ok(to)
    }

    pub fn save_network(&self, n: &Network) -> Result<()> {
        write(&self.network_path(&n.name), n)
    }

    pub fn remove_network(&self, name: &str) -> Result<()> {
        fs::remove_file(self.network_path(name)).map_err(Failure::from)
    }

    pub fn endpoints(&self) -> Result<Vec<Endpoint>> {
        let (mut v, _): (Vec<Endpoint>, _) = list(&self.dirs.state.join("endpoints"))?;
        v.sort_by(|a, b| (a.created, &a.name).cmp(&(b.created, &b.name)));
        Ok(v)
    }

    /// The endpoint called `name`, or whose ID is or begins with it.
    pub fn endpoint(&self, name: &str) -> Result<Endpoint> {
        let all = self.endpoints()?;
        crate::resolve::pick("endpoint", "underlay ps -a", name, &all, |e| (&e.name, &e.id)).cloned()
    }

    /// The record of endpoint `id`, read by its path: a listing of the directory can miss
    /// a record being replaced (written beside it and renamed over it) at that moment.
    pub fn endpoint_by_id(&self, id: &str) -> Result<Option<Endpoint>> {
        let path = self.endpoint_path(id);
        match fs::symlink_metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            _ => read_record(&path).map(Some),
        }
    }

    pub fn save_endpoint(&self, e: &Endpoint) -> Result<()> {
        write(&self.endpoint_path(&e.id), e)
    }

    fn host_access_path(&self, network: &str) -> PathBuf {
        self.dirs.state.join("host-access").join(format!("{network}.json"))
    }

    pub fn host_access(&self, network: &str) -> Result<Option<HostAccess>> {
        let path = self.host_access_path(network);
        if !path.exists() {
            return Ok(None);
        }
        read(&path).map(Some)
    }

    pub fn all_host_access(&self) -> Result<Vec<HostAccess>> {
        Ok(list(&self.dirs.state.join("host-access"))?.0)
    }

    pub fn save_host_access(&self, ha: &HostAccess) -> Result<()> {
        fs::create_dir_all(self.dirs.state.join("host-access"))?;
        write(&self.host_access_path(&ha.network), ha)
    }

    pub fn remove_host_access(&self, network: &str) -> Result<()> {
        match fs::remove_file(self.host_access_path(network)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    pub fn remove_endpoint(&self, id: &str) -> Result<()> {
        match fs::remove_file(self.endpoint_path(id)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }
}

/// Removes a namespace `run` made (used by run, gc and detach).
pub fn drop_netns(dirs: &Dirs, id: &str) {
    let _ = underlay_linux::Netns::delete_in(&dirs.netns_dir(), id);
}
