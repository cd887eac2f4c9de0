//! A test world with a real DHCP server: dnsmasq on the external device's `eth0`
//! (own lease file, log and PID file, ended by PID), the `dhcp daemon` as a child
//! with a private socket and state directory, and pods whose `eth0` is a macvlan on a
//! node's uplink, made directly inside the pod's namespace.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ipnet::IpNet;
use serde_json::{Value, json};
use underlay_linux::addr::AddressOptions;
use underlay_linux::world::{NODE_IF, World, WorldSpec};
use underlay_linux::{MacvlanMode, MacvlanSpec, Netns};

pub const DHCP: &str = env!("CARGO_BIN_EXE_dhcp");

pub struct Lab {
    pub world: World,
    pub dir: tempfile::TempDir,
    pub dnsmasq: Option<Child>,
    pub daemon: Option<Child>,
}

impl Lab {
    /// A seed-shaped world (gateway, external device, two nodes, no pods yet).
    pub fn new(tag: &str) -> Lab {
        let spec = WorldSpec { pods: 0, ..WorldSpec::seed(tag) };
        let world = World::build(spec).unwrap_or_else(|e| panic!("cannot build the test world (run as root): {e}"));
        Lab { world, dir: tempfile::tempdir().unwrap(), dnsmasq: None, daemon: None }
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("dhcp.sock")
    }
    pub fn leases(&self) -> PathBuf {
        self.dir.path().join("dnsmasq.leases")
    }
    pub fn log(&self) -> PathBuf {
        self.dir.path().join("dnsmasq.log")
    }

    /// Starts dnsmasq on the external device with a 2-minute lease (its minimum), T1/T2
    /// as given (options 58/59), and the options the result must carry.
    pub fn start_dnsmasq(&mut self, t1: u32, t2: u32) {
        self.start_dnsmasq_range("192.168.1.100,192.168.1.150", t1, t2);
    }

    pub fn start_dnsmasq_range(&mut self, range: &str, t1: u32, t2: u32) {
        let ext = self.world.external();
        let child = ext
            .netns
            .command("dnsmasq")
            .args(["--no-daemon", "--conf-file=/dev/null", "--bind-interfaces", "--port=0", "--log-dhcp"])
            .arg(format!("--interface={}", ext.ifname))
            .arg(format!("--dhcp-range={range},255.255.255.0,2m"))
            // Answer requests for addresses it does not know with NAK, as a LAN's
            // only server should.
            .arg("--dhcp-authoritative")
            // dnsmasq's ping check before an OFFER stays on (as on a real LAN): the
            // first DISCOVERs go unanswered for ~3 s and the client must retransmit.
            .arg("--dhcp-option=option:router,192.168.1.1")
            .arg("--dhcp-option=option:dns-server,192.168.1.53,192.168.1.54")
            .arg("--dhcp-option=option:domain-name,lan.test")
            .arg("--dhcp-option=option:domain-search,lan.test,corp.test")
            .arg("--dhcp-option=option:classless-static-route,10.77.0.0/16,192.168.1.254,0.0.0.0/0,192.168.1.1")
            .arg("--dhcp-option=option:mtu,1400")
            .arg(format!("--dhcp-option=option:T1,{t1}"))
            .arg(format!("--dhcp-option=option:T2,{t2}"))
            .arg(format!("--dhcp-leasefile={}", self.leases().display()))
            .arg(format!("--pid-file={}", self.dir.path().join("dnsmasq.pid").display()))
            .arg(format!("--log-facility={}", self.log().display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dnsmasq missing: install dnsmasq-base (scripts/deps)");
        self.dnsmasq = Some(child);
        wait_for(Duration::from_secs(5), || {
            std::fs::read_to_string(self.log()).is_ok_and(|l| l.contains("DHCP, IP range"))
        })
        .expect("dnsmasq did not start");
    }

    pub fn stop_dnsmasq(&mut self) {
        if let Some(mut c) = self.dnsmasq.take() {
            kill(&mut c, nix::sys::signal::Signal::SIGTERM);
        }
    }

    pub fn start_daemon(&mut self) {
        let child = Command::new(DHCP)
            .arg("daemon")
            .arg("--socket")
            .arg(self.socket())
            .arg("--state-dir")
            .arg(self.dir.path().join("state"))
            .stderr(Stdio::from(
                std::fs::OpenOptions::new().create(true).append(true).open(self.dir.path().join("daemon.log")).unwrap(),
            ))
            .spawn()
            .unwrap();
        self.daemon = Some(child);
        wait_for(Duration::from_secs(5), || std::os::unix::net::UnixStream::connect(self.socket()).is_ok())
            .expect("dhcp daemon did not listen");
    }

    pub fn kill_daemon(&mut self) {
        if let Some(mut c) = self.daemon.take() {
            kill(&mut c, nix::sys::signal::Signal::SIGKILL);
        }
    }

    pub fn daemon_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default()
    }

    pub fn dnsmasq_log(&self) -> String {
        std::fs::read_to_string(self.log()).unwrap_or_default()
    }

    /// The lease file's lines.
    pub fn lease_lines(&self) -> Vec<String> {
        // dnsmasq rewrites the file in place (truncate, write): a read may catch it
        // half written, so read until two reads agree.
        let read = || std::fs::read_to_string(self.leases()).unwrap_or_default();
        let mut last = read();
        loop {
            std::thread::sleep(Duration::from_millis(50));
            let now = read();
            if now == last {
                return now.lines().map(str::to_string).collect();
            }
            last = now;
        }
    }

    /// An empty pod namespace (for the macvlan plugin to fill).
    pub fn empty_pod(&mut self, name: &str) -> Netns {
        self.world.add_pod(name).unwrap()
    }

    /// A pod namespace whose `eth0` is a macvlan (bridge mode) on node `node`'s uplink.
    pub fn pod(&mut self, name: &str, node: usize) -> Netns {
        let pod = self.world.add_pod(name).unwrap();
        let mut nl = self.world.node(node).netns.netlink().unwrap();
        let parent = nl.link(NODE_IF).unwrap().index;
        let spec = MacvlanSpec { netns: Some(pod.fd()), ..MacvlanSpec::new("eth0", parent, MacvlanMode::Bridge) };
        nl.create_macvlan(&spec).unwrap();
        pod
    }

    /// A pod namespace whose `eth0` is an ipvlan (L2) on node 0's uplink.
    pub fn ipvlan_pod(&mut self, name: &str) -> Netns {
        use underlay_linux::ipvlan::{IpvlanFlag, IpvlanMode, IpvlanSpec};
        let pod = self.world.add_pod(name).unwrap();
        let mut nl = self.world.node(0).netns.netlink().unwrap();
        let parent = nl.link(NODE_IF).unwrap().index;
        let spec = IpvlanSpec {
            name: "eth0",
            parent,
            mode: IpvlanMode::L2,
            flag: IpvlanFlag::Bridge,
            mtu: 0,
            netns: Some(pod.fd()),
        };
        nl.create_ipvlan(&spec).unwrap();
        pod
    }

    pub fn conf(&self, timeout: f64) -> Value {
        json!({"cniVersion": "1.1.0", "name": "lan", "type": "dhcp",
               "ipam": {"type": "dhcp", "daemonSocketPath": self.socket(), "timeout": timeout}})
    }

    /// Runs the plugin the way a runtime does (from node 0's namespace).
    pub fn cni(&self, command: &str, cid: &str, pod: Option<&Netns>, args: &str, conf: &Value) -> Outcome {
        self.run(Path::new(DHCP), command, cid, pod, args, conf)
    }

    /// Runs `program` (with `CNI_PATH` = its directory) from node 0's namespace.
    pub fn run(
        &self,
        program: &Path,
        command: &str,
        cid: &str,
        pod: Option<&Netns>,
        args: &str,
        conf: &Value,
    ) -> Outcome {
        let netns = pod.map(|p| p.path().display().to_string()).unwrap_or_default();
        let mut child = self
            .world
            .node(0)
            .netns
            .command(program)
            .env_clear()
            .env("CNI_COMMAND", command)
            .env("CNI_CONTAINERID", cid)
            .env("CNI_NETNS", netns)
            .env("CNI_IFNAME", "eth0")
            .env("CNI_ARGS", args)
            .env("CNI_PATH", program.parent().unwrap())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&serde_json::to_vec(conf).unwrap()).unwrap();
        let out = child.wait_with_output().unwrap();
        Outcome { ok: out.status.success(), json: serde_json::from_slice(&out.stdout).unwrap_or(Value::Null) }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.kill_daemon();
        self.stop_dnsmasq();
    }
}

fn kill(c: &mut Child, sig: nix::sys::signal::Signal) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(c.id() as i32), sig);
    let _ = c.wait();
}

pub struct Outcome {
    pub ok: bool,
    pub json: Value,
}

impl Outcome {
    pub fn code(&self) -> u64 {
        self.json["code"].as_u64().unwrap_or(0)
    }
    pub fn address(&self) -> IpNet {
        assert!(self.ok, "ADD failed: {}", self.json);
        self.json["ips"][0]["address"].as_str().unwrap().parse().unwrap()
    }
}

/// Puts the leased address on the pod's `eth0`, as the main plugin of a chain would.
pub fn configure(pod: &Netns, addr: IpNet) {
    let mut nl = pod.netlink().unwrap();
    let link = nl.link("eth0").unwrap();
    nl.add_address(link.index, addr, AddressOptions::default()).unwrap();
}

pub fn mac(pod: &Netns) -> String {
    pod.netlink().unwrap().link("eth0").unwrap().mac.unwrap().to_string()
}

pub fn wait_for(limit: Duration, mut ok: impl FnMut() -> bool) -> Result<(), ()> {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(())
}

/// How many DHCPACKs dnsmasq logged for `mac`.
pub fn acks(log: &str, mac: &str) -> usize {
    log.lines().filter(|l| l.contains("DHCPACK") && l.to_lowercase().contains(&mac.to_lowercase())).count()
}
