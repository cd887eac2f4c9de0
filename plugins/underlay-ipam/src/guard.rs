//! The condition that keeps one container at one address per range set: a claim
//! commits only if the container's owner records are still exactly those this call
//! read. A killed ADD's claim that lands after the retry's first read makes the
//! retry's claim fail instead of adding a second address beside it.

use etcd_client::{Compare, CompareOp};

/// The key just past every key that starts with `prefix` (etcd's prefix range end).
fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // All 0xff: to the end of the key space.
    vec![0]
}

/// Half-open key ranges covering everything under `prefix` except the keys in
/// `known`: the gaps between the known keys.
pub fn gaps(prefix: &str, known: &[String]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut keys: Vec<&String> = known.iter().filter(|k| k.starts_with(prefix)).collect();
    keys.sort();
    keys.dedup();
    let mut out = Vec::new();
    let mut start = prefix.as_bytes().to_vec();
    for k in keys {
        if start.as_slice() < k.as_bytes() {
            out.push((start, k.as_bytes().to_vec()));
        }
        // The smallest key after `k`.
        start = k.as_bytes().to_vec();
        start.push(0);
    }
    let end = prefix_end(prefix);
    if start < end {
        out.push((start, end));
    }
    out
}

/// Compares that hold while nothing but `known` exists under `prefix`: no key in any
/// gap. (A range compare on version holds when every key in it has version 0, and
/// vacuously when there is none.)
pub fn only(prefix: &str, known: &[String]) -> Vec<Compare> {
    gaps(prefix, known).into_iter().map(|(a, b)| Compare::version(a, CompareOp::Equal, 0).with_range(b)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn covered(gaps: &[(Vec<u8>, Vec<u8>)], key: &str) -> bool {
        gaps.iter().any(|(a, b)| a.as_slice() <= key.as_bytes() && key.as_bytes() < b.as_slice())
    }

    #[test]
    fn gaps_cover_every_other_key_under_the_prefix_and_nothing_known() {
        let p = "/i/n/owner/n1/c1/eth0/";
        let known = vec![format!("{p}10.0.0.5"), format!("{p}2001:db8::5")];
        let g = gaps(p, &known);
        for k in &known {
            assert!(!covered(&g, k), "{k} is known");
        }
        for other in ["10.0.0.4", "10.0.0.50", "10.0.0.5\u{1}", "2001:db8::6", "", "z"] {
            assert!(covered(&g, &format!("{p}{other}")), "{other} must be guarded");
        }
        // Neighbours outside the prefix are not this container's.
        assert!(!covered(&g, "/i/n/owner/n1/c1/eth1/10.0.0.9"));
        assert!(!covered(&g, "/i/n/owner/n1/c1/eth0"));
        assert_eq!(gaps(p, &[]), vec![(p.as_bytes().to_vec(), b"/i/n/owner/n1/c1/eth00".to_vec())]);
    }
}
