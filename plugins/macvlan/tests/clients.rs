//! Real clients: Podman (CNI backend) and containerd (CRI, the Kubernetes path) run our
//! `macvlan` and `host-local` from private plugin and config directories, on a parent
//! link in the root namespace whose other end is plugged into a test world's switch.
//! Both tests need the Debian packages scripts/deps installs; a missing one fails the
//! test, it is never skipped.

mod support;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use support::*;
use underlay_linux::world::{World, WorldSpec};

/// Podman and containerd both name namespaces `cni-*`; one at a time keeps the
/// cleanup of one from touching the other's.
static ONE_CLIENT_AT_A_TIME: Mutex<()> = Mutex::new(());

fn need(program: &str, package: &str) -> PathBuf {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(program))
        .find(|p| p.exists());
    found.unwrap_or_else(|| panic!("{program} not found: install {package} (scripts/deps)"))
}

/// A root filesystem with busybox and its applets.
fn busybox_rootfs(dir: &Path) {
    let busybox = Path::new("/bin/busybox");
    assert!(busybox.exists(), "/bin/busybox not found: install busybox-static (scripts/deps)");
    for d in ["bin", "proc", "sys", "dev", "etc", "tmp"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    std::fs::copy(busybox, dir.join("bin/busybox")).unwrap();
    let list = Command::new(busybox).arg("--list").output().unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).lines().filter(|a| *a != "busybox") {
        let _ = std::os::unix::fs::symlink("busybox", dir.join("bin").join(applet));
    }
}

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

fn netns_names() -> Vec<String> {
    std::fs::read_dir("/run/netns")
        .map(|rd| rd.flatten().filter_map(|e| e.file_name().into_string().ok()).collect())
        .unwrap_or_default()
}

/// Removes the `cni-*` namespaces a client made during the test and did not remove.
fn sweep_client_netns(before: &[String]) -> Vec<String> {
    let left: Vec<String> =
        netns_names().into_iter().filter(|n| n.starts_with("cni-") && !before.contains(n)).collect();
    for n in &left {
        let _ = underlay_linux::Netns::delete(n);
    }
    left
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn world_with_root_port(tag: &str) -> (World, String) {
    let mut w = world(WorldSpec::seed(tag).nodes(0).pods(0));
    let parent = w.root_port().unwrap();
    (w, parent)
}

#[test]
fn podman_runs_a_container_with_our_address() {
    let _one = ONE_CLIENT_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let podman = need("podman", "podman");
    need("runc", "runc");
    let before = netns_names();
    let (w, parent) = world_with_root_port("podman");
    let tmp = tempfile::tempdir().unwrap();
    let (bin, net, data, rootfs, log) = (
        tmp.path().join("bin"),
        tmp.path().join("net"),
        tmp.path().join("data"),
        tmp.path().join("rootfs"),
        tmp.path().join("calls"),
    );
    plugin_dir(&bin, &log);
    std::fs::create_dir_all(&net).unwrap();
    std::fs::write(net.join("ultest.conflist"), conflist(&parent, &data)).unwrap();
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

    let name = format!("ultest{}", std::process::id());
    run(podman_cmd()
        .args([
            "run",
            "-d",
            "--name",
            &name,
            "--network",
            "ultest",
            "--ip",
            "192.168.1.150",
            "--mac-address",
            "02:00:c0:a8:01:96",
            "--rootfs",
        ])
        .arg(&rootfs)
        .args(["/bin/sleep", "600"]));
    let inside = run(podman_cmd().args(["exec", &name, "ip", "addr", "show", "eth0"]));
    assert!(inside.contains("inet 192.168.1.150/24"), "{inside}");
    assert!(inside.contains("02:00:c0:a8:01:96"), "--mac-address reached the plugin: {inside}");
    let ip: IpAddr = "192.168.1.150".parse().unwrap();
    assert!(reaches(&w.external().netns, ip), "the LAN reaches the container directly");
    assert_eq!(reservations(&data, "ultest"), ["192.168.1.150"]);
    run(podman_cmd().args(["rm", "-f", &name]));
    assert!(reservations(&data, "ultest").is_empty(), "the address was released");
    let calls = std::fs::read_to_string(&log).unwrap();
    assert!(calls.lines().any(|l| l.starts_with("ADD")) && calls.lines().any(|l| l.starts_with("DEL")), "{calls}");
    assert_eq!(sweep_client_netns(&before), Vec::<String>::new(), "podman left namespaces behind");
}

/// containerd, started by hand with a private root and socket; stopped by PID.
struct Containerd {
    child: Child,
    socket: PathBuf,
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn cri(args: &[&str]) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/cri.py");
    // Debian's python, which has python3-grpcio.
    run(Command::new("/usr/bin/python3").arg(script).args(args)).trim().to_string()
}

#[test]
fn containerd_cri_gives_the_pod_our_address_and_two_dels_leave_nothing() {
    let _one = ONE_CLIENT_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let containerd_bin = need("containerd", "containerd");
    let ctr = need("ctr", "containerd");
    need("runc", "runc");
    assert!(
        Command::new("/usr/bin/python3").args(["-c", "import grpc"]).status().unwrap().success(),
        "python3-grpcio missing (scripts/deps)"
    );
    let before = netns_names();
    let (w, parent) = world_with_root_port("ctrd");
    let tmp = tempfile::tempdir().unwrap();
    let (bin, net, data, log) =
        (tmp.path().join("bin"), tmp.path().join("net"), tmp.path().join("data"), tmp.path().join("calls"));
    plugin_dir(&bin, &log);
    std::fs::create_dir_all(&net).unwrap();
    std::fs::write(net.join("10-ultest.conflist"), conflist(&parent, &data)).unwrap();
    let socket = tmp.path().join("containerd.sock");
    let config = tmp.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "version = 2\nroot = \"{root}\"\nstate = \"{state}\"\n[grpc]\n  address = \"{sock}\"\n\
             [plugins.\"io.containerd.grpc.v1.cri\"]\n  sandbox_image = \"underlay.test/pause:1\"\n  restrict_oom_score_adj = true\n\
             [plugins.\"io.containerd.grpc.v1.cri\".cni]\n  bin_dir = \"{bin}\"\n  conf_dir = \"{net}\"\n\
             [plugins.\"io.containerd.grpc.v1.cri\".containerd]\n  snapshotter = \"native\"\n",
            root = tmp.path().join("root").display(),
            state = tmp.path().join("state").display(),
            sock = socket.display(),
            bin = bin.display(),
            net = net.display()
        ),
    )
    .unwrap();
    let child = Command::new(&containerd_bin)
        .arg("--config")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(tmp.path().join("containerd.log")).unwrap())
        .spawn()
        .unwrap();
    let containerd = Containerd { child, socket };
    let start = Instant::now();
    while !containerd.socket.exists() {
        assert!(start.elapsed() < Duration::from_secs(20), "containerd did not start: see its log");
        std::thread::sleep(Duration::from_millis(50));
    }
    // The sandbox ("pause") image, built from busybox and imported locally.
    let rootfs = tmp.path().join("rootfs");
    busybox_rootfs(&rootfs);
    let image = tmp.path().join("pause.tar");
    cri(&["image", image.to_str().unwrap(), rootfs.to_str().unwrap(), "underlay.test/pause:1"]);
    run(Command::new(&ctr)
        .arg("--address")
        .arg(&containerd.socket)
        .args(["-n", "k8s.io", "images", "import"])
        .arg(&image));

    let sock = containerd.socket.to_str().unwrap().to_string();
    let id = cri(&["run", &sock, "web", &format!("uid-{}", std::process::id()), "default"]);
    let ip: IpAddr = cri(&["ip", &sock, &id]).parse().unwrap();
    assert!(("192.168.1.100".parse::<IpAddr>().unwrap()..="192.168.1.200".parse().unwrap()).contains(&ip), "{ip}");
    assert_eq!(reservations(&data, "ultest"), [ip.to_string()]);
    assert!(reaches(&w.external().netns, ip), "the LAN reaches the pod directly");
    cri(&["stop", &sock, &id]);
    assert!(reservations(&data, "ultest").is_empty(), "StopPodSandbox released the address");
    cri(&["remove", &sock, &id]);
    let calls = std::fs::read_to_string(&log).unwrap();
    let dels: Vec<&str> = calls.lines().filter(|l| l.starts_with("DEL")).collect();
    assert_eq!(dels.len(), 2, "containerd sends DEL on Stop and again on Remove: {calls}");
    assert!(dels[1].ends_with("netns="), "the second DEL comes without a namespace: {calls}");
    assert!(reservations(&data, "ultest").is_empty());
    drop(containerd);
    assert_eq!(sweep_client_netns(&before), Vec::<String>::new(), "containerd left namespaces behind");
}
