//! Reachability probes from inside a namespace, over TCP: a refused connection proves
//! the peer answered just as well as an accepted one, so no listener is needed.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use crate::error::{Context, Result};
use crate::netns::Netns;

/// Whether a TCP handshake to `ip:port` from `from` got an answer (accept or refuse)
/// within `timeout`.
pub fn tcp_reachable(from: &Netns, ip: IpAddr, port: u16, timeout: Duration) -> Result<bool> {
    from.run(|| match TcpStream::connect_timeout(&SocketAddr::new(ip, port), timeout) {
        Ok(_) => true,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionRefused,
    })
}

/// A one-shot echo server listening in `netns`; returns the port.
pub fn echo_server(netns: &Netns, ip: IpAddr) -> Result<(u16, std::thread::JoinHandle<()>)> {
    let listener = netns.run(|| TcpListener::bind(SocketAddr::new(ip, 0)))?.context("listen")?;
    let port = listener.local_addr().context("read listening port")?.port();
    let handle = std::thread::spawn(move || {
        if let Ok((mut s, _)) = listener.accept() {
            let mut buf = [0u8; 1024];
            if let Ok(n) = s.read(&mut buf) {
                let _ = s.write_all(&buf[..n]);
            }
        }
    });
    Ok((port, handle))
}

/// Connects from `from` to `ip:port`, sends `msg` and returns what came back.
pub fn echo(from: &Netns, ip: IpAddr, port: u16, msg: &[u8], timeout: Duration) -> Result<Vec<u8>> {
    from.run(|| -> std::io::Result<Vec<u8>> {
        let mut s = TcpStream::connect_timeout(&SocketAddr::new(ip, port), timeout)?;
        s.set_read_timeout(Some(timeout))?;
        s.write_all(msg)?;
        let mut out = vec![0u8; msg.len()];
        s.read_exact(&mut out)?;
        Ok(out)
    })?
    .with_context(|| format!("echo via {ip}:{port}"))
}

/// An ICMP (v4) or ICMPv6 echo from inside `from` to `ip`: whether a reply came within
/// `timeout`. Needs a raw socket (root).
pub fn ping(from: &Netns, ip: IpAddr, timeout: Duration) -> Result<bool> {
    from.run(|| ping_here(ip, timeout))?.with_context(|| format!("ping {ip}"))
}

fn ping_here(ip: IpAddr, timeout: Duration) -> std::io::Result<bool> {
    use socket2::{Domain, Protocol, SockAddr, Socket, Type};
    let (domain, proto, kind) = match ip {
        IpAddr::V4(_) => (Domain::IPV4, Protocol::ICMPV4, 8u8),
        IpAddr::V6(_) => (Domain::IPV6, Protocol::ICMPV6, 128u8),
    };
    let sock = Socket::new(domain, Type::RAW, Some(proto))?;
    let id = (std::process::id() & 0xffff) as u16;
    let mut packet = vec![kind, 0, 0, 0, (id >> 8) as u8, id as u8, 0, 1];
    packet.extend_from_slice(b"underlay");
    if ip.is_ipv4() {
        let sum = checksum(&packet);
        packet[2..4].copy_from_slice(&sum.to_be_bytes());
    }
    // (The kernel fills in the ICMPv6 checksum.)
    sock.send_to(&packet, &SockAddr::from(SocketAddr::new(ip, 0)))?;
    let deadline = std::time::Instant::now() + timeout;
    let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 1500];
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()).filter(|d| !d.is_zero()) {
        sock.set_read_timeout(Some(left))?;
        let (n, from) = match sock.recv_from(&mut buf) {
            Ok(r) => r,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => break,
            Err(e) => return Err(e),
        };
        // SAFETY: socket2's recv_from (the one that also gives the sender) fills only
        // uninitialised memory, so there is no safe form; it initialised the first n bytes.
        let data: Vec<u8> = buf[..n].iter().map(|b| unsafe { b.assume_init() }).collect();
        // IPv4 raw sockets hand over the IP header too.
        let icmp =
            if ip.is_ipv4() { data.get(usize::from(data[0] & 0x0f) * 4..).unwrap_or_default() } else { &data[..] };
        let reply = if ip.is_ipv4() { 0 } else { 129 };
        let same_id = icmp.len() >= 8 && u16::from_be_bytes([icmp[4], icmp[5]]) == id;
        if from.as_socket().map(|a| a.ip()) == Some(ip) && icmp.first() == Some(&reply) && same_id {
            return Ok(true);
        }
    }
    Ok(false)
}

fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data.chunks(2).map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))).sum();
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Whether the calling thread's namespace can reach `ip` now: a TCP handshake answered
/// (accepted or refused), or, for hosts that drop TCP, a resolved neighbour entry for
/// it on the interface the route to it uses now (an entry on another interface only
/// says how it was reached before).
pub fn reachable_here(ip: IpAddr, timeout: Duration) -> Result<bool> {
    match TcpStream::connect_timeout(&SocketAddr::new(ip, 1), timeout) {
        Ok(_) => return Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => return Ok(true),
        Err(_) => {}
    }
    let mut nl = crate::netlink::Netlink::new()?;
    let Some(oif) = nl.route_to(ip)?.and_then(|r| r.oif) else { return Ok(false) };
    let next = nl.route_to(ip)?.and_then(|r| r.gw).unwrap_or(ip);
    Ok(nl.neighbours(Some(oif))?.iter().any(|n| n.ip == next && n.is_resolved()))
}
