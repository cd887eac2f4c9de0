//! The driver on the host's side, with dockerd and the plugin inside a test world's node
//! namespace (what they change there is the node's, never this host's): host access
//! through `-o host_access=`, and the host's own address never handed to a container.

mod support;

use std::process::{Child, Command, Stdio};

use support::{Docker, IMAGE, Plugin, driver_name, links_in, records, reservations, serial, skip_without_docker};
use underlay_linux::Netns;
use underlay_linux::world::{World, WorldSpec};

/// What `url` answers from inside `netns`, trying `tries` times.
fn fetch(netns: &Netns, url: &str, tries: usize) -> Option<String> {
    for _ in 0..tries {
        let out = netns.command("wget").args(["-qO-", "-T", "2", url]).output().expect("run wget");
        if out.status.success() {
            return Some(String::from_utf8_lossy(&out.stdout).trim().to_string());
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    None
}

fn httpd(docker: &Docker, name: &str, net: &str, ip: &str) {
    let args =
        ["run", "-d", "--name", name, "--network", net, "--ip", ip, IMAGE, "httpd", "-f", "-p", "9090", "-h", "/www"];
    docker.run(&args).ok();
}

/// A listener standing in for the node's sshd on port 22: busybox httpd serving `ok`.
struct Port22 {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Port22 {
    fn start(netns: &Netns) -> Port22 {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ok"), "ok\n").unwrap();
        let child = netns
            .command("busybox")
            .args(["httpd", "-f", "-p", "22", "-h"])
            .arg(dir.path())
            .stderr(Stdio::null())
            .spawn()
            .expect("start busybox httpd on port 22");
        Port22 { child, _dir: dir }
    }
}

impl Drop for Port22 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn host_access_lets_the_node_reach_its_containers_and_keeps_the_lan() {
    if skip_without_docker("host_access_lets_the_node_reach_its_containers_and_keeps_the_lan") {
        return;
    }
    let _s = serial();
    let w = World::build(WorldSpec::seed("dkha").nodes(1).pods(0)).expect("build test world (run as root)");
    let node = w.node(0);
    let ns = node.name().to_string();
    let parent = node.ifname.clone();
    let state = tempfile::tempdir().unwrap();
    let docker = Docker::start_in(&ns);
    let mut plugin = Plugin::start_in(&driver_name("ha"), state.path(), &docker);
    let drv = plugin.name.clone();
    let sysctls =
        || ["arp_ignore", "arp_announce"].map(|k| node.netns.sysctl(&format!("net/ipv4/conf/{parent}/{k}")).unwrap());
    let before = sysctls();
    let ext = w.external();
    let _port22 = Port22::start(&node.netns);
    let create = |name: &str, extra: &[&str]| {
        let p = format!("parent={parent}");
        let mut args = vec!["network", "create", "--driver", &drv, "--ipam-driver", &drv];
        args.extend_from_slice(&["--subnet=192.168.1.0/24", "--gateway=192.168.1.1", "--ip-range=192.168.1.64/26"]);
        args.extend_from_slice(&["-o", &p]);
        args.extend_from_slice(extra);
        args.push(name);
        docker.run(&args).ok();
    };

    // Without host access the node cannot reach its own container (macvlan isolation).
    create("iso", &[]);
    httpd(&docker, "c1", "iso", "192.168.1.70");
    let url1 = "http://192.168.1.70:9090/cgi-bin/whoami";
    assert!(fetch(&ext.netns, url1, 50).is_some(), "the LAN cannot reach c1: {}", docker.log());
    assert_eq!(fetch(&node.netns, url1, 2), None, "the node reached c1 without host access");
    docker.run(&["rm", "-f", "c1"]).ok();
    docker.run(&["network", "rm", "iso"]).ok();

    // With it, the node can; the LAN still reaches the node's port 22.
    create("ha", &["-o", "host_access=auto"]);
    let shims = links_in(Some(&ns), "uld");
    assert_eq!(shims.len(), 1, "{shims:?}");
    assert_eq!(sysctls(), ["1".to_string(), "2".to_string()]);
    httpd(&docker, "c2", "ha", "192.168.1.71");
    let url2 = "http://192.168.1.71:9090/cgi-bin/whoami";
    let seen = fetch(&node.netns, url2, 50).unwrap_or_else(|| panic!("the node cannot reach c2: {}", docker.log()));
    // From the shim's address, which the IPAM holds (drawn from the --ip-range).
    let shim_ip = seen.trim_start_matches("[::ffff:").trim_end_matches(']').to_string();
    assert!(
        reservations(state.path()).contains(&shim_ip),
        "{shim_ip} is not reserved: {:?}",
        reservations(state.path())
    );
    assert!(shim_ip.starts_with("192.168.1.") && shim_ip != "192.168.1.10", "{shim_ip}");
    assert_eq!(fetch(&ext.netns, "http://192.168.1.10:22/ok", 20).as_deref(), Some("ok"));
    assert!(fetch(&ext.netns, url2, 20).is_some());

    // A plugin start makes a shim that is gone (as after a reboot) again, with its routes.
    let ok = Command::new("ip").args(["-n", &ns, "link", "del", &shims[0]]).status().unwrap();
    assert!(ok.success());
    assert_eq!(fetch(&node.netns, url2, 1), None);
    // A shim no record names (a CreateNetwork that died before its record) goes.
    let stray = ["-n", &ns, "link", "add", "uldfeedfeed", "link", &parent, "type", "macvlan", "mode", "bridge"];
    assert!(Command::new("ip").args(stray).status().unwrap().success());
    plugin.kill();
    plugin.restart();
    assert_eq!(links_in(Some(&ns), "uld"), shims);
    assert!(fetch(&node.netns, url2, 20).is_some(), "the node cannot reach c2 after the shim was made again");

    // rm removes the shim, restores the sysctls and frees the shim's address.
    docker.run(&["rm", "-f", "c2"]).ok();
    docker.run(&["network", "rm", "ha"]).ok();
    assert_eq!(links_in(Some(&ns), "uld"), Vec::<String>::new());
    assert_eq!(links_in(Some(&ns), "ulj"), Vec::<String>::new());
    assert_eq!(sysctls(), before);
    assert_eq!(reservations(state.path()), Vec::<String>::new());
    assert_eq!(records(state.path(), "networks"), Vec::<String>::new());
    assert_eq!(fetch(&ext.netns, "http://192.168.1.10:22/ok", 20).as_deref(), Some("ok"));
}

#[test]
fn host_access_failures_leave_nothing() {
    if skip_without_docker("host_access_failures_leave_nothing") {
        return;
    }
    let _s = serial();
    let w = World::build(WorldSpec::seed("dkhf").nodes(1).pods(0)).expect("build test world (run as root)");
    let node = w.node(0);
    let ns = node.name().to_string();
    let state = tempfile::tempdir().unwrap();
    let docker = Docker::start_in(&ns);
    let plugin = Plugin::start_in(&driver_name("hf"), state.path(), &docker);
    let drv = plugin.name.as_str();
    let p = format!("parent={}", node.ifname);
    let create = |extra: &[&str]| {
        let mut args = vec!["network", "create", "--driver", drv, "--subnet=192.168.1.0/24", "-o", &p];
        args.extend_from_slice(extra);
        args.push("bad");
        docker.run(&args)
    };
    // A prefix would add a second route to the LAN: refused with the reason.
    let r = create(&["--ipam-driver", drv, "-o", "host_access=192.168.1.200/24"]);
    assert!(r.code != 0 && r.stderr.contains("host_access=192.168.1.200/24"), "{}", r.stderr);
    // Docker's own IPAM could hand the shim's address out: refused unless --aux-address.
    let r = create(&["-o", "host_access=192.168.1.200"]);
    assert!(r.code != 0 && r.stderr.contains("--aux-address"), "{}", r.stderr);
    let r = create(&["-o", "host_access=auto"]);
    assert!(r.code != 0 && r.stderr.contains("--ipam-driver underlay"), "{}", r.stderr);
    // The node's own address is not the shim's.
    let r = create(&["--ipam-driver", drv, "-o", "host_access=192.168.1.10"]);
    assert!(r.code != 0 && r.stderr.contains("192.168.1.10") && r.stderr.contains(&node.ifname), "{}", r.stderr);
    assert_eq!(links_in(Some(&ns), "uld"), Vec::<String>::new());
    assert_eq!(reservations(state.path()), Vec::<String>::new());
    assert_eq!(records(state.path(), "networks"), Vec::<String>::new());
    // With the address kept from Docker's IPAM it works.
    create(&["--aux-address", "shim=192.168.1.200", "-o", "host_access=192.168.1.200"]).ok();
    assert_eq!(links_in(Some(&ns), "uld").len(), 1);
    docker.run(&["network", "rm", "bad"]).ok();
    assert_eq!(links_in(Some(&ns), "uld"), Vec::<String>::new());
}

#[test]
fn the_hosts_own_address_is_never_handed_out() {
    if skip_without_docker("the_hosts_own_address_is_never_handed_out") {
        return;
    }
    let _s = serial();
    let w = World::build(WorldSpec::seed("dkown").nodes(1).pods(0)).expect("build test world (run as root)");
    let node = w.node(0);
    let ns = node.name().to_string();
    let state = tempfile::tempdir().unwrap();
    let docker = Docker::start_in(&ns);
    let plugin = Plugin::start_in(&driver_name("ow"), state.path(), &docker);
    let drv = plugin.name.as_str();
    let p = format!("parent={}", node.ifname);
    assert_eq!(node.ip.addr().to_string(), "192.168.1.10");
    // Our IPAM: a range starting at the node's own address hands out the next one.
    let args = ["network", "create", "--driver", drv, "--ipam-driver", drv, "--subnet=192.168.1.0/24"];
    docker.run(&[&args[..], &["--ip-range=192.168.1.10/31", "-o", &p, "own"]].concat()).ok();
    let r = docker.run(&["run", "--rm", "--network", "own", IMAGE, "ip", "-o", "-4", "addr", "show", "eth0"]);
    assert!(r.ok().stdout.contains("192.168.1.11/24"), "{}", r.stdout);
    // Asked for: refused, naming the address and the interface.
    let r = docker.run(&["run", "--rm", "--network", "own", "--ip", "192.168.1.10", IMAGE, "true"]);
    assert_eq!(r.code, 125, "{}", r.stderr);
    assert!(r.stderr.contains("192.168.1.10") && r.stderr.contains(&node.ifname), "{}", r.stderr);
    // Docker's own IPAM does not know the host's addresses: the driver refuses them.
    let args = ["network", "create", "--driver", drv, "--subnet=192.168.1.0/24", "-o", &p, "foreign"];
    let r = docker.run(&args);
    // The same parent and subnet as "own" overlap; make room first.
    assert!(r.code != 0 && r.stderr.contains("overlaps"), "{}", r.stderr);
    docker.run(&["network", "rm", "own"]).ok();
    docker.run(&args).ok();
    let r = docker.run(&["run", "--rm", "--network", "foreign", "--ip", "192.168.1.10", IMAGE, "true"]);
    assert_eq!(r.code, 125, "{}", r.stderr);
    assert!(r.stderr.contains("192.168.1.10") && r.stderr.contains(&node.ifname), "{}", r.stderr);
    assert_eq!(links_in(Some(&ns), "ulj"), Vec::<String>::new());
    assert_eq!(records(state.path(), "endpoints"), Vec::<String>::new());
    docker.run(&["network", "rm", "foreign"]).ok();
    assert_eq!(reservations(state.path()), Vec::<String>::new());
}
