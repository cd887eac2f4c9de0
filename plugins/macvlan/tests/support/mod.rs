//! Test worlds with CNI plugins: ours and the reference run the way a runtime runs
//! them, from the node's namespace with CNI_NETNS pointing at a pod.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use underlay_linux::reach::tcp_reachable;
use underlay_linux::world::{Host, World, WorldSpec};
use underlay_linux::{Netlink, Netns};

pub mod clients;
pub mod guide;

pub const REFERENCE_DIR: &str = "/usr/lib/cni";

/// A CNI_PATH directory holding `macvlan` and `host-local` from the chosen places.
pub struct PluginDir {
    pub dir: tempfile::TempDir,
}

fn ours(name: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_BIN_EXE_macvlan")).with_file_name(name);
    assert!(
        p.exists(),
        "{} missing: run the workspace's tests (cargo test --workspace) so every plugin is built",
        p.display()
    );
    p
}

fn reference(name: &str) -> PathBuf {
    let p = Path::new(REFERENCE_DIR).join(name);
    assert!(p.exists(), "{} missing: install containernetworking-plugins (scripts/deps)", p.display());
    p
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Impl {
    Ours,
    Reference,
}

impl PluginDir {
    pub fn new(macvlan: Impl, host_local: Impl) -> PluginDir {
        let dir = tempfile::tempdir().unwrap();
        let pick = |i: Impl, name: &str| if i == Impl::Ours { ours(name) } else { reference(name) };
        std::os::unix::fs::symlink(pick(macvlan, "macvlan"), dir.path().join("macvlan")).unwrap();
        std::os::unix::fs::symlink(pick(host_local, "host-local"), dir.path().join("host-local")).unwrap();
        std::os::unix::fs::symlink(ours("underlay-host-access"), dir.path().join("underlay-host-access")).unwrap();
        PluginDir { dir }
    }

    pub fn ours() -> PluginDir {
        PluginDir::new(Impl::Ours, Impl::Ours)
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
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
    pub fn msg(&self) -> &str {
        self.json["msg"].as_str().unwrap_or_default()
    }
    pub fn ip(&self) -> std::net::IpAddr {
        assert!(self.ok, "ADD failed: {}", self.json);
        self.json["ips"][0]["address"].as_str().unwrap().split('/').next().unwrap().parse().unwrap()
    }
}

/// Runs `plugin` from `node`'s namespace for `pod`.
pub fn cni(
    plugins: &PluginDir,
    node: &Netns,
    command: &str,
    cid: &str,
    pod: Option<&Netns>,
    ifname: &str,
    conf: &Value,
) -> Outcome {
    cni_args(plugins, node, command, cid, pod, ifname, "", conf)
}

#[allow(clippy::too_many_arguments)]
pub fn cni_args(
    plugins: &PluginDir,
    node: &Netns,
    command: &str,
    cid: &str,
    pod: Option<&Netns>,
    ifname: &str,
    args: &str,
    conf: &Value,
) -> Outcome {
    let netns = pod.map(|p| p.path().display().to_string()).unwrap_or_default();
    let env = [
        ("CNI_COMMAND", command),
        ("CNI_CONTAINERID", cid),
        ("CNI_NETNS", &netns),
        ("CNI_IFNAME", ifname),
        ("CNI_ARGS", args),
    ];
    invoke(plugins, node, conf["type"].as_str().unwrap(), &env, &serde_json::to_vec(conf).unwrap())
}

/// Runs `plugin` from `node`'s namespace with exactly these CNI_* variables (and
/// CNI_PATH) and these bytes on stdin.
pub fn invoke(plugins: &PluginDir, node: &Netns, plugin: &str, env: &[(&str, &str)], stdin: &[u8]) -> Outcome {
    let mut child = node
        .command(plugins.path().join(plugin))
        .env_clear()
        .envs(env.iter().copied())
        .env("CNI_PATH", plugins.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    let json = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    Outcome { ok: out.status.success(), json }
}

/// The seed's Kubernetes config, with the master renamed and a private store.
pub fn seed_conf(version: &str, data: &Path) -> Value {
    json!({"cniVersion": version, "name": "macvlan-conf", "type": "macvlan", "master": "enp0s3", "mode": "bridge",
           "ipam": {"type": "host-local", "subnet": "192.168.1.0/24", "gateway": "192.168.1.1",
                    "rangeStart": "192.168.1.100", "rangeEnd": "192.168.1.200", "dataDir": data}})
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
                .filter(|n| n.parse::<std::net::IpAddr>().is_ok())
                .collect()
        })
        .unwrap_or_default()
}

pub fn reaches(from: &Netns, ip: std::net::IpAddr) -> bool {
    tcp_reachable(from, ip, 9, Duration::from_secs(3)).unwrap()
}

/// For "cannot reach" checks: long enough for ARP to give up on this LAN.
pub fn never_reaches(from: &Netns, ip: std::net::IpAddr) -> bool {
    !tcp_reachable(from, ip, 9, Duration::from_millis(1500)).unwrap()
}

pub fn node(w: &World, i: usize) -> &Host {
    w.node(i)
}

/// Runs `command` with CNI_NETNS set to an arbitrary path (which may not exist).
pub fn cni_path(plugins: &PluginDir, node: &Netns, command: &str, cid: &str, netns: &str, conf: &Value) -> Outcome {
    let env = [("CNI_COMMAND", command), ("CNI_CONTAINERID", cid), ("CNI_NETNS", netns), ("CNI_IFNAME", "eth0")];
    invoke(plugins, node, conf["type"].as_str().unwrap(), &env, &serde_json::to_vec(conf).unwrap())
}
