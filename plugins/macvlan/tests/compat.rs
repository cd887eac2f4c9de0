//! The seed's exact config through ours and through the reference, side by side.

mod support;

use serde_json::Value;
use support::*;
use underlay_linux::world::WorldSpec;

/// The result with what legitimately differs between two runs taken out.
fn normalized(mut v: Value) -> Value {
    for i in v["interfaces"].as_array_mut().into_iter().flatten() {
        i["mac"] = "MAC".into();
        i["sandbox"] = "SANDBOX".into();
    }
    v
}

#[test]
fn the_seed_config_gives_the_references_result_in_every_version() {
    let w = world(WorldSpec::seed("mvcompat").nodes(1).pods(8));
    let node = &w.node(0).netns;
    let (ours, reference) = (PluginDir::ours(), PluginDir::new(Impl::Reference, Impl::Reference));
    for (i, version) in ["0.3.1", "0.4.0", "1.0.0", "1.1.0"].into_iter().enumerate() {
        let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let mine = cni(&ours, node, "ADD", "c1", Some(&w.pods[2 * i]), "eth0", &seed_conf(version, d1.path()));
        // The reference stops at 1.0.0; for 1.1.0 its 1.0.0 result is the baseline.
        let ref_version = if version == "1.1.0" { "1.0.0" } else { version };
        let theirs =
            cni(&reference, node, "ADD", "c1", Some(&w.pods[2 * i + 1]), "eth0", &seed_conf(ref_version, d2.path()));
        assert!(mine.ok && theirs.ok, "{version}: {} / {}", mine.json, theirs.json);
        let (mut a, mut b) = (normalized(mine.json.clone()), normalized(theirs.json.clone()));
        if version == "1.1.0" {
            assert_eq!(a["interfaces"][0]["mtu"], 1500, "1.1.0 reports the MTU");
            a["interfaces"][0].as_object_mut().unwrap().remove("mtu");
            b["cniVersion"] = "1.1.0".into();
        }
        assert_eq!(a, b, "{version}");
        assert_eq!(mine.ip().to_string(), "192.168.1.100");
        // Both really configured their pod the same way.
        let addrs = |ns: &underlay_linux::Netns| -> Vec<String> {
            let mut nl = ns.netlink().unwrap();
            let eth0 = nl.link("eth0").unwrap();
            // Link-local addresses come from each link's own MAC.
            let addrs = nl.addresses(Some(eth0.index)).unwrap().into_iter();
            addrs.filter(|a| !a.net.to_string().starts_with("fe80:")).map(|a| a.net.to_string()).collect()
        };
        assert_eq!(addrs(&w.pods[2 * i]), addrs(&w.pods[2 * i + 1]));
        let mac = mine.json["interfaces"][0]["mac"].as_str().unwrap();
        let mut nl = w.pods[2 * i].netlink().unwrap();
        assert_eq!(nl.link("eth0").unwrap().mac.unwrap().to_string(), mac, "the result's MAC is the link's");
        assert!(cni(&ours, node, "DEL", "c1", Some(&w.pods[2 * i]), "eth0", &seed_conf(version, d1.path())).ok);
        assert!(
            cni(&reference, node, "DEL", "c1", Some(&w.pods[2 * i + 1]), "eth0", &seed_conf(ref_version, d2.path())).ok
        );
        assert!(reservations(d1.path(), "macvlan-conf").is_empty());
    }
}

#[test]
fn ours_accepts_the_reference_host_local_and_its_store() {
    let w = world(WorldSpec::seed("mvmixed").nodes(1).pods(2));
    let node = &w.node(0).netns;
    let data = tempfile::tempdir().unwrap();
    let conf = seed_conf("1.0.0", data.path());
    let mixed = PluginDir::new(Impl::Ours, Impl::Reference);
    let a = cni(&mixed, node, "ADD", "c1", Some(&w.pods[0]), "eth0", &conf);
    let b = cni(&PluginDir::ours(), node, "ADD", "c2", Some(&w.pods[1]), "eth0", &conf);
    assert_eq!((a.ip().to_string(), b.ip().to_string()), ("192.168.1.100".into(), "192.168.1.101".into()));
    assert!(cni(&mixed, node, "DEL", "c2", Some(&w.pods[1]), "eth0", &conf).ok);
    assert!(cni(&PluginDir::ours(), node, "DEL", "c1", Some(&w.pods[0]), "eth0", &conf).ok);
    assert!(reservations(data.path(), "macvlan-conf").is_empty());
}

#[test]
fn in_process_host_local_gives_the_same_result_as_execing_it() {
    let w = world(WorldSpec::seed("mvinproc").nodes(1).pods(14));
    let node = &w.node(0).netns;
    let in_process = PluginDir::ours();
    // The same binary behind a shell script: no identity section to read, so it is
    // exec'd like any foreign IPAM.
    let exec = PluginDir::ours();
    let real = std::fs::read_link(exec.path().join("host-local")).unwrap();
    std::fs::remove_file(exec.path().join("host-local")).unwrap();
    std::fs::write(exec.path().join("host-local"), format!("#!/bin/sh\nexec {} \"$@\"\n", real.display())).unwrap();
    std::fs::set_permissions(exec.path().join("host-local"), std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .unwrap();
    assert_eq!(
        underlay::ipam::delegate::mode("host-local", &env_with_path(in_process.path())),
        underlay::ipam::delegate::Mode::InProcess
    );
    assert_eq!(
        underlay::ipam::delegate::mode("host-local", &env_with_path(exec.path())),
        underlay::ipam::delegate::Mode::Exec
    );
    for (i, version) in ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"].into_iter().enumerate() {
        let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let mut c1 = seed_conf(version, d1.path());
        let mut c2 = seed_conf(version, d2.path());
        for c in [&mut c1, &mut c2] {
            c["ipam"]["routes"] = serde_json::json!([{"dst": "10.0.0.0/8"}]);
            // Two stores on one LAN: probing would rightly move the second pod off the
            // first one's address, and the results are compared here, not the LAN.
            c["conflictDetection"] = serde_json::json!(false);
        }
        let a = cni(&in_process, node, "ADD", "c1", Some(&w.pods[2 * i]), "eth0", &c1);
        let b = cni(&exec, node, "ADD", "c1", Some(&w.pods[2 * i + 1]), "eth0", &c2);
        assert!(a.ok && b.ok, "{version}: {} / {}", a.json, b.json);
        assert_eq!(normalized(a.json), normalized(b.json), "{version}");
    }
}

fn env_with_path(dir: &std::path::Path) -> underlay::cni::Env {
    underlay::cni::Env::from_vars([("CNI_COMMAND", "STATUS"), ("CNI_PATH", dir.to_str().unwrap())]).unwrap()
}
