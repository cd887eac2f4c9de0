//! Failure paths: clear errors with the right codes, and nothing left behind.

mod support;

use serde_json::{Value, json};
use support::*;
use underlay_linux::addr::AddressOptions;
use underlay_linux::world::{World, WorldSpec};

fn seed(data: &std::path::Path) -> Value {
    seed_conf("1.0.0", data)
}

/// Runs ADD and checks it failed with `code`, a message containing `needle`, and that
/// neither namespace gained a link nor the store a reservation.
fn fails_cleanly(w: &World, plugins: &PluginDir, conf: &Value, args: &str, code: u64, needle: &str) {
    let (node, pod) = (&w.node(0).netns, &w.pods[0]);
    let data = conf["ipam"]["dataDir"].as_str().map(std::path::PathBuf::from);
    let before = (links(node), links(pod));
    let held = data.as_ref().map(|d| reservations(d, conf["name"].as_str().unwrap())).unwrap_or_default();
    let out = cni_args(plugins, node, "ADD", "c-fail", Some(pod), "eth0", args, conf);
    assert!(!out.ok, "{conf}: expected a failure, got {}", out.json);
    assert_eq!(out.code(), code, "{}", out.json);
    assert!(out.msg().contains(needle), "message should name {needle:?}: {}", out.msg());
    assert_eq!((links(node), links(pod)), before, "links left behind after: {}", out.msg());
    if let Some(d) = data {
        assert_eq!(reservations(&d, conf["name"].as_str().unwrap()), held, "reservation left behind");
    }
}

#[test]
fn bad_config_missing_master_and_taken_ifname_leave_nothing() {
    let w = world(WorldSpec::seed("mvfail").nodes(1).pods(1));
    let data = tempfile::tempdir().unwrap();
    let plugins = PluginDir::ours();
    let with = |k: &str, v: Value| {
        let mut c = seed(data.path());
        c[k] = v;
        c
    };
    fails_cleanly(&w, &plugins, &with("master", json!("enp9s9")), "", 7, "enp9s9");
    fails_cleanly(&w, &plugins, &with("mode", json!("bridged")), "", 7, "bridged");
    fails_cleanly(&w, &plugins, &with("mtu", json!(9000)), "", 7, "9000");
    fails_cleanly(&w, &plugins, &with("mtu", json!(-1)), "", 7, "-1");
    fails_cleanly(&w, &plugins, &with("mtu", json!("big")), "", 7, "mtu");
    fails_cleanly(&w, &plugins, &with("mac", json!("01:00:5e:00:00:01")), "", 7, "01:00:5e:00:00:01");
    fails_cleanly(&w, &plugins, &seed(data.path()), "MAC=zz", 4, "zz");
    fails_cleanly(&w, &plugins, &with("cniVersion", json!("0.9.0")), "", 1, "0.9.0");
    fails_cleanly(&w, &plugins, &with("name", json!("../up")), "", 7, "../up");
    fails_cleanly(&w, &plugins, &with("announceCount", json!(17)), "", 7, "announceCount 17");
    fails_cleanly(&w, &plugins, &with("announceIntervalMs", json!(10001)), "", 7, "announceIntervalMs 10001");
    fails_cleanly(&w, &plugins, &with("sourceMacs", json!(["02:00:00:00:00:01"])), "", 7, "sourceMacs");
    let mut no_ipam_plugin = seed(data.path());
    no_ipam_plugin["ipam"]["type"] = json!("no-such-ipam");
    fails_cleanly(&w, &plugins, &no_ipam_plugin, "", 7, "no-such-ipam");
    let mut bad_range = seed(data.path());
    bad_range["ipam"]["rangeStart"] = json!("10.0.0.1");
    fails_cleanly(&w, &plugins, &bad_range, "", 7, "10.0.0.1");
    // The name is taken in the pod.
    let mut nl = w.pods[0].netlink().unwrap();
    nl.create_veth("eth0", "eth0peer", None).unwrap();
    fails_cleanly(&w, &plugins, &seed(data.path()), "", 106, "eth0");
}

#[test]
fn an_exhausted_range_undoes_the_link() {
    let w = world(WorldSpec::seed("mvexh").nodes(1).pods(2));
    let data = tempfile::tempdir().unwrap();
    let mut c = seed(data.path());
    c["ipam"]["rangeEnd"] = json!("192.168.1.100");
    for (plugins, label) in
        [(PluginDir::ours(), "ours"), (PluginDir::new(Impl::Ours, Impl::Reference), "reference IPAM")]
    {
        let first = cni(&plugins, &w.node(0).netns, "ADD", "c1", Some(&w.pods[1]), "eth0", &c);
        assert!(first.ok, "{label}: {}", first.json);
        let (node, pod) = (links(&w.node(0).netns), links(&w.pods[0]));
        let out = cni(&plugins, &w.node(0).netns, "ADD", "c2", Some(&w.pods[0]), "eth0", &c);
        assert!(!out.ok);
        if label == "ours" {
            assert_eq!(out.code(), 102, "{}", out.json);
        }
        assert_eq!((links(&w.node(0).netns), links(&w.pods[0])), (node, pod), "{label}: the macvlan was undone");
        assert_eq!(reservations(data.path(), "macvlan-conf"), ["192.168.1.100"]);
        assert!(cni(&plugins, &w.node(0).netns, "DEL", "c1", Some(&w.pods[1]), "eth0", &c).ok);
    }
}

#[test]
fn env_and_stdin_errors_have_their_codes() {
    let w = world(WorldSpec::seed("mvenv").nodes(1).pods(1));
    let data = tempfile::tempdir().unwrap();
    let plugins = PluginDir::ours();
    let bad_ifname = cni(&plugins, &w.node(0).netns, "ADD", "c1", Some(&w.pods[0]), "eth0:1", &seed(data.path()));
    assert_eq!(bad_ifname.code(), 4);
    // A kernel name template: the kernel would pick the name (eth0) itself.
    let template = cni(&plugins, &w.node(0).netns, "ADD", "c1", Some(&w.pods[0]), "eth%d", &seed(data.path()));
    assert_eq!(template.code(), 4, "{}", template.json);
    assert!(template.msg().contains("eth%d"), "{}", template.json);
    let bad_id = cni(&plugins, &w.node(0).netns, "ADD", "../c", Some(&w.pods[0]), "eth0", &seed(data.path()));
    assert_eq!(bad_id.code(), 4);
    let no_netns = cni(&plugins, &w.node(0).netns, "ADD", "c1", None, "eth0", &seed(data.path()));
    assert_eq!(no_netns.code(), 4);
    assert!(no_netns.msg().contains("CNI_NETNS"));
    // CNI_NETNS names a file that is not a network namespace.
    let not_netns = cni_path(&plugins, &w.node(0).netns, "ADD", "c1", "/etc/hostname", &seed(data.path()));
    assert_eq!(not_netns.code(), 4, "{}", not_netns.json);
    assert!(not_netns.msg().contains("not a network namespace"), "{}", not_netns.json);
    let env =
        [("CNI_COMMAND", "ADD"), ("CNI_CONTAINERID", "c1"), ("CNI_NETNS", "/run/netns/x"), ("CNI_IFNAME", "eth0")];
    let garbage = invoke(&plugins, &w.node(0).netns, "macvlan", &env, b"{not json");
    assert_eq!(garbage.code(), 6, "{}", garbage.json);
    assert!(reservations(data.path(), "macvlan-conf").is_empty());
    assert!(links(&w.pods[0]).iter().all(|l| l == "lo"));
}

#[test]
fn dad_failure_is_reported_and_undone() {
    let w = world(WorldSpec::seed("mvdad").nodes(1).pods(1));
    let ext = w.external();
    ext.netns.set_sysctl("net/ipv6/conf/all/disable_ipv6", "0").unwrap();
    ext.netns.set_sysctl("net/ipv6/conf/eth0/disable_ipv6", "0").unwrap();
    let mut nl = ext.netns.netlink().unwrap();
    let eth0 = nl.link("eth0").unwrap();
    nl.add_address(
        eth0.index,
        "2001:db8:1::100/64".parse().unwrap(),
        AddressOptions { nodad: true, ..Default::default() },
    )
    .unwrap();
    let data = tempfile::tempdir().unwrap();
    let c = json!({"cniVersion": "1.0.0", "name": "v6", "type": "macvlan", "master": "enp0s3",
                   "ipam": {"type": "host-local", "dataDir": data.path(),
                            "ranges": [[{"subnet": "2001:db8:1::/64", "rangeStart": "2001:db8:1::100"}]]}});
    fails_cleanly(&w, &PluginDir::ours(), &c, "", 101, "2001:db8:1::100");
    // The next address is free: DAD passes and the pod is reachable over IPv6.
    let out = cni(&PluginDir::ours(), &w.node(0).netns, "ADD", "c2", Some(&w.pods[0]), "eth0", &c);
    assert!(out.ok, "{}", out.json);
    assert_eq!(out.ip().to_string(), "2001:db8:1::101");
    let mut pod = w.pods[0].netlink().unwrap();
    let link = pod.link("eth0").unwrap();
    let v6 = pod.addresses(Some(link.index)).unwrap();
    let a = v6.iter().find(|a| a.net.addr() == out.ip()).unwrap();
    assert!(!a.is_tentative() && !a.is_dadfailed(), "{a:?}");
    assert!(reaches(&ext.netns, out.ip()));
}

#[test]
fn the_masters_own_address_is_refused_and_released() {
    // Node 0's enp0s3 carries 192.168.1.10; a range of exactly that address.
    let w = world(WorldSpec::seed("mvown").nodes(1).pods(1));
    let data = tempfile::tempdir().unwrap();
    let mut c = seed(data.path());
    c["ipam"]["rangeStart"] = json!("192.168.1.10");
    c["ipam"]["rangeEnd"] = json!("192.168.1.10");
    fails_cleanly(&w, &PluginDir::ours(), &c, "", 101, "192.168.1.10 is master enp0s3's own address");
    assert!(reservations(data.path(), "macvlan-conf").is_empty(), "the IPAM's reservation was released");
    // Asked for by the runtime: the same refusal.
    c["ipam"]["rangeEnd"] = json!("192.168.1.20");
    fails_cleanly(&w, &PluginDir::ours(), &c, "IP=192.168.1.10", 101, "192.168.1.10 is master enp0s3's own");
    assert!(reservations(data.path(), "macvlan-conf").is_empty());
}
