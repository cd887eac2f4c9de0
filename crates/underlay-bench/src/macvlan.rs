//! macvlan: ADD and DEL latency, N ADDs at once, and the floor under any DEL: the
//! kernel's own time to delete the link. Ours and the reference run in the same world,
//! their samples interleaved so both see the same machine; every DEL comes a fixed
//! time after its ADD, as in life. The floors are measured on links made by our own
//! ADD, after the same wait, so they delete exactly what our DEL deletes: once by a
//! netlink request from this process, once by the smallest process that can do it.
//! (Deleting a link waits out RCU grace periods; their length depends on what ran
//! just before, so a floor measured on a differently made link drifts by milliseconds.)

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use comfy_table::Table;
use serde_json::json;
use underlay_linux::world::{World, WorldSpec};
use underlay_linux::{Netlink, Netns};

use crate::floor::{process_add, process_delete};
use crate::measure::{mb, peak_rss_kb, percentiles, plugin_call, sibling, timed};

#[derive(clap::Args)]
pub struct Args {
    /// Sequential ADD+DEL cycles per implementation.
    #[arg(long, default_value_t = 300)]
    iterations: usize,
    /// Concurrent ADDs (then as many DELs) per round.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Concurrent rounds per implementation.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Time between an ADD and its DEL, in milliseconds.
    #[arg(long, default_value_t = 20)]
    settle_ms: u64,
    /// Directory with the reference plugins.
    #[arg(long, default_value = "/usr/lib/cni")]
    reference: PathBuf,
}

impl Args {
    /// The sizes of `--quick`.
    pub fn quick(self) -> Args {
        Args { iterations: 3, concurrency: 4, rounds: 1, ..self }
    }
}

pub(crate) struct Impl {
    pub(crate) name: &'static str,
    dir: tempfile::TempDir,
    pub(crate) data: tempfile::TempDir,
    pub(crate) add: Vec<Duration>,
    pub(crate) del: Vec<Duration>,
    /// `conflictDetection` in the config: `None` leaves the key out (the plugin's
    /// default, and the reference, which has no such key).
    pub(crate) conflict_detection: Option<bool>,
}

impl Impl {
    pub(crate) fn new(name: &'static str, macvlan: &Path, host_local: &Path) -> Result<Impl> {
        anyhow::ensure!(macvlan.exists(), "{} not found (cargo build --release; scripts/deps)", macvlan.display());
        let dir = tempfile::tempdir()?;
        std::os::unix::fs::symlink(macvlan, dir.path().join("macvlan"))?;
        std::os::unix::fs::symlink(host_local, dir.path().join("host-local"))?;
        Ok(Impl { name, dir, data: tempfile::tempdir()?, add: vec![], del: vec![], conflict_detection: None })
    }

    pub(crate) fn conf(&self) -> Vec<u8> {
        let mut conf = json!({"cniVersion": "1.0.0", "name": "bench", "type": "macvlan", "master": "enp0s3",
            "mode": "bridge", "ipam": {"type": "host-local", "subnet": "10.77.0.0/16", "dataDir": self.data.path()}});
        if let Some(on) = self.conflict_detection {
            conf["conflictDetection"] = json!(on);
        }
        serde_json::to_vec(&conf).expect("serializes")
    }

    /// The plugin as a runtime starts it. The benchmark's thread is already in the
    /// node's namespace, so the child inherits it without a pre-exec hook (which would
    /// force a slow fork of this whole process).
    pub(crate) fn command(&self, verb: &str, cid: &str, pod: &Netns) -> Command {
        plugin_call(self.dir.path(), "macvlan", verb, cid, pod)
    }

    /// ADD, wait, then `floor` deletes the link (timed) and our DEL releases the rest.
    fn floor(
        &self,
        cid: &str,
        pod: &Netns,
        settle: Duration,
        floor: fn(&Netns) -> Result<Duration>,
    ) -> Result<Duration> {
        let conf = self.conf();
        timed(&mut self.command("ADD", cid, pod), &conf)?;
        std::thread::sleep(settle);
        let t = floor(pod)?;
        timed(&mut self.command("DEL", cid, pod), &conf)?;
        Ok(t)
    }

    pub(crate) fn cycle(&mut self, i: usize, pod: &Netns, settle: Duration) -> Result<()> {
        let (conf, cid) = (self.conf(), format!("seq{i}"));
        self.add.push(timed(&mut self.command("ADD", &cid, pod), &conf).with_context(|| format!("{} ADD", self.name))?);
        std::thread::sleep(settle);
        self.del.push(timed(&mut self.command("DEL", &cid, pod), &conf).with_context(|| format!("{} DEL", self.name))?);
        Ok(())
    }

    /// Wall time of `n` ADDs started at once, then of `n` DELs.
    fn burst(&self, world: &World, round: usize, n: usize) -> Result<(Duration, Duration)> {
        let conf = self.conf();
        let mut walls = Vec::new();
        for verb in ["ADD", "DEL"] {
            underlay_linux::interrupt::check()?;
            let start = Instant::now();
            let children: Vec<_> = (0..n)
                .map(|i| {
                    let mut child = self
                        .command(verb, &format!("par{round}-{i}"), &world.pods[i])
                        .stdin(Stdio::piped())
                        .stdout(Stdio::piped())
                        .spawn()?;
                    child.stdin.take().expect("piped").write_all(&conf)?;
                    Ok(child)
                })
                .collect::<Result<_>>()?;
            for child in children {
                let out = child.wait_with_output()?;
                anyhow::ensure!(out.status.success(), "{} {verb}: {}", self.name, String::from_utf8_lossy(&out.stdout));
            }
            walls.push(start.elapsed());
        }
        Ok((walls[0], walls[1]))
    }

    pub(crate) fn peaks(&self, pod: &Netns) -> Result<(u64, u64)> {
        let (conf, mut add, mut del) = (self.conf(), 0, 0);
        for i in 0..3 {
            let cid = format!("rss{i}");
            add = add.max(peak_rss_kb(&mut self.command("ADD", &cid, pod), &conf)?);
            del = del.max(peak_rss_kb(&mut self.command("DEL", &cid, pod), &conf)?);
        }
        Ok((add, del))
    }
}

/// The kernel's own deletion time: one netlink request from this process, whose
/// socket in the pod is already open.
fn kernel_delete(pod: &Netns) -> Result<Duration> {
    let mut nl = {
        let _in = pod.enter()?;
        Netlink::new()?
    };
    let link = nl.link("eth0")?;
    let start = Instant::now();
    nl.delete_link(link.index)?;
    Ok(start.elapsed())
}

/// How soon a conflict is seen when a device holds the address: probes from a pod's
/// macvlan for the external device's address, timed until its answer is in.
fn answer_times(world: &World, n: usize) -> Result<Vec<Duration>> {
    use underlay_linux::probe::{Probing, conflicts};
    let std::net::IpAddr::V4(ext) = world.external().ip.addr() else {
        anyhow::bail!("the external device has no IPv4 address")
    };
    let pod = &world.pods[0];
    crate::floor::process_add(pod, "enp0s3", "192.168.1.250/24".parse()?)?;
    let mut nl = pod.netlink()?;
    let link = nl.link("eth0")?;
    let mac = link.mac.context("the probe link has no MAC")?;
    // The link keeps its address: probes leave from it all the same (sender 0.0.0.0).
    let probing = Probing { probes: 1, wait: Duration::from_secs(1) };
    let mut out = Vec::new();
    for _ in 0..n {
        let start = Instant::now();
        let found = pod.run(|| conflicts(link.index, mac, &[ext], &probing))??;
        anyhow::ensure!(!found.is_empty(), "the external device did not answer a probe within 1 s");
        out.push(start.elapsed());
    }
    nl.delete_link(link.index)?;
    Ok(out)
}

pub(crate) fn ms(d: f64) -> String {
    format!("{d:.2} ms")
}

pub(crate) fn ratio(a: f64, b: f64) -> String {
    format!("{:.2}x", a / b)
}

pub fn run(args: Args) -> Result<()> {
    // "ours" does the reference's work, no more: probing off. "probed" is the default.
    let mut ours = Impl::new("ours", &sibling("macvlan"), &sibling("host-local"))?;
    ours.conflict_detection = Some(false);
    let mut probed = Impl::new("ours, probing", &sibling("macvlan"), &sibling("host-local"))?;
    let mut reference = Impl::new("reference", &args.reference.join("macvlan"), &args.reference.join("host-local"))?;
    let world = World::build(WorldSpec::seed("bench").nodes(1).pods(args.concurrency.max(8)))
        .context("build the test world (run as root)")?;
    let node = &world.node(0).netns;
    let _in_node = node.enter()?;
    let settle = Duration::from_millis(args.settle_ms);
    let (mut kernel, mut process, mut process_adds) = (Vec::new(), Vec::new(), Vec::new());
    eprintln!("{} interleaved cycles (kernel, smallest processes, ours, reference) ...", args.iterations);
    let floor_address: ipnet::IpNet = "10.77.255.1/16".parse()?;
    for i in 0..args.iterations {
        let pod = &world.pods[i % world.pods.len()];
        process_adds.push(process_add(pod, "enp0s3", floor_address)?);
        std::thread::sleep(settle);
        kernel_delete(pod)?;
        kernel.push(ours.floor(&format!("kernel{i}"), pod, settle, kernel_delete)?);
        process.push(ours.floor(&format!("process{i}"), pod, settle, process_delete)?);
        // Alternate who goes first, so neither always follows the other.
        if i % 2 == 0 {
            ours.cycle(i, pod, settle)?;
            reference.cycle(i, pod, settle)?;
        } else {
            reference.cycle(i, pod, settle)?;
            ours.cycle(i, pod, settle)?;
        }
        probed.cycle(i, pod, settle)?;
    }
    let answers = answer_times(&world, args.iterations.min(100))?;
    eprintln!("{} rounds of {} at once ...", args.rounds, args.concurrency);
    let (mut bursts_ours, mut bursts_ref) = (Vec::new(), Vec::new());
    for round in 0..args.rounds {
        bursts_ours.push(ours.burst(&world, round, args.concurrency)?);
        bursts_ref.push(reference.burst(&world, round, args.concurrency)?);
    }
    let (o_peak, r_peak) = (ours.peaks(&world.pods[0])?, reference.peaks(&world.pods[0])?);
    let probed_peak = probed.peaks(&world.pods[0])?;

    let p = percentiles;
    let (oa, ra, od, rd, kd) = (p(&ours.add), p(&reference.add), p(&ours.del), p(&reference.del), p(&kernel));
    let pd = p(&process);
    let pa = p(&process_adds);
    let first = |v: &[(Duration, Duration)]| p(&v.iter().map(|x| x.0).collect::<Vec<_>>()).0;
    let second = |v: &[(Duration, Duration)]| p(&v.iter().map(|x| x.1).collect::<Vec<_>>()).0;
    let (oca, rca, ocd, rcd) = (first(&bursts_ours), first(&bursts_ref), second(&bursts_ours), second(&bursts_ref));
    let n = args.concurrency;
    let mut t = Table::new();
    t.set_header(["measure", "ours", "reference", "ours / reference"]);
    t.add_row(["ADD p50", &ms(oa.0), &ms(ra.0), &ratio(oa.0, ra.0)]);
    t.add_row(["ADD p99", &ms(oa.1), &ms(ra.1), &ratio(oa.1, ra.1)]);
    t.add_row(["DEL p50", &ms(od.0), &ms(rd.0), &ratio(od.0, rd.0)]);
    t.add_row(["DEL p99", &ms(od.1), &ms(rd.1), &ratio(od.1, rd.1)]);
    t.add_row([
        "ADD p50 / the smallest process making the same kernel calls",
        &ratio(oa.0, pa.0),
        &ratio(ra.0, pa.0),
        "-",
    ]);
    t.add_row(["DEL p50 above the kernel's own deletion", &ms(od.0 - kd.0), &ms(rd.0 - kd.0), "-"]);
    t.add_row(["DEL p50 above the smallest deleting process", &ms(od.0 - pd.0), &ms(rd.0 - pd.0), "-"]);
    t.add_row([&format!("{n} ADDs at once, wall (median of {})", args.rounds), &ms(oca), &ms(rca), &ratio(oca, rca)]);
    t.add_row([&format!("{n} DELs at once, wall (median)"), &ms(ocd), &ms(rcd), &ratio(ocd, rcd)]);
    t.add_row(["peak memory, ADD", &mb(o_peak.0), &mb(r_peak.0), &ratio(o_peak.0 as f64, r_peak.0 as f64)]);
    t.add_row(["peak memory, DEL", &mb(o_peak.1), &mb(r_peak.1), &ratio(o_peak.1 as f64, r_peak.1 as f64)]);
    let (pa_on, ans) = (p(&probed.add), p(&answers));
    t.add_row(["ADD p50, probing on (the default)", &ms(pa_on.0), &ms(ra.0), &ratio(pa_on.0, ra.0)]);
    t.add_row(["ADD p50, probing off", &ms(oa.0), &ms(ra.0), &ratio(oa.0, ra.0)]);
    t.add_row(["ADD p50 added by probing", &ms(pa_on.0 - oa.0), "-", "-"]);
    t.add_row(["ADD p99, probing on", &ms(pa_on.1), &ms(ra.1), &ratio(pa_on.1, ra.1)]);
    let rss = probed_peak.0;
    t.add_row(["peak memory, ADD with probing", &mb(rss), &mb(r_peak.0), &ratio(rss as f64, r_peak.0 as f64)]);
    println!(
        "macvlan + host-local, cniVersion 1.0.0: {} interleaved ADD+DEL cycles (DEL {} ms after ADD), {} rounds of {n} at once; \
         \"ours\" has conflictDetection off (the reference's work) except in the probing rows",
        args.iterations, args.settle_ms, args.rounds
    );
    println!("{t}");
    println!(
        "a device on this LAN answering a probe (time to a detected conflict, {} samples): p50 {} p99 {}",
        answers.len(),
        ms(ans.0),
        ms(ans.1)
    );
    println!("kernel's own deletion of the link our ADD makes: p50 {} p99 {}", ms(kd.0), ms(kd.1));
    println!("the same, by the smallest process that can do it: p50 {} p99 {}", ms(pd.0), ms(pd.1));
    println!(
        "the smallest process making ADD's kernel calls (create in the pod, address, up): p50 {} p99 {}",
        ms(pa.0),
        ms(pa.1)
    );
    Ok(())
}
