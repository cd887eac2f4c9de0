//! Real clients run by hand for tests: containerd (CRI, driven by `clients/cri.py`) with
//! private directories and socket, ended by PID; a busybox root filesystem for sandbox
//! images and containers; the `cni-*` namespaces a client leaves behind.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use underlay_linux::Netns;

/// Podman and containerd both name namespaces `cni-*`; one at a time keeps the
/// cleanup of one from touching the other's.
pub static ONE_CLIENT_AT_A_TIME: Mutex<()> = Mutex::new(());

pub fn need(program: &str, package: &str) -> PathBuf {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(program))
        .find(|p| p.exists());
    found.unwrap_or_else(|| panic!("{program} not found: install {package} (scripts/deps)"))
}

/// A root filesystem with busybox and its applets.
pub fn busybox_rootfs(dir: &Path) {
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

pub fn netns_names() -> Vec<String> {
    std::fs::read_dir("/run/netns")
        .map(|rd| rd.flatten().filter_map(|e| e.file_name().into_string().ok()).collect())
        .unwrap_or_default()
}

/// Removes the `cni-*` namespaces a client made during the test and did not remove.
pub fn sweep_client_netns(before: &[String]) -> Vec<String> {
    let left: Vec<String> =
        netns_names().into_iter().filter(|n| n.starts_with("cni-") && !before.contains(n)).collect();
    for n in &left {
        let _ = underlay_linux::Netns::delete(n);
    }
    left
}

pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn cri(args: &[&str]) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/cri.py");
    // Debian's python, which has python3-grpcio.
    run(Command::new("/usr/bin/python3").arg(script).args(args)).trim().to_string()
}

/// containerd, started by hand with a private root and socket, its sandbox image
/// imported; stopped by PID.
pub struct Containerd {
    child: Child,
    pub socket: PathBuf,
}

impl Containerd {
    /// Starts containerd with CNI plugins from `bin` and the network config in `net`,
    /// files under `dir`. With `node`, it runs inside that test namespace, in a mount
    /// namespace of its own with a tmpfs on /var/lib/cni: plugins that change the
    /// namespace they run in (host routes, shims) then change the test's, and stores at
    /// their default paths stay private (read them through `root()`).
    pub fn start(dir: &Path, bin: &Path, net: &Path, node: Option<&Netns>) -> Containerd {
        let containerd = need("containerd", "containerd");
        let ctr = need("ctr", "containerd");
        need("runc", "runc");
        assert!(
            Command::new("/usr/bin/python3").args(["-c", "import grpc"]).status().unwrap().success(),
            "python3-grpcio missing (scripts/deps)"
        );
        let socket = dir.join("containerd.sock");
        let config = dir.join("config.toml");
        std::fs::write(
            &config,
            format!(
                "version = 2\nroot = \"{root}\"\nstate = \"{state}\"\n[grpc]\n  address = \"{sock}\"\n\
                 [plugins.\"io.containerd.grpc.v1.cri\"]\n  sandbox_image = \"underlay.test/pause:1\"\n  restrict_oom_score_adj = true\n\
                 [plugins.\"io.containerd.grpc.v1.cri\".cni]\n  bin_dir = \"{bin}\"\n  conf_dir = \"{net}\"\n\
                 [plugins.\"io.containerd.grpc.v1.cri\".containerd]\n  snapshotter = \"native\"\n",
                root = dir.join("root").display(),
                state = dir.join("state").display(),
                sock = socket.display(),
                bin = bin.display(),
                net = net.display()
            ),
        )
        .unwrap();
        let mut cmd = match node {
            None => {
                let mut c = Command::new(&containerd);
                c.arg("--config").arg(&config);
                c
            }
            Some(ns) => {
                // unshare and sh exec, so the PID is containerd's.
                let mut c = ns.command("unshare");
                c.args(["-m", "--propagation", "slave", "sh", "-c"])
                    .arg("mkdir -p /var/lib/cni && mount -t tmpfs underlay-test /var/lib/cni && exec \"$0\" --config \"$1\"")
                    .arg(&containerd)
                    .arg(&config);
                c
            }
        };
        let child = cmd
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("containerd.log")).unwrap())
            .spawn()
            .unwrap();
        let mut containerd = Containerd { child, socket };
        let start = Instant::now();
        while !containerd.socket.exists() {
            if let Ok(Some(status)) = containerd.child.try_wait() {
                panic!("containerd exited ({status}): {}", log(dir));
            }
            assert!(start.elapsed() < Duration::from_secs(20), "containerd did not start: {}", log(dir));
            std::thread::sleep(Duration::from_millis(50));
        }
        // The sandbox ("pause") image, built from busybox and imported locally.
        let rootfs = dir.join("rootfs");
        busybox_rootfs(&rootfs);
        let image = dir.join("pause.tar");
        cri(&["image", image.to_str().unwrap(), rootfs.to_str().unwrap(), "underlay.test/pause:1"]);
        run(Command::new(&ctr)
            .arg("--address")
            .arg(&containerd.socket)
            .args(["-n", "k8s.io", "images", "import"])
            .arg(&image));
        containerd
    }

    pub fn sock(&self) -> &str {
        self.socket.to_str().unwrap()
    }

    /// The file system as containerd (and the plugins it runs) sees it.
    pub fn root(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root", self.child.id()))
    }
}

fn log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("containerd.log")).unwrap_or_default()
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
