//! Three nodes on one /24, pods attached with `macvlan` + `underlay-ipam`, etcd on the
//! LAN (three members on the external device's address): distinct addresses, and the
//! pods reach each other across the switch.

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use underlay_ipam::cluster::Cluster;
use underlay_linux::Netns;
use underlay_linux::reach::tcp_reachable;
use underlay_linux::world::{World, WorldSpec};

/// A CNI_PATH with our `macvlan` and `underlay-ipam`.
fn plugin_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let ipam = PathBuf::from(support::bin());
    let macvlan = ipam.with_file_name("macvlan");
    assert!(macvlan.exists(), "{} missing: run the workspace's tests (cargo test --workspace)", macvlan.display());
    std::os::unix::fs::symlink(&macvlan, dir.path().join("macvlan")).unwrap();
    std::os::unix::fs::symlink(&ipam, dir.path().join("underlay-ipam")).unwrap();
    dir
}

fn add(plugins: &Path, node: &Netns, pod: &Netns, id: &str, conf: &Value) -> Value {
    let mut child = node
        .command(plugins.join("macvlan"))
        .env_clear()
        .env("CNI_COMMAND", "ADD")
        .env("CNI_CONTAINERID", id)
        .env("CNI_NETNS", pod.path())
        .env("CNI_IFNAME", "eth0")
        .env("CNI_PATH", plugins)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(conf.to_string().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert!(out.status.success(), "ADD {id}: {v}");
    v
}

#[test]
fn pods_on_three_nodes_share_one_subnet_without_conflicts() {
    let w = World::build(WorldSpec::seed("ipamworld").nodes(3).pods(6)).expect("build the world (run as root)");
    let ext = w.external();
    // `ip netns exec` execs the program itself, so the PID the cluster kills is etcd's.
    let name = ext.name().to_string();
    let launcher = Box::new(move |program: &str| -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &name, program]);
        c
    });
    let ports: Vec<u16> = (0..6).map(|i| 2379 + i).collect();
    let cluster = Cluster::start_with(3, ext.ip.addr(), &ports, launcher, false).unwrap();
    let plugins = plugin_dir();
    let mut ips = Vec::new();
    for (i, pod) in w.pods.iter().enumerate() {
        let node = i % 3;
        // The seed's Kubernetes config, with the cluster-wide IPAM in host-local's place.
        let conf = json!({"cniVersion": "1.0.0", "name": "macvlan-conf", "type": "macvlan", "master": "enp0s3", "mode": "bridge",
            "ipam": {"type": "underlay-ipam", "subnet": "192.168.1.0/24", "gateway": "192.168.1.1",
                     "rangeStart": "192.168.1.100", "rangeEnd": "192.168.1.200",
                     "node": format!("node{}", node + 1), "etcd": cluster.etcd_conf()}});
        let r = add(plugins.path(), &w.node(node).netns, pod, &format!("pod{i}"), &conf);
        let ip: std::net::IpAddr = r["ips"][0]["address"].as_str().unwrap().split('/').next().unwrap().parse().unwrap();
        ips.push(ip);
    }
    let mut distinct = ips.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 6, "{ips:?}");
    // Every pod reaches every pod on another node, through the switch.
    for (i, a) in w.pods.iter().enumerate() {
        for (j, b) in ips.iter().enumerate() {
            if i % 3 != j % 3 {
                assert!(tcp_reachable(a, *b, 9, Duration::from_secs(2)).unwrap(), "pod{i} → pod{j} ({b})");
            }
        }
    }
}
