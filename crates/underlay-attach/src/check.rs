//! CHECK: what ADD made is still there and still as ADD made it.

use std::net::IpAddr;

use underlay::cni::{Call, CniError, CniResult, Command, code};
use underlay::ipam::delegate;
use underlay_linux::Netlink;

use crate::conf::{Conf, Driver, Kind};
use crate::master;
use crate::pod::{open_netns, pod_netlink};

fn failed(msg: String) -> CniError {
    CniError::new(code::CHECK_FAILED, msg)
}

pub fn check(call: &Call, driver: Driver) -> Result<(), CniError> {
    let conf = Conf::parse(call, driver)?;
    if let Some(ty) = &conf.ipam {
        delegate::run(call, ty, Command::Check)?;
    }
    let prev = call.prev_result()?.ok_or_else(|| CniError::config("CHECK needs prevResult"))?;
    let ifname = &call.env.ifname;
    let path = call.env.netns.as_deref().expect("the runner requires CNI_NETNS for CHECK");
    let sandbox = path.display().to_string();
    let index = prev
        .interfaces
        .iter()
        .position(|i| &i.name == ifname && i.sandbox.as_deref() == Some(sandbox.as_str()))
        .ok_or_else(|| failed(format!("prevResult lists no interface {ifname} in sandbox {sandbox}")))?;
    let expected = &prev.interfaces[index];
    let pod = open_netns(path)?;
    let (_, master) = master::resolve(&conf, Some(&pod))?;
    let mut nl = pod_netlink(&pod)?;
    let link = nl.link_by_name(ifname)?.ok_or_else(|| failed(format!("{ifname} is gone from {sandbox}")))?;
    if link.kind.as_deref() != Some(driver.as_str()) {
        let now = link.kind.as_deref().unwrap_or("device");
        return Err(failed(format!("{ifname} is a {now}, not a {}", driver.as_str())));
    }
    let now = match &conf.kind {
        Kind::Macvlan { .. } => link.macvlan_mode().map(|m| m.to_string()),
        Kind::Ipvlan { .. } => link.ipvlan.map(|i| format!("{} {}", i.mode, i.flag)),
    };
    if now.as_deref() != Some(conf.kind.mode_name().as_str()) {
        let now = now.unwrap_or_default();
        return Err(failed(format!("{ifname} is in mode {now}, the config says {}", conf.kind.mode_name())));
    }
    if link.parent != Some(master.index) {
        return Err(failed(format!("{ifname} is not on master {}", master.name)));
    }
    if let Some(mac) = &expected.mac
        && link.mac.map(underlay::HwAddr::from).as_ref() != Some(mac)
    {
        return Err(failed(format!("{ifname} has MAC {:?}, prevResult says {mac}", link.mac)));
    }
    let want_mtu = expected.mtu.or((conf.mtu > 0).then_some(conf.mtu));
    if let Some(mtu) = want_mtu.filter(|m| *m != link.mtu) {
        return Err(failed(format!("{ifname} has MTU {}, expected {mtu}", link.mtu)));
    }
    check_addresses_and_routes(&mut nl, link.index, index, &prev)
}

fn check_addresses_and_routes(nl: &mut Netlink, link: u32, iface: usize, prev: &CniResult) -> Result<(), CniError> {
    let have = nl.addresses(Some(link))?;
    for ip in prev.ips.iter().filter(|ip| ip.interface == Some(iface)) {
        if !have.iter().any(|a| a.net == ip.address) {
            return Err(failed(format!("address {} is missing", ip.address)));
        }
    }
    let routes = nl.routes()?;
    for r in &prev.routes {
        let found = routes.iter().any(|k| {
            k.dst == r.dst.trunc() && (r.gw.is_none() || k.gw == r.gw) && r.table.is_none_or(|t| t == k.table)
        });
        if !found {
            let via = r.gw.map(|g: IpAddr| format!(" via {g}")).unwrap_or_default();
            return Err(failed(format!("route {}{via} is missing", r.dst)));
        }
    }
    Ok(())
}
