//! End to end through Podman: `podman run --rm … true` on a macvlan network with our
//! plugins (CNI backend), with the reference plugins (CNI backend), and with Podman's
//! own netavark backend, on the same parent, interleaved round by round with
//! `--network none`. A backend's network share is its median minus the median of
//! `--network none`. Beside it the floor: the smallest processes making the kernel
//! calls of ADD and of DEL for the same link.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use comfy_table::Table;
use serde_json::json;
use underlay_linux::Netns;
use underlay_linux::world::{World, WorldSpec};

use crate::floor::{process_add, process_delete};
use crate::macvlan::{ms, ratio};
use crate::measure::{mb, peak_rss_kb, percentiles, sibling};

#[derive(clap::Args)]
pub struct Args {
    /// Interleaved rounds (each runs every backend once).
    #[arg(long, default_value_t = 25)]
    rounds: usize,
    /// Directory with the reference plugins.
    #[arg(long, default_value = "/usr/lib/cni")]
    reference: PathBuf,
}

impl Args {
    /// The sizes of `--quick`.
    pub fn quick(self) -> Args {
        Args { rounds: 1, ..self }
    }
}

/// One way to run the container's network.
struct Backend {
    name: &'static str,
    conf: PathBuf,
    network: &'static str,
    samples: Vec<Duration>,
}

/// A root filesystem with busybox and its applets.
pub(crate) fn busybox_rootfs(dir: &Path) -> Result<()> {
    let busybox = Path::new("/bin/busybox");
    ensure!(busybox.exists(), "/bin/busybox not found: install busybox-static (scripts/deps)");
    for d in ["bin", "proc", "sys", "dev", "etc", "tmp"] {
        std::fs::create_dir_all(dir.join(d))?;
    }
    std::fs::copy(busybox, dir.join("bin/busybox"))?;
    std::os::unix::fs::symlink("busybox", dir.join("bin/true"))?;
    Ok(())
}

/// A CNI backend: a plugin directory with `macvlan` and `host-local`, and a conflist.
fn cni_backend(dir: &Path, macvlan: &Path, host_local: &Path, parent: &str) -> Result<PathBuf> {
    let (bin, net) = (dir.join("bin"), dir.join("net"));
    std::fs::create_dir_all(&bin)?;
    std::fs::create_dir_all(&net)?;
    std::os::unix::fs::symlink(macvlan, bin.join("macvlan"))?;
    std::os::unix::fs::symlink(host_local, bin.join("host-local"))?;
    // Ours with conflict detection off: the reference's (and netavark's) work; what
    // probing adds is `underlay-bench macvlan`'s probing rows. The reference ignores the key.
    let conflist = json!({"cniVersion": "1.0.0", "name": "ulbench", "plugins": [{
        "type": "macvlan", "master": parent, "mode": "bridge", "conflictDetection": false,
        "ipam": {"type": "host-local", "dataDir": dir.join("data"),
                 "ranges": [[{"subnet": "192.168.1.0/24", "rangeStart": "192.168.1.100", "rangeEnd": "192.168.1.200"}]]}}]});
    std::fs::write(net.join("ulbench.conflist"), conflist.to_string())?;
    containers_conf(dir, &format!("network_backend = \"cni\"\ncni_plugin_dirs = [\"{}\"]\n", bin.display()), &net)
}

/// A private containers.conf (see the machine notes: runc, cgroupfs, ulimits).
fn containers_conf(dir: &Path, network: &str, net_dir: &Path) -> Result<PathBuf> {
    let conf = dir.join("containers.conf");
    std::fs::write(
        &conf,
        format!(
            "[containers]\ndefault_ulimits = [\"nofile=20000:20000\", \"nproc=32768:32768\"]\n\
             [network]\n{network}network_config_dir = \"{}\"\n\
             [engine]\nruntime = \"runc\"\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n",
            net_dir.display()
        ),
    )?;
    Ok(conf)
}

fn podman(conf: &Path, state: &Path) -> Command {
    let mut c = Command::new("podman");
    c.env("CONTAINERS_CONF", conf).args(["--storage-driver", "vfs", "--root"]).arg(state.join("root"));
    c.arg("--runroot").arg(state.join("runroot")).arg("--tmpdir").arg(state.join("tmp"));
    c
}

fn check(cmd: &mut Command) -> Result<()> {
    underlay_linux::interrupt::check()?;
    let out = cmd.output().with_context(|| format!("{cmd:?} (install podman: scripts/deps)"))?;
    if !out.status.success() {
        bail!("{cmd:?} failed: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

pub fn run(args: Args) -> Result<()> {
    let mut world =
        World::build(WorldSpec::seed("pbench").nodes(0).pods(0)).context("build the test world (run as root)")?;
    let parent = world.root_port()?;
    let tmp = tempfile::tempdir()?;
    let (state, rootfs) = (tmp.path().join("state"), tmp.path().join("rootfs"));
    busybox_rootfs(&rootfs)?;
    let ours = cni_backend(&tmp.path().join("ours"), &sibling("macvlan"), &sibling("host-local"), &parent)?;
    let reference = cni_backend(
        &tmp.path().join("ref"),
        &args.reference.join("macvlan"),
        &args.reference.join("host-local"),
        &parent,
    )?;
    let netavark_dir = tmp.path().join("netavark");
    std::fs::create_dir_all(netavark_dir.join("net"))?;
    let netavark = containers_conf(&netavark_dir, "network_backend = \"netavark\"\n", &netavark_dir.join("net"))?;
    let mut backends = vec![
        Backend { name: "--network none", conf: ours.clone(), network: "none", samples: vec![] },
        Backend { name: "ours (CNI backend)", conf: ours, network: "ulbench", samples: vec![] },
        Backend { name: "reference plugins (CNI backend)", conf: reference, network: "ulbench", samples: vec![] },
    ];
    if Path::new("/usr/lib/podman/netavark").exists() {
        check(
            podman(&netavark, &state)
                .args(["network", "create", "-d", "macvlan", "-o"])
                .arg(format!("parent={parent}"))
                .args(["--subnet", "192.168.1.0/24", "--ip-range", "192.168.1.100/26", "ulbench"]),
        )?;
        backends.push(Backend { name: "netavark (Podman's own)", conf: netavark, network: "ulbench", samples: vec![] });
    } else {
        eprintln!("netavark not installed (/usr/lib/podman/netavark): its row is left out (scripts/deps installs it)");
    }
    let pod = Netns::create(&format!("ul-pbench-floor-{}", std::process::id()))?;
    let floor_pod = scopeguard(pod);
    let (mut floor_add, mut floor_del) = (Vec::new(), Vec::new());
    eprintln!("{} interleaved rounds of podman run --rm ... true ({} backends) ...", args.rounds, backends.len());
    for round in 0..=args.rounds {
        let n = backends.len();
        for k in 0..n {
            let b = &mut backends[(round + k) % n];
            let start = Instant::now();
            check(
                podman(&b.conf, &state)
                    .args(["run", "--rm", "--network", b.network, "--rootfs"])
                    .arg(&rootfs)
                    .arg("/bin/true"),
            )?;
            // Round 0 warms caches and is not counted.
            if round > 0 {
                b.samples.push(start.elapsed());
            }
        }
        floor_add.push(process_add(&floor_pod.0, &parent, "192.168.1.250/24".parse()?)?);
        floor_del.push(process_delete(&floor_pod.0)?);
    }
    let (fa, fd) = (percentiles(&floor_add).0, percentiles(&floor_del).0);
    let floor = fa + fd;
    let none = percentiles(&backends[0].samples).0;
    let spread = |s: &[Duration]| {
        let mut ms: Vec<f64> = s.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
        ms.sort_by(f64::total_cmp);
        let q = |x: f64| ms[((ms.len() as f64 - 1.0) * x).round() as usize];
        (q(0.25), q(0.75))
    };
    let ours_share = percentiles(&backends[1].samples).0 - none;
    let mut t = Table::new();
    t.set_header(["backend", "run --rm p50", "p25 .. p75", "network share", "share / ours", "share above the floor"]);
    for b in &backends {
        let p50 = percentiles(&b.samples).0;
        let (lo, hi) = spread(&b.samples);
        let share = p50 - none;
        let is_none = b.network == "none";
        t.add_row([
            b.name.to_string(),
            ms(p50),
            format!("{lo:.1} .. {hi:.1} ms"),
            if is_none { "-".into() } else { ms(share) },
            if is_none { "-".into() } else { ratio(share, ours_share) },
            if is_none { "-".into() } else { ms(share - floor) },
        ]);
    }
    let conf = serde_json::to_vec(&json!({"cniVersion": "1.0.0", "name": "rss", "type": "macvlan", "master": parent,
        "ipam": {"type": "host-local", "subnet": "192.168.1.0/24", "rangeStart": "192.168.1.201", "dataDir": tmp.path().join("rss")}}))?;
    let peak = |bin: &Path| -> Result<u64> {
        let mut add = Command::new(bin);
        add.env_clear().env("CNI_COMMAND", "ADD").env("CNI_CONTAINERID", "rss").env("CNI_NETNS", floor_pod.0.path());
        add.env("CNI_IFNAME", "eth0").env("CNI_PATH", bin.parent().unwrap_or(Path::new("/")));
        let kb = peak_rss_kb(&mut add, &conf)?;
        let mut del = Command::new(bin);
        del.env_clear().env("CNI_COMMAND", "DEL").env("CNI_CONTAINERID", "rss").env("CNI_NETNS", floor_pod.0.path());
        del.env("CNI_IFNAME", "eth0").env("CNI_PATH", bin.parent().unwrap_or(Path::new("/")));
        crate::measure::timed(&mut del, &conf)?;
        Ok(kb)
    };
    let (ours_kb, ref_kb) = (peak(&sibling("macvlan"))?, peak(&args.reference.join("macvlan"))?);
    println!("podman run --rm --rootfs busybox /bin/true, {} interleaved rounds on one macvlan parent", args.rounds);
    println!("ours with conflictDetection off, as the peers work (probing's cost: `underlay-bench macvlan`)");
    println!("{t}");
    println!(
        "floor (the smallest processes making ADD's and DEL's kernel calls for the same link): ADD {} + DEL {} = {}",
        ms(fa),
        ms(fd),
        ms(floor)
    );
    println!(
        "peak memory of one macvlan ADD (with host-local): ours {}, reference {} ({})",
        mb(ours_kb),
        mb(ref_kb),
        ratio(ours_kb as f64, ref_kb as f64)
    );
    drop(world);
    Ok(())
}

/// Deletes the floor's namespace when dropped.
struct FloorPod(Netns, String);

impl Drop for FloorPod {
    fn drop(&mut self) {
        let _ = Netns::delete(&self.1);
    }
}

fn scopeguard(pod: Netns) -> FloorPod {
    let name = pod.name().unwrap_or_default().to_string();
    FloorPod(pod, name)
}
