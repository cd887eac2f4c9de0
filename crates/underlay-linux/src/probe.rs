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
    from_new_link(parent, targets, move |index, mac, targets| exchange(index, mac, targets, wait))
}

/// Conflict detection (`conflicts`) for an address this host is about to take on
/// `parent` itself (a host-access shim), from a fresh MAC on it.
pub fn conflicts_from_parent(parent: u32, targets: &[Ipv4Addr], probing: &Probing) -> Result<Vec<Conflict>> {
    let probing = *probing;
    from_new_link(parent, targets, move |index, mac, targets| conflicts(index, mac, targets, &probing))
}

/// Runs `job` on a temporary macvlan of `parent` in a throwaway namespace.
fn from_new_link<T: Send + 'static>(
    parent: u32,
    targets: &[Ipv4Addr],
    job: impl FnOnce(u32, MacAddr, &[Ipv4Addr]) -> Result<T> + Send + 'static,
) -> Result<T> {
    let targets = targets.to_vec();
    std::thread::spawn(move || -> Result<T> {
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
        job(link.index, mac, &targets)
        // The namespace, and the macvlan in it, go with this thread.
    })
    .join()
    .unwrap_or_else(|p| std::panic::resume_unwind(p))
}

fn exchange(index: u32, mac: MacAddr, targets: &[Ipv4Addr], wait: Duration) -> Result<Vec<Answer>> {
    let probing = Probing { probes: 3, wait };
    let mut out: Vec<Answer> = Vec::new();
    for s in listen(index, mac, targets, &probing, |_| false)?.into_iter().filter(|s| s.reply) {
        let a = Answer { ip: s.ip, mac: s.mac };
        if !out.contains(&a) {
            out.push(a);
        }
    }
    Ok(out)
}

/// How an address is checked before use: `probes` ARP probes spread over `wait`, and
/// answers awaited until `wait` has passed since the first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probing {
    pub probes: u32,
    pub wait: Duration,
}

/// Another device claims `ip`: it answered a probe, probed for it too, or announced it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conflict {
    pub ip: Ipv4Addr,
    pub mac: MacAddr,
}

impl std::fmt::Display for Conflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (in use by MAC {})", self.ip, self.mac)
    }
}

/// RFC 5227 address conflict detection, from the calling thread's namespace: probes
/// for each of `targets` go out on link `index` (up, without these addresses) from
/// `own`, its MAC. Any ARP packet from another MAC whose sender address is a target
/// (an answer, an announcement), or a probe for a target from another MAC (someone
/// choosing the same address right now), is a conflict. Packets from `own` never are:
/// those are our own probes and, later, our own announcements. Returns as soon as
/// every target has a conflict, else after `wait`.
pub fn conflicts(index: u32, own: MacAddr, targets: &[Ipv4Addr], probing: &Probing) -> Result<Vec<Conflict>> {
    let mut found: Vec<Conflict> = Vec::new();
    listen(index, own, targets, probing, |s| {
        if !found.iter().any(|c| c.ip == s.ip) {
            found.push(Conflict { ip: s.ip, mac: s.mac });
        }
        targets.iter().all(|t| found.iter().any(|c| c.ip == *t))
    })?;
    Ok(found)
}

/// An ARP packet about a target, from a MAC other than ours.
#[derive(Debug, Clone, Copy)]
struct Seen {
    ip: Ipv4Addr,
    mac: MacAddr,
    /// An answer (ARP op 2), not a probe or an announcement.
    reply: bool,
}

/// What an ARP packet says about `targets`, if anything (RFC 5227 §2.1.1).
fn classify(p: &[u8; 28], own: MacAddr, targets: &[Ipv4Addr]) -> Option<Seen> {
    let mac = MacAddr(p[8..14].try_into().expect("6 bytes"));
    if mac == own || p[0..6] != [0, 1, 8, 0, 6, 4] {
        return None;
    }
    let sender = Ipv4Addr::new(p[14], p[15], p[16], p[17]);
    let target = Ipv4Addr::new(p[24], p[25], p[26], p[27]);
    let reply = p[6..8] == [0, 2];
    if targets.contains(&sender) {
        return Some(Seen { ip: sender, mac, reply });
    }
    let probe = p[6..8] == [0, 1] && sender.is_unspecified();
    (probe && targets.contains(&target)).then_some(Seen { ip: target, mac, reply: false })
}

/// Sends the probes and collects what `classify` keeps until `done` says enough or
/// the wait is over. The socket is bound before the first probe goes out, so even an
/// immediate answer is seen.
fn listen(
    index: u32,
    own: MacAddr,
    targets: &[Ipv4Addr],
    probing: &Probing,
    mut done: impl FnMut(&Seen) -> bool,
) -> Result<Vec<Seen>> {
    use std::io::Read;
    let what = || format!("ARP probe on interface {index}");
    let io = |e: std::io::Error| Error::new(what(), e.to_string());
    // Made without a protocol, the socket joins the receive path only when bound:
    // one made for ARP and then bound to a device would wait out an RCU grace period
    // (~15-20 ms) to leave the all-devices path first.
    let socket = socket2::Socket::new(socket2::Domain::PACKET, socket2::Type::DGRAM, None).map_err(io)?;
    socket.bind(&crate::announce::packet_addr(index, None)).map_err(io)?;
    let broadcast = crate::announce::packet_addr(index, Some([0xff; 6]));
    let probes = probing.probes.max(1);
    let gap = probing.wait / probes;
    let started = Instant::now();
    let end = started + probing.wait;
    let mut sent = 0;
    let mut out = Vec::new();
    loop {
        let now = Instant::now();
        if sent < probes && now >= started + gap * sent {
            // Sent from the listening socket: a socket per probe would cost a grace
            // period each when closed.
            for t in targets {
                socket.send_to(&probe_packet(own, *t), &broadcast).map_err(io)?;
            }
            sent += 1;
            continue;
        }
        let Some(left) = end.checked_duration_since(now).filter(|d| !d.is_zero()) else { break };
        let next = if sent < probes { (started + gap * sent).saturating_duration_since(now) } else { left };
        // At least a microsecond: a zero timeout would mean "wait forever".
        socket.set_read_timeout(Some(next.min(left).max(Duration::from_micros(1)))).map_err(io)?;
        let mut buf = [0u8; 64];
        match (&socket).read(&mut buf) {
            Ok(n) if n >= 28 => {
                let p: [u8; 28] = buf[..28].try_into().expect("28 bytes");
                if let Some(seen) = classify(&p, own, targets) {
                    out.push(seen);
                    if done(&seen) {
                        break;
                    }
                }
            }
            Ok(_) => {}
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted) => {}
            Err(e) => return Err(io(e)),
        }
    }
    release_elsewhere(socket);
    Ok(out)
}

/// Closing a packet socket waits out an RCU grace period (~20 ms), and so does a
/// process exiting with one open: a plugin's caller would wait for it. The last close
/// is left to a child (`/bin/true`, holding it as stdin) that nobody waits for, or
/// failing that to a thread of ours.
fn release_elsewhere(socket: socket2::Socket) {
    use std::process::{Command, Stdio};
    let fd = std::os::fd::OwnedFd::from(socket);
    let Ok(copy) = fd.try_clone() else {
        std::thread::spawn(move || drop(fd));
        return;
    };
    // By path: a plugin's environment need not have PATH.
    match Command::new("/bin/true").stdin(copy).stdout(Stdio::null()).stderr(Stdio::null()).spawn() {
        Ok(mut child) => {
            // Ours goes now, before `true` is done: its exit is then the last close.
            drop(fd);
            // Reaped off the caller's path (a long-lived caller would collect zombies).
            std::thread::spawn(move || child.wait());
        }
        Err(_) => drop(std::thread::spawn(move || drop(fd))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::announce::arp_announcement;

    const OWN: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
    const OTHER: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);

    fn ip(last: u8) -> Ipv4Addr {
        Ipv4Addr::new(192, 168, 1, last)
    }

    #[test]
    fn our_own_probes_and_announcements_never_count() {
        let t = [ip(100)];
        assert!(classify(&probe_packet(OWN, ip(100)), OWN, &t).is_none());
        assert!(classify(&arp_announcement(OWN, ip(100)), OWN, &t).is_none());
    }

    #[test]
    fn answers_announcements_and_rival_probes_do() {
        let t = [ip(100)];
        let mut reply = arp_announcement(OTHER, ip(100));
        reply[7] = 2;
        assert!(classify(&reply, OWN, &t).is_some_and(|s| s.reply && s.mac == OTHER));
        assert!(classify(&arp_announcement(OTHER, ip(100)), OWN, &t).is_some_and(|s| !s.reply));
        assert!(classify(&probe_packet(OTHER, ip(100)), OWN, &t).is_some_and(|s| s.ip == ip(100)));
        // Others' traffic about other addresses is not ours to judge.
        assert!(classify(&arp_announcement(OTHER, ip(7)), OWN, &t).is_none());
        assert!(classify(&probe_packet(OTHER, ip(7)), OWN, &t).is_none());
        // An ordinary request *for* the address from a host that has another one is no
        // claim on it.
        let mut ask = arp_announcement(OTHER, ip(9));
        ask[24..28].copy_from_slice(&ip(100).octets());
        assert!(classify(&ask, OWN, &t).is_none());
    }
}
