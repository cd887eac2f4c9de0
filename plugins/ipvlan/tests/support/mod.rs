//! Test worlds for the `ipvlan` binary: ours and the reference run the way a runtime
//! runs them, from a node's namespace with CNI_NETNS pointing at a pod.

#![allow(dead_code)]

use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use underlay_linux::reach::tcp_reachable;
use underlay_linux::world::{World, WorldSpec};
use underlay_linux::{Netlink, Netns};

/// A CNI_PATH directory: `ipvlan`, `macvlan` and `host-local`, ours or the reference's.
pub struct PluginDir {
    pub dir: tempfile::TempDir,
}

pub fn ours(name: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_BIN_EXE_ipvlan")).with_file_name(name);
    assert!(p.exists(), "{} missing: build the workspace's binaries (cargo build --workspace)", p.display());
    p
}

pub fn reference(name: &str) -> PathBuf {
    let p = Path::new("/usr/lib/cni").join(name);
    assert!(p.exists(), "{} missing: install containernetworking-plugins (scripts/deps)", p.display());
    p
}

impl PluginDir {
    pub fn ours() -> PluginDir {
        PluginDir::pick(ours)
    }

    pub fn reference() -> PluginDir {
        PluginDir::pick(reference)
    }

    fn pick(from: fn(&str) -> PathBuf) -> PluginDir {
        let dir = tempfile::tempdir().unwrap();
        for name in ["ipvlan", "macvlan", "host-local"] {
            std::os::unix::fs::symlink(from(name), dir.path().join(name)).unwrap();
        }
        PluginDir { dir }
    }
}

pub struct Outcome {
    pub ok: bool,
    pub json: Value,
}

impl Outcome {
    pub fn code(&self) -> u64 {
        self.json["code"].as_u64().unwrap_or(0)
    }
    pub fn ip(&self) -> IpAddr {
        assert!(self.ok, "ADD failed: {}", self.json);
        self.json["ips"][0]["address"].as_str().unwrap().split('/').next().unwrap().parse().unwrap()
    }
}

/// Runs `conf`'s plugin from `node`'s namespace for `pod` (ifname eth0).
pub fn cni(plugins: &PluginDir, node: &Netns, command: &str, cid: &str, pod: &Netns, conf: &Value) -> Outcome {
    let netns = pod.path().display().to_string();
    let mut child = node
        .command(plugins.dir.path().join(conf["type"].as_str().unwrap()))
        .env_clear()
        .env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", cid)
        .env("CNI_NETNS", &netns)
        .env("CNI_IFNAME", "eth0")
        .env("CNI_PATH", plugins.dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&serde_json::to_vec(conf).unwrap()).unwrap();
    let out = child.wait_with_output().unwrap();
    Outcome { ok: out.status.success(), json: serde_json::from_slice(&out.stdout).unwrap_or(Value::Null) }
}

pub fn world(spec: WorldSpec) -> World {
    World::build(spec).unwrap_or_else(|e| panic!("cannot build the test world (run the tests as root): {e}"))
}

/// Names of the links in a namespace, sorted.
pub fn links(ns: &Netns) -> Vec<String> {
    let mut nl: Netlink = ns.netlink().unwrap();
    let mut v: Vec<String> = nl.links().unwrap().into_iter().map(|l| l.name).collect();
    v.sort();
    v
}

/// Reservation files left in a host-local store.
pub fn reservations(data: &Path, network: &str) -> Vec<String> {
    std::fs::read_dir(data.join(network))
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.parse::<IpAddr>().is_ok())
                .collect()
        })
        .unwrap_or_default()
}

pub fn reaches(from: &Netns, ip: IpAddr) -> bool {
    tcp_reachable(from, ip, 9, Duration::from_secs(3)).unwrap()
}

/// For "cannot reach" checks: long enough for ARP to give up on this LAN.
pub fn never_reaches(from: &Netns, ip: IpAddr) -> bool {
    !tcp_reachable(from, ip, 9, Duration::from_millis(1500)).unwrap()
}
