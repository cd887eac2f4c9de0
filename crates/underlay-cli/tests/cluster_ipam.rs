//! `underlay network create --ipam-driver underlay-ipam`: two hosts, one subnet, one
//! store in etcd (on the LAN's external device): no address twice, aux addresses held
//! once, `gc` touches only its own host's, `ipam release-node` frees a dead host's.

mod support;

use std::collections::HashSet;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use support::*;
use underlay_ipam::cluster::Cluster;
use underlay_linux::reach::tcp_reachable;
use underlay_linux::world::WorldSpec;

fn create(u: &Underlay, node: &str, endpoint: &str) {
    u.lan(
        "lan",
        &[
            "--ip-range",
            "192.168.1.128/28",
            "--aux-address",
            "printer=192.168.1.130",
            "--ipam-driver",
            "underlay-ipam",
            "--ipam-opt",
            &format!("endpoints={endpoint}"),
            "--ipam-opt",
            &format!("node={node}"),
        ],
    )
    .ok();
}

fn reservations(u: &Underlay) -> Vec<Value> {
    u.run(&["ipam", "ls", "--from-network", "lan", "--format", "json"]).ok().json().as_array().unwrap().clone()
}

#[test]
fn two_hosts_share_a_subnet_through_etcd() {
    let w = world(WorldSpec::seed("cliipam").nodes(2).pods(0));
    let ext = w.external();
    let name = ext.name().to_string();
    let launcher = Box::new(move |program: &str| -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &name, program]);
        c
    });
    let cluster = Cluster::start_with(1, ext.ip.addr(), &[2379, 2380], launcher, false).unwrap();
    let endpoint = &cluster.endpoints()[0];
    let (u1, u2) = (Underlay::on(&w.node(0).netns), Underlay::on(&w.node(1).netns));
    create(&u1, "host1", endpoint);
    create(&u2, "host2", endpoint);
    // Three endpoints on each host, from one /28.
    let mut ips = Vec::new();
    for (u, host) in [(&u1, "a"), (&u2, "b")] {
        for i in 0..3 {
            let name = format!("{host}{i}");
            u.run(&["run", "--network", "lan", "-d", "--name", &name, "--", "/bin/busybox", "sleep", "60"]).ok();
            let ep = u.wait_running(&name);
            ips.push(ep["ips"][0].as_str().unwrap().split('/').next().unwrap().to_string());
        }
    }
    let distinct: HashSet<&String> = ips.iter().collect();
    assert_eq!(distinct.len(), 6, "{ips:?}");
    // Asking host1 for host2's address: refused naming the holder, not in the plugin's words.
    let out = u1.run(&["run", "--network", "lan", "--ip", &ips[3], "--", "/bin/true"]);
    assert_eq!(out.code, 125, "{}", out.stderr);
    assert!(out.stderr.contains("on node \"host2\""), "{}", out.stderr);
    assert!(!ips.contains(&"192.168.1.130".to_string()), "the aux address is never handed out");
    // Across the hosts, through the switch.
    let a0 = u1.ps().into_iter().find(|e| e["name"] == "a0").unwrap();
    let a0_ns = underlay_linux::Netns::open(a0["netns"].as_str().unwrap()).unwrap();
    assert!(tcp_reachable(&a0_ns, ips[3].parse().unwrap(), 9, Duration::from_secs(2)).unwrap());
    // The store: six endpoints and the aux address once.
    let all = reservations(&u1);
    assert_eq!(all.len(), 7, "{all:#?}");
    assert_eq!(all.iter().filter(|r| r["holder"]["node"] == "host2").count(), 3);
    // gc on host1 leaves host2's alone.
    u1.run(&["gc"]).ok();
    assert_eq!(reservations(&u1).len(), 7);
    // host2 dies: its endpoints' addresses come back through release-node.
    let out = u1.run(&["ipam", "release-node", "host2", "--from-network", "lan"]).ok().stdout.clone();
    assert_eq!(out.lines().count(), 3, "{out}");
    let left = reservations(&u1);
    assert!(left.iter().all(|r| r["holder"]["node"] == "host1"), "{left:#?}");
    for i in 0..3 {
        u1.run(&["stop", "-t", "1", &format!("a{i}")]).ok();
    }
    u1.run(&["network", "rm", "lan"]).ok();
    assert!(reservations(&u2).is_empty(), "host1's endpoints and aux hold are released: {:#?}", reservations(&u2));
    // Bad options are named.
    let bad = u1.run(&[
        "network",
        "create",
        "--subnet",
        "10.9.0.0/24",
        "--ipam-driver",
        "underlay-ipam",
        "--ipam-opt",
        "endpoint=x",
        "-o",
        "parent=enp0s3",
        "x",
    ]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(bad.stderr.contains("\"endpoint\""), "{}", bad.stderr);
    for i in 0..3 {
        let _ = u2.run(&["stop", "-t", "1", &format!("b{i}")]);
    }
    drop(cluster);
}
