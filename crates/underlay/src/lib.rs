//! underlay's vocabulary and its node-local machinery, without netlink: the CNI wire
//! protocol (every spec version) and the plugin entry point; hardware addresses; IPAM
//! with host-local's on-disk store (renameat2, linkat, the boot id and uptime from
//! /proc); calling another plugin (exec'd from `CNI_PATH`, or run in-process when the
//! ELF identity section of the binary found there says it is our own host-local); and
//! crash-safe record files. Links, addresses, routes and namespaces belong to
//! `underlay-linux`. Nothing here needs root: all of it is unit- and property-tested
//! on a temporary directory.

pub mod cni;
pub mod identity;
pub mod ipam;
pub mod mac;
pub mod safe_read;
pub mod safe_write;
pub mod undo;

pub use mac::{HwAddr, MacAddr};

/// FNV-1a: a hash that stays the same across processes, versions and machines, for
/// names and buckets that are stored (the std hasher makes no such promise).
pub fn stable_hash(bytes: impl IntoIterator<Item = u8>) -> u64 {
    bytes.into_iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}
