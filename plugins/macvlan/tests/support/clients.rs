//! Real clients run by hand for tests: containerd (CRI, driven by `clients/cri.py`) with
//! private directories and socket, ended by PID; a busybox root filesystem for sandbox
//! images and containers; the `cni-*` namespaces a client leaves behind.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use underlay_linux::Netns;
use underlay_linux::world::containerd::{Containerd as Runner, Place, SANDBOX_IMAGE};

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

/// containerd, started by hand with a private root and socket (the shared runner in
/// `underlay_linux::world::containerd`), its sandbox image imported; stopped by PID.
pub struct Containerd(Runner);

impl Containerd {
    /// Starts containerd with CNI plugins from `bin` and the network config in `net`,
    /// files under `dir`. With `node`, it runs inside that test namespace, in a mount
    /// namespace of its own with a tmpfs on /var/lib/cni: plugins that change the
    /// namespace they run in (host routes, shims) then change the test's, and stores at
    /// their default paths stay private (read them through `root()`).
    pub fn start(dir: &Path, bin: &Path, net: &Path, node: Option<&Netns>) -> Containerd {
        assert!(
            Command::new("/usr/bin/python3").args(["-c", "import grpc"]).status().unwrap().success(),
            "python3-grpcio missing (scripts/deps)"
        );
        let place = match node {
            None => Place::Here,
            Some(netns) => Place::Node { netns, private_netns: false },
        };
        let containerd = Containerd(Runner::start(dir, bin, net, place).unwrap_or_else(|e| panic!("{e}")));
        // The sandbox ("pause") image, built from busybox and imported locally.
        let rootfs = dir.join("rootfs");
        busybox_rootfs(&rootfs);
        let image = dir.join("pause.tar");
        cri(&["image", image.to_str().unwrap(), rootfs.to_str().unwrap(), SANDBOX_IMAGE]);
        containerd.0.import(&image).unwrap_or_else(|e| panic!("{e}"));
        containerd
    }

    pub fn sock(&self) -> &str {
        self.0.sock().to_str().unwrap()
    }

    /// The file system as containerd (and the plugins it runs) sees it.
    pub fn root(&self) -> PathBuf {
        self.0.root()
    }
}
