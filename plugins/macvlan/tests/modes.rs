//! Each macvlan mode proven with traffic in a test world, and the seed's host isolation.

mod support;

use serde_json::{Value, json};
use support::*;
use underlay_linux::world::WorldSpec;

fn conf(mode: &str, data: &std::path::Path, extra: Value) -> Value {
    let mut c = json!({"cniVersion": "1.0.0", "name": "modes", "type": "macvlan", "master": "enp0s3", "mode": mode,
                       "ipam": {"type": "host-local", "subnet": "192.168.1.0/24", "rangeStart": "192.168.1.100",
                                "rangeEnd": "192.168.1.200", "dataDir": data}});
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    c
}

/// Two pods on node1 in `mode`; returns their addresses.
fn two_pods(w: &underlay_linux::world::World, plugins: &PluginDir, c: &Value) -> (std::net::IpAddr, std::net::IpAddr) {
    let node = &w.node(0).netns;
    let a = cni(plugins, node, "ADD", "p1", Some(&w.pods[0]), "eth0", c).ip();
    let b = cni(plugins, node, "ADD", "p2", Some(&w.pods[1]), "eth0", c).ip();
    (a, b)
}

#[test]
fn bridge_pods_on_one_parent_reach_each_other_and_the_lan() {
    let w = world(WorldSpec::seed("mvbridge").pods(2));
    let data = tempfile::tempdir().unwrap();
    let (a, b) = two_pods(&w, &PluginDir::ours(), &conf("bridge", data.path(), json!({})));
    assert!(reaches(&w.pods[0], b));
    assert!(reaches(&w.pods[1], a));
    assert!(reaches(&w.external().netns, a), "the external device reaches the pod directly");
    assert!(reaches(&w.node(1).netns, a), "another node reaches it through the switch");
}

#[test]
fn private_pods_cannot_reach_each_other() {
    let w = world(WorldSpec::seed("mvprivate").pods(2));
    let data = tempfile::tempdir().unwrap();
    let (a, b) = two_pods(&w, &PluginDir::ours(), &conf("private", data.path(), json!({})));
    assert!(never_reaches(&w.pods[0], b));
    assert!(never_reaches(&w.pods[1], a));
    assert!(reaches(&w.external().netns, a), "but the LAN still reaches them");
}

#[test]
fn vepa_pods_reach_each_other_only_through_a_hairpin_switch_port() {
    let w = world(WorldSpec::seed("mvvepa").pods(2));
    let data = tempfile::tempdir().unwrap();
    let (a, b) = two_pods(&w, &PluginDir::ours(), &conf("vepa", data.path(), json!({})));
    assert!(never_reaches(&w.pods[0], b), "without hairpin the switch never sends the frame back");
    w.set_hairpin(&w.node(0).port, true).unwrap();
    assert!(reaches(&w.pods[0], b), "with hairpin it does");
    assert!(reaches(&w.pods[1], a));
}

#[test]
fn passthru_takes_the_parent_for_one_endpoint_and_a_second_add_leaks_nothing() {
    let w = world(WorldSpec::seed("mvpass").pods(2));
    let data = tempfile::tempdir().unwrap();
    let plugins = PluginDir::ours();
    let c = conf("passthru", data.path(), json!({}));
    let node = &w.node(0).netns;
    let a = cni(&plugins, node, "ADD", "p1", Some(&w.pods[0]), "eth0", &c).ip();
    assert!(reaches(&w.external().netns, a));
    let (node_links, pod_links) = (links(node), links(&w.pods[1]));
    let second = cni(&plugins, node, "ADD", "p2", Some(&w.pods[1]), "eth0", &c);
    assert!(!second.ok);
    assert_eq!(second.code(), 7, "{}", second.json);
    assert!(second.msg().contains("passthru") && second.msg().contains("enp0s3"), "{}", second.msg());
    assert_eq!(links(node), node_links);
    assert_eq!(links(&w.pods[1]), pod_links);
    assert_eq!(reservations(data.path(), "modes"), [a.to_string()], "only the first endpoint's address is held");
}

#[test]
fn source_mode_lets_only_listed_senders_through() {
    let w = world(WorldSpec::seed("mvsource").pods(1));
    let data = tempfile::tempdir().unwrap();
    let allowed = w.external().mac.to_string();
    let c = conf("source", data.path(), json!({"sourceMacs": [allowed]}));
    let a = cni(&PluginDir::ours(), &w.node(0).netns, "ADD", "p1", Some(&w.pods[0]), "eth0", &c).ip();
    let mut nl = w.pods[0].netlink().unwrap();
    let link = nl.link("eth0").unwrap();
    assert_eq!(link.macvlan.unwrap().sources, [w.external().mac]);
    assert!(reaches(&w.external().netns, a), "the listed sender gets through");
    assert!(never_reaches(&w.node(1).netns, a), "node2 is not listed");
    assert!(never_reaches(&w.gateway.as_ref().unwrap().netns, a), "nor is the gateway");
}

#[test]
fn host_isolation_the_node_cannot_reach_its_own_pod_another_node_can() {
    let w = world(WorldSpec::seed("mviso").pods(1));
    let data = tempfile::tempdir().unwrap();
    let c = conf("bridge", data.path(), json!({}));
    let a = cni(&PluginDir::ours(), &w.node(0).netns, "ADD", "p1", Some(&w.pods[0]), "eth0", &c).ip();
    assert!(never_reaches(&w.node(0).netns, a), "node1 (the pod's own host) cannot reach it through enp0s3");
    assert!(never_reaches(&w.pods[0], w.node(0).ip.addr()), "nor can the pod reach its node");
    assert!(reaches(&w.node(1).netns, a), "node2 can");
}
