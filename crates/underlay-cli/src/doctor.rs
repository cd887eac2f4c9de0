//! `underlay doctor`: what stands between this host's macvlan endpoints and the LAN, in
//! plain words, each finding with what to do. Passive checks read the kernel's state;
//! active probes (`--probe`) send ARP probes, only on the parent the user named (a
//! network's or `--parent`), never on the host's uplink by default.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::Duration;

use clap::Args;
use serde::Serialize;
use underlay_linux::{Link, Netlink};

use crate::failure::{Failure, Result};
use crate::finding::finding;
pub use crate::finding::{Finding, Severity};
use crate::model::{Endpoint, Network};
use crate::output::{Format, print_json};
use crate::state::{Dirs, State};

#[derive(Args)]
pub struct DoctorArgs {
    /// The network to examine.
    network: Option<String>,
    /// Or a parent interface.
    #[arg(long, conflicts_with = "network")]
    parent: Option<String>,
    /// Send ARP probes on that parent (from a temporary macvlan): does the LAN answer a
    /// new MAC, and is any of the network's addresses used by someone else?
    #[arg(long)]
    probe: bool,
    /// Findings as text for people, or JSON for scripts.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

#[derive(Serialize)]
struct Report {
    parent: String,
    network: Option<String>,
    probed: bool,
    findings: Vec<Finding>,
}

pub fn doctor(dirs: &Dirs, args: DoctorArgs) -> Result<bool> {
    let (net, endpoints, host_access) = match &args.network {
        Some(name) => {
            let state = State::lock(dirs)?;
            let net = state.network(name)?;
            let eps: Vec<Endpoint> = state.endpoints()?.into_iter().filter(|e| e.network == net.name).collect();
            let ha = state.host_access(&net.name)?;
            (Some(net), eps, ha)
        }
        None => (None, vec![], None),
    };
    let parent = match (&net, &args.parent) {
        (Some(n), _) => n.parent.clone(),
        (None, Some(p)) => p.clone(),
        (None, None) => return Err(Failure::usage("name a network, or a parent with --parent IF")),
    };
    let mut nl = Netlink::new()?;
    let mut findings = Vec::new();
    match nl.link_by_name(&parent)? {
        None => findings.push(finding(
            "parent-missing",
            Severity::Error,
            format!("the parent interface {parent} does not exist"),
            "create it, or recreate the network with -o parent=<an existing interface>",
        )),
        Some(link) => {
            findings.extend(parent_checks(&link));
            findings.extend(routes_on_two_interfaces(&mut nl, &link)?);
            if let Some(n) = &net {
                findings.extend(mtu(n, &link));
                findings.extend(host_address_clash(&mut nl, &link, &endpoints)?);
                let shim = host_access.as_ref().map(|ha| crate::host_access::shim_state(&mut nl, ha));
                findings.push(isolation(n, shim));
                for why in crate::holds::describe(dirs, n)? {
                    let fix = "give that device another address, or release the hold once it has left: underlay network release-hold";
                    findings.push(finding("foreign-hold", Severity::Warning, why, fix));
                }
            }
            findings.extend(platform());
            if args.probe && link.up {
                findings.extend(probes(&mut nl, &link, net.as_ref(), &endpoints, host_access.as_ref())?);
            }
        }
    }
    crate::doctor_passed::add_passed(&mut findings, &parent, net.is_some());
    findings.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.check.cmp(b.check)));
    let healthy = !findings.iter().any(|f| f.severity == Severity::Error);
    let report = Report { parent, network: args.network.clone(), probed: args.probe, findings };
    match args.format {
        Format::Json => print_json(&report),
        // Findings are sentences: a table column would make them unreadable.
        Format::Table => {
            for f in &report.findings {
                println!(
                    "{:<7} {}\n  {}\n  what to do: {}\n",
                    format!("{:?}", f.severity).to_lowercase(),
                    f.check,
                    f.finding,
                    f.fix
                );
            }
        }
    }
    Ok(healthy)
}

fn parent_checks(link: &Link) -> Vec<Finding> {
    let name = &link.name;
    let mut out = Vec::new();
    if !link.up {
        out.push(finding(
            "parent-down",
            Severity::Error,
            format!("{name} is down: its endpoints cannot send or receive"),
            format!("ip link set {name} up"),
        ));
    } else if !link.lower_up {
        out.push(finding(
            "parent-no-carrier",
            Severity::Error,
            format!("{name} is up but has no carrier (no cable, or the other end is down)"),
            "check the cable, the switch port or the virtual switch it is plugged into",
        ));
    }
    let sys = Path::new("/sys/class/net").join(name);
    if sys.join("wireless").exists() || sys.join("phy80211").exists() {
        out.push(finding(
            "parent-wifi",
            Severity::Warning,
            format!("{name} is a Wi-Fi interface: access points accept frames only from the MAC that associated, so macvlan endpoints rarely work there"),
            crate::doctor_passed::unknown_mac_advice("use a wired parent"),
        ));
    }
    out.push(finding(
        "parent-promiscuity",
        Severity::Info,
        if link.promisc {
            format!("{name} is in promiscuous mode: frames to every endpoint's MAC reach the kernel")
        } else {
            format!("{name} is not promiscuous: the NIC filters unicast by MAC; each endpoint adds its MAC to the filter, and a NIC whose filter is full falls back to promiscuous mode by itself")
        },
        format!("nothing, unless endpoints get no traffic: then try `ip link set {name} promisc on`"),
    ));
    out
}

/// Two routes to the same subnet on different interfaces: the host picks one, and its
/// traffic to that subnet may leave where it should not. A macvlan of the parent in
/// the parent's own subnet is the seed's accident exactly.
fn routes_on_two_interfaces(nl: &mut Netlink, parent: &Link) -> Result<Vec<Finding>> {
    let routes: Vec<_> = nl
        .routes()?
        .into_iter()
        .filter(|r| {
            r.unicast
                && r.table == underlay_linux::route::TABLE_MAIN
                && r.dst.prefix_len() > 0
                && r.gw.is_none()
                && !per_interface(r.dst)
        })
        .collect();
    let links = nl.links()?;
    let name_of =
        |i: Option<u32>| links.iter().find(|l| Some(l.index) == i).map(|l| l.name.clone()).unwrap_or_default();
    let mut out = Vec::new();
    let mut seen = Vec::new();
    for r in &routes {
        let twins: Vec<&underlay_linux::route::Route> =
            routes.iter().filter(|o| o.dst == r.dst && o.oif != r.oif).collect();
        if twins.is_empty() || seen.contains(&r.dst) {
            continue;
        }
        seen.push(r.dst);
        let mut ifaces: Vec<String> = std::iter::once(r).chain(twins).map(|x| name_of(x.oif)).collect();
        ifaces.sort();
        let shim = links.iter().find(|l| {
            ifaces.contains(&l.name) && l.is_macvlan() && l.parent == Some(parent.index) && l.link_netnsid.is_none()
        });
        let (check, text) = match shim {
            Some(s) => (
                "same-subnet-shim",
                format!(
                    "{} is a macvlan of {} with an address in {}'s own subnet {}: two routes to {} now compete, and the host's replies to its LAN (an SSH session too) may leave through {} and be lost — the seed's accident",
                    s.name, parent.name, parent.name, r.dst, r.dst, s.name
                ),
            ),
            None => {
                ("subnet-on-two-interfaces", format!("{} is routed through {} at once", r.dst, ifaces.join(" and ")))
            }
        };
        out.push(finding(
            check,
            Severity::Error,
            text,
            "give the extra interface a host address (/32) without a subnet route; `underlay host-access enable NETWORK` makes such a shim safely",
        ));
    }
    Ok(out)
}

/// IPv6 link-local and multicast routes exist once per interface by design.
fn per_interface(dst: ipnet::IpNet) -> bool {
    match dst {
        ipnet::IpNet::V6(n) => n.addr().is_unicast_link_local() || n.addr().is_multicast(),
        ipnet::IpNet::V4(_) => false,
    }
}

/// An endpoint holding an address the parent carries: the LAN hears two MACs answer
/// for it (the host cannot see this from an endpoint: macvlan keeps them apart).
fn host_address_clash(nl: &mut Netlink, parent: &Link, endpoints: &[Endpoint]) -> Result<Vec<Finding>> {
    let own: Vec<IpAddr> = nl.addresses(Some(parent.index))?.into_iter().map(|a| a.net.addr()).collect();
    Ok(endpoints
        .iter()
        .flat_map(|e| e.ips.iter().filter(|ip| own.contains(&ip.addr())).map(move |ip| (e, ip.addr())))
        .map(|(e, ip)| {
            finding(
                "host-address",
                Severity::Error,
                format!("endpoint {} has {ip}, which is {}'s own address on this host", e.name, parent.name),
                format!("stop it and run it again without --ip {ip} (or with another address)"),
            )
        })
        .collect())
}

fn mtu(net: &Network, parent: &Link) -> Option<Finding> {
    (net.mtu > parent.mtu).then(|| {
        finding(
            "mtu-mismatch",
            Severity::Error,
            format!("network {} wants MTU {} but its parent {} has MTU {}: new endpoints fail, and larger packets cannot leave", net.name, net.mtu, parent.name, parent.mtu),
            format!("raise {}'s MTU, or recreate the network with --mtu {} or less", parent.name, parent.mtu),
        )
    })
}

/// `shim`: the host-access shim's state as `host-access status` shows it, if enabled.
fn isolation(net: &Network, shim: Option<&str>) -> Finding {
    let (finding_text, fix) = if let Some(st @ ("missing" | "down")) = shim {
        return finding(
            "host-access",
            Severity::Error,
            format!(
                "host access to {} is enabled, but its shim is {st}: this host cannot reach the endpoints",
                net.name
            ),
            "underlay host-access restore",
        );
    } else if shim.is_some() {
        (
            format!("host access to {} is on: this host reaches its endpoints through a shim", net.name),
            "nothing".to_string(),
        )
    } else {
        (
            format!(
                "this host cannot reach the endpoints of {} (the kernel keeps a macvlan parent and its children apart); other hosts on the LAN can",
                net.name
            ),
            format!("if this host must reach them: underlay host-access enable {}", net.name),
        )
    };
    finding("host-isolation", Severity::Info, finding_text, fix)
}

/// Platforms known to drop frames from MACs they did not assign, by DMI vendor.
pub fn platform_filters_macs(vendor: &str, product: &str) -> Option<&'static str> {
    let v = format!("{vendor} {product}").to_lowercase();
    let known: [(&str, &'static str); 8] = [
        ("amazon", "AWS EC2 drops frames from MACs it did not assign to the instance"),
        ("google", "Google Cloud drops frames from MACs it did not assign"),
        ("microsoft", "Azure and Hyper-V drop frames from unknown MACs unless MAC spoofing is allowed"),
        ("digitalocean", "DigitalOcean drops frames from MACs it did not assign"),
        ("oracle", "Oracle Cloud drops frames from MACs it did not assign"),
        ("alibaba", "Alibaba Cloud drops frames from MACs it did not assign"),
        ("hetzner", "Hetzner Cloud drops frames from MACs it did not assign"),
        ("vmware", "VMware port groups drop them unless promiscuous mode and forged transmits are allowed"),
    ];
    known.iter().find(|(k, _)| v.contains(k)).map(|(_, why)| *why)
}

fn platform() -> Option<Finding> {
    let read = |f: &str| std::fs::read_to_string(Path::new("/sys/class/dmi/id").join(f)).unwrap_or_default();
    let (vendor, product) = (read("sys_vendor"), read("product_name"));
    platform_filters_macs(vendor.trim(), product.trim()).map(|why| {
        finding(
            "platform-filters-macs",
            Severity::Warning,
            format!("this looks like {} {}: {why}", vendor.trim(), product.trim()),
            crate::doctor_passed::unknown_mac_advice(
                "allow the MACs on the platform; `underlay doctor --probe` checks",
            ),
        )
    })
}

fn v4(ip: IpAddr) -> Option<Ipv4Addr> {
    match ip {
        IpAddr::V4(a) => Some(a),
        IpAddr::V6(_) => None,
    }
}

/// ARP from a fresh MAC: does the gateway answer it, and does anyone else answer for
/// the network's addresses?
fn probes(
    nl: &mut Netlink,
    parent: &Link,
    net: Option<&Network>,
    endpoints: &[Endpoint],
    host_access: Option<&crate::model::HostAccess>,
) -> Result<Vec<Finding>> {
    let mut out = Vec::new();
    let gateway = net.and_then(|n| n.subnets.iter().find_map(|s| s.gateway.and_then(v4))).or_else(|| {
        nl.default_route().ok().flatten().filter(|r| r.oif == Some(parent.index)).and_then(|r| r.gw.and_then(v4))
    });
    let ours: Vec<(Ipv4Addr, Option<underlay::MacAddr>)> = endpoints
        .iter()
        .flat_map(|e| e.ips.iter().filter_map(|i| v4(i.addr())).map(move |ip| (ip, e.mac)))
        .chain(host_access.iter().flat_map(|h| h.addresses.iter().filter_map(|a| v4(*a)).map(|ip| (ip, None))))
        .collect();
    let mut targets: Vec<Ipv4Addr> = ours.iter().map(|(ip, _)| *ip).collect();
    targets.extend(gateway);
    if targets.is_empty() {
        return Ok(out);
    }
    let answers = underlay_linux::probe::arp_probe(parent.index, &targets, Duration::from_millis(700))?;
    if let Some(gw) = gateway {
        let from_macvlan = answers.iter().any(|a| a.ip == gw);
        if !from_macvlan {
            let host_reaches =
                underlay_linux::reach::reachable_here(IpAddr::V4(gw), Duration::from_secs(1)).unwrap_or(false);
            out.push(if host_reaches {
                finding(
                    "unknown-macs-dropped",
                    Severity::Error,
                    format!("the gateway {gw} answers this host but not an ARP probe from a new MAC on {}: the switch, hypervisor or cloud drops frames from MACs it does not know, so macvlan endpoints cannot talk to the LAN", parent.name),
                    crate::doctor_passed::unknown_mac_advice(
                        "allow unknown MACs (VMware: promiscuous mode + forged transmits; a switch: port security off)",
                    ),
                )
            } else {
                finding(
                    "gateway-silent",
                    Severity::Warning,
                    format!("the gateway {gw} answers neither this host nor a probe from a new MAC on {}", parent.name),
                    "check the gateway address and that it is on this LAN",
                )
            });
        }
    }
    for (ip, mac) in &ours {
        let strangers: Vec<String> = answers
            .iter()
            .filter(|a| a.ip == *ip && Some(a.mac) != *mac && host_access.is_none_or(|_| mac.is_some()))
            .map(|a| a.mac.to_string())
            .collect();
        if !strangers.is_empty() {
            out.push(finding(
                "address-in-use",
                Severity::Error,
                format!("{ip} is held by this network, but {} answers for it too: two devices use one address", strangers.join(", ")),
                "find that device and change its address, or release this endpoint and keep the address out with --aux-address",
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn known_platforms() {
        assert!(super::platform_filters_macs("Amazon EC2", "m5.large").is_some());
        assert!(super::platform_filters_macs("Microsoft Corporation", "Virtual Machine").is_some());
        assert!(super::platform_filters_macs("VMware, Inc.", "VMware7,1").is_some());
        assert!(super::platform_filters_macs("QEMU", "Standard PC").is_none());
        assert!(super::platform_filters_macs("", "").is_none());
    }
}
