//! What one ADD has read of the store: the caller's reservations, its node's
//! positions, and the held addresses of the windows read so far.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use underlay::cni::Attachment;
use underlay::ipam::to_u128;

/// The store as one ADD sees it: what the caller holds and this node's positions, and
/// the held addresses of the windows read so far (plus our claims and lost races).
pub(crate) struct View {
    pub(crate) owner: Attachment,
    pub(crate) owned: Vec<IpAddr>,
    /// The owner keys as read, unreadable ones too: a claim's guard expects them all.
    pub(crate) owner_keys: Vec<String>,
    pub(crate) lasts: HashMap<usize, IpAddr>,
    /// Windows read: (first, last) address numbers, with the family of their addresses.
    pub(crate) windows: Vec<(u128, u128, bool)>,
    pub(crate) taken: HashSet<IpAddr>,
    /// The store's revision at the first read: an address claimed after it was
    /// raced for, one held before simply is not free.
    pub(crate) revision: i64,
}

impl View {
    pub(crate) fn covers(&self, ip: IpAddr) -> bool {
        let n = to_u128(ip);
        self.windows.iter().any(|(a, b, v4)| *v4 == ip.is_ipv4() && (*a..=*b).contains(&n))
    }
}
