//! underlay-ipam on a 3-member etcd cluster started here on loopback: allocations per
//! second and per-ADD latency for 1 and 10 concurrent nodes, next to the raw rate of
//! the same cluster's claim transactions (the practical ceiling), and the plugin's
//! peak memory beside the reference host-local's.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use comfy_table::Table;
use etcd_client::{Compare, CompareOp, Txn, TxnOp};
use serde_json::{Value, json};
use underlay_ipam::EtcdConf;
use underlay_ipam::cluster::Cluster;
use underlay_ipam::etcd::Etcd;

use crate::measure::{ipam_call, mb, peak_rss_kb, percentiles, sibling, timed};

#[derive(clap::Args)]
pub struct Args {
    /// Our underlay-ipam binary (default: the one built beside this benchmark).
    #[arg(long)]
    ours: Option<PathBuf>,
    /// The reference host-local, for the memory comparison.
    #[arg(long, default_value = "/usr/lib/cni/host-local")]
    reference: PathBuf,
    /// Cluster members.
    #[arg(long, default_value_t = 3)]
    members: usize,
    /// Simulated nodes allocating at once in the scale run (0: no scale run).
    #[arg(long, default_value_t = 50)]
    scale_nodes: usize,
    /// Addresses handed out in the scale run, split evenly over the nodes.
    #[arg(long, default_value_t = 10_000)]
    scale_addresses: usize,
    #[arg(skip)]
    quick: bool,
}

impl Args {
    /// The sizes of `--quick`.
    pub fn quick(self) -> Args {
        Args { quick: true, scale_nodes: 3, scale_addresses: 12, ..self }
    }
}

/// Exactly 1000 addresses.
fn conf(etcd: &Value, net: &str, node: &str) -> Vec<u8> {
    pool_conf(
        etcd,
        net,
        node,
        json!({"subnet": "10.40.0.0/22", "rangeStart": "10.40.0.10", "rangeEnd": "10.40.3.241", "gateway": "10.40.0.1"}),
    )
}

fn pool_conf(etcd: &Value, net: &str, node: &str, range: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({"cniVersion": "1.0.0", "name": net, "type": "macvlan",
        "ipam": {"type": "underlay-ipam", "node": node, "etcd": etcd, "ranges": [[range]]}}))
    .expect("serializes")
}

/// 16,382 addresses: room for the scale run.
fn big_conf(etcd: &Value, net: &str, node: &str) -> Vec<u8> {
    pool_conf(etcd, net, node, json!({"subnet": "10.48.0.0/18", "gateway": "10.48.0.1"}))
}

struct Run {
    total: Duration,
    latencies: Vec<Duration>,
    count: usize,
}

/// `nodes` nodes, `each` ADDs each, all at once.
fn allocate(bin: &Path, etcd: &Value, net: &str, nodes: usize, each: usize) -> Result<(Run, Vec<String>)> {
    allocate_with(bin, etcd, net, nodes, each, conf)
}

fn allocate_with(
    bin: &Path,
    etcd: &Value,
    net: &str,
    nodes: usize,
    each: usize,
    conf: fn(&Value, &str, &str) -> Vec<u8>,
) -> Result<(Run, Vec<String>)> {
    let started = Instant::now();
    let handles: Vec<_> = (0..nodes)
        .map(|n| {
            let (bin, conf) = (bin.to_path_buf(), conf(etcd, net, &format!("node{n}")));
            std::thread::spawn(move || -> Result<Vec<Duration>> {
                (0..each).map(|k| timed(&mut ipam_call(&bin, "ADD", &format!("n{n}-c{k}")), &conf)).collect()
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for h in handles {
        latencies.extend(h.join().expect("allocating thread")?);
    }
    let total = started.elapsed();
    let mut e = Etcd::connect(&serde_json::from_value::<EtcdConf>(etcd.clone())?)?;
    let ips: Vec<String> = e
        .list(&format!("/underlay/ipam/{net}/ip4/"), true)?
        .into_iter()
        .map(|kv| kv.key.rsplit('/').next().unwrap_or_default().to_string())
        .collect();
    Ok((Run { total, count: latencies.len(), latencies }, ips))
}

/// The cluster's own ceiling: the claim transaction alone (compare version 0, put two
/// keys), from `clients` clients at once, `each` each.
fn raw(etcd: &EtcdConf, clients: usize, each: usize) -> Result<Run> {
    let started = Instant::now();
    let handles: Vec<_> = (0..clients)
        .map(|c| {
            let etcd = etcd.clone();
            std::thread::spawn(move || -> Result<Vec<Duration>> {
                let mut e = Etcd::connect(&etcd)?;
                let mut out = Vec::new();
                for k in 0..each {
                    let key = format!("/bench/raw/{clients}/{c}/{k}");
                    let txn = Txn::new()
                        .when([Compare::version(key.clone(), CompareOp::Equal, 0)])
                        .and_then([TxnOp::put(key.clone(), "x", None), TxnOp::put(format!("{key}/owner"), "", None)]);
                    underlay_linux::interrupt::check()?;
                    let t = Instant::now();
                    e.txn("bench", txn)?;
                    out.push(t.elapsed());
                }
                Ok(out)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for h in handles {
        latencies.extend(h.join().expect("raw client thread")?);
    }
    Ok(Run { total: started.elapsed(), count: latencies.len(), latencies })
}

/// The floor under an ADD that is a process: the same claim transaction, each made by
/// a process of its own that connects and exits (`underlay-bench etcd-claim`), from
/// `clients` threads at once, `each` each.
fn process_raw(etcd: &Value, clients: usize, each: usize) -> Result<Run> {
    let started = Instant::now();
    let handles: Vec<_> = (0..clients)
        .map(|c| {
            let etcd = etcd.to_string();
            std::thread::spawn(move || -> Result<Vec<Duration>> {
                (0..each)
                    .map(|k| {
                        let mut cmd = std::process::Command::new(std::env::current_exe()?);
                        cmd.args(["etcd-claim", &etcd, &format!("/bench/process/{clients}/{c}/{k}")]);
                        timed(&mut cmd, b"")
                    })
                    .collect()
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for h in handles {
        latencies.extend(h.join().expect("claiming thread")?);
    }
    Ok(Run { total: started.elapsed(), count: latencies.len(), latencies })
}

/// `underlay-bench etcd-claim`: connect as the plugin does, make one claim
/// transaction, exit.
pub fn claim(etcd: &str, key: &str) -> Result<()> {
    let conf: EtcdConf = serde_json::from_str(etcd)?;
    let mut e = Etcd::connect_by(&conf, Instant::now() + conf.timeout())?;
    let txn = Txn::new()
        .when([Compare::version(key, CompareOp::Equal, 0)])
        .and_then([TxnOp::put(key, "x", None), TxnOp::put(format!("{key}/owner"), "", None)]);
    ensure!(e.txn("claim", txn)?, "{key} was taken");
    Ok(())
}

/// The answer to one ADD more than the pool holds.
fn one_too_many(bin: &Path, conf: &[u8]) -> Result<String> {
    use std::io::Write;
    let mut child = ipam_call(bin, "ADD", "one-too-many")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    child.stdin.take().context("stdin")?.write_all(conf)?;
    let out = child.wait_with_output()?;
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    Ok(if out.status.success() {
        "succeeded (it should not)".into()
    } else {
        format!("code {} \"{}\"", v["code"], v["msg"].as_str().unwrap_or_default())
    })
}

pub fn run(args: Args) -> Result<()> {
    let ours = args.ours.clone().unwrap_or_else(|| sibling("underlay-ipam"));
    ensure!(ours.exists(), "{} not found: build it with cargo build --release", ours.display());
    eprintln!("starting a {}-member etcd cluster on 127.0.0.1 ...", args.members);
    let cluster = Cluster::start(args.members).context("start etcd (install etcd-server)")?;
    let etcd = cluster.etcd_conf();
    let etcd_conf: EtcdConf = serde_json::from_value(etcd.clone())?;

    let mut table = Table::new();
    table.set_header(["what", "nodes / clients", "operations", "total", "per second", "p50", "p99"]);
    let mut row = |what: &str, n: usize, r: &Run| {
        let (p50, p99) = percentiles(&r.latencies);
        table.add_row([
            what.to_string(),
            n.to_string(),
            r.count.to_string(),
            format!("{:.2} s", r.total.as_secs_f64()),
            format!("{:.0}", r.count as f64 / r.total.as_secs_f64()),
            format!("{p50:.2} ms"),
            format!("{p99:.2} ms"),
        ]);
    };
    // The ten nodes fill the pool of 1000 exactly, then one more ADD must be refused.
    let (single, each) = if args.quick { (10, 2) } else { (300, 100) };
    let raw1 = raw(&etcd_conf, 1, single)?;
    row("etcd claim transaction (raw)", 1, &raw1);
    let raw10 = raw(&etcd_conf, 10, each)?;
    row("etcd claim transaction (raw)", 10, &raw10);
    let (one, _) = allocate(&ours, &etcd, "one", 1, single)?;
    row("underlay-ipam ADD (a process each)", 1, &one);
    let (ten, ips) = allocate(&ours, &etcd, "ten", 10, each)?;
    row("underlay-ipam ADD (a process each)", 10, &ten);
    let distinct: HashSet<&String> = ips.iter().collect();
    let extra =
        if args.quick { "not tried (--quick)".to_string() } else { one_too_many(&ours, &conf(&etcd, "ten", "node0"))? };
    let scale = if args.scale_nodes > 0 {
        let each = args.scale_addresses.div_ceil(args.scale_nodes);
        eprintln!("scale: {} nodes x {each} ADDs, and the raw transaction from as many clients ...", args.scale_nodes);
        let raw_n = raw(&etcd_conf, args.scale_nodes, each.min(100))?;
        row("etcd claim transaction (raw)", args.scale_nodes, &raw_n);
        let floor_n = process_raw(&etcd, args.scale_nodes, each.min(40))?;
        row("the same claim, a process each (floor)", args.scale_nodes, &floor_n);
        let before = cluster.grpc_requests()?;
        let (run, ips) = allocate_with(&ours, &etcd, "scale", args.scale_nodes, each, big_conf)?;
        let requests = cluster.grpc_requests()?.saturating_sub(before);
        row("underlay-ipam ADD (a process each)", args.scale_nodes, &run);
        let distinct = ips.iter().collect::<HashSet<_>>().len();
        Some((run, raw_n, floor_n, ips.len(), distinct, requests))
    } else {
        None
    };

    // Peak memory: ours against the reference host-local, each doing one ADD.
    let mut ours_kb = 0;
    for i in 0..5 {
        ours_kb =
            ours_kb.max(peak_rss_kb(&mut ipam_call(&ours, "ADD", &format!("rss{i}")), &conf(&etcd, "rss", "node0"))?);
    }
    let data = tempfile::tempdir()?;
    let ref_conf = serde_json::to_vec(&json!({"cniVersion": "1.0.0", "name": "rss", "type": "macvlan",
        "ipam": {"type": "host-local", "subnet": "10.41.0.0/22", "dataDir": data.path()}}))?;
    let mut ref_kb = 0;
    if args.reference.exists() {
        for i in 0..5 {
            ref_kb = ref_kb.max(peak_rss_kb(&mut ipam_call(&args.reference, "ADD", &format!("rss{i}")), &ref_conf)?);
        }
    }

    println!("underlay-ipam on a {}-member etcd cluster (127.0.0.1), a pool of exactly 1000 addresses", args.members);
    println!("{table}");
    println!(
        "10 nodes: {} allocations, {} distinct, in {:.2} s; the 1001st: {}",
        ten.count,
        distinct.len(),
        ten.total.as_secs_f64(),
        extra
    );
    println!(
        "ADDs per second against the raw transaction rate of the same cluster: 1 node {:.2}x, 10 nodes {:.2}x",
        (one.count as f64 / one.total.as_secs_f64()) / (raw1.count as f64 / raw1.total.as_secs_f64()),
        (ten.count as f64 / ten.total.as_secs_f64()) / (raw10.count as f64 / raw10.total.as_secs_f64()),
    );
    if let Some((run, raw_n, floor_n, held, distinct, requests)) = scale {
        let rate = |r: &Run| r.count as f64 / r.total.as_secs_f64();
        println!(
            "scale: {} nodes, {} ADDs in {:.1} s: {held} addresses held, {distinct} distinct ({} duplicates); ADD p99 {:.1} ms; \
             {:.2}x the raw transaction rate of {} clients; {:.1} etcd requests per ADD (all members' gRPC requests handled)",
            args.scale_nodes,
            run.count,
            run.total.as_secs_f64(),
            held - distinct,
            percentiles(&run.latencies).1,
            rate(&run) / rate(&raw_n),
            args.scale_nodes,
            requests as f64 / run.count as f64,
        );
        println!(
            "scale floor: one claim transaction per process (connect, claim, exit) runs at {:.2}x the raw rate; \
             underlay-ipam ADD is {:.2}x that floor's rate",
            rate(&floor_n) / rate(&raw_n),
            rate(&run) / rate(&floor_n),
        );
    }
    println!(
        "peak memory (max RSS of one ADD): underlay-ipam {}, reference host-local {} ({:.2}x)",
        mb(ours_kb),
        mb(ref_kb),
        ours_kb as f64 / ref_kb.max(1) as f64
    );
    Ok(())
}
