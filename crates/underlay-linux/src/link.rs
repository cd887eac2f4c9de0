//! Links: look up, read back (kind, mode, parent, MTU, MAC, state) and change (up/down,
//! MTU, MAC, namespace, name, bridge port settings, delete).

use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::link::{
    InfoBridgePort, InfoData, InfoPortData, InfoPortKind, LinkAttribute, LinkFlags, LinkInfo, LinkMessage, State,
};
use rtnetlink::{LinkMessageBuilder, LinkUnspec};
use underlay::MacAddr;

use crate::error::{Context, Result};
use crate::macvlan::{MacvlanInfo, MacvlanMode};
use crate::netlink::Netlink;

/// What the kernel says about a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// `macvlan`, `veth`, `bridge`, ...; `None` for physical devices and loopback.
    pub kind: Option<String>,
    pub mtu: u32,
    pub mac: Option<MacAddr>,
    /// Administratively up (`IFF_UP`).
    pub up: bool,
    /// The driver reports a carrier (`IFF_LOWER_UP`).
    pub lower_up: bool,
    pub oper_up: bool,
    pub promisc: bool,
    /// Index of the parent (macvlan, VLAN) or of the veth peer, as `IFLA_LINK` says.
    /// When `link_netnsid` is set, the index belongs to another namespace.
    pub parent: Option<u32>,
    pub link_netnsid: Option<i32>,
    /// The bridge (or other controller) this link is a port of.
    pub controller: Option<u32>,
    pub macvlan: Option<MacvlanInfo>,
    pub ipvlan: Option<crate::ipvlan::IpvlanInfo>,
    /// The VLAN ID of an 802.1Q sub-interface.
    pub vlan_id: Option<u16>,
    /// `IFLA_IFALIAS`: free text; the plugins mark the links they made with it.
    pub alias: Option<String>,
}

impl Link {
    fn from_message(msg: &LinkMessage) -> Link {
        let flags = msg.header.flags;
        let mut link = Link {
            index: msg.header.index,
            name: String::new(),
            kind: None,
            mtu: 0,
            mac: None,
            up: flags.contains(LinkFlags::Up),
            lower_up: flags.contains(LinkFlags::LowerUp),
            oper_up: false,
            promisc: flags.contains(LinkFlags::Promisc),
            parent: None,
            link_netnsid: None,
            controller: None,
            macvlan: None,
            ipvlan: None,
            vlan_id: None,
            alias: None,
        };
        for attr in &msg.attributes {
            match attr {
                LinkAttribute::IfName(n) => link.name.clone_from(n),
                LinkAttribute::Mtu(m) => link.mtu = *m,
                LinkAttribute::Address(a) => link.mac = <[u8; 6]>::try_from(a.as_slice()).ok().map(MacAddr),
                LinkAttribute::Link(p) => link.parent = Some(*p),
                LinkAttribute::LinkNetNsId(id) => link.link_netnsid = Some(*id),
                LinkAttribute::Controller(c) => link.controller = Some(*c),
                LinkAttribute::OperState(s) => link.oper_up = *s == State::Up,
                LinkAttribute::LinkInfo(infos) => link.read_info(infos),
                LinkAttribute::IfAlias(a) if !a.is_empty() => link.alias = Some(a.clone()),
                _ => {}
            }
        }
        link
    }

    fn read_info(&mut self, infos: &[LinkInfo]) {
        for info in infos {
            match info {
                LinkInfo::Kind(k) => self.kind = Some(k.to_string()),
                LinkInfo::Data(InfoData::MacVlan(data)) => self.macvlan = Some(MacvlanInfo::from_attrs(data)),
                LinkInfo::Data(InfoData::IpVlan(data)) => {
                    self.ipvlan = Some(crate::ipvlan::IpvlanInfo::from_attrs(data))
                }
                LinkInfo::Data(InfoData::Vlan(data)) => self.vlan_id = crate::ipvlan::vlan_id(data),
                _ => {}
            }
        }
    }

    pub fn is_macvlan(&self) -> bool {
        self.kind.as_deref() == Some("macvlan")
    }

    pub fn macvlan_mode(&self) -> Option<MacvlanMode> {
        self.macvlan.as_ref().map(|m| m.mode)
    }
}

impl Netlink {
    /// The link called `name`, or `None` if there is none.
    pub fn link_by_name(&mut self, name: &str) -> Result<Option<Link>> {
        let msg = LinkUnspec::new_with_name(name).build();
        self.get_link(msg).with_context(|| format!("look up link {name}"))
    }

    pub fn link_by_index(&mut self, index: u32) -> Result<Option<Link>> {
        let msg = LinkUnspec::new_with_index(index).build();
        self.get_link(msg).with_context(|| format!("look up link #{index}"))
    }

    /// Like `link_by_name`, but a missing link is an error naming it.
    pub fn link(&mut self, name: &str) -> Result<Link> {
        self.link_by_name(name)?.ok_or_else(|| {
            crate::Error::errno(crate::error::Errno::ENODEV, None).context(format!("link {name} not found"))
        })
    }

    fn get_link(&mut self, mut msg: LinkMessage) -> Result<Option<Link>> {
        // Counters are not read here; without them the reply is a third of the size.
        msg.attributes.push(LinkAttribute::ExtMask(vec![netlink_packet_route::link::LinkExtentMask::SkipStats]));
        match self.request(RouteNetlinkMessage::GetLink(msg), 0) {
            Ok(replies) => Ok(replies.iter().find_map(|r| match r {
                RouteNetlinkMessage::NewLink(m) => Some(Link::from_message(m)),
                _ => None,
            })),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub fn links(&mut self) -> Result<Vec<Link>> {
        let mut req = LinkMessage::default();
        req.attributes.push(LinkAttribute::ExtMask(vec![netlink_packet_route::link::LinkExtentMask::SkipStats]));
        let replies = self.dump(RouteNetlinkMessage::GetLink(req)).context("list links")?;
        Ok(replies
            .iter()
            .filter_map(|r| match r {
                RouteNetlinkMessage::NewLink(m) => Some(Link::from_message(m)),
                _ => None,
            })
            .collect())
    }

    /// Sends a link creation message built by one of the kind-specific builders.
    pub(crate) fn new_link(&mut self, msg: LinkMessage) -> Result<()> {
        use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
        self.request(RouteNetlinkMessage::NewLink(msg), NLM_F_CREATE | NLM_F_EXCL).map(drop)
    }

    fn set_link(&mut self, msg: LinkMessage) -> Result<()> {
        self.request(RouteNetlinkMessage::SetLink(msg), 0).map(drop)
    }

    /// Creates the dummy link `name` (a parent for a network with no LAN, as Docker's
    /// macvlan makes for `--internal` networks without a parent).
    pub fn create_dummy(&mut self, name: &str) -> Result<()> {
        self.new_link(rtnetlink::LinkDummy::new(name).build()).with_context(|| format!("create dummy link {name}"))
    }

    pub fn delete_link(&mut self, index: u32) -> Result<()> {
        let msg = LinkUnspec::new_with_index(index).build();
        self.request(RouteNetlinkMessage::DelLink(msg), 0).map(drop).with_context(|| format!("delete link #{index}"))
    }

    /// Deletes the link called `name`; `Ok(false)` if there was none.
    pub fn delete_link_by_name(&mut self, name: &str) -> Result<bool> {
        match self.link_by_name(name)? {
            None => Ok(false),
            Some(l) => match self.delete_link(l.index) {
                Ok(()) => Ok(true),
                Err(e) if e.is_not_found() => Ok(false),
                Err(e) => Err(e.context(format!("delete link {name}"))),
            },
        }
    }

    pub fn set_up(&mut self, index: u32, up: bool) -> Result<()> {
        let b = LinkUnspec::new_with_index(index);
        let msg = if up { b.up() } else { b.down() }.build();
        self.set_link(msg).with_context(|| format!("set link #{index} {}", if up { "up" } else { "down" }))
    }

    pub fn set_mtu(&mut self, index: u32, mtu: u32) -> Result<()> {
        self.set_link(LinkUnspec::new_with_index(index).mtu(mtu).build())
            .with_context(|| format!("set MTU {mtu} on link #{index}"))
    }

    pub fn set_mac(&mut self, index: u32, mac: MacAddr) -> Result<()> {
        self.set_link(LinkUnspec::new_with_index(index).address(mac.0.to_vec()).build())
            .with_context(|| format!("set MAC {mac} on link #{index}"))
    }

    /// Sets the link's alias (at most 255 bytes; the kernel refuses more).
    pub fn set_alias(&mut self, index: u32, alias: &str) -> Result<()> {
        let msg =
            LinkUnspec::new_with_index(index).append_extra_attribute(LinkAttribute::IfAlias(alias.into())).build();
        self.set_link(msg).with_context(|| format!("set alias {alias:?} on link #{index}"))
    }

    pub fn rename(&mut self, index: u32, name: &str) -> Result<()> {
        self.set_link(LinkUnspec::new_with_index(index).name(name).build())
            .with_context(|| format!("rename link #{index} to {name}"))
    }

    /// Moves the link into the namespace behind `netns_fd`.
    pub fn move_to_netns(&mut self, index: u32, netns: std::os::fd::BorrowedFd<'_>) -> Result<()> {
        use std::os::fd::AsRawFd;
        self.set_link(LinkUnspec::new_with_index(index).setns_by_fd(netns.as_raw_fd()).build())
            .with_context(|| format!("move link #{index} to another namespace"))
    }

    /// Makes the link a port of `controller` (a bridge), or of none.
    pub fn set_controller(&mut self, index: u32, controller: Option<u32>) -> Result<()> {
        let b = LinkUnspec::new_with_index(index);
        let msg = match controller {
            Some(c) => b.controller(c),
            None => b.nocontroller(),
        }
        .build();
        self.set_link(msg).with_context(|| format!("set controller of link #{index}"))
    }

    /// Settings of a bridge port, e.g. hairpin (reflect frames back out the port they
    /// came in on, which is what a VEPA-capable switch does).
    pub fn set_bridge_port(&mut self, index: u32, settings: Vec<InfoBridgePort>) -> Result<()> {
        let msg = LinkMessageBuilder::<LinkUnspec>::default()
            .index(index)
            .set_port_kind(InfoPortKind::Bridge)
            .set_port_data(InfoPortData::BridgePort(settings))
            .build();
        self.request(RouteNetlinkMessage::NewLink(msg), 0)
            .map(drop)
            .with_context(|| format!("set bridge port options on link #{index}"))
    }
}
