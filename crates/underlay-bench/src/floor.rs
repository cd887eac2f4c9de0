//! The floors under a plugin call: the smallest processes that make the same kernel
//! calls as our ADD and our DEL, and nothing else (no config, no IPAM, no result).
//! Whatever a plugin costs above these is its own overhead.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::Result;
use ipnet::IpNet;
use underlay_linux::addr::AddressOptions;
use underlay_linux::ipvlan::{IpvlanFlag, IpvlanMode, IpvlanSpec};
use underlay_linux::{MacvlanMode, MacvlanSpec, Netlink, Netns, sysctl};

use crate::measure::timed;

/// What ADD does in the kernel: a macvlan (or an l2 ipvlan) on `master` made directly in
/// the pod's namespace, read back, announcements switched on, the address added, the
/// link up.
pub fn add_link(netns: &Path, master: &str, ifname: &str, address: IpNet, ipvlan: bool) -> Result<()> {
    let pod = Netns::open(netns)?;
    let mut node = Netlink::new()?;
    let parent = node.link(master)?;
    if ipvlan {
        node.create_ipvlan(&IpvlanSpec {
            name: ifname,
            parent: parent.index,
            mode: IpvlanMode::L2,
            flag: IpvlanFlag::Bridge,
            mtu: 0,
            netns: Some(pod.fd()),
        })?;
    } else {
        node.create_macvlan(&MacvlanSpec {
            netns: Some(pod.fd()),
            ..MacvlanSpec::new(ifname, parent.index, MacvlanMode::Bridge)
        })?;
    }
    let _in = pod.enter()?;
    let mut nl = Netlink::new()?;
    let link = nl.link(ifname)?;
    sysctl::write(&format!("net/ipv4/conf/{ifname}/arp_notify"), "1")?;
    nl.add_address(link.index, address, AddressOptions::default())?;
    nl.set_up(link.index, true)?;
    Ok(())
}

/// What DEL does in the kernel: enter the namespace, find the link, delete it.
pub fn delete_link(netns: &Path, ifname: &str) -> Result<()> {
    let pod = Netns::open(netns)?;
    let mut nl = {
        let _in = pod.enter()?;
        Netlink::new()?
    };
    let link = nl.link(ifname)?;
    nl.delete_link(link.index)?;
    Ok(())
}

/// `add_link` run as its own process (a macvlan), timed from spawn to exit: what any
/// exec'd plugin pays at least for ADD.
pub fn process_add(pod: &Netns, master: &str, address: IpNet) -> Result<Duration> {
    process_add_kind(pod, master, address, false)
}

/// As `process_add`, an l2 ipvlan when `ipvlan`.
pub fn process_add_kind(pod: &Netns, master: &str, address: IpNet, ipvlan: bool) -> Result<Duration> {
    add_in(Command::new(std::env::current_exe()?), pod, master, address, ipvlan)
}

/// As `process_add`, started in `node` (whose link `master` is): for a runtime that
/// runs its plugins in a test world's node.
pub fn process_add_from(node: &Netns, pod: &Netns, master: &str, address: IpNet) -> Result<Duration> {
    add_in(node.command(std::env::current_exe()?), pod, master, address, false)
}

fn add_in(mut cmd: Command, pod: &Netns, master: &str, address: IpNet, ipvlan: bool) -> Result<Duration> {
    cmd.arg("add-link").arg(pod.path()).arg(master).arg("eth0").arg(address.to_string());
    if ipvlan {
        cmd.arg("--ipvlan");
    }
    timed(&mut cmd, b"")
}

/// `delete_link` run as its own process: what any exec'd plugin pays at least for DEL.
pub fn process_delete(pod: &Netns) -> Result<Duration> {
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.arg("delete-link").arg(pod.path()).arg("eth0");
    timed(&mut cmd, b"")
}
