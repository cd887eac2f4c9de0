//! Many nodes, one pool, a real 3-member etcd cluster: no address twice, none lost,
//! and what happens when members die.

mod support;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::*;
use underlay_ipam::cluster::Cluster;

/// Exactly 1000 addresses: 10.40.0.10 - 10.40.3.241, the gateway outside.
fn pool_of_1000() -> Value {
    json!({"ranges": [[{"subnet": "10.40.0.0/22", "rangeStart": "10.40.0.10", "rangeEnd": "10.40.3.241", "gateway": "10.40.0.1"}]]})
}

/// `nodes` threads, each a node calling ADD `each` times in a row; the addresses and
/// the failures.
fn allocate(
    etcd: &Value,
    net: &str,
    ipam: &Value,
    nodes: usize,
    each: usize,
    done: Arc<AtomicUsize>,
) -> (Vec<String>, Vec<String>) {
    let handles: Vec<_> = (0..nodes)
        .map(|n| {
            let (etcd, ipam, net, done) = (etcd.clone(), ipam.clone(), net.to_string(), done.clone());
            std::thread::spawn(move || {
                let c = conf(&net, &etcd, &format!("node{n}"), ipam);
                let mut ips = Vec::new();
                let mut failures = Vec::new();
                for k in 0..each {
                    let out = call("ADD", &format!("n{n}-c{k}"), "", &c);
                    if out.ok {
                        ips.push(out.ip().to_string());
                    } else {
                        failures.push(out.json.to_string());
                    }
                    done.fetch_add(1, Ordering::SeqCst);
                }
                (ips, failures)
            })
        })
        .collect();
    let mut ips = Vec::new();
    let mut failures = Vec::new();
    for h in handles {
        let (i, f) = h.join().unwrap();
        ips.extend(i);
        failures.extend(f);
    }
    (ips, failures)
}

#[test]
fn ten_nodes_take_all_1000_addresses_while_the_leader_dies() {
    let mut cluster = Cluster::start(3).unwrap();
    let etcd = cluster.etcd_conf();
    let started = Instant::now();
    let done = Arc::new(AtomicUsize::new(0));
    let run = {
        let (etcd, done) = (etcd.clone(), done.clone());
        std::thread::spawn(move || allocate(&etcd, "big", &pool_of_1000(), 10, 100, done))
    };
    while done.load(Ordering::SeqCst) < 300 {
        std::thread::sleep(Duration::from_millis(5));
    }
    let leader = cluster.leader().expect("a leader");
    cluster.kill(leader);
    let (ips, failures) = run.join().unwrap();
    let took = started.elapsed();
    assert!(failures.is_empty(), "{} failures, first: {:?}", failures.len(), failures.first());
    let distinct: HashSet<&String> = ips.iter().collect();
    assert_eq!((ips.len(), distinct.len()), (1000, 1000));
    eprintln!(
        "1000 allocations by 10 nodes, the leader (member {leader}) killed after 300: {:.2} s",
        took.as_secs_f64()
    );
    let extra = call("ADD", "one-too-many", "", &conf("big", &etcd, "node0", pool_of_1000()));
    assert_eq!(extra.code(), 102, "{}", extra.json);
    assert!(
        extra.msg().contains("no free address") && extra.msg().contains("10.40.0.10-10.40.3.241"),
        "{}",
        extra.msg()
    );
    let (by_ip, by_owner) = records(&etcd, "big");
    assert_eq!(by_ip.len(), 1000);
    assert_eq!(by_ip, by_owner, "every address record has its owner record, and back");
}

#[test]
fn a_lost_quorum_says_try_again_and_nothing_is_half_written() {
    let mut cluster = Cluster::start(3).unwrap();
    let mut etcd = cluster.etcd_conf();
    // Each ADD without quorum waits this long before it answers 11.
    etcd["timeoutMs"] = json!(1000);
    let ipam = json!({"subnet": "10.41.0.0/23"});
    // Allocations running while two members die: some succeed, the rest say 11.
    let done = Arc::new(AtomicUsize::new(0));
    let run = {
        let (etcd, ipam, done) = (etcd.clone(), ipam.clone(), done.clone());
        std::thread::spawn(move || allocate(&etcd, "ha", &ipam, 5, 12, done))
    };
    while done.load(Ordering::SeqCst) < 20 {
        std::thread::sleep(Duration::from_millis(5));
    }
    cluster.kill(0);
    cluster.kill(1);
    let (ips, failures) = run.join().unwrap();
    assert!(!failures.is_empty(), "with two of three members down, ADD cannot succeed");
    for f in &failures {
        let v: Value = serde_json::from_str(f).unwrap();
        assert_eq!(v["code"], 11, "{f}");
        assert!(v["msg"].as_str().unwrap().contains("127.0.0.1:"), "{f}");
    }
    let c = conf("ha", &etcd, "node9", ipam.clone());
    let started = Instant::now();
    let out = call("ADD", "late", "", &c);
    assert_eq!(out.code(), 11, "{}", out.json);
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    // Both come back: what was written is whole, and ADD works again.
    cluster.restart(0).unwrap();
    cluster.restart(1).unwrap();
    cluster.wait_healthy(Duration::from_secs(20)).unwrap();
    let (by_ip, by_owner) = records(&etcd, "ha");
    assert_eq!(by_ip, by_owner, "every address record has its owner record, and back");
    let recorded: HashSet<String> = by_ip.iter().map(|r| r.0.to_string()).collect();
    assert!(ips.iter().all(|ip| recorded.contains(ip)), "every ADD that succeeded is recorded");
    let again = call("ADD", "late", "", &c);
    assert!(again.ok, "{}", again.json);
    assert!(call("DEL", "late", "", &c).ok);
}
