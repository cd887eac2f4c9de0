//! A private Docker Engine for tests: dockerd with its own data/exec roots and socket,
//! no bridge and no firewall, an image made from busybox-static, and our plugin
//! daemon under a per-test driver name. Everything is stopped by PID on drop.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tempfile::TempDir;
use underlay_linux::world::{World, WorldSpec};

pub const IMAGE: &str = "ulbusybox";

/// The CGI script the seed's "container1:9090" serves: it prints who called.
const WHOAMI: &str = "#!/bin/sh\necho 'Content-Type: text/plain'\necho\necho \"$REMOTE_ADDR\"\n";

pub fn have_docker() -> bool {
    Path::new("/usr/sbin/dockerd").exists() && Path::new("/bin/busybox").exists()
}

fn stop(child: &mut Child) {
    // SIGTERM, so dockerd stops the containerd it started; a SIGKILLed dockerd leaves
    // it running and the next dockerd cannot reach it. Sent directly: a minimal Debian
    // root has no `kill` binary (procps).
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

pub struct Plugin {
    pub name: String,
    pub state: PathBuf,
    child: Option<Child>,
    /// dockerd's PID when the plugin lives in its network and mount namespaces.
    inside: Option<u32>,
}

impl Plugin {
    pub fn start(name: &str, state: &Path) -> Plugin {
        let mut p = Plugin { name: name.to_string(), state: state.to_path_buf(), child: None, inside: None };
        p.restart();
        p
    }

    /// In the namespaces of `docker` (started with [`Docker::start_in`]).
    pub fn start_in(name: &str, state: &Path, docker: &Docker) -> Plugin {
        let inside = Some(docker.pid());
        let mut p = Plugin { name: name.to_string(), state: state.to_path_buf(), child: None, inside };
        p.restart();
        p
    }

    pub fn socket(&self) -> PathBuf {
        match self.inside {
            // The node's /run/docker/plugins is a tmpfs of its own mount namespace.
            Some(pid) => PathBuf::from(format!("/proc/{pid}/root/run/docker/plugins/{}.sock", self.name)),
            None => PathBuf::from(format!("/run/docker/plugins/{}.sock", self.name)),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Killed without a chance to clean up, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn restart(&mut self) {
        self.kill();
        let _ = std::fs::remove_file(self.socket());
        let exe = env!("CARGO_BIN_EXE_underlay-docker-plugin");
        let mut cmd = match self.inside {
            Some(pid) => {
                // -r: entering a mount namespace resets the root to the namespace's
                // own; keep dockerd's (a chroot, as in CI), where `exe` is.
                let mut c = Command::new("nsenter");
                c.arg("-t").arg(pid.to_string()).args(["-m", "-n", "-r", "--"]).arg(exe);
                c
            }
            None => Command::new(exe),
        };
        let child = cmd
            .args(["--name", &self.name, "--state-dir"])
            .arg(&self.state)
            .stdout(Stdio::null())
            .spawn()
            .expect("start underlay-docker-plugin");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.socket().exists() {
            assert!(Instant::now() < deadline, "plugin socket {} never appeared", self.socket().display());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the process is still alive.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }
}

impl Drop for Plugin {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            stop(&mut c);
        }
        let _ = std::fs::remove_file(self.socket());
    }
}

pub struct Docker {
    pub dir: TempDir,
    child: Option<Child>,
    /// The network namespace (in /run/netns) dockerd runs in, with a mount namespace
    /// of its own; None: the root namespaces.
    netns: Option<String>,
}

/// Run by `sh` in a fresh mount namespace inside a node's network namespace: a sysfs of
/// that namespace (the cgroup mounts moved back under it), and tmpfs over the places
/// dockerd and the plugin keep state, so nothing of theirs reaches the host's.
const IN_NODE: &str = r#"set -e
D=$1
mkdir -p "$D/cg"
mount --rbind /sys/fs/cgroup "$D/cg"
umount -l /sys
mount -t sysfs sysfs /sys
mount --move "$D/cg" /sys/fs/cgroup
for d in /run/docker/plugins /etc/docker /var/lib/cni /var/lib/underlay /run/underlay; do
  mkdir -p "$d"; mount -t tmpfs tmpfs "$d"
done
shift
exec "$@"
"#;

pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    pub fn ok(&self) -> &Ran {
        assert_eq!(self.code, 0, "docker failed: {}{}", self.stdout, self.stderr);
        self
    }
}

impl From<Output> for Ran {
    fn from(o: Output) -> Ran {
        Ran {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).trim().to_string(),
            stderr: String::from_utf8_lossy(&o.stderr).trim().to_string(),
        }
    }
}

impl Docker {
    pub fn start() -> Docker {
        // Short path: the exec root holds unix sockets (108-byte limit).
        let dir = tempfile::Builder::new().prefix("uldk").tempdir_in("/tmp").expect("tempdir");
        let mut d = Docker { dir, child: None, netns: None };
        d.restart();
        d.import_image();
        d
    }

    /// dockerd inside the network namespace `netns` (a test world's node), so what the
    /// driver changes in its namespace (host access) changes the node's, not the host's.
    pub fn start_in(netns: &str) -> Docker {
        let dir = tempfile::Builder::new().prefix("uldk").tempdir_in("/tmp").expect("tempdir");
        std::fs::write(dir.path().join("in-node.sh"), IN_NODE).expect("write in-node.sh");
        let mut d = Docker { dir, child: None, netns: Some(netns.to_string()) };
        d.restart();
        d.import_image();
        d
    }

    /// dockerd's PID (nsenter, unshare and sh each exec the next).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("dockerd running").id()
    }

    pub fn sock(&self) -> PathBuf {
        self.dir.path().join("d.sock")
    }

    pub fn restart(&mut self) {
        if let Some(mut c) = self.child.take() {
            stop(&mut c);
        }
        let root = self.dir.path();
        let log = std::fs::File::create(root.join("dockerd.log")).expect("log");
        let mut cmd = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("nsenter");
                c.arg(format!("--net=/run/netns/{ns}")).args(["unshare", "-m", "--propagation", "private", "sh"]);
                c.arg(root.join("in-node.sh")).arg(root).arg("/usr/sbin/dockerd");
                c
            }
            None => Command::new("/usr/sbin/dockerd"),
        };
        // dockerd's and its containerd's temporary files stay in this engine's directory.
        let child = cmd
            .env("TMPDIR", root)
            .arg("--data-root")
            .arg(root.join("data"))
            .arg("--exec-root")
            .arg(root.join("x"))
            .arg("--pidfile")
            .arg(root.join("pid"))
            .arg("-H")
            .arg(format!("unix://{}", self.sock().display()))
            .args(["--iptables=false", "--ip-forward=false", "--bridge=none", "--ip6tables=false"])
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start dockerd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if self.run(&["version"]).code == 0 {
                break;
            }
            assert!(Instant::now() < deadline, "dockerd did not come up: {}", self.log());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dockerd.log")).unwrap_or_default()
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new("/usr/bin/docker");
        c.arg("-H").arg(format!("unix://{}", self.sock().display())).args(args);
        c
    }

    pub fn run(&self, args: &[&str]) -> Ran {
        self.command(args).output().expect("run docker").into()
    }

    fn import_image(&self) {
        let rootfs = self.dir.path().join("rootfs");
        std::fs::create_dir_all(rootfs.join("bin")).unwrap();
        std::fs::create_dir_all(rootfs.join("www/cgi-bin")).unwrap();
        std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
        for applet in ["sh", "httpd", "sleep", "true", "cat", "ip", "wget", "ping", "echo"] {
            std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
        }
        let cgi = rootfs.join("www/cgi-bin/whoami");
        std::fs::write(&cgi, WHOAMI).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&cgi, std::fs::Permissions::from_mode(0o755)).unwrap();
        let tarball = self.dir.path().join("image.tar");
        let ok = Command::new("tar").arg("-C").arg(&rootfs).arg("-cf").arg(&tarball).arg(".").status().unwrap();
        assert!(ok.success(), "tar of the image rootfs failed");
        let out = self.command(&["import"]).arg(&tarball).arg(IMAGE).output().expect("docker import");
        assert!(out.status.success(), "import: {}", String::from_utf8_lossy(&out.stderr));
    }
}

impl Drop for Docker {
    fn drop(&mut self) {
        // Containers first, so dockerd hands every endpoint back to the plugin.
        let ids = self.run(&["ps", "-aq"]).stdout;
        for id in ids.lines() {
            let _ = self.run(&["rm", "-f", id]);
        }
        if let Some(mut c) = self.child.take() {
            stop(&mut c);
        }
        // dockerd leaves mounts under its roots.
        let _ = Command::new("umount").arg("-R").arg(self.dir.path().join("x")).stderr(Stdio::null()).status();
        let _ = Command::new("umount").arg("-R").arg(self.dir.path().join("data")).stderr(Stdio::null()).status();
    }
}

/// The links Join made that are still in this (the root) namespace.
pub fn leftover_links(prefix: &str) -> Vec<String> {
    links_in(None, prefix)
}

/// The links whose names start with `prefix` in namespace `netns` (None: this one).
pub fn links_in(netns: Option<&str>, prefix: &str) -> Vec<String> {
    let mut cmd = Command::new("ip");
    if let Some(ns) = netns {
        cmd.args(["-n", ns]);
    }
    let out = cmd.args(["-o", "link", "show"]).output().expect("ip link");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split(':').nth(1).map(|n| n.trim().split('@').next().unwrap_or("").to_string()))
        .filter(|n| n.starts_with(prefix))
        .collect()
}

/// One test at a time: they share /run/docker/plugins and the root namespace's links.
static SERIAL: Mutex<()> = Mutex::new(());

pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

pub fn driver_name(tag: &str) -> String {
    format!("ul{tag}{}", std::process::id())
}

pub fn world(tag: &str) -> (World, String) {
    let mut w = World::build(WorldSpec::seed(tag).nodes(1).pods(0)).expect("build test world (run as root)");
    let port = w.root_port().expect("root port");
    (w, port)
}

pub fn skip_without_docker(test: &str) -> bool {
    if have_docker() {
        return false;
    }
    panic!("{test}: dockerd or busybox missing: run scripts/deps");
}

pub fn records(dir: &std::path::Path, kind: &str) -> Vec<String> {
    std::fs::read_dir(dir.join(kind))
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default()
}

/// Reserved addresses in the IPAM store (files named by address).
pub fn reservations(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for pool in std::fs::read_dir(dir.join("ipam")).into_iter().flatten().flatten() {
        for f in std::fs::read_dir(pool.path()).into_iter().flatten().flatten() {
            let n = f.file_name().to_string_lossy().into_owned();
            if n.parse::<std::net::IpAddr>().is_ok() {
                out.push(n);
            }
        }
    }
    out.sort();
    out
}

/// Addresses the IPAM store holds for devices a probe found on the LAN.
pub fn foreign_holds(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for pool in std::fs::read_dir(dir.join("ipam")).into_iter().flatten().flatten() {
        for f in std::fs::read_dir(pool.path()).into_iter().flatten().flatten() {
            if std::fs::read_to_string(f.path()).is_ok_and(|t| t.starts_with("foreign-hold ")) {
                out.push(f.file_name().to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    out
}

pub fn post(sock: &std::path::Path, path: &str, body: &[u8]) -> String {
    let mut s = UnixStream::connect(sock).expect("connect plugin socket");
    s.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    let head =
        format!("POST {path} HTTP/1.1\r\nHost: plugin\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}
