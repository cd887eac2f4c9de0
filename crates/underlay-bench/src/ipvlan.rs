//! ipvlan: ADD and DEL latency of ours against the reference `ipvlan`, interleaved in one
//! world (each DEL a fixed time after its ADD), and both plugins' peak memory. Needs a
//! kernel with ipvlan: run it in the full-kernel lane (`scripts/kernel-lane --bench`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};
use comfy_table::Table;
use serde_json::json;
use underlay_linux::Netns;
use underlay_linux::world::{World, WorldSpec};

use crate::floor::{process_add_kind, process_delete};
use crate::macvlan::{ms, ratio};
use crate::measure::{mb, peak_rss_kb, percentiles, plugin_call, sibling, timed};

#[derive(clap::Args)]
pub struct Args {
    /// Sequential ADD+DEL cycles per implementation.
    #[arg(long, default_value_t = 200)]
    iterations: usize,
    /// Time between an ADD and its DEL, in milliseconds.
    #[arg(long, default_value_t = 20)]
    settle_ms: u64,
    /// ipvlan mode (l2, l3, l3s).
    #[arg(long, default_value = "l2")]
    mode: String,
    /// Directory with the reference plugins.
    #[arg(long, default_value = "/usr/lib/cni")]
    reference: PathBuf,
}

impl Args {
    /// The sizes of `--quick`.
    pub fn quick(self) -> Args {
        Args { iterations: 3, ..self }
    }
}

struct Impl {
    name: &'static str,
    dir: tempfile::TempDir,
    conf: Vec<u8>,
    add: Vec<Duration>,
    del: Vec<Duration>,
    _data: tempfile::TempDir,
}

impl Impl {
    /// `probe_off`: ours without conflict detection, like for like (the reference probes
    /// nothing; what probing costs is in `underlay-bench macvlan`).
    fn new(name: &'static str, ipvlan: &Path, host_local: &Path, mode: &str, probe_off: bool) -> Result<Impl> {
        anyhow::ensure!(ipvlan.exists(), "{} not found (cargo build; scripts/deps)", ipvlan.display());
        let dir = tempfile::tempdir()?;
        std::os::unix::fs::symlink(ipvlan, dir.path().join("ipvlan"))?;
        std::os::unix::fs::symlink(host_local, dir.path().join("host-local"))?;
        let data = tempfile::tempdir()?;
        let mut conf = json!({"cniVersion": "1.0.0", "name": "bench", "type": "ipvlan",
            "master": "enp0s3", "mode": mode,
            "ipam": {"type": "host-local", "subnet": "10.77.0.0/16", "dataDir": data.path()}});
        if probe_off {
            conf["conflictDetection"] = json!(false);
        }
        let conf = serde_json::to_vec(&conf)?;
        Ok(Impl { name, dir, conf, add: vec![], del: vec![], _data: data })
    }

    /// The plugin as a runtime starts it; the calling thread is in the node's namespace.
    fn command(&self, verb: &str, cid: &str, pod: &Netns) -> Command {
        plugin_call(self.dir.path(), "ipvlan", verb, cid, pod)
    }

    fn cycle(&mut self, i: usize, pod: &Netns, settle: Duration) -> Result<()> {
        let cid = format!("seq{i}");
        let add =
            timed(&mut self.command("ADD", &cid, pod), &self.conf).with_context(|| format!("{} ADD", self.name))?;
        self.add.push(add);
        std::thread::sleep(settle);
        let del =
            timed(&mut self.command("DEL", &cid, pod), &self.conf).with_context(|| format!("{} DEL", self.name))?;
        self.del.push(del);
        Ok(())
    }

    fn peaks(&self, pod: &Netns) -> Result<(u64, u64)> {
        let (mut add, mut del) = (0, 0);
        for i in 0..3 {
            let cid = format!("rss{i}");
            add = add.max(peak_rss_kb(&mut self.command("ADD", &cid, pod), &self.conf)?);
            del = del.max(peak_rss_kb(&mut self.command("DEL", &cid, pod), &self.conf)?);
        }
        Ok((add, del))
    }
}

pub fn run(args: Args) -> Result<()> {
    let mut ours = Impl::new("ours", &sibling("ipvlan"), &sibling("host-local"), &args.mode, true)?;
    let reference = (args.reference.join("ipvlan"), args.reference.join("host-local"));
    let mut theirs = Impl::new("reference", &reference.0, &reference.1, &args.mode, false)?;
    let world =
        World::build(WorldSpec::seed("ivbench").nodes(1).pods(2)).context("build the test world (run as root)")?;
    let _in_node = world.node(0).netns.enter()?;
    let settle = Duration::from_millis(args.settle_ms);
    for i in 0..args.iterations {
        let pod = &world.pods[i % 2];
        // Alternate who goes first, so neither always follows the other.
        if i % 2 == 0 {
            ours.cycle(i, pod, settle)?;
            theirs.cycle(i, pod, settle)?;
        } else {
            theirs.cycle(i, pod, settle)?;
            ours.cycle(i, pod, settle)?;
        }
    }
    // The floor: the same kernel calls as our ADD (an l2 ipvlan made in the pod, the
    // address, up) and DEL, each in its own smallest process.
    let (mut floor_add, mut floor_del) = (Vec::new(), Vec::new());
    for i in 0..args.iterations {
        let pod = &world.pods[i % 2];
        floor_add.push(process_add_kind(pod, "enp0s3", "10.77.255.1/16".parse()?, true)?);
        std::thread::sleep(settle);
        floor_del.push(process_delete(pod)?);
    }
    let (op, rp) = (ours.peaks(&world.pods[0])?, theirs.peaks(&world.pods[0])?);
    let p = percentiles;
    let (oa, ra, od, rd) = (p(&ours.add), p(&theirs.add), p(&ours.del), p(&theirs.del));
    let (fa, fd) = (p(&floor_add), p(&floor_del));
    let mut t = Table::new();
    t.set_header(["measure", "ours", "reference", "ours / reference"]);
    t.add_row(["ADD p50", &ms(oa.0), &ms(ra.0), &ratio(oa.0, ra.0)]);
    t.add_row(["ADD p99", &ms(oa.1), &ms(ra.1), &ratio(oa.1, ra.1)]);
    t.add_row(["DEL p50", &ms(od.0), &ms(rd.0), &ratio(od.0, rd.0)]);
    t.add_row(["DEL p99", &ms(od.1), &ms(rd.1), &ratio(od.1, rd.1)]);
    t.add_row(["floor ADD p50 (kernel calls in one process)", &ms(fa.0), "", &ratio(fa.0, ra.0)]);
    t.add_row(["floor DEL p50", &ms(fd.0), "", &ratio(fd.0, rd.0)]);
    t.add_row(["ours / floor, ADD p50", &ratio(oa.0, fa.0), "", ""]);
    t.add_row(["peak memory, ADD", &mb(op.0), &mb(rp.0), &ratio(op.0 as f64, rp.0 as f64)]);
    t.add_row(["peak memory, DEL", &mb(op.1), &mb(rp.1), &ratio(op.1 as f64, rp.1 as f64)]);
    println!(
        "ipvlan {} + host-local, cniVersion 1.0.0: {} interleaved ADD+DEL cycles (DEL {} ms after ADD); \
         ours with conflictDetection off, as the reference works (probing's cost: `underlay-bench macvlan`)",
        args.mode, args.iterations, args.settle_ms
    );
    println!("{t}");
    Ok(())
}
