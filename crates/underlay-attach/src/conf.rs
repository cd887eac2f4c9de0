//! Config of the `macvlan` and `ipvlan` plugins: the reference's keys and defaults,
//! plus `source` mode's MAC list, ipvlan's flag, the announcement settings and
//! `conflictDetection`.

use std::time::Duration;

use serde::Deserialize;
use underlay::MacAddr;
use underlay::cni::{Call, CniError, Dns};
use underlay_linux::MacvlanMode;
use underlay_linux::configure::Settings;
use underlay_linux::ipvlan::{IpvlanFlag, IpvlanMode};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    #[serde(default)]
    master: String,
    #[serde(default)]
    mode: String,
    #[serde(default)]
    flag: String,
    #[serde(default)]
    mtu: i64,
    #[serde(default)]
    mac: String,
    #[serde(default)]
    link_in_container: bool,
    vlan: Option<i64>,
    bcqueuelen: Option<u32>,
    #[serde(default)]
    source_macs: Vec<String>,
    announce_count: Option<u32>,
    announce_interval_ms: Option<u64>,
    conflict_detection: Option<serde_json::Value>,
    #[serde(default)]
    stable_mac: bool,
}

/// Announcements beyond the first go out after ADD has answered; these bounds keep the
/// detached announcer short-lived (at most 16 rounds 10 s apart: under three minutes).
pub const MAX_ANNOUNCE_COUNT: u32 = 16;
pub const MAX_ANNOUNCE_INTERVAL_MS: u64 = 10_000;

/// Which plugin is reading the config (and which driver a network of the `underlay`
/// command uses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Driver {
    Macvlan,
    Ipvlan,
}

impl Driver {
    pub fn as_str(self) -> &'static str {
        match self {
            Driver::Macvlan => "macvlan",
            Driver::Ipvlan => "ipvlan",
        }
    }
}

/// The link to make, with what differs between the two kinds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Macvlan {
        mode: MacvlanMode,
        mac: Option<MacAddr>,
        sources: Vec<MacAddr>,
        bcqueuelen: Option<u32>,
    },
    /// Children share the master's MAC.
    Ipvlan {
        mode: IpvlanMode,
        flag: IpvlanFlag,
    },
}

impl Kind {
    pub fn mode_name(&self) -> String {
        match self {
            Kind::Macvlan { mode, .. } => mode.to_string(),
            Kind::Ipvlan { mode, flag } => format!("{mode} {flag}"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Conf {
    pub kind: Kind,
    /// `None`: the interface of the default route.
    pub master: Option<String>,
    /// 0: the master's.
    pub mtu: u32,
    /// The master lives in the container's namespace, not the node's.
    pub link_in_container: bool,
    /// `"vlan": VID`: the master is the 802.1Q sub-interface `MASTER.VID`.
    pub vlan: Option<u16>,
    pub settings: Settings,
    /// Probe IPv4 addresses before use; `None` when `conflictDetection` is `false`.
    pub detection: Option<crate::conflict::Detection>,
    /// The IPAM plugin's type; `None` for an L2-only attachment.
    pub ipam: Option<String>,
    pub dns: Dns,
}

fn parse_mac(value: &str, key: &str, code: fn(String) -> CniError) -> Result<MacAddr, CniError> {
    let m: MacAddr = value.parse().map_err(|_| code(format!("{key} \"{value}\" is not a MAC address")))?;
    if !m.is_unicast() {
        return Err(code(format!("{key} \"{value}\" is not a unicast MAC address")));
    }
    Ok(m)
}

impl Conf {
    pub fn parse(call: &Call, driver: Driver) -> Result<Conf, CniError> {
        let raw: Raw = call.conf_as()?;
        call.env.args.check_known(&["MAC", "IP"])?;
        let mtu = u32::try_from(raw.mtu)
            .map_err(|_| CniError::config(format!("mtu {} must be 0 (the master's) or a positive number", raw.mtu)))?;
        let kind = match driver {
            Driver::Macvlan => macvlan_kind(call, &raw)?,
            Driver::Ipvlan => ipvlan_kind(call, &raw)?,
        };
        let vlan = raw
            .vlan
            .map(|v| {
                u16::try_from(v)
                    .ok()
                    .filter(|v| (1..=4094).contains(v))
                    .ok_or_else(|| CniError::config(format!("vlan {v} is not a VLAN ID (1-4094)")))
            })
            .transpose()?;
        check_master(&raw.master)?;
        if let Some(vid) = vlan {
            check_master(&format!("{}.{vid}", raw.master))?;
            if raw.link_in_container {
                return Err(CniError::config(format!("vlan {vid} cannot be combined with linkInContainer")));
            }
        }
        let mut settings = Settings::default();
        if let Some(n) = raw.announce_count {
            if n > MAX_ANNOUNCE_COUNT {
                return Err(CniError::config(format!("announceCount {n} is above the limit of {MAX_ANNOUNCE_COUNT}")));
            }
            settings.announce_count = n;
        }
        if let Some(ms) = raw.announce_interval_ms {
            if ms > MAX_ANNOUNCE_INTERVAL_MS {
                return Err(CniError::config(format!(
                    "announceIntervalMs {ms} is above the limit of {MAX_ANNOUNCE_INTERVAL_MS}"
                )));
            }
            settings.announce_interval = Duration::from_millis(ms);
        }
        Ok(Conf {
            kind,
            master: Some(raw.master).filter(|m| !m.is_empty()),
            mtu,
            link_in_container: raw.link_in_container,
            vlan,
            settings,
            detection: crate::conflict::Detection::parse(raw.conflict_detection.as_ref())?,
            ipam: call.conf.ipam_type()?.map(str::to_string),
            dns: call.conf.dns.clone().unwrap_or_default(),
        })
    }
}

/// What the kernel would refuse with a bare errno, refused up front with the name.
fn check_master(master: &str) -> Result<(), CniError> {
    // IFNAMSIZ is 16 with the terminating NUL.
    if master.len() > 15 {
        return Err(CniError::config(format!(
            "master \"{master}\" is {} bytes; interface names have at most 15",
            master.len()
        )));
    }
    if master == "lo" {
        return Err(CniError::config("master \"lo\" is the loopback device; it cannot carry macvlan/ipvlan links"));
    }
    Ok(())
}

fn macvlan_kind(call: &Call, raw: &Raw) -> Result<Kind, CniError> {
    let mode = match raw.mode.as_str() {
        "" => MacvlanMode::Bridge,
        m => m.parse().map_err(|e: String| CniError::config(format!("mode: {e}")))?,
    };
    if !raw.flag.is_empty() {
        return Err(CniError::config(format!("flag \"{}\" is an ipvlan setting; macvlan has modes only", raw.flag)));
    }
    // Precedence as the reference: runtimeConfig.mac, then CNI_ARGS MAC=, then mac.
    let mac = match (call.conf.runtime::<String>("mac")?, call.env.args.get("MAC"), raw.mac.as_str()) {
        (Some(m), _, _) => Some(parse_mac(&m, "runtimeConfig.mac", CniError::config)?),
        (None, Some(m), _) => Some(parse_mac(m, "CNI_ARGS MAC", CniError::env)?),
        (None, None, "") if raw.stable_mac => Some(stable_mac(call)?),
        (None, None, "") => None,
        (None, None, m) => Some(parse_mac(m, "mac", CniError::config)?),
    };
    if !raw.source_macs.is_empty() && mode != MacvlanMode::Source {
        return Err(CniError::config(format!("sourceMacs only applies to mode \"source\", not \"{mode}\"")));
    }
    let sources = raw
        .source_macs
        .iter()
        .enumerate()
        .map(|(i, m)| parse_mac(m, &format!("sourceMacs[{i}]"), CniError::config))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Kind::Macvlan { mode, mac, sources, bcqueuelen: raw.bcqueuelen })
}

/// `stableMac`: the MAC follows the network and the pod's name, so a pod made again
/// under the same name gets the same MAC (DHCP reservations, LAN inventories and ARP
/// caches stay valid).
fn stable_mac(call: &Call) -> Result<MacAddr, CniError> {
    let (ns, pod) = (call.env.args.get("K8S_POD_NAMESPACE"), call.env.args.get("K8S_POD_NAME"));
    match (ns, pod) {
        (Some(ns), Some(pod)) if !pod.is_empty() => Ok(MacAddr::stable(&[&call.conf.name, ns, pod])),
        _ => Err(CniError::env(
            "stableMac needs the pod's name: CNI_ARGS has no K8S_POD_NAMESPACE and K8S_POD_NAME (runtimes send them \
             with IgnoreUnknown=1)",
        )),
    }
}

fn ipvlan_kind(call: &Call, raw: &Raw) -> Result<Kind, CniError> {
    let mode = match raw.mode.as_str() {
        "" => IpvlanMode::L2,
        m => m.parse().map_err(|e: String| CniError::config(format!("mode: {e}")))?,
    };
    let flag = match raw.flag.as_str() {
        "" => IpvlanFlag::Bridge,
        f => f.parse().map_err(|e: String| CniError::config(format!("flag: {e}")))?,
    };
    // Every ipvlan child uses its master's MAC; asking for another cannot be honoured.
    // The code follows where the request came from: the config (7) or CNI_ARGS (4).
    let asked = [
        (!raw.mac.is_empty()).then(|| (format!("mac \"{}\"", raw.mac), CniError::config as fn(String) -> CniError)),
        call.env.args.get("MAC").map(|m| (format!("CNI_ARGS MAC=\"{m}\""), CniError::env as fn(String) -> CniError)),
        call.conf.runtime::<String>("mac")?.map(|m| (format!("runtimeConfig.mac \"{m}\""), CniError::config as _)),
    ];
    if let Some((what, code)) = asked.into_iter().flatten().next() {
        return Err(code(format!(
            "{what}: ipvlan interfaces share their master's MAC address; use macvlan for a MAC of its own"
        )));
    }
    if !raw.source_macs.is_empty() || raw.bcqueuelen.is_some() {
        return Err(CniError::config("sourceMacs and bcqueuelen are macvlan settings"));
    }
    if raw.stable_mac {
        return Err(CniError::config("stableMac: ipvlan interfaces share their master's MAC address"));
    }
    Ok(Kind::Ipvlan { mode, flag })
}
