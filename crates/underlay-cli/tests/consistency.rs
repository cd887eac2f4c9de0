//! The commands agree with each other and with the README: `doctor` and `host-access
//! status` see the same shim, JSON carries what tables show, exit codes as documented,
//! and messages in the CLI's own words.

mod support;

use serde_json::Value;
use support::*;
use underlay_linux::world::WorldSpec;

fn findings(u: &Underlay) -> (i32, Vec<Value>) {
    let out = u.run(&["doctor", "lan", "--format", "json"]);
    (out.code, out.json()["findings"].as_array().unwrap().clone())
}

#[test]
fn doctor_and_host_access_status_agree() {
    let w = world(WorldSpec::seed("c19agree").nodes(1).pods(0));
    let u = Underlay::on(&w.node(0).netns);
    u.lan("lan", &["--ip-range", "192.168.1.128/25"]).ok();
    u.run(&["host-access", "enable", "lan"]).ok();
    let status = u.run(&["host-access", "status", "--format", "json"]).ok().json();
    assert_eq!(status[0]["state"], "up", "{status:#}");
    // The sysctls recorded at enable are named as saved values, not as live ones.
    let saved = status[0]["saved_sysctls"].as_array().unwrap();
    assert!(saved.iter().any(|s| s["key"] == "net/ipv4/conf/enp0s3/arp_ignore" && s["saved_value"].is_string()));
    assert!(status[0].get("sysctls").is_none());
    // Passing checks are shown too.
    let (code, all) = findings(&u);
    assert_eq!(code, 0, "{all:#?}");
    for check in ["parent", "routes", "mtu", "host-address", "platform"] {
        assert!(all.iter().any(|f| f["check"] == check && f["severity"] == "ok"), "{check}: {all:#?}");
    }
    let text = u.run(&["doctor", "lan"]).ok().stdout.clone();
    assert!(text.lines().any(|l| l.starts_with("ok ")), "{text}");
    // The shim is deleted behind underlay's back: both say "missing", both exit 1.
    let shim = status[0]["shim"].as_str().unwrap().to_string();
    assert!(w.node(0).netns.netlink().unwrap().delete_link_by_name(&shim).unwrap());
    let out = u.run(&["host-access", "status"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stdout.contains("missing") && out.stderr.contains("host-access restore"),
        "{}{}",
        out.stdout,
        out.stderr
    );
    let (code, all) = findings(&u);
    assert_eq!(code, 1);
    let ha = all.iter().find(|f| f["check"] == "host-access").expect("a host-access finding");
    assert_eq!(ha["severity"], "error");
    assert!(ha["finding"].as_str().unwrap().contains("missing"), "{ha:#}");
    u.run(&["host-access", "restore"]).ok();
    u.run(&["host-access", "status"]).ok();
    // Disable twice is fine, as enable twice is.
    u.run(&["host-access", "disable", "lan"]).ok();
    let again = u.run(&["host-access", "disable", "lan"]).ok().stderr.clone();
    assert!(again.contains("not enabled"), "{again}");
    assert_eq!(u.run(&["host-access", "disable", "nope"]).code, 3);
}

#[test]
fn exit_codes_and_messages_as_documented() {
    let w = world(WorldSpec::seed("c19codes").nodes(1).pods(0));
    let u = Underlay::on(&w.node(0).netns);
    u.lan("lan", &["--ip-range", "192.168.1.128/25"]).ok();
    // A missing --netns path: not found (3).
    let out = u.run(&["attach", "lan", "--netns", "/run/netns/no-such-c19"]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(out.stderr.contains("/run/netns/no-such-c19"), "{}", out.stderr);
    let out = u.run(&["attach", "lan", "--pid", "999999999"]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert_eq!(u.run(&["inspect", "nope"]).code, 3);
    assert_eq!(u.run(&["logs", "nope"]).code, 3);
    assert_eq!(u.run(&["network", "inspect", "nope"]).code, 3);
    // The parent hint lists parents, not our own shims.
    u.run(&["host-access", "enable", "lan"]).ok();
    let out = u.run(&["network", "create", "--subnet", "10.1.0.0/24", "-o", "parent=enp9s9", "x"]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(out.stderr.contains("enp0s3") && !out.stderr.contains("ulh-"), "{}", out.stderr);
    u.run(&["host-access", "disable", "lan"]).ok();
    // The plugin's "master" is our parent: a network whose parent has gone since.
    let mut nl = w.node(0).netns.netlink().unwrap();
    nl.create_veth("c19a", "c19b", None).unwrap();
    u.run(&["network", "create", "--subnet", "10.1.0.0/24", "-o", "parent=c19a", "gone"]).ok();
    assert!(nl.delete_link_by_name("c19a").unwrap());
    let out = u.run(&["run", "--network", "gone", "--", "/bin/busybox", "true"]);
    assert_eq!(out.code, 125, "{}", out.stderr);
    assert!(out.stderr.contains("parent") && !out.stderr.contains("master"), "{}", out.stderr);
    assert!(u.ps().is_empty() && u.namespaces().is_empty());
}
