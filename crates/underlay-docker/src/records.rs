//! What the driver keeps on disk so a restart of the plugin or of dockerd loses
//! nothing (dockerd does not replay CreateNetwork): one JSON file per network and per
//! endpoint, written to a temporary file and renamed into place.

use std::fs;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::options::NetworkSpec;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NetworkRecord {
    pub id: String,
    pub spec: NetworkSpec,
    /// The parent actually used (the default-route interface when none was given).
    pub parent: String,
    /// What `-o host_access=` made, so DeleteNetwork removes exactly that.
    #[serde(default)]
    pub host_access: Option<underlay_cli::model::HostAccess>,
    /// The pool our IPAM holds the shim's address in (None: Docker's IPAM holds it, as an
    /// `--aux-address`, or there is no shim).
    #[serde(default)]
    pub shim_pool: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EndpointRecord {
    pub id: String,
    pub network: String,
    pub addresses: Vec<IpNet>,
    pub mac: Option<String>,
    /// The link Join makes in the host namespace for dockerd to move.
    pub link: String,
}

impl EndpointRecord {
    pub fn has_v4(&self) -> bool {
        self.addresses.iter().any(|a| matches!(a.addr(), IpAddr::V4(_)))
    }
}

/// The record directories under the state dir.
#[derive(Debug, Clone)]
pub struct Records {
    root: PathBuf,
}

/// Docker's IDs are hex; anything else must not become a path.
pub fn check_id(what: &str, id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > 128 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(format!("{what} {id:?} is not a Docker ID (letters and digits)"));
    }
    Ok(())
}

impl Records {
    pub fn open(root: &Path) -> std::io::Result<Records> {
        for d in ["networks", "endpoints"] {
            fs::create_dir_all(root.join(d))?;
        }
        Ok(Records { root: root.to_path_buf() })
    }

    fn path(&self, kind: &str, id: &str) -> PathBuf {
        self.root.join(kind).join(format!("{id}.json"))
    }

    fn write<T: Serialize>(&self, kind: &str, id: &str, value: &T) -> Result<(), String> {
        let path = self.path(kind, id);
        let tmp = path.with_extension("tmp");
        let text = serde_json::to_vec_pretty(value).map_err(|e| e.to_string())?;
        let write = || -> std::io::Result<()> {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(&text)?;
            f.sync_all()?;
            fs::rename(&tmp, &path)
        };
        write().map_err(|e| format!("write {}: {e}", path.display()))
    }

    /// A record, `None` when there is none. A damaged one is an error naming the file.
    fn read<T: DeserializeOwned>(&self, kind: &str, id: &str) -> Result<Option<T>, String> {
        let path = self.path(kind, id);
        let meta = match fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("read {}: {e}", path.display())),
        };
        if !meta.file_type().is_file() {
            return Err(format!("{} is not a regular file; remove it", path.display()));
        }
        let text = fs::read(&path).map_err(|e| format!("read {}: {e}", path.display()))?;
        serde_json::from_slice(&text).map(Some).map_err(|e| format!("damaged record {}: {e}", path.display()))
    }

    fn remove(&self, kind: &str, id: &str) -> Result<(), String> {
        match fs::remove_file(self.path(kind, id)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(format!("remove {kind} record {id}: {e}")),
            _ => Ok(()),
        }
    }

    /// Every readable record of a kind; damaged ones are reported on stderr and skipped.
    fn all<T: DeserializeOwned>(&self, kind: &str) -> Vec<T> {
        let Ok(dir) = fs::read_dir(self.root.join(kind)) else { return Vec::new() };
        let mut out = Vec::new();
        for entry in dir.flatten() {
            let name = entry.file_name();
            let Some(id) = name.to_str().and_then(|n| n.strip_suffix(".json")) else { continue };
            match self.read(kind, id) {
                Ok(Some(r)) => out.push(r),
                Ok(None) => {}
                Err(e) => eprintln!("underlay-docker-plugin: skipping {e}"),
            }
        }
        out
    }

    pub fn network(&self, id: &str) -> Result<Option<NetworkRecord>, String> {
        self.read("networks", id)
    }
    pub fn put_network(&self, r: &NetworkRecord) -> Result<(), String> {
        self.write("networks", &r.id, r)
    }
    pub fn remove_network(&self, id: &str) -> Result<(), String> {
        self.remove("networks", id)
    }
    pub fn networks(&self) -> Vec<NetworkRecord> {
        self.all("networks")
    }
    pub fn endpoint(&self, id: &str) -> Result<Option<EndpointRecord>, String> {
        self.read("endpoints", id)
    }
    pub fn put_endpoint(&self, r: &EndpointRecord) -> Result<(), String> {
        self.write("endpoints", &r.id, r)
    }
    pub fn remove_endpoint(&self, id: &str) -> Result<(), String> {
        self.remove("endpoints", id)
    }
    pub fn endpoints(&self) -> Vec<EndpointRecord> {
        self.all("endpoints")
    }
}
