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

/// The reference's `{"option": "...", "value": "...", "fromArg": "..."}` entries;
/// `option` is a number or one of the names below. `skipDefault` is accepted and has
/// no effect: the default request list is always sent.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OptionEntry {
    option: String,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    from_arg: Option<String>,
}

#[derive(Debug)]
pub struct Conf {
    pub network: String,
    pub socket: PathBuf,
    /// Extra option codes to ask the server for.
    pub request: Vec<u8>,
    pub timeout: Duration,
    /// Option 12 as `provide` says (a value, or a `CNI_ARGS` key's value).
    pub hostname: Option<String>,
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
            request.push(code);
        }
        let mut hostname = None;
        for (i, e) in w.provide.iter().enumerate() {
            // Only the host name can be provided: the client identifier is made per
            // attachment (one fixed value would make every container the same client).
            if option_code(&e.option) != Some(12) {
                return Err(CniError::unsupported(format!(
                    "ipam.provide[{i}].option \"{}\": only host-name (12) can be provided",
                    e.option
                )));
            }
            hostname = match (&e.value, &e.from_arg) {
                (Some(v), _) => Some(v.clone()),
                (None, Some(arg)) => call.env.args.get(arg).map(str::to_string),
                (None, None) => {
                    return Err(CniError::config(format!("ipam.provide[{i}] needs \"value\" or \"fromArg\"")));
                }
            };
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
            hostname,
        })
    }
}
