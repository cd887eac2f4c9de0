//! Ours and the reference on one store: same files, same order, either frees the other's.

mod support;

use serde_json::json;
use support::*;

#[test]
fn fifty_containers_alternately_allocated_by_both_get_distinct_addresses() {
    let data = tempfile::tempdir().unwrap();
    let conf = conf("0.4.0", "mixed", data.path(), json!({"subnet": "10.50.0.0/24"}));
    let (ours, reference) = (ours(), reference());
    let mut got = Vec::new();
    for i in 0..50u32 {
        let bin = if i.is_multiple_of(2) { &ours } else { &reference };
        got.push(ip_of(&run(bin, "ADD", &format!("c{i}"), &conf)));
    }
    let mut unique = got.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 50, "{got:?}");
    // Round-robin continues across binaries: .2, .3, .4, ... (.1 is the gateway).
    let expected: Vec<String> = (2..52).map(|n| format!("10.50.0.{n}")).collect();
    assert_eq!(got, expected);
    let store = data.path().join("mixed");
    assert_eq!(reservations(&store).len(), 50);
    // Each frees the other's reservations.
    for i in 0..50u32 {
        let bin = if i.is_multiple_of(2) { &reference } else { &ours };
        assert!(run(bin, "DEL", &format!("c{i}"), &conf).ok);
    }
    assert!(reservations(&store).is_empty());
}

#[test]
fn store_files_match_the_reference_byte_for_byte() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let ipam = json!({"ranges": [[{"subnet": "10.60.0.0/24"}], [{"subnet": "2001:db8:60::/64"}]]});
    let conf_a = conf("1.0.0", "pin", a.path(), ipam.clone());
    let conf_b = conf("1.0.0", "pin", b.path(), ipam);
    let ra = run(&ours(), "ADD", "abc123", &conf_a);
    let rb = run(&reference(), "ADD", "abc123", &conf_b);
    assert!(ra.ok && rb.ok);
    assert_eq!(ra.json["ips"], rb.json["ips"], "same addresses in the same shape");
    let files = |d: &std::path::Path| -> Vec<(String, Vec<u8>)> {
        let mut v: Vec<_> = std::fs::read_dir(d.join("pin"))
            .unwrap()
            .flatten()
            .map(|e| (e.file_name().into_string().unwrap(), std::fs::read(e.path()).unwrap()))
            .collect();
        v.sort();
        v
    };
    assert_eq!(files(a.path()), files(b.path()));
    assert_eq!(
        files(a.path()).iter().find(|(n, _)| n == "10.60.0.2").map(|(_, c)| c.clone()),
        Some(b"abc123\r\neth0".to_vec())
    );
}

#[test]
fn results_have_the_references_shape_in_every_version() {
    for version in ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0"] {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let ipam = json!({"subnet": "192.168.1.0/24", "gateway": "192.168.1.1", "rangeStart": "192.168.1.100",
                          "rangeEnd": "192.168.1.200", "routes": [{"dst": "0.0.0.0/0"}, {"dst": "10.0.0.0/8", "gw": "192.168.1.254"}]});
        let ra = run(&ours(), "ADD", "c1", &conf(version, "shape", a.path(), ipam.clone()));
        let rb = run(&reference(), "ADD", "c1", &conf(version, "shape", b.path(), ipam));
        assert!(ra.ok && rb.ok, "{version}: {} / {}", ra.json, rb.json);
        assert_eq!(ra.json, rb.json, "{version}");
    }
}
