//! containerd for the CRI benchmark: started inside a test world's node (its own mount
//! namespace, a tmpfs on /var/lib/cni), with private root, state and socket under a
//! temporary directory, the sandbox image imported, and ended by its PID. Pod sandboxes
//! are driven through the tests' small python CRI client (`cri.py`), embedded here.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use underlay_linux::Netns;

/// The CRI client the macvlan plugin's tests use (python3 and python3-grpcio).
const CLIENT: &str = include_str!("../../../plugins/macvlan/tests/clients/cri.py");

/// The sandbox ("pause") image's name.
const IMAGE: &str = "underlay.test/pause:1";

pub struct Containerd {
    child: Child,
    socket: PathBuf,
    client: PathBuf,
    dir: PathBuf,
}

fn need(program: &str) -> Result<PathBuf> {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(program))
        .find(|p| p.exists());
    found.with_context(|| format!("{program} not found: install it (scripts/deps)"))
}

fn check(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().with_context(|| format!("{cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?} failed: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

impl Containerd {
    /// Starts containerd in `node` with CNI plugins from `bin` and network configs from
    /// `net`; everything else lives in `dir`.
    pub fn start(dir: &Path, bin: &Path, net: &Path, node: &Netns) -> Result<Containerd> {
        let containerd = need("containerd")?;
        let ctr = need("ctr")?;
        need("runc")?;
        let grpc = Command::new("/usr/bin/python3").args(["-c", "import grpc"]).output();
        ensure!(grpc.is_ok_and(|o| o.status.success()), "python3-grpcio missing (scripts/deps)");
        let client = dir.join("cri.py");
        std::fs::write(&client, CLIENT)?;
        let socket = dir.join("containerd.sock");
        let config = dir.join("config.toml");
        std::fs::write(
            &config,
            format!(
                "version = 2\nroot = \"{root}\"\nstate = \"{state}\"\n[grpc]\n  address = \"{sock}\"\n\
                 [plugins.\"io.containerd.grpc.v1.cri\"]\n  sandbox_image = \"{IMAGE}\"\n  restrict_oom_score_adj = true\n\
                 [plugins.\"io.containerd.grpc.v1.cri\".cni]\n  bin_dir = \"{bin}\"\n  conf_dir = \"{net}\"\n\
                 [plugins.\"io.containerd.grpc.v1.cri\".containerd]\n  snapshotter = \"native\"\n",
                root = dir.join("root").display(),
                state = dir.join("state").display(),
                sock = socket.display(),
                bin = bin.display(),
                net = net.display()
            ),
        )?;
        // unshare and sh exec, so the PID is containerd's; the tmpfs keeps the plugins'
        // stores at their default paths private, and the one on /run/netns the sandboxes'
        // namespace pins: a containerd ended mid-cycle leaves no file in the host's.
        let mut cmd = node.command("unshare");
        cmd.args(["-m", "--propagation", "slave", "sh", "-c"])
            .arg(
                "mkdir -p /var/lib/cni /run/netns && mount -t tmpfs underlay-bench /var/lib/cni && \
                  mount -t tmpfs underlay-bench /run/netns && exec \"$0\" --config \"$1\"",
            )
            .arg(&containerd)
            .arg(&config);
        let child = cmd
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("containerd.log"))?)
            .spawn()
            .context("start containerd (install containerd: scripts/deps)")?;
        let mut this = Containerd { child, socket, client, dir: dir.to_path_buf() };
        let start = Instant::now();
        while !this.socket.exists() {
            if let Some(status) = this.child.try_wait()? {
                bail!("containerd exited ({status}): {}", this.log());
            }
            ensure!(start.elapsed() < Duration::from_secs(20), "containerd did not start: {}", this.log());
            std::thread::sleep(Duration::from_millis(50));
        }
        let rootfs = dir.join("rootfs");
        crate::podman::busybox_rootfs(&rootfs)?;
        // The sandbox image's entrypoint.
        std::os::unix::fs::symlink("busybox", rootfs.join("bin/sleep"))?;
        let image = dir.join("pause.tar");
        this.client(&["image".as_ref(), image.as_os_str(), rootfs.as_os_str(), IMAGE.as_ref()])?;
        check(
            Command::new(&ctr)
                .arg("--address")
                .arg(&this.socket)
                .args(["-n", "k8s.io", "images", "import"])
                .arg(&image),
        )
        .context("import the sandbox image")?;
        Ok(this)
    }

    fn client(&self, args: &[&std::ffi::OsStr]) -> Result<String> {
        check(Command::new("/usr/bin/python3").arg(&self.client).args(args))
    }

    /// RunPodSandbox, StopPodSandbox and RemovePodSandbox of one sandbox named `name`, in
    /// the node's network when `node_network`; the three calls' time as the client
    /// measured it (not the python interpreter's start).
    pub fn cycle(&self, name: &str, node_network: bool) -> Result<Duration> {
        let uid = format!("uid-{name}-{}", std::process::id());
        let mode = if node_network { "node" } else { "pod" };
        let out = self
            .client(&[
                "cycle".as_ref(),
                self.socket.as_os_str(),
                name.as_ref(),
                uid.as_ref(),
                "default".as_ref(),
                mode.as_ref(),
            ])
            .map_err(|e| anyhow::anyhow!("{e:#}\ncontainerd's log, last lines:\n{}", self.log()))?;
        let ms: f64 = out.parse().with_context(|| format!("cri.py cycle printed {out:?}"))?;
        Ok(Duration::from_secs_f64(ms / 1000.0))
    }

    fn log(&self) -> String {
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
