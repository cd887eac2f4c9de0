//! Docker Engine 20.10 as the real client: the seed's commands with `--driver <ours>`,
//! failure paths, restarts, concurrent runs, and hostile requests on the socket.
//! dockerd runs in the root namespace; the parent is a root-namespace veth whose peer
//! is in a test world, so all traffic stays in that world.

mod support;

use support::{
    Docker, IMAGE, Plugin, driver_name, foreign_holds, leftover_links, post, records, reservations, serial,
    skip_without_docker, world,
};

#[test]
fn seed_commands_put_container1_on_the_lan() {
    if skip_without_docker("seed_commands_put_container1_on_the_lan") {
        return;
    }
    let _s = serial();
    let (w, parent) = world("dkseed");
    let state = tempfile::tempdir().unwrap();
    let plugin = Plugin::start(&driver_name("s"), state.path());
    let docker = Docker::start();
    let drv = plugin.name.as_str();
    docker
        .run(&[
            "network",
            "create",
            "--driver",
            drv,
            "--subnet=192.168.1.0/24",
            "--gateway=192.168.1.1",
            "-o",
            &format!("parent={parent}"),
            "my-macvlan-network",
        ])
        .ok();
    docker
        .run(&[
            "run",
            "--network",
            "my-macvlan-network",
            "--ip",
            "192.168.1.100",
            "-d",
            "--name",
            "container1",
            IMAGE,
            "httpd",
            "-f",
            "-p",
            "9090",
            "-h",
            "/www",
        ])
        .ok();
    let ext = w.external();
    let mut seen = String::new();
    for _ in 0..50 {
        let out = ext
            .netns
            .command("wget")
            .args(["-qO-", "-T", "2", "http://192.168.1.100:9090/cgi-bin/whoami"])
            .output()
            .unwrap();
        // busybox httpd listens on v6 and prints v4 peers in mapped form.
        seen = String::from_utf8_lossy(&out.stdout)
            .trim()
            .trim_start_matches("[::ffff:")
            .trim_end_matches(']')
            .to_string();
        if out.status.success() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // No NAT: container1 sees the external device's own address.
    assert_eq!(seen, ext.ip.addr().to_string(), "container1:9090 answered {seen:?}; {}", docker.log());
    // ARP for .100 is answered by the container's own MAC.
    // Asked over netlink: a container's /sys may be the host's (runc bind-mounts it when
    // it cannot mount a sysfs of its own, as in CI's chroot).
    let link = docker.run(&["exec", "container1", "ip", "-o", "link", "show", "eth0"]).ok().stdout.clone();
    let mac = link.split_whitespace().skip_while(|w| *w != "link/ether").nth(1).unwrap_or_default().to_string();
    assert!(!mac.is_empty(), "no MAC in {link:?}");
    let neigh = ext.netns.command("ip").args(["neigh", "show", "192.168.1.100"]).output().unwrap();
    let neigh = String::from_utf8_lossy(&neigh.stdout).to_string();
    assert!(neigh.contains(&mac), "external's ARP entry {neigh:?} is not container1's MAC {mac}");
    assert_ne!(mac, w.node(0).mac.to_string());
    // The options are visible in inspect.
    let inspect = docker.run(&["network", "inspect", "my-macvlan-network"]).ok().stdout.clone();
    assert!(inspect.contains(&format!("\"parent\": \"{parent}\"")), "{inspect}");
    assert!(inspect.contains(&format!("\"Driver\": \"{drv}\"")), "{inspect}");
    // rm removes everything made for it.
    docker.run(&["rm", "-f", "container1"]).ok();
    docker.run(&["network", "rm", "my-macvlan-network"]).ok();
    assert_eq!(leftover_links("ulj"), Vec::<String>::new());
    assert_eq!(records(state.path(), "networks"), Vec::<String>::new());
    assert_eq!(records(state.path(), "endpoints"), Vec::<String>::new());
}

#[test]
fn failures_are_explained_and_leave_nothing() {
    if skip_without_docker("failures_are_explained_and_leave_nothing") {
        return;
    }
    let _s = serial();
    let (_w, parent) = world("dkfail");
    let state = tempfile::tempdir().unwrap();
    let plugin = Plugin::start(&driver_name("f"), state.path());
    let docker = Docker::start();
    let drv = plugin.name.as_str();
    let p = format!("parent={parent}");
    let create = |name: &str, extra: &[&str]| {
        let mut args = vec!["network", "create", "--driver", drv];
        args.extend_from_slice(extra);
        args.push(name);
        docker.run(&args)
    };
    create("n1", &["--ipam-driver", drv, "--subnet=192.168.1.0/24", "--gateway=192.168.1.1", "-o", &p]).ok();
    docker.run(&["run", "-d", "--name", "c1", "--network", "n1", "--ip", "192.168.1.50", IMAGE, "sleep", "600"]).ok();
    // --ip taken: exit 125 and a message naming the address.
    let r = docker.run(&["run", "--rm", "--network", "n1", "--ip", "192.168.1.50", IMAGE, "true"]);
    assert_eq!(r.code, 125, "{}", r.stderr);
    assert!(r.stderr.contains("192.168.1.50") && r.stderr.contains("already in use"), "{}", r.stderr);
    // Overlapping subnet on the same parent.
    let r = create("n2", &["--subnet=192.168.1.128/25", "-o", &p]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("overlaps"), "{}", r.stderr);
    // Missing parent, loopback parent, MTU above the parent's, unknown option.
    let r = create("n3", &["--subnet=10.9.0.0/24", "-o", "parent=nosuch0"]);
    assert!(r.code != 0 && r.stderr.contains("nosuch0") && r.stderr.contains("does not exist"), "{}", r.stderr);
    let r = create("n4", &["--subnet=10.9.1.0/24", "-o", "parent=lo"]);
    assert!(r.code != 0 && r.stderr.contains("loopback"), "{}", r.stderr);
    let r = create("n5", &["--subnet=10.9.2.0/24", "-o", &p, "-o", "com.docker.network.driver.mtu=9000"]);
    assert!(r.code != 0 && r.stderr.contains("9000") && r.stderr.contains("MTU 1500"), "{}", r.stderr);
    let r = create("n6", &["--subnet=10.9.3.0/24", "-o", &p, "-o", "macvlan_mode=bridged"]);
    assert!(r.code != 0 && r.stderr.contains("macvlan_mode=bridged"), "{}", r.stderr);
    // A Join that fails (its parent vanished after the network was made): exit 125,
    // and the DeleteEndpoint that follows leaves no link and no reservation.
    let ip = |a: &[&str]| std::process::Command::new("ip").args(a).status().unwrap().success();
    assert!(ip(&["link", "add", "ulgone0", "type", "veth", "peer", "name", "ulgone1"]));
    create("n8", &["--ipam-driver", drv, "--subnet=10.9.5.0/24", "-o", "parent=ulgone0"]).ok();
    assert!(ip(&["link", "del", "ulgone0"]));
    let r = docker.run(&["run", "--rm", "--network", "n8", IMAGE, "true"]);
    assert_eq!(r.code, 125, "{}", r.stderr);
    assert!(r.stderr.contains("ulgone0"), "{}", r.stderr);
    docker.run(&["rm", "-f", "c1"]).ok();
    // Only the gateways of n1 and n8 stay reserved, no link, no endpoint.
    assert_eq!(reservations(state.path()), vec!["10.9.5.1".to_string(), "192.168.1.1".to_string()]);
    assert_eq!(leftover_links("ulj"), Vec::<String>::new());
    assert_eq!(records(state.path(), "endpoints"), Vec::<String>::new());
    docker.run(&["network", "rm", "n1", "n8"]).ok();
    assert_eq!(reservations(state.path()), Vec::<String>::new());
    assert_eq!(records(state.path(), "networks"), Vec::<String>::new());
}

#[test]
fn twenty_concurrent_runs_get_distinct_addresses() {
    if skip_without_docker("twenty_concurrent_runs_get_distinct_addresses") {
        return;
    }
    let _s = serial();
    let (_w, parent) = world("dkconc");
    let state = tempfile::tempdir().unwrap();
    let plugin = Plugin::start(&driver_name("c"), state.path());
    let docker = Docker::start();
    let drv = plugin.name.as_str();
    docker
        .run(&[
            "network",
            "create",
            "--driver",
            drv,
            "--ipam-driver",
            drv,
            "--subnet=192.168.1.0/24",
            "-o",
            &format!("parent={parent}"),
            "conc",
        ])
        .ok();
    let children: Vec<_> = (0..20)
        .map(|_| {
            docker
                .command(&["run", "--rm", "--network", "conc", IMAGE, "sh", "-c", "ip -o -4 addr show eth0; sleep 3"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut addrs = Vec::new();
    for c in children {
        let out = c.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(out.status.success(), "{text} {}", String::from_utf8_lossy(&out.stderr));
        let addr = text.split_whitespace().skip_while(|w| *w != "inet").nth(1).unwrap_or_default().to_string();
        addrs.push(addr);
    }
    addrs.sort();
    let n = addrs.len();
    addrs.dedup();
    assert_eq!(addrs.len(), n, "an address was handed out twice: {addrs:?}");
    // .9 and .10 are the LAN's (the external device, the world's node): probes find
    // them, no container gets them, and they stay held for those devices.
    let lan = ["192.168.1.9/24", "192.168.1.10/24"];
    assert!(!addrs.iter().any(|a| lan.contains(&a.as_str())), "a LAN device's address was handed out: {addrs:?}");
    assert_eq!(leftover_links("ulj"), Vec::<String>::new());
    assert_eq!(records(state.path(), "endpoints"), Vec::<String>::new());
    let holds = foreign_holds(state.path());
    let ours: Vec<String> = reservations(state.path()).into_iter().filter(|r| !holds.contains(r)).collect();
    assert_eq!(ours, vec!["192.168.1.1".to_string()]);
    docker.run(&["network", "rm", "conc"]).ok();
}

#[test]
fn plugin_and_dockerd_restarts_lose_nothing() {
    if skip_without_docker("plugin_and_dockerd_restarts_lose_nothing") {
        return;
    }
    let _s = serial();
    let (_w, parent) = world("dkrst");
    let state = tempfile::tempdir().unwrap();
    let mut plugin = Plugin::start(&driver_name("r"), state.path());
    let mut docker = Docker::start();
    let drv = plugin.name.clone();
    docker
        .run(&[
            "network",
            "create",
            "--driver",
            &drv,
            "--ipam-driver",
            &drv,
            "--subnet=192.168.1.0/24",
            "-o",
            &format!("parent={parent}"),
            "keep",
        ])
        .ok();
    docker.run(&["run", "--rm", "--network", "keep", IMAGE, "true"]).ok();
    // A link left by a Join that died half-way is removed when the plugin comes back.
    let ep = r#"{"id":"deadbeef","network":"x","addresses":[],"mac":null,"link":"uljdeadbeef"}"#;
    std::fs::write(state.path().join("endpoints/deadbeef.json"), ep).unwrap();
    let ok = std::process::Command::new("ip")
        .args(["link", "add", "uljdeadbeef", "link", &parent, "type", "macvlan", "mode", "bridge"])
        .status()
        .unwrap();
    assert!(ok.success());
    plugin.kill();
    plugin.restart();
    assert_eq!(leftover_links("ulj"), Vec::<String>::new());
    std::fs::remove_file(state.path().join("endpoints/deadbeef.json")).unwrap();
    docker.restart();
    let r = docker.run(&["run", "--rm", "--network", "keep", "--ip", "192.168.1.77", IMAGE, "ip", "-o", "-4", "addr"]);
    assert!(r.ok().stdout.contains("192.168.1.77/24"), "{}", r.stdout);
    assert_eq!(leftover_links("ulj"), Vec::<String>::new());
    assert_eq!(records(state.path(), "endpoints"), Vec::<String>::new());
    assert_eq!(records(state.path(), "networks").len(), 1);
    assert_eq!(reservations(state.path()), vec!["192.168.1.1".to_string()]);
    docker.run(&["network", "rm", "keep"]).ok();
}

#[test]
fn hostile_requests_get_err_and_the_daemon_keeps_serving() {
    let _s = serial();
    let state = tempfile::tempdir().unwrap();
    let mut plugin = Plugin::start(&driver_name("h"), state.path());
    let sock = plugin.socket();
    let long = "a".repeat(5000);
    let cases: Vec<(&str, String)> = vec![
        ("/NetworkDriver.CreateNetwork", "".into()),
        ("/NetworkDriver.CreateNetwork", "null".into()),
        ("/NetworkDriver.CreateNetwork", "{".into()),
        ("/NetworkDriver.CreateNetwork", "[]".into()),
        ("/NetworkDriver.CreateNetwork", r#"{"NetworkID":"../../etc"}"#.into()),
        ("/NetworkDriver.CreateNetwork", r#"{"NetworkID":"n1","IPv4Data":[]}"#.into()),
        ("/NetworkDriver.CreateNetwork", r#"{"NetworkID":"n1","IPv4Data":[{"Pool":"bogus"}]}"#.into()),
        ("/NetworkDriver.CreateNetwork", r#"{"NetworkID":"n1","IPv4Data":[{"Pool":"10.0.0.0/8","Gateway":"11.0.0.1/8"}]}"#.into()),
        ("/NetworkDriver.CreateNetwork", r#"{"NetworkID":"n1","Options":{"com.docker.network.generic":7}}"#.into()),
        ("/NetworkDriver.CreateNetwork", r#"{"NetworkID":"n1","Options":{"com.docker.network.generic":{"parent":"a/b"}},"IPv4Data":[{"Pool":"10.0.0.0/8"}]}"#.into()),
        ("/NetworkDriver.CreateNetwork", r#"{"NetworkID":"n1","Options":{"com.docker.network.generic":{"parent":["x"]}}}"#.into()),
        ("/NetworkDriver.CreateNetwork", format!(r#"{{"NetworkID":"{long}"}}"#)),
        ("/NetworkDriver.CreateNetwork", r#"{"NetworkID":"n1","Options":{"com.docker.network.generic":{"host_access":"10.0.0.5/8"}},"IPv4Data":[{"Pool":"10.0.0.0/8"}]}"#.into()),
        ("/NetworkDriver.CreateNetwork", r#"{"NetworkID":"n1","Options":{"com.docker.network.internal":5},"IPv4Data":[{"Pool":"10.0.0.0/8"}]}"#.into()),
        ("/NetworkDriver.CreateNetwork", r#"{"NetworkID":"n1","Options":{"com.docker.network.generic":{"ipvlan_mode":"l9"}},"IPv4Data":[{"Pool":"10.0.0.0/8"}]}"#.into()),
        ("/NetworkDriver.DeleteNetwork", r#"{"NetworkID":""}"#.into()),
        ("/NetworkDriver.CreateEndpoint", r#"{"NetworkID":"nosuch","EndpointID":"e1"}"#.into()),
        ("/NetworkDriver.CreateEndpoint", r#"{"NetworkID":"n1","EndpointID":"../x"}"#.into()),
        ("/NetworkDriver.CreateEndpoint", r#"{"NetworkID":5,"EndpointID":"e1"}"#.into()),
        ("/NetworkDriver.Join", r#"{"NetworkID":"n1","EndpointID":"e1","SandboxKey":"/proc/1/ns/net"}"#.into()),
        ("/NetworkDriver.Join", "\u{0}\u{1}\u{2}".into()),
        ("/NetworkDriver.Leave", r#"{"NetworkID":"n1"}"#.into()),
        ("/NetworkDriver.EndpointOperInfo", r#"{"NetworkID":"n1","EndpointID":"e1"}"#.into()),
        ("/NetworkDriver.ProgramExternalConnectivity", "{}".into()),
        ("/NetworkDriver.AllocateNetwork", "{}".into()),
        ("/IpamDriver.RequestPool", r#"{"Pool":""}"#.into()),
        ("/IpamDriver.RequestPool", r#"{"Pool":"10.0.0.1/8"}"#.into()),
        ("/IpamDriver.RequestPool", r#"{"Pool":"10.0.0.0/8","SubPool":"11.0.0.0/24"}"#.into()),
        ("/IpamDriver.RequestPool", r#"{"Pool":"10.0.0.0/8","Options":{"x":"y"}}"#.into()),
        ("/IpamDriver.RequestAddress", r#"{"PoolID":"underlay:../../x"}"#.into()),
        ("/IpamDriver.RequestAddress", r#"{"PoolID":"other:10.0.0.0/8"}"#.into()),
        ("/IpamDriver.RequestAddress", r#"{"PoolID":"underlay:10.0.0.0/8@../../x"}"#.into()),
        ("/IpamDriver.RequestAddress", r#"{"PoolID":"underlay:10.0.0.0/8@00ff"}"#.into()),
        ("/IpamDriver.RequestPool", r#"{"Pool":"10.0.0.0/8","Options":{"etcd.endpoints":"http://"}}"#.into()),
        ("/IpamDriver.ReleaseAddress", r#"{"PoolID":"underlay:10.0.0.0/8","Address":"nope"}"#.into()),
        ("/IpamDriver.ReleasePool", r#"{"PoolID":7}"#.into()),
        ("/Nope.Method", "{}".into()),
        ("/", "".into()),
    ];
    for (path, body) in &cases {
        let reply = post(&sock, path, body.as_bytes());
        assert!(reply.starts_with("HTTP/1.1 200"), "{path} {body:?}: {reply}");
        assert!(reply.contains("{\"Err\":\""), "{path} {body:?} was not refused: {reply}");
        assert!(plugin.alive(), "the daemon died on {path} {body:?}");
    }
    assert!(cases.len() >= 30);
    let reply = post(&sock, "/Plugin.Activate", b"");
    assert!(reply.contains("NetworkDriver") && reply.contains("IpamDriver"), "{reply}");
    // Nothing was written for any of them.
    assert_eq!(records(state.path(), "networks"), Vec::<String>::new());
    assert_eq!(records(state.path(), "endpoints"), Vec::<String>::new());
}

#[test]
fn ipv6_mac_address_and_mtu_reach_the_container() {
    if skip_without_docker("ipv6_mac_address_and_mtu_reach_the_container") {
        return;
    }
    let _s = serial();
    let (_w, parent) = world("dkv6");
    let state = tempfile::tempdir().unwrap();
    let plugin = Plugin::start(&driver_name("6"), state.path());
    let docker = Docker::start();
    let drv = plugin.name.as_str();
    docker
        .run(&[
            "network",
            "create",
            "--driver",
            drv,
            "--ipam-driver",
            drv,
            "--ipv6",
            "--subnet=192.168.1.0/24",
            "--subnet=fd00:1::/64",
            "--ip-range=192.168.1.128/28",
            "-o",
            &format!("parent={parent}"),
            "-o",
            "com.docker.network.driver.mtu=1400",
            "v6",
        ])
        .ok();
    let r = docker.run(&[
        "run",
        "--rm",
        "--network",
        "v6",
        "--ip6",
        "fd00:1::99",
        "--mac-address",
        "02:42:c0:a8:01:63",
        IMAGE,
        "sh",
        "-c",
        "ip addr show eth0",
    ]);
    let out = &r.ok().stdout;
    assert!(out.contains("fd00:1::99/64"), "{out}");
    assert!(out.contains("02:42:c0:a8:01:63"), "{out}");
    assert!(out.contains("mtu 1400"), "{out}");
    // From the --ip-range, not from the rest of the subnet.
    let v4 = out.split_whitespace().skip_while(|w| *w != "inet").nth(1).unwrap_or_default();
    let v4: ipnet::IpNet = v4.parse().unwrap_or_else(|_| panic!("no IPv4 address in {out}"));
    assert!("192.168.1.128/28".parse::<ipnet::IpNet>().unwrap().contains(&v4.addr()), "{v4}");
    docker.run(&["network", "rm", "v6"]).ok();
    assert_eq!(reservations(state.path()), Vec::<String>::new());
    assert_eq!(leftover_links("ulj"), Vec::<String>::new());
}
