//! Veth pairs and bridges: the cables and the switch of test worlds and of the lab.

use std::os::fd::{AsRawFd, BorrowedFd};

use rtnetlink::{LinkBridge, LinkMessageBuilder, LinkUnspec, LinkVeth};

use crate::error::{Context, Result};
use crate::netlink::Netlink;

impl Netlink {
    /// Creates a veth pair `name` <-> `peer`; the peer goes straight into `peer_netns`
    /// when given.
    pub fn create_veth(&mut self, name: &str, peer: &str, peer_netns: Option<BorrowedFd<'_>>) -> Result<()> {
        let mut peer_msg = LinkMessageBuilder::<LinkUnspec>::new().name(peer);
        if let Some(ns) = peer_netns {
            peer_msg = peer_msg.setns_by_fd(ns.as_raw_fd());
        }
        let msg = LinkVeth::new(name, peer)
            .set_info_data(netlink_packet_route::link::InfoData::Veth(netlink_packet_route::link::InfoVeth::Peer(
                peer_msg.build(),
            )))
            .build();
        self.new_link(msg).with_context(|| format!("create veth {name} <-> {peer}"))
    }

    pub fn create_bridge(&mut self, name: &str) -> Result<()> {
        self.new_link(LinkBridge::new(name).build()).with_context(|| format!("create bridge {name}"))
    }
}
