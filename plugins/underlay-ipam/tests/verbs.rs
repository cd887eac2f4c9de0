//! The plugin's verbs against a real etcd: idempotent ADD, DEL of one's own only,
//! requested and excluded addresses, GC per node, releasing a dead node, STATUS, an
//! unreachable store, TLS.

mod support;

use std::collections::HashSet;

use serde_json::{Value, json};
use support::*;
use underlay_ipam::cluster::Cluster;

fn small(cluster: &Cluster, node: &str) -> Value {
    conf(
        "small",
        &cluster.etcd_conf(),
        node,
        json!({"subnet": "10.30.0.0/24", "rangeStart": "10.30.0.10", "rangeEnd": "10.30.0.19",
               "exclude": ["10.30.0.12", "10.30.0.16/30"]}),
    )
}

#[test]
fn add_del_requested_excluded_and_exhausted() {
    let cluster = Cluster::start(1).unwrap();
    let n1 = small(&cluster, "n1");
    let a = call("ADD", "c1", "", &n1);
    let again = call("ADD", "c1", "", &n1);
    assert_eq!(a.ip(), again.ip(), "ADD is idempotent");
    assert_eq!(a.json["ips"][0]["gateway"], "10.30.0.1");
    // Someone else's DEL frees nothing of c1's.
    assert!(call("DEL", "c2", "", &n1).ok);
    assert_eq!(records(&cluster.etcd_conf(), "small").0.len(), 1);
    // A requested address (one c1 did not get); taken by another → 105.
    let want = if a.ip().to_string() == "10.30.0.15" { "10.30.0.13" } else { "10.30.0.15" };
    let r = call("ADD", "c3", &format!("IgnoreUnknown=1;IP={want}"), &n1);
    assert_eq!(r.ip().to_string(), want);
    let taken = call("ADD", "c4", &format!("IgnoreUnknown=1;IP={want}"), &n1);
    assert_eq!(taken.code(), 105, "{}", taken.json);
    let excluded = call("ADD", "c4", "IgnoreUnknown=1;IP=10.30.0.17", &n1);
    assert_eq!(excluded.code(), 7, "{}", excluded.json);
    assert!(excluded.msg().contains("10.30.0.17") && excluded.msg().contains("exclude"), "{}", excluded.msg());
    // Fill the pool: .10-.19 less .12 and .16-.19 = 5 addresses, 2 held.
    let mut got: HashSet<String> = [a.ip().to_string(), r.ip().to_string()].into();
    for i in 0..3 {
        let x = call("ADD", &format!("f{i}"), "", &n1);
        got.insert(x.ip().to_string());
    }
    let want: HashSet<String> =
        ["10.30.0.10", "10.30.0.11", "10.30.0.13", "10.30.0.14", "10.30.0.15"].map(String::from).into();
    assert_eq!(got, want, "every usable address once, none excluded");
    let full = call("ADD", "f9", "", &n1);
    assert_eq!(full.code(), 102, "{}", full.json);
    assert!(full.msg().contains("no free address"), "{}", full.msg());
    let status = call("STATUS", "", "", &n1);
    assert_eq!(status.code(), 50, "{}", status.json);
    assert!(status.msg().contains("5 of its 5"), "{}", status.msg());
    // DEL frees, twice is fine, and CHECK follows.
    assert!(call("CHECK", "c1", "", &with_prev(&n1, &a.json)).ok);
    assert!(call("DEL", "c1", "", &n1).ok);
    assert!(call("DEL", "c1", "", &n1).ok);
    let gone = call("CHECK", "c1", "", &with_prev(&n1, &a.json));
    assert_eq!(gone.code(), 104, "{}", gone.json);
    assert!(call("STATUS", "", "", &n1).ok);
    let (ips, owners) = records(&cluster.etcd_conf(), "small");
    assert_eq!(ips.len(), 4);
    assert_eq!(ips, owners, "every address record has its owner record and back");
}

fn with_prev(conf: &Value, prev: &Value) -> Value {
    let mut c = conf.clone();
    c["prevResult"] = prev.clone();
    c
}

#[test]
fn gc_is_per_node_and_a_dead_node_can_be_released() {
    let cluster = Cluster::start(1).unwrap();
    let (n1, n2) = (small(&cluster, "n1"), small(&cluster, "n2"));
    for (node, c) in [(&n1, "a1"), (&n1, "a2"), (&n2, "b1"), (&n2, "b2")] {
        assert!(call("ADD", c, "", node).ok);
    }
    // n1's runtime knows only a1: a2 goes, n2's stay.
    let mut gc = n1.clone();
    gc["cniVersion"] = json!("1.1.0");
    gc["cni.dev/valid-attachments"] = json!([{"containerID": "a1", "ifname": "eth0"}]);
    assert!(call("GC", "", "", &gc).ok);
    let holders: Vec<String> = records(&cluster.etcd_conf(), "small").0.into_iter().map(|(_, _, c)| c).collect();
    assert_eq!(holders.iter().filter(|c| c.starts_with('b')).count(), 2, "{holders:?}");
    assert!(holders.contains(&"a1".to_string()) && !holders.contains(&"a2".to_string()), "{holders:?}");
    // n2 dies: the operator releases what it held, and only that.
    let etcd: underlay_ipam::EtcdConf = serde_json::from_value(cluster.etcd_conf()).unwrap();
    let mut admin = underlay_ipam::admin::Admin::connect(&etcd).unwrap();
    let freed = admin.release_node("n2", None).unwrap();
    assert_eq!(freed.len(), 2);
    let (ips, owners) = records(&cluster.etcd_conf(), "small");
    assert_eq!(ips.iter().map(|r| r.2.as_str()).collect::<Vec<_>>(), ["a1"]);
    assert_eq!(ips, owners);
    assert!(admin.list(None).unwrap().iter().all(|r| r.holder.as_ref().unwrap().node == "n1"));
}

#[test]
fn an_unreachable_store_means_try_again_later() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let etcd = json!({"endpoints": [format!("http://127.0.0.1:{port}")], "timeoutMs": 500});
    let c = conf("lan", &etcd, "n1", json!({"subnet": "10.31.0.0/24"}));
    let started = std::time::Instant::now();
    let add = call("ADD", "c1", "", &c);
    assert_eq!(add.code(), 11, "{}", add.json);
    assert!(add.msg().contains(&format!("127.0.0.1:{port}")), "{}", add.msg());
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert_eq!(call("DEL", "c1", "", &c).code(), 11);
    let status = call("STATUS", "", "", &c);
    assert_eq!(status.code(), 50, "{}", status.json);
    // A bad config is named before anything is tried.
    let bad = conf("lan", &json!({"endpoints": ["127.0.0.1:2379"]}), "n1", json!({"subnet": "10.31.0.0/24"}));
    let out = call("ADD", "c1", "", &bad);
    assert_eq!(out.code(), 7);
    assert!(out.msg().contains("ipam.etcd.endpoints") && out.msg().contains("127.0.0.1:2379"), "{}", out.msg());
}

#[test]
fn tls_with_client_certificates() {
    let cluster = Cluster::start_tls(1).unwrap();
    let c = conf("sec", &cluster.etcd_conf(), "n1", json!({"subnet": "10.32.0.0/24"}));
    let a = call("ADD", "c1", "", &c);
    assert!(a.ok, "{}", a.json);
    // Without the client certificate the server refuses.
    let mut no_cert = cluster.etcd_conf();
    no_cert.as_object_mut().unwrap().retain(|k, _| k != "certFile" && k != "keyFile");
    no_cert["timeoutMs"] = json!(1000);
    let refused = call("ADD", "c2", "", &conf("sec", &no_cert, "n1", json!({"subnet": "10.32.0.0/24"})));
    assert!(!refused.ok, "{}", refused.json);
    assert!(refused.msg().contains("https://127.0.0.1:"), "{}", refused.status);
    assert!(call("DEL", "c1", "", &c).ok);
}
