//! IPv4 conflict detection on ipvlan (issue 15): probes leave from the master, whose
//! MAC the children share. A device on the LAN holding 192.168.1.100: ADD takes .101
//! and holds .100 for the device; asking for .100 fails with 101 naming its MAC. This
//! kernel may lack ipvlan: the test then reports a skip and runs in the full-kernel
//! lane (scripts/kernel-lane.d/entries).

mod support;

use serde_json::json;
use support::*;
use underlay_linux::support::{Feature, has, report_skip};
use underlay_linux::world::WorldSpec;

#[test]
fn ipvlan_skips_and_refuses_an_address_a_device_uses() {
    if !has(Feature::Ipvlan).unwrap() {
        report_skip("ipvlan_skips_and_refuses_an_address_a_device_uses", Feature::Ipvlan);
        return;
    }
    let w = world(WorldSpec::seed("ivcd").nodes(1).pods(2));
    let ext = w.external();
    ext.also_use("192.168.1.100/24".parse().unwrap()).unwrap();
    let (p, node) = (PluginDir::ours(), &w.node(0).netns);
    let data = tempfile::tempdir().unwrap();
    let conf = json!({"cniVersion": "1.0.0", "name": "iv", "type": "ipvlan", "master": "enp0s3",
        "ipam": {"type": "host-local", "subnet": "192.168.1.0/24", "gateway": "192.168.1.1",
                 "rangeStart": "192.168.1.100", "rangeEnd": "192.168.1.200", "dataDir": data.path()}});
    let a = cni(&p, node, "ADD", "a", &w.pods[0], &conf);
    assert_eq!(a.ip().to_string(), "192.168.1.101", "{}", a.json);
    let hold = std::fs::read_to_string(data.path().join("iv/192.168.1.100")).unwrap();
    assert!(hold.starts_with(&format!("foreign-hold {} ", ext.mac)), "{hold:?}");

    let mut asked = conf.clone();
    asked["capabilities"] = json!({"ips": true});
    asked["runtimeConfig"] = json!({"ips": ["192.168.1.100/24"]});
    std::fs::remove_file(data.path().join("iv/192.168.1.100")).unwrap();
    let b = cni(&p, node, "ADD", "b", &w.pods[1], &asked);
    assert_eq!(b.code(), 101, "{}", b.json);
    assert!(b.json["msg"].as_str().unwrap().contains(&ext.mac.to_string()), "{}", b.json);
    let mut pod_nl = w.pods[1].netlink().unwrap();
    assert!(pod_nl.links().unwrap().iter().all(|l| l.name == "lo"), "no link left");
    assert!(!data.path().join("iv/192.168.1.100").exists(), "no reservation left");
    assert!(cni(&p, node, "DEL", "a", &w.pods[0], &conf).ok);
}
