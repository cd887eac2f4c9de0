//! IPv4 conflict detection through Docker (issue 15): an address a device on the LAN
//! already uses is never given to a container. Our IPAM probes what it picks, holds a
//! used address for the device and picks another; a requested one is refused naming the
//! device, with our IPAM or Docker's. dockerd runs in the root namespace; the parent is
//! a root-namespace veth whose peer is in a test world.

mod support;

use support::{Docker, IMAGE, Plugin, driver_name, leftover_links, records, serial, skip_without_docker, world};

#[test]
fn an_address_a_lan_device_uses_is_never_given_to_a_container() {
    if skip_without_docker("an_address_a_lan_device_uses_is_never_given_to_a_container") {
        return;
    }
    let _s = serial();
    let (w, parent) = world("dkcd");
    // The external device (192.168.1.9) also takes .64, as a printer set up by hand would.
    let ext = w.external();
    ext.also_use("192.168.1.64/24".parse().unwrap()).unwrap();
    let mac = ext.mac.to_string();

    let state = tempfile::tempdir().unwrap();
    let plugin = Plugin::start(&driver_name("cd"), state.path());
    let docker = Docker::start();
    let drv = plugin.name.as_str();
    let p = format!("parent={parent}");
    let args = ["network", "create", "--driver", drv, "--subnet=192.168.1.0/24", "-o", &p];
    docker.run(&[&args[..], &["--ipam-driver", drv, "--ip-range=192.168.1.64/30", "cd"]].concat()).ok();
    let f = "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}";
    docker.run(&["run", "-d", "--name", "c1", "--network", "cd", IMAGE, "sleep", "600"]).ok();
    assert_eq!(docker.run(&["inspect", "-f", f, "c1"]).ok().stdout.trim(), "192.168.1.65");
    let hold = std::fs::read_dir(state.path().join("ipam"))
        .unwrap()
        .flatten()
        .find_map(|d| std::fs::read_to_string(d.path().join("192.168.1.64")).ok())
        .expect("a record for 192.168.1.64");
    assert!(hold.starts_with(&format!("foreign-hold {mac} ")), "store record: {hold:?}");
    // Asked for by hand: refused, naming the device; nothing left.
    let r = docker.run(&["run", "--rm", "--network", "cd", "--ip", "192.168.1.64", IMAGE, "true"]);
    assert!(r.code == 125 && r.stderr.contains("192.168.1.64") && r.stderr.contains(&mac), "{}", r.stderr);
    docker.run(&["rm", "-f", "c1"]).ok();
    docker.run(&["network", "rm", "cd"]).ok();

    // Docker's own IPAM: the driver probes at CreateEndpoint and can only refuse.
    docker.run(&[&args[..], &["cd2"]].concat()).ok();
    let r = docker.run(&["run", "--rm", "--network", "cd2", "--ip", "192.168.1.64", IMAGE, "true"]);
    assert!(r.code == 125 && r.stderr.contains("192.168.1.64") && r.stderr.contains(&mac), "{}", r.stderr);
    docker.run(&["network", "rm", "cd2"]).ok();

    // Switched off, the address is taken as asked (what Docker's own driver always does).
    docker.run(&[&args[..], &["-o", "conflict_detection=false", "cd3"]].concat()).ok();
    docker.run(&["run", "--rm", "--network", "cd3", "--ip", "192.168.1.64", IMAGE, "true"]).ok();
    docker.run(&["network", "rm", "cd3"]).ok();
    assert_eq!(leftover_links("ulj"), Vec::<String>::new());
    assert_eq!(records(state.path(), "endpoints"), Vec::<String>::new());
}

#[test]
fn stable_mac_keeps_a_containers_mac_across_runs() {
    if skip_without_docker("stable_mac_keeps_a_containers_mac_across_runs") {
        return;
    }
    let _s = serial();
    let (_w, parent) = world("dkmac");
    let state = tempfile::tempdir().unwrap();
    let plugin = Plugin::start(&driver_name("sm"), state.path());
    let docker = Docker::start();
    let drv = plugin.name.as_str();
    let p = format!("parent={parent}");
    let args = ["network", "create", "--driver", drv, "--subnet=192.168.1.0/24", "-o", &p];
    docker.run(&[&args[..], &["-o", "stable_mac=true", "sm"]].concat()).ok();
    let mac_of = |ip: &str| {
        let out =
            docker.run(&["run", "--rm", "--network", "sm", "--ip", ip, IMAGE, "ip", "-o", "link", "show", "eth0"]);
        let text = out.ok().stdout.clone();
        text.split_whitespace().skip_while(|w| *w != "link/ether").nth(1).unwrap_or_default().to_string()
    };
    let first = mac_of("192.168.1.70");
    assert!(!first.is_empty());
    assert_eq!(mac_of("192.168.1.70"), first, "run again with the same --ip: the same MAC");
    assert_ne!(mac_of("192.168.1.71"), first, "another container: another MAC");
    // Locally administered unicast.
    let b0 = u8::from_str_radix(&first[..2], 16).unwrap();
    assert_eq!(b0 & 0x03, 0x02, "{first}");
    // A MAC another endpoint on the parent has is refused, never shared.
    docker.run(&["run", "-d", "--name", "m1", "--network", "sm", "--ip", "192.168.1.70", IMAGE, "sleep", "600"]).ok();
    let r = docker.run(&["run", "--rm", "--network", "sm", "--mac-address", &first, IMAGE, "true"]);
    assert!(r.code == 125 && r.stderr.contains(&first) && r.stderr.contains("already used"), "{}", r.stderr);
    docker.run(&["rm", "-f", "m1"]).ok();
    docker.run(&["network", "rm", "sm"]).ok();
    assert_eq!(leftover_links("ulj"), Vec::<String>::new());
    assert_eq!(records(state.path(), "endpoints"), Vec::<String>::new());
}
