//! Running host-local binaries the way a runtime does, ours and the reference side by side.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

pub const REFERENCE: &str = "/usr/lib/cni/host-local";

pub fn ours() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_host-local"))
}

/// The reference binary; its absence fails the test (CI installs it).
pub fn reference() -> PathBuf {
    let p = PathBuf::from(REFERENCE);
    assert!(p.exists(), "{REFERENCE} is missing: install containernetworking-plugins (scripts/deps)");
    p
}

/// A network config with host-local IPAM over `ipam`, storing under `data`.
pub fn conf(version: &str, name: &str, data: &Path, mut ipam: Value) -> Vec<u8> {
    ipam["type"] = json!("host-local");
    ipam["dataDir"] = json!(data);
    serde_json::to_vec(&json!({"cniVersion": version, "name": name, "type": "macvlan", "ipam": ipam})).unwrap()
}

pub fn spawn(bin: &Path, command: &str, cid: &str, ifname: &str, args: &str, stdin: &[u8]) -> Child {
    let mut child = Command::new(bin)
        .env_clear()
        .env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", cid)
        .env("CNI_NETNS", "/var/run/netns/unused")
        .env("CNI_IFNAME", ifname)
        .env("CNI_ARGS", args)
        .env("CNI_PATH", "/usr/lib/cni")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child
}

pub struct Out {
    pub ok: bool,
    pub json: Value,
}

pub fn finish(child: Child) -> Out {
    let out = child.wait_with_output().unwrap();
    let json = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    Out { ok: out.status.success(), json }
}

pub fn run(bin: &Path, command: &str, cid: &str, stdin: &[u8]) -> Out {
    finish(spawn(bin, command, cid, "eth0", "", stdin))
}

pub fn run_args(bin: &Path, command: &str, cid: &str, args: &str, stdin: &[u8]) -> Out {
    finish(spawn(bin, command, cid, "eth0", args, stdin))
}

/// The address an ADD result gives (first `ips` entry).
pub fn ip_of(out: &Out) -> String {
    assert!(out.ok, "ADD failed: {}", out.json);
    out.json["ips"][0]["address"].as_str().unwrap().split('/').next().unwrap().to_string()
}

/// The reservation files of a store: (address, content).
pub fn reservations(store: &Path) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = std::fs::read_dir(store)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| {
                    let name = e.file_name().into_string().ok()?;
                    name.parse::<std::net::IpAddr>().ok()?;
                    Some((name, std::fs::read_to_string(e.path()).unwrap_or_default()))
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}
