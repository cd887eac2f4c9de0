//! Every Docker flag `network create` and `run` take, and bad input refused with a
//! clear error that changes nothing.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::*;
use underlay_linux::reach::ping;
use underlay_linux::support::{Feature, has, report_skip};
use underlay_linux::world::WorldSpec;
use underlay_linux::{Netlink, Netns};

/// The endpoint's eth0 as the kernel sees it, from inside its namespace.
fn eth0(ep: &Value) -> (underlay_linux::Link, Netlink) {
    let ns = Netns::open(ep["netns"].as_str().unwrap()).unwrap();
    let mut nl = ns.netlink().unwrap();
    (nl.link("eth0").unwrap(), nl)
}

/// What the store holds, to prove a refused command changed nothing.
fn snapshot(u: &Underlay) -> (String, Vec<String>, Vec<String>) {
    let nets = u.run(&["network", "ls", "--format", "json"]).ok().stdout.clone();
    let ipam = std::fs::read_dir(u.state_dir().join("ipam"))
        .map(|rd| rd.flatten().map(|e| e.file_name().into_string().unwrap()).collect())
        .unwrap_or_default();
    (nets, ipam, u.namespaces())
}

#[test]
fn bad_input_gets_a_clear_error_and_changes_nothing() {
    let w = world(WorldSpec::seed("clibad").nodes(1).pods(0));
    let u = Underlay::on(&w.node(0).netns);
    u.seed_network("lan");
    let before = snapshot(&u);
    let cases: &[(&[&str], i32, &str)] = &[
        (
            &["network", "create", "-d", "bridge", "--subnet", "10.1.0.0/24", "x"],
            2,
            "invalid value 'bridge' for '--driver",
        ),
        (&["network", "create", "--subnet", "10.1.0.0/24", "-o", "parent=enp9s9", "x"], 3, "enp9s9"),
        (
            &["network", "create", "--subnet", "10.1.0.0/24", "--gateway", "10.2.0.1", "-o", "parent=enp0s3", "x"],
            2,
            "10.2.0.1",
        ),
        (
            &["network", "create", "--subnet", "10.1.0.0/24", "--ip-range", "10.2.0.0/28", "-o", "parent=enp0s3", "x"],
            2,
            "10.2.0.0/28",
        ),
        (&["network", "create", "--subnet", "10.1.0.5/24", "-o", "parent=enp0s3", "x"], 2, "10.1.0.0/24"),
        (&["network", "create", "--subnet", "10.1.0.0/24", "-o", "parent=enp0s3", "lan"], 4, "already exists"),
        (
            &["network", "create", "--subnet", "192.168.1.128/25", "-o", "parent=enp0s3", "x"],
            4,
            "overlaps subnet 192.168.1.0/24 of network \"lan\"",
        ),
        (&["network", "create", "--subnet", "10.1.0.0/24", "-o", "parent=enp0s3", "-o", "vlan=3", "x"], 2, "-o vlan"),
        (
            &["network", "create", "--subnet", "10.1.0.0/24", "-o", "ipvlan_mode=l2", "-o", "parent=enp0s3", "x"],
            2,
            "ipvlan_mode",
        ),
        (&["network", "create", "--subnet", "2001:db8::/64", "-o", "parent=enp0s3", "x"], 2, "--ipv6"),
        (&["network", "create", "-o", "parent=enp0s3", "x"], 2, "--subnet"),
        (&["network", "create", "--subnet", "10.1.0.0/24", "-o", "parent=lo", "x"], 2, "parent=lo"),
        (
            &["network", "create", "--subnet", "10.1.0.0/24", "-o", "parent=enp0s3", "--mtu", "9000", "x"],
            2,
            "--mtu 9000 is larger than parent enp0s3's MTU 1500",
        ),
        (&["network", "create", "--subnet", "10.1.0.0/24", "-o", "parent=enp0s3", "../x"], 2, "../x"),
        (&["run", "--network", "lan", "--ip", "10.9.9.9", "--", "/bin/busybox", "true"], 125, "10.9.9.9"),
        (&["run", "--network", "lan", "--ip", "192.168.1.1", "--", "/bin/busybox", "true"], 125, "gateway"),
        (&["run", "--network", "nope", "--", "/bin/busybox", "true"], 125, "no network named \"nope\""),
        (&["network", "rm", "nope"], 3, "nope"),
        (&["stop", "nope"], 3, "nope"),
    ];
    for (args, code, needle) in cases {
        let out = u.run(args);
        assert_eq!(out.code, *code, "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(needle), "{args:?}: {}", out.stderr);
        assert_eq!(snapshot(&u), before, "{args:?} changed something");
    }
}

#[test]
fn network_flags_shape_the_endpoints() {
    let w = world(WorldSpec::seed("cliflags").nodes(1).pods(0));
    let u = Underlay::on(&w.node(0).netns);
    // --ip-range, --aux-address, --mtu, --internal, -o macvlan_mode.
    u.lan(
        "narrow",
        &[
            "--ip-range",
            "192.168.1.128/28",
            "--aux-address",
            "printer=192.168.1.128",
            "--mtu",
            "1400",
            "--internal",
            "-o",
            "macvlan_mode=private",
        ],
    )
    .ok();
    u.run(&["run", "--network", "narrow", "-d", "--name", "a", "--", "/bin/busybox", "sleep", "60"]).ok();
    let a = u.wait_running("a");
    assert_eq!(a["ips"][0], "192.168.1.129/24", "from the range, the aux address skipped");
    let (link, mut nl) = eth0(&a);
    assert_eq!(link.mtu, 1400);
    assert_eq!(link.macvlan_mode(), Some(underlay_linux::MacvlanMode::Private));
    assert!(nl.routes().unwrap().iter().all(|r| r.dst.prefix_len() != 0), "--internal: no default route");
    assert!(nl.link("lo").unwrap().up, "loopback is up, as in any container");
    let taken = u.run(&["run", "--network", "narrow", "--ip", "192.168.1.128", "--", "/bin/busybox", "true"]);
    assert_eq!(taken.code, 125);
    assert!(taken.stderr.contains("192.168.1.128"), "{}", taken.stderr);
    // The network is in use: rm refused, prune keeps it.
    let rm = u.run(&["network", "rm", "narrow"]);
    assert_eq!(rm.code, 4);
    assert!(rm.stderr.contains("a") && rm.stderr.contains("stop"), "{}", rm.stderr);
    u.run(&["network", "create", "--subnet", "10.5.0.0/24", "-o", "parent=enp0s3", "spare"]).ok();
    u.run(&["network", "prune", "--force"]).ok();
    let names: Vec<String> = u
        .run(&["network", "ls", "--format", "json"])
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["narrow"]);
    u.run(&["stop", "a"]).ok();
    u.run(&["network", "rm", "narrow"]).ok();
    assert!(u.reservations("narrow").is_empty(), "the aux reservation went with the network");

    // A gateway gives a default route; --mac-address sets the MAC.
    u.seed_network("lan");
    u.run(&[
        "run",
        "--network",
        "lan",
        "-d",
        "--name",
        "b",
        "--mac-address",
        "02:00:c0:a8:01:42",
        "--",
        "/bin/busybox",
        "sleep",
        "60",
    ])
    .ok();
    let b = u.wait_running("b");
    assert_eq!(b["mac"], "02:00:c0:a8:01:42");
    let (_, mut nl) = eth0(&b);
    let default = nl.routes().unwrap().into_iter().find(|r| r.dst.prefix_len() == 0 && r.dst.addr().is_ipv4()).unwrap();
    assert_eq!(default.gw, Some("192.168.1.1".parse().unwrap()));
    u.run(&["stop", "b"]).ok();
}

#[test]
fn dual_stack_with_ipv6() {
    let w = world(WorldSpec::seed("cli6").nodes(1).pods(0));
    let u = Underlay::on(&w.node(0).netns);
    u.lan("dual", &["--ipv6", "--subnet", "2001:db8:1::/64", "--gateway", "2001:db8:1::1"]).ok();
    u.run(&[
        "run",
        "--network",
        "dual",
        "-d",
        "--name",
        "d",
        "--ip6",
        "2001:db8:1::64",
        "--",
        "/bin/busybox",
        "sleep",
        "60",
    ])
    .ok();
    let d = u.wait_running("d");
    let ips: Vec<&str> = d["ips"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(ips, ["192.168.1.2/24", "2001:db8:1::64/64"]);
    let (_, mut nl) = eth0(&d);
    let v6_default = nl.routes().unwrap().into_iter().find(|r| r.dst.prefix_len() == 0 && r.dst.addr().is_ipv6());
    assert_eq!(v6_default.and_then(|r| r.gw), Some("2001:db8:1::1".parse().unwrap()));
    u.run(&["stop", "d"]).ok();
}

#[test]
fn attach_and_detach_namespaces_made_by_others() {
    let w = world(WorldSpec::seed("cliattach").nodes(1).pods(1));
    let u = Underlay::on(&w.node(0).netns);
    u.seed_network("lan");
    let pod = w.pods[0].path().to_str().unwrap().to_string();
    let id = u
        .run(&["attach", "lan", "--netns", &pod, "--ip", "192.168.1.50", "--name", "outside"])
        .ok()
        .stdout
        .trim()
        .to_string();
    assert_eq!(id.len(), 32);
    let mut nl = w.pods[0].netlink().unwrap();
    assert!(nl.link("eth0").unwrap().is_macvlan());
    assert!(
        underlay_linux::reach::tcp_reachable(
            &w.external().netns,
            "192.168.1.50".parse().unwrap(),
            9,
            std::time::Duration::from_secs(3)
        )
        .unwrap()
    );
    let stop = u.run(&["stop", "outside"]);
    assert_eq!(stop.code, 2, "stop is for run; detach is for attach: {}", stop.stderr);
    u.run(&["detach", "outside"]).ok();
    assert!(nl.link_by_name("eth0").unwrap().is_none());
    assert!(u.reservations("lan").is_empty());
    assert!(w.pods[0].path().exists(), "someone else's namespace stays");
    // By PID: a process of ours in the pod namespace.
    let mut sleeper = w.pods[0].command("/bin/busybox").args(["sleep", "60"]).spawn().unwrap();
    u.run(&["attach", "lan", "--pid", &sleeper.id().to_string(), "--name", "bypid"]).ok();
    assert!(nl.link("eth0").unwrap().is_macvlan());
    let ps = u.ps();
    assert_eq!(ps[0]["name"], "bypid");
    u.run(&["inspect", "bypid"]).ok();
    // The process ends: gc releases the address (the namespace went with it).
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
    u.run(&["gc"]).ok();
    assert!(u.ps().is_empty());
    assert!(u.reservations("lan").is_empty());
}

#[test]
fn vlan_parents_are_made_and_removed_by_underlay() {
    let w = world(WorldSpec::seed("clivlan").nodes(1).pods(0));
    let u = Underlay::on(&w.node(0).netns);
    let out = u.run(&["network", "create", "--subnet", "10.10.0.0/24", "-o", "parent=enp0s3.10", "v10"]);
    if !has(Feature::Vlan).unwrap() {
        assert_eq!(out.code, 5, "{}", out.stderr);
        assert!(out.stderr.contains("lacks 802.1Q"), "{}", out.stderr);
        assert!(u.run(&["network", "ls", "--format", "json"]).json().as_array().unwrap().is_empty());
        return report_skip("vlan_parents_are_made_and_removed_by_underlay", Feature::Vlan);
    }
    out.ok();
    let mut nl = w.node(0).netns.netlink().unwrap();
    assert_eq!(nl.link("enp0s3.10").unwrap().vlan_id, Some(10));
    // End to end: a container on v10 reaches a device on VLAN 10 through the switch.
    let ext = w.external();
    let mut enl = ext.netns.netlink().unwrap();
    let base = enl.link(&ext.ifname).unwrap().index;
    enl.create_vlan("eth0.10", base, 10).unwrap();
    let peer = enl.link("eth0.10").unwrap().index;
    enl.add_address(peer, "10.10.0.254/24".parse().unwrap(), Default::default()).unwrap();
    enl.set_up(peer, true).unwrap();
    u.run(&["run", "--network", "v10", "-d", "--name", "t", "--", "/bin/busybox", "sleep", "60"]).ok();
    let t = u.wait_running("t");
    let (link, _) = eth0(&t);
    assert_eq!(link.kind.as_deref(), Some("macvlan"));
    let ns = Netns::open(t["netns"].as_str().unwrap()).unwrap();
    assert!(ping(&ns, "10.10.0.254".parse().unwrap(), Duration::from_secs(3)).unwrap(), "VLAN 10 peer unreachable");
    u.run(&["stop", "t"]).ok();
    u.run(&["network", "create", "--subnet", "10.11.0.0/24", "-o", "parent=enp0s3.10", "v10b"]).ok();
    u.run(&["network", "rm", "v10"]).ok();
    assert!(nl.link_by_name("enp0s3.10").unwrap().is_some(), "still used by v10b");
    u.run(&["network", "rm", "v10b"]).ok();
    assert!(nl.link_by_name("enp0s3.10").unwrap().is_none(), "gone with the last network");
    // One that existed before is never removed.
    let base = nl.link("enp0s3").unwrap().index;
    nl.create_vlan("enp0s3.20", base, 20).unwrap();
    u.run(&["network", "create", "--subnet", "10.20.0.0/24", "-o", "parent=enp0s3.20", "v20"]).ok();
    u.run(&["network", "rm", "v20"]).ok();
    assert!(nl.link_by_name("enp0s3.20").unwrap().is_some());
}

#[test]
fn ipvlan_networks_or_a_clear_refusal() {
    let w = world(WorldSpec::seed("cliipvlan").nodes(1).pods(0));
    let u = Underlay::on(&w.node(0).netns);
    let out = u.run(&[
        "network",
        "create",
        "-d",
        "ipvlan",
        "--subnet",
        "192.168.1.0/24",
        "-o",
        "ipvlan_mode=l2",
        "-o",
        "ipvlan_flag=private",
        "-o",
        "parent=enp0s3",
        "iv",
    ]);
    if !has(Feature::Ipvlan).unwrap() {
        assert_eq!(out.code, 5, "{}", out.stderr);
        assert!(out.stderr.contains("lacks ipvlan"), "{}", out.stderr);
        return report_skip("ipvlan_networks_or_a_clear_refusal", Feature::Ipvlan);
    }
    out.ok();
    u.run(&["run", "--network", "iv", "-d", "--name", "i", "--", "/bin/busybox", "sleep", "60"]).ok();
    let i = u.wait_running("i");
    let (link, _) = eth0(&i);
    assert_eq!(link.kind.as_deref(), Some("ipvlan"));
    assert_eq!(link.mac, Some(w.node(0).mac));
    // End to end: the LAN's device answers, and it saw the node's MAC for the container.
    let ns = Netns::open(i["netns"].as_str().unwrap()).unwrap();
    let ext = w.external();
    assert!(ping(&ns, ext.ip.addr(), Duration::from_secs(3)).unwrap(), "ipvlan container cannot reach the LAN");
    let mac = u.run(&["run", "--network", "iv", "--mac-address", "02:00:00:00:00:09", "--", "/bin/busybox", "true"]);
    assert_eq!(mac.code, 125);
    u.run(&["stop", "i"]).ok();
}
