//! Where a node starts looking for a free address: hashes of similar node names
//! ("node1", "node2") scattered over the range, so nodes do not walk the same stretch.

/// Scatters hashes of similar names ("node1", "node2") over the range (MurmurHash3's finalizer).
pub fn spread(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn similar_node_names_start_far_apart() {
        let starts: Vec<u64> =
            (0..10).map(|i| spread(underlay::stable_hash(format!("node{i}").bytes())) % 1000).collect();
        let mut sorted = starts.clone();
        sorted.sort();
        let widest_gap = sorted.windows(2).map(|w| w[1] - w[0]).max().unwrap();
        assert!(widest_gap < 400, "{starts:?}");
        assert!(sorted.windows(2).filter(|w| w[1] - w[0] < 10).count() <= 2, "{starts:?}");
    }
}
