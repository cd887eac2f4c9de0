//! What `underlay` remembers: networks and endpoints, as JSON records.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;

use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use underlay::MacAddr;
use underlay_linux::MacvlanMode;
use underlay_linux::ipvlan::{IpvlanFlag, IpvlanMode};

pub use underlay_attach::Driver;

/// One subnet of a network, with Docker's per-subnet settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subnet {
    pub subnet: IpNet,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
    /// Addresses are handed out from this part of the subnet only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_range: Option<IpNet>,
    /// Addresses that are never handed out (Docker's `--aux-address name=IP`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub aux_addresses: BTreeMap<String, IpAddr>,
}

/// The 802.1Q sub-interface a network's parent is, and whether underlay made it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vlan {
    pub base: String,
    pub id: u16,
    /// Made by underlay: removed with the last network that uses it.
    pub created: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    pub name: String,
    pub id: String,
    pub driver: Driver,
    pub parent: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vlan: Option<Vlan>,
    /// macvlan mode, or ipvlan mode and flag (stored as "bridge", "l3 private", ...).
    pub mode: Mode,
    pub subnets: Vec<Subnet>,
    #[serde(default)]
    pub internal: bool,
    #[serde(default)]
    pub ipv6: bool,
    /// 0: the parent's.
    #[serde(default)]
    pub mtu: u32,
    /// The cluster-wide store (`--ipam-driver underlay-ipam`); None: host-local here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipam: Option<ClusterIpam>,
    /// Leases from the LAN's DHCP server (`--ipam-driver dhcp`), through the dhcp daemon.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dhcp: Option<DhcpIpam>,
    pub created: u64,
}

/// A network's link mode. Records keep the words they always had: the macvlan mode
/// ("private"), or the ipvlan mode and flag ("l3 private"; an ipvlan mode alone means
/// the bridge flag). The two sets of words do not overlap, so the words say which.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Macvlan(MacvlanMode),
    Ipvlan(IpvlanMode, IpvlanFlag),
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mode::Macvlan(m) => write!(f, "{m}"),
            Mode::Ipvlan(m, flag) => write!(f, "{m} {flag}"),
        }
    }
}

impl FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Mode, String> {
        match s.split_once(' ') {
            Some((mode, flag)) => Ok(Mode::Ipvlan(mode.parse()?, flag.parse()?)),
            None => match s.parse::<IpvlanMode>() {
                Ok(mode) => Ok(Mode::Ipvlan(mode, IpvlanFlag::Bridge)),
                Err(_) => Ok(Mode::Macvlan(s.parse()?)),
            },
        }
    }
}

impl Serialize for Mode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Mode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Mode, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

/// Where a DHCP network's leases come from: the dhcp daemon at `socket`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DhcpIpam {
    pub socket: std::path::PathBuf,
}

/// Where a network's addresses are reserved when several hosts share its subnet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterIpam {
    pub etcd: underlay_ipam::EtcdConf,
    /// This host's name in the store (default: the hostname).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Recorded before anything was made: a crash here leaves work for `gc`.
    Attaching,
    Attached,
    /// A detached command ended on its own: link, address and namespace are released;
    /// the record stays (with the exit code, and the log) until `rm` or `stop`.
    Exited,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub id: String,
    pub name: String,
    pub network: String,
    pub netns: PathBuf,
    /// Made by `underlay run` (removed with the endpoint) rather than by someone else.
    pub netns_owned: bool,
    pub ifname: String,
    pub phase: Phase,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<MacAddr>,
    #[serde(default)]
    pub ips: Vec<IpNet>,
    /// The `underlay` process looking after the command (`run`), with its start time so
    /// a reused PID is never taken for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keeper: Option<Proc>,
    /// The command's own process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<Proc>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    #[serde(default)]
    pub detached: bool,
    /// `run -d --rm`: no exited record is kept when the command ends.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub auto_remove: bool,
    /// How the command ended (its code, 128+N for signal N); set when `Exited`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<u8>,
    /// The CNI config ADD used; DEL uses the same.
    pub cni: serde_json::Value,
    pub created: u64,
}

/// A process, known by PID and start time (in clock ticks since boot), which together
/// name it uniquely.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proc {
    pub pid: u32,
    pub start: u64,
}

impl Proc {
    pub fn of(pid: u32) -> Option<Proc> {
        start_time(pid).map(|start| Proc { pid, start })
    }

    pub fn me() -> Proc {
        Proc::of(std::process::id()).expect("this process exists")
    }

    /// Still the same process (not gone, not a new one with the same PID).
    pub fn alive(&self) -> bool {
        start_time(self.pid) == Some(self.start)
    }

    /// SIGKILL, only if it is still this process.
    pub fn kill(&self) {
        if self.alive() {
            let _ =
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid as i32), nix::sys::signal::Signal::SIGKILL);
        }
    }
}

/// Field 22 of /proc/PID/stat: when the process started.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses; count from its end.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

pub fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// A random identifier, 32 hex digits.
/// The first `n` characters of an ID read from a record: a hand-edited or damaged
/// record may hold a shorter one (or one that is not ASCII), which is never a panic.
pub fn short(id: &str, n: usize) -> &str {
    id.char_indices().nth(n).map_or(id, |(i, _)| &id[..i])
}

pub fn new_id() -> String {
    use std::hash::{BuildHasher, RandomState};
    let (a, b) = (RandomState::new().hash_one(now()), RandomState::new().hash_one(std::process::id()));
    format!("{a:016x}{b:016x}")
}

/// What `enable` made, so `disable` removes exactly that.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostAccess {
    pub network: String,
    pub shim: String,
    pub parent: String,
    pub addresses: Vec<IpAddr>,
    /// Routed through the shim as a whole (the network's --ip-range); without one,
    /// each endpoint gets a host route.
    pub ranges: Vec<IpNet>,
    pub sysctls: Vec<underlay_linux::shim::Saved>,
    pub created: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_ids_never_panic() {
        assert_eq!(short("0123456789abcdef", 12), "0123456789ab");
        assert_eq!(short("abc", 12), "abc");
        assert_eq!(short("ééééé", 2), "éé");
        assert_eq!(short("", 8), "");
    }

    #[test]
    fn processes_are_known_by_pid_and_start() {
        let me = Proc::me();
        assert!(me.alive());
        assert!(!Proc { start: me.start + 1, ..me }.alive());
        assert_eq!(new_id().len(), 32);
        assert_ne!(new_id(), new_id());
    }

    /// A record written before the mode was typed (the mode a string) still loads, and
    /// is written back with the same words.
    #[test]
    fn old_network_records_load_with_their_modes() {
        let old = |driver: &str, mode: &str| {
            serde_json::json!({"name": "lan", "id": "0123456789abcdef", "driver": driver, "parent": "enp0s3",
                "mode": mode, "subnets": [{"subnet": "192.168.1.0/24", "gateway": "192.168.1.1"}],
                "internal": false, "ipv6": false, "mtu": 0, "created": 1})
        };
        for (driver, mode, want) in [
            ("macvlan", "bridge", Mode::Macvlan(MacvlanMode::Bridge)),
            ("macvlan", "passthru", Mode::Macvlan(MacvlanMode::Passthru)),
            ("ipvlan", "l2 bridge", Mode::Ipvlan(IpvlanMode::L2, IpvlanFlag::Bridge)),
            ("ipvlan", "l3 private", Mode::Ipvlan(IpvlanMode::L3, IpvlanFlag::Private)),
            ("ipvlan", "l3s", Mode::Ipvlan(IpvlanMode::L3s, IpvlanFlag::Bridge)),
        ] {
            let net: Network = serde_json::from_value(old(driver, mode)).unwrap();
            assert_eq!(net.mode, want, "{mode}");
            let again = serde_json::to_value(&net).unwrap();
            assert_eq!(again["mode"], if mode == "l3s" { "l3s bridge" } else { mode });
        }
        let e = serde_json::from_value::<Network>(old("macvlan", "bridged")).unwrap_err().to_string();
        assert!(e.contains("bridged"), "{e}");
        assert!(serde_json::from_value::<Network>(old("ipvlan", "l3 sideways")).is_err());
    }
}
