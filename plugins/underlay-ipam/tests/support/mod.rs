//! Calling the `underlay-ipam` binary as a runtime would, and reading the store.

#![allow(dead_code)]

use std::io::Write;
use std::net::IpAddr;
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use underlay_ipam::EtcdConf;
use underlay_ipam::etcd::Etcd;

pub struct Outcome {
    pub ok: bool,
    pub json: Value,
    /// How the process ended, for failure messages.
    pub status: String,
}

impl Outcome {
    pub fn code(&self) -> u64 {
        self.json["code"].as_u64().unwrap_or(0)
    }
    pub fn msg(&self) -> String {
        format!(
            "{} {}",
            self.json["msg"].as_str().unwrap_or_default(),
            self.json["details"].as_str().unwrap_or_default()
        )
    }
    pub fn ip(&self) -> IpAddr {
        assert!(self.ok, "ADD failed: {}", self.json);
        self.json["ips"][0]["address"].as_str().unwrap().split('/').next().unwrap().parse().unwrap()
    }
}

/// A network config using the cluster `etcd` and ipam keys `ipam`.
pub fn conf(name: &str, etcd: &Value, node: &str, ipam: Value) -> Value {
    let mut section = json!({"type": "underlay-ipam", "node": node, "etcd": etcd});
    section.as_object_mut().unwrap().extend(ipam.as_object().unwrap().clone());
    json!({"cniVersion": "1.1.0", "name": name, "type": "macvlan", "ipam": section})
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_underlay-ipam")
}

/// One call of the plugin binary.
pub fn call(command: &str, cid: &str, args: &str, conf: &Value) -> Outcome {
    call_with(Command::new(bin()), command, cid, args, conf)
}

pub fn call_with(mut cmd: Command, command: &str, cid: &str, args: &str, conf: &Value) -> Outcome {
    let mut child = cmd
        .env_clear()
        .env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", cid)
        .env("CNI_NETNS", "/proc/self/ns/net")
        .env("CNI_IFNAME", "eth0")
        .env("CNI_ARGS", args)
        .env("CNI_PATH", "/nonexistent")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&serde_json::to_vec(conf).unwrap()).unwrap();
    let out = child.wait_with_output().unwrap();
    let json = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    Outcome {
        ok: out.status.success(),
        json,
        status: format!("{} {}", out.status, String::from_utf8_lossy(&out.stdout)),
    }
}

pub fn etcd(etcd: &Value) -> Etcd {
    let conf: EtcdConf = serde_json::from_value(etcd.clone()).unwrap();
    Etcd::connect(&conf).unwrap()
}

/// One reservation as (address, node, container).
pub type Held = (IpAddr, String, String);

/// Address records and owner records of `network` (default prefix), sorted.
pub fn records(etcd_conf: &Value, network: &str) -> (Vec<Held>, Vec<Held>) {
    let mut e = etcd(etcd_conf);
    let base = format!("/underlay/ipam/{network}/");
    let keys = underlay_ipam::store::Keys::new("/underlay/ipam", network);
    let mut by_ip = Vec::new();
    for family in keys.ips() {
        for kv in e.list(&family, false).unwrap() {
            let ip = keys.parse_ip(&kv.key).unwrap();
            let v: Value = serde_json::from_slice(&kv.value).unwrap();
            assert_eq!(v["ip"], ip.to_string(), "the record names its address");
            by_ip.push((ip, v["node"].as_str().unwrap().to_string(), v["containerID"].as_str().unwrap().to_string()));
        }
    }
    let mut by_owner = Vec::new();
    for kv in e.list(&format!("{base}owner/"), true).unwrap() {
        let parts: Vec<&str> = kv.key.trim_start_matches(&format!("{base}owner/")).split('/').collect();
        by_owner.push((parts[3].parse().unwrap(), parts[0].to_string(), parts[1].to_string()));
    }
    by_ip.sort();
    by_owner.sort();
    (by_ip, by_owner)
}
