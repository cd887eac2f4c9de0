//! Configs written by other software: Go's `null` for "not set", keys in any case, and
//! values refused up front with code 7 naming the key and value.

mod support;

use serde_json::{Value, json};
use support::*;
use underlay_linux::world::WorldSpec;

fn renamed(mut c: Value, from: &str, to: &str) -> Value {
    let v = c.as_object_mut().unwrap().remove(from).unwrap();
    c[to] = v;
    c
}

#[test]
fn nulls_are_unset_and_keys_match_in_any_case() {
    let w = world(WorldSpec::seed("mvdrop").nodes(1).pods(1));
    let data = tempfile::tempdir().unwrap();
    let (plugins, node, pod) = (PluginDir::ours(), &w.node(0).netns, &w.pods[0]);
    // What a Go struct marshals for the fields it did not set.
    let mut c = seed_conf("1.0.0", data.path());
    for k in ["mode", "mtu", "mac", "linkInContainer", "dns", "runtimeConfig", "args", "prevResult"] {
        c[k] = Value::Null;
    }
    c["ipam"]["routes"] = Value::Null;
    c["ipam"]["ranges"] = Value::Null;
    let out = cni(&plugins, node, "ADD", "c1", Some(pod), "eth0", &c);
    assert!(out.ok, "nulls must read as unset: {}", out.json);
    assert!(cni(&plugins, node, "DEL", "c1", Some(pod), "eth0", &c).ok);

    // `Master` names a link that is not there: refused, never the default-route link.
    let wrong = renamed(json!({"master": "enp9s9"}), "master", "Master");
    let mut c = seed_conf("1.0.0", data.path());
    c.as_object_mut().unwrap().remove("master");
    c["Master"] = wrong["Master"].clone();
    let out = cni(&plugins, node, "ADD", "c2", Some(pod), "eth0", &c);
    assert_eq!(out.code(), 7, "\"Master\" must be read: {}", out.json);
    assert!(out.msg().contains("enp9s9"), "{}", out.msg());
    assert_eq!(links(pod), ["lo"]);

    // Keys in other cases work, and the exact spelling wins over them.
    let mut c = renamed(seed_conf("1.0.0", data.path()), "master", "MASTER");
    c["ipam"] = renamed(c["ipam"].clone(), "rangeStart", "RangeStart");
    c["ipam"]["rangeStart"] = json!("192.168.1.150");
    c["ipam"]["RangeStart"] = json!("192.168.1.120");
    c["Mode"] = json!("private");
    let out = cni(&plugins, node, "ADD", "c3", Some(pod), "eth0", &c);
    assert!(out.ok, "{}", out.json);
    assert_eq!(out.ip().to_string(), "192.168.1.150");
    assert!(cni(&plugins, node, "DEL", "c3", Some(pod), "eth0", &c).ok);
    assert!(reservations(data.path(), "macvlan-conf").is_empty());
}
