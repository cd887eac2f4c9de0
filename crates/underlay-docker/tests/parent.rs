//! `-o parent=IF.VID`: the 802.1Q sub-interface is made for the first network on it,
//! removed with the last, never when it existed before, and made again at plugin start.
//! dockerd and the plugin run inside a test world's node namespace. This kernel may
//! lack 802.1Q or dummy devices: then the refusal is checked and the rest reported as a
//! skip, which the full-kernel lane (scripts/kernel-lane, with a dockerd in its guest) runs.

mod support;

use std::process::Command;

use support::{Docker, IMAGE, Plugin, driver_name, links_in, records, serial, skip_without_docker};
use underlay_linux::support::{Feature, has, report_skip};
use underlay_linux::world::{World, WorldSpec};

#[test]
fn vlan_parents_are_made_and_removed_with_the_last_network() {
    let test = "vlan_parents_are_made_and_removed_with_the_last_network";
    if skip_without_docker(test) {
        return;
    }
    let _s = serial();
    let w = World::build(WorldSpec::seed("dkvlan").nodes(1).pods(0)).expect("build test world (run as root)");
    let node = w.node(0);
    let ns = node.name().to_string();
    let state = tempfile::tempdir().unwrap();
    let docker = Docker::start_in(&ns);
    let mut plugin = Plugin::start_in(&driver_name("v"), state.path(), &docker);
    let drv = plugin.name.clone();
    let vlan = format!("{}.10", node.ifname);
    let create = |name: &str, subnet: &str, parent: &str| {
        let p = format!("parent={parent}");
        docker.run(&["network", "create", "--driver", &drv, "--subnet", subnet, "-o", &p, name])
    };
    if !has(Feature::Vlan).expect("probe 802.1Q") {
        let r = create("v10", "10.10.0.0/24", &vlan);
        assert!(r.code != 0 && r.stderr.contains("802.1Q") && r.stderr.contains(&vlan), "{}", r.stderr);
        assert_eq!(links_in(Some(&ns), &vlan), Vec::<String>::new());
        assert_eq!(records(state.path(), "networks"), Vec::<String>::new());
        report_skip(test, Feature::Vlan);
        return;
    }
    create("v10a", "10.10.0.0/24", &vlan).ok();
    create("v10b", "10.10.1.0/24", &vlan).ok();
    assert_eq!(links_in(Some(&ns), &vlan), vec![vlan.clone()]);
    docker.run(&["run", "--rm", "--network", "v10a", IMAGE, "true"]).ok();
    docker.run(&["network", "rm", "v10a"]).ok();
    assert_eq!(links_in(Some(&ns), &vlan), vec![vlan.clone()], "removed while v10b uses it");
    // Gone after a reboot: the plugin makes it again at start.
    assert!(Command::new("ip").args(["-n", &ns, "link", "del", &vlan]).status().unwrap().success());
    plugin.kill();
    plugin.restart();
    assert_eq!(links_in(Some(&ns), &vlan), vec![vlan.clone()]);
    docker.run(&["network", "rm", "v10b"]).ok();
    assert_eq!(links_in(Some(&ns), &vlan), Vec::<String>::new());
    // A sub-interface that existed before is used and kept.
    let own = format!("{}.11", node.ifname);
    let add = ["-n", &ns, "link", "add", "link", &node.ifname, "name", &own, "type", "vlan", "id", "11"];
    assert!(Command::new("ip").args(add).status().unwrap().success());
    create("v11", "10.11.0.0/24", &own).ok();
    docker.run(&["network", "rm", "v11"]).ok();
    assert_eq!(links_in(Some(&ns), &own), vec![own.clone()]);
    assert_eq!(records(state.path(), "networks"), Vec::<String>::new());
}

#[test]
fn internal_networks_without_a_parent_get_a_dummy_of_their_own() {
    let test = "internal_networks_without_a_parent_get_a_dummy_of_their_own";
    if skip_without_docker(test) {
        return;
    }
    let _s = serial();
    let w = World::build(WorldSpec::seed("dkdum").nodes(1).pods(0)).expect("build test world (run as root)");
    let ns = w.node(0).name().to_string();
    let state = tempfile::tempdir().unwrap();
    let docker = Docker::start_in(&ns);
    let plugin = Plugin::start_in(&driver_name("d"), state.path(), &docker);
    let drv = plugin.name.as_str();
    let r = docker.run(&["network", "create", "--driver", drv, "--internal", "--subnet=10.12.0.0/24", "lonely"]);
    if !has(Feature::Dummy).expect("probe dummy") {
        assert!(r.code != 0 && r.stderr.contains("dummy") && r.stderr.contains("-o parent"), "{}", r.stderr);
        assert_eq!(links_in(Some(&ns), "dm-"), Vec::<String>::new());
        assert_eq!(records(state.path(), "networks"), Vec::<String>::new());
        report_skip(test, Feature::Dummy);
        return;
    }
    r.ok();
    let id = docker.run(&["network", "inspect", "-f", "{{.Id}}", "lonely"]).ok().stdout.clone();
    let dummy = format!("dm-{}", &id[..12]);
    assert_eq!(links_in(Some(&ns), "dm-"), vec![dummy.clone()]);
    let r = docker.run(&["run", "--rm", "--network", "lonely", IMAGE, "ip", "-4", "route"]).ok().stdout.clone();
    assert!(!r.contains("default") && r.contains("10.12.0.0/24"), "{r}");
    docker.run(&["network", "rm", "lonely"]).ok();
    assert_eq!(links_in(Some(&ns), "dm-"), Vec::<String>::new());
    assert_eq!(records(state.path(), "networks"), Vec::<String>::new());
    assert_eq!(records(state.path(), "endpoints"), Vec::<String>::new());
}
