//! `underlay doctor`: each problem provoked in a test world is found, with what to do,
//! and a healthy world gets no warning.

mod support;

use serde_json::Value;
use support::*;
use underlay_linux::Netns;
use underlay_linux::world::WorldSpec;

/// `doctor ARGS --format json`: exit code and the findings, less the one about the real
/// machine's platform (DMI), which is true or not of the test machine, not the world.
fn doctor(u: &Underlay, args: &[&str]) -> (i32, Value) {
    let mut all = vec!["doctor"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--format", "json"]);
    let out = u.run(&all);
    assert!(out.code == 0 || out.code == 1, "stdout: {}\nstderr: {}", out.stdout, out.stderr);
    let mut report = out.json();
    report["findings"]
        .as_array_mut()
        .unwrap()
        .retain(|f| f["check"] != "platform-filters-macs" && f["check"] != "platform");
    (out.code, report)
}

/// Names of findings at warning or error (not the passed checks, "ok", nor "info").
fn problems(report: &Value) -> Vec<String> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] != "info" && f["severity"] != "ok")
        .map(|f| f["check"].as_str().unwrap().to_string())
        .collect()
}

fn finding<'r>(report: &'r Value, check: &str) -> &'r Value {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["check"] == check)
        .unwrap_or_else(|| panic!("no {check} finding in {report:#}"))
}

fn ip(ns: &Netns, args: &[&str]) {
    let st = ns.command("ip").args(args).status().unwrap();
    assert!(st.success(), "ip {args:?}");
}

#[test]
fn a_healthy_world_gets_no_warning() {
    let w = world(WorldSpec::seed("dochealthy").nodes(1).pods(0));
    let u = Underlay::on(&w.node(0).netns);
    u.lan_with_web();
    let (code, report) = doctor(&u, &["lan", "--probe"]);
    assert_eq!(code, 0, "{report:#}");
    assert!(problems(&report).is_empty(), "{report:#}");
    insta::assert_json_snapshot!("doctor_healthy", report);
    // Host access on: the isolation finding says so.
    u.run(&["host-access", "enable", "lan"]).ok();
    let (code, report) = doctor(&u, &["lan", "--probe"]);
    assert_eq!(code, 0, "{report:#}");
    assert!(problems(&report).is_empty(), "the shim is not a same-subnet shim: {report:#}");
    assert!(finding(&report, "host-isolation")["finding"].as_str().unwrap().contains("host access to lan is on"));
    u.run(&["stop", "web"]).ok();
    u.run(&["host-access", "disable", "lan"]).ok();
}

#[test]
fn a_switch_dropping_unknown_macs_is_found_by_the_probe() {
    let w = world(WorldSpec::seed("docdrop").nodes(1).pods(0).drop_unknown_macs(true));
    let u = Underlay::on(&w.node(0).netns);
    u.seed_network("lan");
    // Passively nothing shows; only the probe can tell.
    let (code, report) = doctor(&u, &["lan"]);
    assert_eq!((code, problems(&report)), (0, vec![]), "{report:#}");
    let (code, report) = doctor(&u, &["lan", "--probe"]);
    assert_eq!(code, 1);
    assert_eq!(problems(&report), ["unknown-macs-dropped"]);
    insta::assert_json_snapshot!("doctor_unknown_macs_dropped", report);
}

#[test]
fn a_duplicate_address_on_the_lan_is_found() {
    let w = world(WorldSpec::seed("docdup").nodes(1).pods(0));
    let u = Underlay::on(&w.node(0).netns);
    u.lan_with_web();
    // The external device takes the endpoint's address too.
    ip(&w.external().netns, &["addr", "add", "192.168.1.100/24", "dev", "eth0"]);
    let (code, report) = doctor(&u, &["lan", "--probe"]);
    assert_eq!(code, 1);
    assert_eq!(problems(&report), ["address-in-use"]);
    let text = finding(&report, "address-in-use")["finding"].as_str().unwrap().to_string();
    assert!(text.contains("192.168.1.100") && text.contains(&w.external().mac.to_string()), "{text}");
    u.run(&["stop", "web"]).ok();
}

#[test]
fn an_mtu_above_the_parents_is_found() {
    let w = world(WorldSpec::seed("docmtu").nodes(1).pods(0));
    let node = &w.node(0).netns;
    let u = Underlay::on(node);
    u.run(&["network", "create", "--subnet", "192.168.1.0/24", "--mtu", "1500", "-o", "parent=enp0s3", "lan"]).ok();
    ip(node, &["link", "set", "enp0s3", "mtu", "1400"]);
    let (code, report) = doctor(&u, &["lan"]);
    assert_eq!(code, 1);
    assert_eq!(problems(&report), ["mtu-mismatch"]);
    insta::assert_json_snapshot!("doctor_mtu_mismatch", report);
    // The table says the same, for people.
    let out = u.run(&["doctor", "lan"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stdout.contains("what to do: raise enp0s3's MTU") && out.stdout.contains("--mtu 1400 or less"),
        "{}",
        out.stdout
    );
}

#[test]
fn the_seeds_same_subnet_shim_is_found() {
    let w = world(WorldSpec::seed("docshim").nodes(1).pods(0));
    let node = &w.node(0).netns;
    let u = Underlay::on(node);
    // What the seed did by hand.
    ip(node, &["link", "add", "macvlan0", "link", "enp0s3", "type", "macvlan", "mode", "bridge"]);
    ip(node, &["addr", "add", "192.168.1.254/24", "dev", "macvlan0"]);
    ip(node, &["link", "set", "macvlan0", "up"]);
    let (code, report) = doctor(&u, &["--parent", "enp0s3"]);
    assert_eq!(code, 1);
    assert_eq!(problems(&report), ["same-subnet-shim"]);
    let text = finding(&report, "same-subnet-shim")["finding"].as_str().unwrap().to_string();
    assert!(text.contains("macvlan0") && text.contains("192.168.1.0/24"), "{text}");
    // Any other interface with a route to the same subnet is named too.
    ip(node, &["link", "del", "macvlan0"]);
    ip(node, &["link", "add", "other0", "type", "veth", "peer", "name", "other1"]);
    ip(node, &["addr", "add", "192.168.1.253/24", "dev", "other0"]);
    ip(node, &["link", "set", "other0", "up"]);
    ip(node, &["link", "set", "other1", "up"]);
    let (_, report) = doctor(&u, &["--parent", "enp0s3"]);
    assert_eq!(problems(&report), ["subnet-on-two-interfaces"]);
    let text = finding(&report, "subnet-on-two-interfaces")["finding"].as_str().unwrap().to_string();
    assert!(text.contains("enp0s3 and other0"), "{text}");
}

#[test]
fn a_missing_or_down_parent_is_found() {
    let w = world(WorldSpec::seed("docdown").nodes(1).pods(0));
    let node = &w.node(0).netns;
    let u = Underlay::on(node);
    u.seed_network("lan");
    ip(node, &["link", "set", "enp0s3", "down"]);
    let (code, report) = doctor(&u, &["lan", "--probe"]);
    assert_eq!(code, 1);
    assert_eq!(problems(&report), ["parent-down"]);
    assert_eq!(finding(&report, "parent-down")["fix"], "ip link set enp0s3 up");
    ip(node, &["link", "set", "enp0s3", "up"]);
    // The switch's end unplugged: up, but no carrier.
    ip(&w.switch, &["link", "set", &w.node(0).port, "down"]);
    let (code, report) = doctor(&u, &["lan"]);
    assert_eq!((code, problems(&report)), (1, vec!["parent-no-carrier".to_string()]), "{report:#}");
    let (code, report) = doctor(&u, &["--parent", "nope0"]);
    assert_eq!(code, 1);
    assert_eq!(problems(&report), ["parent-missing"]);
}

#[test]
fn doctor_needs_a_network_or_a_parent() {
    let w = world(WorldSpec::seed("docusage").nodes(1).pods(0));
    let u = Underlay::on(&w.node(0).netns);
    let out = u.run(&["doctor"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("--parent"), "{}", out.stderr);
    let out = u.run(&["doctor", "nonet"]);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("nonet"), "{}", out.stderr);
}
