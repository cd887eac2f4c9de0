//! DEL, CHECK, STATUS, GC, L2-only, MAC precedence, DNS and announcements.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::*;
use underlay_linux::world::WorldSpec;

#[test]
fn del_succeeds_however_often_and_whatever_is_gone() {
    let w = world(WorldSpec::seed("mvdel").nodes(1).pods(2));
    let data = tempfile::tempdir().unwrap();
    let (plugins, node) = (PluginDir::ours(), &w.node(0).netns);
    let c = seed_conf("1.0.0", data.path());
    assert!(cni(&plugins, node, "ADD", "c1", Some(&w.pods[0]), "eth0", &c).ok);
    assert!(cni(&plugins, node, "DEL", "c1", Some(&w.pods[0]), "eth0", &c).ok);
    assert_eq!(links(&w.pods[0]), ["lo"]);
    assert!(reservations(data.path(), "macvlan-conf").is_empty());
    // containerd's second DEL: no namespace any more.
    assert!(cni(&plugins, node, "DEL", "c1", None, "eth0", &c).ok);
    assert!(cni(&plugins, node, "DEL", "c1", Some(&w.pods[0]), "eth0", &c).ok, "link already gone");
    // A namespace path that no longer exists.
    assert!(cni(&plugins, node, "ADD", "c2", Some(&w.pods[1]), "eth0", &c).ok);
    let gone = underlay_linux::Netns::open(w.pods[1].path()).unwrap();
    let name = w.pods[1].name().unwrap().to_string();
    drop(gone);
    underlay_linux::Netns::delete(&name).unwrap();
    let out = support::cni_path(&plugins, node, "DEL", "c2", &format!("/run/netns/{name}"), &c);
    assert!(out.ok, "{}", out.json);
    assert!(reservations(data.path(), "macvlan-conf").is_empty(), "the address is freed even so");
}

#[test]
fn check_passes_on_what_add_made_and_names_what_changed() {
    let w = world(WorldSpec::seed("mvcheck").nodes(1).pods(1));
    let data = tempfile::tempdir().unwrap();
    let (plugins, node, pod) = (PluginDir::ours(), &w.node(0).netns, &w.pods[0]);
    let mut c = seed_conf("1.1.0", data.path());
    // With the gateway spelled out: the reference's CHECK looks for a route without one
    // when it is left out, though its ADD installs it via the gateway.
    c["ipam"]["routes"] = json!([{"dst": "10.99.0.0/16", "gw": "192.168.1.1"}]);
    let added = cni(&plugins, node, "ADD", "c1", Some(pod), "eth0", &c);
    assert!(added.ok, "{}", added.json);
    let mut check = c.clone();
    check["prevResult"] = added.json.clone();
    let ok = cni(&plugins, node, "CHECK", "c1", Some(pod), "eth0", &check);
    assert!(ok.ok, "{}", ok.json);
    // The reference accepts our result as prevResult too (same shape).
    let mut check_ref = check.clone();
    check_ref["cniVersion"] = json!("1.0.0");
    check_ref["prevResult"]["cniVersion"] = json!("1.0.0");
    let reference = PluginDir::new(Impl::Reference, Impl::Reference);
    let theirs = cni(&reference, node, "CHECK", "c1", Some(pod), "eth0", &check_ref);
    assert!(theirs.ok, "{}", theirs.json);
    // Now change things under it.
    let mut nl = pod.netlink().unwrap();
    let eth0 = nl.link("eth0").unwrap();
    let route = nl.routes().unwrap().into_iter().find(|r| r.dst.to_string() == "10.99.0.0/16").unwrap();
    nl.del_route(&route).unwrap();
    let bad = cni(&plugins, node, "CHECK", "c1", Some(pod), "eth0", &check);
    assert_eq!(bad.code(), 104, "{}", bad.json);
    assert!(bad.msg().contains("10.99.0.0/16"), "{}", bad.msg());
    nl.add_route(&route).unwrap();
    nl.del_address(eth0.index, "192.168.1.100/24".parse().unwrap()).unwrap();
    let bad = cni(&plugins, node, "CHECK", "c1", Some(pod), "eth0", &check);
    assert!(bad.msg().contains("192.168.1.100/24"), "{}", bad.json);
    let mut wrong_mode = check.clone();
    wrong_mode["mode"] = json!("private");
    let bad = cni(&plugins, node, "CHECK", "c1", Some(pod), "eth0", &wrong_mode);
    assert!(bad.msg().contains("private"), "{}", bad.json);
    let mut no_prev = c.clone();
    no_prev["prevResult"] = Value::Null;
    assert_eq!(cni(&plugins, node, "CHECK", "c1", Some(pod), "eth0", &no_prev).code(), 7);
}

#[test]
fn status_reports_the_master_and_the_pool() {
    let w = world(WorldSpec::seed("mvstatus").nodes(1).pods(1));
    let data = tempfile::tempdir().unwrap();
    let (plugins, node) = (PluginDir::ours(), &w.node(0).netns);
    let mut c = seed_conf("1.1.0", data.path());
    assert!(cni(&plugins, node, "STATUS", "", None, "", &c).ok);
    let mut nl = node.netlink().unwrap();
    let enp = nl.link("enp0s3").unwrap();
    nl.set_up(enp.index, false).unwrap();
    let down = cni(&plugins, node, "STATUS", "", None, "", &c);
    assert_eq!(down.code(), 50, "{}", down.json);
    assert!(down.msg().contains("enp0s3") && down.msg().contains("down"), "{}", down.msg());
    nl.set_up(enp.index, true).unwrap();
    let mut missing = c.clone();
    missing["master"] = json!("enp7s0");
    let gone = cni(&plugins, node, "STATUS", "", None, "", &missing);
    assert_eq!(gone.code(), 50);
    assert!(gone.msg().contains("enp7s0"));
    // An exhausted pool is reported by the IPAM, through macvlan.
    c["ipam"]["rangeEnd"] = json!("192.168.1.100");
    assert!(cni(&plugins, node, "ADD", "c1", Some(&w.pods[0]), "eth0", &c).ok);
    let full = cni(&plugins, node, "STATUS", "", None, "", &c);
    assert_eq!(full.code(), 50, "{}", full.json);
    assert!(full.msg().contains("exhausted"));
}

#[test]
fn gc_is_forwarded_to_the_ipam() {
    let w = world(WorldSpec::seed("mvgc").nodes(1).pods(2));
    let data = tempfile::tempdir().unwrap();
    let (plugins, node) = (PluginDir::ours(), &w.node(0).netns);
    let c = seed_conf("1.1.0", data.path());
    let keep = cni(&plugins, node, "ADD", "keep", Some(&w.pods[0]), "eth0", &c).ip();
    assert!(cni(&plugins, node, "ADD", "stale", Some(&w.pods[1]), "eth0", &c).ok);
    let mut gc = c.clone();
    gc["cni.dev/valid-attachments"] = json!([{"containerID": "keep", "ifname": "eth0"}]);
    assert!(cni(&plugins, node, "GC", "", None, "", &gc).ok);
    assert_eq!(reservations(data.path(), "macvlan-conf"), [keep.to_string()]);
}

#[test]
fn l2_only_mac_precedence_mtu_and_dns() {
    let w = world(WorldSpec::seed("mvl2").nodes(1).pods(3));
    let data = tempfile::tempdir().unwrap();
    let (plugins, node) = (PluginDir::ours(), &w.node(0).netns);
    // L2 only: link up, no address, no IPAM.
    let l2 =
        json!({"cniVersion": "1.1.0", "name": "l2", "type": "macvlan", "master": "enp0s3", "ipam": {}, "mtu": 1400});
    let out = cni(&plugins, node, "ADD", "c1", Some(&w.pods[0]), "eth0", &l2);
    assert!(out.ok, "{}", out.json);
    assert!(out.json.get("ips").is_none());
    assert_eq!(out.json["interfaces"][0]["mtu"], 1400);
    let mut nl = w.pods[0].netlink().unwrap();
    let eth0 = nl.link("eth0").unwrap();
    assert!(eth0.up);
    assert_eq!(eth0.mtu, 1400);
    // MAC: runtimeConfig beats CNI_ARGS beats the config.
    let mut c = seed_conf("1.1.0", data.path());
    c["mac"] = json!("02:00:00:00:00:01");
    let by_conf = cni(&plugins, node, "ADD", "c2", Some(&w.pods[1]), "eth0", &c);
    assert_eq!(by_conf.json["interfaces"][0]["mac"], "02:00:00:00:00:01");
    let by_args =
        cni_args(&plugins, node, "ADD", "c3", Some(&w.pods[2]), "eth0", "IgnoreUnknown=1;MAC=02:00:00:00:00:02", &c);
    assert_eq!(by_args.json["interfaces"][0]["mac"], "02:00:00:00:00:02");
    assert!(cni(&plugins, node, "DEL", "c3", Some(&w.pods[2]), "eth0", &c).ok);
    c["runtimeConfig"] = json!({"mac": "02:00:00:00:00:03"});
    let by_rc = cni_args(&plugins, node, "ADD", "c3", Some(&w.pods[2]), "eth0", "MAC=02:00:00:00:00:02", &c);
    assert_eq!(by_rc.json["interfaces"][0]["mac"], "02:00:00:00:00:03");
    // DNS: the IPAM's (from resolvConf) is kept beside the config's.
    let resolv = data.path().join("resolv.conf");
    std::fs::write(&resolv, "nameserver 192.168.1.53\nsearch lan\n").unwrap();
    let mut d = seed_conf("1.0.0", data.path());
    d["name"] = json!("dns");
    d["dns"] = json!({"nameservers": ["192.168.1.1"]});
    d["ipam"]["resolvConf"] = json!(resolv);
    let out = cni(&plugins, node, "ADD", "c4", Some(&w.pods[0]), "net1", &d);
    assert!(out.ok, "{}", out.json);
    assert_eq!(out.json["dns"], json!({"nameservers": ["192.168.1.1", "192.168.1.53"], "search": ["lan"]}));
}

#[test]
fn a_new_mac_for_a_reused_address_is_announced_to_the_lan() {
    let w = world(WorldSpec::seed("mvgarp").nodes(1).pods(2));
    let data = tempfile::tempdir().unwrap();
    let (plugins, node, ext) = (PluginDir::ours(), &w.node(0).netns, &w.external().netns);
    let c = seed_conf("1.0.0", data.path());
    let first = cni(&plugins, node, "ADD", "old", Some(&w.pods[0]), "eth0", &c);
    let ip = first.ip();
    assert!(reaches(ext, ip));
    let neigh_mac = || {
        let mut nl = ext.netlink().unwrap();
        nl.neighbours(None).unwrap().into_iter().find(|n| n.ip == ip).and_then(|n| n.mac).map(|m| m.to_string())
    };
    assert_eq!(neigh_mac().as_deref(), first.json["interfaces"][0]["mac"].as_str());
    assert!(cni(&plugins, node, "DEL", "old", Some(&w.pods[0]), "eth0", &c).ok);
    // The kernel ignores ARP updates within a second of the last one (locktime).
    std::thread::sleep(Duration::from_millis(1100));
    let second = cni_args(&plugins, node, "ADD", "new", Some(&w.pods[1]), "eth0", &format!("IP={ip}"), &c);
    assert_eq!(second.ip(), ip);
    let new_mac = second.json["interfaces"][0]["mac"].as_str().unwrap().to_string();
    assert_ne!(first.json["interfaces"][0]["mac"].as_str().unwrap(), new_mac);
    // The external device learnt the new MAC without sending anything itself.
    assert_eq!(neigh_mac(), Some(new_mac));
}

#[test]
fn extra_announcements_follow_after_add_returns() {
    let w = world(WorldSpec::seed("mvann").nodes(1).pods(1));
    let data = tempfile::tempdir().unwrap();
    let mut c = seed_conf("1.0.0", data.path());
    c["announceCount"] = json!(3);
    c["announceIntervalMs"] = json!(200);
    let ext = w.external();
    let mut nl = ext.netns.netlink().unwrap();
    let eth0 = nl.link("eth0").unwrap().index;
    let listener = {
        let ns = underlay_linux::Netns::open(ext.netns.path()).unwrap();
        std::thread::spawn(move || ns.run(|| underlay_linux::announce::capture_arp(eth0, Duration::from_millis(1500))))
    };
    std::thread::sleep(Duration::from_millis(100));
    let started = std::time::Instant::now();
    let out = cni(&PluginDir::ours(), &w.node(0).netns, "ADD", "c1", Some(&w.pods[0]), "eth0", &c);
    assert!(started.elapsed() < Duration::from_millis(350), "ADD does not wait for the spacing");
    let ip = match out.ip() {
        std::net::IpAddr::V4(v4) => v4.octets(),
        other => panic!("{other}"),
    };
    let seen = listener.join().unwrap().unwrap().unwrap();
    // Announcements: sender and target address both the pod's.
    let announced = seen.iter().filter(|p| p[14..18] == ip && p[24..28] == ip).count();
    assert_eq!(announced, 3, "one from the kernel, two from the detached announcer: {seen:?}");
}

#[test]
fn the_pod_interface_may_share_a_name_with_a_node_interface() {
    // Why the reference creates under a temporary name: old kernels checked the new
    // name against the creator's namespace. Here the pod's interface is called like the
    // node's own uplink.
    let w = world(WorldSpec::seed("mvsame").nodes(1).pods(1));
    let data = tempfile::tempdir().unwrap();
    let c = seed_conf("1.0.0", data.path());
    let out = cni(&PluginDir::ours(), &w.node(0).netns, "ADD", "c1", Some(&w.pods[0]), "enp0s3", &c);
    assert!(out.ok, "{}", out.json);
    assert_eq!(out.json["interfaces"][0]["name"], "enp0s3");
    assert!(links(&w.pods[0]).contains(&"enp0s3".to_string()));
    assert!(cni(&PluginDir::ours(), &w.node(0).netns, "DEL", "c1", Some(&w.pods[0]), "enp0s3", &c).ok);
    assert!(links(&w.node(0).netns).contains(&"enp0s3".to_string()), "the node's own link is untouched");
}

/// The detached announcers started for the pod at `netns` (found by their job).
fn announcers(netns: &std::path::Path) -> Vec<u32> {
    let want = format!("UNDERLAY_ANNOUNCE_JOB={}\n", netns.display());
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
            env.split(|b| *b == 0).any(|v| v.starts_with(want.as_bytes()))
        })
        .collect()
}

/// Whether any thread of `pid` is in the network namespace `ns`.
fn holds(pid: u32, ns: &std::path::Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let want = std::fs::metadata(ns).unwrap().ino();
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| {
            d.flatten().any(|t| std::fs::metadata(t.path().join("ns/net")).map(|m| m.ino() == want).unwrap_or(false))
        })
        .unwrap_or(false)
}

#[test]
fn the_announcer_keeps_no_namespace_alive_and_ends_after_del() {
    let w = world(WorldSpec::seed("mvanndel").nodes(1).pods(1));
    let data = tempfile::tempdir().unwrap();
    let mut c = seed_conf("1.0.0", data.path());
    c["announceCount"] = json!(16);
    c["announceIntervalMs"] = json!(1000);
    let (plugins, node, pod) = (PluginDir::ours(), &w.node(0).netns, &w.pods[0]);
    assert!(cni(&plugins, node, "ADD", "c1", Some(pod), "eth0", &c).ok);
    std::thread::sleep(Duration::from_millis(300));
    let found = announcers(pod.path());
    assert_eq!(found.len(), 1, "one announcer for the pod");
    // Between rounds it is not in the pod's namespace (it would keep it alive).
    assert!(!holds(found[0], pod.path()), "the announcer sits in the pod's namespace");
    assert!(cni(&plugins, node, "DEL", "c1", Some(pod), "eth0", &c).ok);
    // The next round finds the link gone and ends the job.
    let deadline = std::time::Instant::now() + Duration::from_millis(2500);
    while !announcers(pod.path()).is_empty() {
        assert!(std::time::Instant::now() < deadline, "the announcer still runs after DEL");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_refused_second_container_del_leaves_the_first_owners_link() {
    let w = world(WorldSpec::seed("mvowner").nodes(1).pods(1));
    let data = tempfile::tempdir().unwrap();
    let c = seed_conf("1.0.0", data.path());
    let (plugins, node, pod) = (PluginDir::ours(), &w.node(0).netns, &w.pods[0]);
    assert!(cni(&plugins, node, "ADD", "first", Some(pod), "eth0", &c).ok);
    let eth0 = pod.netlink().unwrap().link("eth0").unwrap();
    assert_eq!(eth0.alias.as_deref(), Some("cni:first"), "ADD marks the link it made");
    let second = cni(&plugins, node, "ADD", "second", Some(pod), "eth0", &c);
    assert_eq!(second.code(), 106, "{}", second.json);
    // The runtime cleans up after the failed ADD: that DEL must not take first's eth0.
    assert!(cni(&plugins, node, "DEL", "second", Some(pod), "eth0", &c).ok);
    assert_eq!(pod.netlink().unwrap().link("eth0").unwrap().index, eth0.index);
    assert!(cni(&plugins, node, "DEL", "first", Some(pod), "eth0", &c).ok);
    assert!(pod.netlink().unwrap().link_by_name("eth0").unwrap().is_none());
}
