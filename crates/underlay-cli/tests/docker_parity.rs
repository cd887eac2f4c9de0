//! Docker habits that work: `--ip` anywhere in the subnet (holders named when taken),
//! names/IDs/unique ID prefixes, several names per command, detached commands' exit
//! codes and logs, and hints where our shape differs.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::*;
use underlay_linux::world::WorldSpec;

fn sleeper<'a>(name: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["run", "--network", "lan", "-d", "--name", name];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--", "/bin/busybox", "sleep", "120"]);
    args
}

/// `ps -a --format json`.
fn ps_all(u: &Underlay) -> Vec<Value> {
    u.run(&["ps", "-a", "--format", "json"]).ok().json().as_array().unwrap().clone()
}

fn logs(u: &Underlay) -> Vec<String> {
    std::fs::read_dir(u.state_dir().join("logs"))
        .map(|rd| rd.flatten().filter_map(|e| e.file_name().into_string().ok()).collect())
        .unwrap_or_default()
}

#[test]
fn ip_anywhere_in_the_subnet_and_the_holder_named() {
    let w = world(WorldSpec::seed("c19ip").nodes(1).pods(0));
    let u = Underlay::on(&w.node(0).netns);
    u.lan("lan", &["--ip-range", "192.168.1.128/25", "--aux-address", "printer=192.168.1.5"]).ok();
    // Outside --ip-range but in the subnet: Docker grants it, so do we.
    u.run(&sleeper("a", &["--ip", "192.168.1.20"])).ok();
    let a = u.wait_running("a");
    assert_eq!(a["ips"], serde_json::json!(["192.168.1.20/24"]), "{a:#}");
    // Allocation still keeps to the range.
    u.run(&sleeper("b", &[])).ok();
    let b = u.wait_running("b");
    assert!(b["ips"][0].as_str().unwrap().starts_with("192.168.1.1"), "{b:#}");
    u.run(&["host-access", "enable", "lan", "--address", "192.168.1.250"]).ok();
    for (ip, code, holder) in [
        ("192.168.1.20", 125, "endpoint \"a\""),
        ("192.168.1.5", 125, "aux address \"printer\""),
        ("192.168.1.1", 125, "gateway"),
        ("192.168.1.250", 125, "host-access shim"),
        ("10.9.9.9", 125, "outside network \"lan\"'s subnet 192.168.1.0/24"),
        ("192.168.1.255", 125, "broadcast"),
    ] {
        let out = u.run(&sleeper("c", &["--ip", ip]));
        assert_eq!(out.code, code, "{ip}: {}", out.stderr);
        assert!(out.stderr.contains(holder), "{ip}: {}", out.stderr);
    }
    assert!(u.ps().iter().all(|e| e["name"] != "c"));
    u.run(&["stop", "a", "b"]).ok();
    u.run(&["host-access", "disable", "lan"]).ok();
    assert_eq!(u.reservations("lan"), vec!["192.168.1.5".to_string()]);
    assert!(u.namespaces().is_empty());
}

#[test]
fn names_full_ids_and_unique_prefixes() {
    let w = world(WorldSpec::seed("c19ids").nodes(1).pods(0));
    let u = Underlay::on(&w.node(0).netns);
    let id = u.lan("lan", &[]).ok().stdout.trim().to_string();
    // A network by full ID and by a prefix of it.
    for key in [id.as_str(), &id[..3]] {
        let n = u.run(&["network", "inspect", key]).ok().json();
        assert_eq!(n[0]["name"], "lan", "{key}");
    }
    u.run(&sleeper("a", &[])).ok();
    let a = u.wait_running("a");
    let aid = a["id"].as_str().unwrap().to_string();
    // One character is enough when it is unique.
    let one = u.run(&["inspect", &aid[..1]]).ok().json();
    assert_eq!(one[0]["name"], "a");
    // Two exited records whose IDs share a prefix: ambiguous, both named.
    let record = |name: &str, id: &str| {
        let mut v = a.clone();
        v["id"] = id.into();
        v["name"] = name.into();
        v["phase"] = "exited".into();
        v["exit_code"] = 0.into();
        v.as_object_mut().unwrap().remove("process");
        v.as_object_mut().unwrap().remove("keeper");
        std::fs::write(u.state_dir().join("endpoints").join(format!("{id}.json")), v.to_string()).unwrap();
    };
    record("x1", "zz110000000000000000000000000000");
    record("x2", "zz120000000000000000000000000000");
    let out = u.run(&["rm", "zz1"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("ambiguous") && out.stderr.contains("x1") && out.stderr.contains("x2"),
        "{}",
        out.stderr
    );
    u.run(&["rm", "zz11"]).ok();
    u.run(&["rm", "zz"]).ok();
    assert!(ps_all(&u).iter().all(|e| e["name"] != "x1" && e["name"] != "x2"));
    assert_eq!(u.run(&["network", "rm", &id[..4]]).code, 4, "in use");
    u.run(&["stop", &aid[..6]]).ok();
    u.run(&["network", "rm", &id[..4]]).ok();
}

#[test]
fn several_names_each_acted_on_and_each_failure_reported() {
    let w = world(WorldSpec::seed("c19multi").nodes(1).pods(0));
    let u = Underlay::on(&w.node(0).netns);
    u.lan("lan", &[]).ok();
    for n in ["a", "b"] {
        u.run(&sleeper(n, &[])).ok();
        u.wait_running(n);
    }
    let out = u.run(&["inspect", "a", "nope", "b"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("nope"), "{}", out.stderr);
    let names: Vec<Value> = out.json().as_array().unwrap().iter().map(|e| e["name"].clone()).collect();
    assert_eq!(names, ["a", "b"]);
    let out = u.run(&["stop", "-t", "1", "a", "nope", "b"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("no endpoint named \"nope\""), "{}", out.stderr);
    assert!(u.ps().is_empty(), "{:?}", u.ps());
    u.run(&["network", "create", "--subnet", "10.7.0.0/24", "-o", "parent=enp0s3", "other"]).ok();
    let out = u.run(&["network", "rm", "lan", "nope", "other"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stdout.contains("lan") && out.stdout.contains("other"), "{}", out.stdout);
    assert_eq!(u.run(&["network", "ls", "-q"]).ok().stdout, "");
    // One name keeps its own exit code.
    assert_eq!(u.run(&["stop", "nope"]).code, 3);
}

#[test]
fn detached_commands_keep_their_exit_code_and_log_until_removed() {
    let w = world(WorldSpec::seed("c19logs").nodes(1).pods(0));
    let u = Underlay::on(&w.node(0).netns);
    u.lan("lan", &[]).ok();
    // Not found: 127 like the foreground, the error on stderr, nothing left.
    let out = u.run(&["run", "--network", "lan", "-d", "--", "/no/such/cmd"]);
    assert_eq!(out.code, 127, "{}", out.stderr);
    assert!(out.stderr.contains("/no/such/cmd: command not found"), "{}", out.stderr);
    assert!(ps_all(&u).is_empty() && logs(&u).is_empty() && u.namespaces().is_empty());
    assert!(u.reservations("lan").is_empty());
    // Ends on its own: gone from `ps`, shown by `ps -a` with its code, its log kept.
    u.run(&["run", "--network", "lan", "-d", "--name", "e", "--", "/bin/busybox", "sh", "-c", "echo hello; exit 3"])
        .ok();
    let exited = (0..250)
        .find_map(|_| {
            std::thread::sleep(Duration::from_millis(20));
            ps_all(&u).into_iter().find(|e| e["name"] == "e" && e["phase"] == "exited")
        })
        .expect("e exits");
    assert_eq!(exited["exit_code"], 3);
    assert_eq!(exited["status"], "exited(3)");
    assert!(u.ps().is_empty());
    assert!(u.reservations("lan").is_empty() && u.namespaces().is_empty());
    assert_eq!(u.run(&["logs", "e"]).ok().stdout, "hello\n");
    // The name stays taken until removed, as in Docker.
    assert_eq!(u.run(&sleeper("e", &[])).code, 125);
    // `rm` of a running endpoint is refused; an exited one does not keep its network,
    // and `stop` removes it as `rm` does.
    u.run(&sleeper("live", &[])).ok();
    u.wait_running("live");
    let out = u.run(&["rm", "live"]);
    assert_eq!(out.code, 4, "{}", out.stderr);
    assert!(out.stderr.contains("underlay stop live"), "{}", out.stderr);
    u.run(&["stop", "-t", "1", "live"]).ok();
    u.run(&["network", "create", "--subnet", "10.8.0.0/24", "-o", "parent=enp0s3", "side"]).ok();
    u.run(&["run", "--network", "side", "-d", "--name", "brief", "--", "/bin/busybox", "true"]).ok();
    while !ps_all(&u).iter().any(|e| e["name"] == "brief" && e["phase"] == "exited") {
        std::thread::sleep(Duration::from_millis(20));
    }
    u.run(&["network", "rm", "side"]).ok();
    u.run(&["stop", "brief"]).ok();
    u.run(&["rm", "e"]).ok();
    assert!(ps_all(&u).is_empty() && logs(&u).is_empty());
    // --rm: nothing kept.
    u.run(&["run", "--rm", "--network", "lan", "-d", "--name", "r", "--", "/bin/busybox", "true"]).ok();
    for _ in 0..250 {
        if ps_all(&u).is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(ps_all(&u).is_empty() && logs(&u).is_empty());
    // `stop` removes the log; `gc` removes a log nobody owns.
    u.run(&sleeper("s", &[])).ok();
    u.wait_running("s");
    assert_eq!(logs(&u).len(), 1);
    u.run(&["stop", "-t", "1", "s"]).ok();
    assert!(logs(&u).is_empty() && ps_all(&u).is_empty());
    std::fs::write(u.state_dir().join("logs").join("0123.log"), "stray").unwrap();
    assert!(u.run(&["gc"]).ok().stdout.contains("0123.log"));
    assert!(logs(&u).is_empty());
}

#[test]
fn docker_habits_get_hints() {
    let w = world(WorldSpec::seed("c19hint").nodes(1).pods(0));
    let u = Underlay::on(&w.node(0).netns);
    u.lan("lan", &[]).ok();
    let out = u.run(&["run", "--network", "lan", "/bin/busybox", "true"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("after `--`"), "{}", out.stderr);
    u.run(&["run", "--rm", "--network", "lan", "--", "/bin/busybox", "true"]).ok();
    let out = u.run(&["network", "connect", "lan", "x"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("underlay attach"), "{}", out.stderr);
    assert!(u.ps().is_empty() && u.namespaces().is_empty());
}
