//! containerd for the CRI benchmark: the shared runner (`underlay_linux::world::
//! containerd`) inside a test world's node, with private /var/lib/cni and /run/netns,
//! the sandbox image imported. Pod sandboxes are driven through the tests' small
//! python CRI client (`cri.py`), embedded here.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use underlay_linux::Netns;
use underlay_linux::world::containerd::{Containerd as Runner, Place, SANDBOX_IMAGE};

/// The CRI client the macvlan plugin's tests use (python3 and python3-grpcio).
const CLIENT: &str = include_str!("../../../plugins/macvlan/tests/clients/cri.py");

pub struct Containerd {
    runner: Runner,
    client: PathBuf,
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
        let grpc = Command::new("/usr/bin/python3").args(["-c", "import grpc"]).output();
        ensure!(grpc.is_ok_and(|o| o.status.success()), "python3-grpcio missing (scripts/deps)");
        let client = dir.join("cri.py");
        std::fs::write(&client, CLIENT)?;
        let runner = Runner::start(dir, bin, net, Place::Node { netns: node, private_netns: true })
            .context("start containerd (install containerd: scripts/deps)")?;
        let this = Containerd { runner, client };
        let rootfs = dir.join("rootfs");
        crate::podman::busybox_rootfs(&rootfs)?;
        // The sandbox image's entrypoint.
        std::os::unix::fs::symlink("busybox", rootfs.join("bin/sleep"))?;
        let image = dir.join("pause.tar");
        this.client(&["image".as_ref(), image.as_os_str(), rootfs.as_os_str(), SANDBOX_IMAGE.as_ref()])?;
        this.runner.import(&image).context("import the sandbox image")?;
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
                self.runner.sock().as_os_str(),
                name.as_ref(),
                uid.as_ref(),
                "default".as_ref(),
                mode.as_ref(),
            ])
            .map_err(|e| anyhow::anyhow!("{e:#}\ncontainerd's log, last lines:\n{}", self.runner.log()))?;
        let ms: f64 = out.parse().with_context(|| format!("cri.py cycle printed {out:?}"))?;
        Ok(Duration::from_secs_f64(ms / 1000.0))
    }
}
