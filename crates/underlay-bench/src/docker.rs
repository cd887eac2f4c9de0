//! End to end through Docker Engine: `docker run --rm IMAGE true` on a network of our
//! driver (`underlay-docker-plugin`) and on one of Docker's built-in macvlan driver, on
//! the same parent, interleaved round by round with `--network none`. Prints medians,
//! the ratio ours/built-in, each network's share (median minus `none`'s) and the
//! plugin daemon's peak memory (VmHWM). dockerd and the plugin are private to this
//! run and stopped by PID; the parent is a root-namespace veth into a test world.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use comfy_table::Table;
use underlay_linux::world::{World, WorldSpec};

use crate::measure::{percentiles, sibling};

#[derive(clap::Args)]
pub struct Args {
    /// Interleaved rounds (each runs every network once).
    #[arg(long, default_value_t = 25)]
    rounds: usize,
}

impl Args {
    pub fn quick(self) -> Args {
        Args { rounds: 1 }
    }
}

const IMAGE: &str = "ulbenchbox";

/// A child stopped with SIGTERM (then SIGKILL) when dropped.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.0.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Engine {
    sock: String,
}

impl Engine {
    fn docker(&self, args: &[&str]) -> Command {
        let mut c = Command::new("/usr/bin/docker");
        c.args(["-H", &self.sock]).args(args);
        c
    }

    fn ok(&self, args: &[&str]) -> Result<()> {
        underlay_linux::interrupt::check()?;
        let out = self.docker(args).output().context("run docker")?;
        ensure!(out.status.success(), "docker {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
        Ok(())
    }

    fn timed_run(&self, network: &str) -> Result<Duration> {
        let start = Instant::now();
        self.ok(&["run", "--rm", "--network", network, IMAGE, "true"])?;
        Ok(start.elapsed())
    }
}

fn vm_hwm_kb(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).context("no VmHWM")?;
    Ok(line.split_whitespace().nth(1).context("VmHWM value")?.parse()?)
}

fn image(dir: &Path, engine: &Engine) -> Result<()> {
    let root = dir.join("rootfs");
    std::fs::create_dir_all(root.join("bin"))?;
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).context("copy /bin/busybox (busybox-static)")?;
    std::os::unix::fs::symlink("busybox", root.join("bin/true"))?;
    let tar = dir.join("image.tar");
    ensure!(Command::new("tar").arg("-C").arg(&root).arg("-cf").arg(&tar).arg(".").status()?.success(), "tar");
    engine.ok(&["import", tar.to_str().context("path")?, IMAGE])
}

pub fn run(args: Args) -> Result<()> {
    ensure!(Path::new("/usr/sbin/dockerd").exists(), "dockerd not found: install docker.io (scripts/deps)");
    let mut world = World::build(WorldSpec::seed("bdock").nodes(1).pods(0))?;
    let parent = world.root_port()?;
    let dir = tempfile::Builder::new().prefix("ulbd").tempdir_in("/tmp")?;
    let driver = format!("ulbench{}", std::process::id());
    let socket = format!("/run/docker/plugins/{driver}.sock");
    let plugin = Daemon(
        Command::new(sibling("underlay-docker-plugin"))
            .args(["--name", &driver, "--state-dir"])
            .arg(dir.path().join("state"))
            .stdout(Stdio::null())
            .spawn()
            .context("start underlay-docker-plugin (build it: cargo build --release --bin underlay-docker-plugin)")?,
    );
    let engine = Engine { sock: format!("unix://{}/d.sock", dir.path().display()) };
    let log = std::fs::File::create(dir.path().join("dockerd.log"))?;
    // What dockerd and its containerd write as temporary files (containerd's stack dump
    // on its way down, say) goes with this run's directory.
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp)?;
    let dockerd = Daemon(
        Command::new("/usr/sbin/dockerd")
            .env("TMPDIR", &tmp)
            .arg("--data-root")
            .arg(dir.path().join("data"))
            .arg("--exec-root")
            .arg(dir.path().join("x"))
            .arg("--pidfile")
            .arg(dir.path().join("pid"))
            .args(["-H", &engine.sock, "--iptables=false", "--ip6tables=false", "--ip-forward=false", "--bridge=none"])
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("start dockerd")?,
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while !engine.docker(&["version"]).output()?.status.success() || !Path::new(&socket).exists() {
        underlay_linux::interrupt::check()?;
        if Instant::now() > deadline {
            bail!("dockerd or the plugin did not come up (see {})", dir.path().join("dockerd.log").display());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let result = measure(&args, &engine, dir.path(), &driver, &parent, plugin.0.id());
    let _ = engine.docker(&["network", "rm", "ours", "builtin"]).output();
    drop(dockerd);
    drop(plugin);
    for sub in ["x", "data"] {
        // dockerd usually unmounts on exit; this catches what a crash left.
        let _ = Command::new("umount").arg("-R").arg(dir.path().join(sub)).stderr(Stdio::null()).status();
    }
    result
}

fn measure(args: &Args, engine: &Engine, dir: &Path, driver: &str, parent: &str, plugin_pid: u32) -> Result<()> {
    image(dir, engine)?;
    let p = format!("parent={parent}");
    engine.ok(&["network", "create", "-d", driver, "--subnet", "192.168.1.0/24", "-o", &p, "ours"])?;
    // Docker's own driver probes nothing: this one is ours like for like.
    let off = ["-o", "conflict_detection=false"];
    engine.ok(&[
        &["network", "create", "-d", driver, "--subnet", "192.168.2.0/24", "-o", &p][..],
        &off,
        &["noprobe"],
    ]
    .concat())?;
    engine.ok(&["network", "create", "-d", "macvlan", "--subnet", "10.77.0.0/24", "-o", &p, "builtin"])?;
    let nets = ["ours", "noprobe", "builtin", "none"];
    let (ours, noprobe, builtin, none) = (0, 1, 2, 3);
    for n in nets {
        engine.timed_run(n)?; // warm-up: image layers, plugin activation
    }
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); nets.len()];
    for round in 0..args.rounds {
        // Rotate the order so no network always runs right after another.
        for k in 0..nets.len() {
            let i = (round + k) % nets.len();
            samples[i].push(engine.timed_run(nets[i])?);
        }
    }
    let p50: Vec<f64> = samples.iter().map(|s| percentiles(s).0).collect();
    let mut table = Table::new();
    table.set_header(["docker run --rm true", "p50 ms", "p99 ms", "network share ms"]);
    let label =
        ["ours (conflict detection on, the default)", "ours, conflict_detection=false", "builtin macvlan", "none"];
    for (i, n) in label.iter().enumerate() {
        let (a, b) = percentiles(&samples[i]);
        table.add_row([n.to_string(), format!("{a:.1}"), format!("{b:.1}"), format!("{:.1}", a - p50[none])]);
    }
    println!("{table}");
    println!("rounds: {} (interleaved, order rotated)", args.rounds);
    println!("ratio ours/builtin (p50 wall time), probing off as builtin: {:.3}", p50[noprobe] / p50[builtin]);
    println!("ratio ours/builtin (p50 wall time), probing on (the default): {:.3}", p50[ours] / p50[builtin]);
    let share = |i: usize| p50[i] - p50[none];
    println!(
        "network share ours {:.1} ms (probing off {:.1} ms), builtin {:.1} ms",
        share(ours),
        share(noprobe),
        share(builtin)
    );
    println!("plugin daemon peak memory (VmHWM): {:.1} MB", vm_hwm_kb(plugin_pid)? as f64 / 1024.0);
    Ok(())
}
