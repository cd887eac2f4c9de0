//! Network configuration: the keys every plugin shares, the conflist a runtime reads,
//! and typed access to the rest. Unknown keys are kept so nothing is lost on the way
//! to a delegated plugin.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::error::CniError;
use super::golike::{self, Go, fold_keys};
use super::result::Dns;

/// The keys the spec defines for every plugin. Plugin-specific structs flatten this in.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NetConf {
    #[serde(default)]
    pub cni_version: String,
    #[serde(default)]
    pub name: String,
    #[serde(rename = "type", default)]
    pub plugin_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<Map<String, Value>>,
    /// Handed whole to the IPAM plugin; only `type` is read here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipam: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<Dns>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_config: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev_result: Option<Value>,
    /// Everything else, passed through untouched.
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// NetConf as derived; read only after [`fold_keys`], since `flatten` hides the
/// field names from the Go-style decoder.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NetConfWire {
    #[serde(default)]
    cni_version: String,
    #[serde(default)]
    name: String,
    #[serde(rename = "type", default)]
    plugin_type: String,
    #[serde(default)]
    capabilities: Option<Map<String, Value>>,
    /// Handed whole to the IPAM plugin; only `type` is read here.
    #[serde(default)]
    ipam: Option<Map<String, Value>>,
    #[serde(default)]
    dns: Option<Dns>,
    #[serde(default)]
    runtime_config: Option<Map<String, Value>>,
    #[serde(default)]
    args: Option<Map<String, Value>>,
    #[serde(default)]
    prev_result: Option<Value>,
    /// Everything else, passed through untouched.
    #[serde(flatten)]
    rest: Map<String, Value>,
}

/// NetConf's keys, for case folding (see [`super::golike`]).
const NETCONF_KEYS: &[&str] =
    &["cniVersion", "name", "type", "capabilities", "ipam", "dns", "runtimeConfig", "args", "prevResult"];

impl<'de> Deserialize<'de> for NetConf {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = fold_keys(Map::<String, Value>::deserialize(d)?, NETCONF_KEYS);
        let w = NetConfWire::deserialize(Go(Value::Object(map))).map_err(serde::de::Error::custom)?;
        Ok(NetConf {
            cni_version: w.cni_version,
            name: w.name,
            plugin_type: w.plugin_type,
            capabilities: w.capabilities,
            ipam: w.ipam,
            dns: w.dns,
            runtime_config: w.runtime_config,
            args: w.args,
            prev_result: w.prev_result,
            rest: w.rest,
        })
    }
}

/// One (container, interface) pair a runtime still uses; GC keeps these.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Attachment {
    #[serde(rename = "containerID")]
    pub container_id: String,
    pub ifname: String,
}

/// The spec's key on `main`, and the spelling the 1.1.0 tag used; libcni sends both.
pub const VALID_ATTACHMENTS: &str = "cni.dev/valid-attachments";
pub const ATTACHMENTS_OLD: &str = "cni.dev/attachments";

impl NetConf {
    /// The IPAM plugin's `type`, if the config names one. `"ipam": {}` means none.
    pub fn ipam_type(&self) -> Result<Option<&str>, CniError> {
        let Some(ipam) = &self.ipam else {
            return Ok(None);
        };
        match ipam.get("type").or_else(|| ipam.iter().find(|(k, _)| k.eq_ignore_ascii_case("type")).map(|(_, v)| v)) {
            Some(Value::Null) => Ok(None),
            None => Ok(None),
            Some(Value::String(t)) if t.is_empty() => Ok(None),
            Some(Value::String(t)) => {
                if t.contains('/') {
                    return Err(CniError::config(format!("ipam.type \"{t}\" must be a plugin name, not a path")));
                }
                Ok(Some(t))
            }
            Some(other) => Err(CniError::config(format!("ipam.type must be a string, got {other}"))),
        }
    }

    /// The attachments GC must keep, from whichever key the runtime sent.
    pub fn valid_attachments(&self) -> Result<Vec<Attachment>, CniError> {
        let raw = self.rest.get(VALID_ATTACHMENTS).or_else(|| self.rest.get(ATTACHMENTS_OLD));
        match raw {
            None => Ok(Vec::new()),
            Some(v) => {
                serde_json::from_value(v.clone()).map_err(|e| CniError::config(format!("{VALID_ATTACHMENTS}: {e}")))
            }
        }
    }

    /// A `runtimeConfig` entry, typed; code 7 naming the key when it does not fit.
    pub fn runtime<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, CniError> {
        let rc = self.runtime_config.clone().map(Value::Object).unwrap_or_default();
        let Some(v) = golike::get(&rc, key) else {
            return Ok(None);
        };
        typed(v.clone(), &format!("runtimeConfig.{key}")).map(Some)
    }
}

/// Deserializes `value` into `T` with Go's rules ([`golike`]); errors name the path of the bad key under `what`.
pub fn typed<T: DeserializeOwned>(value: Value, what: &str) -> Result<T, CniError> {
    serde_path_to_error::deserialize(Go(value)).map_err(|e| {
        let path = e.path().to_string();
        let key = match (what.is_empty(), path.as_str()) {
            (true, ".") => "network config".to_string(),
            (true, p) => format!("key \"{p}\""),
            (false, ".") => format!("key \"{what}\""),
            (false, p) => format!("key \"{what}.{p}\""),
        };
        CniError::config(format!("{key}: {}", e.into_inner()))
    })
}

/// A network configuration list, as runtimes read it from `/etc/cni/net.d/*.conflist`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetConfList {
    #[serde(default)]
    pub cni_version: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cni_versions: Vec<String>,
    pub name: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disable_check: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disable_gc: bool,
    pub plugins: Vec<Map<String, Value>>,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

impl NetConfList {
    /// The config the runtime hands plugin `index`, as libcni builds it: the list's
    /// version and name inserted, `capabilities` replaced by the `runtimeConfig` the
    /// runtime offers for them, and the previous plugin's result.
    pub fn plugin_config(
        &self,
        index: usize,
        runtime: &Map<String, Value>,
        prev_result: Option<&Value>,
    ) -> Map<String, Value> {
        let mut conf = self.plugins[index].clone();
        conf.insert("cniVersion".into(), Value::String(self.cni_version.clone()));
        conf.insert("name".into(), Value::String(self.name.clone()));
        if let Some(Value::Object(caps)) = conf.remove("capabilities") {
            let rc: Map<String, Value> = caps
                .iter()
                .filter(|(_, on)| on.as_bool() == Some(true))
                .filter_map(|(cap, _)| runtime.get(cap).map(|v| (cap.clone(), v.clone())))
                .collect();
            if !rc.is_empty() {
                conf.insert("runtimeConfig".into(), Value::Object(rc));
            }
        }
        if let Some(prev) = prev_result {
            conf.insert("prevResult".into(), prev.clone());
        }
        conf
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Debug, Deserialize)]
    struct Macvlanish {
        #[serde(flatten)]
        net: NetConf,
        master: String,
        #[serde(default)]
        mtu: u32,
    }

    #[test]
    fn unknown_keys_are_kept_and_plugin_keys_are_not() {
        let v = json!({"cniVersion": "0.4.0", "name": "n", "type": "macvlan", "master": "enp0s3",
                       "x-vendor": {"a": 1}, "ipam": {"type": "host-local", "subnet": "10.0.0.0/24"}});
        let c: Macvlanish = typed(v.clone(), "").unwrap();
        assert_eq!((c.master.as_str(), c.mtu), ("enp0s3", 0));
        assert_eq!(c.net.rest.get("x-vendor"), Some(&json!({"a": 1})));
        assert!(!c.net.rest.contains_key("master"));
        assert_eq!(c.net.ipam_type().unwrap(), Some("host-local"));
        let plain: NetConf = typed(v, "").unwrap();
        assert!(plain.rest.contains_key("master"), "a plain NetConf keeps plugin keys as unknown");
        assert_eq!(serde_json::to_value(&plain).unwrap()["master"], "enp0s3");
    }

    #[test]
    fn type_errors_name_the_key() {
        let v = json!({"cniVersion": "0.4.0", "name": "n", "type": "macvlan", "master": "e", "mtu": "big"});
        let e = typed::<Macvlanish>(v, "").unwrap_err();
        assert_eq!(e.code, 7);
        assert!(e.msg.contains("mtu"), "{}", e.msg);
    }

    #[test]
    fn empty_ipam_means_none_and_paths_are_refused() {
        let c: NetConf = typed(json!({"ipam": {}}), "").unwrap();
        assert_eq!(c.ipam_type().unwrap(), None);
        let c: NetConf = typed(json!({"ipam": {"type": "../../bin/sh"}}), "").unwrap();
        assert_eq!(c.ipam_type().unwrap_err().code, 7);
    }

    #[test]
    fn attachments_from_either_key() {
        for key in [VALID_ATTACHMENTS, ATTACHMENTS_OLD] {
            let c: NetConf = typed(json!({key: [{"containerID": "c1", "ifname": "eth0"}]}), "").unwrap();
            assert_eq!(
                c.valid_attachments().unwrap(),
                vec![Attachment { container_id: "c1".into(), ifname: "eth0".into() }]
            );
        }
    }

    #[test]
    fn conflist_builds_plugin_config_like_libcni() {
        let list: NetConfList = serde_json::from_value(json!({
            "cniVersion": "1.0.0", "name": "lan",
            "plugins": [{"type": "macvlan", "master": "enp0s3", "capabilities": {"mac": true, "ips": false},
                         "ipam": {"type": "host-local"}}]
        }))
        .unwrap();
        let runtime: Map<String, Value> =
            json!({"mac": "02:00:00:00:00:01", "ips": ["10.0.0.5/24"]}).as_object().unwrap().clone();
        let conf = list.plugin_config(0, &runtime, None);
        assert_eq!(conf["name"], "lan");
        assert_eq!(conf["cniVersion"], "1.0.0");
        assert_eq!(conf["runtimeConfig"], json!({"mac": "02:00:00:00:00:01"}));
        assert!(!conf.contains_key("capabilities"));
    }
}
