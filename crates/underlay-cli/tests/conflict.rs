//! Conflict detection through `underlay` (issue 15): `run` never takes an address a
//! device on the LAN uses; `--ip` on such an address fails naming the device's MAC;
//! the holds are listed and released by `underlay network holds | release-hold`.

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
fn run_skips_and_refuses_an_address_in_use_and_holds_are_listed_and_released() {
    let w = world(WorldSpec::seed("clicd").nodes(1).pods(0));
    let ext = w.external();
    for ip in ["192.168.1.96/24", "192.168.1.99/24"] {
        ext.also_use(ip.parse().unwrap()).unwrap();
    }
    let u = Underlay::on(&w.node(0).netns);
    u.lan("lan", &["--ip-range", "192.168.1.96/28"]).ok();

    u.run(&sleeper("a", &[])).ok();
    let a = u.wait_running("a");
    assert_eq!(a["ips"], serde_json::json!(["192.168.1.97/24"]), "{a:#}");
    let holds = u.run(&["network", "holds", "lan", "--format", "json"]).ok().json();
    assert_eq!(holds[0]["ip"], "192.168.1.96", "{holds:#}");
    assert_eq!(holds[0]["mac"], ext.mac.to_string(), "{holds:#}");
    let shown = u.run(&["network", "holds", "lan"]).ok().stdout.clone();
    assert!(shown.contains("192.168.1.96") && shown.contains(&ext.mac.to_string()), "{shown}");

    let report = u.run(&["doctor", "lan", "--format", "json"]).json();
    let hold = report["findings"].as_array().unwrap().iter().find(|f| f["check"] == "foreign-hold").cloned();
    let hold = hold.unwrap_or_else(|| panic!("no foreign-hold finding: {report:#}"));
    assert!(hold["finding"].as_str().unwrap_or_default().contains(&ext.mac.to_string()), "{hold:#}");

    // Asked for: refused, naming the device; nothing new is left.
    let before = (u.reservations("lan"), u.namespaces());
    let out = u.run(&sleeper("asked", &["--ip", "192.168.1.99"]));
    assert_eq!(out.code, 125, "{}", out.stderr);
    assert!(out.stderr.contains("192.168.1.99") && out.stderr.contains(&ext.mac.to_string()), "{}", out.stderr);
    assert!(u.ps().iter().all(|e| e["name"] != "asked"));
    assert_eq!((u.reservations("lan"), u.namespaces()), before);

    // Releasing: an address that is no hold is named; --expired keeps a live one.
    assert_eq!(u.run(&["network", "release-hold", "lan", "192.168.1.97"]).code, 3);
    u.run(&["network", "release-hold", "lan", "--expired"]).ok();
    assert_eq!(u.run(&["network", "holds", "lan", "--format", "json"]).ok().json().as_array().unwrap().len(), 1);
    let out = u.run(&["network", "release-hold", "lan", "192.168.1.96"]).ok().stdout.clone();
    assert!(out.contains("192.168.1.96"), "{out}");
    assert_eq!(u.run(&["network", "holds", "lan", "--format", "json"]).ok().json(), serde_json::json!([]));
    u.run(&["stop", "a"]).ok();
}

#[test]
fn run_with_a_stable_mac_keeps_it_across_restarts() {
    let w = world(WorldSpec::seed("clistable").nodes(1).pods(0));
    let u = Underlay::on(&w.node(0).netns);
    u.seed_network("lan");
    let sleeper_stable = |name| {
        vec!["run", "--network", "lan", "-d", "--name", name, "--stable-mac", "--", "/bin/busybox", "sleep", "120"]
    };
    u.run(&sleeper_stable("web")).ok();
    let first = u.wait_running("web")["mac"].clone();
    assert!(first.is_string(), "{first}");
    u.run(&["stop", "web"]).ok();
    u.run(&sleeper_stable("web")).ok();
    assert_eq!(u.wait_running("web")["mac"], first, "the same name keeps its MAC");
    u.run(&sleeper_stable("db")).ok();
    assert_ne!(u.wait_running("db")["mac"], first);
    // Without a name there is nothing stable to derive from.
    let out = u.run(&["run", "--network", "lan", "--stable-mac", "--", "/bin/true"]);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("--name"), "{}", out.stderr);
    u.run(&["stop", "web", "db"]).ok();
}

#[test]
fn host_access_probes_the_shims_address() {
    let w = world(WorldSpec::seed("clicdha").nodes(1).pods(0));
    let ext = w.external();
    for ip in ["192.168.1.96/24", "192.168.1.99/24"] {
        ext.also_use(ip.parse().unwrap()).unwrap();
    }
    let u = Underlay::on(&w.node(0).netns);
    u.lan("lan", &["--ip-range", "192.168.1.96/28"]).ok();
    let shown = u.run(&["host-access", "enable", "lan"]).ok().stdout.clone();
    assert!(shown.contains("192.168.1.97") && !shown.contains("192.168.1.96"), "{shown}");
    let holds = u.run(&["network", "holds", "lan", "--format", "json"]).ok().json();
    assert_eq!(holds[0]["ip"], "192.168.1.96", "{holds:#}");
    u.run(&["host-access", "disable", "lan"]).ok();
    let out = u.run(&["host-access", "enable", "lan", "--address", "192.168.1.99"]);
    assert_eq!(out.code, 4, "{}", out.stderr);
    assert!(out.stderr.contains("192.168.1.99") && out.stderr.contains(&ext.mac.to_string()), "{}", out.stderr);
    assert_eq!(u.reservations("lan"), vec!["192.168.1.96".to_string()], "only the device's hold");
}
