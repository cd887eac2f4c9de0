//! This host's own addresses: never handed out to a container (issue 19 made the CLI
//! and the CNI plugins refuse them too). A container with the host's address would make
//! the LAN's ARP answers flip between two MACs. They are read from the kernel at each
//! request, so nothing is kept that could go stale.

use std::net::IpAddr;

use ipnet::IpNet;
use underlay::ipam::{Range, RangeSet, without};
use underlay_linux::Netlink;

/// Every address of this namespace inside `subnet`, with the interface carrying it.
pub fn within(subnet: &IpNet) -> Result<Vec<(IpAddr, String)>, String> {
    let mut nl = Netlink::new().map_err(|e| format!("open netlink: {e}"))?;
    let links = nl.links().map_err(|e| format!("list links: {e}"))?;
    let addrs = nl.addresses(None).map_err(|e| format!("list this host's addresses: {e}"))?;
    Ok(addrs
        .into_iter()
        .filter(|a| subnet.contains(&a.net.addr()))
        .map(|a| {
            let name =
                links.iter().find(|l| l.index == a.index).map_or_else(|| a.index.to_string(), |l| l.name.clone());
            (a.net.addr(), name)
        })
        .collect())
}

/// The error for a requested address this host carries, if it does.
pub fn refuse(ip: IpAddr, own: &[(IpAddr, String)], flag: &str) -> Result<(), String> {
    match own.iter().find(|(a, _)| *a == ip) {
        Some((_, ifname)) => Err(format!(
            "{flag} {ip}: {ip} is this host's own address (on interface {ifname}); a container with it would make \
             the LAN's ARP answers flip between two MACs, so underlay never hands it out (it needs no \
             --aux-address either); choose another"
        )),
        None => Ok(()),
    }
}

/// `set` with the addresses of `own` cut out, so the allocator never reaches them; an
/// error naming them when nothing is left.
pub fn cut_out(set: &RangeSet, own: &[(IpAddr, String)]) -> Result<RangeSet, String> {
    let ips: Vec<IpAddr> = own.iter().map(|(ip, _)| *ip).collect();
    let out: Vec<Range> = set
        .0
        .iter()
        .flat_map(|r| without(r.start, r.end, &ips).into_iter().map(|(start, end)| Range { start, end, ..r.clone() }))
        .collect();
    if out.is_empty() {
        let taken: Vec<String> = own.iter().map(|(ip, ifname)| format!("{ip} (on {ifname})")).collect();
        return Err(format!(
            "no address to hand out: the range holds only this host's own {}; use an --ip-range that leaves it out",
            taken.join(", ")
        ));
    }
    Ok(RangeSet(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use underlay::ipam::RangeConf;

    fn set(subnet: &str, start: Option<&str>, end: Option<&str>) -> RangeSet {
        let conf = RangeConf {
            subnet: subnet.parse().unwrap(),
            range_start: start.map(|s| s.parse().unwrap()),
            range_end: end.map(|s| s.parse().unwrap()),
            gateway: None,
        };
        RangeSet::canonicalize(&[conf], 0).unwrap()
    }

    fn own(ips: &[&str]) -> Vec<(IpAddr, String)> {
        ips.iter().map(|i| (i.parse().unwrap(), "eth0".to_string())).collect()
    }

    fn bounds(s: &RangeSet) -> Vec<(String, String)> {
        s.0.iter().map(|r| (r.start.to_string(), r.end.to_string())).collect()
    }

    #[test]
    fn ranges_are_cut_around_the_hosts_addresses() {
        let whole = set("192.168.1.0/24", None, None);
        let cut = cut_out(&whole, &own(&["192.168.1.10", "10.0.0.1", "fe80::1"])).unwrap();
        assert_eq!(
            bounds(&cut),
            [("192.168.1.1".into(), "192.168.1.9".into()), ("192.168.1.11".into(), "192.168.1.254".into())]
        );
        let edge = set("192.168.1.0/24", Some("192.168.1.10"), Some("192.168.1.12"));
        let cut = cut_out(&edge, &own(&["192.168.1.10", "192.168.1.12"])).unwrap();
        assert_eq!(bounds(&cut), [("192.168.1.11".into(), "192.168.1.11".into())]);
        let only = set("192.168.1.0/24", Some("192.168.1.10"), Some("192.168.1.10"));
        let e = cut_out(&only, &own(&["192.168.1.10"])).unwrap_err();
        assert!(e.contains("192.168.1.10 (on eth0)"), "{e}");
    }

    #[test]
    fn a_requested_host_address_names_the_interface() {
        let e = refuse("192.168.1.10".parse().unwrap(), &own(&["192.168.1.10"]), "--ip").unwrap_err();
        assert!(e.contains("--ip 192.168.1.10") && e.contains("interface eth0"), "{e}");
        assert!(refuse("192.168.1.11".parse().unwrap(), &own(&["192.168.1.10"]), "--ip").is_ok());
    }
}
