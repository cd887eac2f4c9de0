//! Active ARP probes on a parent interface, sent from a temporary macvlan with its own
//! MAC inside a throwaway network namespace (so the host's own addresses, routes and
//! ARP cache are never touched): who answers for an address, and whether frames from
//! a MAC the LAN has never seen get an answer at all (clouds and locked-down
//! hypervisors drop them).

use std::net::Ipv4Addr;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::sched::{CloneFlags, unshare};
use underlay::MacAddr;

use crate::error::{Error, Result};
use crate::macvlan::{MacvlanMode, MacvlanSpec};
use crate::netlink::Netlink;

/// An ARP answer: `ip` is at `mac`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    pub ip: Ipv4Addr,
    pub mac: MacAddr,
}

/// The ARP probe of RFC 5227: a request with sender address 0.0.0.0, so nobody's
/// cache learns anything from it.
fn probe_packet(mac: MacAddr, target: Ipv4Addr) -> [u8; 28] {
    let mut p = crate::announce::arp_announcement(mac, target);
    p[14..18].copy_from_slice(&[0; 4]);
    p
}

/// Asks, from a fresh MAC on `parent` (an interface index in the caller's namespace),
/// who has each of `targets`; returns every answer seen within `wait`.
pub fn arp_probe(parent: u32, targets: &[Ipv4Addr], wait: Duration) -> Result<Vec<Answer>> {
    let targets = targets.to_vec();
    std::thread::spawn(move || -> Result<Vec<Answer>> {
        // This socket stays in the caller's namespace, where the parent is.
        let mut outside = Netlink::new()?;
        unshare(CloneFlags::CLONE_NEWNET)?;
        let here = std::fs::File::open("/proc/thread-self/ns/net")?;
        let mut spec = MacvlanSpec::new("ulprobe0", parent, MacvlanMode::Bridge);
        spec.netns = Some(here.as_fd());
        outside.create_macvlan(&spec)?;
        let mut inside = Netlink::new()?;
        let link = inside.link("ulprobe0")?;
        inside.set_up(link.index, true)?;
        let mac = link.mac.ok_or_else(|| Error::new("probe link", "no MAC"))?;
        let answers = exchange(link.index, mac, &targets, wait)?;
        Ok(answers)
        // The namespace, and the macvlan in it, go with this thread.
    })
    .join()
    .unwrap_or_else(|p| std::panic::resume_unwind(p))
}

fn exchange(index: u32, mac: MacAddr, targets: &[Ipv4Addr], wait: Duration) -> Result<Vec<Answer>> {
    // Capture first, then ask: an answer may come back at once.
    let capture = std::thread::scope(|s| {
        let listener = s.spawn(|| crate::announce::capture_arp(index, wait));
        // Give the capture socket a moment to bind.
        std::thread::sleep(Duration::from_millis(30));
        let started = Instant::now();
        for round in 0..3 {
            for t in targets {
                let _ = crate::announce::send_arp(index, &probe_packet(mac, *t));
            }
            if round < 2 && started.elapsed() < wait / 2 {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        listener.join().unwrap_or_else(|p| std::panic::resume_unwind(p))
    })?;
    let mut out = Vec::new();
    for p in capture {
        // Replies only (op 2), from one of the targets.
        if p[6..8] != [0, 2] {
            continue;
        }
        let ip = Ipv4Addr::new(p[14], p[15], p[16], p[17]);
        let from = MacAddr(p[8..14].try_into().expect("6 bytes"));
        if targets.contains(&ip) && !out.contains(&Answer { ip, mac: from }) {
            out.push(Answer { ip, mac: from });
        }
    }
    Ok(out)
}
