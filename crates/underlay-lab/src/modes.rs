//! Claims about macvlan's modes and the LAN around it (seed §2.5, §2.6, §2.7, §4.2).
//! Modes other than the lab's bridge get a scratch node (`mnode`, its own parent) and
//! scratch pods, removed when the claim ends.

use std::net::IpAddr;

use anyhow::{Context, Result, anyhow};
use serde_json::{Value, json};
use underlay::cni::CniResult;
use underlay::undo::Undo;
use underlay_linux::Netns;
use underlay_linux::reach::tcp_reachable;
use underlay_linux::support::{Feature, has};

use super::attach::yes;
use super::build::{NETWORK, WEB_PORT};
use super::claim::{ANSWER, Claim, Ctx, Outcome, SILENCE};
use super::serve::get;

pub const CLAIMS: [Claim; 8] = [
    ("2.5", "bridge mode: pods on one node talk directly", bridge),
    ("2.5", "private mode: pods cannot talk to each other", private),
    ("2.5", "vepa mode: pods talk only through a switch that supports hairpin", vepa),
    ("2.5", "passthru mode: one interface gets the whole parent", passthru),
    ("2.6", "VLANs isolate pods (VLAN 10 and 20 cannot talk)", vlan),
    ("2.7", "pods on different nodes talk through the switch", cross_node),
    ("2.7", "a switch that filters macvlan MACs breaks cross-node traffic", filtered),
    ("4.2", "ipvlan (sharing the parent's MAC) avoids MAC filtering", ipvlan),
];

/// Reached over TCP (a refusal counts: the peer answered).
fn tcp(from: &Netns, ip: IpAddr, wait: std::time::Duration) -> Result<bool> {
    Ok(tcp_reachable(from, ip, 9, wait)?)
}

fn bridge(c: &mut Ctx) -> Result<Outcome> {
    let pods = c.pods_of(0);
    let (a, b) = match pods.as_slice() {
        [a, b, ..] => (*a, *b),
        _ => return Ok(Outcome::skipped("two pods on node1", "the lab has one pod per node (--pods 1)")),
    };
    let a_to_b = get(c.pod_ns(a)?, b.ip, WEB_PORT, ANSWER)?;
    let c_to_a = get(&c.container, a.ip, WEB_PORT, ANSWER)?.is_some();
    let direct = a_to_b.is_some_and(|s| s.you.ip() == a.ip);
    Ok(Outcome::new(
        format!("{} → {} and container1 → {} answer, each seeing the sender's own address", a.role, b.role, a.role),
        format!("{} → {}: {}; container1 → {}: {}", a.role, b.role, yes(direct), a.role, yes(c_to_a)),
        direct && c_to_a,
    ))
}

/// A scratch node and `n` scratch pods attached to its enp0s3 with `conf` (type and
/// mode set by the caller); all removed when the guard drops.
struct Scratch {
    pods: Vec<(Netns, CniResult)>,
}

fn scratch_conf(c: &Ctx, ty: &str, mode: &str) -> Value {
    json!({
        "cniVersion": "1.0.0",
        "name": format!("lab-{mode}"),
        "type": ty,
        "master": "enp0s3",
        "mode": mode,
        "ipam": {"type": "host-local", "subnet": "192.168.1.0/24", "rangeStart": "192.168.1.211",
                 "rangeEnd": "192.168.1.230", "dataDir": c.lab.dir.join("scratch-ipam")},
    })
}

/// ADD from inside `node`, as a runtime there would.
pub(super) fn cni_add(node: &Netns, pod: &Netns, id: &str, conf: &Value) -> Result<CniResult> {
    let path = pod.path().to_path_buf();
    node.run(|| underlay_cli::endpoint::cni_call("ADD", id, &path, "eth0", "", conf))?
        .map_err(|e| anyhow!("{e}"))?
        .context("ADD gave no result")
}

/// Removes the scratch namespaces and their address store, whatever a claim left.
fn clear_scratch(c: &mut Ctx) {
    for name in c.lab.record.scratch() {
        if Netns::exists(&name) {
            let _ = c.world.remove(&name);
        }
    }
    let _ = std::fs::remove_dir_all(c.lab.dir.join("scratch-ipam"));
}

/// Runs `body` with a fresh scratch node whose `pods` pods are attached with `conf`.
fn with_scratch(
    c: &mut Ctx,
    conf: &Value,
    pods: usize,
    body: impl FnOnce(&mut Ctx, &Scratch) -> Result<Outcome>,
) -> Result<Outcome> {
    clear_scratch(c);
    let result = (|| {
        let ip = c.world.spec.host_ip(20);
        c.world.plug_node("mnode", ip)?;
        let mut s = Scratch { pods: vec![] };
        for i in 1..=pods {
            let ns = c.world.add_pod(&format!("m{i}"))?;
            let node = c.world.nodes.last().context("the scratch node")?;
            let r = cni_add(&node.netns, &ns, &format!("m{i}"), conf)?;
            s.pods.push((ns, r));
        }
        body(c, &s)
    })();
    clear_scratch(c);
    result
}

pub(super) fn ip_of(r: &CniResult) -> Result<IpAddr> {
    r.ips.first().map(|i| i.address.addr()).context("no address")
}

fn private(c: &mut Ctx) -> Result<Outcome> {
    let conf = scratch_conf(c, "macvlan", "private");
    with_scratch(c, &conf, 2, |c, s| {
        let (m1, m2) = (&s.pods[0], &s.pods[1]);
        let each_other = tcp(&m1.0, ip_of(&m2.1)?, SILENCE)?;
        let lan = tcp(&m1.0, c.ext().ip.addr(), ANSWER)?;
        Ok(Outcome::new(
            "two private pods on one parent cannot reach each other; each still reaches the LAN",
            format!("pod → pod: {}; pod → external device: {}", yes(each_other), yes(lan)),
            !each_other && lan,
        ))
    })
}

fn vepa(c: &mut Ctx) -> Result<Outcome> {
    let conf = scratch_conf(c, "macvlan", "vepa");
    with_scratch(c, &conf, 2, |c, s| {
        let (m1, m2) = (&s.pods[0], &s.pods[1]);
        let peer = ip_of(&m2.1)?;
        let port = c.world.nodes.last().context("the scratch node")?.port.clone();
        let before = c.world.spec.hairpin;
        c.world.set_hairpin(&port, false)?;
        let without = tcp(&m1.0, peer, SILENCE)?;
        c.world.set_hairpin(&port, true)?;
        let with = tcp(&m1.0, peer, ANSWER)?;
        c.world.set_hairpin(&port, before)?;
        Ok(Outcome::new(
            "without hairpin on the switch port the two vepa pods cannot talk; with it they can",
            format!("without hairpin: {}; with hairpin: {}", yes(without), yes(with)),
            !without && with,
        ))
    })
}

fn passthru(c: &mut Ctx) -> Result<Outcome> {
    let conf = scratch_conf(c, "macvlan", "passthru");
    with_scratch(c, &conf, 1, |c, s| {
        let m1 = &s.pods[0];
        let lan = tcp(&m1.0, c.ext().ip.addr(), ANSWER)?;
        let second = c.world.add_pod("m2")?;
        let node = c.world.nodes.last().context("the scratch node")?;
        let refused = match cni_add(&node.netns, &second, "m2", &conf) {
            Ok(_) => "accepted".to_string(),
            Err(e) => format!("refused ({e:#})"),
        };
        let ok = lan && refused.starts_with("refused");
        Ok(Outcome::new(
            "the passthru pod reaches the LAN; a second one on the same parent is refused",
            format!("passthru pod → external device: {}; second passthru pod: {refused}", yes(lan)),
            ok,
        ))
    })
}

fn vlan(c: &mut Ctx) -> Result<Outcome> {
    let expected = "VLAN 10 pods on node1 and node2 talk; a VLAN 20 pod on node2 cannot reach the VLAN 10 pod";
    if !has(Feature::Vlan)? {
        return Ok(Outcome::skipped(expected, Feature::Vlan.missing()).note(VLAN_NOTE));
    }
    clear_scratch(c);
    let result = vlan_run(c, expected);
    clear_scratch(c);
    result.map(|o| o.note(VLAN_NOTE))
}

const VLAN_NOTE: &str = "The seed mixes two things: `-o macvlan_mode=vepa` has nothing to do with VLANs. Isolation comes from an 802.1Q sub-interface as the parent (`underlay network create -o parent=enp0s3.10` makes it), the switch carrying the tags.";

fn vlan_run(c: &mut Ctx, expected: &str) -> Result<Outcome> {
    let mut made: Vec<(usize, String)> = Vec::new();
    let result = vlan_body(c, expected, &mut made);
    for (node, name) in made {
        if let Ok(mut nl) = c.world.nodes[node].netns.netlink() {
            let _ = nl.delete_link_by_name(&name);
        }
    }
    result
}

/// VLAN 10 on node1 and node2, VLAN 20 on node2; one pod on each.
fn vlan_body(c: &mut Ctx, expected: &str, made: &mut Vec<(usize, String)>) -> Result<Outcome> {
    let plan = [(0usize, 10u16, "m1", 11), (1, 10, "m2", 21), (1, 20, "m3", 31)];
    let mut pods = Vec::new();
    for (node, vid, role, first) in plan {
        let ns = &c.world.nodes[node].netns;
        let name = format!("enp0s3.{vid}");
        let mut nl = ns.netlink()?;
        if nl.link_by_name(&name)?.is_none() {
            let parent = nl.link("enp0s3")?.index;
            nl.create_vlan(&name, parent, vid)?;
            made.push((node, name.clone()));
            let l = nl.link(&name)?;
            nl.set_up(l.index, true)?;
        }
        let conf = json!({
            "cniVersion": "1.0.0", "name": format!("lab-vlan-{role}"), "type": "macvlan", "master": name, "mode": "bridge",
            "ipam": {"type": "host-local", "subnet": "10.10.0.0/24", "rangeStart": format!("10.10.0.{first}"),
                     "rangeEnd": format!("10.10.0.{}", first + 8), "dataDir": c.lab.dir.join("scratch-ipam")},
        });
        let pod = c.world.add_pod(role)?;
        let r = cni_add(&c.world.nodes[node].netns, &pod, role, &conf)?;
        pods.push((pod, ip_of(&r)?));
    }
    let same = tcp(&pods[0].0, pods[1].1, ANSWER)?;
    let other = tcp(&pods[2].0, pods[0].1, SILENCE)?;
    Ok(Outcome::new(
        expected,
        format!("VLAN 10 ↔ VLAN 10: {}; VLAN 20 → VLAN 10: {}", yes(same), yes(other)),
        same && !other,
    ))
}

fn first_pods<'l>(c: &Ctx<'l>) -> Result<(&'l super::record::Pod, &'l super::record::Pod)> {
    let a = c.lab.record.pods_of(0).next().context("node1 has no pod")?;
    let b = c.lab.record.pods_of(1).next().context("node2 has no pod")?;
    Ok((a, b))
}

fn cross_node(c: &mut Ctx) -> Result<Outcome> {
    let (a, b) = first_pods(c)?;
    let seen = get(c.pod_ns(a)?, b.ip, WEB_PORT, ANSWER)?;
    let ok = seen.is_some_and(|s| s.you.ip() == a.ip);
    Ok(Outcome::new(
        format!("{} (node1) → {} (node2) answers, seeing {}", a.role, b.role, a.ip),
        match seen {
            Some(s) => format!("answered, seeing {}", s.you.ip()),
            None => "no answer".into(),
        },
        ok,
    ))
}

fn filtered(c: &mut Ctx) -> Result<Outcome> {
    let (a, b) = first_pods(c)?;
    let before = c.world.drops_unknown_macs();
    c.world.set_drop_unknown_macs(true)?;
    let world = &c.world;
    let _restore = Undo::new(move || {
        let _ = world.set_drop_unknown_macs(before);
    });
    let cut = get(c.pod_ns(a)?, b.ip, WEB_PORT, SILENCE)?.is_none();
    let out = c.cli(&["doctor", NETWORK, "--probe", "--format", "json"])?;
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let named = report["findings"].as_array().is_some_and(|f| f.iter().any(|f| f["check"] == "unknown-macs-dropped"));
    Ok(Outcome::new(
        "with the switch dropping unknown MACs: no answer; `underlay doctor --probe` names the cause",
        format!("{} → {}: {}; doctor: {}", a.role, b.role, if cut { "no answer" } else { "answered" }, if named { "unknown-macs-dropped" } else { "did not say" }),
        cut && named,
    )
    .note("Clouds (AWS, GCP, Azure) and locked-down hypervisors do the same; `underlay doctor --probe` tells from the host whether the LAN answers a new MAC."))
}

fn ipvlan(c: &mut Ctx) -> Result<Outcome> {
    let expected = "with the switch dropping unknown MACs, an ipvlan pod still reaches the external device";
    if !has(Feature::Ipvlan)? {
        return Ok(Outcome::skipped(expected, Feature::Ipvlan.missing()));
    }
    let before = c.world.drops_unknown_macs();
    c.world.set_drop_unknown_macs(true)?;
    let conf = scratch_conf(c, "ipvlan", "l2");
    let result = with_scratch(c, &conf, 1, |c, s| {
        let lan = tcp(&s.pods[0].0, c.ext().ip.addr(), ANSWER)?;
        Ok(Outcome::new(expected, format!("ipvlan pod → external device: {}", yes(lan)), lan))
    });
    c.world.set_drop_unknown_macs(before)?;
    result
}
