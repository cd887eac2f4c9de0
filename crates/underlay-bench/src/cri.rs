//! End to end through containerd's CRI (the kubelet's path): RunPodSandbox ->
//! StopPodSandbox -> RemovePodSandbox on a macvlan network with our plugins and with
//! the reference plugins, interleaved round by round (the order rotates) with a sandbox
//! in the node's network (`namespace_options.network = NODE`), which runs no CNI plugin
//! at all: the baseline. An implementation's network share is, per round, its cycle
//! minus that round's baseline cycle. One containerd runs every cycle; the
//! implementations take turns by swapping the `macvlan` and `host-local` links in its
//! plugin directory (it execs them anew for each sandbox). containerd runs inside a test
//! world's node, so nothing touches the root namespace. Beside it the floor (the
//! smallest processes making ADD's and DEL's kernel calls for the same link), what
//! containerd itself adds to a pod network whatever the plugins (a named namespace made
//! and removed, the reference `loopback` plugin's ADD and DEL), and each macvlan
//! plugin's peak memory for ADD and DEL.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use comfy_table::Table;
use serde_json::json;
use underlay_linux::Netns;
use underlay_linux::world::{World, WorldSpec};

use crate::containerd::Containerd;
use crate::floor::{process_add_from, process_delete};
use crate::macvlan::{ms, ratio};
use crate::measure::{mb, peak_rss_kb, percentiles, sibling, timed};

#[derive(clap::Args)]
pub struct Args {
    /// Interleaved rounds (each runs every implementation and the baseline once).
    #[arg(long, default_value_t = 25)]
    rounds: usize,
    /// Directory with the reference plugins.
    #[arg(long, default_value = "/usr/lib/cni")]
    reference: PathBuf,
}

impl Args {
    /// The sizes of `--quick`.
    pub fn quick(self) -> Args {
        Args { rounds: 2, ..self }
    }
}

/// One way to run the sandbox's network.
struct Way {
    name: &'static str,
    /// The plugin directory whose `macvlan` and `host-local` containerd runs; none for
    /// the node's network.
    plugins: Option<PathBuf>,
    samples: Vec<Duration>,
}

/// Points `bin/macvlan` and `bin/host-local` at `from`'s, each by an atomic rename.
fn use_plugins(bin: &Path, from: &Path) -> Result<()> {
    for name in ["macvlan", "host-local"] {
        let target = from.join(name);
        ensure!(
            target.exists(),
            "{} not found (build the workspace; install containernetworking-plugins)",
            target.display()
        );
        let new = bin.join(format!(".{name}.new"));
        let _ = std::fs::remove_file(&new);
        std::os::unix::fs::symlink(&target, &new)?;
        std::fs::rename(&new, bin.join(name))?;
    }
    Ok(())
}

/// p25 and p75 of a set of durations, in milliseconds.
fn spread(samples: &[f64]) -> (f64, f64) {
    let mut ms = samples.to_vec();
    ms.sort_by(f64::total_cmp);
    let q = |x: f64| ms[((ms.len() as f64 - 1.0) * x).round() as usize];
    (q(0.25), q(0.75))
}

fn median(samples: &[f64]) -> f64 {
    let mut ms = samples.to_vec();
    ms.sort_by(f64::total_cmp);
    (ms[(ms.len() - 1) / 2] + ms[ms.len() / 2]) / 2.0
}

pub fn run(args: Args) -> Result<()> {
    let world =
        World::build(WorldSpec::seed("cbench").nodes(1).pods(0)).context("build the test world (run as root)")?;
    let node = &world.node(0);
    let parent = node.ifname.clone();
    let tmp = tempfile::tempdir()?;
    let (bin, net) = (tmp.path().join("bin"), tmp.path().join("net"));
    std::fs::create_dir_all(&bin)?;
    std::fs::create_dir_all(&net)?;
    // containerd adds the sandbox's loopback itself, with the reference `loopback`.
    std::os::unix::fs::symlink(args.reference.join("loopback"), bin.join("loopback"))?;
    let ours_dir = sibling("macvlan").parent().map(Path::to_path_buf).unwrap_or_default();
    use_plugins(&bin, &ours_dir)?;
    use_plugins(&bin, &args.reference)?;
    // Ours with conflict detection off: the reference's work (probing's cost is
    // `underlay-bench macvlan`'s probing rows). The reference ignores the key.
    let conflist = json!({"cniVersion": "1.0.0", "name": "ulbench", "plugins": [{
        "type": "macvlan", "master": parent, "mode": "bridge", "conflictDetection": false,
        "ipam": {"type": "host-local",
                 "ranges": [[{"subnet": "192.168.1.0/24", "rangeStart": "192.168.1.100", "rangeEnd": "192.168.1.200"}]]}}]});
    std::fs::write(net.join("10-ulbench.conflist"), conflist.to_string())?;
    let containerd = Containerd::start(tmp.path(), &bin, &net, &node.netns)?;
    let mut ways = [
        Way { name: "node network (no CNI)", plugins: None, samples: vec![] },
        Way { name: "ours", plugins: Some(ours_dir), samples: vec![] },
        Way { name: "reference plugins", plugins: Some(args.reference.clone()), samples: vec![] },
    ];
    let floor_pod = FloorPod::create()?;
    let (mut floor_add, mut floor_del, mut own) = (Vec::new(), Vec::new(), Vec::new());
    eprintln!("{} interleaved rounds of RunPodSandbox + StopPodSandbox + RemovePodSandbox ...", args.rounds);
    for round in 0..=args.rounds {
        let n = ways.len();
        for k in 0..n {
            underlay_linux::interrupt::check()?;
            let way = &mut ways[(round + k) % n];
            if let Some(dir) = &way.plugins {
                use_plugins(&bin, dir)?;
            }
            let took = containerd.cycle(&format!("ulbench-{round}-{k}"), way.plugins.is_none())?;
            // Round 0 warms caches and is not counted.
            if round > 0 {
                way.samples.push(took);
            }
        }
        floor_add.push(process_add_from(&node.netns, &floor_pod.0, &parent, "192.168.1.250/24".parse()?)?);
        floor_del.push(process_delete(&floor_pod.0)?);
        own.push(containerd_part(&args.reference.join("loopback"))?);
    }
    let (fa, fd) = (percentiles(&floor_add).0, percentiles(&floor_del).0);
    let floor = fa + fd;
    let own = percentiles(&own).0;
    let millis = |s: &[Duration]| s.iter().map(|d| d.as_secs_f64() * 1000.0).collect::<Vec<f64>>();
    let base = millis(&ways[0].samples);
    // Per round: the cycle minus the same round's baseline.
    let shares: Vec<Vec<f64>> =
        ways.iter().map(|w| millis(&w.samples).iter().zip(&base).map(|(c, b)| c - b).collect()).collect();
    let (ours_cycle, ref_cycle) = (median(&millis(&ways[1].samples)), median(&millis(&ways[2].samples)));
    let (ours_share, ref_share) = (median(&shares[1]), median(&shares[2]));
    let mut t = Table::new();
    t.set_header([
        "sandbox network",
        "cycle p50",
        "p25 .. p75",
        "network share p50",
        "p25 .. p75",
        "share above the floor",
        "above floor + containerd's part",
    ]);
    for (way, share) in ways.iter().zip(&shares) {
        let cycle = millis(&way.samples);
        let (lo, hi) = spread(&cycle);
        let is_base = way.plugins.is_none();
        let (slo, shi) = spread(share);
        t.add_row([
            way.name.to_string(),
            ms(median(&cycle)),
            format!("{lo:.1} .. {hi:.1} ms"),
            if is_base { "-".into() } else { ms(median(share)) },
            if is_base { "-".into() } else { format!("{slo:.1} .. {shi:.1} ms") },
            if is_base { "-".into() } else { ms(median(share) - floor) },
            if is_base { "-".into() } else { ms(median(share) - floor - own) },
        ]);
    }
    t.add_row([
        "floor (ADD + DEL processes)".to_string(),
        "-".into(),
        "-".into(),
        ms(floor),
        format!("ADD {} + DEL {}", ms(fa), ms(fd)),
        "-".into(),
        "-".into(),
    ]);
    t.add_row([
        "containerd's part (netns + loopback)".to_string(),
        "-".into(),
        "-".into(),
        ms(own),
        "make + ADD + DEL + remove".into(),
        "-".into(),
        "-".into(),
    ]);
    let peaks = [peak(&sibling("macvlan"), &node.netns, &floor_pod.0, &parent, tmp.path())?, {
        peak(&args.reference.join("macvlan"), &node.netns, &floor_pod.0, &parent, tmp.path())?
    }];
    println!(
        "containerd CRI RunPodSandbox -> StopPodSandbox -> RemovePodSandbox, {} interleaved rounds on one macvlan parent",
        args.rounds
    );
    println!("ours with conflictDetection off, as the reference works (probing's cost: `underlay-bench macvlan`)");
    println!("{t}");
    println!(
        "ratio ours/reference: cycle {}, network share {}",
        ratio(ours_cycle, ref_cycle),
        ratio(ours_share, ref_share)
    );
    let mut m = Table::new();
    m.set_header(["macvlan plugin process (with host-local)", "ADD VmHWM", "DEL VmHWM"]);
    m.add_row(["ours".to_string(), mb(peaks[0].0), mb(peaks[0].1)]);
    m.add_row(["reference".to_string(), mb(peaks[1].0), mb(peaks[1].1)]);
    m.add_row([
        "ours/reference".to_string(),
        ratio(peaks[0].0 as f64, peaks[1].0 as f64),
        ratio(peaks[0].1 as f64, peaks[1].1 as f64),
    ]);
    println!("peak memory, one ADD and one DEL run as containerd runs them:\n{m}");
    drop(containerd);
    drop(world);
    Ok(())
}

/// Peak memory (KiB) of the macvlan plugin `bin` for one ADD and one DEL, run in `node`
/// on `pod`, with host-local from the same directory.
fn peak(bin: &Path, node: &Netns, pod: &Netns, parent: &str, dir: &Path) -> Result<(u64, u64)> {
    let conf = serde_json::to_vec(&json!({"cniVersion": "1.0.0", "name": "rss", "type": "macvlan", "master": parent,
        "ipam": {"type": "host-local", "subnet": "192.168.1.0/24", "rangeStart": "192.168.1.201", "dataDir": dir.join("rss")}}))?;
    let call = |command: &str| -> Command {
        let mut c = node.command(bin);
        c.env_clear().env("CNI_COMMAND", command).env("CNI_CONTAINERID", "rss").env("CNI_NETNS", pod.path());
        c.env("CNI_IFNAME", "eth0").env("CNI_PATH", bin.parent().unwrap_or(Path::new("/")));
        c
    };
    let add = peak_rss_kb(&mut call("ADD"), &conf)?;
    let del = match peak_rss_kb(&mut call("DEL"), &conf) {
        Ok(kb) => kb,
        Err(e) => {
            // Whatever failed, the link and reservation must still go.
            let _ = timed(&mut call("DEL"), &conf);
            return Err(e);
        }
    };
    Ok((add, del))
}

/// What containerd does for any pod network besides our plugins' calls: a named
/// namespace made, the reference `loopback` plugin's ADD and DEL in it, the namespace
/// removed. Timed in one go.
fn containerd_part(loopback: &Path) -> Result<Duration> {
    let name = format!("ul-cbench-lo-{}", std::process::id());
    let conf = br#"{"cniVersion": "1.0.0", "name": "lo", "type": "loopback"}"#;
    let start = Instant::now();
    let pod = FloorPod(Netns::create(&name)?, name);
    for command in ["ADD", "DEL"] {
        let mut c = Command::new(loopback);
        c.env_clear().env("CNI_COMMAND", command).env("CNI_CONTAINERID", "lo").env("CNI_NETNS", pod.0.path());
        c.env("CNI_IFNAME", "lo").env("CNI_PATH", loopback.parent().unwrap_or(Path::new("/")));
        timed(&mut c, conf)?;
    }
    drop(pod);
    Ok(start.elapsed())
}

/// The floor's pod namespace, deleted when dropped.
struct FloorPod(Netns, String);

impl FloorPod {
    fn create() -> Result<FloorPod> {
        let name = format!("ul-cbench-floor-{}", std::process::id());
        Ok(FloorPod(Netns::create(&name)?, name))
    }
}

impl Drop for FloorPod {
    fn drop(&mut self) {
        let _ = Netns::delete(&self.1);
    }
}
