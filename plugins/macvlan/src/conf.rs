//! The macvlan config: the reference's keys and defaults, plus `source` mode's MAC list
//! and the announcement settings.

use std::time::Duration;

use serde::Deserialize;
use underlay::MacAddr;
use underlay::cni::{Call, CniError, Dns};
use underlay_linux::MacvlanMode;
use underlay_linux::configure::Settings;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    #[serde(default)]
    master: String,
    #[serde(default)]
    mode: String,
    #[serde(default)]
    mtu: i64,
    #[serde(default)]
    mac: String,
    #[serde(default)]
    link_in_container: bool,
    bcqueuelen: Option<u32>,
    #[serde(default)]
    source_macs: Vec<String>,
    announce_count: Option<u32>,
    announce_interval_ms: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct Conf {
    /// `None`: the interface of the default route.
    pub master: Option<String>,
    pub mode: MacvlanMode,
    /// 0: the master's.
    pub mtu: u32,
    pub mac: Option<MacAddr>,
    /// The master lives in the container's namespace, not the node's.
    pub link_in_container: bool,
    pub bcqueuelen: Option<u32>,
    pub sources: Vec<MacAddr>,
    pub settings: Settings,
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
    pub fn parse(call: &Call) -> Result<Conf, CniError> {
        let raw: Raw = call.conf_as()?;
        let mode = match raw.mode.as_str() {
            "" => MacvlanMode::Bridge,
            m => m.parse().map_err(|e: String| CniError::config(format!("mode: {e}")))?,
        };
        let mtu = u32::try_from(raw.mtu)
            .map_err(|_| CniError::config(format!("mtu {} must be 0 (the master's) or a positive number", raw.mtu)))?;
        // Precedence as the reference: runtimeConfig.mac, then CNI_ARGS MAC=, then mac.
        call.env.args.check_known(&["MAC", "IP"])?;
        let mac = match (call.conf.runtime::<String>("mac")?, call.env.args.get("MAC"), raw.mac.as_str()) {
            (Some(m), _, _) => Some(parse_mac(&m, "runtimeConfig.mac", CniError::config)?),
            (None, Some(m), _) => Some(parse_mac(m, "CNI_ARGS MAC", CniError::env)?),
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
        let mut settings = Settings::default();
        if let Some(n) = raw.announce_count {
            settings.announce_count = n;
        }
        if let Some(ms) = raw.announce_interval_ms {
            settings.announce_interval = Duration::from_millis(ms);
        }
        Ok(Conf {
            master: Some(raw.master).filter(|m| !m.is_empty()),
            mode,
            mtu,
            mac,
            link_in_container: raw.link_in_container,
            bcqueuelen: raw.bcqueuelen,
            sources,
            settings,
            ipam: call.conf.ipam_type()?.map(str::to_string),
            dns: call.conf.dns.clone().unwrap_or_default(),
        })
    }
}
