//! Each fixed defect and each feature of host-local, through the binary.

mod support;

use serde_json::json;
use support::*;

#[test]
fn a_repeated_add_returns_the_existing_reservation() {
    let data = tempfile::tempdir().unwrap();
    let conf = conf("1.0.0", "idem", data.path(), json!({"subnet": "10.1.0.0/24"}));
    let first = run(&ours(), "ADD", "c1", &conf);
    let again = run(&ours(), "ADD", "c1", &conf);
    assert_eq!(ip_of(&first), ip_of(&again));
    assert_eq!(reservations(&data.path().join("idem")).len(), 1);
    // The reference refuses the same thing (the defect fixed here).
    let data_ref = tempfile::tempdir().unwrap();
    let conf_ref = conf_for_ref(data_ref.path());
    assert!(run(&reference(), "ADD", "c1", &conf_ref).ok);
    let refused = run(&reference(), "ADD", "c1", &conf_ref);
    assert!(!refused.ok);
    assert!(refused.json["msg"].as_str().unwrap().contains("duplicate allocation"));
    // Ours accepts a store where the reference made the first reservation.
    assert_eq!(ip_of(&run(&ours(), "ADD", "c1", &conf_ref)), "10.1.0.2");
}

fn conf_for_ref(data: &std::path::Path) -> Vec<u8> {
    conf("1.0.0", "idem", data, json!({"subnet": "10.1.0.0/24"}))
}

#[test]
fn gc_keeps_only_valid_attachments_under_either_key() {
    for key in ["cni.dev/valid-attachments", "cni.dev/attachments"] {
        let data = tempfile::tempdir().unwrap();
        let add = conf("1.1.0", "gc", data.path(), json!({"subnet": "10.2.0.0/24"}));
        for c in ["keep1", "gone1", "keep2", "gone2"] {
            assert!(run(&ours(), "ADD", c, &add).ok);
        }
        // A reservation the reference made for a container that is gone, and one with
        // an unreadable (empty) record, as a crashed reference process leaves.
        std::fs::write(data.path().join("gc/10.2.0.50"), "").unwrap();
        let mut gc: serde_json::Value = serde_json::from_slice(&add).unwrap();
        gc[key] = json!([{"containerID": "keep1", "ifname": "eth0"}, {"containerID": "keep2", "ifname": "eth0"}]);
        let out = finish(spawn(&ours(), "GC", "", "", "", &serde_json::to_vec(&gc).unwrap()));
        assert!(out.ok, "{key}: {}", out.json);
        let left: Vec<String> = reservations(&data.path().join("gc")).into_iter().map(|(_, c)| c).collect();
        assert_eq!(left, ["keep1\r\neth0", "keep2\r\neth0"], "{key}");
    }
}

#[test]
fn status_is_50_when_the_range_is_exhausted() {
    let data = tempfile::tempdir().unwrap();
    let conf = conf(
        "1.1.0",
        "full",
        data.path(),
        json!({"subnet": "10.3.0.0/29", "rangeStart": "10.3.0.2", "rangeEnd": "10.3.0.3"}),
    );
    let status = || finish(spawn(&ours(), "STATUS", "", "", "", &conf));
    assert!(status().ok);
    assert!(run(&ours(), "ADD", "a", &conf).ok);
    assert!(status().ok);
    assert!(run(&ours(), "ADD", "b", &conf).ok);
    let s = status();
    assert!(!s.ok);
    assert_eq!(s.json["code"], 50);
    assert!(s.json["msg"].as_str().unwrap().contains("exhausted"), "{}", s.json);
    let full = run(&ours(), "ADD", "c", &conf);
    assert_eq!(full.json["code"], 102, "{}", full.json);
    assert_eq!(reservations(&data.path().join("full")).len(), 2, "the failed ADD left nothing");
}

#[test]
fn requested_addresses_from_cni_args_args_and_runtime_config() {
    let data = tempfile::tempdir().unwrap();
    let base = conf("1.0.0", "req", data.path(), json!({"subnet": "10.4.0.0/24"}));
    assert_eq!(ip_of(&run_args(&ours(), "ADD", "a", "IgnoreUnknown=1;IP=10.4.0.77", &base)), "10.4.0.77");
    let mut v: serde_json::Value = serde_json::from_slice(&base).unwrap();
    v["args"] = json!({"cni": {"ips": ["10.4.0.78"]}});
    assert_eq!(ip_of(&run(&ours(), "ADD", "b", &serde_json::to_vec(&v).unwrap())), "10.4.0.78");
    let mut v: serde_json::Value = serde_json::from_slice(&base).unwrap();
    v["runtimeConfig"] = json!({"ips": ["10.4.0.79/24"]});
    assert_eq!(ip_of(&run(&ours(), "ADD", "c", &serde_json::to_vec(&v).unwrap())), "10.4.0.79");
    // Taken, outside the range, the gateway: clear errors, nothing reserved.
    let taken = run_args(&ours(), "ADD", "d", "IP=10.4.0.77", &base);
    assert_eq!(taken.json["code"], 105, "{}", taken.json);
    let outside = run_args(&ours(), "ADD", "e", "IP=10.9.9.9", &base);
    assert_eq!(outside.json["code"], 7, "{}", outside.json);
    assert!(outside.json["msg"].as_str().unwrap().contains("10.9.9.9"));
    let gw = run_args(&ours(), "ADD", "f", "IP=10.4.0.1", &base);
    assert!(gw.json["msg"].as_str().unwrap().contains("gateway"), "{}", gw.json);
    assert_eq!(reservations(&data.path().join("req")).len(), 3);
}

#[test]
fn dual_stack_gets_one_address_per_range_set_and_check_verifies_them() {
    let data = tempfile::tempdir().unwrap();
    let dual = conf(
        "1.0.0",
        "dual",
        data.path(),
        json!({"ranges": [[{"subnet": "10.5.0.0/24"}], [{"subnet": "2001:db8:5::/64", "rangeStart": "2001:db8:5::100"}]],
               "routes": [{"dst": "0.0.0.0/0"}, {"dst": "::/0"}]}),
    );
    let out = run(&ours(), "ADD", "ds", &dual);
    assert!(out.ok, "{}", out.json);
    assert_eq!(out.json["ips"][0]["address"], "10.5.0.2/24");
    assert_eq!(out.json["ips"][1]["address"], "2001:db8:5::100/64");
    assert_eq!(out.json["ips"][1]["gateway"], "2001:db8:5::1");
    assert_eq!(out.json["routes"].as_array().unwrap().len(), 2);
    let mut check: serde_json::Value = serde_json::from_slice(&dual).unwrap();
    check["prevResult"] = out.json.clone();
    let check = serde_json::to_vec(&check).unwrap();
    assert!(run(&ours(), "CHECK", "ds", &check).ok);
    // Someone removed the IPv6 reservation: CHECK says so.
    std::fs::remove_file(data.path().join("dual/2001:db8:5::100")).unwrap();
    let bad = run(&ours(), "CHECK", "ds", &check);
    assert_eq!(bad.json["code"], 104, "{}", bad.json);
    // A failure in the second range set releases the first.
    let data2 = tempfile::tempdir().unwrap();
    let conf2 = conf(
        "1.0.0",
        "dual2",
        data2.path(),
        json!({"ranges": [[{"subnet": "10.6.0.0/24"}], [{"subnet": "2001:db8:6::/64"}]]}),
    );
    let fail = run_args(&ours(), "ADD", "x", "IP=2001:db8:7::5", &conf2);
    assert!(!fail.ok);
    assert!(reservations(&data2.path().join("dual2")).is_empty());
}

#[test]
fn del_is_idempotent_and_bad_input_is_named() {
    let data = tempfile::tempdir().unwrap();
    let conf_ok = conf("1.0.0", "del", data.path(), json!({"subnet": "10.7.0.0/24"}));
    assert!(run(&ours(), "DEL", "never-added", &conf_ok).ok);
    assert!(run(&ours(), "ADD", "c", &conf_ok).ok);
    assert!(run(&ours(), "DEL", "c", &conf_ok).ok);
    assert!(run(&ours(), "DEL", "c", &conf_ok).ok);
    let bad = conf("1.0.0", "../escape", data.path(), json!({"subnet": "10.7.0.0/24"}));
    let out = run(&ours(), "ADD", "c", &bad);
    assert_eq!(out.json["code"], 7);
    assert!(out.json["msg"].as_str().unwrap().contains("../escape"));
    assert!(!data.path().parent().unwrap().join("escape").exists());
    let host_bits = conf("1.0.0", "hb", data.path(), json!({"subnet": "10.7.0.5/24"}));
    let out = run(&ours(), "ADD", "c", &host_bits);
    assert_eq!(out.json["code"], 7);
    assert!(out.json["msg"].as_str().unwrap().contains("10.7.0.0/24"), "{}", out.json);
}

#[test]
fn two_requested_addresses_in_one_range_set_say_so() {
    let data = tempfile::tempdir().unwrap();
    let mut c: serde_json::Value =
        serde_json::from_slice(&conf("1.0.0", "two", data.path(), json!({"subnet": "10.1.0.0/24"}))).unwrap();
    c["runtimeConfig"] = json!({"ips": ["10.1.0.5", "10.1.0.6"]});
    let out = run(&ours(), "ADD", "c1", &serde_json::to_vec(&c).unwrap());
    assert_eq!(out.json["code"], 7, "{}", out.json);
    let msg = out.json["msg"].as_str().unwrap();
    assert!(!msg.contains("none of the ranges") && msg.contains("range set 0") && msg.contains("10.1.0.6"), "{msg}");
    assert!(reservations(&data.path().join("two")).is_empty(), "the first address is released again");
    c["runtimeConfig"] = json!({"ips": ["10.9.0.5"]});
    let out = run(&ours(), "ADD", "c1", &serde_json::to_vec(&c).unwrap());
    assert!(out.json["msg"].as_str().unwrap().contains("none of the ranges"), "{}", out.json);
}
