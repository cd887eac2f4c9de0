//! The ipvlan legs of `lab bench`, where the kernel has ipvlan: two scratch nodes of
//! their own (a parent that has macvlan children cannot take ipvlan ones), pods i1 and
//! i2 on the first and i3 on the second, attached by our ipvlan plugin in l2 mode, each
//! of i2 and i3 serving. The same switch, external device and servers as the macvlan
//! legs, so the rows compare.

use std::net::IpAddr;

use anyhow::{Context, Result};
use serde_json::json;
use underlay_cli::model::Proc;
use underlay_linux::Netns;
use underlay_linux::world::World;

use super::build::{WEB_PORT, start_server};
use super::modes::{cni_add, ip_of};
use super::record::{IPVLAN_BENCH, Lab};

pub struct IpvlanPath {
    pub i1: Netns,
    pub i2: IpAddr,
    pub i3: IpAddr,
    servers: Vec<Proc>,
}

impl IpvlanPath {
    pub fn build(lab: &mut Lab, world: &mut World) -> Result<IpvlanPath> {
        IpvlanPath::remove(lab, world, None);
        let conf = json!({
            "cniVersion": "1.0.0",
            "name": "lab-bench-ipvlan",
            "type": "ipvlan",
            "master": "enp0s3",
            "mode": "l2",
            // The pods' own addresses are held by the bench alone, in the lab's mode range.
            "ipam": {"type": "host-local", "subnet": "192.168.1.0/24", "rangeStart": "192.168.1.211",
                     "rangeEnd": "192.168.1.220", "dataDir": lab.dir.join("bench-ipam")},
            // Setup time only: the measured path is the same either way.
            "conflictDetection": false,
        });
        let mut pods = Vec::new();
        for (node, ip, members) in [("inode1", 229, &["i1", "i2"][..]), ("inode2", 230, &["i3"][..])] {
            let ip = world.spec.host_ip(ip);
            world.plug_node(node, ip)?;
            let node_ns = &world.nodes.last().context("the scratch node")?.netns;
            let node_ns = Netns::open(node_ns.path())?;
            for role in members {
                let ns = world.add_pod(role)?;
                let r = cni_add(&node_ns, &ns, role, &conf).with_context(|| format!("attach ipvlan pod {role}"))?;
                pods.push((ns, ip_of(&r)?));
            }
        }
        let mut servers = Vec::new();
        for (ns, _) in &pods[1..] {
            servers.push(start_server(lab, ns, WEB_PORT)?);
        }
        let mut pods = pods.into_iter();
        let (i1, _) = pods.next().context("pod i1")?;
        let (_, i2) = pods.next().context("pod i2")?;
        let (_, i3) = pods.next().context("pod i3")?;
        Ok(IpvlanPath { i1, i2, i3, servers })
    }

    /// Removes the path: servers, namespaces (the ipvlan links go with them), the
    /// address store.
    pub fn remove(lab: &Lab, world: &mut World, path: Option<IpvlanPath>) {
        for p in path.into_iter().flat_map(|p| p.servers) {
            p.kill();
        }
        for role in IPVLAN_BENCH {
            let name = format!("{}-{role}", world.prefix);
            if Netns::exists(&name) {
                let _ = world.remove(&name);
            }
        }
        let _ = std::fs::remove_dir_all(lab.dir.join("bench-ipam"));
    }
}
