//! The seed's Docker example with `underlay`, in a test world.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use support::*;
use underlay_linux::reach::tcp_reachable;
use underlay_linux::world::WorldSpec;

/// An HTTP GET from inside `ns`.
fn fetch(ns: &underlay_linux::Netns, ip: &str, port: u16) -> String {
    let addr = format!("{ip}:{port}").parse().unwrap();
    ns.run(|| {
        for _ in 0..100 {
            if let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
                let mut body = String::new();
                let _ = s.read_to_string(&mut body);
                return body;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("nothing answers on {addr}");
    })
    .unwrap()
}

#[test]
fn the_seed_docker_example_serves_port_9090_on_the_lan() {
    let w = world(WorldSpec::seed("cliseed").pods(0));
    let (node1, node2, ext) = (&w.node(0).netns, &w.node(1).netns, &w.external().netns);
    let u = Underlay::on(node1);
    u.seed_network("my-macvlan-network");
    let www = u.dirs.path().join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("index.html"), "hello from container1\n").unwrap();
    let busybox = "/bin/busybox";
    assert!(std::path::Path::new(busybox).exists(), "install busybox-static (scripts/deps)");
    u.run(&[
        "run",
        "--network",
        "my-macvlan-network",
        "--ip",
        "192.168.1.100",
        "-d",
        "--name",
        "container1",
        "--",
        busybox,
        "httpd",
        "-f",
        "-p",
        "9090",
        "-h",
        www.to_str().unwrap(),
    ])
    .ok();
    let ep = u.wait_running("container1");
    assert_eq!(ep["ips"][0], "192.168.1.100/24");
    // The external device fetches from it directly on the LAN.
    let page = fetch(ext, "192.168.1.100", 9090);
    assert!(page.contains("hello from container1"), "{page}");
    // Its own MAC, not the node's.
    let mac = ep["mac"].as_str().unwrap();
    assert_ne!(mac, w.node(0).mac.to_string());
    // Host isolation by design; another node reaches it.
    let ip = "192.168.1.100".parse().unwrap();
    assert!(
        !tcp_reachable(node1, ip, 9090, Duration::from_millis(1500)).unwrap(),
        "node1 cannot reach its own endpoint"
    );
    assert!(tcp_reachable(node2, ip, 9090, Duration::from_secs(3)).unwrap(), "node2 can");
    u.run(&["stop", "container1"]).ok();
    assert!(u.ps().is_empty());
    assert!(u.reservations("my-macvlan-network").is_empty());
    assert!(u.namespaces().is_empty());
    u.run(&["network", "rm", "my-macvlan-network"]).ok();
}
