//! A real client: containerd (CRI, the Kubernetes path) runs our `macvlan` and
//! `host-local` from private plugin and config directories, on a parent link in the root
//! namespace whose other end is plugged into a test world's switch, and sends DEL twice.
//! (Podman and the guide's Kubernetes networks: `guide.rs`.) The test needs the Debian
//! packages scripts/deps installs; a missing one fails the test, it is never skipped.

mod support;

use std::net::IpAddr;
use std::path::Path;

use support::clients::*;
use support::*;
use underlay_linux::world::{World, WorldSpec};

/// A CNI bin directory: our plugins, `macvlan` behind a wrapper that logs each call.
fn plugin_dir(dir: &Path, log: &Path) {
    let ours = Path::new(env!("CARGO_BIN_EXE_macvlan"));
    std::fs::create_dir_all(dir).unwrap();
    let wrapper = dir.join("macvlan");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\necho \"$CNI_COMMAND netns=$CNI_NETNS\" >> {}\nexec {} \"$@\"\n",
            log.display(),
            ours.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink(ours.with_file_name("host-local"), dir.join("host-local")).unwrap();
    // containerd adds a loopback network of its own; that plugin is the reference's.
    std::os::unix::fs::symlink("/usr/lib/cni/loopback", dir.join("loopback")).unwrap();
}

fn conflist(master: &str, data: &Path) -> String {
    // `ranges` rather than the legacy top-level subnet: Podman reads the ranges to
    // check a requested --ip.
    serde_json::json!({"cniVersion": "1.0.0", "name": "ultest", "plugins": [{
        "type": "macvlan", "master": master, "mode": "bridge",
        "ipam": {"type": "host-local", "dataDir": data,
                 "ranges": [[{"subnet": "192.168.1.0/24", "rangeStart": "192.168.1.100",
                              "rangeEnd": "192.168.1.200", "gateway": "192.168.1.1"}]]}}]})
    .to_string()
}

fn world_with_root_port(tag: &str) -> (World, String) {
    let mut w = world(WorldSpec::seed(tag).nodes(0).pods(0));
    let parent = w.root_port().unwrap();
    (w, parent)
}

#[test]
fn containerd_cri_gives_the_pod_our_address_and_two_dels_leave_nothing() {
    let _one = ONE_CLIENT_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let before = netns_names();
    let (w, parent) = world_with_root_port("ctrd");
    let tmp = tempfile::tempdir().unwrap();
    let (bin, net, data, log) =
        (tmp.path().join("bin"), tmp.path().join("net"), tmp.path().join("data"), tmp.path().join("calls"));
    plugin_dir(&bin, &log);
    std::fs::create_dir_all(&net).unwrap();
    std::fs::write(net.join("10-ultest.conflist"), conflist(&parent, &data)).unwrap();
    let containerd = Containerd::start(tmp.path(), &bin, &net, None);

    let sock = containerd.sock();
    let id = cri(&["run", sock, "web", &format!("uid-{}", std::process::id()), "default"]);
    let ip: IpAddr = cri(&["ip", sock, &id]).parse().unwrap();
    assert!(("192.168.1.100".parse::<IpAddr>().unwrap()..="192.168.1.200".parse().unwrap()).contains(&ip), "{ip}");
    assert_eq!(reservations(&data, "ultest"), [ip.to_string()]);
    assert!(reaches(&w.external().netns, ip), "the LAN reaches the pod directly");
    cri(&["stop", sock, &id]);
    assert!(reservations(&data, "ultest").is_empty(), "StopPodSandbox released the address");
    cri(&["remove", sock, &id]);
    let calls = std::fs::read_to_string(&log).unwrap();
    let dels: Vec<&str> = calls.lines().filter(|l| l.starts_with("DEL")).collect();
    assert_eq!(dels.len(), 2, "containerd sends DEL on Stop and again on Remove: {calls}");
    assert!(dels[1].ends_with("netns="), "the second DEL comes without a namespace: {calls}");
    assert!(reservations(&data, "ultest").is_empty());
    drop(containerd);
    assert_eq!(sweep_client_netns(&before), Vec::<String>::new(), "containerd left namespaces behind");
}
