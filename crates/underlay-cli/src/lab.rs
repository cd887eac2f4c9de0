//! `underlay lab`: the seed's network, built in namespaces and checked.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Args;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use underlay_linux::reach::tcp_reachable;
use underlay_linux::world::{World, WorldSpec};

#[derive(Args)]
pub struct LabArgs {
    /// Number of nodes on the LAN.
    #[arg(long, default_value_t = 2)]
    nodes: usize,
}

pub fn run(args: LabArgs) -> Result<()> {
    let started = Instant::now();
    let world = World::build(WorldSpec::seed("lab").nodes(args.nodes).pods(0))
        .context("build the lab (it needs root: CAP_NET_ADMIN and CAP_SYS_ADMIN)")?;
    let mut table = Table::new();
    table.load_style(UTF8_FULL_CONDENSED).set_header(["from", "to", "address", "reached"]);
    let mut failures = 0;
    let hosts: Vec<_> = world.hosts().collect();
    for from in &hosts {
        for to in hosts.iter().filter(|h| h.name() != from.name()) {
            let ok = tcp_reachable(&from.netns, to.ip.addr(), 9, Duration::from_secs(3))?;
            failures += usize::from(!ok);
            table.add_row([role(&world, from.name()), role(&world, to.name()), &to.ip.addr().to_string(), &mark(ok)]);
        }
    }
    println!("Simulated LAN {} (switch {}-sw):", world.spec.subnet, world.prefix);
    println!("{table}");
    println!("{} checks, {failures} failed, {:.1} s", hosts.len() * (hosts.len() - 1), started.elapsed().as_secs_f64());
    drop(world);
    anyhow::ensure!(failures == 0, "{failures} lab checks failed");
    Ok(())
}

fn role<'a>(world: &World, name: &'a str) -> &'a str {
    name.strip_prefix(&world.prefix).map(|s| s.trim_start_matches('-')).unwrap_or(name)
}

fn mark(ok: bool) -> String {
    if ok { "✓".into() } else { "✗".into() }
}
