//! VLAN masters for the CNI plugins (`master: "IF.VID"`, or `"vlan": VID`): isolation
//! through the switch, one shared sub-interface removed with its last user, a
//! pre-existing one kept, racing ADDs, GC after a crash. Skips where the kernel lacks
//! 802.1Q or ipvlan; runs in the full-kernel lane.

mod support;

use serde_json::{Value, json};
use support::*;
use underlay_linux::support::{Feature, has, report_skip};
use underlay_linux::world::WorldSpec;

fn skip(test: &str) -> bool {
    for f in [Feature::Vlan, Feature::Ipvlan] {
        if !has(f).unwrap() {
            report_skip(test, f);
            return true;
        }
    }
    false
}

/// A config on VLAN subnet 10.10.0.0/24 (the same subnet on every VLAN: only the tag
/// keeps them apart), addresses from `first`.
fn conf(ty: &str, data: &std::path::Path, first: u8, extra: Value) -> Value {
    let mut c = json!({"cniVersion": "1.0.0", "name": "v", "type": ty, "master": "enp0s3.10",
        "ipam": {"type": "host-local", "subnet": "10.10.0.0/24", "rangeStart": format!("10.10.0.{first}"),
                 "rangeEnd": format!("10.10.0.{}", first + 9), "dataDir": data}});
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    c
}

fn index(ns: &underlay_linux::Netns, name: &str) -> Option<u32> {
    ns.netlink().unwrap().link_by_name(name).unwrap().map(|l| l.index)
}

#[test]
fn vlan_pods_on_two_nodes_reach_each_other_and_not_another_vlan() {
    if skip("vlan_pods_on_two_nodes_reach_each_other_and_not_another_vlan") {
        return;
    }
    let w = world(WorldSpec::seed("vlanreach").nodes(2).pods(3));
    let p = PluginDir::ours();
    let (d0, d1) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (n0, n1) = (&w.node(0).netns, &w.node(1).netns);
    // Node 0: ipvlan on enp0s3.10; node 1: macvlan on enp0s3 with "vlan": 10, and one on VLAN 20.
    let a = cni(&p, n0, "ADD", "a", &w.pods[0], &conf("ipvlan", d0.path(), 10, json!({})));
    let b_conf = conf("macvlan", d1.path(), 20, json!({"master": "enp0s3", "vlan": 10}));
    let b = cni(&p, n1, "ADD", "b", &w.pods[1], &b_conf);
    let c_conf = conf("macvlan", d1.path(), 30, json!({"master": "enp0s3.20", "name": "v20"}));
    let c = cni(&p, n1, "ADD", "c", &w.pods[2], &c_conf);
    assert!(a.ok && b.ok && c.ok, "{} {} {}", a.json, b.json, c.json);
    assert_eq!(n0.netlink().unwrap().link("enp0s3.10").unwrap().vlan_id, Some(10));
    assert_eq!(n1.netlink().unwrap().link("enp0s3.20").unwrap().vlan_id, Some(20));
    assert!(reaches(&w.pods[0], b.ip()), "VLAN 10 on node 0 reaches VLAN 10 on node 1");
    assert!(reaches(&w.pods[1], a.ip()));
    assert!(never_reaches(&w.pods[2], a.ip()), "VLAN 20 must not reach VLAN 10");
    assert!(never_reaches(&w.pods[2], b.ip()), "VLAN 20 must not reach VLAN 10");
    assert!(cni(&p, n0, "DEL", "a", &w.pods[0], &conf("ipvlan", d0.path(), 10, json!({}))).ok);
    assert!(cni(&p, n1, "DEL", "b", &w.pods[1], &b_conf).ok);
    assert!(cni(&p, n1, "DEL", "c", &w.pods[2], &c_conf).ok);
    for (n, name) in [(n0, "enp0s3.10"), (n1, "enp0s3.10"), (n1, "enp0s3.20")] {
        assert_eq!(index(n, name), None, "{name} goes with its last user");
    }
}

#[test]
fn vlan_master_is_shared_removed_with_the_last_user_and_a_pre_existing_one_kept() {
    if skip("vlan_master_is_shared_removed_with_the_last_user_and_a_pre_existing_one_kept") {
        return;
    }
    let w = world(WorldSpec::seed("vlanshare").nodes(1).pods(3));
    let p = PluginDir::ours();
    let data = tempfile::tempdir().unwrap();
    let n = &w.node(0).netns;
    let iv = conf("ipvlan", data.path(), 10, json!({}));
    // A second ipvlan user (a parent takes ipvlan or macvlan children, not both), from
    // its own range: ipvlan refuses one address on two children of a parent.
    let mv = conf("ipvlan", data.path(), 20, json!({"name": "v2"}));
    assert!(cni(&p, n, "ADD", "a", &w.pods[0], &iv).ok);
    let made = index(n, "enp0s3.10").expect("made by the first ADD");
    let b = cni(&p, n, "ADD", "b", &w.pods[1], &mv);
    assert!(b.ok, "{}", b.json);
    assert_eq!(index(n, "enp0s3.10"), Some(made), "shared, not made again");
    assert!(cni(&p, n, "DEL", "a", &w.pods[0], &iv).ok);
    assert_eq!(index(n, "enp0s3.10"), Some(made), "still used by b");
    assert!(cni(&p, n, "DEL", "b", &w.pods[1], &mv).ok);
    assert_eq!(index(n, "enp0s3.10"), None, "gone with the last user");
    assert!(cni(&p, n, "DEL", "b", &w.pods[1], &mv).ok, "a repeated DEL succeeds");

    // One that existed before is never removed.
    let mut nl = n.netlink().unwrap();
    let base = nl.link("enp0s3").unwrap().index;
    nl.create_vlan("enp0s3.30", base, 30).unwrap();
    let pre = conf("ipvlan", data.path(), 10, json!({"master": "enp0s3.30"}));
    assert!(cni(&p, n, "ADD", "c", &w.pods[2], &pre).ok);
    assert!(cni(&p, n, "DEL", "c", &w.pods[2], &pre).ok);
    assert!(index(n, "enp0s3.30").is_some(), "a pre-existing sub-interface is kept");

    // Two ADDs racing to make the same new sub-interface both succeed.
    let race = conf("ipvlan", data.path(), 10, json!({"master": "enp0s3.40"}));
    let outs: Vec<bool> = std::thread::scope(|s| {
        let hs: Vec<_> = [("r0", &w.pods[0]), ("r1", &w.pods[1])]
            .map(|(cid, pod)| {
                let (p, race) = (&p, &race);
                s.spawn(move || cni(p, n, "ADD", cid, pod, race).ok)
            })
            .into_iter()
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(outs, [true, true], "both racing ADDs succeed");
    assert!(cni(&p, n, "DEL", "r0", &w.pods[0], &race).ok);
    assert!(index(n, "enp0s3.40").is_some());
    assert!(cni(&p, n, "DEL", "r1", &w.pods[1], &race).ok);
    assert_eq!(index(n, "enp0s3.40"), None);

    // A crash after the ADD (the container's DEL never comes): GC with no valid
    // attachment drops the user and the sub-interface.
    assert!(cni(&p, n, "ADD", "lost", &w.pods[0], &iv).ok);
    let mut gc = iv.clone();
    gc["cniVersion"] = json!("1.1.0");
    gc["cni.dev/valid-attachments"] = json!([]);
    w.pods[0].netlink().unwrap().delete_link_by_name("eth0").unwrap();
    let out = cni(&p, n, "GC", "", &w.pods[0], &gc);
    assert!(out.ok, "{}", out.json);
    assert_eq!(index(n, "enp0s3.10"), None, "GC removes a sub-interface nobody uses");
}
