//! The same code as ipvlan (`underlay_attach::Ipvlan`), run in-process the way the `underlay`
//! command uses it. This kernel may lack ipvlan: then ADD must say so and leave nothing
//! behind, and the traffic test reports a skip.

mod support;

use serde_json::{Value, json};
use support::*;
use underlay::cni::plugin::run;
use underlay_linux::support::{Feature, has, report_skip};
use underlay_linux::world::{World, WorldSpec};

fn ipvlan(w: &World, plugins: &PluginDir, command: &str, cid: &str, pod: usize, args: &str, conf: &Value) -> Value {
    let netns = w.pods[pod].path().display().to_string();
    let vars = [
        ("CNI_COMMAND", command.to_string()),
        ("CNI_CONTAINERID", cid.to_string()),
        ("CNI_NETNS", netns),
        ("CNI_IFNAME", "eth0".to_string()),
        ("CNI_ARGS", args.to_string()),
        ("CNI_PATH", plugins.path().display().to_string()),
    ];
    let stdin = serde_json::to_vec(conf).unwrap();
    let reply = w.node(0).netns.run(|| run(&underlay_attach::Ipvlan, vars, &stdin)).unwrap();
    if reply.stdout.is_empty() { Value::Null } else { reply.value() }
}

fn conf(data: &std::path::Path, extra: Value) -> Value {
    let mut c = json!({"cniVersion": "1.1.0", "name": "iv", "type": "ipvlan", "master": "enp0s3",
                       "ipam": {"type": "host-local", "subnet": "192.168.1.0/24", "rangeStart": "192.168.1.100",
                                "rangeEnd": "192.168.1.200", "dataDir": data}});
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    c
}

#[test]
fn ipvlan_config_errors_are_clear() {
    let w = world(WorldSpec::seed("ivconf").nodes(1).pods(1));
    let data = tempfile::tempdir().unwrap();
    let p = PluginDir::ours();
    let cases = [
        (json!({"mac": "02:00:00:00:00:01"}), "", 7, "share their master's MAC"),
        (json!({}), "MAC=02:00:00:00:00:01", 4, "CNI_ARGS MAC"),
        (json!({"mode": "l4"}), "", 7, "l4"),
        (json!({"flag": "open"}), "", 7, "open"),
        (json!({"sourceMacs": ["02:00:00:00:00:01"]}), "", 7, "sourceMacs"),
    ];
    for (extra, args, code, needle) in cases {
        let out = ipvlan(&w, &p, "ADD", "c1", 0, args, &conf(data.path(), extra.clone()));
        assert_eq!(out["code"], code, "{extra}: {out}");
        assert!(out["msg"].as_str().unwrap().contains(needle), "{extra}: {out}");
    }
    assert_eq!(links(&w.pods[0]), ["lo"]);
    assert!(reservations(data.path(), "iv").is_empty());
}

#[test]
fn ipvlan_add_works_or_says_the_kernel_lacks_it_and_leaves_nothing() {
    let w = world(WorldSpec::seed("ivadd").nodes(1).pods(2));
    let data = tempfile::tempdir().unwrap();
    let p = PluginDir::ours();
    let c = conf(data.path(), json!({"mode": "l2"}));
    let out = ipvlan(&w, &p, "ADD", "c1", 0, "", &c);
    if !has(Feature::Ipvlan).unwrap() {
        assert_eq!(out["code"], 100, "{out}");
        assert!(out["msg"].as_str().unwrap().contains("lacks ipvlan"), "{out}");
        assert_eq!(links(&w.pods[0]), ["lo"]);
        assert!(reservations(data.path(), "iv").is_empty(), "no reservation is left behind");
        return report_skip(
            "ipvlan_add_works_or_says_the_kernel_lacks_it_and_leaves_nothing (traffic)",
            Feature::Ipvlan,
        );
    }
    assert!(out.get("code").is_none(), "{out}");
    let mut nl = w.pods[0].netlink().unwrap();
    let eth0 = nl.link("eth0").unwrap();
    let parent = w.node(0).mac;
    assert_eq!(eth0.mac, Some(parent), "an ipvlan child has its master's MAC");
    let ip: std::net::IpAddr = out["ips"][0]["address"].as_str().unwrap().split('/').next().unwrap().parse().unwrap();
    assert!(reaches(&w.external().netns, ip));
    let mut check = c.clone();
    check["prevResult"] = out.clone();
    assert_eq!(ipvlan(&w, &p, "CHECK", "c1", 0, "", &check), Value::Null, "CHECK passes");
    assert_eq!(ipvlan(&w, &p, "DEL", "c1", 0, "", &c), Value::Null);
    assert!(reservations(data.path(), "iv").is_empty());
}
