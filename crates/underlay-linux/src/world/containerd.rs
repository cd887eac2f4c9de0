//! containerd started by hand for tests and benchmarks: a private root, state and
//! socket under a caller's directory, CNI plugins and network configs from the
//! caller's directories, optionally inside a test world's node, and ended by its PID
//! (SIGTERM, then SIGKILL after 10 s). The sandbox image is the caller's to import.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::netns::Netns;

/// The sandbox ("pause") image's name in the config.
pub const SANDBOX_IMAGE: &str = "underlay.test/pause:1";

/// Where containerd runs.
pub enum Place<'a> {
    /// In the caller's namespaces.
    Here,
    /// Inside a test world's node, in a mount namespace of its own with a tmpfs on
    /// /var/lib/cni: plugins that change the namespace they run in (host routes, shims)
    /// change the node's, and stores at their default paths stay private. With
    /// `private_netns`, a tmpfs on /run/netns too, so the sandboxes' namespace pins of
    /// a containerd ended mid-cycle leave no file in the host's.
    Node { netns: &'a Netns, private_netns: bool },
}

pub struct Containerd {
    child: Child,
    pub socket: PathBuf,
    dir: PathBuf,
}

/// `program` on PATH.
pub fn need(program: &str) -> Result<PathBuf> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(program))
        .find(|p| p.exists())
        .ok_or_else(|| Error::new(format!("find {program}"), "not on PATH: install it (scripts/deps)"))
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let what = what.into();
    move |e| Error::new(what, e.to_string())
}

impl Containerd {
    /// Starts containerd with CNI plugins from `bin` and network configs from `net`,
    /// its files under `dir`, and waits for its socket.
    pub fn start(dir: &Path, bin: &Path, net: &Path, place: Place) -> Result<Containerd> {
        let containerd = need("containerd")?;
        need("runc")?;
        let socket = dir.join("containerd.sock");
        let config = dir.join("config.toml");
        std::fs::write(
            &config,
            format!(
                "version = 2\nroot = \"{root}\"\nstate = \"{state}\"\n[grpc]\n  address = \"{sock}\"\n\
                 [plugins.\"io.containerd.grpc.v1.cri\"]\n  sandbox_image = \"{SANDBOX_IMAGE}\"\n  restrict_oom_score_adj = true\n\
                 [plugins.\"io.containerd.grpc.v1.cri\".cni]\n  bin_dir = \"{bin}\"\n  conf_dir = \"{net}\"\n\
                 [plugins.\"io.containerd.grpc.v1.cri\".containerd]\n  snapshotter = \"native\"\n",
                root = dir.join("root").display(),
                state = dir.join("state").display(),
                sock = socket.display(),
                bin = bin.display(),
                net = net.display()
            ),
        )
        .map_err(io(format!("write {}", config.display())))?;
        let mut cmd = match place {
            Place::Here => {
                let mut c = Command::new(&containerd);
                c.arg("--config").arg(&config);
                c
            }
            Place::Node { netns, private_netns } => {
                let mut script = String::from("mkdir -p /var/lib/cni && mount -t tmpfs underlay-test /var/lib/cni && ");
                if private_netns {
                    script += "mkdir -p /run/netns && mount -t tmpfs underlay-test /run/netns && ";
                }
                // sh execs containerd, so the PID is containerd's.
                script += "exec \"$0\" --config \"$1\"";
                let mut c = netns.command("unshare");
                c.args(["-m", "--propagation", "slave", "sh", "-c"]).arg(script).arg(&containerd).arg(&config);
                c
            }
        };
        let log = std::fs::File::create(dir.join("containerd.log")).map_err(io("create containerd.log"))?;
        // Its temporary files (the stack dump it writes on its way down) stay in `dir`.
        let child = cmd.env("TMPDIR", dir).stdout(Stdio::null()).stderr(log).spawn().map_err(io("start containerd"))?;
        let mut this = Containerd { child, socket, dir: dir.to_path_buf() };
        let start = Instant::now();
        while !this.socket.exists() {
            if let Ok(Some(status)) = this.child.try_wait() {
                return Err(Error::new("start containerd", format!("it exited ({status}): {}", this.log())));
            }
            if start.elapsed() > Duration::from_secs(20) {
                return Err(Error::new("start containerd", format!("no socket after 20 s: {}", this.log())));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(this)
    }

    /// Imports an image archive into the CRI's namespace (`k8s.io`).
    pub fn import(&self, archive: &Path) -> Result<()> {
        let what = format!("import {}", archive.display());
        let out = Command::new(need("ctr")?)
            .arg("--address")
            .arg(&self.socket)
            .args(["-n", "k8s.io", "images", "import"])
            .arg(archive)
            .output()
            .map_err(io(what.clone()))?;
        if !out.status.success() {
            return Err(Error::new(what, String::from_utf8_lossy(&out.stderr).into_owned()));
        }
        Ok(())
    }

    pub fn sock(&self) -> &Path {
        &self.socket
    }

    /// The file system as containerd (and the plugins it runs) sees it.
    pub fn root(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root", self.child.id()))
    }

    /// The last lines of containerd's log.
    pub fn log(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("containerd.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(20).collect();
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    }
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
