//! Interface addresses, IPv4 and IPv6, with the IPv6 flags DAD depends on.

use ipnet::IpNet;
use netlink_packet_route::AddressFamily;
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage};
use rtnetlink::AddressMessageBuilder;

use crate::error::{Context, Result};
use crate::netlink::Netlink;

/// An address as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub index: u32,
    pub net: IpNet,
    pub flags: AddressFlags,
    pub scope: u8,
}

impl Address {
    /// IPv6 duplicate address detection is still running.
    pub fn is_tentative(&self) -> bool {
        self.flags.contains(AddressFlags::Tentative)
    }

    /// IPv6 duplicate address detection found another host using it.
    pub fn is_dadfailed(&self) -> bool {
        self.flags.contains(AddressFlags::Dadfailed)
    }

    pub fn is_nodad(&self) -> bool {
        self.flags.contains(AddressFlags::Nodad)
    }

    fn from_message(msg: &AddressMessage) -> Option<Address> {
        let mut flags = AddressFlags::from_bits_retain(u32::from(msg.header.flags.bits()));
        let mut local = None;
        let mut address = None;
        for attr in &msg.attributes {
            match attr {
                AddressAttribute::Local(a) => local = Some(*a),
                AddressAttribute::Address(a) => address = Some(*a),
                AddressAttribute::Flags(f) => flags |= *f,
                _ => {}
            }
        }
        // IFA_LOCAL is the interface's own address; IFA_ADDRESS is the peer on
        // point-to-point links, so prefer the local one.
        let ip = local.or(address)?;
        let net = IpNet::new(ip, msg.header.prefix_len).ok()?;
        Some(Address { index: msg.header.index, net, flags, scope: msg.header.scope.into() })
    }
}

/// How to add an address.
#[derive(Debug, Clone, Copy, Default)]
pub struct AddressOptions {
    /// Skip IPv6 duplicate address detection.
    pub nodad: bool,
    /// Do not add the prefix route for the subnet (used for /32-style host access).
    pub noprefixroute: bool,
}

fn message(index: u32, net: IpNet) -> AddressMessage {
    match net {
        IpNet::V4(n) => {
            AddressMessageBuilder::<std::net::Ipv4Addr>::new().index(index).address(n.addr(), n.prefix_len()).build()
        }
        IpNet::V6(n) => {
            AddressMessageBuilder::<std::net::Ipv6Addr>::new().index(index).address(n.addr(), n.prefix_len()).build()
        }
    }
}

impl Netlink {
    pub fn add_address(&mut self, index: u32, net: IpNet, opts: AddressOptions) -> Result<()> {
        use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
        let mut msg = message(index, net);
        let mut flags = AddressFlags::empty();
        if opts.nodad {
            msg.header.flags |= AddressHeaderFlags::Nodad;
            flags |= AddressFlags::Nodad;
        }
        if opts.noprefixroute {
            flags |= AddressFlags::Noprefixroute;
        }
        if !flags.is_empty() {
            msg.attributes.push(AddressAttribute::Flags(flags));
        }
        self.request(RouteNetlinkMessage::NewAddress(msg), NLM_F_CREATE | NLM_F_EXCL)
            .map(drop)
            .with_context(|| format!("add address {net} to link #{index}"))
    }

    pub fn del_address(&mut self, index: u32, net: IpNet) -> Result<()> {
        self.request(RouteNetlinkMessage::DelAddress(message(index, net)), 0)
            .map(drop)
            .with_context(|| format!("delete address {net} from link #{index}"))
    }

    /// Every address, or only those of link `index`.
    pub fn addresses(&mut self, index: Option<u32>) -> Result<Vec<Address>> {
        let mut req = AddressMessage::default();
        req.header.family = AddressFamily::Unspec;
        if let Some(i) = index {
            req.header.index = i;
        }
        let replies = self.dump(RouteNetlinkMessage::GetAddress(req)).context("list addresses")?;
        Ok(replies
            .iter()
            .filter_map(|r| match r {
                RouteNetlinkMessage::NewAddress(m) => Address::from_message(m),
                _ => None,
            })
            .filter(|a| index.is_none_or(|i| a.index == i))
            .collect())
    }
}
