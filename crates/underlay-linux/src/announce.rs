//! Telling the LAN about an address: a gratuitous ARP (RFC 5227 "ARP announcement")
//! for IPv4, an unsolicited neighbour advertisement (RFC 4861 §7.2.6) for IPv6. Switches
//! and neighbours then forget stale entries for the address (a restarted container with
//! a new MAC is reachable at once, not after the ARP cache times out). Sent from the
//! calling thread's network namespace.

use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddrV6};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockAddr, SockAddrStorage, Socket, Type};
use underlay::MacAddr;

const ETH_P_ARP: u16 = 0x0806;

/// An ARP packet socket (socket2 opens it close-on-exec).
pub(crate) fn arp_socket() -> io::Result<Socket> {
    Socket::new(Domain::PACKET, Type::DGRAM, Some(Protocol::from(i32::from(ETH_P_ARP.to_be()))))
}

/// The link-layer address of interface `index` for ARP, with `to` as the hardware
/// address when sending.
pub(crate) fn packet_addr(index: u32, to: Option<[u8; 6]>) -> SockAddr {
    let mut ll = libc::sockaddr_ll {
        sll_family: libc::AF_PACKET as u16,
        sll_protocol: ETH_P_ARP.to_be(),
        sll_ifindex: index as i32,
        sll_hatype: 0,
        sll_pkttype: 0,
        sll_halen: 0,
        sll_addr: [0; 8],
    };
    if let Some(mac) = to {
        ll.sll_halen = 6;
        ll.sll_addr[..6].copy_from_slice(&mac);
    }
    let mut storage = SockAddrStorage::zeroed();
    // SAFETY: neither socket2 nor nix builds an AF_PACKET address safely (nix's LinkAddr
    // too is made from raw storage only). The storage is a sockaddr_storage, larger than
    // and aligned for sockaddr_ll, and the length given is sockaddr_ll's, matching the
    // family set above.
    unsafe {
        *storage.view_as::<libc::sockaddr_ll>() = ll;
        SockAddr::new(storage, size_of::<libc::sockaddr_ll>() as libc::socklen_t)
    }
}

/// Announces `ip` as held by `mac` on interface `index`.
pub fn address(index: u32, mac: MacAddr, ip: IpAddr) -> io::Result<()> {
    match ip {
        IpAddr::V4(v4) => gratuitous_arp(index, mac, v4),
        IpAddr::V6(v6) => unsolicited_na(index, mac, v6),
    }
}

/// The ARP packet of an announcement: a request whose sender and target address are
/// both `ip`, so every host that caches `ip` updates it.
pub fn arp_announcement(mac: MacAddr, ip: Ipv4Addr) -> [u8; 28] {
    let mut p = [0u8; 28];
    p[0..2].copy_from_slice(&1u16.to_be_bytes()); // Ethernet
    p[2..4].copy_from_slice(&0x0800u16.to_be_bytes()); // IPv4
    p[4] = 6;
    p[5] = 4;
    p[6..8].copy_from_slice(&1u16.to_be_bytes()); // request
    p[8..14].copy_from_slice(&mac.0);
    p[14..18].copy_from_slice(&ip.octets());
    p[24..28].copy_from_slice(&ip.octets());
    p
}

fn gratuitous_arp(index: u32, mac: MacAddr, ip: Ipv4Addr) -> io::Result<()> {
    send_arp(index, &arp_announcement(mac, ip))
}

/// Broadcasts an ARP packet on interface `index` (in the calling thread's namespace).
pub fn send_arp(index: u32, packet: &[u8; 28]) -> io::Result<()> {
    arp_socket()?.send_to(packet, &packet_addr(index, Some([0xff; 6]))).map(drop)
}

/// The ICMPv6 body of an unsolicited neighbour advertisement for `ip` with the
/// override flag and the target link-layer address option. The kernel fills in the
/// checksum for raw ICMPv6 sockets.
pub fn neighbour_advertisement(mac: MacAddr, ip: Ipv6Addr) -> [u8; 32] {
    let mut p = [0u8; 32];
    p[0] = 136; // neighbour advertisement
    p[4] = 0x20; // override
    p[8..24].copy_from_slice(&ip.octets());
    p[24] = 2; // target link-layer address
    p[25] = 1; // length in units of 8 bytes
    p[26..32].copy_from_slice(&mac.0);
    p
}

fn unsolicited_na(index: u32, mac: MacAddr, ip: Ipv6Addr) -> io::Result<()> {
    let socket = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6))?;
    socket.set_multicast_hops_v6(255)?; // RFC 4861: neighbour discovery packets carry hop limit 255
    socket.set_multicast_if_v6(index)?;
    let scope = if ip.is_unicast_link_local() { index } else { 0 };
    socket.bind(&SocketAddrV6::new(ip, 0, 0, scope).into())?;
    let all_nodes = SocketAddrV6::new(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1), 0, 0, index);
    socket.send_to(&neighbour_advertisement(mac, ip), &all_nodes.into()).map(drop)
}

/// The ARP packets seen on interface `index` within `timeout` (for tests and probes).
/// Closing a packet socket costs an RCU grace period (~15 ms), so this is no hot path.
pub fn capture_arp(index: u32, timeout: Duration) -> io::Result<Vec<[u8; 28]>> {
    let socket = arp_socket()?;
    socket.bind(&packet_addr(index, None))?;
    let end = Instant::now() + timeout;
    let mut out = Vec::new();
    while let Some(left) = end.checked_duration_since(Instant::now()).filter(|d| !d.is_zero()) {
        // At least a microsecond: a zero timeout would mean "wait forever".
        socket.set_read_timeout(Some(left.max(Duration::from_micros(1))))?;
        let mut buf = [0u8; 64];
        match (&socket).read(&mut buf) {
            Ok(n) if n >= 28 => out.push(buf[..28].try_into().expect("28 bytes")),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// Announcements that continue after the plugin has answered: the plugin starts
/// itself again, detached, with the job in its environment, and returns at once. (A
/// runtime waits for the plugin; it should not wait for the spacing between
/// announcements, nor for a packet socket to close.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub netns: PathBuf,
    pub index: u32,
    pub mac: MacAddr,
    pub ips: Vec<IpAddr>,
    pub count: u32,
    pub interval: Duration,
}

const JOB_ENV: &str = "UNDERLAY_ANNOUNCE_JOB";

impl Job {
    fn encode(&self) -> String {
        let ips: Vec<String> = self.ips.iter().map(IpAddr::to_string).collect();
        format!(
            "{}\n{}\n{}\n{}\n{}\n{}",
            self.netns.display(),
            self.index,
            self.mac,
            self.count,
            self.interval.as_millis(),
            ips.join(",")
        )
    }

    fn decode(s: &str) -> Option<Job> {
        let mut l = s.split('\n');
        Some(Job {
            netns: PathBuf::from(l.next()?),
            index: l.next()?.parse().ok()?,
            mac: l.next()?.parse().ok()?,
            count: l.next()?.parse().ok()?,
            interval: Duration::from_millis(l.next()?.parse().ok()?),
            ips: l.next()?.split(',').filter(|s| !s.is_empty()).map(str::parse).collect::<Result<_, _>>().ok()?,
        })
    }

    /// The job this process was started for, if any (call first thing in `main`).
    pub fn from_env() -> Option<Job> {
        std::env::var(JOB_ENV).ok().and_then(|s| Job::decode(&s))
    }

    /// Starts this executable again, detached, to run the job.
    pub fn spawn_detached(&self) -> io::Result<()> {
        use std::os::unix::process::CommandExt;
        use std::process::{Command, Stdio};
        let mut cmd = Command::new("/proc/self/exe");
        cmd.env_clear()
            .env(JOB_ENV, self.encode())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0);
        cmd.spawn().map(drop)
    }

    /// Sends the announcements, `interval` apart. Each round enters the namespace on
    /// a thread of its own that ends with the round: between rounds the announcer holds
    /// no reference to the namespace, so a deleted pod's namespace is freed at once. A
    /// round that finds the namespace or the link gone (DEL) or the link no longer the
    /// one announced for (another MAC) ends the job.
    pub fn run(&self) -> io::Result<()> {
        for _ in 0..self.count {
            std::thread::sleep(self.interval);
            let job = self.clone();
            let more = std::thread::spawn(move || job.round())
                .join()
                .map_err(|_| io::Error::other("an announcement round panicked"))??;
            if !more {
                break;
            }
        }
        Ok(())
    }

    /// One round of announcements; `Ok(false)` when the link is no longer there.
    fn round(&self) -> io::Result<bool> {
        let ns = std::fs::File::open(&self.netns)?;
        nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).map_err(io::Error::from)?;
        drop(ns);
        let mut nl = crate::Netlink::new().map_err(|e| io::Error::other(e.to_string()))?;
        match nl.link_by_index(self.index) {
            Ok(Some(l)) if l.mac == Some(self.mac) => {}
            _ => return Ok(false),
        }
        for ip in &self.ips {
            address(self.index, self.mac, *ip)?;
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_have_the_rfc_layout() {
        let mac: MacAddr = "02:42:c0:a8:01:64".parse().unwrap();
        let arp = arp_announcement(mac, Ipv4Addr::new(192, 168, 1, 100));
        assert_eq!(&arp[..8], &[0, 1, 8, 0, 6, 4, 0, 1]);
        assert_eq!(&arp[14..18], &arp[24..28], "sender and target address are the same");
        assert_eq!(&arp[18..24], &[0; 6]);
        let na = neighbour_advertisement(mac, "2001:db8::64".parse().unwrap());
        assert_eq!(na[0], 136);
        assert_eq!(&na[26..], &mac.0);
    }

    #[test]
    fn jobs_survive_the_environment() {
        let job = Job {
            netns: "/run/netns/pod 1".into(),
            index: 7,
            mac: "02:00:00:00:00:01".parse().unwrap(),
            ips: vec!["10.0.0.5".parse().unwrap(), "2001:db8::5".parse().unwrap()],
            count: 2,
            interval: Duration::from_millis(250),
        };
        assert_eq!(Job::decode(&job.encode()), Some(job));
    }
}
