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

#[test]
fn values_the_kernel_would_refuse_are_refused_up_front_with_their_key() {
    let w = world(WorldSpec::seed("mvearly").nodes(1).pods(1));
    let data = tempfile::tempdir().unwrap();
    let (plugins, node, pod) = (PluginDir::ours(), &w.node(0).netns, &w.pods[0]);
    let mut cases: Vec<(Value, &str, &str)> = Vec::new();
    let mut c = seed_conf("1.0.0", data.path());
    c["master"] = json!("a-very-long-interface-name");
    cases.push((c, "", "a-very-long-interface-name"));
    let mut c = seed_conf("1.0.0", data.path());
    c["master"] = json!("lo");
    cases.push((c, "", "\"lo\""));
    let mut c = seed_conf("1.0.0", data.path());
    c["ipam"]["subnet"] = json!("0.0.0.0/0");
    c["ipam"].as_object_mut().unwrap().retain(|k, _| k == "type" || k == "subnet" || k == "dataDir");
    cases.push((c, "", "0.0.0.0/0"));
    let mut c = seed_conf("1.0.0", data.path());
    c["name"] = json!("n".repeat(300));
    cases.push((c, "", "300 bytes"));
    cases.push((seed_conf("1.0.0", data.path()), "IP=192.168.1.110;IP=192.168.1.111", "192.168.1.111"));
    for (c, args, needle) in cases {
        let out = cni_args(&plugins, node, "ADD", "c1", Some(pod), "eth0", args, &c);
        assert_eq!(out.code(), 7, "{args} {c}: {}", out.json);
        assert!(out.msg().contains(needle), "{needle}: {}", out.msg());
        assert_eq!(links(pod), ["lo"]);
        assert!(reservations(data.path(), "macvlan-conf").is_empty());
    }
}
