//! `macvlan` + `underlay-host-access` chained as a runtime runs a conflist: the node
//! reaches its pods while they live, and nothing is left when the last one goes.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::*;
use underlay_linux::reach::{ping, tcp_reachable};
use underlay_linux::world::WorldSpec;

/// A conflist's two plugin configs, as libcni hands them out.
fn confs(data: &std::path::Path, state: &std::path::Path) -> (Value, Value) {
    let mut mv = seed_conf("1.1.0", data);
    mv["name"] = json!("podnet");
    let ha = json!({"cniVersion": "1.1.0", "name": "podnet", "type": "underlay-host-access", "master": "enp0s3",
                    "address": "192.168.1.250", "dataDir": state});
    (mv, ha)
}

fn chained(mut ha: Value, prev: &Value) -> Value {
    ha["prevResult"] = prev.clone();
    ha
}

#[test]
fn the_node_reaches_its_pods_and_the_shim_goes_with_the_last() {
    let w = world(WorldSpec::seed("chain").nodes(1).pods(2));
    let node = &w.node(0).netns;
    let (data, state) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mv, ha) = confs(data.path(), state.path());
    let p = PluginDir::ours();
    let links_before = links(node);
    let routes = || -> Vec<String> {
        let mut nl = node.netlink().unwrap();
        let mut v: Vec<String> = nl.routes().unwrap().into_iter().map(|r| format!("{r:?}")).collect();
        v.sort();
        v
    };
    let routes_before = routes();
    let sysctls = || ["arp_ignore", "arp_announce"].map(|k| node.sysctl(&format!("net/ipv4/conf/enp0s3/{k}")).unwrap());
    let sysctls_before = sysctls();
    let mut results = Vec::new();
    for (i, pod) in w.pods.iter().enumerate() {
        let cid = format!("pod{i}");
        let a = cni(&p, node, "ADD", &cid, Some(pod), "eth0", &mv);
        assert!(a.ok, "{}", a.json);
        let b = cni(&p, node, "ADD", &cid, Some(pod), "eth0", &chained(ha.clone(), &a.json));
        assert!(b.ok, "{}", b.json);
        assert_eq!(b.json, a.json, "a chained plugin passes the result on");
        results.push(a);
    }
    for r in &results {
        let ip = r.ip();
        assert!(tcp_reachable(node, ip, 9, Duration::from_secs(2)).unwrap(), "node reaches {ip}");
        assert!(ping(node, ip, Duration::from_secs(2)).unwrap());
        let check = cni(&p, node, "CHECK", "pod0", Some(&w.pods[0]), "eth0", &chained(ha.clone(), &results[0].json));
        assert!(check.ok, "{}", check.json);
    }
    // The node keeps its own LAN: the external device reaches the node.
    assert!(tcp_reachable(&w.external().netns, w.node(0).ip.addr(), 22, Duration::from_secs(2)).unwrap());
    assert_eq!(sysctls(), ["1", "2"], "no ARP flux while the shim is there");
    // CHECK notices a pod route someone removed.
    let mut nl = node.netlink().unwrap();
    let gone = nl.routes().unwrap().into_iter().find(|r| r.dst.addr() == results[0].ip() && r.dst.prefix_len() == 32);
    nl.del_route(&gone.expect("a host route to pod0")).unwrap();
    let check = cni(&p, node, "CHECK", "pod0", Some(&w.pods[0]), "eth0", &chained(ha.clone(), &results[0].json));
    assert_eq!(check.code(), 104, "{}", check.json);
    assert!(check.msg().contains(&results[0].ip().to_string()), "{}", check.json);
    // DEL pod by pod.
    for (i, pod) in w.pods.iter().enumerate() {
        let cid = format!("pod{i}");
        assert!(cni(&p, node, "DEL", &cid, Some(pod), "eth0", &chained(ha.clone(), &results[i].json)).ok);
        assert!(cni(&p, node, "DEL", &cid, Some(pod), "eth0", &mv).ok);
        let shim_left = links(node).iter().any(|l| l.starts_with("ulh-"));
        assert_eq!(shim_left, i == 0, "the shim stays while a pod remains, and goes with the last");
        if i == 0 {
            assert!(tcp_reachable(node, results[1].ip(), 9, Duration::from_secs(2)).unwrap());
        }
    }
    assert_eq!(links(node), links_before);
    assert_eq!(routes(), routes_before, "no route left behind");
    assert_eq!(sysctls(), sysctls_before, "the ARP sysctls are back");
    assert!(
        std::fs::read_dir(state.path()).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().ends_with(".json"))
    );
}

#[test]
fn gc_drops_routes_of_gone_pods_and_the_shim_with_them() {
    let w = world(WorldSpec::seed("chaingc").nodes(1).pods(1));
    let node = &w.node(0).netns;
    let (data, state) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mv, ha) = confs(data.path(), state.path());
    let p = PluginDir::ours();
    let a = cni(&p, node, "ADD", "gone", Some(&w.pods[0]), "eth0", &mv);
    assert!(cni(&p, node, "ADD", "gone", Some(&w.pods[0]), "eth0", &chained(ha.clone(), &a.json)).ok);
    let mut gc = ha.clone();
    gc["cni.dev/valid-attachments"] = json!([]);
    assert!(cni(&p, node, "GC", "", None, "", &gc).ok);
    assert!(!links(node).iter().any(|l| l.starts_with("ulh-")));
    let mut nl = node.netlink().unwrap();
    assert!(nl.routes().unwrap().iter().all(|r| r.dst.to_string() != format!("{}/32", a.ip())));
    // A same-subnet shim address is refused, as in the CLI.
    let mut bad = ha.clone();
    bad["address"] = json!("192.168.1.250/24");
    let out = cni(&p, node, "ADD", "x", Some(&w.pods[0]), "eth0", &chained(bad, &a.json));
    assert_eq!(out.code(), 7, "{}", out.json);
    assert!(out.msg().contains("second route"), "{}", out.json);
}
