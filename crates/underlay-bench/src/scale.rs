//! Many endpoints on one node: ADD and DEL latency with 0, 250 and 1,000 live macvlan
//! endpoints on the same parent, and host-local holding their reservations. The crowd
//! is made by our plugin; the reference's store gets the same reservation files (the
//! format is shared), so both plugins see the same links and the same store size. At
//! each size the two run interleaved in the same world.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use comfy_table::Table;
use underlay_linux::world::{World, WorldSpec};

use crate::floor::{process_add, process_delete};
use crate::macvlan::{Impl, ms, ratio};
use crate::measure::{mb, percentiles, sibling, timed};

#[derive(clap::Args)]
pub struct Args {
    /// Live endpoints on the parent at each step, in increasing order.
    #[arg(long, value_delimiter = ',', default_values_t = [0, 250, 1000])]
    endpoints: Vec<usize>,
    /// ADD+DEL cycles per implementation at each step.
    #[arg(long, default_value_t = 60)]
    iterations: usize,
    /// Time between an ADD and its DEL, in milliseconds.
    #[arg(long, default_value_t = 20)]
    settle_ms: u64,
    /// Directory with the reference plugins.
    #[arg(long, default_value = "/usr/lib/cni")]
    reference: std::path::PathBuf,
}

impl Args {
    /// The sizes of `--quick`.
    pub fn quick(self) -> Args {
        Args { endpoints: vec![0, 10], iterations: 3, ..self }
    }
}

struct Step {
    endpoints: usize,
    floor: (f64, f64),
    ours: ((f64, f64), (f64, f64)),
    reference: ((f64, f64), (f64, f64)),
}

/// Copies the reservation files (named by address) from one host-local store to another.
fn mirror_reservations(from: &Path, to: &Path) -> Result<()> {
    let (from, to) = (from.join("bench"), to.join("bench"));
    std::fs::create_dir_all(&to)?;
    if !from.exists() {
        return Ok(());
    }
    for entry in std::fs::read_dir(&from).with_context(|| format!("read {}", from.display()))? {
        let entry = entry?;
        let name = entry.file_name();
        let is_address = name.to_str().is_some_and(|n| n.parse::<std::net::IpAddr>().is_ok());
        if is_address && entry.file_type()?.is_file() {
            std::fs::copy(entry.path(), to.join(&name))?;
        }
    }
    Ok(())
}

pub fn run(args: Args) -> Result<()> {
    anyhow::ensure!(args.endpoints.windows(2).all(|w| w[0] <= w[1]), "--endpoints must increase");
    let mut ours = Impl::new("ours", &sibling("macvlan"), &sibling("host-local"))?;
    // The reference's work only: the macvlan benchmark shows what probing adds.
    ours.conflict_detection = Some(false);
    let mut reference = Impl::new("reference", &args.reference.join("macvlan"), &args.reference.join("host-local"))?;
    let world =
        World::build(WorldSpec::seed("scale").nodes(1).pods(2)).context("build the test world (run as root)")?;
    let (crowd, pod) = (&world.pods[0], &world.pods[1]);
    let _in_node = world.node(0).netns.enter()?;
    let settle = Duration::from_millis(args.settle_ms);
    let conf = ours.conf();
    let (mut live, mut steps) = (0, Vec::new());
    for &target in &args.endpoints {
        eprintln!("growing the crowd to {target} endpoints ...");
        while live < target {
            let mut add = ours.command("ADD", &format!("crowd{live}"), crowd);
            add.env("CNI_IFNAME", format!("c{live}"));
            timed(&mut add, &conf).with_context(|| format!("crowd endpoint {live}"))?;
            live += 1;
        }
        mirror_reservations(ours.data.path(), reference.data.path())?;
        for samples in [&mut ours.add, &mut ours.del, &mut reference.add, &mut reference.del] {
            samples.clear();
        }
        eprintln!("{} interleaved cycles at {target} ...", args.iterations);
        let mut floor = Vec::new();
        for i in 0..args.iterations {
            floor.push(process_add(pod, "enp0s3", "10.77.255.1/16".parse()?)?);
            std::thread::sleep(settle);
            process_delete(pod)?;
            let cid = target * 100_000 + i;
            if i % 2 == 0 {
                ours.cycle(cid, pod, settle)?;
                reference.cycle(cid, pod, settle)?;
            } else {
                reference.cycle(cid, pod, settle)?;
                ours.cycle(cid, pod, settle)?;
            }
        }
        let p = percentiles;
        steps.push(Step {
            endpoints: target,
            floor: p(&floor),
            ours: (p(&ours.add), p(&ours.del)),
            reference: (p(&reference.add), p(&reference.del)),
        });
    }
    let (o_peak, r_peak) = (ours.peaks(pod)?, reference.peaks(pod)?);

    let base = &steps[0];
    let mut t = Table::new();
    t.set_header([
        "live endpoints",
        "ours ADD p50",
        "reference ADD p50",
        "ours / reference",
        &format!("ours / ours at {}", base.endpoints),
        &format!("reference / reference at {}", base.endpoints),
        "ours ADD / floor",
        "floor ADD p50",
        "ours - floor",
        "reference - floor",
        "ours DEL p50",
        "reference DEL p50",
    ]);
    for s in &steps {
        t.add_row([
            &s.endpoints.to_string(),
            &ms(s.ours.0.0),
            &ms(s.reference.0.0),
            &ratio(s.ours.0.0, s.reference.0.0),
            &ratio(s.ours.0.0, base.ours.0.0),
            &ratio(s.reference.0.0, base.reference.0.0),
            &ratio(s.ours.0.0, s.floor.0),
            &ms(s.floor.0),
            &ms(s.ours.0.0 - s.floor.0),
            &ms(s.reference.0.0 - s.floor.0),
            &ms(s.ours.1.0),
            &ms(s.reference.1.0),
        ]);
    }
    println!(
        "macvlan + host-local with many live endpoints on one parent: {} interleaved ADD+DEL cycles per step",
        args.iterations
    );
    println!("{t}");
    if let Some(top) = steps.last().filter(|top| top.endpoints != base.endpoints) {
        // What grows with the crowd: the kernel's own work (the floor: the same kernel
        // calls in the smallest process) against what our plugins add above it.
        let (grow, floor_grow) = (top.ours.0.0 - base.ours.0.0, top.floor.0 - base.floor.0);
        println!(
            "from {} to {} live endpoints, ours ADD p50 grows {} ({}): the floor grows {} ({}), ours above the floor {} -> {} ({:+.2} ms)",
            base.endpoints,
            top.endpoints,
            ms(grow),
            ratio(top.ours.0.0, base.ours.0.0),
            ms(floor_grow),
            ratio(top.floor.0, base.floor.0),
            ms(base.ours.0.0 - base.floor.0),
            ms(top.ours.0.0 - top.floor.0),
            grow - floor_grow,
        );
    }
    println!(
        "peak memory at {live} endpoints: ADD ours {} reference {} ({}), DEL ours {} reference {} ({})",
        mb(o_peak.0),
        mb(r_peak.0),
        ratio(o_peak.0 as f64, r_peak.0 as f64),
        mb(o_peak.1),
        mb(r_peak.1),
        ratio(o_peak.1 as f64, r_peak.1 as f64)
    );
    Ok(())
}
