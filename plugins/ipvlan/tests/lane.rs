//! The `ipvlan` binary on a kernel with ipvlan (and 802.1Q): reachability per mode,
//! flags, results beside the reference's, failures that leave nothing, a switch that
//! drops unknown MACs. This kernel may lack both: each test then reports a skip, and
//! runs in the full-kernel lane (scripts/kernel-lane.d/entries).

mod support;

use serde_json::{Value, json};
use support::*;
use underlay_linux::route::Route;
use underlay_linux::support::{Feature, has, report_skip};
use underlay_linux::world::WorldSpec;

fn skip(test: &str, feature: Feature) -> bool {
    if has(feature).unwrap() {
        return false;
    }
    report_skip(test, feature);
    true
}

/// An ipvlan config on the seed's LAN (l2) or on a routed pod subnet (l3, l3s).
fn conf(version: &str, data: &std::path::Path, extra: Value) -> Value {
    let mode = extra["mode"].as_str().unwrap_or("l2").to_string();
    let ipam = if mode == "l2" {
        json!({"type": "host-local", "subnet": "192.168.1.0/24", "gateway": "192.168.1.1",
               "rangeStart": "192.168.1.100", "rangeEnd": "192.168.1.200", "dataDir": data})
    } else {
        json!({"type": "host-local", "subnet": "10.77.0.0/24", "dataDir": data})
    };
    let mut c = json!({"cniVersion": version, "name": "iv", "type": "ipvlan", "master": "enp0s3", "ipam": ipam});
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    c
}

#[test]
fn ipvlan_modes_reach_each_other_and_the_lan() {
    if skip("ipvlan_modes_reach_each_other_and_the_lan", Feature::Ipvlan) {
        return;
    }
    let w = world(WorldSpec::seed("ivmodes").nodes(1).pods(2));
    let p = PluginDir::ours();
    let (node, ext) = (w.node(0), w.external());
    // The LAN routes the l3 pod subnet to the node, as an l3 deployment needs.
    let route = Route::new("10.77.0.0/24".parse().unwrap(), Some(node.ip.addr()), None);
    ext.netns.netlink().unwrap().add_route(&route).unwrap();
    for mode in ["l2", "l3", "l3s"] {
        let data = tempfile::tempdir().unwrap();
        let c = conf("1.1.0", data.path(), json!({"mode": mode}));
        let a = cni(&p, &node.netns, "ADD", "a", &w.pods[0], &c);
        let b = cni(&p, &node.netns, "ADD", "b", &w.pods[1], &c);
        let (ia, ib) = (a.ip(), b.ip());
        if mode != "l2" {
            // No default route from the IPAM: one through the device (Docker's behaviour).
            assert!(
                a.json["routes"].as_array().is_some_and(|rs| rs.iter().any(|r| r["dst"] == "0.0.0.0/0")),
                "{mode}: {}",
                a.json
            );
        }
        assert!(reaches(&w.pods[0], ib), "{mode}: pod a reaches pod b");
        assert!(reaches(&w.pods[1], ia), "{mode}: pod b reaches pod a");
        assert!(reaches(&w.pods[0], ext.ip.addr()), "{mode}: pod a reaches the LAN");
        assert!(reaches(&ext.netns, ib), "{mode}: the LAN reaches pod b");
        if mode == "l2" {
            let seen = ext.netns.netlink().unwrap().neighbours(None).unwrap();
            for ip in [ia, ib] {
                let n = seen.iter().find(|n| n.ip == ip).unwrap_or_else(|| panic!("the LAN has no entry for {ip}"));
                assert_eq!(n.mac, Some(node.mac), "the LAN sees the parent's MAC for {ip}");
            }
        }
        for (cid, pod) in [("a", &w.pods[0]), ("b", &w.pods[1])] {
            assert!(cni(&p, &node.netns, "DEL", cid, pod, &c).ok);
            assert_eq!(links(pod), ["lo"]);
        }
        assert!(reservations(data.path(), "iv").is_empty());
    }
}

#[test]
fn ipvlan_private_and_vepa_flags_isolate_pods() {
    if skip("ipvlan_private_and_vepa_flags_isolate_pods", Feature::Ipvlan) {
        return;
    }
    let w = world(WorldSpec::seed("ivflags").nodes(1).pods(2));
    let p = PluginDir::ours();
    let (node, ext) = (w.node(0), w.external());
    for (flag, isolated) in [("bridge", false), ("private", true), ("vepa", true)] {
        let data = tempfile::tempdir().unwrap();
        let c = conf("1.1.0", data.path(), json!({"mode": "l2", "flag": flag}));
        let a = cni(&p, &node.netns, "ADD", "a", &w.pods[0], &c);
        let b = cni(&p, &node.netns, "ADD", "b", &w.pods[1], &c);
        let mut nl = w.pods[0].netlink().unwrap();
        let info = nl.link("eth0").unwrap().ipvlan.unwrap();
        assert_eq!(info.flag.to_string(), flag);
        // private: no traffic between children; vepa: it goes to the switch, which
        // (no hairpin) does not send it back.
        if isolated {
            assert!(never_reaches(&w.pods[0], b.ip()), "{flag}: pods must not reach each other");
        } else {
            assert!(reaches(&w.pods[0], b.ip()), "{flag}: pods reach each other");
        }
        assert!(reaches(&w.pods[0], ext.ip.addr()), "{flag}: the LAN stays reachable");
        assert!(reaches(&w.pods[1], ext.ip.addr()), "{flag}: the LAN stays reachable");
        let _ = a;
        for (cid, pod) in [("a", &w.pods[0]), ("b", &w.pods[1])] {
            assert!(cni(&p, &node.netns, "DEL", cid, pod, &c).ok);
        }
    }
}

/// What must match the reference: everything but MACs and the sandbox path.
fn shape(mut v: Value) -> Value {
    if let Some(ifs) = v["interfaces"].as_array_mut() {
        for i in ifs {
            let o = i.as_object_mut().unwrap();
            o.remove("mac");
            o.remove("sandbox");
        }
    }
    v
}

#[test]
fn ipvlan_results_match_the_reference_in_every_version() {
    if skip("ipvlan_results_match_the_reference_in_every_version", Feature::Ipvlan) {
        return;
    }
    let w = world(WorldSpec::seed("ivref").nodes(1).pods(1));
    let node = w.node(0);
    for version in ["0.3.1", "0.4.0", "1.0.0"] {
        for mode in ["l2", "l3"] {
            let mut got = Vec::new();
            for p in [PluginDir::ours(), PluginDir::reference()] {
                let data = tempfile::tempdir().unwrap();
                let c = conf(version, data.path(), json!({"mode": mode}));
                let out = cni(&p, &node.netns, "ADD", "c1", &w.pods[0], &c);
                assert!(out.ok, "{version} {mode}: {}", out.json);
                got.push(shape(out.json.clone()));
                if version != "0.3.1" {
                    let mut check = c.clone();
                    check["prevResult"] = out.json.clone();
                    assert!(cni(&p, &node.netns, "CHECK", "c1", &w.pods[0], &check).ok, "{version} {mode}: CHECK");
                }
                assert!(cni(&p, &node.netns, "DEL", "c1", &w.pods[0], &c).ok);
                assert_eq!(links(&w.pods[0]), ["lo"]);
            }
            let (ours, theirs) = (&got[0], &got[1]);
            if mode == "l2" {
                assert_eq!(ours, theirs, "{version} {mode}: ours vs the reference");
            } else {
                // l3 without a gateway: ours adds the default route through the device.
                let mut trimmed = ours.clone();
                let routes = trimmed["routes"].as_array_mut().expect("ours reports the default route");
                routes.retain(|r| r["dst"] != "0.0.0.0/0");
                if routes.is_empty() && theirs.get("routes").is_none() {
                    trimmed.as_object_mut().unwrap().remove("routes");
                }
                assert_eq!(&trimmed, theirs, "{version} {mode}: ours (less the default route) vs the reference");
            }
        }
    }
}

#[test]
fn ipvlan_failures_leave_no_link_and_no_reservation() {
    if skip("ipvlan_failures_leave_no_link_and_no_reservation", Feature::Ipvlan) {
        return;
    }
    let w = world(WorldSpec::seed("ivfail").nodes(1).pods(2));
    let p = PluginDir::ours();
    let node = w.node(0);
    let data = tempfile::tempdir().unwrap();
    // A one-address range, taken by the first pod: the second ADD exhausts the IPAM.
    let one = json!({"type": "host-local", "subnet": "192.168.1.0/24", "rangeStart": "192.168.1.150",
                     "rangeEnd": "192.168.1.150", "dataDir": data.path()});
    let ok = conf("1.0.0", data.path(), json!({"ipam": one}));
    assert!(cni(&p, &node.netns, "ADD", "first", &w.pods[0], &ok).ok);
    let node_links = links(&node.netns);
    let cases = [
        ("exhausted", conf("1.0.0", data.path(), json!({"ipam": one})), 0),
        ("bad mode", conf("1.0.0", data.path(), json!({"mode": "l4"})), 7),
        ("missing master", conf("1.0.0", data.path(), json!({"master": "enp9s9"})), 7),
        ("mac requested", conf("1.0.0", data.path(), json!({"mac": "02:00:00:00:00:01"})), 7),
        ("exhausted on a new VLAN master", conf("1.0.0", data.path(), json!({"ipam": one, "vlan": 42})), 0),
    ];
    for (what, c, code) in cases {
        if c.get("vlan").is_some() && !has(Feature::Vlan).unwrap() {
            continue;
        }
        let out = cni(&p, &node.netns, "ADD", "second", &w.pods[1], &c);
        assert!(!out.ok, "{what}: {}", out.json);
        if code != 0 {
            assert_eq!(out.code(), code, "{what}: {}", out.json);
        }
        assert_eq!(links(&w.pods[1]), ["lo"], "{what}: no link left in the pod");
        assert_eq!(links(&node.netns), node_links, "{what}: nothing left on the node");
        assert_eq!(reservations(data.path(), "iv"), ["192.168.1.150"], "{what}: only the first pod's address");
    }
}

#[test]
fn ipvlan_gets_through_a_switch_that_drops_unknown_macs_and_macvlan_does_not() {
    if skip("ipvlan_gets_through_a_switch_that_drops_unknown_macs_and_macvlan_does_not", Feature::Ipvlan) {
        return;
    }
    let w = world(WorldSpec::seed("ivdrop").nodes(1).pods(2).drop_unknown_macs(true));
    let p = PluginDir::ours();
    let (node, ext) = (w.node(0), w.external());
    let data = tempfile::tempdir().unwrap();
    let iv = conf("1.0.0", data.path(), json!({}));
    let mut mv = iv.clone();
    mv["type"] = json!("macvlan");
    mv["name"] = json!("mv");
    // One after the other: the kernel gives a parent either ipvlan or macvlan children.
    let a = cni(&p, &node.netns, "ADD", "iv", &w.pods[0], &iv);
    assert!(a.ok, "{}", a.json);
    assert!(reaches(&w.pods[0], ext.ip.addr()), "the ipvlan pod uses the parent's known MAC");
    assert!(cni(&p, &node.netns, "DEL", "iv", &w.pods[0], &iv).ok);
    let b = cni(&p, &node.netns, "ADD", "mv", &w.pods[1], &mv);
    assert!(b.ok, "{}", b.json);
    assert!(never_reaches(&w.pods[1], ext.ip.addr()), "the switch drops the macvlan pod's new MAC");
    assert!(cni(&p, &node.netns, "DEL", "mv", &w.pods[1], &mv).ok);
}
