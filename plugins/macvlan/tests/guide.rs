//! docs/kubernetes.md is tested: each NetworkAttachmentDefinition's config is read out of
//! the guide and given, as is, to containerd's CRI (the kubelet's path) as the pod
//! network; containerd runs inside a test world's node, whose uplink is the guide's
//! `enp0s3`. The sandbox must get its address from our plugins and the LAN must reach
//! it; Stop + Remove must leave no link, route, reservation or namespace. The guide's
//! Podman conflist runs through Podman. The clients come from scripts/deps; a missing
//! one fails the test, it is never skipped.

mod support;

use std::net::IpAddr;
use std::path::Path;
use std::process::Command;

use serde_json::Value;
use support::clients::*;
use support::*;
use underlay_ipam::cluster::Cluster;
use underlay_linux::world::{World, WorldSpec};

/// The plugins the package ships (contrib/cni-plugins), ours, plus the reference
/// `loopback` containerd adds for itself.
fn plugin_dir(dir: &Path) {
    let list = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../contrib/cni-plugins");
    let ours = Path::new(env!("CARGO_BIN_EXE_macvlan"));
    std::fs::create_dir_all(dir).unwrap();
    for name in std::fs::read_to_string(list).unwrap().lines().filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let bin = ours.with_file_name(name);
        assert!(bin.exists(), "{} missing: build the workspace (cargo test --workspace)", bin.display());
        std::os::unix::fs::symlink(bin, dir.join(name)).unwrap();
    }
    std::os::unix::fs::symlink("/usr/lib/cni/loopback", dir.join("loopback")).unwrap();
}

/// One pod sandbox on one NAD, in a world of its own.
struct Pod {
    /// Taken by `stop_and_remove`; still here on drop when the test failed first.
    containerd: Option<Containerd>,
    world: Option<World>,
    _tmp: tempfile::TempDir,
    network: String,
    id: String,
    ip: IpAddr,
    before: Vec<String>,
}

impl Pod {
    fn run(tag: &str, conf: &Value) -> Pod {
        let before = netns_names();
        Pod::run_in(world(WorldSpec::seed(tag).nodes(1).pods(0)), before, tag, conf)
    }

    /// In `world` (one node): `before` are the namespaces that existed before the test.
    fn run_in(world: World, before: Vec<String>, tag: &str, conf: &Value) -> Pod {
        let tmp = tempfile::tempdir().unwrap();
        let (bin, net) = (tmp.path().join("bin"), tmp.path().join("net"));
        plugin_dir(&bin);
        std::fs::create_dir_all(&net).unwrap();
        let file = if conf.get("plugins").is_some() { "10-guide.conflist" } else { "10-guide.conf" };
        std::fs::write(net.join(file), serde_json::to_vec_pretty(conf).unwrap()).unwrap();
        let containerd = Containerd::start(tmp.path(), &bin, &net, Some(&world.node(0).netns));
        let id = cri(&["run", containerd.sock(), tag, &format!("uid-{tag}-{}", std::process::id()), "default"]);
        let ip = cri(&["ip", containerd.sock(), &id]);
        let ip: IpAddr = ip.parse().unwrap_or_else(|_| panic!("the sandbox has no address: {ip:?}"));
        let network = conf["name"].as_str().unwrap().to_string();
        Pod { containerd: Some(containerd), world: Some(world), _tmp: tmp, network, id, ip, before }
    }

    fn world(&self) -> &World {
        self.world.as_ref().unwrap()
    }

    fn node(&self) -> &underlay_linux::Netns {
        &self.world().node(0).netns
    }

    /// host-local's reservations, in containerd's private /var/lib/cni.
    fn reservations(&self) -> Vec<String> {
        let root = self.containerd.as_ref().unwrap().root();
        reservations(&root.join("var/lib/cni/networks"), &self.network)
    }

    /// Stop + Remove, then everything made for the pod must be gone. Returns the world
    /// for more checks.
    fn stop_and_remove(mut self) -> World {
        let containerd = self.containerd.take().unwrap();
        cri(&["stop", containerd.sock(), &self.id]);
        cri(&["remove", containerd.sock(), &self.id]);
        let root = containerd.root();
        assert_eq!(reservations(&root.join("var/lib/cni/networks"), &self.network), Vec::<String>::new());
        let record = root.join(format!("var/lib/cni/underlay-host-access/{}.json", self.network));
        if let Ok(text) = std::fs::read_to_string(&record) {
            let record: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(record["pods"], serde_json::json!({}), "host access still routes a pod: {record}");
        }
        assert_eq!(links(self.node()), ["enp0s3", "lo"], "a link was left on the node");
        let mut nl = self.node().netlink().unwrap();
        let host_routes: Vec<_> = nl.routes().unwrap().into_iter().filter(|r| r.dst.addr() == self.ip).collect();
        assert!(host_routes.is_empty(), "routes to the pod were left: {host_routes:?}");
        drop(containerd);
        assert_eq!(sweep_client_netns(&self.before), Vec::<String>::new(), "containerd left namespaces behind");
        self.world.take().unwrap()
    }
}

impl Drop for Pod {
    fn drop(&mut self) {
        // A failed test: the sandbox (its shim outlives containerd) goes first.
        if let Some(c) = self.containerd.take() {
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/cri.py");
            for verb in ["stop", "remove"] {
                let _ = Command::new("/usr/bin/python3").arg(&script).args([verb, c.sock(), &self.id]).output();
            }
            drop(c);
            sweep_client_netns(&self.before);
        }
    }
}

fn in_range(ip: IpAddr) -> bool {
    ("192.168.1.100".parse::<IpAddr>().unwrap()..="192.168.1.200".parse().unwrap()).contains(&ip)
}

#[test]
fn guide_nad_macvlan_host_local_through_containerd() {
    let _one = ONE_CLIENT_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let pod = Pod::run("gd-hl", &guide::nad("macvlan-conf"));
    assert!(in_range(pod.ip), "{}", pod.ip);
    assert_eq!(pod.reservations(), [pod.ip.to_string()]);
    assert!(reaches(&pod.world().external().netns, pod.ip), "the LAN reaches the pod directly");
    assert!(never_reaches(pod.node(), pod.ip), "without host access the node cannot reach its pod");
    pod.stop_and_remove();
}

/// The guide's etcd section with this cluster's endpoints and certificates: the same keys.
fn with_cluster(conf: &Value, cluster: &Cluster) -> Value {
    let mut conf = conf.clone();
    let ours = cluster.etcd_conf();
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&conf["ipam"]["etcd"]), keys(&ours), "the guide's etcd section has other keys than the test's");
    conf["ipam"]["etcd"] = ours;
    conf
}

fn etcd_keys(node: &str, cluster: &Cluster) -> Vec<String> {
    let tls = cluster.tls().unwrap();
    let out = run(Command::new("ip")
        .args(["netns", "exec", node, "etcdctl", "--endpoints", &cluster.endpoints().join(",")])
        .arg("--cacert")
        .arg(&tls.ca)
        .arg("--cert")
        .arg(&tls.cert)
        .arg("--key")
        .arg(&tls.key)
        .args(["get", "--prefix", "/underlay/ipam", "--keys-only"])
        .env("ETCDCTL_API", "3"));
    out.lines().filter(|l| !l.is_empty()).map(str::to_string).collect()
}

#[test]
fn guide_nad_macvlan_underlay_ipam_through_containerd() {
    let _one = ONE_CLIENT_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    need("etcd", "etcd-server");
    let guide_conf = guide::nad("macvlan-cluster");
    let before = netns_names();
    // The world first: etcd runs in its node, where the plugins run.
    let world = world(WorldSpec::seed("gd-ipam-etcd").nodes(1).pods(0));
    let node = world.node(0).name().to_string();
    let ports: Vec<u16> = (0..2)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect::<Vec<_>>()
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect();
    let launch_in = node.clone();
    let cluster = Cluster::start_with(
        1,
        "127.0.0.1".parse().unwrap(),
        &ports,
        Box::new(move |p: &str| {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", &launch_in, p]);
            c
        }),
        true,
    )
    .expect("start etcd in the node");
    let pod = Pod::run_in(world, before, "gd-ipam", &with_cluster(&guide_conf, &cluster));
    assert!(in_range(pod.ip), "{}", pod.ip);
    let held = etcd_keys(&node, &cluster);
    assert!(held.iter().any(|k| k.contains("/owner/")), "etcd holds the pod's reservation: {held:?}");
    assert!(reaches(&pod.world().external().netns, pod.ip), "the LAN reaches the pod directly");
    let world = pod.stop_and_remove();
    let held = etcd_keys(&node, &cluster);
    let left: Vec<&String> = held.iter().filter(|k| k.contains("/ip4/") || k.contains("/owner/")).collect();
    assert!(left.is_empty(), "reservations left in etcd: {left:?}");
    drop(cluster);
    drop(world);
}

#[test]
fn guide_nad_host_access_chain_through_containerd() {
    let _one = ONE_CLIENT_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let conf = guide::nad("macvlan-host-access");
    let pod = Pod::run("gd-ha", &conf);
    assert!(in_range(pod.ip), "{}", pod.ip);
    assert!(reaches(pod.node(), pod.ip), "the node reaches its own pod through the shim");
    assert!(reaches(&pod.world().external().netns, pod.ip), "and the LAN still does");
    assert_eq!(links(pod.node()).len(), 3, "one shim beside enp0s3 and lo: {:?}", links(pod.node()));
    pod.stop_and_remove();
}

#[test]
fn guide_nad_static_ip_and_mac_from_the_pod_annotation_through_containerd() {
    let _one = ONE_CLIENT_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let request = guide::pod_request("macvlan-static");
    // The bytes Multus hands the delegate; containerd passes a runtimeConfig for
    // capabilities it does not fill itself through unchanged.
    let conf = guide::with_runtime_config(&guide::nad("macvlan-static"), &request);
    let pod = Pod::run("gd-static", &conf);
    let want = request["ips"][0].as_str().unwrap().split('/').next().unwrap();
    assert_eq!(pod.ip.to_string(), want);
    let ext = &pod.world().external().netns;
    assert!(reaches(ext, pod.ip));
    let mut nl = ext.netlink().unwrap();
    let seen = nl.neighbours(None).unwrap().into_iter().find(|n| n.ip == pod.ip).and_then(|n| n.mac);
    assert_eq!(seen.map(|m| m.to_string()), request["mac"].as_str().map(str::to_string), "the LAN sees the pod's MAC");
    pod.stop_and_remove();
}

#[test]
fn guide_daemonset_is_the_file_in_contrib() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../contrib/kubernetes/daemonset.yaml");
    let file = std::fs::read_to_string(file).unwrap();
    let shown = guide::blocks(&guide::text(), "yaml").into_iter().find(|(_, y)| y.contains("kind: DaemonSet"));
    let body: String = file.lines().filter(|l| !l.starts_with('#')).map(|l| format!("{l}\n")).collect();
    assert_eq!(shown.expect("the guide shows the DaemonSet").1, body);
}

#[test]
fn install_plugins_replaces_each_binary_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, dest) = (tmp.path().join("plugins"), tmp.path().join("node/opt/cni/bin"));
    std::fs::create_dir_all(&src).unwrap();
    std::fs::create_dir_all(&dest).unwrap();
    std::fs::write(src.join("macvlan"), b"new").unwrap();
    std::fs::write(dest.join("macvlan"), b"old").unwrap();
    std::fs::write(dest.join("bridge"), b"someone else's").unwrap();
    // A process executing the old file keeps it: the new one is renamed over it.
    let old = std::fs::File::open(dest.join("macvlan")).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../contrib/kubernetes/install-plugins");
    run(Command::new(script).arg(&dest).arg("--once").env("UNDERLAY_PLUGINS", &src));
    assert_eq!(std::fs::read(dest.join("macvlan")).unwrap(), b"new");
    assert_eq!(std::fs::read(dest.join("bridge")).unwrap(), b"someone else's");
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(dest.join("macvlan")).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o755);
    assert_eq!(std::io::read_to_string(old).unwrap(), "old");
    let mut names: Vec<String> =
        std::fs::read_dir(&dest).unwrap().flatten().map(|e| e.file_name().into_string().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["bridge", "macvlan"], "no temporary file is left");
}

/// A flag's value in the guide's `podman run` example.
fn guide_podman_flag(flag: &str) -> String {
    let text = guide::text();
    let line = text.lines().find(|l| l.starts_with("podman run ")).expect("the guide's podman run example");
    let mut words = line.split_whitespace();
    words.find(|w| *w == flag).and_then(|_| words.next()).unwrap_or_else(|| panic!("no {flag} in: {line}")).to_string()
}

#[test]
fn guide_podman_conflist_gives_a_container_its_address_and_mac() {
    let _one = ONE_CLIENT_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let podman = need("podman", "podman");
    need("runc", "runc");
    let before = netns_names();
    // Podman runs the plugins in its own namespace, here the root one: the parent is a
    // link plugged into the test world, and host-local's store is private.
    let mut w = world(WorldSpec::seed("gd-podman").nodes(0).pods(0));
    let parent = w.root_port().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let (bin, net, data, rootfs) =
        (tmp.path().join("bin"), tmp.path().join("net"), tmp.path().join("data"), tmp.path().join("rootfs"));
    plugin_dir(&bin);
    std::fs::create_dir_all(&net).unwrap();
    let mut conflist = guide::podman_conflist();
    for plugin in conflist["plugins"].as_array_mut().unwrap() {
        if plugin.get("master").is_some() {
            plugin["master"] = parent.clone().into();
        }
        if plugin.get("ipam").is_some() {
            plugin["ipam"]["dataDir"] = data.to_str().unwrap().into();
        }
    }
    let network = conflist["name"].as_str().unwrap().to_string();
    std::fs::write(net.join(format!("{network}.conflist")), conflist.to_string()).unwrap();
    let (ip, mac) = (guide_podman_flag("--ip"), guide_podman_flag("--mac-address"));
    busybox_rootfs(&rootfs);
    let conf = tmp.path().join("containers.conf");
    std::fs::write(
        &conf,
        format!(
            "[containers]\ndefault_ulimits = [\"nofile=20000:20000\", \"nproc=32768:32768\"]\n\
             [network]\nnetwork_backend = \"cni\"\ncni_plugin_dirs = [\"{}\"]\nnetwork_config_dir = \"{}\"\n\
             [engine]\nruntime = \"runc\"\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n",
            bin.display(),
            net.display()
        ),
    )
    .unwrap();
    let podman_cmd = || {
        let mut c = Command::new(&podman);
        c.env("CONTAINERS_CONF", &conf).args(["--storage-driver", "vfs", "--root"]).arg(tmp.path().join("root"));
        c.arg("--runroot").arg(tmp.path().join("runroot")).arg("--tmpdir").arg(tmp.path().join("tmp"));
        c
    };
    // Whatever happens below, the container goes.
    struct Cleanup<F: FnMut()>(F);
    impl<F: FnMut()> Drop for Cleanup<F> {
        fn drop(&mut self) {
            (self.0)()
        }
    }
    let _cleanup = Cleanup(|| {
        let _ = podman_cmd().args(["rm", "-f", "--all"]).output();
    });

    let name = format!("guide{}", std::process::id());
    run(podman_cmd()
        .args(["run", "-d", "--name", &name, "--network", &network, "--ip", &ip, "--mac-address", &mac, "--rootfs"])
        .arg(&rootfs)
        .args(["/bin/sleep", "600"]));
    let inside = run(podman_cmd().args(["exec", &name, "ip", "addr", "show", "eth0"]));
    assert!(inside.contains(&format!("inet {ip}/24")), "{inside}");
    assert!(inside.contains(&mac), "--mac-address reached the plugin: {inside}");
    let addr: IpAddr = ip.parse().unwrap();
    assert!(reaches(&w.external().netns, addr), "the LAN reaches the container directly");
    assert_eq!(reservations(&data, &network), [ip.as_str()]);
    run(podman_cmd().args(["rm", "-f", &name]));
    assert!(reservations(&data, &network).is_empty(), "the address was released");
    assert_eq!(sweep_client_netns(&before), Vec::<String>::new(), "podman left namespaces behind");
}
