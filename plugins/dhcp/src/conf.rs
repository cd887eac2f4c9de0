//! The `ipam` section: the reference's keys (`daemonSocketPath`, `request`,
//! `provide`) plus `timeout`, parsed once into types.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use underlay::cni::conf::typed;
use underlay::cni::{Call, CniError};

use crate::rpc::DEFAULT_SOCKET;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Wire {
    #[serde(rename = "type")]
    _type: String,
    #[serde(default)]
    daemon_socket_path: Option<PathBuf>,
    #[serde(default)]
    request: Vec<OptionEntry>,
    #[serde(default)]
    provide: Vec<OptionEntry>,
    /// Seconds ADD may spend on DISCOVER..ACK.
    #[serde(default)]
    timeout: Option<f64>,
}

/// The reference's `{"option": "...", "value": "..."}` entries; `option` is a
/// number or one of the names below.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OptionEntry {
    option: String,
    #[serde(default)]
    skip_default: bool,
}

#[derive(Debug)]
pub struct Conf {
    pub network: String,
    pub socket: PathBuf,
    /// Extra option codes to ask the server for.
    pub request: Vec<u8>,
    pub timeout: Duration,
}

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

fn option_code(name: &str) -> Option<u8> {
    if let Ok(n) = name.parse::<u8>() {
        return Some(n);
    }
    Some(match name {
        "subnet-mask" => 1,
        "routers" => 3,
        "domain-name-servers" => 6,
        "host-name" => 12,
        "domain-name" => 15,
        "interface-mtu" => 26,
        "ntp-servers" => 42,
        "dhcp-client-identifier" => 61,
        "domain-search" => 119,
        "classless-static-routes" => 121,
        _ => return None,
    })
}

impl Conf {
    pub fn parse(call: &Call) -> Result<Conf, CniError> {
        let ipam = call.raw.get("ipam").cloned().ok_or_else(|| CniError::config("ipam: missing"))?;
        let w: Wire = typed(ipam, "ipam")?;
        let mut request = Vec::new();
        for (i, e) in w.request.iter().enumerate() {
            let code = option_code(&e.option).ok_or_else(|| {
                CniError::config(format!(
                    "ipam.request[{i}].option \"{}\" is not a DHCP option number or known name",
                    e.option
                ))
            })?;
            if !e.skip_default {
                request.push(code);
            }
        }
        for (i, e) in w.provide.iter().enumerate() {
            // The hostname (12) and client identifier (61) are always sent; other
            // provided options are not supported yet and say so instead of vanishing.
            match option_code(&e.option) {
                Some(12 | 61) => {}
                _ => {
                    return Err(CniError::unsupported(format!(
                        "ipam.provide[{i}].option \"{}\": only host-name (12) and dhcp-client-identifier (61) can be provided",
                        e.option
                    )));
                }
            }
        }
        let timeout = match w.timeout {
            None => DEFAULT_TIMEOUT,
            Some(t) if t.is_finite() && t > 0.0 && t <= 600.0 => Duration::from_secs_f64(t),
            Some(t) => return Err(CniError::config(format!("ipam.timeout {t} must be seconds in (0, 600]"))),
        };
        Ok(Conf {
            network: call.conf.name.clone(),
            socket: w.daemon_socket_path.unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET)),
            request,
            timeout,
        })
    }
}
