//! IPv4 conflict detection (issue 15): an address a device on the LAN already uses is
//! never given to a pod. What the IPAM chose is recorded as a foreign hold that the
//! reference host-local respects too; what the runtime asked for fails with 101.

mod support;

use std::path::Path;

use serde_json::{Value, json};
use support::*;
use underlay_linux::world::{World, WorldSpec};

/// The external device (192.168.1.9) also takes 192.168.1.100, as a printer that was
/// configured by hand would.
fn squat(w: &World, ip: &str) {
    w.external().also_use(format!("{ip}/24").parse().unwrap()).unwrap();
}

fn record(data: &Path, ip: &str) -> String {
    std::fs::read_to_string(data.join("macvlan-conf").join(ip)).unwrap_or_default()
}

#[test]
fn a_chosen_address_in_use_is_held_for_the_device_and_skipped_by_the_reference_too() {
    let w = world(WorldSpec::seed("mvcd1").nodes(1).pods(1));
    squat(&w, "192.168.1.100");
    let data = tempfile::tempdir().unwrap();
    let plugins = PluginDir::ours();
    let conf = seed_conf("1.0.0", data.path());
    let out = cni(&plugins, &w.node(0).netns, "ADD", "c1", Some(&w.pods[0]), "eth0", &conf);
    assert_eq!(out.ip().to_string(), "192.168.1.101", "{}", out.json);
    let hold = record(data.path(), "192.168.1.100");
    assert!(hold.starts_with(&format!("foreign-hold {} ", w.external().mac)), "store record: {hold:?}");

    // The reference host-local on the same store, started from the range's beginning.
    std::fs::remove_file(data.path().join("macvlan-conf/last_reserved_ip.0")).unwrap();
    let reference = PluginDir::new(Impl::Reference, Impl::Reference);
    let mut ipam = conf.clone();
    ipam["type"] = json!("host-local");
    let env = [("CNI_COMMAND", "ADD"), ("CNI_CONTAINERID", "ref"), ("CNI_NETNS", "/dev/null"), ("CNI_IFNAME", "eth0")];
    let got = invoke(&reference, &w.node(0).netns, "host-local", &env, &serde_json::to_vec(&ipam).unwrap());
    assert_eq!(got.ip().to_string(), "192.168.1.102", "the reference skips the hold: {}", got.json);
    // Its DEL releases its own address only.
    let env = [("CNI_COMMAND", "DEL"), ("CNI_CONTAINERID", "ref"), ("CNI_NETNS", "/dev/null"), ("CNI_IFNAME", "eth0")];
    assert!(invoke(&reference, &w.node(0).netns, "host-local", &env, &serde_json::to_vec(&ipam).unwrap()).ok);
    assert!(!record(data.path(), "192.168.1.100").is_empty(), "a container's DEL never frees a hold");

    assert!(cni(&plugins, &w.node(0).netns, "DEL", "c1", Some(&w.pods[0]), "eth0", &conf).ok);
    assert_eq!(reservations(data.path(), "macvlan-conf"), vec!["192.168.1.100".to_string()]);
}

/// ADD fails with 101 naming the device's MAC, and leaves no link and no reservation.
fn refused(w: &World, conf: &Value, args: &str) {
    let (node, pod) = (&w.node(0).netns, &w.pods[0]);
    let data = Path::new(conf["ipam"]["dataDir"].as_str().unwrap());
    let before = (links(node), links(pod));
    let out = cni_args(&PluginDir::ours(), node, "ADD", "c2", Some(pod), "eth0", args, conf);
    assert!(!out.ok, "{}", out.json);
    assert_eq!(out.code(), 101, "{}", out.json);
    let mac = w.external().mac.to_string();
    assert!(out.msg().contains("192.168.1.100") && out.msg().contains(&mac), "{}", out.msg());
    assert_eq!((links(node), links(pod)), before, "links left behind");
    assert_eq!(reservations(data, "macvlan-conf"), Vec::<String>::new(), "reservation left behind");
}

#[test]
fn a_requested_address_in_use_fails_with_101_and_leaves_nothing() {
    let w = world(WorldSpec::seed("mvcd2").nodes(1).pods(1));
    squat(&w, "192.168.1.100");
    let data = tempfile::tempdir().unwrap();
    let conf = seed_conf("1.0.0", data.path());
    refused(&w, &conf, "IP=192.168.1.100");
    let mut rc = conf.clone();
    rc["capabilities"] = json!({"ips": true});
    rc["runtimeConfig"] = json!({"ips": ["192.168.1.100/24"]});
    refused(&w, &rc, "");
    // Switched off, the address is taken as before (the reference's behaviour).
    let mut off = conf.clone();
    off["conflictDetection"] = json!(false);
    let out =
        cni_args(&PluginDir::ours(), &w.node(0).netns, "ADD", "c3", Some(&w.pods[0]), "eth0", "IP=192.168.1.100", &off);
    assert_eq!(out.ip().to_string(), "192.168.1.100", "{}", out.json);
    assert!(cni(&PluginDir::ours(), &w.node(0).netns, "DEL", "c3", Some(&w.pods[0]), "eth0", &off).ok);
}

#[test]
fn our_own_announcements_never_count_as_a_conflict() {
    let w = world(WorldSpec::seed("mvcd3").nodes(1).pods(1));
    let data = tempfile::tempdir().unwrap();
    let plugins = PluginDir::ours();
    let mut conf = seed_conf("1.0.0", data.path());
    // Announcements continue after ADD: they would be the first to be mistaken.
    conf["announceCount"] = json!(3);
    conf["announceIntervalMs"] = json!(20);
    let (node, pod) = (&w.node(0).netns, &w.pods[0]);
    let mut false_conflicts = Vec::new();
    for i in 0..100 {
        let out = cni_args(&plugins, node, "ADD", "same", Some(pod), "eth0", "IP=192.168.1.150", &conf);
        if !out.ok {
            false_conflicts.push(format!("round {i}: {}", out.json));
        }
        assert!(cni(&plugins, node, "DEL", "same", Some(pod), "eth0", &conf).ok);
    }
    assert_eq!(false_conflicts, Vec::<String>::new());
}

#[test]
fn bad_settings_are_refused_by_name() {
    let w = world(WorldSpec::seed("mvcd4").nodes(1).pods(1));
    let data = tempfile::tempdir().unwrap();
    let mut conf = seed_conf("1.0.0", data.path());
    conf["conflictDetection"] = json!({"probes": 0});
    let out = cni(&PluginDir::ours(), &w.node(0).netns, "ADD", "c4", Some(&w.pods[0]), "eth0", &conf);
    assert_eq!(out.code(), 7, "{}", out.json);
    assert!(out.msg().contains("conflictDetection.probes 0"), "{}", out.msg());
    assert!(links(&w.pods[0]).iter().all(|l| l == "lo"));
}

#[test]
fn two_nodes_with_the_seeds_json_unchanged_never_hand_out_the_same_address() {
    let w = world(WorldSpec::seed("mvcd5").nodes(2).pods(2));
    let plugins = PluginDir::ours();
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (c1, c2) = (seed_conf("0.4.0", d1.path()), seed_conf("0.4.0", d2.path()));
    let first = cni(&plugins, &w.node(0).netns, "ADD", "pod1", Some(&w.pods[0]), "eth0", &c1);
    let second = cni(&plugins, &w.node(1).netns, "ADD", "pod2", Some(&w.pods[1]), "eth0", &c2);
    assert_eq!(first.ip().to_string(), "192.168.1.100", "{}", first.json);
    assert_eq!(second.ip().to_string(), "192.168.1.101", "{}", second.json);
    // node2's store names node1's pod as the device on .100.
    let pod1_mac = first.json["interfaces"][0]["mac"].as_str().unwrap().to_string();
    let hold = std::fs::read_to_string(d2.path().join("macvlan-conf/192.168.1.100")).unwrap();
    assert!(hold.starts_with(&format!("foreign-hold {pod1_mac} ")), "{hold:?}");
    assert!(reaches(&w.pods[0], second.ip()) && reaches(&w.pods[1], first.ip()));
}
