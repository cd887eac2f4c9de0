//! The parent's own address (node 0's enp0s3 carries 192.168.1.10 in the seed world) is
//! never handed out: skipped when allocating, refused when asked for, and an endpoint
//! that holds it anyway is a `doctor` error.

mod support;

use support::*;
use underlay_linux::world::WorldSpec;

fn sleeper<'a>(name: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["run", "--network", "lan", "-d", "--name", name];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--", "/bin/busybox", "sleep", "120"]);
    args
}

#[test]
fn a_range_covering_the_parents_address_hands_out_everything_else() {
    let w = world(WorldSpec::seed("haddrrange").nodes(1).pods(0));
    let u = Underlay::on(&w.node(0).netns);
    // .10 and .11: the node's own address and one other.
    u.lan("lan", &["--ip-range", "192.168.1.10/31"]).ok();
    u.run(&sleeper("a", &[])).ok();
    let a = u.wait_running("a");
    assert_eq!(a["ips"], serde_json::json!(["192.168.1.11/24"]), "{a:#}");
    // Nothing else is left: the host's address is not handed out as the last resort.
    let out = u.run(&sleeper("b", &[]));
    assert_eq!(out.code, 125, "{}", out.stderr);
    assert!(u.ps().iter().all(|e| e["name"] != "b"));
    // The shim's address is picked the same way: the range is full, so it fails too.
    let out = u.run(&["host-access", "enable", "lan"]);
    assert_ne!(out.code, 0, "{}", out.stdout);
    u.run(&["stop", "a"]).ok();
    let ha = u.run(&["host-access", "enable", "lan"]).ok().stdout.clone();
    assert!(ha.contains("192.168.1.11") && !ha.contains("192.168.1.10"), "{ha}");
    u.run(&["host-access", "disable", "lan"]).ok();
    assert_eq!(u.reservations("lan"), Vec::<String>::new());
}

#[test]
fn asking_for_the_parents_address_is_refused_and_leaves_nothing() {
    let w = world(WorldSpec::seed("haddrask").nodes(1).pods(0));
    let u = Underlay::on(&w.node(0).netns);
    u.seed_network("lan");
    let out = u.run(&sleeper("a", &["--ip", "192.168.1.10"]));
    assert_eq!(out.code, 125, "{}", out.stderr);
    assert!(out.stderr.contains("192.168.1.10 is enp0s3's own address on this host; choose another"), "{}", out.stderr);
    assert!(u.ps().is_empty() && u.namespaces().is_empty() && u.reservations("lan").is_empty());
    let out = u.run(&["host-access", "enable", "lan", "--address", "192.168.1.10"]);
    assert_eq!(out.code, 4, "{}", out.stderr);
    assert!(out.stderr.contains("192.168.1.10 is enp0s3's own address"), "{}", out.stderr);
    assert!(u.run(&["host-access", "status", "--format", "json"]).ok().json() == serde_json::json!([]));
    assert!(u.reservations("lan").is_empty());
    // Any other address is fine.
    u.run(&sleeper("a", &["--ip", "192.168.1.11"])).ok();
    u.wait_running("a");
    u.run(&["stop", "a"]).ok();
}

#[test]
fn doctor_reports_an_endpoint_holding_the_parents_address() {
    let w = world(WorldSpec::seed("haddrdoc").nodes(1).pods(0));
    let node = &w.node(0).netns;
    let u = Underlay::on(node);
    u.lan("lan", &["--ip-range", "192.168.1.96/27"]).ok();
    u.run(&sleeper("web", &["--ip", "192.168.1.100"])).ok();
    u.wait_running("web");
    let healthy = u.run(&["doctor", "lan", "--format", "json"]).json();
    // Passing checks are listed too (severity "ok"): only a problem would be wrong here.
    let problem =
        healthy["findings"].as_array().unwrap().iter().any(|f| f["check"] == "host-address" && f["severity"] != "ok");
    assert!(!problem, "{healthy:#}");
    // The host takes the endpoint's address afterwards (by hand): now they clash.
    assert!(node.command("ip").args(["addr", "add", "192.168.1.100/32", "dev", "enp0s3"]).status().unwrap().success());
    let out = u.run(&["doctor", "lan", "--format", "json"]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    let report = out.json();
    let clash = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["check"] == "host-address")
        .unwrap_or_else(|| panic!("no host-address finding: {report:#}"));
    assert_eq!(clash["severity"], "error");
    assert!(clash["finding"].as_str().unwrap().contains("web has 192.168.1.100, which is enp0s3's own address"));
    u.run(&["stop", "web"]).ok();
}

#[test]
fn a_range_of_only_the_parents_address_says_so() {
    let w = world(WorldSpec::seed("haddronly").nodes(1).pods(0));
    let u = Underlay::on(&w.node(0).netns);
    u.lan("lan", &["--ip-range", "192.168.1.10/32"]).ok();
    let out = u.run(&sleeper("a", &[]));
    assert_eq!(out.code, 125, "{}", out.stderr);
    assert!(
        out.stderr.contains("its range holds only 192.168.1.10") && out.stderr.contains("enp0s3's own address"),
        "{}",
        out.stderr
    );
    let out = u.run(&["host-access", "enable", "lan"]);
    assert_eq!(out.code, 4, "{}", out.stderr);
    assert!(u.ps().is_empty() && u.namespaces().is_empty() && u.reservations("lan").is_empty());
}
