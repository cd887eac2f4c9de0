//! Which of the lab LAN's addresses (192.168.1.0/24) the lab uses, and so which are
//! free for a user trying the README's examples on node1 (`lab up` prints them: the
//! seed's own example already holds .100 there).

use std::ops::RangeInclusive;

/// What the lab holds, by last octet, with why.
fn used(nodes: usize) -> Vec<(RangeInclusive<u8>, &'static str)> {
    vec![
        (0..=0, "the subnet"),
        (1..=1, "the gateway"),
        (9..=9, "the external device"),
        (10..=(10 + nodes.saturating_sub(1) as u8), "the nodes"),
        (100..=100, "container1 (the seed's example)"),
        (101..=200, "the pods' host-local ranges"),
        (210..=230, "the DHCP and mode checks"),
        (254..=255, "the host-access check's shim, the broadcast"),
    ]
}

/// The free runs of last octets (two or more addresses) between the lab's own, low to
/// high, keeping clear of the addresses just above the nodes.
pub fn free(nodes: usize) -> Vec<RangeInclusive<u8>> {
    let used = used(nodes);
    let mut out = Vec::new();
    let mut start: Option<u8> = None;
    for n in 20..=255u8 {
        let taken = used.iter().any(|(r, _)| r.contains(&n));
        match (taken, start) {
            (false, None) => start = Some(n),
            (true, Some(s)) => {
                if n - s >= 2 {
                    out.push(s..=n - 1);
                }
                start = None;
            }
            _ => {}
        }
    }
    out
}

/// One line for `lab up`: the free runs, and an example that uses the first.
pub fn hint(nodes: usize) -> String {
    let runs: Vec<String> = free(nodes).iter().map(|r| format!("192.168.1.{}-{}", r.start(), r.end())).collect();
    let first = free(nodes).first().map_or(20, |r| *r.start());
    format!(
        "free to try on node1 (.100 is container1's): {}, e.g. underlay run --network my-macvlan-network --ip 192.168.1.{first} -- CMD",
        runs.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_addresses_avoid_everything_the_lab_holds() {
        assert_eq!(free(2), vec![20..=99, 201..=209, 231..=253]);
        for nodes in 2..=8 {
            for r in free(nodes) {
                for n in r {
                    assert!(!used(nodes).iter().any(|(u, _)| u.contains(&n)), "{n}");
                }
            }
        }
        assert!(hint(2).contains("192.168.1.20-99") && hint(2).contains("--ip 192.168.1.20"));
    }
}
