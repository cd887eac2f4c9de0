use super::*;
use serde_json::json;

fn full() -> CniResult {
    CniResult {
        interfaces: vec![Interface {
            name: "eth0".into(),
            mac: Some("02:42:c0:a8:01:64".parse().unwrap()),
            mtu: Some(1500),
            sandbox: Some("/run/netns/pod1".into()),
            socket_path: Some("/run/vhost.sock".into()),
            pci_id: Some("0000:00:1f.6".into()),
        }],
        ips: vec![
            IpConfig {
                interface: Some(0),
                address: "192.168.1.100/24".parse().unwrap(),
                gateway: Some("192.168.1.1".parse().unwrap()),
            },
            IpConfig {
                interface: Some(0),
                address: "2001:db8::64/64".parse().unwrap(),
                gateway: Some("2001:db8::1".parse().unwrap()),
            },
        ],
        routes: vec![
            Route {
                dst: "0.0.0.0/0".parse().unwrap(),
                gw: Some("192.168.1.1".parse().unwrap()),
                mtu: Some(1400),
                advmss: Some(1360),
                priority: Some(100),
                table: Some(0),
                scope: Some(0),
            },
            Route::new("::/0".parse().unwrap(), Some("2001:db8::1".parse().unwrap())),
        ],
        dns: Dns {
            nameservers: vec!["192.168.1.1".into()],
            domain: Some("lan".into()),
            search: vec!["lan".into()],
            options: vec!["ndots:2".into()],
        },
    }
}

#[test]
fn every_version_round_trips_what_it_can_hold() {
    let r = full();
    for &v in Version::ALL {
        let json = r.to_json(v);
        assert_eq!(json["cniVersion"], v.as_str());
        let (back, got) = CniResult::from_json(&json, Version::V0_1_0).unwrap();
        assert_eq!(got, v);
        // Serializing what came back gives the same bytes: nothing that version can
        // hold was lost, nothing was invented.
        assert_eq!(back.to_json(v), json, "{v}");
        if v == Version::V1_1_0 {
            assert_eq!(back, r);
        }
    }
}

#[test]
fn downgrade_to_020_and_back_keeps_what_020_holds() {
    let r = full();
    let legacy = r.to_json(Version::V0_2_0);
    let (back, _) = CniResult::from_json(&legacy, Version::V0_2_0).unwrap();
    assert!(back.interfaces.is_empty());
    assert_eq!(back.ips.len(), 2);
    assert_eq!(back.ips[0].address, r.ips[0].address);
    assert_eq!(back.ips[0].gateway, r.ips[0].gateway);
    assert_eq!(back.ips[1].address, r.ips[1].address);
    assert_eq!(back.routes, vec![Route::new(r.routes[0].dst, r.routes[0].gw), r.routes[1].clone()]);
    assert_eq!(back.dns, r.dns);
    let again = back.to_json(Version::V1_1_0);
    assert_eq!(again["ips"][0], json!({"address": "192.168.1.100/24", "gateway": "192.168.1.1"}));
}

#[test]
fn prev_result_031_under_100_config_is_upgraded() {
    let prev = json!({
        "cniVersion": "0.3.1",
        "interfaces": [{"name": "eth0", "mac": "02:42:c0:a8:01:64", "sandbox": "/run/netns/p"}],
        "ips": [{"version": "4", "interface": 0, "address": "192.168.1.100/24", "gateway": "192.168.1.1"}],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dns": {}
    });
    let (r, v) = CniResult::from_json(&prev, Version::V1_0_0).unwrap();
    assert_eq!(v, Version::V0_3_1);
    let out = r.to_json(Version::V1_0_0);
    assert_eq!(out["cniVersion"], "1.0.0");
    assert!(out["ips"][0].get("version").is_none(), "1.0.0 has no ips[].version");
    assert_eq!(out["ips"][0]["interface"], 0);
}

#[test]
fn missing_version_uses_default_and_bad_input_is_code_6() {
    let (_, v) = CniResult::from_json(&json!({"ips": []}), Version::V0_4_0).unwrap();
    assert_eq!(v, Version::V0_4_0);
    let e = CniResult::from_json(&json!({"cniVersion": "1.0.0", "ips": [{"address": "nope"}]}), Version::V1_0_0)
        .unwrap_err();
    assert_eq!(e.code, 6);
    let e = CniResult::from_json(&json!({"cniVersion": "9.9.9"}), Version::V1_0_0).unwrap_err();
    assert_eq!(e.code, 1);
}

#[test]
fn snapshots_pin_each_version() {
    let r = full();
    for &v in Version::ALL {
        insta::assert_json_snapshot!(format!("result_{}", v.as_str().replace('.', "_")), r.to_json(v));
    }
}

#[test]
fn dns_merge_keeps_both_sides_once() {
    let mut conf = Dns { nameservers: vec!["10.0.0.1".into()], ..Dns::default() };
    let ipam =
        Dns { nameservers: vec!["10.0.0.1".into(), "10.0.0.2".into()], domain: Some("lan".into()), ..Dns::default() };
    conf.merge(&ipam);
    assert_eq!(conf.nameservers, vec!["10.0.0.1", "10.0.0.2"]);
    assert_eq!(conf.domain.as_deref(), Some("lan"));
}
