//! `lab bench`: TCP throughput and round-trip latency over macvlan paths, beside the
//! path Docker's default network takes (veth + bridge + NAT, built for the run on
//! node1) and the nodes' own interfaces. A table at the end, a chart in a file.

use std::net::IpAddr;
use std::path::Path;

use anyhow::{Context, Result};
use clap::Args;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use indicatif::{ProgressBar, ProgressStyle};
use underlay_linux::Netns;
use underlay_linux::addr::AddressOptions;
use underlay_linux::route::Route;
use underlay_linux::support::{Feature, has};
use underlay_linux::world::World;

use super::ipvlan_path::IpvlanPath;
use super::measured::{Kind, Measured};
use super::record::Lab;
use super::{chart, interrupt, serve};
use underlay_cli::model::Proc;
use underlay_cli::output::{Format, print_json};

#[derive(Args)]
pub struct BenchOptions {
    /// Seconds of streaming per path and pass.
    #[arg(long, default_value_t = 0.7)]
    seconds: f64,
    /// One-byte round trips per path and pass.
    #[arg(long, default_value_t = 700, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    rounds: usize,
    /// Passes over all paths, interleaved so that drift hits every path alike; the
    /// throughput reported is the median pass.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=20))]
    passes: u32,
}

struct Leg<'a> {
    group: &'static str,
    kind: Kind,
    name: String,
    from: &'a Netns,
    to: IpAddr,
}

pub fn run(lab: &mut Lab, opts: &BenchOptions, format: Format, out: &Path) -> Result<()> {
    let mut world = lab.world()?;
    let nat = Nat::build(lab, &mut world);
    let ipvlan = ipvlan_path(lab, &mut world);
    let result = match (&nat, &ipvlan) {
        (Ok(nat), Ok(ipvlan)) => measure(lab, &world, nat, ipvlan.as_ref(), opts),
        (Err(e), _) | (_, Err(e)) => Err(anyhow::anyhow!("{e:#}")),
    };
    // The bridge + NAT and ipvlan paths go whatever happened.
    Nat::remove(&world, nat.ok().and_then(|n| n.server));
    IpvlanPath::remove(lab, &mut world, ipvlan.ok().flatten());
    let rows = result?;
    if format == Format::Json {
        print_json(&rows);
    } else {
        print_table(&rows);
        let memory = peak_memory(lab);
        println!("{memory}");
    }
    let file = out.join("underlay-lab-bench.svg");
    std::fs::create_dir_all(out).with_context(|| format!("create {}", out.display()))?;
    std::fs::write(&file, chart::svg(&rows)).with_context(|| format!("write {}", file.display()))?;
    eprintln!("chart: {}", file.display());
    Ok(())
}

/// The ipvlan legs where the kernel has ipvlan; elsewhere a note saying where they run.
fn ipvlan_path(lab: &mut Lab, world: &mut World) -> Result<Option<IpvlanPath>> {
    if !has(Feature::Ipvlan)? {
        eprintln!(
            "ipvlan: not measured here: {}; the full-kernel lane measures it (scripts/kernel-lane --bench, \
             see the README's Benchmarks section)",
            Feature::Ipvlan.missing()
        );
        return Ok(None);
    }
    IpvlanPath::build(lab, world).map(Some)
}

fn measure(
    lab: &Lab,
    world: &World,
    nat: &Nat,
    ipvlan: Option<&IpvlanPath>,
    opts: &BenchOptions,
) -> Result<Vec<Measured>> {
    let r = &lab.record;
    let pod = |node: usize, k: usize| r.pods_of(node).nth(k);
    let pod_ns = |role: &str| super::record::pod_netns(world, role);
    let (n1, n2, ext) = (&world.nodes[0], &world.nodes[1], world.external());
    let p1 = pod(0, 0).context("node1 has no pod")?;
    let p3 = pod(1, 0).context("node2 has no pod")?;
    let mut paths = vec![
        Leg {
            group: "to the LAN",
            kind: Kind::Host,
            name: "node1 → external".into(),
            from: &n1.netns,
            to: ext.ip.addr(),
        },
        Leg {
            group: "to the LAN",
            kind: Kind::Macvlan,
            name: format!("{} → external", p1.role),
            from: pod_ns(&p1.role)?,
            to: ext.ip.addr(),
        },
        Leg {
            group: "to the LAN",
            kind: Kind::BridgeNat,
            name: "b1 → external (NAT)".into(),
            from: &nat.b1,
            to: ext.ip.addr(),
        },
    ];
    if let Some(p2) = pod(0, 1) {
        paths.push(Leg {
            group: "pod to pod, one node",
            kind: Kind::Macvlan,
            name: format!("{} → {}", p1.role, p2.role),
            from: pod_ns(&p1.role)?,
            to: p2.ip,
        });
    }
    paths.push(Leg {
        group: "pod to pod, one node",
        kind: Kind::BridgeNat,
        name: "b1 → b2".into(),
        from: &nat.b1,
        to: nat.b2_ip,
    });
    paths.push(Leg {
        group: "across the switch",
        kind: Kind::Host,
        name: "node1 → node2".into(),
        from: &n1.netns,
        to: n2.ip.addr(),
    });
    paths.push(Leg {
        group: "across the switch",
        kind: Kind::Macvlan,
        name: format!("{} → {}", p1.role, p3.role),
        from: pod_ns(&p1.role)?,
        to: p3.ip,
    });

    if let Some(v) = ipvlan {
        paths.push(Leg {
            group: "to the LAN",
            kind: Kind::Ipvlan,
            name: "i1 → external".into(),
            from: &v.i1,
            to: ext.ip.addr(),
        });
        paths.push(Leg {
            group: "pod to pod, one node",
            kind: Kind::Ipvlan,
            name: "i1 → i2".into(),
            from: &v.i1,
            to: v.i2,
        });
        paths.push(Leg {
            group: "across the switch",
            kind: Kind::Ipvlan,
            name: "i1 → i3".into(),
            from: &v.i1,
            to: v.i3,
        });
        // Each group's rows together, as the table and chart show them.
        let order = ["to the LAN", "pod to pod, one node", "across the switch"];
        paths.sort_by_key(|p| order.iter().position(|g| *g == p.group));
    }

    let passes = opts.passes as usize;
    let bar = ProgressBar::new((paths.len() * passes) as u64);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    let mut bps = vec![Vec::new(); paths.len()];
    let mut rtts = vec![Vec::new(); paths.len()];
    for pass in 1..=passes {
        for (i, p) in paths.iter().enumerate() {
            interrupt::check()?;
            bar.set_message(format!("pass {pass}/{passes}: {}", p.name));
            bps[i].push(serve::throughput(p.from, p.to, opts.seconds)?);
            rtts[i].extend(serve::round_trips(p.from, p.to, opts.rounds)?);
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    let rows = paths
        .iter()
        .zip(bps.iter_mut().zip(rtts.iter_mut()))
        .map(|(p, (bps, rtts))| {
            bps.sort_by(f64::total_cmp);
            rtts.sort();
            let pct = |q: f64| rtts[((rtts.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e6;
            Measured {
                group: p.group,
                kind: p.kind,
                path: p.name.clone(),
                gbit_per_s: bps[bps.len() / 2] / 1e9,
                p50_us: pct(0.50),
                p99_us: pct(0.99),
            }
        })
        .collect();
    Ok(rows)
}

fn print_table(rows: &[Measured]) {
    let mut t = Table::new();
    let with_ipvlan = rows.iter().any(|r| r.kind == Kind::Ipvlan);
    let mut header =
        vec!["group", "path", "kind", "Gbit/s", "RTT p50 µs", "RTT p99 µs", "vs bridge + NAT", "vs node's own"];
    if with_ipvlan {
        header.push("vs macvlan");
    }
    t.load_style(UTF8_FULL_CONDENSED).set_header(header);
    let ratio = |r: &Measured, kind: Kind| -> String {
        match rows.iter().find(|o| o.group == r.group && o.kind == kind) {
            Some(o) if o.kind != r.kind => {
                format!("{:.2}x thr, {:.2}x RTT", r.gbit_per_s / o.gbit_per_s, r.p50_us / o.p50_us)
            }
            _ => "-".into(),
        }
    };
    for r in rows {
        let mut row = vec![
            r.group.to_string(),
            r.path.clone(),
            r.kind.label().to_string(),
            format!("{:.2}", r.gbit_per_s),
            format!("{:.1}", r.p50_us),
            format!("{:.1}", r.p99_us),
            ratio(r, Kind::BridgeNat),
            ratio(r, Kind::Host),
        ];
        if with_ipvlan {
            row.push(ratio(r, Kind::Macvlan));
        }
        t.add_row(row);
    }
    println!("{t}");
}

/// Peak resident memory of this process and of the lab's servers (each end of every
/// path), from the kernel's high-water marks.
fn peak_memory(lab: &Lab) -> String {
    let mine = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF)
        .map(|u| u.max_rss() as f64 / 1024.0)
        .unwrap_or(0.0);
    let servers: Vec<f64> =
        lab.record.processes.iter().filter_map(|p| vm_hwm_kib(p.pid)).map(|k| k as f64 / 1024.0).collect();
    let max = servers.iter().cloned().fold(0.0, f64::max);
    format!(
        "peak memory (max RSS): bench client {mine:.1} MB; lab servers up to {max:.1} MB each ({} servers)",
        servers.len()
    )
}

fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?.trim().trim_end_matches("kB").trim().parse().ok()
}

/// Docker's default path, on node1: bridge `docker0` 172.17.0.1/16, two namespaces on
/// veths (`b1` 172.17.0.2, `b2` 172.17.0.3), forwarding on, and masquerade to the LAN.
struct Nat {
    b1: Netns,
    b2_ip: IpAddr,
    /// The server in b2.
    server: Option<Proc>,
}

const NAT_TABLE: &str = "underlay_lab_nat";

impl Nat {
    fn build(lab: &mut Lab, world: &mut World) -> Result<Nat> {
        Nat::remove(world, None);
        let node = world.nodes[0].netns.path().to_path_buf();
        let node = Netns::open(node)?;
        let mut nl = node.netlink()?;
        nl.create_bridge("docker0")?;
        let br = nl.link("docker0")?.index;
        nl.add_address(br, "172.17.0.1/16".parse()?, AddressOptions::default())?;
        nl.set_up(br, true)?;
        let mut made = Vec::new();
        for (i, role) in ["b1", "b2"].iter().enumerate() {
            let ns = world.add_pod(role)?;
            let host_end = format!("veth-{role}");
            nl.create_veth(&host_end, "eth0", Some(ns.fd()))?;
            let h = nl.link(&host_end)?.index;
            nl.set_controller(h, Some(br))?;
            nl.set_up(h, true)?;
            let mut pnl = ns.netlink()?;
            let eth0 = pnl.link("eth0")?.index;
            pnl.add_address(eth0, format!("172.17.0.{}/16", i + 2).parse()?, AddressOptions::default())?;
            pnl.set_up(eth0, true)?;
            pnl.add_route(&Route::new("0.0.0.0/0".parse()?, Some("172.17.0.1".parse()?), Some(eth0)))?;
            made.push(ns);
        }
        node.set_sysctl("net/ipv4/ip_forward", "1")?;
        let rules = format!(
            "table ip {NAT_TABLE} {{\n  chain post {{\n    type nat hook postrouting priority srcnat; policy accept;\n    ip saddr 172.17.0.0/16 oifname \"enp0s3\" masquerade\n  }}\n}}\n"
        );
        node.nft(&rules)?;
        let b2 = made.pop().expect("two made");
        let b1 = made.pop().expect("two made");
        let server = super::build::start_server(lab, &b2, 9090)?;
        Ok(Nat { b1, b2_ip: "172.17.0.3".parse()?, server: Some(server) })
    }

    /// Removes the path: namespaces (their veths go with them), bridge, NAT, forwarding.
    fn remove(world: &World, server: Option<Proc>) {
        if let Some(p) = server {
            p.kill();
        }
        for role in ["b1", "b2"] {
            let _ = Netns::delete(&format!("{}-{role}", world.prefix));
        }
        let node = &world.nodes[0].netns;
        if let Ok(mut nl) = node.netlink() {
            let _ = nl.delete_link_by_name("docker0");
        }
        let _ = node.nft(&format!("table ip {NAT_TABLE} {{}}\ndelete table ip {NAT_TABLE}\n"));
        let _ = node.set_sysctl("net/ipv4/ip_forward", "0");
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::BenchOptions;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        bench: BenchOptions,
    }

    /// Zero round trips left nothing to take percentiles of (a panic on an empty list).
    #[test]
    fn zero_rounds_is_a_usage_error() {
        assert!(Cli::try_parse_from(["lab", "--rounds", "0"]).is_err());
        assert_eq!(Cli::try_parse_from(["lab", "--rounds", "1"]).unwrap().bench.rounds, 1);
    }
}
