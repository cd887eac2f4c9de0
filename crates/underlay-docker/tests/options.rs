//! Docker's network options with Docker's meanings: `--aux-address` and `--internal`.
//! dockerd runs in the root namespace; the parent is a root-namespace veth whose peer is
//! in a test world.

mod support;

use std::process::Command;

use support::{
    Docker, IMAGE, Plugin, driver_name, leftover_links, records, reservations, serial, skip_without_docker, world,
};
use underlay_linux::support::{Feature, has, report_skip};

#[test]
fn aux_addresses_are_never_handed_out_and_shown_by_inspect() {
    if skip_without_docker("aux_addresses_are_never_handed_out_and_shown_by_inspect") {
        return;
    }
    let _s = serial();
    let (_w, parent) = world("dkaux");
    let state = tempfile::tempdir().unwrap();
    let plugin = Plugin::start(&driver_name("x"), state.path());
    let docker = Docker::start();
    let drv = plugin.name.as_str();
    let p = format!("parent={parent}");
    // .64-.67, of which .65 and .66 are the LAN's (a router, a printer).
    let args = ["network", "create", "--driver", drv, "--ipam-driver", drv, "--subnet=192.168.1.0/24"];
    let more =
        ["--ip-range=192.168.1.64/30", "--aux-address", "router=192.168.1.65", "--aux-address", "printer=192.168.1.66"];
    docker.run(&[&args[..], &more, &["-o", &p, "aux"]].concat()).ok();
    let inspect = docker.run(&["network", "inspect", "aux"]).ok().stdout.clone();
    assert!(
        inspect.contains("\"router\": \"192.168.1.65\"") && inspect.contains("\"printer\": \"192.168.1.66\""),
        "{inspect}"
    );
    let mut got = Vec::new();
    for name in ["a1", "a2"] {
        docker.run(&["run", "-d", "--name", name, "--network", "aux", IMAGE, "sleep", "600"]).ok();
        let f = "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}";
        got.push(docker.run(&["inspect", "-f", f, name]).ok().stdout.clone());
    }
    got.sort();
    assert_eq!(got, ["192.168.1.64", "192.168.1.67"]);
    // The range is full: the aux addresses are not handed out even then.
    let r = docker.run(&["run", "--rm", "--network", "aux", IMAGE, "true"]);
    assert_eq!(r.code, 125, "{}", r.stderr);
    let r = docker.run(&["run", "--rm", "--network", "aux", "--ip", "192.168.1.65", IMAGE, "true"]);
    assert!(r.code == 125 && r.stderr.contains("192.168.1.65") && r.stderr.contains("already in use"), "{}", r.stderr);
    docker.run(&["rm", "-f", "a1", "a2"]).ok();
    docker.run(&["network", "rm", "aux"]).ok();
    assert_eq!(reservations(state.path()), Vec::<String>::new());
    assert_eq!(leftover_links("ulj"), Vec::<String>::new());
    assert_eq!(records(state.path(), "endpoints"), Vec::<String>::new());
}

#[test]
fn internal_networks_give_no_default_route() {
    if skip_without_docker("internal_networks_give_no_default_route") {
        return;
    }
    let _s = serial();
    let (_w, parent) = world("dkint");
    let state = tempfile::tempdir().unwrap();
    let plugin = Plugin::start(&driver_name("i"), state.path());
    let docker = Docker::start();
    let drv = plugin.name.as_str();
    let p = format!("parent={parent}");
    let create = |name: &str, extra: &[&str]| {
        let args = ["network", "create", "--driver", drv, "--gateway=192.168.1.1", "-o", &p];
        docker.run(&[&args[..], extra, &[name]].concat()).ok();
    };
    let routes =
        |net: &str| docker.run(&["run", "--rm", "--network", net, IMAGE, "ip", "-4", "route"]).ok().stdout.clone();
    create("open", &["--subnet=192.168.1.0/24"]);
    assert!(routes("open").contains("default via 192.168.1.1"), "{}", routes("open"));
    docker.run(&["network", "rm", "open"]).ok();
    create("inside", &["--subnet=192.168.1.0/24", "--internal"]);
    let inspect = docker.run(&["network", "inspect", "-f", "{{.Internal}}", "inside"]).ok().stdout.clone();
    assert_eq!(inspect, "true");
    let r = routes("inside");
    assert!(!r.contains("default") && r.contains("192.168.1.0/24"), "{r}");
    docker.run(&["network", "rm", "inside"]).ok();
    assert_eq!(records(state.path(), "networks"), Vec::<String>::new());
}

#[test]
fn join_announces_the_containers_address_to_the_lan() {
    if skip_without_docker("join_announces_the_containers_address_to_the_lan") {
        return;
    }
    let _s = serial();
    let (w, parent) = world("dkann");
    let state = tempfile::tempdir().unwrap();
    let plugin = Plugin::start(&driver_name("a"), state.path());
    let docker = Docker::start();
    let drv = plugin.name.as_str();
    let p = format!("parent={parent}");
    docker.run(&["network", "create", "--driver", drv, "--subnet=192.168.1.0/24", "-o", &p, "ann"]).ok();
    let ext = w.external();
    let index = ext.netns.netlink().unwrap().link(&ext.ifname).unwrap().index;
    let listener = {
        let ns = underlay_linux::Netns::open(ext.netns.path()).unwrap();
        let wait = std::time::Duration::from_secs(5);
        std::thread::spawn(move || ns.run(move || underlay_linux::announce::capture_arp(index, wait)))
    };
    std::thread::sleep(std::time::Duration::from_millis(100));
    docker.run(&["run", "-d", "--name", "a1", "--network", "ann", "--ip", "192.168.1.77", IMAGE, "sleep", "600"]).ok();
    let link = docker.run(&["exec", "a1", "ip", "-o", "link", "show", "eth0"]).ok().stdout.clone();
    let mac = link.split_whitespace().skip_while(|w| *w != "link/ether").nth(1).unwrap_or_default().to_string();
    let mac: underlay::MacAddr = mac.parse().unwrap_or_else(|_| panic!("no MAC in {link:?}"));
    let seen = listener.join().unwrap().unwrap().unwrap();
    let ip = [192, 168, 1, 77];
    // Announcements: sender and target address both the container's, from its own MAC.
    let announced = seen.iter().filter(|p| p[14..18] == ip && p[24..28] == ip && p[8..14] == mac.0).count();
    assert!(announced >= 3, "{announced} announcements of 192.168.1.77 from {mac}: {seen:?}");
    docker.run(&["rm", "-f", "a1"]).ok();
    docker.run(&["network", "rm", "ann"]).ok();
}

#[test]
fn ipvlan_networks_reach_the_lan_or_a_clear_refusal() {
    let test = "ipvlan_networks_reach_the_lan_or_a_clear_refusal";
    if skip_without_docker(test) {
        return;
    }
    let _s = serial();
    let (w, parent) = world("dkipv");
    let state = tempfile::tempdir().unwrap();
    let plugin = Plugin::start(&driver_name("p"), state.path());
    let docker = Docker::start();
    let drv = plugin.name.as_str();
    let p = format!("parent={parent}");
    let create = |name: &str, subnet: &str, extra: &[&str]| {
        let args = ["network", "create", "--driver", drv, "--subnet", subnet, "-o", &p];
        docker.run(&[&args[..], extra, &[name]].concat())
    };
    let r = create("bad", "10.7.0.0/24", &["-o", "ipvlan_mode=l4"]);
    assert!(r.code != 0 && r.stderr.contains("ipvlan_mode=l4"), "{}", r.stderr);
    let r = create("bad", "10.7.0.0/24", &["-o", "ipvlan_mode=l2", "-o", "macvlan_mode=bridge"]);
    assert!(r.code != 0 && r.stderr.contains("exclude each other"), "{}", r.stderr);
    if !has(Feature::Ipvlan).expect("probe ipvlan") {
        let r = create("l2", "192.168.1.0/24", &["-o", "ipvlan_mode=l2"]);
        assert!(r.code != 0 && r.stderr.contains("lacks ipvlan"), "{}", r.stderr);
        assert_eq!(records(state.path(), "networks"), Vec::<String>::new());
        report_skip(test, Feature::Ipvlan);
        return;
    }
    create("l2", "192.168.1.0/24", &["--gateway=192.168.1.1", "-o", "ipvlan_mode=l2", "-o", "ipvlan_flag=bridge"]).ok();
    let run = ["run", "-d", "--name", "i1", "--network", "l2", "--ip", "192.168.1.80", IMAGE, "sleep", "600"];
    docker.run(&run).ok();
    // Read from outside with iproute2: the image's busybox ip shows no link kind.
    let pid = docker.run(&["inspect", "-f", "{{.State.Pid}}", "i1"]).ok().stdout.clone();
    let show = Command::new("nsenter").args(["-t", &pid, "-n", "ip", "-d", "-o", "link", "show", "eth0"]).output();
    let out = String::from_utf8_lossy(&show.expect("nsenter ip").stdout).into_owned();
    assert!(out.contains("ipvlan") && out.contains("mode l2"), "{out}");
    let parent_mac = std::fs::read_to_string(format!("/sys/class/net/{parent}/address")).unwrap();
    let parent_mac = parent_mac.trim();
    assert!(out.contains(parent_mac), "{out} does not carry the parent's MAC {parent_mac}");
    // On the LAN: the external device answers the container's ping, and its ARP entry
    // for the container is the parent's MAC.
    let ext = w.external();
    let ext_ip = ext.ip.addr().to_string();
    let r = docker.run(&["exec", "i1", "ping", "-c", "1", "-W", "5", &ext_ip]);
    assert_eq!(r.code, 0, "ping {ext_ip} from an ipvlan container: {}{}", r.stdout, r.stderr);
    let neigh = ext.netns.command("ip").args(["neigh", "show", "192.168.1.80"]).output().expect("ip neigh");
    let neigh = String::from_utf8_lossy(&neigh.stdout).into_owned();
    assert!(neigh.contains(parent_mac), "the LAN resolves 192.168.1.80 to {neigh:?}, not {parent_mac}");
    docker.run(&["rm", "-f", "i1"]).ok();
    let r = docker.run(&["run", "--rm", "--network", "l2", "--mac-address", "02:42:c0:a8:01:63", IMAGE, "true"]);
    assert!(r.code == 125 && r.stderr.contains("--mac-address"), "{}", r.stderr);
    docker.run(&["network", "rm", "l2"]).ok();
    create("l3", "10.8.0.0/24", &["-o", "ipvlan_mode=l3"]).ok();
    let r = docker.run(&["run", "--rm", "--network", "l3", IMAGE, "ip", "-4", "route"]).ok().stdout.clone();
    assert!(r.contains("default dev eth0"), "{r}");
    docker.run(&["network", "rm", "l3"]).ok();
    assert_eq!(leftover_links("ulj"), Vec::<String>::new());
    assert_eq!(records(state.path(), "networks"), Vec::<String>::new());
}
