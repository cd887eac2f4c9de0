//! Macvlan links: every mode the kernel has, including `source` with its MAC allow-list.

use std::os::fd::{AsRawFd, BorrowedFd};

use netlink_packet_route::link::{InfoMacVlan, MacVlanMacAddressMode, MacVlanMode};
use rtnetlink::LinkMacVlan;
use underlay::MacAddr;

use crate::error::{Context, Result};
use crate::netlink::Netlink;
use crate::spelling::spelled;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MacvlanMode {
    /// Children talk to each other directly; the parent stays apart.
    Bridge,
    /// Children cannot talk to each other at all.
    Private,
    /// Child-to-child traffic goes out to the switch (which must hairpin it back).
    Vepa,
    /// One child takes over the parent.
    Passthru,
    /// Only frames from listed source MACs reach the child.
    Source,
}

spelled!(MacvlanMode, "macvlan mode", {
    Bridge => "bridge",
    Private => "private",
    Vepa => "vepa",
    Passthru => "passthru",
    Source => "source",
});

impl MacvlanMode {
    fn to_kernel(self) -> MacVlanMode {
        match self {
            MacvlanMode::Bridge => MacVlanMode::Bridge,
            MacvlanMode::Private => MacVlanMode::Private,
            MacvlanMode::Vepa => MacVlanMode::Vepa,
            MacvlanMode::Passthru => MacVlanMode::Passthrough,
            MacvlanMode::Source => MacVlanMode::Source,
        }
    }

    fn from_kernel(m: MacVlanMode) -> Option<MacvlanMode> {
        Some(match m {
            MacVlanMode::Bridge => MacvlanMode::Bridge,
            MacVlanMode::Private => MacvlanMode::Private,
            MacVlanMode::Vepa => MacvlanMode::Vepa,
            MacVlanMode::Passthrough => MacvlanMode::Passthru,
            MacVlanMode::Source => MacvlanMode::Source,
            _ => return None,
        })
    }
}

/// A macvlan's settings as read back from the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MacvlanInfo {
    pub mode: MacvlanMode,
    /// The allow-list of `source` mode.
    pub sources: Vec<MacAddr>,
    pub bc_queue_len: Option<u32>,
}

impl MacvlanInfo {
    pub(crate) fn from_attrs(attrs: &[InfoMacVlan]) -> MacvlanInfo {
        let mut info = MacvlanInfo { mode: MacvlanMode::Bridge, sources: Vec::new(), bc_queue_len: None };
        for a in attrs {
            match a {
                InfoMacVlan::Mode(m) => info.mode = MacvlanMode::from_kernel(*m).unwrap_or(MacvlanMode::Bridge),
                InfoMacVlan::MacAddrData(list) => {
                    info.sources = list
                        .iter()
                        .filter_map(|e| match e {
                            InfoMacVlan::MacAddr(m) => Some(MacAddr(*m)),
                            _ => None,
                        })
                        .collect();
                    // The kernel keeps them in a hash table; sort for stable comparisons.
                    info.sources.sort();
                }
                InfoMacVlan::BcQueueLen(n) => info.bc_queue_len = Some(*n),
                _ => {}
            }
        }
        info
    }
}

/// Everything needed to create a macvlan.
#[derive(Debug, Clone)]
pub struct MacvlanSpec<'a> {
    pub name: &'a str,
    pub parent: u32,
    pub mode: MacvlanMode,
    /// 0 inherits the parent's.
    pub mtu: u32,
    pub mac: Option<MacAddr>,
    /// `source` mode's allowed senders.
    pub sources: &'a [MacAddr],
    pub bc_queue_len: Option<u32>,
    /// Create it directly in this namespace (the parent stays where it is).
    pub netns: Option<BorrowedFd<'a>>,
}

impl<'a> MacvlanSpec<'a> {
    pub fn new(name: &'a str, parent: u32, mode: MacvlanMode) -> MacvlanSpec<'a> {
        MacvlanSpec { name, parent, mode, mtu: 0, mac: None, sources: &[], bc_queue_len: None, netns: None }
    }
}

pub(crate) fn source_list_attrs(macs: &[MacAddr]) -> Vec<InfoMacVlan> {
    vec![
        InfoMacVlan::MacAddrMode(MacVlanMacAddressMode::Set),
        InfoMacVlan::MacAddrData(macs.iter().map(|m| InfoMacVlan::MacAddr(m.0)).collect()),
    ]
}

impl Netlink {
    pub fn create_macvlan(&mut self, spec: &MacvlanSpec) -> Result<()> {
        let mut b = LinkMacVlan::new(spec.name, spec.parent, spec.mode.to_kernel());
        if spec.mtu > 0 {
            b = b.mtu(spec.mtu);
        }
        if let Some(mac) = spec.mac {
            b = b.address(mac.0.to_vec());
        }
        if let Some(ns) = spec.netns {
            b = b.setns_by_fd(ns.as_raw_fd());
        }
        if let Some(n) = spec.bc_queue_len {
            b = b.append_info_data(InfoMacVlan::BcQueueLen(n));
        }
        if spec.mode == MacvlanMode::Source && !spec.sources.is_empty() {
            for a in source_list_attrs(spec.sources) {
                b = b.append_info_data(a);
            }
        }
        self.new_link(b.build())
            .with_context(|| format!("create macvlan {} ({}) on link #{}", spec.name, spec.mode, spec.parent))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_and_print() {
        for &m in MacvlanMode::ALL {
            assert_eq!(m.as_str().parse::<MacvlanMode>().unwrap(), m);
            assert_eq!(MacvlanMode::from_kernel(m.to_kernel()), Some(m));
        }
        assert!("passthrough".parse::<MacvlanMode>().unwrap_err().contains("passthrough"));
    }
}
