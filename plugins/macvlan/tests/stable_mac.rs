//! `stableMac` (issue 15): the MAC follows the network and the pod's name, so a pod
//! made again gets the same MAC; other pods and networks get others; a MAC another
//! endpoint on the master already has is refused, never shared.

mod support;

use serde_json::{Value, json};
use support::*;
use underlay_linux::world::WorldSpec;

const WEB: &str = "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web";

fn mac(out: &Outcome) -> String {
    assert!(out.ok, "{}", out.json);
    out.json["interfaces"][0]["mac"].as_str().unwrap().to_string()
}

#[test]
fn the_same_pod_gets_the_same_mac_and_a_taken_one_is_refused() {
    let w = world(WorldSpec::seed("mvstable").nodes(1).pods(2));
    let (node, plugins) = (&w.node(0).netns, PluginDir::ours());
    let data = tempfile::tempdir().unwrap();
    let mut conf = seed_conf("1.0.0", data.path());
    conf["stableMac"] = json!(true);
    let add = |cid: &str, pod: usize, args: &str, conf: &Value| {
        cni_args(&plugins, node, "ADD", cid, Some(&w.pods[pod]), "eth0", args, conf)
    };
    let del = |cid: &str, pod: usize, conf: &Value| {
        assert!(cni(&plugins, node, "DEL", cid, Some(&w.pods[pod]), "eth0", conf).ok)
    };

    let first = mac(&add("c1", 0, WEB, &conf));
    del("c1", 0, &conf);
    assert_eq!(mac(&add("c2", 0, WEB, &conf)), first, "the pod made again keeps its MAC");
    let parsed: underlay::MacAddr = first.parse().unwrap();
    assert!(parsed.0[0] & 3 == 2, "locally administered unicast: {first}");

    // The same name again while the first is up: refused with 101, nothing left.
    let before = (links(node), links(&w.pods[1]), reservations(data.path(), "macvlan-conf"));
    let twin = add("c3", 1, WEB, &conf);
    assert_eq!(twin.code(), 101, "{}", twin.json);
    assert!(twin.msg().contains(&first) && twin.msg().contains("enp0s3"), "{}", twin.msg());
    assert_eq!((links(node), links(&w.pods[1]), reservations(data.path(), "macvlan-conf")), before);

    let other_pod = mac(&add("c4", 1, "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=db", &conf));
    assert_ne!(other_pod, first);
    del("c4", 1, &conf);
    let mut other_net = conf.clone();
    other_net["name"] = json!("other-lan");
    assert_ne!(mac(&add("c5", 1, WEB, &other_net)), first, "another network, another MAC");
    del("c5", 1, &other_net);

    // Without the pod's name there is nothing stable to derive from.
    let nameless = add("c6", 1, "", &conf);
    assert_eq!(nameless.code(), 4, "{}", nameless.json);
    assert!(nameless.msg().contains("K8S_POD_NAME"), "{}", nameless.msg());
    del("c2", 0, &conf);
}
