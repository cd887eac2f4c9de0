//! ADD: create the macvlan directly in the container's namespace, get addresses from
//! IPAM, configure, report. Every step's undo is registered right after it: a failed
//! ADD leaves no link and no reservation.

use std::hash::{BuildHasher, RandomState};

use underlay::cni::{Call, CniError, CniResult, Command, Interface, code};
use underlay::ipam::delegate;
use underlay::undo::Undo;
use underlay_linux::configure::{self, Failure};
use underlay_linux::ipvlan::IpvlanSpec;
use underlay_linux::{Link, MacvlanMode, MacvlanSpec, Netlink, Netns};

use crate::conf::{Conf, Driver, Kind};
use crate::master;
use crate::pod::{open_netns, pod_netlink};

pub fn add(call: &Call, driver: Driver) -> Result<CniResult, CniError> {
    let conf = Conf::parse(call, driver)?;
    let ifname = call.env.ifname.as_str();
    let path = call.env.netns.as_deref().expect("the runner requires CNI_NETNS for ADD");
    let pod = open_netns(path)?;
    let user = master::user(call);
    let (mut master_nl, master, vlan) = master::acquire(&conf, &pod, &user)?;
    // Declared before the link's undo, so it runs after it: the sub-interface goes only
    // once nothing sits on it.
    let vlan_undo = Undo::new(|| {
        if vlan.is_some() {
            let _ = master::release(&conf, &user);
        }
    });
    if conf.mtu > master.mtu {
        return Err(CniError::config(format!(
            "mtu {} is larger than master {}'s MTU {}",
            conf.mtu, master.name, master.mtu
        )));
    }
    let mut pod_nl = pod_netlink(&pod)?;
    if pod_nl.link_by_name(ifname)?.is_some() {
        return Err(CniError::new(
            code::IFNAME_TAKEN,
            format!("interface {ifname} already exists in network namespace {}", path.display()),
        ));
    }

    // The link is made directly in the pod's namespace under its final name. Kernels
    // that checked the name in the creator's namespace instead refuse it when the node
    // has an interface of that name; only then take the reference's detour: a
    // temporary name, renamed in the pod (a rename costs a sysfs move, so not always).
    let netns = (!conf.link_in_container).then(|| pod.fd());
    let created = match create_link(&mut master_nl, &conf, ifname, &master, netns) {
        Err(e) if e.is(underlay_linux::error::Errno::EEXIST) => {
            let tmp = format!("mv{:08x}", RandomState::new().hash_one(call.env.container_id.as_str()) as u32);
            create_link(&mut master_nl, &conf, &tmp, &master, netns).map_err(|e| create_error(e, &conf, &master))?;
            let created = pod_nl.link(&tmp)?;
            if let Err(e) = pod_nl.rename(created.index, ifname) {
                delete_quietly(&pod, created.index);
                return Err(CniError::from(e));
            }
            created
        }
        other => {
            other.map_err(|e| create_error(e, &conf, &master))?;
            pod_nl.link(ifname)?
        }
    };
    let link_undo = Undo::new(|| delete_quietly(&pod, created.index));
    // The mark DEL checks: only the container whose ADD made the link deletes it.
    pod_nl.set_alias(created.index, &owner_mark(&call.env.container_id))?;
    // A MAC of our choosing may be another endpoint's on this master: the kernel
    // refuses to bring such a link up, so it is brought up (and down) now, to say so
    // plainly.
    if let Kind::Macvlan { mac: Some(m), .. } = conf.kind {
        let up = pod_nl.set_up(created.index, true).and_then(|()| pod_nl.set_up(created.index, false));
        up.map_err(|e| {
            if e.is(underlay_linux::error::Errno::EADDRINUSE) {
                CniError::new(
                    code::ADDRESS_CONFLICT,
                    format!(
                        "MAC {m} is already used by another endpoint on master {}; MACs are never shared",
                        master.name
                    ),
                )
            } else {
                CniError::from(e)
            }
        })?;
    }
    let link = Link { name: ifname.to_string(), ..created.clone() };
    let mac = link.mac.ok_or_else(|| CniError::kernel(format!("{ifname} has no MAC address")))?;

    let ipam = match (conf.ipam.as_deref(), conf.detection) {
        (None, _) => None,
        (Some(ty), None) => Some(delegate::add(call, ty)?),
        (Some(ty), Some(d)) => Some(crate::conflict::lease(call, ty, &d, |targets, probing| {
            probe(&pod, &mut pod_nl, &conf, &link, mac, &master, targets, probing)
        })?),
    };
    let has_ipam = ipam.is_some();
    let ipam_undo = Undo::new(|| {
        if let (true, Some(ty)) = (has_ipam, conf.ipam.as_deref()) {
            let _ = delegate::run(call, ty, Command::Del);
        }
    });
    let mut result = CniResult {
        interfaces: vec![Interface {
            name: ifname.to_string(),
            mac: Some(mac.into()),
            mtu: Some(link.mtu),
            sandbox: Some(path.display().to_string()),
            ..Interface::default()
        }],
        dns: conf.dns.clone(),
        ..CniResult::default()
    };
    if let Some(ipam) = ipam {
        if ipam.ips.is_empty() {
            return Err(CniError::new(code::PLUGIN_FAILED, "the IPAM plugin returned no address"));
        }
        // A probe from the pod cannot see the master's own address (macvlan keeps parent
        // and children apart), so it is checked here. No retry: asking the IPAM again
        // would get the same address back.
        if !conf.link_in_container {
            master::refuse_own(&mut master_nl, &master, ipam.ips.iter().map(|ip| ip.address.addr()))?;
        }
        result.ips = ipam.ips.into_iter().map(|mut ip| (ip.interface = Some(0), ip).1).collect();
        result.routes = ipam.routes;
        // The reference drops the IPAM's DNS here; both are kept, the config's first.
        result.dns.merge(&ipam.dns);
        default_through_device(&conf.kind, &mut result);
    }
    configure_in(&pod, &mut pod_nl, ifname, &link, &result, &conf).map_err(|f| match f {
        Failure::DadFailed(ip) => CniError::new(
            code::ADDRESS_CONFLICT,
            format!("address {ip} is already in use on the LAN (IPv6 duplicate address detection failed)"),
        ),
        Failure::Kernel(e) => CniError::from(e.context(format!("configure {ifname}"))),
    })?;
    ipam_undo.keep();
    link_undo.keep();
    vlan_undo.keep();
    // The kernel sent the first announcement; the rest go out after we have answered.
    if conf.settings.announce_count > 1 && !result.ips.is_empty() {
        let job = underlay_linux::announce::Job {
            netns: path.to_path_buf(),
            index: link.index,
            mac,
            ips: result.ips.iter().map(|ip| ip.address.addr()).collect(),
            count: conf.settings.announce_count - 1,
            interval: conf.settings.announce_interval,
        };
        // Best effort: the address works whether or not the LAN hears about it again.
        let _ = job.spawn_detached();
    }
    Ok(result)
}

/// In ipvlan l3/l3s the master routes for its children by destination address (the
/// children do no ARP): a family with addresses and no default route gets one through
/// the device itself (Docker's behaviour; the reference leaves the pod with no way off
/// its subnet).
fn default_through_device(kind: &Kind, result: &mut CniResult) {
    use underlay_linux::ipvlan::IpvlanMode;
    if !matches!(kind, Kind::Ipvlan { mode: IpvlanMode::L3 | IpvlanMode::L3s, .. }) {
        return;
    }
    for v4 in [true, false] {
        let ips = || result.ips.iter().filter(|ip| ip.address.addr().is_ipv4() == v4);
        let has_default = result.routes.iter().any(|r| r.dst.prefix_len() == 0 && r.dst.addr().is_ipv4() == v4);
        if ips().next().is_some() && !has_default {
            let any: ipnet::IpNet = if v4 { "0.0.0.0/0" } else { "::/0" }.parse().expect("a literal network");
            result.routes.push(underlay::cni::Route::new(any, None));
        }
    }
}

/// The alias that marks a link as made by `container_id`'s ADD. Aliases hold at most
/// 255 bytes; a longer ID is marked by its hash.
pub fn owner_mark(container_id: &str) -> String {
    let mark = format!("cni:{container_id}");
    if mark.len() <= 255 { mark } else { format!("cni#{:016x}", underlay::stable_hash(container_id.bytes())) }
}

fn configure_in(
    pod: &Netns,
    nl: &mut Netlink,
    ifname: &str,
    link: &Link,
    result: &CniResult,
    conf: &Conf,
) -> Result<(), Failure> {
    // Sysctls and announcements act on the calling thread's namespace.
    let _inside = pod.enter()?;
    if result.ips.is_empty() {
        // L2 only: the link comes up, nothing else.
        return Ok(nl.set_up(link.index, true)?);
    }
    configure::apply(nl, ifname, link.index, result, 0, &conf.settings)
}

/// Probes `targets` before they are configured: from the endpoint itself for macvlan
/// (brought up for it, still without addresses), from the master for ipvlan, whose
/// children share its MAC and receive no unicast ARP replies for addresses they do not
/// have yet. A master that is down is not probed through.
#[allow(clippy::too_many_arguments)]
fn probe(
    pod: &Netns,
    pod_nl: &mut Netlink,
    conf: &Conf,
    link: &Link,
    mac: underlay::MacAddr,
    master: &Link,
    targets: &[std::net::Ipv4Addr],
    probing: &underlay_linux::probe::Probing,
) -> Result<Vec<underlay_linux::probe::Conflict>, CniError> {
    let what = |e: underlay_linux::Error| CniError::from(e.context(format!("probe {targets:?} on {}", link.name)));
    // A master that is down is on no LAN yet: nothing can answer, and nothing can be
    // sent (ENETDOWN).
    if !master.up {
        return Ok(vec![]);
    }
    match conf.kind {
        Kind::Macvlan { .. } => {
            pod_nl.set_up(link.index, true).map_err(what)?;
            let found = {
                let _inside = pod.enter()?;
                underlay_linux::probe::conflicts(link.index, mac, targets, probing).map_err(what)?
            };
            // Down again: configuring brings it up after the addresses, which is what
            // makes the kernel send the first announcement.
            pod_nl.set_up(link.index, false).map_err(what)?;
            Ok(found)
        }
        Kind::Ipvlan { .. } => {
            let own =
                master.mac.ok_or_else(|| CniError::kernel(format!("master {} has no MAC address", master.name)))?;
            let _inside = if conf.link_in_container { Some(pod.enter()?) } else { None };
            underlay_linux::probe::conflicts(master.index, own, targets, probing).map_err(what)
        }
    }
}

fn create_link(
    nl: &mut Netlink,
    conf: &Conf,
    name: &str,
    master: &Link,
    netns: Option<std::os::fd::BorrowedFd<'_>>,
) -> underlay_linux::Result<()> {
    match &conf.kind {
        Kind::Macvlan { mode, mac, sources, bcqueuelen } => {
            let mut spec = MacvlanSpec::new(name, master.index, *mode);
            spec.mtu = conf.mtu;
            spec.mac = *mac;
            spec.sources = sources;
            spec.bc_queue_len = *bcqueuelen;
            spec.netns = netns;
            nl.create_macvlan(&spec)
        }
        Kind::Ipvlan { mode, flag } => {
            nl.create_ipvlan(&IpvlanSpec { name, parent: master.index, mode: *mode, flag: *flag, mtu: conf.mtu, netns })
        }
    }
}

fn delete_quietly(pod: &Netns, index: u32) {
    if let Ok(mut nl) = pod_netlink(pod) {
        let _ = nl.delete_link(index);
    }
}

fn create_error(e: underlay_linux::Error, conf: &Conf, master: &Link) -> CniError {
    use underlay_linux::error::Errno;
    use underlay_linux::support::{Feature, has};
    if matches!(conf.kind, Kind::Ipvlan { .. }) && e.is(Errno::EOPNOTSUPP) && has(Feature::Ipvlan).ok() == Some(false) {
        return CniError::kernel(format!("cannot create an ipvlan link: {}", Feature::Ipvlan.missing()));
    }
    // The kernel answers EINVAL (older kernels EBUSY) without a message when passthru
    // rules are broken; say which rule.
    let refused = e.is(Errno::EINVAL) || e.is(Errno::EBUSY);
    let passthru = matches!(conf.kind, Kind::Macvlan { mode: MacvlanMode::Passthru, .. });
    let why = if refused && passthru {
        "passthru takes the master for one endpoint only, and it already has a macvlan endpoint"
    } else if refused && master.promisc && matches!(conf.kind, Kind::Macvlan { .. }) {
        "it looks taken by a passthru macvlan, which allows no other endpoint"
    } else {
        return CniError::from(e);
    };
    CniError::config(format!(
        "cannot add a {} macvlan on master {}: {why}; use mode \"bridge\" for several endpoints ({e})",
        conf.kind.mode_name(),
        master.name
    ))
}
