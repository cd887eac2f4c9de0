//! Host access: the node reaches its own endpoints and loses nothing it had.

mod support;

use std::net::IpAddr;
use std::time::Duration;

use support::*;
use underlay_linux::reach::{ping, tcp_reachable};
use underlay_linux::world::{World, WorldSpec};
use underlay_linux::{Netlink, Netns};

/// Everything host access may touch on the node: links (name, MAC), addresses, routes,
/// and the parent's ARP sysctls.
fn node_state(ns: &Netns) -> (Vec<String>, Vec<String>, Vec<String>, Vec<String>) {
    let mut nl = ns.netlink().unwrap();
    // A fresh world's link-local addresses are still in DAD; their local routes appear
    // when it ends. Compare settled states only.
    for _ in 0..100 {
        if !nl.addresses(None).unwrap().iter().any(|a| a.is_tentative()) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut links: Vec<String> = nl.links().unwrap().into_iter().map(|l| format!("{} {:?}", l.name, l.mac)).collect();
    let mut addrs: Vec<String> =
        nl.addresses(None).unwrap().into_iter().map(|a| format!("{} {}", a.index, a.net)).collect();
    let mut routes: Vec<String> = nl.routes().unwrap().into_iter().map(|r| format!("{r:?}")).collect();
    let sysctls: Vec<String> = ["arp_ignore", "arp_announce"]
        .iter()
        .map(|k| ns.sysctl(&format!("net/ipv4/conf/enp0s3/{k}")).unwrap())
        .collect();
    links.sort();
    addrs.sort();
    routes.sort();
    (links, addrs, routes, sysctls)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn reaches(from: &Netns, to: &str) -> bool {
    tcp_reachable(from, ip(to), 9, Duration::from_secs(2)).unwrap()
}

fn start(u: &Underlay, net: &str, name: &str, at: &str) {
    u.run(&["run", "--network", net, "--ip", at, "-d", "--name", name, "--", "/bin/busybox", "sleep", "120"]).ok();
    u.wait_running(name);
}

#[test]
fn host_access_reaches_endpoints_and_keeps_everything_else() {
    let w = world(WorldSpec::seed("hacc").nodes(1).pods(0));
    let node = &w.node(0).netns;
    let u = Underlay::on(node);
    u.lan("lan", &["--ip-range", "192.168.1.128/26"]).ok();
    start(&u, "lan", "web", "192.168.1.130");
    assert!(!reaches(node, "192.168.1.130"), "host isolation before");
    let before = node_state(node);
    u.run(&["host-access", "enable", "lan"]).ok();
    // The node reaches its endpoint, over TCP and ICMP.
    assert!(reaches(node, "192.168.1.130"));
    assert!(ping(node, ip("192.168.1.130"), Duration::from_secs(2)).unwrap());
    // And keeps what it had: the LAN reaches the node (the seed's SSH), the node the LAN.
    assert!(tcp_reachable(&w.external().netns, w.node(0).ip.addr(), 22, Duration::from_secs(2)).unwrap());
    assert!(reaches(node, "192.168.1.9"));
    // The node's address is answered from the parent's MAC only (no ARP flux).
    let ext = w.external();
    let mut enl = ext.netns.netlink().unwrap();
    let eth0 = enl.link("eth0").unwrap().index;
    let node_ip = match w.node(0).ip.addr() {
        IpAddr::V4(v4) => v4,
        _ => unreachable!(),
    };
    let answers = ext
        .netns
        .run(|| underlay_linux::probe::arp_probe(eth0, &[node_ip], Duration::from_millis(600)))
        .unwrap()
        .unwrap();
    assert!(!answers.is_empty());
    assert!(answers.iter().all(|a| a.mac == w.node(0).mac), "{answers:?}");
    // Status, then disable restores everything exactly.
    assert!(u.run(&["host-access", "status"]).ok().stdout.contains("192.168.1.128/26"));
    u.run(&["stop", "web"]).ok();
    u.run(&["host-access", "disable", "lan"]).ok();
    assert_eq!(node_state(node), before);
    assert!(u.reservations("lan").is_empty(), "the shim's address was released");
}

#[test]
fn the_seeds_same_subnet_shim_is_refused() {
    let w = world(WorldSpec::seed("haseed").nodes(1).pods(0));
    let u = Underlay::on(&w.node(0).netns);
    u.seed_network("lan");
    let before = node_state(&w.node(0).netns);
    let out = u.run(&["host-access", "enable", "lan", "--address", "192.168.1.254/24"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("second route to 192.168.1.0/24") && out.stderr.contains("192.168.1.254/32"),
        "{}",
        out.stderr
    );
    assert_eq!(node_state(&w.node(0).netns), before);
}

#[test]
fn a_shim_that_would_cut_the_host_off_is_rolled_back() {
    // The switch drops frames from MACs it does not know (as clouds do), and the
    // network's range covers the gateway: through the shim, the gateway is gone.
    let w = world(WorldSpec::seed("haroll").nodes(1).pods(0).drop_unknown_macs(true));
    let node = &w.node(0).netns;
    let u = Underlay::on(node);
    u.lan("lan", &["--ip-range", "192.168.1.0/26"]).ok();
    let before = node_state(node);
    let out = u.run(&["host-access", "enable", "lan"]);
    assert_eq!(out.code, 5, "{}", out.stderr);
    assert!(out.stderr.contains("rolled back") && out.stderr.contains("192.168.1.1"), "{}", out.stderr);
    assert_eq!(node_state(node), before, "the change was undone");
    assert!(u.reservations("lan").is_empty());
    assert!(reaches(node, "192.168.1.1"), "the host still reaches its gateway");
    assert!(u.run(&["host-access", "status", "--format", "json"]).json().as_array().unwrap().is_empty());
}

#[test]
fn per_endpoint_routes_follow_endpoints_and_restore_rebuilds() {
    let w: World = world(WorldSpec::seed("haper").nodes(1).pods(0));
    let node = &w.node(0).netns;
    let u = Underlay::on(node);
    u.seed_network("lan");
    u.run(&["host-access", "enable", "lan", "--address", "192.168.1.250"]).ok();
    start(&u, "lan", "a", "192.168.1.100");
    assert!(reaches(node, "192.168.1.100"), "a host route came with the endpoint");
    assert!(!reaches(node, "192.168.1.101"), "nothing else goes through the shim");
    // After a reboot the shim is gone; restore makes it again.
    let mut nl: Netlink = node.netlink().unwrap();
    let shim = nl.links().unwrap().into_iter().find(|l| l.name.starts_with("ulh-")).unwrap();
    nl.delete_link(shim.index).unwrap();
    assert!(!reaches(node, "192.168.1.100"));
    u.run(&["host-access", "restore"]).ok();
    assert!(reaches(node, "192.168.1.100"));
    u.run(&["stop", "a"]).ok();
    let routes: Vec<String> = nl.routes().unwrap().into_iter().map(|r| r.dst.to_string()).collect();
    assert!(!routes.contains(&"192.168.1.100/32".to_string()), "the endpoint's host route went with it");
    let rm = u.run(&["network", "rm", "lan"]);
    assert_eq!(rm.code, 4, "host access must be disabled first: {}", rm.stderr);
    u.run(&["host-access", "disable", "lan"]).ok();
    u.run(&["network", "rm", "lan"]).ok();
}

#[test]
fn the_shims_address_may_lie_outside_the_range_and_a_taken_one_names_its_holder() {
    let w = world(WorldSpec::seed("haout").nodes(1).pods(0));
    let node = &w.node(0).netns;
    let u = Underlay::on(node);
    u.lan("lan", &["--ip-range", "192.168.1.128/26"]).ok();
    start(&u, "lan", "web", "192.168.1.130");
    // Taken by an endpoint: refused naming it, as `run --ip` does.
    let out = u.run(&["host-access", "enable", "lan", "--address", "192.168.1.130"]);
    assert_eq!(out.code, 4, "{}", out.stderr);
    assert!(out.stderr.contains("endpoint \"web\""), "{}", out.stderr);
    // Outside --ip-range but in the subnet: granted, as Docker grants --ip there.
    u.run(&["host-access", "enable", "lan", "--address", "192.168.1.250"]).ok();
    assert!(reaches(node, "192.168.1.130"));
    u.run(&["host-access", "disable", "lan"]).ok();
    u.run(&["stop", "web"]).ok();
}
