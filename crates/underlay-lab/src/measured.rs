//! One benchmark row: which path, of which kind, and what it measured (shared by the
//! benchmark that fills it and the chart that draws it).

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A node's own interface: the floor everything else adds to.
    Host,
    Macvlan,
    /// Children sharing the parent's MAC (measured where the kernel has ipvlan).
    Ipvlan,
    /// veth + Linux bridge (+ NAT to the LAN): Docker's default network.
    BridgeNat,
}

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Kind::Host => "node's own",
            Kind::Macvlan => "macvlan",
            Kind::Ipvlan => "ipvlan",
            Kind::BridgeNat => "bridge + NAT",
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Measured {
    pub group: &'static str,
    pub kind: Kind,
    pub path: String,
    pub gbit_per_s: f64,
    pub p50_us: f64,
    pub p99_us: f64,
}
