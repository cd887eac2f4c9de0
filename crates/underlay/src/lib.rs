//! underlay's vocabulary and pure logic: the CNI wire protocol (every spec version),
//! hardware addresses, and (as it grows) IPAM. Nothing here talks to the kernel, so all
//! of it is unit- and property-tested without privileges.

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
