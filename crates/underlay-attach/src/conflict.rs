//! IPv4 conflict detection before an address is used (RFC 5227 probes, see
//! `underlay_linux::probe`): the `conflictDetection` setting, and the IPAM round that
//! probes what the IPAM chose and asks again, with the device that answered recorded as
//! a foreign hold, until it gets an address nobody uses.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use underlay::cni::conf::typed;
use underlay::cni::{Call, CniError, CniResult, Command, code};
use underlay::ipam::delegate;
use underlay::ipam::hold::{self, ForeignHold};
use underlay_linux::probe::{Conflict, Probing};

/// Defaults, chosen by measurement (README, "Conflict detection"): a device on the test
/// LAN answers a probe within a millisecond and a busy LAN within tens; two probes
/// 50 ms apart catch a lost frame, and ADD waits 100 ms at most when nobody answers.
pub const DEFAULT_PROBES: u32 = 2;
pub const DEFAULT_WAIT_MS: u64 = 100;
/// A device found on an address keeps it for an hour unless an operator or GC frees it.
pub const DEFAULT_HOLD_SECONDS: u64 = 3600;
/// ADD asks the IPAM at most this often before giving up with 101. A conflict is
/// found within a millisecond or two, so a try that finds one costs little.
pub const MAX_TRIES: usize = 8;

const MAX_PROBES: u32 = 10;
const MAX_WAIT_MS: u64 = 10_000;
const MAX_HOLD_SECONDS: u64 = 366 * 24 * 3600;

/// `conflictDetection`: on by default; `false` turns it off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Detection {
    pub probing: Probing,
    pub hold: Duration,
}

impl Default for Detection {
    fn default() -> Self {
        Detection {
            probing: Probing { probes: DEFAULT_PROBES, wait: Duration::from_millis(DEFAULT_WAIT_MS) },
            hold: Duration::from_secs(DEFAULT_HOLD_SECONDS),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Raw {
    probes: Option<u32>,
    wait_ms: Option<u64>,
    hold_seconds: Option<u64>,
}

impl Detection {
    /// Reads the `conflictDetection` value: absent or `true` for the defaults, `false`
    /// for none, or `{"probes", "waitMs", "holdSeconds"}`.
    pub fn parse(value: Option<&Value>) -> Result<Option<Detection>, CniError> {
        let raw: Raw = match value {
            None | Some(Value::Null) | Some(Value::Bool(true)) => return Ok(Some(Detection::default())),
            Some(Value::Bool(false)) => return Ok(None),
            Some(v) => typed(v.clone(), "conflictDetection")?,
        };
        let mut d = Detection::default();
        let bad = |key: &str, v: u64, max: u64| {
            CniError::config(format!("conflictDetection.{key} {v} is out of range (1-{max})"))
        };
        if let Some(n) = raw.probes {
            if !(1..=MAX_PROBES).contains(&n) {
                return Err(bad("probes", n.into(), MAX_PROBES.into()));
            }
            d.probing.probes = n;
        }
        if let Some(ms) = raw.wait_ms {
            if !(1..=MAX_WAIT_MS).contains(&ms) {
                return Err(bad("waitMs", ms, MAX_WAIT_MS));
            }
            d.probing.wait = Duration::from_millis(ms);
        }
        if let Some(s) = raw.hold_seconds {
            if !(1..=MAX_HOLD_SECONDS).contains(&s) {
                return Err(bad("holdSeconds", s, MAX_HOLD_SECONDS));
            }
            d.hold = Duration::from_secs(s);
        }
        Ok(Some(d))
    }
}

/// IPAM ADD whose IPv4 addresses `probe` found unused. A conflict on an address the
/// caller asked for fails at once (101 naming it and the MAC); on one the IPAM chose,
/// the lease is released and the IPAM asked again with the holds attached. Nothing is
/// left reserved on failure.
pub fn lease(
    call: &Call,
    ty: &str,
    detection: &Detection,
    mut probe: impl FnMut(&[Ipv4Addr], &Probing) -> Result<Vec<Conflict>, CniError>,
) -> Result<CniResult, CniError> {
    let asked = requested(call);
    let mut holds: Vec<ForeignHold> = Vec::new();
    let mut found: Vec<Conflict> = Vec::new();
    for _ in 0..MAX_TRIES {
        let stdin;
        let retry;
        let this = if holds.is_empty() {
            call
        } else {
            stdin = hold::attach(call.stdin, &holds)?;
            let raw: Value = serde_json::from_slice(&stdin).expect("attach writes JSON");
            retry = Call { env: call.env.clone(), conf: call.conf.clone(), version: call.version, raw, stdin: &stdin };
            &retry
        };
        let result = delegate::add(this, ty)?;
        let v4: Vec<Ipv4Addr> = result
            .ips
            .iter()
            .filter_map(|ip| match ip.address.addr() {
                IpAddr::V4(v4) => Some(v4),
                IpAddr::V6(_) => None,
            })
            .collect();
        let conflicts = if v4.is_empty() { Ok(vec![]) } else { probe(&v4, &detection.probing) };
        let conflicts = match conflicts {
            Ok(c) if c.is_empty() => return Ok(result),
            Ok(c) => c,
            Err(e) => {
                let _ = delegate::run(call, ty, Command::Del);
                return Err(e);
            }
        };
        let _ = delegate::run(call, ty, Command::Del);
        if let Some(c) = conflicts.iter().find(|c| asked.contains(&IpAddr::V4(c.ip))) {
            return Err(CniError::new(
                code::ADDRESS_CONFLICT,
                format!(
                    "requested address {} is already in use on the LAN by MAC {} (it answered an ARP probe)",
                    c.ip, c.mac
                ),
            ));
        }
        let until = hold::now() + detection.hold.as_secs();
        holds.extend(conflicts.iter().map(|c| ForeignHold { ip: IpAddr::V4(c.ip), mac: c.mac, until }));
        found.extend(conflicts);
    }
    let list: Vec<String> = found.iter().map(Conflict::to_string).collect();
    Err(CniError::new(
        code::ADDRESS_CONFLICT,
        format!("no address free of conflicts after {MAX_TRIES} tries; in use on the LAN: {}", list.join(", ")),
    ))
}

/// The addresses the runtime asked for, from every channel the IPAMs read (CNI_ARGS
/// `IP=`, `args.cni.ips`, `runtimeConfig.ips`). The IPAM has validated them already;
/// what does not parse here is no address anyone could have been given.
fn requested(call: &Call) -> Vec<IpAddr> {
    let parse = |s: &str| s.split('/').next().and_then(|a| a.trim().parse::<IpAddr>().ok());
    let mut out: Vec<IpAddr> =
        call.env.args.get("IP").into_iter().flat_map(|s| s.split(',')).filter_map(parse).collect();
    let lists = [
        call.raw.get("args").and_then(|a| a.get("cni")).and_then(|c| c.get("ips")),
        call.raw.get("runtimeConfig").and_then(|r| r.get("ips")),
    ];
    for list in lists.into_iter().flatten().filter_map(Value::as_array) {
        out.extend(list.iter().filter_map(Value::as_str).filter_map(parse));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn settings_default_on_turn_off_and_name_bad_keys() {
        assert_eq!(Detection::parse(None).unwrap(), Some(Detection::default()));
        assert_eq!(Detection::parse(Some(&json!(true))).unwrap(), Some(Detection::default()));
        assert_eq!(Detection::parse(Some(&json!(false))).unwrap(), None);
        let d = Detection::parse(Some(&json!({"probes": 3, "waitMs": 300, "holdSeconds": 60}))).unwrap().unwrap();
        assert_eq!((d.probing.probes, d.probing.wait, d.hold.as_secs()), (3, Duration::from_millis(300), 60));
        for (v, needle) in [
            (json!({"probes": 0}), "conflictDetection.probes 0"),
            (json!({"waitMs": 10001}), "conflictDetection.waitMs 10001"),
            (json!({"holdSeconds": 0}), "conflictDetection.holdSeconds 0"),
            (json!({"tries": 3}), "tries"),
            (json!("yes"), "conflictDetection"),
        ] {
            let e = Detection::parse(Some(&v)).unwrap_err();
            assert_eq!(e.code, code::INVALID_CONFIG);
            assert!(e.msg.contains(needle), "{needle}: {}", e.msg);
        }
    }
}
