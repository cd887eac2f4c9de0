//! Claims about attachment itself (seed §1.2, §2.1, §2.2, §4.3, §4.4): LAN addresses,
//! no NAT, own MACs the switch learns, and what configuration is really needed.

use std::net::{IpAddr, Ipv4Addr};

use anyhow::{Context, Result};
use serde_json::json;
use underlay::cni::{Attachment, CniArgs, Version};
use underlay::ipam::{HostLocalConf, host_local};
use underlay_linux::probe::arp_probe;

use super::build::{HTTP_PORT, SEED_CNI, WEB_PORT};
use super::claim::{ANSWER, Claim, Ctx, Outcome};
use super::serve::get;

pub const CLAIMS: [Claim; 10] = [
    ("1.2", "the Docker example gives container1 192.168.1.100, bound to enp0s3", docker_example),
    ("1.2", "the Kubernetes JSON gives pods LAN addresses; they serve :9090", k8s_example),
    ("2.1", "no NAT: each side sees the other's own LAN address", no_nat),
    ("2.1", "the pod answers ARP with its own MAC", arp_own_mac),
    ("2.2", "every endpoint has its own MAC, and the switch learns it", own_macs),
    ("4.3", "IP management by hand invites conflicts", ipam_conflict),
    ("4.3", "(underlay) with conflict detection: no duplicate", probed_ipam),
    ("4.3", "(underlay) one range for every node, no conflicts: underlay-ipam on etcd", cluster_ipam),
    ("4.4", "the parent must be put in promiscuous mode", promiscuous),
    ("4.4", "the MTU must be adjusted", mtu),
];

fn v4(ip: IpAddr) -> Option<Ipv4Addr> {
    match ip {
        IpAddr::V4(a) => Some(a),
        IpAddr::V6(_) => None,
    }
}

fn docker_example(c: &mut Ctx) -> Result<Outcome> {
    let mut nl = c.container.netlink()?;
    let eth0 = nl.link("eth0")?;
    let addr = nl.addresses(Some(eth0.index))?.into_iter().map(|a| a.net).find(|n| n.addr().is_ipv4());
    let parent = c.node(0).netns.netlink()?.link("enp0s3")?;
    let mode = eth0.macvlan_mode().map(|m| m.as_str()).unwrap_or("-");
    let ok = addr.map(|a| a.to_string()).as_deref() == Some("192.168.1.100/24")
        && eth0.is_macvlan()
        && eth0.parent == Some(parent.index)
        && eth0.link_netnsid.is_some();
    let observed = format!(
        "container1 eth0 {}: {} ({mode}) whose parent is node1's ifindex {} (enp0s3 is {})",
        addr.map(|a| a.to_string()).unwrap_or_else(|| "no address".into()),
        eth0.kind.as_deref().unwrap_or("?"),
        eth0.parent.unwrap_or(0),
        parent.index
    );
    Ok(Outcome::new("192.168.1.100/24 on a macvlan of node1's enp0s3", observed, ok))
}

fn k8s_example(c: &mut Ctx) -> Result<Outcome> {
    let ext = &c.ext().netns;
    let mut seen = Vec::new();
    let mut ok = true;
    for p in &c.lab.record.pods_made {
        let in_range =
            v4(p.ip).is_some_and(|a| (100..=200).contains(&a.octets()[3]) && a.octets()[..3] == [192, 168, 1]);
        let serves = get(ext, p.ip, WEB_PORT, ANSWER)?.is_some();
        ok &= in_range && serves;
        seen.push(format!("{} {} (node{}){}", p.role, p.ip, p.node + 1, if serves { "" } else { " silent" }));
    }
    let expected = "each pod an address of 192.168.1.100-200, answering the external device on :9090";
    Ok(Outcome::new(expected, format!("{}; from 192.168.1.9: {}", seen.join(", "), if ok { "all answer" } else { "not all answer" }), ok)
        .note("The lab gives each node its own slice of the seed's range (node1 from .101, node2 from .151): with the seed's JSON unchanged, each node's host-local would hand out .100 first (see 4.3)."))
}

fn no_nat(c: &mut Ctx) -> Result<Outcome> {
    let ext = c.ext();
    let ext_ip = ext.ip.addr();
    let inbound = get(&ext.netns, c.container_ip, WEB_PORT, ANSWER)?.context("container1 did not answer on :9090")?;
    let outbound =
        get(&c.container, ext_ip, HTTP_PORT, ANSWER)?.context("the external device did not answer on :80")?;
    let ok = inbound.you.ip() == ext_ip && outbound.you.ip() == c.container_ip;
    Ok(Outcome::new(
        "container1 sees 192.168.1.9; the external device sees 192.168.1.100",
        format!("container1 saw {}; the external device saw {}", inbound.you.ip(), outbound.you.ip()),
        ok,
    ))
}

fn arp_own_mac(c: &mut Ctx) -> Result<Outcome> {
    let ext = c.ext();
    let eth0 = ext.netns.netlink()?.link("eth0")?.index;
    let target = v4(c.container_ip).context("container1 has no IPv4 address")?;
    let answers = ext.netns.run(|| arp_probe(eth0, &[target], ANSWER / 3))??;
    let macs: Vec<String> = answers.iter().map(|a| a.mac.to_string()).collect();
    let ok = !answers.is_empty() && answers.iter().all(|a| a.mac == c.container_mac);
    Ok(Outcome::new(
        format!("only container1's MAC {} (node1's enp0s3 is {})", c.container_mac, c.node(0).mac),
        if macs.is_empty() { "no answer".to_string() } else { format!("answered by {}", macs.join(", ")) },
        ok,
    ))
}

fn own_macs(c: &mut Ctx) -> Result<Outcome> {
    let eps = c.endpoints();
    let node_macs: Vec<_> = c.world.nodes.iter().map(|n| n.mac).collect();
    let mut macs: Vec<_> = eps.iter().map(|e| e.3).collect();
    macs.sort();
    macs.dedup();
    let distinct = macs.len() == eps.len() && !macs.iter().any(|m| node_macs.contains(m));
    let mut sw = c.world.switch.netlink()?;
    let fdb = sw.fdb()?;
    let mut learned = 0;
    for (_, node, _, mac) in &eps {
        let port = sw.link(&c.node(*node).port)?.index;
        learned += usize::from(fdb.iter().any(|f| f.mac == *mac && f.port == port && f.learned));
    }
    let ok = distinct && learned == eps.len();
    Ok(Outcome::new(
        format!("{} distinct MACs, none a node's; each learned by the switch on its node's port", eps.len()),
        format!(
            "{} distinct of {}{}; {learned} of {} in the switch's table on their node's port",
            macs.len(),
            eps.len(),
            if distinct { ", none a node's" } else { "" },
            eps.len()
        ),
        ok,
    ))
}

/// The seed's JSON, unchanged, on two nodes, each with its own host-local store
/// (IPAM only: nothing reaches the LAN).
fn ipam_conflict(c: &mut Ctx) -> Result<Outcome> {
    let scratch = c.lab.dir.join("ipam-conflict");
    let mut got = Vec::new();
    for node in ["node1", "node2"] {
        let mut conf: serde_json::Value = serde_json::from_str(SEED_CNI)?;
        conf["ipam"]["dataDir"] = json!(scratch.join(node));
        let hl = HostLocalConf::parse(&conf, Version::V0_4_0, &CniArgs::default())?;
        let r = host_local::add(&hl, &Attachment { container_id: format!("{node}-pod"), ifname: "eth0".into() })?;
        got.push(r.ips.first().map(|i| i.address.addr().to_string()).unwrap_or_default());
    }
    let _ = std::fs::remove_dir_all(&scratch);
    let ok = got[0] == got[1];
    Ok(Outcome::new(
        "both nodes hand out the same first address",
        format!("node1's host-local gave {}, node2's gave {}", got[0], got[1]),
        ok,
    )
    .note("True: host-local only knows its own node. Give each node its own rangeStart/rangeEnd (as this lab does), or use a cluster-wide IPAM."))
}

/// The seed's JSON, unchanged, on node1 and node2, each with its own host-local store,
/// through the macvlan plugin with its default conflict detection: each ADD probes the
/// address host-local chose and takes another while a device on the LAN answers (here
/// container1 on .100 and the lab's pods from .101 too).
fn probed_ipam(c: &mut Ctx) -> Result<Outcome> {
    let scratch = c.lab.dir.join("ipam-probed");
    let mut pods = Vec::new();
    for node in 1..=2 {
        pods.push(c.world.add_pod(&format!("cd{node}"))?);
    }
    let mut got = Vec::new();
    let mut outcome = Ok(());
    for (node, pod) in pods.iter().enumerate() {
        let mut conf: serde_json::Value = serde_json::from_str(SEED_CNI)?;
        conf["ipam"]["dataDir"] = json!(scratch.join(format!("node{}", node + 1)));
        let path = pod.path().to_path_buf();
        let id = format!("node{}-probed", node + 1);
        let added =
            c.node(node).netns.run(|| underlay_cli::endpoint::cni_call("ADD", &id, &path, "eth0", "", &conf))?;
        match added {
            Ok(r) => got.push(r.and_then(|r| r.ips.first().map(|i| i.address.addr()))),
            Err(e) => {
                outcome = Err(anyhow::anyhow!("ADD on node{}: {e}", node + 1));
                break;
            }
        }
    }
    // The pods' namespaces go, and their links with them; the stores are scratch.
    for pod in pods {
        let name = pod.name().map(str::to_string);
        drop(pod);
        if let Some(name) = name {
            let _ = c.world.remove(&name);
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    outcome?;
    let show = |ip: &Option<IpAddr>| ip.map(|i| i.to_string()).unwrap_or_else(|| "no address".into());
    let ok = got.len() == 2 && got[0].is_some() && got[0] != got[1];
    Ok(Outcome::new(
        "node1 and node2, with the same range and separate stores, get different addresses",
        format!("node1's pod got {}, node2's got {}", show(&got[0]), show(&got[1])),
        ok,
    )
    .note("Each ADD sends ARP probes (RFC 5227) for the address host-local chose before using it; a device that answers gets the address recorded as a foreign hold in the store and the plugin takes the next one (conflictDetection, on by default)."))
}

/// The seed's JSON with `underlay-ipam` in host-local's place, from node1 and node2,
/// against an etcd member on the external device (IPAM only: nothing reaches the LAN
/// but the store's traffic).
fn cluster_ipam(c: &mut Ctx) -> Result<Outcome> {
    let expected = "node1 and node2, with the same range, get different addresses";
    let installed =
        std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("etcd").is_file()));
    if !installed {
        return Ok(Outcome::skipped(expected, "etcd is not installed (apt-get install etcd-server)"));
    }
    let ext = c.ext();
    let name = ext.name().to_string();
    let launcher = Box::new(move |program: &str| {
        let mut cmd = std::process::Command::new("ip");
        cmd.args(["netns", "exec", &name, program]);
        cmd
    });
    let cluster = underlay_ipam::cluster::Cluster::start_with(1, ext.ip.addr(), &[2379, 2380], launcher, false)?;
    for pid in cluster.pids() {
        c.lab.note_process(pid)?;
    }
    let mut got = Vec::new();
    for node in 0..2 {
        let mut conf: serde_json::Value = serde_json::from_str(SEED_CNI)?;
        conf["ipam"]["type"] = json!("underlay-ipam");
        conf["ipam"]["node"] = json!(format!("node{}", node + 1));
        conf["ipam"]["etcd"] = cluster.etcd_conf();
        let ipam = underlay_ipam::IpamConf::parse(&conf, Version::V0_4_0, &CniArgs::default())?;
        let owner = Attachment { container_id: format!("node{}-pod", node + 1), ifname: "eth0".into() };
        let r = c.node(node).netns.run(|| -> Result<_, underlay::cni::CniError> {
            let mut store = underlay_ipam::store::EtcdStore::open(&ipam)?;
            host_local::add_in(&mut store, &ipam.ranges, &owner)
        })??;
        got.push(r.ips.first().map(|i| i.address.addr().to_string()).unwrap_or_default());
    }
    Ok(Outcome::new(expected, format!("node1 got {}, node2 got {}", got[0], got[1]), got[0] != got[1])
        .note("underlay-ipam keeps every node's reservations in one etcd store — one transaction per address, no lock — so the seed's range works on every node unchanged."))
}

fn promiscuous(c: &mut Ctx) -> Result<Outcome> {
    let link = c.node(0).netns.netlink()?.link("enp0s3")?;
    let reached = get(&c.ext().netns, c.container_ip, WEB_PORT, ANSWER)?.is_some();
    let ok = !link.promisc && reached;
    Ok(Outcome::new(
        "not needed: enp0s3 stays non-promiscuous and container1 is reached",
        format!("enp0s3 promiscuous: {}; container1 reached from the LAN: {}", yes(link.promisc), yes(reached)),
        ok,
    )
    .note("The seed is wrong here: the kernel adds each macvlan's MAC to the NIC's unicast filter, and a NIC whose filter is full (or that has none) is switched to promiscuous mode by the kernel itself; `ip link set enp0s3 promisc on` is not needed."))
}

fn mtu(c: &mut Ctx) -> Result<Outcome> {
    let parent = c.node(0).netns.netlink()?.link("enp0s3")?.mtu;
    let mut mtus = vec![("container1".to_string(), c.container.netlink()?.link("eth0")?.mtu)];
    for p in &c.lab.record.pods_made {
        mtus.push((p.role.clone(), c.pod_ns(p)?.netlink()?.link("eth0")?.mtu));
    }
    let ok = mtus.iter().all(|(_, m)| *m == parent);
    let odd: Vec<String> = mtus.iter().filter(|(_, m)| *m != parent).map(|(n, m)| format!("{n} {m}")).collect();
    Ok(Outcome::new(
        format!("every endpoint inherits enp0s3's MTU ({parent})"),
        if odd.is_empty() { format!("all {} endpoints: {parent}", mtus.len()) } else { format!("differ: {}", odd.join(", ")) },
        ok,
    )
    .note("Only a network whose MTU must differ from its parent's needs one (`--mtu`, or \"mtu\" in the CNI config); it can never exceed the parent's, and `underlay doctor` reports a mismatch."))
}

pub fn yes(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}
