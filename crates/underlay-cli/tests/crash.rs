//! Concurrent runs, and a `kill -9` mid-run repaired by `underlay gc`.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use support::*;
use underlay_linux::world::WorldSpec;

#[test]
fn twenty_concurrent_runs_get_twenty_addresses() {
    let w = world(WorldSpec::seed("cliconc").nodes(1).pods(0));
    let u = Underlay::on(&w.node(0).netns);
    u.seed_network("lan");
    let children: Vec<_> = (0..20)
        .map(|i| {
            u.spawn(&["run", "--network", "lan", "-d", "--name", &format!("c{i}"), "--", "/bin/busybox", "sleep", "60"])
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let eps = u.ps();
    assert_eq!(eps.len(), 20);
    let ips: HashSet<String> = eps.iter().map(|e| e["ips"][0].as_str().unwrap().to_string()).collect();
    assert_eq!(ips.len(), 20, "{ips:?}");
    let macs: HashSet<String> = eps.iter().map(|e| e["mac"].as_str().unwrap().to_string()).collect();
    assert_eq!(macs.len(), 20);
    // The seed's range covers the external device's address (.9): when the round
    // reaches it, the probe finds the device and the address is held for it instead.
    let holds = u.run(&["network", "holds", "lan", "--format", "json"]).ok().json();
    let held: Vec<String> = holds.as_array().unwrap().iter().map(|h| h["ip"].as_str().unwrap().to_string()).collect();
    let ext = w.external();
    assert!(held.iter().all(|ip| *ip == ext.ip.addr().to_string()), "{holds:#}");
    assert!(holds.as_array().unwrap().iter().all(|h| h["mac"] == ext.mac.to_string()), "{holds:#}");
    assert_eq!(u.reservations("lan").len(), 20 + held.len());
    let names: Vec<String> = (0..20).map(|i| format!("c{i}")).collect();
    let mut args = vec!["stop", "-t", "5"];
    args.extend(names.iter().map(String::as_str));
    u.run(&args).ok();
    assert!(u.ps().is_empty());
    assert_eq!(u.reservations("lan"), held, "only the device's hold is left");
    assert!(u.namespaces().is_empty());
}

#[test]
fn a_killed_underlay_run_is_repaired_by_gc() {
    let w = world(WorldSpec::seed("clikill").nodes(1).pods(0));
    let u = Underlay::on(&w.node(0).netns);
    u.seed_network("lan");
    // A foreground run, killed with SIGKILL while its command runs.
    let mut fg = u.spawn(&["run", "--network", "lan", "--name", "victim", "--", "/bin/busybox", "sleep", "60"]);
    let ep = u.wait_running("victim");
    let command_pid = ep["process"]["pid"].as_u64().unwrap() as i32;
    let netns = ep["netns"].as_str().unwrap().to_string();
    fg.kill().unwrap();
    fg.wait().unwrap();
    // The command dies with it (it was started with a parent-death signal).
    for _ in 0..100 {
        if std::fs::metadata(format!("/proc/{command_pid}")).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(std::fs::metadata(format!("/proc/{command_pid}")).is_err(), "the command outlived its keeper");
    // Everything is still there until gc.
    assert_eq!(u.reservations("lan").len(), 1);
    assert!(std::path::Path::new(&netns).exists());
    assert_eq!(u.ps()[0]["name"], "victim");
    let out = u.run(&["gc"]);
    out.ok();
    assert!(out.stdout.contains("victim"), "{}", out.stdout);
    assert!(u.ps().is_empty());
    assert!(u.reservations("lan").is_empty(), "no reservation left");
    assert!(u.namespaces().is_empty(), "no namespace left");
    // And a reservation or namespace nobody records is released too.
    std::fs::create_dir_all(u.run_dir().join("netns")).unwrap();
    underlay_linux::Netns::create_in(&u.run_dir().join("netns"), "orphan").unwrap();
    u.run(&["gc"]).ok();
    assert!(u.namespaces().is_empty());
    // gc with nothing to do changes nothing.
    u.run(&["run", "--network", "lan", "-d", "--name", "alive", "--", "/bin/busybox", "sleep", "60"]).ok();
    u.run(&["gc"]).ok();
    assert_eq!(u.ps().len(), 1);
    u.run(&["stop", "alive"]).ok();
}

#[test]
fn a_foreground_run_returns_the_commands_code_and_releases() {
    let w = world(WorldSpec::seed("clifg").nodes(1).pods(0));
    let u = Underlay::on(&w.node(0).netns);
    u.seed_network("lan");
    let out = u.run(&[
        "run",
        "--network",
        "lan",
        "--ip",
        "192.168.1.77",
        "--",
        "/bin/busybox",
        "sh",
        "-c",
        "ip -4 addr show eth0; exit 3",
    ]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(out.stdout.contains("192.168.1.77/24"), "{}", out.stdout);
    assert!(u.ps().is_empty() && u.reservations("lan").is_empty() && u.namespaces().is_empty());
    let missing = u.run(&["run", "--network", "lan", "--", "/no/such/command"]);
    assert_eq!(missing.code, 127, "{}", missing.stderr);
    assert!(u.ps().is_empty() && u.reservations("lan").is_empty() && u.namespaces().is_empty());
    let no_net = u.run(&["run", "--network", "nope", "--", "/bin/busybox", "true"]);
    assert_eq!(no_net.code, 125);
    assert!(no_net.stderr.contains("nope"), "{}", no_net.stderr);
    assert!(u.namespaces().is_empty());
}
