//! Foreign holds in etcd (issue 15): an ADD carrying the `underlay.foreignHolds`
//! extension records each address as held by the device's MAC before it allocates;
//! no container's DEL frees a hold, GC keeps it until it expires.

mod support;

use std::net::IpAddr;

use serde_json::{Value, json};
use support::*;
use underlay_ipam::cluster::Cluster;

fn tiny(cluster: &Cluster) -> Value {
    conf(
        "tiny",
        &cluster.etcd_conf(),
        "n1",
        json!({"subnet": "10.31.0.0/24", "rangeStart": "10.31.0.10", "rangeEnd": "10.31.0.13"}),
    )
}

fn with_holds(conf: &Value, ips: &[IpAddr], until: u64) -> Value {
    let mut c = conf.clone();
    let holds: Vec<Value> =
        ips.iter().map(|ip| json!({"ip": ip, "mac": "02:aa:bb:cc:dd:ee", "until": until})).collect();
    c["underlay"] = json!({"foreignHolds": holds});
    c
}

#[test]
fn holds_are_recorded_before_allocation_and_outlive_del_until_they_expire() {
    let cluster = Cluster::start(1).unwrap();
    let n1 = tiny(&cluster);
    let x = call("ADD", "c1", "", &n1).ip();
    let all: Vec<IpAddr> = (10..=13).map(|i| format!("10.31.0.{i}").parse().unwrap()).collect();
    let free: Vec<IpAddr> = all.iter().copied().filter(|ip| *ip != x).collect();
    // Every free address but the last is in use by a device: c2 gets the last one.
    let later = underlay::ipam::hold::now() + 3600;
    let got = call("ADD", "c2", "", &with_holds(&n1, &free[..2], later));
    assert_eq!(got.ip(), free[2], "{}", got.json);
    let (by_ip, by_owner) = records(&cluster.etcd_conf(), "tiny");
    let hold_id = format!("foreign-hold 02:aa:bb:cc:dd:ee {later}");
    for ip in &free[..2] {
        assert!(by_ip.contains(&(*ip, "n1".into(), hold_id.clone())), "{by_ip:?}");
        assert!(by_owner.contains(&(*ip, "n1".into(), hold_id.clone())), "{by_owner:?}");
    }
    // DEL of c2 frees c2's address only; GC keeps live holds.
    assert!(call("DEL", "c2", "", &n1).ok);
    let mut gc = n1.clone();
    gc["cni.dev/valid-attachments"] = json!([{"containerID": "c1", "ifname": "eth0"}]);
    assert!(call("GC", "", "", &gc).ok);
    assert_eq!(records(&cluster.etcd_conf(), "tiny").0.len(), 3, "c1's address and the two holds");
    // An expired hold goes at the next GC.
    assert!(call("ADD", "c3", "", &with_holds(&n1, &free[2..], 1)).code() == 102);
    assert_eq!(records(&cluster.etcd_conf(), "tiny").0.len(), 4);
    assert!(call("GC", "", "", &gc).ok);
    let left: Vec<IpAddr> = records(&cluster.etcd_conf(), "tiny").0.into_iter().map(|h| h.0).collect();
    assert_eq!(left.len(), 3, "the expired hold went: {left:?}");
    assert!(!left.contains(&free[2]));
}
