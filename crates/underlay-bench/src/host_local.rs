//! host-local: ADD and DEL latency with 1, 1000 and 4000 reservations already in the
//! store, ours and the reference, each on its own store of the same shape.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use comfy_table::Table;
use serde_json::json;

use std::time::Duration;

use crate::measure::{ipam_call, mb, peak_rss_kb, percentiles, sibling, timed};

#[derive(clap::Args)]
pub struct Args {
    /// Our host-local binary (default: the one built beside this benchmark).
    #[arg(long)]
    ours: Option<PathBuf>,
    /// The reference binary.
    #[arg(long, default_value = "/usr/lib/cni/host-local")]
    reference: PathBuf,
    /// ADD+DEL cycles measured per store size.
    #[arg(long, default_value_t = 200)]
    iterations: usize,
    /// Store sizes (existing reservations).
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 1000, 4000])]
    sizes: Vec<usize>,
}

impl Args {
    /// The sizes of `--quick`.
    pub fn quick(self) -> Args {
        Args { iterations: 5, sizes: vec![1, 20], ..self }
    }
}

fn conf(data: &Path) -> Vec<u8> {
    serde_json::to_vec(&json!({"cniVersion": "1.0.0", "name": "bench", "type": "macvlan",
        "ipam": {"type": "host-local", "subnet": "10.128.0.0/16", "dataDir": data}}))
    .expect("serializes")
}

/// Writes `n` reservations in the reference's format, as if `n` containers held them.
fn fill(data: &Path, n: usize) -> Result<()> {
    let dir = data.join("bench");
    std::fs::create_dir_all(&dir)?;
    for i in 0..n {
        let ip = std::net::Ipv4Addr::from(u32::from(std::net::Ipv4Addr::new(10, 128, 0, 2)) + i as u32);
        std::fs::write(dir.join(ip.to_string()), format!("fill{i}\r\neth0"))?;
    }
    let last = std::net::Ipv4Addr::from(u32::from(std::net::Ipv4Addr::new(10, 128, 0, 1)) + n as u32);
    std::fs::write(dir.join("last_reserved_ip.0"), last.to_string())?;
    Ok(())
}

struct Row {
    add: Vec<Duration>,
    del: Vec<Duration>,
    peak_kb: u64,
}

fn measure(bin: &Path, size: usize, iterations: usize) -> Result<Row> {
    let data = tempfile::tempdir()?;
    fill(data.path(), size)?;
    let conf = conf(data.path());
    // One warm-up cycle: our first call after the store was written behind its back
    // rebuilds the owner index, which is a one-off, not the steady state.
    timed(&mut ipam_call(bin, "ADD", "warm"), &conf)?;
    timed(&mut ipam_call(bin, "DEL", "warm"), &conf)?;
    let (mut add, mut del) = (Vec::new(), Vec::new());
    for i in 0..iterations {
        let cid = format!("bench{i}");
        add.push(timed(&mut ipam_call(bin, "ADD", &cid), &conf).with_context(|| format!("{} ADD", bin.display()))?);
        del.push(timed(&mut ipam_call(bin, "DEL", &cid), &conf).with_context(|| format!("{} DEL", bin.display()))?);
    }
    // Peak memory, measured apart from the timings (tracing slows a process down).
    let mut peak_kb = 0;
    for i in 0..5 {
        let cid = format!("rss{i}");
        peak_kb = peak_kb.max(peak_rss_kb(&mut ipam_call(bin, "ADD", &cid), &conf)?);
        peak_kb = peak_kb.max(peak_rss_kb(&mut ipam_call(bin, "DEL", &cid), &conf)?);
    }
    Ok(Row { add, del, peak_kb })
}

pub fn run(args: Args) -> Result<()> {
    let ours_bin = args.ours.clone().unwrap_or_else(|| sibling("host-local"));
    anyhow::ensure!(ours_bin.exists(), "{} not found: build it with cargo build --release", ours_bin.display());
    anyhow::ensure!(
        args.reference.exists(),
        "{} not found: install containernetworking-plugins",
        args.reference.display()
    );
    let mut table = Table::new();
    table.set_header([
        "reservations",
        "ours ADD p50",
        "ref ADD p50",
        "ratio",
        "ours ADD p99",
        "ref ADD p99",
        "ours DEL p50",
        "ref DEL p50",
        "ratio",
        "ours max RSS",
        "ref max RSS",
    ]);
    let mut ours_add_p50 = Vec::new();
    for &size in &args.sizes {
        let ours = measure(&ours_bin, size, args.iterations)?;
        let reference = measure(&args.reference, size, args.iterations)?;
        let p = |s: &[Duration]| percentiles(s);
        let (oa, ra, od, rd) = (p(&ours.add), p(&reference.add), p(&ours.del), p(&reference.del));
        ours_add_p50.push((size, oa.0));
        table.add_row([
            size.to_string(),
            format!("{:.2} ms", oa.0),
            format!("{:.2} ms", ra.0),
            format!("{:.2}x", oa.0 / ra.0),
            format!("{:.2} ms", oa.1),
            format!("{:.2} ms", ra.1),
            format!("{:.2} ms", od.0),
            format!("{:.2} ms", rd.0),
            format!("{:.2}x", od.0 / rd.0),
            mb(ours.peak_kb),
            mb(reference.peak_kb),
        ]);
    }
    println!("host-local, {} ADD+DEL cycles per store size (subnet 10.128.0.0/16)", args.iterations);
    println!("{table}");
    if let (Some(first), Some(last)) = (ours_add_p50.first(), ours_add_p50.last()) {
        println!("ours: ADD p50 at {} reservations / at {} = {:.2}x (flat is 1.0)", last.0, first.0, last.1 / first.1);
    }
    Ok(())
}
