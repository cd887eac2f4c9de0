//! STATUS, GC, config errors, a lost lease, the macvlan chain, and ipvlan.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;
use support::{DHCP, Lab, acks, configure, mac, wait_for};
use underlay_linux::support::{Feature, has, report_skip};

#[test]
fn status_is_50_without_the_daemon_and_ok_with_it() {
    let mut lab = Lab::new("dhcp-status");
    let conf = lab.conf(5.0);
    let down = lab.cni("STATUS", "", None, "", &conf);
    assert!(!down.ok);
    assert_eq!(down.code(), 50, "{}", down.json);
    assert!(down.json["msg"].as_str().unwrap().contains("dhcp.sock"), "{}", down.json);
    lab.start_daemon();
    let up = lab.cni("STATUS", "", None, "", &conf);
    assert!(up.ok, "{}", up.json);
}

#[test]
fn gc_releases_what_is_not_valid_and_keeps_the_rest() {
    let mut lab = Lab::new("dhcp-gc");
    lab.start_dnsmasq(60, 100);
    lab.start_daemon();
    let conf = lab.conf(10.0);
    let (p1, p2) = (lab.pod("pod1", 0), lab.pod("pod2", 1));
    let (m1, m2) = (mac(&p1), mac(&p2));
    assert!(lab.cni("ADD", "keep", Some(&p1), "", &conf).ok);
    assert!(lab.cni("ADD", "gone", Some(&p2), "", &conf).ok);
    let mut gc = conf.clone();
    gc["cni.dev/valid-attachments"] = json!([{"containerID": "keep", "ifname": "eth0"}]);
    let out = lab.cni("GC", "", None, "", &gc);
    assert!(out.ok, "{}", out.json);
    wait_for(Duration::from_secs(5), || lab.lease_lines().iter().all(|l| !l.contains(&m2))).unwrap_or_else(|()| {
        panic!("GC did not release: {:?}\n{}\n{}", lab.lease_lines(), lab.dnsmasq_log(), lab.daemon_log())
    });
    assert!(lab.lease_lines().iter().any(|l| l.contains(&m1)), "the valid one stays leased");
    let state: Vec<String> = std::fs::read_dir(lab.dir.path().join("state"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    assert_eq!(state, vec!["lan.keep.eth0.json".to_string()]);
}

#[test]
fn bad_config_is_code_7_naming_the_key() {
    let lab = Lab::new("dhcp-conf");
    let mut conf = lab.conf(0.0);
    let out = lab.cni("ADD", "c1", None, "", &conf);
    assert_eq!(out.code(), 4, "no CNI_NETNS: {}", out.json);
    let pod = underlay_linux::Netns::current().unwrap();
    let out = lab.cni("ADD", "c1", Some(&pod), "", &conf);
    assert_eq!(out.code(), 7, "{}", out.json);
    assert!(out.json["msg"].as_str().unwrap().contains("ipam.timeout 0"), "{}", out.json);
    conf["ipam"]["timeout"] = json!(5);
    conf["ipam"]["request"] = json!([{"option": "no-such-option"}]);
    let out = lab.cni("ADD", "c1", Some(&pod), "", &conf);
    assert_eq!(out.code(), 7, "{}", out.json);
    assert!(out.json["msg"].as_str().unwrap().contains("ipam.request[0].option \"no-such-option\""), "{}", out.json);
    conf["ipam"]["request"] = json!([]);
    conf["ipam"]["provide"] = json!([{"option": "dhcp-client-identifier", "value": "same-for-all"}]);
    let out = lab.cni("ADD", "c1", Some(&pod), "", &conf);
    assert_eq!(out.code(), 2, "{}", out.json);
    assert!(out.json["msg"].as_str().unwrap().contains("ipam.provide[0].option"), "{}", out.json);
}

#[test]
fn a_lost_lease_takes_the_address_off_and_a_new_one_is_leased() {
    let mut lab = Lab::new("dhcp-lost");
    lab.start_dnsmasq(3, 6);
    lab.start_daemon();
    let pod = lab.pod("pod1", 0);
    let a = lab.cni("ADD", "c1", Some(&pod), "", &lab.conf(10.0)).address();
    configure(&pod, a);
    // A server whose range no longer holds the address refuses the renewal (NAK).
    lab.stop_dnsmasq();
    std::fs::remove_file(lab.leases()).unwrap();
    lab.start_dnsmasq_range("192.168.1.200,192.168.1.220", 60, 100);
    let addrs = || -> Vec<String> {
        let mut nl = pod.netlink().unwrap();
        let link = nl.link("eth0").unwrap();
        nl.addresses(Some(link.index))
            .unwrap()
            .iter()
            .filter(|x| x.net.addr().is_ipv4())
            .map(|x| x.net.to_string())
            .collect()
    };
    wait_for(Duration::from_secs(20), || addrs().iter().any(|x| x.starts_with("192.168.1.2")))
        .unwrap_or_else(|()| panic!("no new lease on eth0: {:?}\n{}", addrs(), lab.daemon_log()));
    assert!(!addrs().contains(&a.to_string()), "the lost address is gone: {:?}", addrs());
    assert!(lab.daemon_log().contains("lease lost"), "{}", lab.daemon_log());
}

/// The reference's way a runtime calls it: macvlan with `"ipam": {"type": "dhcp"}`.
fn chain_dir() -> (tempfile::TempDir, PathBuf) {
    let macvlan = Path::new(DHCP).with_file_name("macvlan");
    assert!(macvlan.exists(), "{} missing: run the workspace's tests so every plugin is built", macvlan.display());
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(&macvlan, dir.path().join("macvlan")).unwrap();
    std::os::unix::fs::symlink(DHCP, dir.path().join("dhcp")).unwrap();
    let m = dir.path().join("macvlan");
    (dir, m)
}

fn chain_conf(lab: &Lab, timeout: f64) -> serde_json::Value {
    json!({"cniVersion": "1.0.0", "name": "lan", "type": "macvlan", "master": "enp0s3", "mode": "bridge",
           "ipam": {"type": "dhcp", "daemonSocketPath": lab.socket(), "timeout": timeout}})
}

#[test]
fn macvlan_with_dhcp_configures_the_lease_and_a_silent_lan_leaves_no_link() {
    let mut lab = Lab::new("dhcp-chain");
    lab.start_daemon();
    let (_dir, macvlan) = chain_dir();
    let pod = lab.empty_pod("pod1");
    let out = lab.run(&macvlan, "ADD", "c1", Some(&pod), "", &chain_conf(&lab, 2.0));
    assert_eq!(out.code(), 11, "{}", out.json);
    let links: Vec<String> = pod.netlink().unwrap().links().unwrap().into_iter().map(|l| l.name).collect();
    assert_eq!(links, vec!["lo".to_string()], "no link left behind");

    lab.start_dnsmasq(60, 100);
    let out = lab.run(&macvlan, "ADD", "c1", Some(&pod), "", &chain_conf(&lab, 10.0));
    let ip = out.address();
    let mut nl = pod.netlink().unwrap();
    let link = nl.link("eth0").unwrap();
    assert!(nl.addresses(Some(link.index)).unwrap().iter().any(|a| a.net == ip));
    assert!(lab.lease_lines().iter().any(|l| l.contains(&link.mac.unwrap().to_string())));
    assert!(lab.run(&macvlan, "DEL", "c1", Some(&pod), "", &chain_conf(&lab, 10.0)).ok);
    let m = link.mac.unwrap().to_string();
    wait_for(Duration::from_secs(5), || lab.lease_lines().iter().all(|l| !l.contains(&m))).expect("released on DEL");
}

#[test]
fn ipvlan_endpoints_on_one_parent_get_distinct_leases() {
    if !has(Feature::Ipvlan).unwrap() {
        return report_skip("ipvlan_endpoints_on_one_parent_get_distinct_leases", Feature::Ipvlan);
    }
    let mut lab = Lab::new("dhcp-ipvlan");
    lab.start_dnsmasq(60, 100);
    lab.start_daemon();
    let (p1, p2) = (lab.ipvlan_pod("pod1"), lab.ipvlan_pod("pod2"));
    assert_eq!(mac(&p1), mac(&p2), "ipvlan endpoints share the parent's MAC");
    let a1 = lab.cni("ADD", "c1", Some(&p1), "", &lab.conf(10.0)).address();
    let a2 = lab.cni("ADD", "c2", Some(&p2), "", &lab.conf(10.0)).address();
    assert_ne!(a1, a2, "one lease per client identifier");
    let _ = acks;
}
