//! Foreign holds: addresses a probe found in use by a device underlay does not manage
//! (a printer, a laptop, another node's pod), kept out of allocation until they expire
//! or an operator releases them.
//!
//! A plugin that found a conflict tells our IPAMs through one extra top-level key in
//! the config it passes on, `"underlay": {"foreignHolds": [{"ip", "mac", "until"}]}`;
//! the IPAM records the holds in the same locked step in which it picks the next
//! address. Third-party IPAMs ignore the key. In host-local's store a hold is an
//! ordinary reservation file named by the address, so the reference plugin sharing
//! the directory skips the address too; its text names no container the reference
//! could ever release (`foreign-hold <MAC> <until>`).

use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::MacAddr;
use crate::cni::conf::typed;
use crate::cni::golike::get;
use crate::cni::{Attachment, CniError};

/// The top-level config key our IPAMs read the extension from.
pub const EXTENSION_KEY: &str = "underlay";

/// The first word of a hold's record, where a container ID stands otherwise.
const RECORD_WORD: &str = "foreign-hold";

/// `ip` is in use by the device with `mac`; do not hand it out before `until` (seconds
/// since the Unix epoch).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForeignHold {
    pub ip: IpAddr,
    pub mac: MacAddr,
    pub until: u64,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Extension {
    #[serde(default)]
    foreign_holds: Vec<ForeignHold>,
}

impl ForeignHold {
    /// The owner a store records the hold under.
    pub fn record(&self) -> Attachment {
        Attachment { container_id: format!("{RECORD_WORD} {} {}", self.mac, self.until), ifname: String::new() }
    }

    /// The hold a store record stands for, if it is one.
    pub fn from_record(ip: IpAddr, record: &Attachment) -> Option<ForeignHold> {
        let mut words = record.container_id.split(' ');
        if words.next()? != RECORD_WORD {
            return None;
        }
        let mac = words.next()?.parse().ok()?;
        let until = words.next()?.parse().ok()?;
        words.next().is_none().then_some(ForeignHold { ip, mac, until })
    }

    pub fn expired(&self, now: u64) -> bool {
        self.until <= now
    }
}

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// The holds a config carries (none without the extension); code 7 naming the key when
/// it is malformed.
pub fn from_conf(raw: &Value) -> Result<Vec<ForeignHold>, CniError> {
    match get(raw, EXTENSION_KEY) {
        None | Some(Value::Null) => Ok(vec![]),
        Some(v) => Ok(typed::<Extension>(v.clone(), EXTENSION_KEY)?.foreign_holds),
    }
}

/// `stdin` (a network config) with `holds` added to the extension, for the next IPAM
/// call. Holds already there are kept.
pub fn attach(stdin: &[u8], holds: &[ForeignHold]) -> Result<Vec<u8>, CniError> {
    let mut conf: Value =
        serde_json::from_slice(stdin).map_err(|e| CniError::config(format!("network config: {e}")))?;
    let Some(top) = conf.as_object_mut() else { return Err(CniError::config("network config is not an object")) };
    let ext = top.entry(EXTENSION_KEY).or_insert_with(|| Value::Object(Default::default()));
    let Some(ext) = ext.as_object_mut() else {
        return Err(CniError::config(format!("key \"{EXTENSION_KEY}\" must be an object")));
    };
    let list = ext.entry("foreignHolds").or_insert_with(|| Value::Array(vec![]));
    let Some(list) = list.as_array_mut() else {
        return Err(CniError::config(format!("key \"{EXTENSION_KEY}.foreignHolds\" must be a list")));
    };
    list.extend(holds.iter().map(|h| serde_json::to_value(h).expect("holds serialize")));
    Ok(serde_json::to_vec(&conf).expect("JSON values serialize"))
}

#[cfg(test)]
impl ForeignHold {
    /// The tests' hold: .100 held by 02:aa:bb:cc:dd:ee until 2027-01-15.
    pub(crate) fn sample() -> ForeignHold {
        ForeignHold {
            ip: "192.168.1.100".parse().unwrap(),
            mac: "02:aa:bb:cc:dd:ee".parse().unwrap(),
            until: 1_800_000_000,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipam::store::{decode_owner, encode_owner};

    fn hold() -> ForeignHold {
        ForeignHold::sample()
    }

    #[test]
    fn a_hold_survives_the_store_record_and_names_no_container() {
        let h = hold();
        let text = encode_owner(&h.record());
        assert_eq!(text, "foreign-hold 02:aa:bb:cc:dd:ee 1800000000\r\n");
        assert_eq!(ForeignHold::from_record(h.ip, &decode_owner(&text).unwrap()), Some(h));
        let pod = Attachment { container_id: "foreign-hold".into(), ifname: "eth0".into() };
        assert_eq!(ForeignHold::from_record(hold().ip, &pod), None);
    }

    #[test]
    fn the_extension_round_trips_through_a_config() {
        let stdin = br#"{"cniVersion":"1.0.0","name":"n","ipam":{"type":"host-local"}}"#;
        let once = attach(stdin, &[hold()]).unwrap();
        let twice = attach(&once, &[hold()]).unwrap();
        let conf: Value = serde_json::from_slice(&twice).unwrap();
        assert_eq!(from_conf(&conf).unwrap(), vec![hold(), hold()]);
        assert_eq!(conf["ipam"]["type"], "host-local");
        let bad: Value =
            serde_json::json!({"underlay": {"foreignHolds": [{"ip": "x", "mac": "02:00:00:00:00:01", "until": 1}]}});
        assert!(from_conf(&bad).unwrap_err().msg.contains("underlay"));
        let unknown: Value = serde_json::json!({"underlay": {"holds": []}});
        assert!(from_conf(&unknown).unwrap_err().msg.contains("holds"));
    }
}
