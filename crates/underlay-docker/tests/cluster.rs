//! Two Docker hosts on one LAN with `--ipam-driver underlay` and the etcd store: two
//! test-world nodes, each with its own dockerd and plugin in its namespace, one etcd on
//! the LAN (in the external device's namespace).

mod support;

use std::process::{Command, Stdio};

use support::{Docker, IMAGE, Plugin, driver_name, links_in, serial, skip_without_docker};
use underlay_ipam::cluster::Cluster;
use underlay_linux::Netns;
use underlay_linux::world::{World, WorldSpec};

/// The keys under underlay-ipam's prefix whose path has `part` (`/ip4/`, `/owner/`).
fn etcd_keys(ext: &str, part: &str) -> Vec<String> {
    let out = Command::new("ip")
        .args(["netns", "exec", ext, "etcdctl", "--endpoints", "http://192.168.1.9:2379"])
        .args(["get", "--prefix", "/underlay/ipam/", "--keys-only"])
        .output()
        .expect("run etcdctl");
    assert!(out.status.success(), "etcdctl: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().filter(|l| l.contains(part)).map(str::to_string).collect()
}

fn address_of(docker: &Docker, name: &str) -> String {
    let f = "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}";
    docker.run(&["inspect", "-f", f, name]).ok().stdout.clone()
}

#[test]
fn two_docker_hosts_never_hand_out_one_address_twice() {
    if skip_without_docker("two_docker_hosts_never_hand_out_one_address_twice") {
        return;
    }
    let _s = serial();
    let w = World::build(WorldSpec::seed("dketcd").nodes(2).pods(0)).expect("build test world (run as root)");
    let ext = w.external().name().to_string();
    let ext_path = format!("/run/netns/{ext}");
    let launcher = Box::new(move |p: &str| Netns::open(&ext_path).expect("external's namespace").command(p));
    let _etcd = Cluster::start_with(1, "192.168.1.9".parse().unwrap(), &[2379, 2380], launcher, false)
        .expect("start etcd on the LAN (install etcd-server)");
    let mut hosts: Vec<(Docker, Plugin, String)> = (0..2)
        .map(|i| {
            let node = w.node(i);
            let docker = Docker::start_in(node.name());
            let state = tempfile::tempdir().unwrap().keep();
            let plugin = Plugin::start_in(&driver_name(&format!("e{i}")), &state, &docker);
            let drv = plugin.name.clone();
            let p = format!("parent={}", node.ifname);
            let n = format!("node={}", node.name());
            let mut args = vec!["network", "create", "--driver", &drv, "--ipam-driver", &drv];
            args.extend(["--subnet=192.168.1.0/24", "--gateway=192.168.1.1", "--ip-range=192.168.1.32/28"]);
            args.extend(["--ipam-opt", "etcd.endpoints=http://192.168.1.9:2379", "--ipam-opt", &n, "-o", &p]);
            // Host 0's shim takes its address from the etcd store too.
            if i == 0 {
                args.extend(["-o", "host_access=auto"]);
            }
            args.push("lan");
            docker.run(&args).ok();
            (docker, plugin, node.name().to_string())
        })
        .collect();
    // Six containers per host, all started at once.
    let children: Vec<_> = (0..12)
        .map(|k| {
            let (docker, _, _) = &hosts[k % 2];
            let name = format!("c{k}");
            docker
                .command(&["run", "-d", "--name", &name, "--network", "lan", IMAGE, "sleep", "600"])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "docker run: {}", String::from_utf8_lossy(&out.stderr));
    }
    let mut addrs: Vec<String> = (0..12).map(|k| address_of(&hosts[k % 2].0, &format!("c{k}"))).collect();
    let range: ipnet::IpNet = "192.168.1.32/28".parse().unwrap();
    for a in &addrs {
        assert!(range.contains(&a.parse::<std::net::IpAddr>().unwrap()), "{a} is outside the --ip-range");
    }
    addrs.sort();
    addrs.dedup();
    assert_eq!(addrs.len(), 12, "an address was handed out twice across the hosts: {addrs:?}");
    // Twelve containers and host 0's shim.
    assert_eq!(etcd_keys(&ext, "/ip4/").len(), 13);
    // An address the other host holds is refused.
    let taken = address_of(&hosts[0].0, "c0");
    let r = hosts[1].0.run(&["run", "--rm", "--network", "lan", "--ip", &taken, IMAGE, "true"]);
    assert_eq!(r.code, 125, "{}", r.stderr);
    assert!(r.stderr.contains(&taken), "{}", r.stderr);
    // Removing host 0's containers frees their addresses for host 1.
    for k in (0..12).step_by(2) {
        hosts[0].0.run(&["rm", "-f", &format!("c{k}")]).ok();
    }
    assert_eq!(etcd_keys(&ext, "/ip4/").len(), 7);
    // After a restart the plugin still knows where the shim's address is held.
    hosts[0].1.kill();
    hosts[0].1.restart();
    let r = hosts[1].0.run(&["run", "--rm", "--network", "lan", "--ip", &taken, IMAGE, "ip", "-o", "-4", "addr"]);
    assert!(r.ok().stdout.contains(&taken), "{}", r.stdout);
    for k in (1..12).step_by(2) {
        hosts[1].0.run(&["rm", "-f", &format!("c{k}")]).ok();
    }
    for (docker, plugin, ns) in &hosts {
        docker.run(&["network", "rm", "lan"]).ok();
        assert_eq!(links_in(Some(ns), "ulj"), Vec::<String>::new());
        let _ = std::fs::remove_dir_all(&plugin.state);
    }
    assert_eq!(etcd_keys(&ext, "/ip4/"), Vec::<String>::new());
    assert_eq!(etcd_keys(&ext, "/owner/"), Vec::<String>::new());
}
