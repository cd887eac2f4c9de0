//! The only crate in underlay that talks to the kernel: blocking rtnetlink (links,
//! macvlans, veths, bridges, addresses, routes, neighbours), network namespaces and
//! sysctls, and the builder of simulated LANs that tests and `underlay lab` share.

pub mod addr;
pub mod announce;
pub mod configure;
pub mod error;
#[cfg(feature = "world")]
pub mod interrupt;
pub mod ipvlan;
pub mod link;
pub mod macvlan;
pub mod neigh;
pub mod netlink;
pub mod netns;
pub mod parent;
pub mod probe;
pub mod reach;
pub mod route;
pub mod shim;
mod spelling;
pub mod support;
pub mod sysctl;
pub mod veth;
#[cfg(feature = "world")]
pub mod world;

pub use error::{Error, Result};
pub use link::Link;
pub use macvlan::{MacvlanMode, MacvlanSpec};
pub use netlink::Netlink;
pub use netns::Netns;
