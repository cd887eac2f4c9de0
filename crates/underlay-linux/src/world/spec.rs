//! What a simulated LAN is to have: its subnet and the seed's numbering, how many
//! nodes and pods, and how its switch behaves.

use std::net::{IpAddr, Ipv4Addr};

use ipnet::{IpNet, Ipv4Net};

/// What to build.
#[derive(Debug, Clone)]
pub struct WorldSpec {
    /// Short tag that goes into every namespace name, e.g. the test's name.
    pub tag: String,
    pub subnet: Ipv4Net,
    pub nodes: usize,
    pub pods: usize,
    pub external: bool,
    pub gateway: bool,
    /// Reflect frames back out of the port they came in on (what VEPA needs).
    pub hairpin: bool,
    /// Drop frames whose source MAC is not the one plugged into the port, as clouds
    /// and locked-down hypervisors do.
    pub drop_unknown_macs: bool,
    /// What every namespace name starts with. None: `ul-<tag>-<pid>-<n>`, unique to
    /// this process (tests); a fixed one lets another process reopen the world (lab).
    pub prefix: Option<String>,
}

impl WorldSpec {
    /// The seed's LAN: 192.168.1.0/24, nodes from .10, external device .9, gateway .1.
    pub fn seed(tag: &str) -> WorldSpec {
        WorldSpec {
            tag: tag.to_string(),
            subnet: "192.168.1.0/24".parse().expect("valid"),
            nodes: 2,
            pods: 2,
            external: true,
            gateway: true,
            hairpin: false,
            drop_unknown_macs: false,
            prefix: None,
        }
    }

    /// Only a switch and `pods` empty namespaces: a scratch world for kernel tests.
    pub fn bare(tag: &str, pods: usize) -> WorldSpec {
        WorldSpec { nodes: 0, pods, external: false, gateway: false, ..WorldSpec::seed(tag) }
    }

    pub fn nodes(mut self, n: usize) -> Self {
        self.nodes = n;
        self
    }

    pub fn pods(mut self, n: usize) -> Self {
        self.pods = n;
        self
    }

    pub fn hairpin(mut self, on: bool) -> Self {
        self.hairpin = on;
        self
    }

    pub fn drop_unknown_macs(mut self, on: bool) -> Self {
        self.drop_unknown_macs = on;
        self
    }

    pub fn named(mut self, prefix: &str) -> Self {
        self.prefix = Some(prefix.to_string());
        self
    }

    /// The roles of the namespaces `build` makes, in creation order.
    pub(super) fn roles(&self) -> Vec<String> {
        let mut roles = vec!["sw".to_string()];
        roles.extend(self.gateway.then(|| "gw".to_string()));
        roles.extend(self.external.then(|| "ext".to_string()));
        roles.extend((1..=self.nodes).map(|i| format!("node{i}")));
        roles.extend((1..=self.pods).map(|i| format!("pod{i}")));
        roles
    }

    /// The names of the namespaces a world built with `prefix` has.
    pub fn namespaces(&self, prefix: &str) -> Vec<String> {
        self.roles().iter().map(|r| format!("{prefix}-{r}")).collect()
    }

    /// The address the seed's numbering gives host number `offset` (gateway 1,
    /// external 9, nodes from 10).
    pub fn host_ip(&self, offset: u32) -> IpNet {
        let ip = Ipv4Addr::from(u32::from(self.subnet.network()) + offset);
        IpNet::V4(Ipv4Net::new(ip, self.subnet.prefix_len()).expect("prefix from a valid net"))
    }

    pub fn gateway_ip(&self) -> IpAddr {
        self.host_ip(1).addr()
    }
}
