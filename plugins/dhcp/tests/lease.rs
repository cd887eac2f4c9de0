//! The "How we will know" list against a real dnsmasq, one test per point.

mod support;

use std::time::{Duration, Instant};

use support::{Lab, acks, configure, mac, wait_for};

#[test]
fn pods_on_two_nodes_lease_from_dnsmasq_get_its_options_and_release_on_del() {
    let mut lab = Lab::new("dhcp-two");
    lab.start_dnsmasq(60, 100);
    lab.start_daemon();
    let conf = lab.conf(10.0);
    let (p1, p2) = (lab.pod("pod1", 0), lab.pod("pod2", 1));
    let (m1, m2) = (mac(&p1), mac(&p2));
    let a1 = lab.cni("ADD", "c1", Some(&p1), "K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-1", &conf);
    let mut provided = conf.clone();
    provided["ipam"]["provide"] = serde_json::json!([{"option": "host-name", "value": "static-name"}]);
    let a2 = lab.cni("ADD", "c2", Some(&p2), "", &provided);
    let (ip1, ip2) = (a1.address(), a2.address());
    assert_ne!(ip1, ip2);
    for ip in [ip1, ip2] {
        assert_eq!(ip.prefix_len(), 24);
        assert!(ip.to_string().starts_with("192.168.1.1"), "{ip} outside dnsmasq's range");
    }
    let r = &a1.json;
    assert_eq!(r["ips"][0]["gateway"], "192.168.1.1");
    assert_eq!(r["dns"]["nameservers"], serde_json::json!(["192.168.1.53", "192.168.1.54"]));
    assert_eq!(r["dns"]["domain"], "lan.test");
    assert_eq!(r["dns"]["search"], serde_json::json!(["lan.test", "corp.test"]));
    // Option 121 replaces option 3 for routing (RFC 3442), MTU 26 rides on each route.
    assert_eq!(
        r["routes"],
        serde_json::json!([{"dst": "10.77.0.0/16", "gw": "192.168.1.254", "mtu": 1400},
                           {"dst": "0.0.0.0/0", "gw": "192.168.1.1", "mtu": 1400}])
    );
    let lines = lab.lease_lines();
    assert!(lines.iter().any(|l| l.contains(&m1) && l.contains(&ip1.addr().to_string())), "{lines:?} lacks {m1}");
    assert!(lines.iter().any(|l| l.contains(&m2) && l.contains(&ip2.addr().to_string())), "{lines:?} lacks {m2}");
    assert!(lines.iter().any(|l| l.contains(&m1) && l.contains(" web-1 ")), "hostname from K8S_POD_NAME: {lines:?}");
    assert!(lines.iter().any(|l| l.contains(&m2) && l.contains(" static-name ")), "provided host-name: {lines:?}");
    let unconfigured = lab.cni("CHECK", "c1", Some(&p1), "", &with_prev(&conf, &a1.json));
    assert_eq!(unconfigured.code(), 104, "the address is not on eth0 yet: {}", unconfigured.json);
    configure(&p1, ip1);
    configure(&p2, ip2);
    assert!(lab.cni("CHECK", "c1", Some(&p1), "", &with_prev(&conf, &a1.json)).ok);

    assert!(lab.cni("DEL", "c1", Some(&p1), "", &conf).ok);
    assert!(lab.cni("DEL", "c2", Some(&p2), "", &conf).ok);
    assert!(lab.cni("DEL", "c2", Some(&p2), "", &conf).ok, "DEL twice is fine");
    wait_for(Duration::from_secs(5), || lab.lease_lines().iter().all(|l| !l.contains(&m1) && !l.contains(&m2)))
        .unwrap_or_else(|()| panic!("released leases still listed: {:?}", lab.lease_lines()));
}

fn with_prev(conf: &serde_json::Value, prev: &serde_json::Value) -> serde_json::Value {
    let mut c = conf.clone();
    c["prevResult"] = prev.clone();
    c
}

#[test]
fn a_short_lease_is_renewed_while_the_pod_lives() {
    let mut lab = Lab::new("dhcp-renew");
    // dnsmasq's shortest lease is 2 minutes; T1 (option 58) of 4 s makes renewals
    // observable in seconds.
    lab.start_dnsmasq(4, 8);
    lab.start_daemon();
    let pod = lab.pod("pod1", 0);
    let m = mac(&pod);
    let a = lab.cni("ADD", "c1", Some(&pod), "", &lab.conf(10.0));
    configure(&pod, a.address());
    assert_eq!(acks(&lab.dnsmasq_log(), &m), 1);
    wait_for(Duration::from_secs(20), || acks(&lab.dnsmasq_log(), &m) >= 3)
        .unwrap_or_else(|()| panic!("no renewals seen:\n{}\n{}", lab.dnsmasq_log(), lab.daemon_log()));
    let a2 = lab.cni("CHECK", "c1", Some(&pod), "", &with_prev(&lab.conf(10.0), &a.json));
    assert!(a2.ok, "CHECK after renewals: {}", a2.json);
}

#[test]
fn a_daemon_killed_and_restarted_keeps_renewing() {
    let mut lab = Lab::new("dhcp-kill");
    lab.start_dnsmasq(4, 8);
    lab.start_daemon();
    let pod = lab.pod("pod1", 0);
    let m = mac(&pod);
    let a = lab.cni("ADD", "c1", Some(&pod), "", &lab.conf(10.0));
    configure(&pod, a.address());
    lab.kill_daemon();
    let before = acks(&lab.dnsmasq_log(), &m);
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(acks(&lab.dnsmasq_log(), &m), before, "nothing renews while the daemon is dead");
    lab.start_daemon();
    wait_for(Duration::from_secs(15), || acks(&lab.dnsmasq_log(), &m) >= before + 2)
        .unwrap_or_else(|()| panic!("no renewals after restart:\n{}", lab.daemon_log()));
    assert!(lab.lease_lines().iter().any(|l| l.contains(&m) && l.contains(&a.address().addr().to_string())));
    assert!(lab.cni("CHECK", "c1", Some(&pod), "", &with_prev(&lab.conf(10.0), &a.json)).ok);
}

#[test]
fn a_restarted_container_gets_its_address_back() {
    let mut lab = Lab::new("dhcp-again");
    lab.start_dnsmasq(60, 100);
    lab.start_daemon();
    let conf = lab.conf(10.0);
    let args = "K8S_POD_NAMESPACE=default;K8S_POD_NAME=db-0";
    let pod = lab.pod("pod1", 0);
    // Another client first, so the address is not simply the first of the range.
    let other = lab.pod("pod2", 1);
    let first = lab.cni("ADD", "sandbox-1", Some(&pod), args, &conf).address();
    let o = lab.cni("ADD", "o1", Some(&other), "", &conf).address();
    assert!(lab.cni("DEL", "sandbox-1", Some(&pod), args, &conf).ok);
    // The restarted pod: new sandbox, new namespace, new MAC, same pod name.
    lab.world.remove(pod.name().unwrap()).unwrap();
    let pod = lab.pod("pod3", 0);
    let again = lab.cni("ADD", "sandbox-2", Some(&pod), args, &conf).address();
    assert_eq!(again, first);
    assert_ne!(again, o);
}

#[test]
fn no_server_means_code_11_within_the_timeout_and_nothing_kept() {
    let mut lab = Lab::new("dhcp-none");
    lab.start_daemon();
    let pod = lab.pod("pod1", 0);
    let started = Instant::now();
    let out = lab.cni("ADD", "c1", Some(&pod), "", &lab.conf(2.0));
    let took = started.elapsed();
    assert!(!out.ok);
    assert_eq!(out.code(), 11, "{}", out.json);
    assert!(out.json["msg"].as_str().unwrap().contains("within 2 s"), "{}", out.json);
    assert!(took < Duration::from_secs(4), "took {took:?}");
    let kept: Vec<_> = std::fs::read_dir(lab.dir.path().join("state")).unwrap().collect();
    assert!(kept.is_empty(), "nothing kept for a failed ADD: {kept:?}");
    let check = lab.cni("CHECK", "c1", Some(&pod), "", &lab.conf(2.0));
    assert_eq!(check.code(), 104);
}

#[test]
fn concurrent_adds_of_one_attachment_keep_one_lease_and_del_stops_all_renewals() {
    let mut lab = Lab::new("dhcp-race");
    lab.start_dnsmasq(3, 6);
    lab.start_daemon();
    let pod = lab.pod("pod1", 0);
    let m = mac(&pod);
    let conf = lab.conf(10.0);
    let got: Vec<_> = std::thread::scope(|s| {
        let calls: Vec<_> = (0..4).map(|_| s.spawn(|| lab.cni("ADD", "c1", Some(&pod), "", &conf).address())).collect();
        calls.into_iter().map(|c| c.join().unwrap()).collect()
    });
    assert!(got.iter().all(|a| *a == got[0]), "one lease for one attachment: {got:?}");
    configure(&pod, got[0]);
    assert!(lab.cni("DEL", "c1", Some(&pod), "", &conf).ok);
    let after_del = acks(&lab.dnsmasq_log(), &m);
    // T1 is 3 s: an orphaned keeper would renew within this wait.
    std::thread::sleep(Duration::from_secs(8));
    assert_eq!(acks(&lab.dnsmasq_log(), &m), after_del, "a keeper still renews after DEL:\n{}", lab.daemon_log());
}
