//! Simulated LANs built from network namespaces: a switch (a Linux bridge in its own
//! namespace), nodes whose `enp0s3` is plugged into it, an external device, a gateway
//! and empty pod namespaces. Tests build one each; `underlay lab` builds the seed's.
//! Dropping a `World` removes every namespace it made, also while a test panics.

use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};

use ipnet::IpNet;
use netlink_packet_route::link::InfoBridgePort;
use underlay::MacAddr;

use crate::addr::AddressOptions;
use crate::error::{Context, Error, Result};
use crate::netns::Netns;
use crate::route::Route;

/// The interface name the seed gives a node's uplink.
pub const NODE_IF: &str = "enp0s3";
const HOST_IF: &str = "eth0";
const BRIDGE: &str = "br0";

pub mod containerd;
mod spec;
pub use spec::WorldSpec;

/// A namespace plugged into the switch.
#[derive(Debug)]
pub struct Host {
    pub netns: Netns,
    /// Its interface on the LAN (`enp0s3` for nodes, `eth0` otherwise).
    pub ifname: String,
    pub ip: IpNet,
    pub mac: MacAddr,
    /// Its port on the switch.
    pub port: String,
}

impl Host {
    pub fn name(&self) -> &str {
        self.netns.name().unwrap_or_default()
    }

    /// One more address on its LAN interface, as a device set up by hand would take one
    /// (what conflict detection must notice).
    pub fn also_use(&self, address: IpNet) -> Result<()> {
        let mut nl = self.netns.netlink()?;
        let link = nl.link(&self.ifname)?;
        nl.add_address(link.index, address, AddressOptions::default())
    }
}

#[derive(Debug)]
pub struct World {
    pub spec: WorldSpec,
    pub prefix: String,
    pub switch: Netns,
    pub nodes: Vec<Host>,
    pub external: Option<Host>,
    pub gateway: Option<Host>,
    pub pods: Vec<Netns>,
    /// Every namespace made, in creation order, removed in reverse.
    made: Vec<String>,
    /// Links made in the root namespace (see `root_port`), removed first.
    root_links: Vec<String>,
}

static WORLDS: AtomicUsize = AtomicUsize::new(0);

impl World {
    pub fn build(spec: WorldSpec) -> Result<World> {
        let prefix = spec.prefix.clone().unwrap_or_else(|| {
            let n = WORLDS.fetch_add(1, Ordering::Relaxed);
            format!("ul-{}-{}-{n}", spec.tag, std::process::id())
        });
        let mut made = Vec::new();
        let switch = create(&prefix, "sw", &mut made);
        // From here on, a failure drops what was made so far.
        let mut world = match switch {
            Ok(switch) => World {
                spec,
                prefix,
                switch,
                nodes: vec![],
                external: None,
                gateway: None,
                pods: vec![],
                made,
                root_links: vec![],
            },
            Err(e) => {
                cleanup(&made);
                return Err(e);
            }
        };
        world.populate().with_context(|| format!("build test world {}", world.prefix))?;
        Ok(world)
    }

    /// Opens a world another process built with a fixed prefix (`WorldSpec::named`).
    /// It owns nothing it did not make itself: dropping it removes only namespaces
    /// added through it (`plug_node`, `add_pod`).
    pub fn open(spec: WorldSpec) -> Result<World> {
        let prefix = spec.prefix.clone().ok_or_else(|| Error::new("open a test world", "it has no fixed prefix"))?;
        let open =
            |role: &str| Netns::open(std::path::Path::new(crate::netns::NETNS_DIR).join(format!("{prefix}-{role}")));
        let host = |role: &str, ifname: &str| -> Result<Host> {
            let netns = open(role)?;
            let mut nl = netns.netlink()?;
            let link = nl.link(ifname)?;
            let ip = nl
                .addresses(Some(link.index))?
                .into_iter()
                .map(|a| a.net)
                .find(|n| n.addr().is_ipv4())
                .ok_or_else(|| Error::new(format!("read the address of {role}"), "none"))?;
            let mac = link.mac.ok_or_else(|| Error::new(format!("read MAC of {role}"), "none reported"))?;
            Ok(Host { netns, ifname: ifname.to_string(), ip, mac, port: format!("p-{role}") })
        };
        let world = World {
            switch: open("sw")?,
            gateway: if spec.gateway { Some(host("gw", HOST_IF)?) } else { None },
            external: if spec.external { Some(host("ext", HOST_IF)?) } else { None },
            nodes: (1..=spec.nodes).map(|i| host(&format!("node{i}"), NODE_IF)).collect::<Result<_>>()?,
            pods: (1..=spec.pods).map(|i| open(&format!("pod{i}"))).collect::<Result<_>>()?,
            spec,
            prefix,
            made: vec![],
            root_links: vec![],
        };
        Ok(world)
    }

    /// Leaves everything in place for another process (`open`, then `remove_all`).
    pub fn keep(mut self) {
        self.made.clear();
        self.root_links.clear();
    }

    /// Removes the namespaces a world built with `spec` and `prefix` has, and any of
    /// `extra` (names), where they exist. Nothing else is touched.
    pub fn remove_all(spec: &WorldSpec, prefix: &str, extra: &[String]) {
        let mut names = spec.namespaces(prefix);
        names.extend(extra.iter().cloned());
        names.retain(|n| Netns::exists(n));
        cleanup(&names);
    }

    /// Plugs one more node (`<prefix>-<role>`, interface `enp0s3`, address `ip`, default
    /// route via the gateway) into the switch. Dropping the world removes it.
    pub fn plug_node(&mut self, role: &str, ip: IpNet) -> Result<&Host> {
        let br = self.switch.netlink()?.link(BRIDGE)?.index;
        let node = self.plug(role, NODE_IF, ip, br)?;
        let mut nl = node.netns.netlink()?;
        let link = nl.link(NODE_IF)?;
        nl.add_route(&Route::new("0.0.0.0/0".parse().expect("valid"), Some(self.spec.gateway_ip()), Some(link.index)))?;
        self.nodes.push(node);
        if self.drops_unknown_macs() {
            let node = self.nodes.last().expect("just pushed");
            self.nft(&format!(
                "add set bridge underlay_port_security allow_{0} {{ type ether_addr; elements = {{ {1} }}; }}\n\
                 add rule bridge underlay_port_security forward iifname \"{2}\" ether saddr != @allow_{0} drop\n",
                set_name(&node.port),
                node.mac,
                node.port
            ))?;
        }
        Ok(self.nodes.last().expect("just pushed"))
    }

    /// One more empty namespace `<prefix>-<role>` with loopback up. Dropping the world
    /// removes it.
    pub fn add_pod(&mut self, role: &str) -> Result<Netns> {
        let ns = create(&self.prefix, role, &mut self.made)?;
        set_up_lo(&ns)?;
        Ok(ns)
    }

    /// Removes a namespace this world made (a node's switch port goes with it).
    pub fn remove(&mut self, name: &str) -> Result<()> {
        // The switch's end of the cable goes first, at once: a deleted namespace frees
        // its veth pair only when the kernel's cleanup gets to it, and a node plugged in
        // again under the same role would find the port name still taken (EEXIST).
        let port = match self.nodes.iter().find(|n| n.name() == name) {
            Some(node) => Some(node.port.clone()),
            None => name.rsplit_once('-').map(|(_, role)| format!("p-{role}")),
        };
        if let Some(port) = port {
            self.switch.netlink()?.delete_link_by_name(&port)?;
        }
        self.nodes.retain(|n| n.name() != name);
        self.made.retain(|n| n != name);
        Netns::delete(name)
    }

    /// Whether the switch drops frames from MACs not plugged into their port.
    pub fn drops_unknown_macs(&self) -> bool {
        self.switch
            .command("nft")
            .args(["list", "table", "bridge", "underlay_port_security"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Turns the switch's port security on (only the plugged-in MACs may send) or off.
    pub fn set_drop_unknown_macs(&self, on: bool) -> Result<()> {
        // Declaring the table first makes the delete succeed whether or not it exists.
        self.nft("table bridge underlay_port_security {}\ndelete table bridge underlay_port_security\n")?;
        if on { self.install_port_security() } else { Ok(()) }
    }

    fn populate(&mut self) -> Result<()> {
        let mut nl = self.switch.netlink()?;
        nl.create_bridge(BRIDGE)?;
        let br = nl.link(BRIDGE)?;
        nl.set_up(br.index, true)?;
        set_up_lo(&self.switch)?;
        if self.spec.gateway {
            let ip = self.spec.host_ip(1);
            self.gateway = Some(self.plug("gw", HOST_IF, ip, br.index)?);
        }
        if self.spec.external {
            let ip = self.spec.host_ip(9);
            self.external = Some(self.plug("ext", HOST_IF, ip, br.index)?);
        }
        for i in 0..self.spec.nodes {
            let ip = self.spec.host_ip(10 + i as u32);
            let node = self.plug(&format!("node{}", i + 1), NODE_IF, ip, br.index)?;
            let mut nl = node.netns.netlink()?;
            let link = nl.link(NODE_IF)?;
            nl.add_route(&Route::new(
                "0.0.0.0/0".parse().expect("valid"),
                Some(self.spec.gateway_ip()),
                Some(link.index),
            ))?;
            self.nodes.push(node);
        }
        for i in 0..self.spec.pods {
            let pod = create(&self.prefix, &format!("pod{}", i + 1), &mut self.made)?;
            set_up_lo(&pod)?;
            self.pods.push(pod);
        }
        if self.spec.hairpin {
            for port in self.ports() {
                self.set_hairpin(&port, true)?;
            }
        }
        if self.spec.drop_unknown_macs {
            self.install_port_security()?;
        }
        Ok(())
    }

    /// Creates namespace `<prefix>-<role>` and cables its `ifname` to a switch port.
    fn plug(&mut self, role: &str, ifname: &str, ip: IpNet, bridge: u32) -> Result<Host> {
        let netns = create(&self.prefix, role, &mut self.made)?;
        let port = format!("p-{role}");
        let mut sw = self.switch.netlink()?;
        sw.create_veth(&port, ifname, Some(netns.fd()))?;
        let p = sw.link(&port)?;
        sw.set_controller(p.index, Some(bridge))?;
        sw.set_up(p.index, true)?;
        set_up_lo(&netns)?;
        let mut nl = netns.netlink()?;
        let link = nl.link(ifname)?;
        nl.add_address(link.index, ip, AddressOptions::default())?;
        nl.set_up(link.index, true)?;
        let mac = link.mac.ok_or_else(|| Error::new(format!("read MAC of {ifname}"), "none reported"))?;
        Ok(Host { netns, ifname: ifname.to_string(), ip, mac, port })
    }

    /// Every host: gateway, external device, nodes.
    pub fn hosts(&self) -> impl Iterator<Item = &Host> {
        self.gateway.iter().chain(self.external.iter()).chain(self.nodes.iter())
    }

    fn ports(&self) -> Vec<String> {
        self.hosts().map(|h| h.port.clone()).collect()
    }

    pub fn node(&self, i: usize) -> &Host {
        &self.nodes[i]
    }

    pub fn external(&self) -> &Host {
        self.external.as_ref().expect("this world has an external device")
    }

    /// Plugs the *root* namespace into the switch through a new veth and returns its
    /// name. For clients (Podman, containerd) that run plugins in the root namespace:
    /// this link is their parent. It gets no address and no IPv6 (so no link-local
    /// address or route appears in the root namespace) and is deleted with the world.
    pub fn root_port(&mut self) -> Result<String> {
        let name = format!("ul{}r{}", std::process::id() % 100_000, self.root_links.len());
        let port = format!("p-root{}", self.root_links.len());
        let mut root = crate::netlink::Netlink::new()?;
        root.create_veth(&name, &port, Some(self.switch.fd()))?;
        self.root_links.push(name.clone());
        crate::sysctl::write(&format!("net/ipv6/conf/{name}/disable_ipv6"), "1")?;
        let link = root.link(&name)?;
        root.set_up(link.index, true)?;
        let mut sw = self.switch.netlink()?;
        let br = sw.link(BRIDGE)?;
        let p = sw.link(&port)?;
        sw.set_controller(p.index, Some(br.index))?;
        sw.set_up(p.index, true)?;
        Ok(name)
    }

    /// Turns hairpin on or off on a switch port.
    pub fn set_hairpin(&self, port: &str, on: bool) -> Result<()> {
        let mut sw = self.switch.netlink()?;
        let p = sw.link(port)?;
        sw.set_bridge_port(p.index, vec![InfoBridgePort::HairpinMode(on)])
    }

    fn install_port_security(&self) -> Result<()> {
        let mut rules = String::from("table bridge underlay_port_security {\n");
        for h in self.hosts() {
            rules +=
                &format!("  set allow_{0} {{ type ether_addr; elements = {{ {1} }}; }}\n", set_name(&h.port), h.mac);
        }
        rules += "  chain forward {\n    type filter hook forward priority 0; policy accept;\n";
        for h in self.hosts() {
            rules += &format!("    iifname \"{}\" ether saddr != @allow_{} drop\n", h.port, set_name(&h.port));
        }
        rules += "  }\n}\n";
        self.nft(&rules)
    }

    /// Lets `mac` send through `port` when the switch drops unknown MACs.
    pub fn allow_mac(&self, port: &str, mac: MacAddr) -> Result<()> {
        self.nft(&format!("add element bridge underlay_port_security allow_{} {{ {mac} }}\n", set_name(port)))
    }

    fn nft(&self, script: &str) -> Result<()> {
        self.switch.nft(script).context("load the switch's rules")
    }
}

fn set_name(port: &str) -> String {
    port.replace('-', "_")
}

fn create(prefix: &str, role: &str, made: &mut Vec<String>) -> Result<Netns> {
    let name = format!("{prefix}-{role}");
    let ns = Netns::create(&name)?;
    made.push(name);
    Ok(ns)
}

fn set_up_lo(ns: &Netns) -> Result<()> {
    let mut nl = ns.netlink()?;
    let lo = nl.link("lo")?;
    nl.set_up(lo.index, true)
}

fn cleanup(made: &[String]) {
    for name in made.iter().rev() {
        if let Err(e) = Netns::delete(name) {
            eprintln!("warning: {e}");
        }
    }
}

impl Drop for World {
    fn drop(&mut self) {
        if let Ok(mut root) = crate::netlink::Netlink::new() {
            for name in &self.root_links {
                if let Err(e) = root.delete_link_by_name(name) {
                    eprintln!("warning: {e}");
                }
            }
        }
        cleanup(&self.made);
    }
}
