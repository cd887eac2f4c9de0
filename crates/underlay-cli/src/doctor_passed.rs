//! What `doctor` checked and found fine, said so (severity "ok"), and its advice
//! fitted to this kernel (ipvlan only where the kernel has it).

use underlay_linux::support::{Feature, has};

use crate::finding::{Finding, Severity};

/// A check that passed: its name, and the findings that would have been its failures.
struct Check {
    name: &'static str,
    failures: &'static [&'static str],
    /// Only with a network (not `doctor --parent`).
    needs_network: bool,
    passed: fn(&str) -> String,
}

const CHECKS: &[Check] = &[
    Check {
        name: "parent",
        failures: &["parent-missing", "parent-down", "parent-no-carrier", "parent-wifi"],
        needs_network: false,
        passed: |p| format!("{p} exists, is up, has a carrier and is not Wi-Fi"),
    },
    Check {
        name: "routes",
        failures: &["same-subnet-shim", "subnet-on-two-interfaces"],
        needs_network: false,
        passed: |_| "no subnet is routed through two interfaces".to_string(),
    },
    Check {
        name: "mtu",
        failures: &["mtu-mismatch"],
        needs_network: true,
        passed: |p| format!("the network's MTU fits {p}'s"),
    },
    Check {
        name: "host-address",
        failures: &["host-address"],
        needs_network: true,
        passed: |p| format!("no endpoint holds an address {p} carries"),
    },
    Check {
        name: "platform",
        failures: &["platform-filters-macs"],
        needs_network: false,
        passed: |_| "not a platform known to drop frames from unknown MACs".to_string(),
    },
];

/// Adds an "ok" finding for each check above that found nothing.
pub fn add_passed(findings: &mut Vec<Finding>, parent: &str, with_network: bool) {
    for c in CHECKS.iter().filter(|c| with_network || !c.needs_network) {
        if !findings.iter().any(|f| c.failures.contains(&f.check)) {
            findings.push(Finding {
                check: c.name,
                severity: Severity::Ok,
                finding: (c.passed)(parent),
                fix: "nothing".to_string(),
            });
        }
    }
}

/// What to do when the LAN refuses the endpoints' own MACs: ipvlan where this kernel
/// has it, otherwise only the platform's side.
pub fn unknown_mac_advice(platform_side: &str) -> String {
    if has(Feature::Ipvlan).unwrap_or(false) {
        format!("use ipvlan (-d ipvlan), whose endpoints share the parent's MAC, or {platform_side}")
    } else {
        format!("{platform_side} (ipvlan, which shares the parent's MAC, is not in this kernel)")
    }
}
