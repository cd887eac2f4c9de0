//! Bad input to the `underlay-host-access` binary: the right CNI code, a message naming
//! the key and value, and nothing made. Run from a test node's namespace, so a bug
//! that got as far as the kernel could not touch the machine's own.
//! (The plugin at work, chained after macvlan, is tested in plugins/macvlan/tests/chain.rs.)

use std::io::Write;
use std::process::Stdio;

use serde_json::{Value, json};
use underlay_linux::world::{World, WorldSpec};

struct Out {
    code: Option<u64>,
    msg: String,
}

fn call(w: &World, command: &str, conf: &Value) -> Out {
    let mut child = w
        .node(0)
        .netns
        .command(env!("CARGO_BIN_EXE_underlay-host-access"))
        .env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", "c1")
        .env("CNI_NETNS", "/proc/self/ns/net")
        .env("CNI_IFNAME", "eth0")
        .env("CNI_PATH", "/nonexistent")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(conf.to_string().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    if out.status.success() {
        return Out { code: None, msg: String::new() };
    }
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    Out { code: v["code"].as_u64(), msg: format!("{} {}", v["msg"], v["details"]) }
}

fn conf(data: &std::path::Path, plugin: Value) -> Value {
    let mut c = json!({"cniVersion": "1.0.0", "name": "lan", "type": "underlay-host-access", "master": "enp0s3",
        "dataDir": data});
    c.as_object_mut().unwrap().extend(plugin.as_object().unwrap().clone());
    c
}

fn links(w: &World) -> Vec<String> {
    w.node(0).netns.netlink().unwrap().links().unwrap().into_iter().map(|l| l.name).collect()
}

#[test]
fn bad_input_is_named_and_leaves_nothing() {
    let w = World::build(WorldSpec::seed("hainput").nodes(1).pods(0)).expect("build the world (run as root)");
    let data = tempfile::tempdir().unwrap();
    let store = data.path().join("store");
    let before = links(&w);
    let prev = json!({"cniVersion": "1.0.0", "ips": [{"address": "192.168.1.130/24"}]});
    let cases = [
        (json!({"prevResult": prev}), "address"),
        (json!({"address": "192.168.1.254/24", "prevResult": prev}), "192.168.1.254/24"),
        (json!({"address": "not-an-ip", "prevResult": prev}), "not-an-ip"),
        (json!({"address": "192.168.1.254"}), "prevResult"),
        (json!({"address": "192.168.1.254", "master": "nope0", "prevResult": prev}), "nope0"),
    ];
    for (plugin, named) in cases {
        let out = call(&w, "ADD", &conf(&store, plugin.clone()));
        assert_eq!(out.code, Some(7), "{plugin}: {}", out.msg);
        assert!(out.msg.contains(named), "{plugin}: the message should name {named}: {}", out.msg);
        assert_eq!(links(&w), before, "{plugin}: a link was left behind");
        let left: Vec<_> =
            std::fs::read_dir(&store).map(|d| d.flatten().map(|e| e.file_name()).collect()).unwrap_or_default();
        assert!(left.iter().all(|n| n.to_string_lossy().ends_with(".lock")), "{plugin}: {left:?}");
    }
    // Keys in another case are read as Go reads them: a misspelt-case `Master` naming
    // a missing link is refused, never replaced by the default-route link.
    let mut c = conf(&store, json!({"Master": "nope1", "address": "192.168.1.254", "prevResult": prev}));
    c.as_object_mut().unwrap().remove("master");
    let out = call(&w, "ADD", &c);
    assert_eq!(out.code, Some(7), "{c}: {}", out.msg);
    assert!(out.msg.contains("nope1"), "{}", out.msg);
    assert_eq!(links(&w), before);
    // The same-subnet refusal explains what to use instead.
    let out = call(&w, "ADD", &conf(&store, json!({"address": "192.168.1.254/24", "prevResult": prev})));
    assert!(out.msg.contains("Use the bare address (192.168.1.254/32)"), "{}", out.msg);
}
