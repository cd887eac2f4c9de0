//! Claims about the host and its own pods (seed §2.4, §4.1, §6.2, §6.3): isolation, what
//! lifts it, the seed's macvlan0 and the SSH it cost, and underlay's host access. Each
//! change is undone when the claim ends, also when it fails.

use std::net::IpAddr;

use anyhow::{Context, Result};
use underlay::undo::Undo;
use underlay_linux::macvlan::{MacvlanMode, MacvlanSpec};
use underlay_linux::probe::arp_probe;
use underlay_linux::route::Route;
use underlay_linux::{Netlink, Netns};

use super::attach::yes;
use super::build::{NETWORK, SSH_PORT, WEB_PORT};
use super::claim::{ANSWER, Claim, Ctx, Outcome, SILENCE};
use super::serve::get;

pub const CLAIMS: [Claim; 6] = [
    ("2.4", "the host cannot reach its own pods; other hosts can", host_isolation),
    ("2.4", "the kernel cannot loop the host's traffic back to its pods", hairpin),
    ("4.1", "the host cannot reach its pods (remedies: Service, Multus, hostNetwork)", host_access),
    ("6.2", "even with macvlan0 (192.168.1.254/24) the host cannot reach the pod", seed_macvlan0),
    ("6.3", "macvlan0 in the node's own subnet cut the node's SSH", ssh_accident),
    ("6.3", "(underlay) the same-subnet shim is refused, with the reason", refused),
];

fn reaches(from: &Netns, ip: IpAddr, port: u16) -> Result<bool> {
    Ok(get(from, ip, port, ANSWER)?.is_some())
}

fn silent(from: &Netns, ip: IpAddr, port: u16) -> Result<bool> {
    Ok(get(from, ip, port, SILENCE)?.is_none())
}

fn host_isolation(c: &mut Ctx) -> Result<Outcome> {
    let node1 = silent(&c.node(0).netns, c.container_ip, WEB_PORT)?;
    let node2 = reaches(&c.node(1).netns, c.container_ip, WEB_PORT)?;
    Ok(Outcome::new(
        "node1 gets no answer from container1:9090; node2 does",
        format!("node1 answered: {}; node2 answered: {}", yes(!node1), yes(node2)),
        node1 && node2,
    ))
}

fn hairpin(c: &mut Ctx) -> Result<Outcome> {
    let port = c.node(0).port.clone();
    let before = c.lab.record.hairpin;
    c.world.set_hairpin(&port, true)?;
    let world = &c.world;
    let _restore = Undo::new(|| {
        let _ = world.set_hairpin(&port, before);
    });
    let reached = reaches(&c.node(0).netns, c.container_ip, WEB_PORT)?;
    Ok(Outcome::new(
        "with hairpin on node1's switch port, node1 reaches container1 through the switch",
        format!("node1 answered by container1: {}", yes(reached)),
        reached,
    )
    .note("The seed is incomplete: isolation is macvlan's bridge mode not passing frames between the parent and its children inside the host; a switch port in hairpin (reflective relay) mode sends node1's frames back in, and node1 reaches its pod through the switch."))
}

/// Creates `name` (bridge mode) on `node`'s enp0s3 with `addr`, up; the guard deletes it.
fn add_macvlan0(ns: &Netns, addr: &str) -> Result<(u32, Undo<impl FnOnce()>)> {
    let mut nl = ns.netlink()?;
    let parent = nl.link("enp0s3")?.index;
    nl.create_macvlan(&MacvlanSpec::new("macvlan0", parent, MacvlanMode::Bridge))?;
    let path = ns.path().to_path_buf();
    let undo = Undo::new(move || {
        if let Ok(mut nl) = Netns::open(&path).and_then(|ns| ns.netlink()) {
            let _ = nl.delete_link_by_name("macvlan0");
        }
    });
    let link = nl.link("macvlan0")?;
    nl.add_address(link.index, addr.parse()?, Default::default())?;
    nl.set_up(link.index, true)?;
    Ok((link.index, undo))
}

fn seed_macvlan0(c: &mut Ctx) -> Result<Outcome> {
    let ns = &c.node(0).netns;
    let (index, _undo) = add_macvlan0(ns, "192.168.1.254/24")?;
    let still_silent = silent(ns, c.container_ip, WEB_PORT)?;
    // What would make it work: the pod's traffic through macvlan0.
    let host_route = Route::new(ipnet::IpNet::from(c.container_ip), None, Some(index));
    ns.netlink()?.add_route(&host_route)?;
    let with_route = reaches(ns, c.container_ip, WEB_PORT)?;
    Ok(Outcome::new(
        "no answer, as the seed saw; an answer once 192.168.1.100/32 is routed through macvlan0",
        format!("with macvlan0 only: {}; with the /32 route: {}", if still_silent { "no answer" } else { "answered" }, if with_route { "answered" } else { "no answer" }),
        still_silent && with_route,
    )
    .note("Why: macvlan0's address adds a second route to 192.168.1.0/24, but the host keeps using the first (enp0s3's), so its packets to the pod still leave through the parent. A route to the pod through macvlan0 is what helps; `underlay host-access` adds one per endpoint (or one for the network's --ip-range) with a /32 host address, no second subnet route."))
}

/// Moves `ns`'s subnet route on enp0s3 behind any other (what a DHCP renewal or a
/// link flap does when it re-adds it).
fn re_add_subnet_route(nl: &mut Netlink) -> Result<()> {
    let enp = nl.link("enp0s3")?.index;
    let route = nl
        .routes()?
        .into_iter()
        .find(|r| r.oif == Some(enp) && r.dst.to_string() == "192.168.1.0/24" && r.unicast)
        .context("node2 has no route to 192.168.1.0/24 on enp0s3")?;
    nl.del_route(&route)?;
    Ok(nl.append_route(&route)?)
}

fn ssh_accident(c: &mut Ctx) -> Result<Outcome> {
    let node2 = c.node(1);
    let node2_ip = node2.ip.addr();
    let ext = &c.ext().netns;
    let before = reaches(ext, node2_ip, SSH_PORT)?;
    let dropped_before = c.world.drops_unknown_macs();
    c.world.set_drop_unknown_macs(true)?;
    let world = &c.world;
    let _restore = Undo::new(move || {
        let _ = world.set_drop_unknown_macs(dropped_before);
    });
    let (_, macvlan0) = add_macvlan0(&node2.netns, "192.168.1.254/24")?;
    let shim_only = reaches(ext, node2_ip, SSH_PORT)?;
    re_add_subnet_route(&mut node2.netns.netlink()?)?;
    let cut = silent(ext, node2_ip, SSH_PORT)?;
    drop(macvlan0);
    let back = reaches(ext, node2_ip, SSH_PORT)?;
    Ok(Outcome::new(
        "node2:22 answers; with macvlan0 whose route wins, on a LAN dropping unknown MACs, it does not; without macvlan0 it does again",
        format!(
            "before: {}; macvlan0 added: {}; enp0s3's route re-added after it: {}; macvlan0 removed: {}",
            yes(before),
            yes(shim_only),
            if cut { "no answer" } else { "answered" },
            yes(back)
        ),
        before && cut && back,
    )
    .note("Reproduced one way the seed's 'route conflict or ARP confusion' can happen: macvlan0's subnet route wins (it does once enp0s3's is re-added after it, as a DHCP renewal or link flap does) on a LAN that drops frames from MACs it does not know (VirtualBox, where the name enp0s3 comes from, does by default), so the node's replies leave through macvlan0 and are dropped. Strict reverse-path filtering (rp_filter=1) is another way: it drops what reaches the node on the interface it would not reply through."))
}

fn refused(c: &mut Ctx) -> Result<Outcome> {
    let snapshot = |nl: &mut Netlink| -> Result<(usize, usize)> { Ok((nl.links()?.len(), nl.routes()?.len())) };
    let mut nl = c.node(0).netns.netlink()?;
    let before = snapshot(&mut nl)?;
    let out = c.cli(&["host-access", "enable", NETWORK, "--address", "192.168.1.254/24"])?;
    let after = snapshot(&mut nl)?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let code = out.status.code().unwrap_or(-1);
    let said = stderr.trim().trim_start_matches("underlay: ").split(':').next().unwrap_or_default().to_string();
    let ok = code == 2 && stderr.contains("second route") && before == after;
    Ok(Outcome::new(
        "`underlay host-access enable --address 192.168.1.254/24` exits 2, explains, changes nothing",
        format!(
            "exit {code}: \"{said}: ...\"; links and routes {}",
            if before == after { "unchanged" } else { "changed" }
        ),
        ok,
    ))
}

fn host_access(c: &mut Ctx) -> Result<Outcome> {
    // The seed's macvlan0 address, as a host address. (The network's own next free
    // address could be a CNI pod's: the pods' host-local stores are not the network's.)
    let enabled = c.cli(&["host-access", "enable", NETWORK, "--address", "192.168.1.254"])?;
    let lab_cli = |args: &[&str]| c.cli(args).map(drop);
    let _disable = Undo::new(|| {
        let _ = lab_cli(&["host-access", "disable", NETWORK]);
    });
    if !enabled.status.success() {
        anyhow::bail!("host-access enable failed: {}", String::from_utf8_lossy(&enabled.stderr).trim());
    }
    let node = c.node(0);
    let reached = reaches(&node.netns, c.container_ip, WEB_PORT)?;
    let ext = c.ext();
    let ssh = reaches(&ext.netns, node.ip.addr(), SSH_PORT)?;
    let eth0 = ext.netns.netlink()?.link("eth0")?.index;
    let IpAddr::V4(node_ip) = node.ip.addr() else { anyhow::bail!("node1 has no IPv4 address") };
    let answers = ext.netns.run(|| arp_probe(eth0, &[node_ip], ANSWER / 3))??;
    let one_mac = !answers.is_empty() && answers.iter().all(|a| a.mac == node.mac);
    Ok(Outcome::new(
        "with `underlay host-access enable --address 192.168.1.254`: node1 reaches container1, the LAN still reaches node1:22, and only enp0s3's MAC answers for 192.168.1.10",
        format!("node1 → container1: {}; LAN → node1:22: {}; ARP for 192.168.1.10 answered by enp0s3 only: {}", yes(reached), yes(ssh), yes(one_mac)),
        reached && ssh && one_mac,
    )
    .note("The seed's remedies skip the usual one, a host-side macvlan; done by hand it is what cost the seed its SSH (6.3). underlay host-access makes it safely: a /32 host address and host routes, never a second subnet route, ARP flux off, rolled back if the host would lose its gateway."))
}
