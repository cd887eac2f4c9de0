//! The client side of one attachment: a UDP socket on port 68 that lives in the
//! container's namespace, bound to its interface, and the exchanges run over it
//! (DISCOVER/OFFER/REQUEST/ACK, renew, rebind, release).

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

use dhcproto::v4::MessageType;
use socket2::{Domain, Protocol, Socket, Type};
use underlay_linux::Netns;

use crate::lease::{Lease, now};
use crate::wire::{self, Identity};

const SERVER_PORT: u16 = 67;
const CLIENT_PORT: u16 = 68;

/// How an exchange ended.
#[derive(Debug)]
pub enum Answer {
    Ack(Lease),
    Nak,
    Silence,
}

/// Opens the client socket inside `netns`. The socket keeps that namespace, so the
/// daemon can use it from any thread.
pub fn open(netns: &Netns, ifname: &str) -> io::Result<UdpSocket> {
    let made = netns.run(|| -> io::Result<UdpSocket> {
        let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
        // Several attachments may share one namespace; each socket is pinned to its device.
        s.set_reuse_address(true)?;
        s.set_broadcast(true)?;
        s.bind_device(Some(ifname.as_bytes()))?;
        s.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, CLIENT_PORT)).into())?;
        Ok(s.into())
    });
    made.map_err(|e| io::Error::other(e.to_string()))?
}

fn xid() -> u32 {
    let mut b = [0u8; 4];
    // A clock-based id is a fine fallback: xids only tell our own transactions apart.
    if getrandom::fill(&mut b).is_err() {
        return std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(1);
    }
    u32::from_ne_bytes(b)
}

/// Sends `msg` to `to` and waits for a reply of transaction `xid`, retransmitting with
/// a doubling interval (1 s, 2 s, 4 s) until `deadline`.
fn exchange(
    sock: &UdpSocket,
    id: &Identity,
    xid: u32,
    msg: &[u8],
    to: Ipv4Addr,
    deadline: Instant,
) -> io::Result<Option<wire::Reply>> {
    let dest = SocketAddrV4::new(to, SERVER_PORT);
    let mut interval = Duration::from_secs(1);
    let mut buf = vec![0u8; 1500];
    loop {
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        sock.send_to(msg, dest)?;
        let resend = (now + interval).min(deadline);
        interval = (interval * 2).min(Duration::from_secs(4));
        loop {
            let left = resend.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            sock.set_read_timeout(Some(left))?;
            match sock.recv_from(&mut buf) {
                Ok((n, _)) => {
                    if let Some(r) = wire::parse(&buf[..n], xid, &id.mac) {
                        return Ok(Some(r));
                    }
                }
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// DISCOVER, OFFER, REQUEST, ACK, all before `deadline`. `previous` is asked for first.
pub fn acquire(sock: &UdpSocket, id: &Identity, previous: Option<Ipv4Addr>, deadline: Instant) -> io::Result<Answer> {
    let x = xid();
    let Some(offer) = exchange(sock, id, x, &wire::discover(id, x, previous), Ipv4Addr::BROADCAST, deadline)? else {
        return Ok(Answer::Silence);
    };
    if offer.kind != MessageType::Offer {
        return Ok(Answer::Silence);
    }
    let Some(offered) = wire::lease_of(&offer.msg, now()) else {
        return Ok(Answer::Silence);
    };
    let x = xid();
    let req = wire::select(id, x, offered.address.addr(), offered.server);
    Ok(answer(exchange(sock, id, x, &req, Ipv4Addr::BROADCAST, deadline)?))
}

/// REQUEST with `ciaddr`: unicast to the server while renewing, broadcast when
/// rebinding (or when the unicast cannot leave, e.g. the address was removed).
pub fn extend(
    sock: &UdpSocket,
    id: &Identity,
    lease: &Lease,
    rebinding: bool,
    deadline: Instant,
) -> io::Result<Answer> {
    let x = xid();
    let req = wire::renew(id, x, lease.address.addr());
    if !rebinding {
        match exchange(sock, id, x, &req, lease.server, deadline) {
            Ok(r) => return Ok(answer(r)),
            Err(e)
                if e.raw_os_error()
                    .is_some_and(|c| c == libc::ENETUNREACH || c == libc::EINVAL || c == libc::EADDRNOTAVAIL) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(answer(exchange(sock, id, x, &req, Ipv4Addr::BROADCAST, deadline)?))
}

fn answer(reply: Option<wire::Reply>) -> Answer {
    match reply {
        Some(r) if r.kind == MessageType::Ack => wire::lease_of(&r.msg, now()).map_or(Answer::Silence, Answer::Ack),
        Some(r) if r.kind == MessageType::Nak => Answer::Nak,
        _ => Answer::Silence,
    }
}

/// DHCPRELEASE: one message, no answer expected. Unicast from the leased address when
/// the interface still has it; otherwise (a chain that never configured it, an address
/// removed by hand) broadcast, since a unicast from 0.0.0.0 may never reach the server.
pub fn release(sock: &UdpSocket, id: &Identity, lease: &Lease, has_address: bool) -> io::Result<()> {
    let msg = wire::release(id, xid(), lease);
    let to = if has_address { lease.server } else { Ipv4Addr::BROADCAST };
    match sock.send_to(&msg, SocketAddrV4::new(to, SERVER_PORT)) {
        Ok(_) => Ok(()),
        Err(_) => sock.send_to(&msg, SocketAddrV4::new(Ipv4Addr::BROADCAST, SERVER_PORT)).map(drop),
    }
}
