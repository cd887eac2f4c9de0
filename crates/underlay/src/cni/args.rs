//! `CNI_ARGS`: the legacy `K=V;K=V` channel runtimes still use for `IP=`, `MAC=` and the
//! Kubernetes pod identity.

use super::error::CniError;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CniArgs {
    pairs: Vec<(String, String)>,
}

/// Keys every runtime may send and every plugin accepts.
const ALWAYS_KNOWN: &[&str] =
    &["IgnoreUnknown", "K8S_POD_NAMESPACE", "K8S_POD_NAME", "K8S_POD_INFRA_CONTAINER_ID", "K8S_POD_UID"];

impl CniArgs {
    /// Parses `K=V;K=V`. Empty pieces are tolerated; a piece without `=` is code 4.
    pub fn parse(raw: &str) -> Result<CniArgs, CniError> {
        let mut pairs = Vec::new();
        for piece in raw.split(';').filter(|p| !p.is_empty()) {
            let (k, v) = piece
                .split_once('=')
                .ok_or_else(|| CniError::env(format!("CNI_ARGS piece \"{piece}\" is not KEY=VALUE")))?;
            if k.is_empty() {
                return Err(CniError::env(format!("CNI_ARGS piece \"{piece}\" has an empty key")));
            }
            pairs.push((k.to_string(), v.to_string()));
        }
        Ok(CniArgs { pairs })
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// A key that may be given once: the reference refuses a repeated key rather than
    /// pick one of the values (code 7 naming both).
    pub fn single(&self, key: &str) -> Result<Option<&str>, CniError> {
        let mut values = self.pairs.iter().filter(|(k, _)| k == key).map(|(_, v)| v.as_str());
        let first = values.next();
        if let (Some(a), Some(b)) = (first, values.next()) {
            return Err(CniError::config(format!("CNI_ARGS has {key}= twice (\"{a}\" and \"{b}\"); give it once")));
        }
        Ok(first)
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// `IgnoreUnknown=1` (or `true`) lets runtimes send keys a plugin does not know.
    pub fn ignore_unknown(&self) -> bool {
        matches!(self.get("IgnoreUnknown").map(str::to_ascii_lowercase).as_deref(), Some("1" | "true"))
    }

    /// Refuses keys outside `known` unless `IgnoreUnknown` is set, as the reference does;
    /// code 2 naming the key and value.
    pub fn check_known(&self, known: &[&str]) -> Result<(), CniError> {
        if self.ignore_unknown() {
            return Ok(());
        }
        for (k, v) in &self.pairs {
            if !known.contains(&k.as_str()) && !ALWAYS_KNOWN.contains(&k.as_str()) {
                return Err(CniError::unsupported(format!(
                    "CNI_ARGS key \"{k}\" (value \"{v}\") is not supported; known keys: {}; set IgnoreUnknown=1 to ignore it",
                    known.join(", ")
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pairs() {
        let a = CniArgs::parse("IgnoreUnknown=1;K8S_POD_NAME=web;IP=192.168.1.100;;").unwrap();
        assert_eq!(a.get("IP"), Some("192.168.1.100"));
        assert!(a.ignore_unknown());
        assert_eq!(a.get("MAC"), None);
        assert!(CniArgs::parse("").unwrap().is_empty());
    }

    #[test]
    fn refuses_malformed_and_unknown() {
        let e = CniArgs::parse("IP").unwrap_err();
        assert_eq!(e.code, 4);
        assert!(e.msg.contains("\"IP\""));
        let a = CniArgs::parse("FOO=bar").unwrap();
        let e = a.check_known(&["IP", "MAC"]).unwrap_err();
        assert_eq!(e.code, 2);
        assert!(e.msg.contains("FOO") && e.msg.contains("bar"), "{}", e.msg);
        CniArgs::parse("IgnoreUnknown=true;FOO=bar").unwrap().check_known(&["IP"]).unwrap();
        CniArgs::parse("K8S_POD_NAME=x;IP=1.2.3.4").unwrap().check_known(&["IP"]).unwrap();
    }
}
