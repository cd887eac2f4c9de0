//! What a lab is made of, written before anything is made, so `down` can remove it all
//! after any crash: its namespaces (by name), its processes (by PID and start time),
//! and the files under `<run-dir>/lab/<name>/`.

use std::fs::{File, OpenOptions};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use underlay::MacAddr;
use underlay_linux::world::{World, WorldSpec};

use underlay_cli::model::Proc;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub name: String,
    /// Every namespace name starts with it: `<prefix>-<role>`.
    pub prefix: String,
    pub nodes: usize,
    /// Pods per node.
    pub pods: usize,
    pub hairpin: bool,
    pub drop_unknown_macs: bool,
    /// The lab's servers, and any the checks and benchmarks start.
    pub processes: Vec<Proc>,
    /// Pods attached with the CNI plugins.
    pub pods_made: Vec<Pod>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pod {
    /// Its namespace's role (`pod1`, ...) and the CNI container ID.
    pub role: String,
    /// 0-based index of its node.
    pub node: usize,
    pub ip: IpAddr,
    pub mac: MacAddr,
}

/// Names of namespaces that checks and benchmarks may add for a while.
pub const SCRATCH: [&str; 6] = ["mnode", "m1", "m2", "m3", "b1", "b2"];

/// The scratch namespaces of `lab bench`'s ipvlan path (ipvlan_path.rs).
pub const IPVLAN_BENCH: [&str; 5] = ["inode1", "inode2", "i1", "i2", "i3"];

impl Record {
    pub fn spec(&self) -> WorldSpec {
        WorldSpec::seed("lab")
            .nodes(self.nodes)
            .pods(self.nodes * self.pods)
            .hairpin(self.hairpin)
            .drop_unknown_macs(self.drop_unknown_macs)
            .named(&self.prefix)
    }

    pub fn scratch(&self) -> Vec<String> {
        SCRATCH.iter().chain(&IPVLAN_BENCH).map(|r| format!("{}-{r}", self.prefix)).collect()
    }

    /// Every namespace this lab may have.
    pub fn namespaces(&self) -> Vec<String> {
        let mut all = self.spec().namespaces(&self.prefix);
        all.extend(self.scratch());
        all
    }

    /// The pods of node `i` (0-based).
    pub fn pods_of(&self, node: usize) -> impl Iterator<Item = &Pod> {
        self.pods_made.iter().filter(move |p| p.node == node)
    }
}

/// A lab's files, held under its lock.
pub struct Lab {
    pub dir: PathBuf,
    pub record: Record,
    _lock: File,
}

/// `<run-dir>/lab/<name>`.
pub fn dir(run_dir: &Path, name: &str) -> PathBuf {
    run_dir.join("lab").join(name)
}

/// Takes the lab's lock (one lab command at a time per lab), waiting for it.
pub fn lock(run_dir: &Path, name: &str) -> Result<File> {
    let parent = run_dir.join("lab");
    std::fs::create_dir_all(&parent).with_context(|| format!("create {}", parent.display()))?;
    let path = parent.join(format!("{name}.lock"));
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("open {}", path.display()))?;
    f.lock().with_context(|| format!("lock {}", path.display()))?;
    Ok(f)
}

impl Lab {
    /// The lab that is up, or a clear error if none is.
    pub fn load(run_dir: &Path, name: &str, lock: File) -> Result<Lab> {
        match Lab::find(run_dir, name, lock)? {
            Ok(lab) => Ok(lab),
            Err(_) => bail!(underlay_cli::failure::Failure::not_found(format!(
                "no lab \"{name}\" is up: start one with `underlay lab up`"
            ))),
        }
    }

    /// The lab if one is up; else the lock back.
    pub fn find(run_dir: &Path, name: &str, lock: File) -> Result<Result<Lab, File>> {
        let dir = dir(run_dir, name);
        let path = dir.join("lab.json");
        match std::fs::read(&path) {
            Ok(bytes) => {
                let record = serde_json::from_slice(&bytes).with_context(|| format!("read {}", path.display()))?;
                Ok(Ok(Lab { dir, record, _lock: lock }))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Err(lock)),
            Err(e) => Err(e).with_context(|| format!("read {}", path.display())),
        }
    }

    /// A new lab's record, written before anything is made.
    pub fn create(run_dir: &Path, record: Record, lock: File) -> Result<Lab> {
        let lab = Lab { dir: dir(run_dir, &record.name), record, _lock: lock };
        std::fs::create_dir_all(&lab.dir).with_context(|| format!("create {}", lab.dir.display()))?;
        lab.save()?;
        Ok(lab)
    }

    /// Written beside and renamed: a kill never leaves half a record.
    pub fn save(&self) -> Result<()> {
        let path = self.dir.join("lab.json");
        underlay::safe_write::write_json(&path, &self.record).with_context(|| format!("write {}", path.display()))
    }

    /// Adds a process to the record at once, so `down` ends it whatever happens next.
    pub fn adopt(&mut self, pid: u32) -> Result<Proc> {
        let p = Proc::of(pid).with_context(|| format!("the lab's process {pid} ended at once"))?;
        self.record.processes.push(p);
        self.save()?;
        Ok(p)
    }

    /// Notes a process a check starts for a while (an etcd member), so that `down`
    /// ends it even if the check is killed before it does.
    pub fn note_process(&self, pid: u32) -> Result<()> {
        use std::io::Write;
        let Some(p) = Proc::of(pid) else { return Ok(()) };
        let path = self.dir.join("scratch-processes");
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("open {}", path.display()))?;
        writeln!(f, "{}", serde_json::to_string(&p).expect("serializes"))
            .with_context(|| format!("write {}", path.display()))
    }

    /// Every process the lab started: its own and the checks'.
    pub fn all_processes(&self) -> Vec<Proc> {
        let noted = std::fs::read_to_string(self.dir.join("scratch-processes")).unwrap_or_default();
        let mut all = self.record.processes.clone();
        all.extend(noted.lines().filter_map(|l| serde_json::from_str::<Proc>(l).ok()));
        all
    }

    /// The lab's world, opened from its namespaces.
    pub fn world(&self) -> Result<World> {
        World::open(self.record.spec())
            .with_context(|| format!("open lab \"{}\" (run `underlay lab down`, then `up`)", self.record.name))
    }

    /// The `underlay` state of node `i` (the Docker example runs there).
    pub fn cli_dirs(&self, node: usize) -> (PathBuf, PathBuf) {
        let d = self.dir.join(format!("node{}", node + 1));
        (d.join("state"), d.join("run"))
    }

    /// host-local's store for the CNI pods of node `i`.
    pub fn cni_dir(&self, node: usize) -> PathBuf {
        self.dir.join("cni").join(format!("node{}", node + 1))
    }

    /// Removes the files (the record last).
    pub fn remove_files(self) -> Result<()> {
        std::fs::remove_dir_all(&self.dir).with_context(|| format!("remove {}", self.dir.display()))
    }
}

/// "pod1" -> 0; None for anything that is not "pod" and a number from 1.
fn pod_index(role: &str) -> Option<usize> {
    role.strip_prefix("pod")?.parse::<usize>().ok()?.checked_sub(1)
}

/// The namespace of the pod with `role` ("pod1", "pod2", ...) in `world`. A role read
/// from a damaged or hand-edited record ("pod0", "podx", one past the last) is an
/// error, not a panic.
pub fn pod_netns<'w>(world: &'w World, role: &str) -> Result<&'w underlay_linux::Netns> {
    pod_index(role)
        .and_then(|i| world.pods.get(i))
        .with_context(|| format!("the lab record names a pod \"{role}\" that its world does not have"))
}

#[cfg(test)]
mod pod_role_tests {
    use super::pod_index;

    #[test]
    fn pod_roles_from_a_damaged_record_are_refused_not_a_panic() {
        assert_eq!(pod_index("pod1"), Some(0));
        assert_eq!(pod_index("pod12"), Some(11));
        for bad in ["pod0", "pod", "podx", "pod-1", "node1", ""] {
            assert_eq!(pod_index(bad), None, "{bad}");
        }
    }
}
