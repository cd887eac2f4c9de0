//! Applying an ADD result to an interface inside the container's namespace: sysctls,
//! addresses, IPv6 duplicate address detection, routes, announcements. Every function
//! here runs on a thread that is already in that namespace.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use underlay::cni::{CniResult, Route as CniRoute};

use crate::addr::AddressOptions;
use crate::error::Error;
use crate::netlink::Netlink;
use crate::route::{Route, TABLE_MAIN};
use crate::sysctl;

/// How to configure one interface.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How long IPv6 duplicate address detection may take.
    pub dad_timeout: Duration,
    /// Gratuitous ARPs / unsolicited neighbour advertisements per address (0: none).
    /// The first is the kernel's; the rest are sent by [`crate::announce`], spaced by
    /// `announce_interval`, from a detached process ([`crate::announce::Job`]).
    pub announce_count: u32,
    pub announce_interval: Duration,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            dad_timeout: Duration::from_secs(10),
            announce_count: 1,
            announce_interval: Duration::from_millis(100),
        }
    }
}

/// Why configuring failed in a way the caller reports specially.
#[derive(Debug)]
pub enum Failure {
    /// IPv6 duplicate address detection found the address in use on the LAN.
    DadFailed(IpAddr),
    Kernel(Error),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        Failure::Kernel(e)
    }
}

/// Configures interface `ifname` (index `index`) with the addresses of
/// `result` that name interface `iface` and with all of `result`'s routes.
pub fn apply(
    nl: &mut Netlink,
    ifname: &str,
    index: u32,
    result: &CniResult,
    iface: usize,
    settings: &Settings,
) -> std::result::Result<(), Failure> {
    let ips: Vec<_> = result.ips.iter().filter(|ip| ip.interface == Some(iface)).collect();
    let has_v6 = ips.iter().any(|ip| ip.address.addr().is_ipv6());
    if has_v6 {
        for dev in ["lo", ifname] {
            sysctl::ensure(&format!("net/ipv6/conf/{dev}/disable_ipv6"), "0")?;
        }
        // Addresses survive the link going down and up again (as the reference sets).
        sysctl::ensure(&format!("net/ipv6/conf/{ifname}/keep_addr_on_down"), "1")?;
    }
    // The first announcement is the kernel's: with arp_notify / ndisc_notify set, it
    // sends a gratuitous ARP for the primary IPv4 address when the link comes up, and an
    // unsolicited neighbour advertisement when IPv6 DAD completes. That is why the
    // addresses go on before the link comes up.
    let notify = if settings.announce_count > 0 { "1" } else { "0" };
    sysctl::write(&format!("net/ipv4/conf/{ifname}/arp_notify"), notify)?;
    if has_v6 {
        sysctl::write(&format!("net/ipv6/conf/{ifname}/ndisc_notify"), notify)?;
    }
    for ip in &ips {
        nl.add_address(index, ip.address, AddressOptions::default())?;
    }
    nl.set_up(index, true)?;
    let v6: Vec<IpAddr> = ips.iter().map(|ip| ip.address.addr()).filter(IpAddr::is_ipv6).collect();
    if !v6.is_empty() {
        wait_for_dad(nl, index, &v6, settings.dad_timeout)?;
    }
    let gw4 = ips.iter().filter_map(|ip| ip.gateway).find(IpAddr::is_ipv4);
    let gw6 = ips.iter().filter_map(|ip| ip.gateway).find(IpAddr::is_ipv6);
    for r in &result.routes {
        // A route without a gateway goes via the address's gateway of its family, as
        // the reference does.
        let gw = r.gw.or(if r.dst.addr().is_ipv4() { gw4 } else { gw6 });
        nl.add_route(&kernel_route(r, gw, index))?;
    }
    Ok(())
}

/// The kernel route for a CNI route.
pub fn kernel_route(r: &CniRoute, gw: Option<IpAddr>, index: u32) -> Route {
    let mut route = Route::new(r.dst, gw, Some(index));
    route.table = r.table.unwrap_or(TABLE_MAIN);
    if let Some(scope) = r.scope {
        route.scope = scope;
    }
    route.metric = r.priority;
    route.mtu = r.mtu;
    route.advmss = r.advmss;
    route
}

/// Waits until none of `addrs` is tentative; fails on `dadfailed`.
fn wait_for_dad(nl: &mut Netlink, index: u32, addrs: &[IpAddr], timeout: Duration) -> std::result::Result<(), Failure> {
    let start = Instant::now();
    loop {
        let now = nl.addresses(Some(index))?;
        let mine: Vec<_> = now.iter().filter(|a| addrs.contains(&a.net.addr())).collect();
        if let Some(bad) = mine.iter().find(|a| a.is_dadfailed()) {
            return Err(Failure::DadFailed(bad.net.addr()));
        }
        if mine.iter().all(|a| !a.is_tentative()) {
            return Ok(());
        }
        if start.elapsed() > timeout {
            return Err(Failure::Kernel(Error::new(
                "IPv6 duplicate address detection",
                format!("still running after {} s", timeout.as_secs()),
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
