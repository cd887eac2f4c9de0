//! Ipvlan links (children share the parent's MAC: what clouds that filter unknown MACs
//! accept) and 802.1Q VLAN sub-interfaces (`enp0s3.10`).

use std::os::fd::{AsRawFd, BorrowedFd};

use netlink_packet_route::link::{InfoIpVlan, InfoVlan, IpVlanFlags, IpVlanMode};
use rtnetlink::{LinkIpVlan, LinkVlan};

use crate::error::{Context, Result};
use crate::netlink::Netlink;
use crate::spelling::spelled;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpvlanMode {
    L2,
    L3,
    L3s,
}

/// How ipvlan children on one parent reach each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpvlanFlag {
    Bridge,
    Private,
    Vepa,
}

spelled!(IpvlanMode, "ipvlan mode", { L2 => "l2", L3 => "l3", L3s => "l3s" });
spelled!(IpvlanFlag, "ipvlan flag", { Bridge => "bridge", Private => "private", Vepa => "vepa" });

impl IpvlanMode {
    fn to_kernel(self) -> IpVlanMode {
        match self {
            IpvlanMode::L2 => IpVlanMode::L2,
            IpvlanMode::L3 => IpVlanMode::L3,
            IpvlanMode::L3s => IpVlanMode::L3S,
        }
    }

    pub(crate) fn from_kernel(m: IpVlanMode) -> Option<IpvlanMode> {
        Some(match m {
            IpVlanMode::L2 => IpvlanMode::L2,
            IpVlanMode::L3 => IpvlanMode::L3,
            IpVlanMode::L3S => IpvlanMode::L3s,
            _ => return None,
        })
    }
}

impl IpvlanFlag {
    fn to_kernel(self) -> IpVlanFlags {
        match self {
            IpvlanFlag::Bridge => IpVlanFlags::empty(),
            IpvlanFlag::Private => IpVlanFlags::Private,
            IpvlanFlag::Vepa => IpVlanFlags::Vepa,
        }
    }

    pub(crate) fn from_kernel(f: IpVlanFlags) -> IpvlanFlag {
        if f.contains(IpVlanFlags::Private) {
            IpvlanFlag::Private
        } else if f.contains(IpVlanFlags::Vepa) {
            IpvlanFlag::Vepa
        } else {
            IpvlanFlag::Bridge
        }
    }
}

/// An ipvlan's settings as read back from the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpvlanInfo {
    pub mode: IpvlanMode,
    pub flag: IpvlanFlag,
}

impl IpvlanInfo {
    pub(crate) fn from_attrs(attrs: &[InfoIpVlan]) -> IpvlanInfo {
        let mut info = IpvlanInfo { mode: IpvlanMode::L2, flag: IpvlanFlag::Bridge };
        for a in attrs {
            match a {
                InfoIpVlan::Mode(m) => info.mode = IpvlanMode::from_kernel(*m).unwrap_or(IpvlanMode::L2),
                InfoIpVlan::Flags(f) => info.flag = IpvlanFlag::from_kernel(*f),
                _ => {}
            }
        }
        info
    }
}

#[derive(Debug, Clone)]
pub struct IpvlanSpec<'a> {
    pub name: &'a str,
    pub parent: u32,
    pub mode: IpvlanMode,
    pub flag: IpvlanFlag,
    /// 0 inherits the parent's.
    pub mtu: u32,
    pub netns: Option<BorrowedFd<'a>>,
}

impl Netlink {
    pub fn create_ipvlan(&mut self, spec: &IpvlanSpec) -> Result<()> {
        // Mode and flags belong to the parent (all its ipvlan children share them) and the
        // kernel keeps the old flags when none are sent: send them always, bridge (0) too.
        let mut b = LinkIpVlan::new(spec.name, spec.parent, spec.mode.to_kernel())
            .append_info_data(InfoIpVlan::Flags(spec.flag.to_kernel()));
        if spec.mtu > 0 {
            b = b.mtu(spec.mtu);
        }
        if let Some(ns) = spec.netns {
            b = b.setns_by_fd(ns.as_raw_fd());
        }
        self.new_link(b.build()).with_context(|| {
            format!("create ipvlan {} ({} {}) on link #{}", spec.name, spec.mode, spec.flag, spec.parent)
        })
    }

    /// Creates the 802.1Q sub-interface `name` for VLAN `vid` on `parent`.
    pub fn create_vlan(&mut self, name: &str, parent: u32, vid: u16) -> Result<()> {
        self.new_link(LinkVlan::new(name, parent, vid).build())
            .with_context(|| format!("create VLAN {vid} interface {name} on link #{parent}"))
    }
}

/// The VLAN ID of a VLAN link's info data.
pub(crate) fn vlan_id(attrs: &[InfoVlan]) -> Option<u16> {
    attrs.iter().find_map(|a| match a {
        InfoVlan::Id(id) => Some(*id),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for m in [IpvlanMode::L2, IpvlanMode::L3, IpvlanMode::L3s] {
            assert_eq!(m.as_str().parse::<IpvlanMode>().unwrap(), m);
            assert_eq!(IpvlanMode::from_kernel(m.to_kernel()), Some(m));
        }
        for f in [IpvlanFlag::Bridge, IpvlanFlag::Private, IpvlanFlag::Vepa] {
            assert_eq!(f.as_str().parse::<IpvlanFlag>().unwrap(), f);
            assert_eq!(IpvlanFlag::from_kernel(f.to_kernel()), f);
        }
        assert!("l4".parse::<IpvlanMode>().unwrap_err().contains("l4"));
    }
}
