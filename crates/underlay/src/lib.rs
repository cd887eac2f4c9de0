//! underlay's vocabulary and pure logic: the CNI wire protocol (every spec version),
//! hardware addresses, and (as it grows) IPAM. Nothing here talks to the kernel, so all
//! of it is unit- and property-tested without privileges.

pub mod cni;
pub mod identity;
pub mod ipam;
pub mod mac;
pub mod undo;

pub use mac::{HwAddr, MacAddr};
