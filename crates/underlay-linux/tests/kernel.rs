//! Kernel tests: each builds its own world of namespaces and removes it, pass or fail.
//! They need root (CAP_NET_ADMIN, CAP_SYS_ADMIN for mounts); without it they fail
//! loudly rather than pass silently.

use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;
use underlay::MacAddr;
use underlay_linux::addr::AddressOptions;
use underlay_linux::reach::{echo, echo_server, tcp_reachable};
use underlay_linux::route::{Route, SCOPE_LINK};
use underlay_linux::world::{NODE_IF, World, WorldSpec};
use underlay_linux::{MacvlanMode, MacvlanSpec, Netlink, Netns};

fn world(spec: WorldSpec) -> World {
    World::build(spec).unwrap_or_else(|e| panic!("cannot build the test world (run the tests as root): {e}"))
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

/// A veth pair `parent` / `parent-peer` inside `ns`, the parent up.
fn veth_parent(nl: &mut Netlink, parent: &str) -> u32 {
    nl.create_veth(parent, &format!("{parent}p"), None).unwrap();
    let l = nl.link(parent).unwrap();
    nl.set_up(l.index, true).unwrap();
    l.index
}

#[test]
fn macvlan_in_every_mode_reads_back_its_mode() {
    let w = world(WorldSpec::bare("mvmodes", 1));
    let mut nl = w.switch.netlink().unwrap();
    let sources: Vec<MacAddr> = vec!["02:00:00:00:00:01".parse().unwrap(), "02:00:00:00:00:02".parse().unwrap()];
    for (i, mode) in MacvlanMode::ALL.iter().copied().enumerate() {
        // passthru takes the parent for itself, so each mode gets its own parent.
        let parent = veth_parent(&mut nl, &format!("par{i}"));
        let name = format!("mv-{mode}");
        let mut spec = MacvlanSpec::new(&name, parent, mode);
        spec.mtu = 1400;
        if mode == MacvlanMode::Source {
            spec.sources = &sources;
        }
        nl.create_macvlan(&spec).unwrap();
        let link = nl.link(&name).unwrap();
        assert!(link.is_macvlan(), "{link:?}");
        assert_eq!(link.macvlan_mode(), Some(mode));
        assert_eq!(link.parent, Some(parent));
        assert_eq!(link.mtu, 1400);
        if mode == MacvlanMode::Source {
            assert_eq!(link.macvlan.as_ref().unwrap().sources, sources);
        }
    }
    // A second macvlan on a passthru parent is refused by the kernel, with its reason.
    let passthru_parent = nl.link("par3").unwrap().index;
    let err = nl.create_macvlan(&MacvlanSpec::new("mv-extra", passthru_parent, MacvlanMode::Bridge)).unwrap_err();
    assert!(err.to_string().contains("mv-extra"), "{err}");
}

#[test]
fn macvlan_created_in_a_namespace_then_renamed_keeps_its_settings() {
    let w = world(WorldSpec::bare("mvmove", 1));
    let pod = &w.pods[0];
    let mut host = w.switch.netlink().unwrap();
    let parent = veth_parent(&mut host, "enp0s3");
    let mac: MacAddr = "02:42:c0:a8:01:64".parse().unwrap();
    let mut spec = MacvlanSpec::new("tmp1234", parent, MacvlanMode::Bridge);
    spec.mac = Some(mac);
    spec.netns = Some(pod.fd());
    host.create_macvlan(&spec).unwrap();
    assert!(host.link_by_name("tmp1234").unwrap().is_none(), "created directly in the pod namespace");
    let mut inside = pod.netlink().unwrap();
    let l = inside.link("tmp1234").unwrap();
    inside.rename(l.index, "eth0").unwrap();
    let l = inside.link("eth0").unwrap();
    assert_eq!(l.mac, Some(mac));
    assert_eq!(l.macvlan_mode(), Some(MacvlanMode::Bridge));
    assert!(l.link_netnsid.is_some(), "the parent lives in another namespace");
    // And moving an existing link: the veth peer goes into the pod, renamed on arrival.
    let peer = host.link("enp0s3p").unwrap();
    host.move_to_netns(peer.index, pod.fd()).unwrap();
    let moved = inside.link("enp0s3p").unwrap();
    inside.rename(moved.index, "net1").unwrap();
    inside.set_mac(moved.index, "02:00:00:00:00:aa".parse().unwrap()).unwrap();
    inside.set_mtu(moved.index, 1300).unwrap();
    inside.set_up(moved.index, true).unwrap();
    let l = inside.link("net1").unwrap();
    assert_eq!((l.kind.as_deref(), l.mtu, l.up), (Some("veth"), 1300, true));
    assert_eq!(l.mac.unwrap().to_string(), "02:00:00:00:00:aa");
    assert!(inside.link_by_name("enp0s3p").unwrap().is_none());
    inside.delete_link(l.index).unwrap();
    assert!(!inside.delete_link_by_name("net1").unwrap(), "already gone");
}

#[test]
fn addresses_and_routes_both_families_read_back() {
    let w = world(WorldSpec::bare("addrroute", 1));
    let pod = &w.pods[0];
    pod.set_sysctl("net/ipv6/conf/all/disable_ipv6", "0").unwrap();
    let mut nl = pod.netlink().unwrap();
    let idx = veth_parent(&mut nl, "eth0");
    nl.add_address(idx, net("192.168.1.100/24"), AddressOptions::default()).unwrap();
    nl.add_address(idx, net("2001:db8::64/64"), AddressOptions { nodad: true, ..Default::default() }).unwrap();
    let addrs = nl.addresses(Some(idx)).unwrap();
    let v4 = addrs.iter().find(|a| a.net == net("192.168.1.100/24")).expect("v4 address");
    assert!(!v4.is_tentative());
    let v6 = addrs.iter().find(|a| a.net == net("2001:db8::64/64")).expect("v6 address");
    assert!(v6.is_nodad() && !v6.is_tentative() && !v6.is_dadfailed(), "{v6:?}");
    let dup = nl.add_address(idx, net("192.168.1.100/24"), AddressOptions::default()).unwrap_err();
    assert!(dup.to_string().contains("192.168.1.100/24"), "{dup}");

    let gw4: IpAddr = "192.168.1.1".parse().unwrap();
    let mut default4 = Route::new(net("0.0.0.0/0"), Some(gw4), Some(idx));
    default4.metric = Some(100);
    let mut in_table = Route::new(net("10.20.0.0/16"), Some(gw4), Some(idx));
    in_table.table = 1000;
    in_table.mtu = Some(1400);
    in_table.advmss = Some(1360);
    let onlink = Route::new(net("172.16.0.0/12"), None, Some(idx));
    let v6 = Route::new(net("2001:db8:1::/48"), Some("2001:db8::1".parse().unwrap()), Some(idx));
    for r in [&default4, &in_table, &onlink, &v6] {
        nl.add_route(r).unwrap();
    }
    let routes = nl.routes().unwrap();
    let find = |dst: &str| routes.iter().find(|r| r.dst == net(dst)).unwrap_or_else(|| panic!("{dst} in {routes:#?}"));
    assert_eq!(find("0.0.0.0/0").metric, Some(100));
    assert_eq!(find("0.0.0.0/0").gw, Some(gw4));
    let t = find("10.20.0.0/16");
    assert_eq!((t.table, t.mtu, t.advmss), (1000, Some(1400), Some(1360)));
    assert_eq!(find("172.16.0.0/12").scope, SCOPE_LINK);
    assert_eq!(find("2001:db8:1::/48").gw, v6.gw);
    assert_eq!(nl.default_route().unwrap().unwrap().oif, Some(idx));
    nl.del_route(&in_table).unwrap();
    assert!(nl.routes().unwrap().iter().all(|r| r.dst != net("10.20.0.0/16")));
    nl.del_address(idx, net("192.168.1.100/24")).unwrap();
    assert!(nl.addresses(Some(idx)).unwrap().iter().all(|a| a.net != net("192.168.1.100/24")));
}

#[test]
fn the_switch_carries_tcp_between_two_nodes() {
    let w = world(WorldSpec::seed("switch").pods(0));
    let (n1, n2) = (w.node(0), w.node(1));
    let (port, server) = echo_server(&n2.netns, n2.ip.addr()).unwrap();
    let got = echo(&n1.netns, n2.ip.addr(), port, b"hello over the switch", Duration::from_secs(5)).unwrap();
    assert_eq!(got, b"hello over the switch");
    server.join().unwrap();
    // Both sides learnt each other's MAC through ARP on the LAN.
    let mut nl = n1.netns.netlink().unwrap();
    let neigh = nl.neighbours(None).unwrap();
    assert!(neigh.iter().any(|n| n.ip == n2.ip.addr() && n.mac == Some(n2.mac)), "{neigh:?}");
    assert!(tcp_reachable(&w.external().netns, n1.ip.addr(), 1, Duration::from_secs(3)).unwrap());
}

#[test]
fn a_switch_that_drops_unknown_macs_blocks_a_new_mac_until_allowed() {
    let w = world(WorldSpec::seed("portsec").pods(1).drop_unknown_macs(true));
    let (n1, n2) = (w.node(0), w.node(1));
    assert!(tcp_reachable(&n1.netns, n2.ip.addr(), 1, Duration::from_secs(3)).unwrap(), "known MACs pass");
    // A macvlan behind node1 sends from a MAC the switch has never been told about.
    let mut nl = n1.netns.netlink().unwrap();
    let parent = nl.link(NODE_IF).unwrap();
    let mut spec = MacvlanSpec::new("mv0", parent.index, MacvlanMode::Bridge);
    spec.netns = Some(w.pods[0].fd());
    nl.create_macvlan(&spec).unwrap();
    let mut pod = w.pods[0].netlink().unwrap();
    let mv = pod.link("mv0").unwrap();
    pod.add_address(mv.index, net("192.168.1.150/24"), AddressOptions::default()).unwrap();
    pod.set_up(mv.index, true).unwrap();
    assert!(!tcp_reachable(&w.pods[0], n2.ip.addr(), 1, Duration::from_millis(1500)).unwrap(), "unknown MAC dropped");
    w.allow_mac(&n1.port, mv.mac.unwrap()).unwrap();
    assert!(tcp_reachable(&w.pods[0], n2.ip.addr(), 1, Duration::from_secs(3)).unwrap(), "allowed MAC passes");
}

#[test]
fn hairpin_is_set_on_switch_ports() {
    let w = world(WorldSpec::seed("hairpin").nodes(1).pods(0).hairpin(true));
    let out = w.switch.command("bridge").args(["-d", "link", "show", "dev", &w.node(0).port]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("hairpin on"), "{text}");
    w.set_hairpin(&w.node(0).port, false).unwrap();
    let out = w.switch.command("bridge").args(["-d", "link", "show", "dev", &w.node(0).port]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("hairpin off"));
}

#[test]
fn sysctls_are_per_namespace() {
    let w = world(WorldSpec::bare("sysctl", 2));
    w.pods[0].set_sysctl("net/ipv4/ip_forward", "1").unwrap();
    assert_eq!(w.pods[0].sysctl("net/ipv4/ip_forward").unwrap(), "1");
    assert_eq!(w.pods[1].sysctl("net/ipv4/ip_forward").unwrap(), "0");
    assert!(w.pods[0].sysctl("net/../../etc/passwd").is_err());
}

#[test]
fn netns_open_refuses_files_that_are_not_namespaces() {
    let err = Netns::open("/etc/hostname").unwrap_err();
    assert!(err.to_string().contains("not a network namespace"), "{err}");
    let err = Netns::open("/run/netns/does-not-exist-underlay").unwrap_err();
    assert!(err.is_not_found(), "{err}");
    let here = Netns::current().unwrap();
    let w = world(WorldSpec::bare("nsopen", 1));
    let again = Netns::open(w.pods[0].path()).unwrap();
    assert!(again.same_as(&w.pods[0]).unwrap());
    assert!(!again.same_as(&here).unwrap());
}

#[test]
fn a_world_is_removed_even_when_its_test_panics() {
    let names = std::panic::catch_unwind(|| {
        let w = world(WorldSpec::seed("panics").nodes(1).pods(1));
        let names: Vec<String> = w.hosts().map(|h| h.name().to_string()).collect();
        assert!(names.iter().all(|n| Netns::exists(n)));
        std::panic::panic_any(names);
    })
    .unwrap_err();
    let names = names.downcast::<Vec<String>>().unwrap();
    assert!(!names.is_empty());
    for n in names.iter() {
        assert!(!Netns::exists(n), "{n} left behind");
    }
}

#[test]
fn feature_probes_answer_and_leave_nothing() {
    use underlay_linux::support::{Feature, has};
    for f in [Feature::Ipvlan, Feature::Vlan] {
        // Either answer is fine; the probe must answer without error or leftovers.
        println!("{}: {}", f.name(), if has(f).unwrap() { "supported".to_string() } else { f.missing() });
    }
}

#[test]
fn ipvlan_in_every_mode_reads_back() {
    use underlay_linux::ipvlan::{IpvlanFlag, IpvlanMode, IpvlanSpec};
    use underlay_linux::support::{Feature, has};
    if !has(Feature::Ipvlan).unwrap() {
        return underlay_linux::support::report_skip("ipvlan_in_every_mode_reads_back", Feature::Ipvlan);
    }
    let w = world(WorldSpec::bare("ipvlan", 1));
    let mut nl = w.switch.netlink().unwrap();
    let parent = veth_parent(&mut nl, "par0");
    for (i, mode) in [IpvlanMode::L2, IpvlanMode::L3, IpvlanMode::L3s].into_iter().enumerate() {
        for (j, flag) in [IpvlanFlag::Bridge, IpvlanFlag::Private, IpvlanFlag::Vepa].into_iter().enumerate() {
            let name = format!("iv{i}{j}");
            nl.create_ipvlan(&IpvlanSpec { name: &name, parent, mode, flag, mtu: 0, netns: None }).unwrap();
            let l = nl.link(&name).unwrap();
            assert_eq!(l.kind.as_deref(), Some("ipvlan"));
            assert_eq!(l.ipvlan.map(|i| (i.mode, i.flag)), Some((mode, flag)));
        }
    }
}

#[test]
fn vlan_sub_interface_reads_back_its_id() {
    use underlay_linux::support::{Feature, has};
    if !has(Feature::Vlan).unwrap() {
        return underlay_linux::support::report_skip("vlan_sub_interface_reads_back_its_id", Feature::Vlan);
    }
    let w = world(WorldSpec::bare("vlan", 1));
    let mut nl = w.switch.netlink().unwrap();
    let parent = veth_parent(&mut nl, "enp0s3");
    nl.create_vlan("enp0s3.10", parent, 10).unwrap();
    assert_eq!(nl.link("enp0s3.10").unwrap().vlan_id, Some(10));
}

/// The Command owns what it needs: dropping the Netns it came from before the spawn
/// still starts the process in that namespace (it used to setns a closed descriptor).
#[test]
fn a_command_outlives_the_netns_it_came_from() {
    use std::os::unix::fs::MetadataExt;
    let w = world(WorldSpec::bare("nscmd", 1));
    let ns = Netns::open(w.switch.path()).unwrap();
    let mut cmd = ns.command("readlink");
    cmd.arg("/proc/self/ns/net");
    drop(ns);
    let out = cmd.output().expect("the command starts in the namespace");
    let inode = std::fs::metadata(w.switch.path()).unwrap().ino();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("net:[{inode}]"));
}
