//! What one ADD costs the cluster, counted by the members' own metrics: an ADD nobody
//! races is two requests (the caller's records and positions, then the claim), and a
//! claim that loses brings back the held addresses after it, so the walk skips them
//! without asking again.

mod support;

use serde_json::json;
use support::*;
use underlay_ipam::cluster::Cluster;

/// Requests the cluster handled for `f`.
fn counted<T>(cluster: &Cluster, f: impl FnOnce() -> T) -> (T, u64) {
    let before = cluster.grpc_requests().unwrap();
    let out = f();
    (out, cluster.grpc_requests().unwrap() - before)
}

#[test]
fn an_uncontended_add_is_two_requests() {
    let cluster = Cluster::start(1).unwrap();
    let c = conf("req", &cluster.etcd_conf(), "n1", json!({"subnet": "10.36.0.0/24"}));
    assert!(call("ADD", "warm", "", &c).ok);
    for i in 0..3 {
        let (out, requests) = counted(&cluster, || call("ADD", &format!("c{i}"), "", &c));
        assert!(out.ok, "{}", out.json);
        assert_eq!(requests, 2, "ADD {i}");
    }
}

#[test]
fn held_addresses_on_the_walk_are_learned_from_the_lost_claim() {
    let cluster = Cluster::start(1).unwrap();
    let c = conf("busy", &cluster.etcd_conf(), "n1", json!({"subnet": "10.37.0.0/24"}));
    let first = call("ADD", "c0", "", &c).ip();
    // Another node takes the next two addresses of n1's walk: this ADD loses one claim
    // (learning the window of held addresses from it) and wins the third address.
    let other = conf("busy", &cluster.etcd_conf(), "n2", json!({"subnet": "10.37.0.0/24"}));
    let next = |ip: std::net::IpAddr, k: u32| -> String {
        let std::net::IpAddr::V4(v4) = ip else { unreachable!() };
        std::net::Ipv4Addr::from(u32::from(v4) + k).to_string()
    };
    for k in [1, 2] {
        let out = call("ADD", &format!("other{k}"), &format!("IP={}", next(first, k)), &other);
        assert!(out.ok, "{}", out.json);
    }
    let (out, requests) = counted(&cluster, || call("ADD", "c1", "", &c));
    assert_eq!(out.ip().to_string(), next(first, 3), "{}", out.json);
    assert_eq!(requests, 3, "the records, one lost claim that reads the window, the claim");
}
