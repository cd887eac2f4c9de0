//! What a claim of the seed is and what it works with: the context the lab hands each
//! claim (`Ctx`), what its run found (`Outcome`), and how long to wait for the LAN. The
//! claim files (attach, isolation, modes) and the collector (check) both use this.

use std::net::IpAddr;
use std::time::Duration;

use anyhow::Result;
use underlay::MacAddr;
use underlay_linux::Netns;
use underlay_linux::world::{Host, World};

use super::record::{Lab, Pod};
use super::{build, topology};

/// Long enough for a LAN in namespaces to answer; what has not answered by then is
/// not going to.
pub const ANSWER: Duration = Duration::from_secs(2);
pub const SILENCE: Duration = Duration::from_millis(800);

/// What a claim's run found.
pub struct Outcome {
    pub expected: String,
    pub observed: String,
    /// None: skipped (the observation says why).
    pub ok: Option<bool>,
    pub note: Option<String>,
}

impl Outcome {
    pub fn new(expected: impl Into<String>, observed: impl Into<String>, ok: bool) -> Outcome {
        Outcome { expected: expected.into(), observed: observed.into(), ok: Some(ok), note: None }
    }

    pub fn skipped(expected: impl Into<String>, why: impl Into<String>) -> Outcome {
        Outcome { expected: expected.into(), observed: format!("skipped: {}", why.into()), ok: None, note: None }
    }

    /// Where the seed is wrong or incomplete.
    pub fn note(mut self, note: impl Into<String>) -> Outcome {
        self.note = Some(note.into());
        self
    }
}

pub type Claim = (&'static str, &'static str, fn(&mut Ctx) -> Result<Outcome>);

/// What the claims work with: the lab's world (scratch namespaces added to it go when
/// it is dropped) and container1.
pub struct Ctx<'l> {
    pub lab: &'l Lab,
    pub world: World,
    pub container: Netns,
    pub container_ip: IpAddr,
    pub container_mac: MacAddr,
}

impl Ctx<'_> {
    pub fn node(&self, i: usize) -> &Host {
        &self.world.nodes[i]
    }

    pub fn ext(&self) -> &Host {
        self.world.external()
    }

    pub fn pods_of(&self, node: usize) -> Vec<&Pod> {
        self.lab.record.pods_of(node).collect()
    }

    pub fn pod_ns(&self, pod: &Pod) -> Result<&Netns> {
        super::record::pod_netns(&self.world, &pod.role)
    }

    /// `underlay ARGS` on node1, with the lab's state.
    pub fn cli(&self, args: &[&str]) -> Result<std::process::Output> {
        build::cli(self.lab, &self.node(0).netns, 0, args)
    }

    /// Every endpoint on the LAN: (name, node index, address, MAC).
    pub fn endpoints(&self) -> Vec<(String, usize, IpAddr, MacAddr)> {
        let mut all = vec![(topology::CONTAINER.to_string(), 0, self.container_ip, self.container_mac)];
        all.extend(self.lab.record.pods_made.iter().map(|p| (p.role.clone(), p.node, p.ip, p.mac)));
        all
    }
}
