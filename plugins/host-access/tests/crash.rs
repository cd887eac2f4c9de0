//! `underlay-host-access` under failures and kills: an ADD that fails at any step after
//! it started changing things, or is SIGKILLed between any two steps, leaves nothing once
//! undone (by itself, or by the DEL that follows a kill): no shim, the master's ARP
//! sysctls back to what they were, no record. Steps are hit through the plugin's
//! fault-injection variable, honoured by debug builds only.

use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Stdio;

use serde_json::{Value, json};
use underlay_linux::world::{World, WorldSpec};

const ADD_STEPS: [&str; 5] = ["recorded", "shim", "sysctl", "route", "saved"];

enum Out {
    Ok,
    Failed(u64, String),
    Killed,
}

fn call(w: &World, command: &str, cid: &str, conf: &Value, fault: Option<&str>) -> Out {
    let mut cmd = w.node(0).netns.command(env!("CARGO_BIN_EXE_underlay-host-access"));
    cmd.env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", cid)
        .env("CNI_NETNS", "/proc/self/ns/net")
        .env("CNI_IFNAME", "eth0")
        .env("CNI_PATH", "/nonexistent")
        .env_remove(host_access::FAULT_VAR)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(f) = fault {
        cmd.env(host_access::FAULT_VAR, f);
    }
    let mut child = cmd.spawn().unwrap();
    child.stdin.take().unwrap().write_all(conf.to_string().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    if out.status.signal() == Some(9) {
        return Out::Killed;
    }
    if out.status.success() {
        return Out::Ok;
    }
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    Out::Failed(v["code"].as_u64().unwrap_or(0), format!("{} {}", v["msg"], v["details"]))
}

fn conf(data: &Path, address: &str, pod: &str) -> Value {
    json!({"cniVersion": "1.0.0", "name": "lan", "type": "underlay-host-access", "master": "enp0s3",
        "address": address, "dataDir": data,
        "prevResult": {"cniVersion": "1.0.0", "ips": [{"address": pod}]}})
}

/// Links, the master's ARP sysctls, and the record files: what must come back.
fn snapshot(w: &World, data: &Path) -> (Vec<String>, Vec<String>, Vec<String>) {
    let ns = &w.node(0).netns;
    let links = ns.netlink().unwrap().links().unwrap().into_iter().map(|l| l.name).collect();
    let sysctls = ["arp_ignore", "arp_announce"]
        .iter()
        .map(|k| ns.sysctl(&format!("net/ipv4/conf/enp0s3/{k}")).unwrap())
        .collect();
    let mut files: Vec<String> = std::fs::read_dir(data)
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    files.retain(|n| !n.ends_with(".lock"));
    (links, sysctls, files)
}

fn world(tag: &str) -> World {
    let w = World::build(WorldSpec::seed(tag).nodes(1).pods(0)).expect("build the world (run as root)");
    // Values other than the shim's (1 and 2), so a missing restore shows.
    w.node(0).netns.set_sysctl("net/ipv4/conf/enp0s3/arp_ignore", "0").unwrap();
    w.node(0).netns.set_sysctl("net/ipv4/conf/enp0s3/arp_announce", "1").unwrap();
    w
}

#[test]
fn a_failure_at_any_add_step_leaves_nothing() {
    let w = world("hafail");
    let data = tempfile::tempdir().unwrap();
    let before = snapshot(&w, data.path());
    let c = conf(data.path(), "192.168.1.254", "192.168.1.130/24");
    for step in &ADD_STEPS[..4] {
        match call(&w, "ADD", "c1", &c, Some(&format!("{step}:fail"))) {
            Out::Failed(_, msg) => assert!(msg.contains(step), "{step}: {msg}"),
            _ => panic!("{step}: the injected failure did not fail the ADD"),
        }
        assert_eq!(snapshot(&w, data.path()), before, "a failure after {step} left something");
    }
    // A failure of a second pod's ADD leaves the first pod's shim and route alone.
    assert!(matches!(call(&w, "ADD", "c1", &c, None), Out::Ok));
    let with_one = snapshot(&w, data.path());
    let c2 = conf(data.path(), "192.168.1.254", "192.168.1.131/24");
    assert!(matches!(call(&w, "ADD", "c2", &c2, Some("route:fail")), Out::Failed(..)));
    assert_eq!(snapshot(&w, data.path()), with_one);
    let routes = w.node(0).netns.netlink().unwrap().routes().unwrap();
    assert!(routes.iter().any(|r| r.dst.to_string() == "192.168.1.130/32"), "{routes:?}");
    assert!(!routes.iter().any(|r| r.dst.to_string() == "192.168.1.131/32"), "{routes:?}");
    assert!(matches!(call(&w, "DEL", "c1", &c, None), Out::Ok));
    assert_eq!(snapshot(&w, data.path()), before);
}

#[test]
fn a_kill_at_any_step_is_undone_by_del() {
    let w = world("hakill");
    let data = tempfile::tempdir().unwrap();
    let before = snapshot(&w, data.path());
    let c = conf(data.path(), "192.168.1.254", "192.168.1.130/24");
    for step in ADD_STEPS {
        assert!(matches!(call(&w, "ADD", "c1", &c, Some(&format!("{step}:kill"))), Out::Killed), "{step}");
        assert!(matches!(call(&w, "DEL", "c1", &c, None), Out::Ok), "DEL after a kill at {step}");
        assert_eq!(snapshot(&w, data.path()), before, "DEL after a kill at {step} left something");
        // A kill, then the runtime's retried ADD, then DEL.
        assert!(matches!(call(&w, "ADD", "c1", &c, Some(&format!("{step}:kill"))), Out::Killed), "{step}");
        assert!(matches!(call(&w, "ADD", "c1", &c, None), Out::Ok), "ADD after a kill at {step}");
        assert_eq!(w.node(0).netns.sysctl("net/ipv4/conf/enp0s3/arp_ignore").unwrap(), "1");
        assert!(matches!(call(&w, "DEL", "c1", &c, None), Out::Ok));
        assert_eq!(snapshot(&w, data.path()), before, "ADD, DEL after a kill at {step} left something");
    }
    for step in ["del-routes", "del-shim"] {
        assert!(matches!(call(&w, "ADD", "c1", &c, None), Out::Ok));
        assert!(matches!(call(&w, "DEL", "c1", &c, Some(&format!("{step}:kill"))), Out::Killed), "{step}");
        assert!(matches!(call(&w, "DEL", "c1", &c, None), Out::Ok), "DEL after a kill at {step}");
        assert_eq!(snapshot(&w, data.path()), before, "DEL after a DEL killed at {step} left something");
    }
}

#[test]
fn an_unusable_record_path_or_address_changes_nothing() {
    let w = world("haunusable");
    let data = tempfile::tempdir().unwrap();
    let before = snapshot(&w, data.path());
    // The record cannot be written: refused before the shim is made.
    let c = conf(data.path(), "192.168.1.254", "192.168.1.130/24");
    assert!(matches!(call(&w, "ADD", "c1", &c, Some("write-record:fail")), Out::Failed(5, _)));
    assert_eq!(snapshot(&w, data.path()), before);
    for (address, pod) in [
        ("255.255.255.255", "192.168.1.130/24"),
        ("0.0.0.0", "192.168.1.130/24"),
        ("224.0.0.1", "192.168.1.130/24"),
        ("127.0.0.1", "192.168.1.130/24"),
        ("fd00::1", "192.168.1.130/24"),
    ] {
        match call(&w, "ADD", "c1", &conf(data.path(), address, pod), None) {
            Out::Failed(7, msg) => assert!(msg.contains(address), "{address}: {msg}"),
            _ => panic!("{address} was not refused with code 7"),
        }
        assert_eq!(snapshot(&w, data.path()), before, "{address}");
    }
    // A damaged record is moved aside, reported, and the ADD goes on.
    std::fs::write(data.path().join("lan.json"), b"{\"shim\": ").unwrap();
    assert!(matches!(call(&w, "ADD", "c1", &c, None), Out::Ok));
    assert!(matches!(call(&w, "DEL", "c1", &c, None), Out::Ok));
    let (links, sysctls, files) = snapshot(&w, data.path());
    assert_eq!((links, sysctls), (before.0.clone(), before.1.clone()));
    assert!(files.len() == 1 && files[0].starts_with("lan.bad-"), "{files:?}");
}
