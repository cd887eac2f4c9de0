//! DHCPv4 messages through `dhcproto`: what the client sends and what it reads back.
//! `dhcproto` (wire format only) was chosen over `mozim`: mozim's client owns its own
//! event loop and socket handling, while this daemon needs a plain request/response it
//! can run inside any container's namespace and resume from a stored lease.

use std::net::Ipv4Addr;

use dhcproto::v4::{DhcpOption, Flags, Message, MessageType, OptionCode};
use dhcproto::{Decodable, Decoder, Encodable};
use ipnet::Ipv4Net;

use crate::lease::Lease;

/// Who is asking: the hardware address and the options every message carries.
#[derive(Debug, Clone)]
pub struct Identity {
    pub mac: [u8; 6],
    /// Option 61: stable per (container, interface), so a restarted container gets its
    /// address back and ipvlan endpoints sharing one MAC get a lease each.
    pub client_id: Vec<u8>,
    pub hostname: Option<String>,
    /// Extra options the config asks for (option codes).
    pub request: Vec<u8>,
}

/// The options asked for on every request.
const WANTED: [OptionCode; 10] = [
    OptionCode::SubnetMask,
    OptionCode::Router,
    OptionCode::DomainNameServer,
    OptionCode::DomainName,
    OptionCode::DomainSearch,
    OptionCode::ClasslessStaticRoute,
    OptionCode::InterfaceMtu,
    OptionCode::AddressLeaseTime,
    OptionCode::Renewal,
    OptionCode::Rebinding,
];

fn base(id: &Identity, xid: u32, kind: MessageType, ciaddr: Ipv4Addr) -> Message {
    let mut m =
        Message::new_with_id(xid, ciaddr, Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, &id.mac);
    // Broadcast replies: before the address is configured the kernel would drop a
    // unicast to it, and ipvlan endpoints cannot be told apart by MAC.
    if ciaddr.is_unspecified() {
        m.set_flags(Flags::default().set_broadcast());
    }
    let opts = m.opts_mut();
    opts.insert(DhcpOption::MessageType(kind));
    opts.insert(DhcpOption::ClientIdentifier(id.client_id.clone()));
    if kind != MessageType::Release {
        let mut wanted: Vec<OptionCode> = WANTED.to_vec();
        wanted.extend(id.request.iter().map(|c| OptionCode::from(*c)).filter(|c| !WANTED.contains(c)));
        opts.insert(DhcpOption::ParameterRequestList(wanted));
        if let Some(h) = &id.hostname {
            opts.insert(DhcpOption::Hostname(h.clone()));
        }
    }
    m
}

pub fn discover(id: &Identity, xid: u32, previous: Option<Ipv4Addr>) -> Vec<u8> {
    let mut m = base(id, xid, MessageType::Discover, Ipv4Addr::UNSPECIFIED);
    if let Some(ip) = previous {
        m.opts_mut().insert(DhcpOption::RequestedIpAddress(ip));
    }
    encode(&m)
}

/// REQUEST in SELECTING state: answers an OFFER from `server`.
pub fn select(id: &Identity, xid: u32, offered: Ipv4Addr, server: Ipv4Addr) -> Vec<u8> {
    let mut m = base(id, xid, MessageType::Request, Ipv4Addr::UNSPECIFIED);
    m.opts_mut().insert(DhcpOption::RequestedIpAddress(offered));
    m.opts_mut().insert(DhcpOption::ServerIdentifier(server));
    encode(&m)
}

/// REQUEST in RENEWING or REBINDING state: `ciaddr` set, no server identifier.
pub fn renew(id: &Identity, xid: u32, ciaddr: Ipv4Addr) -> Vec<u8> {
    encode(&base(id, xid, MessageType::Request, ciaddr))
}

pub fn release(id: &Identity, xid: u32, lease: &Lease) -> Vec<u8> {
    let mut m = base(id, xid, MessageType::Release, lease.address.addr());
    m.opts_mut().insert(DhcpOption::ServerIdentifier(lease.server));
    encode(&m)
}

fn encode(m: &Message) -> Vec<u8> {
    m.to_vec().expect("a message built here always encodes")
}

/// A server's answer to transaction `xid`, or None for anything else on the wire.
pub struct Reply {
    pub kind: MessageType,
    pub msg: Message,
}

pub fn parse(buf: &[u8], xid: u32, mac: &[u8; 6]) -> Option<Reply> {
    let msg = Message::decode(&mut Decoder::new(buf)).ok()?;
    // dhcproto's chaddr() slices by the packet's hlen and panics above 16: a LAN
    // neighbour could stop the daemon with one reply (found by fuzz/dhcp_wire).
    if msg.xid() != xid || !(6..=16).contains(&msg.hlen()) || msg.chaddr().get(..6) != Some(&mac[..]) {
        return None;
    }
    let kind = msg.opts().msg_type()?;
    Some(Reply { kind, msg })
}

/// The lease an OFFER or ACK describes; None when it lacks what a lease needs.
pub fn lease_of(msg: &Message, acquired: u64) -> Option<Lease> {
    let opts = msg.opts();
    let server = match opts.get(OptionCode::ServerIdentifier) {
        Some(DhcpOption::ServerIdentifier(s)) => *s,
        _ => msg.siaddr(),
    };
    let addr = msg.yiaddr();
    if addr.is_unspecified() {
        return None;
    }
    let prefix = match opts.get(OptionCode::SubnetMask) {
        Some(DhcpOption::SubnetMask(m)) => u32::from(*m).leading_ones() as u8,
        _ => 24,
    };
    let lease_secs = match opts.get(OptionCode::AddressLeaseTime) {
        Some(DhcpOption::AddressLeaseTime(t)) => *t,
        _ => return None,
    };
    let t1_secs = match opts.get(OptionCode::Renewal) {
        Some(DhcpOption::Renewal(t)) if *t < lease_secs => *t,
        _ => lease_secs / 2,
    };
    let t2_secs = match opts.get(OptionCode::Rebinding) {
        Some(DhcpOption::Rebinding(t)) if *t < lease_secs && *t >= t1_secs => *t,
        _ => (u64::from(lease_secs) * 7 / 8) as u32,
    };
    let router = match opts.get(OptionCode::Router) {
        Some(DhcpOption::Router(r)) => r.first().copied(),
        _ => None,
    };
    let routes = match opts.get(OptionCode::ClasslessStaticRoute) {
        Some(DhcpOption::ClasslessStaticRoute(r)) => r.clone(),
        _ => Vec::new(),
    };
    let dns = match opts.get(OptionCode::DomainNameServer) {
        Some(DhcpOption::DomainNameServer(d)) => d.clone(),
        _ => Vec::new(),
    };
    let domain = match opts.get(OptionCode::DomainName) {
        Some(DhcpOption::DomainName(d)) => Some(d.trim_end_matches('.').to_string()),
        _ => None,
    };
    let search = match opts.get(OptionCode::DomainSearch) {
        Some(DhcpOption::DomainSearch(names)) => {
            names.iter().map(|n| n.to_string().trim_end_matches('.').to_string()).collect()
        }
        _ => Vec::new(),
    };
    let mtu = match opts.get(OptionCode::InterfaceMtu) {
        Some(DhcpOption::InterfaceMtu(m)) => Some(*m),
        _ => None,
    };
    Some(Lease {
        address: Ipv4Net::new(addr, prefix.min(32)).ok()?,
        server,
        router,
        routes,
        dns,
        domain,
        search,
        mtu,
        lease_secs,
        t1_secs,
        t2_secs,
        acquired,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> Identity {
        Identity {
            mac: [2, 0, 0, 0, 0, 1],
            client_id: b"\0c1/eth0".to_vec(),
            hostname: Some("web".into()),
            request: vec![],
        }
    }

    #[test]
    fn discover_carries_client_id_hostname_and_broadcast_flag() {
        let buf = discover(&id(), 7, Some("192.168.1.5".parse().unwrap()));
        let m = Message::decode(&mut Decoder::new(&buf)).unwrap();
        assert!(m.flags().broadcast());
        assert_eq!(
            m.opts().get(OptionCode::ClientIdentifier),
            Some(&DhcpOption::ClientIdentifier(b"\0c1/eth0".to_vec()))
        );
        assert_eq!(m.opts().get(OptionCode::Hostname), Some(&DhcpOption::Hostname("web".into())));
        assert_eq!(m.opts().msg_type(), Some(MessageType::Discover));
    }

    #[test]
    fn ack_becomes_a_lease_with_defaults_for_t1_t2() {
        let mut m = Message::new_with_id(
            9,
            Ipv4Addr::UNSPECIFIED,
            "10.0.0.7".parse().unwrap(),
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
            &id().mac,
        );
        m.opts_mut().insert(DhcpOption::MessageType(MessageType::Ack));
        m.opts_mut().insert(DhcpOption::SubnetMask("255.255.0.0".parse().unwrap()));
        m.opts_mut().insert(DhcpOption::AddressLeaseTime(120));
        m.opts_mut().insert(DhcpOption::ServerIdentifier("10.0.0.1".parse().unwrap()));
        let buf = m.to_vec().unwrap();
        let reply = parse(&buf, 9, &id().mac).unwrap();
        assert!(parse(&buf, 10, &id().mac).is_none(), "another transaction's reply is ignored");
        let l = lease_of(&reply.msg, 5).unwrap();
        assert_eq!(l.address.to_string(), "10.0.0.7/16");
        assert_eq!((l.t1_secs, l.t2_secs), (60, 105));
    }
}
