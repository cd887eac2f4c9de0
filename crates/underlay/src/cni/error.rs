//! CNI errors: the spec's JSON shape and its numeric codes, mapped in one place.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Error codes. 0–99 are the spec's; 100 and up are underlay's own.
pub mod code {
    pub const INCOMPATIBLE_VERSION: u32 = 1;
    pub const UNSUPPORTED_FIELD: u32 = 2;
    pub const UNKNOWN_CONTAINER: u32 = 3;
    pub const INVALID_ENV: u32 = 4;
    pub const IO: u32 = 5;
    pub const DECODE: u32 = 6;
    pub const INVALID_CONFIG: u32 = 7;
    pub const TRY_AGAIN_LATER: u32 = 11;
    /// STATUS: the plugin cannot serve ADD now.
    pub const NOT_AVAILABLE: u32 = 50;
    /// STATUS: not available, and existing containers may have lost connectivity.
    pub const NOT_AVAILABLE_DEGRADED: u32 = 51;
    /// A kernel operation (netlink, sysctl, namespace) failed.
    pub const KERNEL: u32 = 100;
    /// The address is already in use on the LAN (ARP probe or IPv6 DAD).
    pub const ADDRESS_CONFLICT: u32 = 101;
    /// No free address is left in the configured ranges.
    pub const POOL_EXHAUSTED: u32 = 102;
    /// A delegated plugin failed without a CNI error of its own.
    pub const PLUGIN_FAILED: u32 = 103;
    /// What the CHECK found differs from what ADD made.
    pub const CHECK_FAILED: u32 = 104;
    /// The requested address is reserved by another container.
    pub const ADDRESS_TAKEN: u32 = 105;
    /// `CNI_IFNAME` already exists in the container's namespace.
    pub const IFNAME_TAKEN: u32 = 106;
}

/// An error as the spec shapes it: `{cniVersion, code, msg, details}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CniError {
    pub code: u32,
    pub msg: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub details: String,
}

impl CniError {
    pub fn new(code: u32, msg: impl Into<String>) -> CniError {
        CniError { code, msg: msg.into(), details: String::new() }
    }

    pub fn with_details(mut self, details: impl Into<String>) -> CniError {
        self.details = details.into();
        self
    }

    pub fn incompatible(msg: impl Into<String>) -> CniError {
        CniError::new(code::INCOMPATIBLE_VERSION, msg)
    }

    pub fn unsupported(msg: impl Into<String>) -> CniError {
        CniError::new(code::UNSUPPORTED_FIELD, msg)
    }

    pub fn env(msg: impl Into<String>) -> CniError {
        CniError::new(code::INVALID_ENV, msg)
    }

    pub fn io(msg: impl Into<String>) -> CniError {
        CniError::new(code::IO, msg)
    }

    pub fn decode(msg: impl Into<String>) -> CniError {
        CniError::new(code::DECODE, msg)
    }

    pub fn config(msg: impl Into<String>) -> CniError {
        CniError::new(code::INVALID_CONFIG, msg)
    }

    pub fn try_again(msg: impl Into<String>) -> CniError {
        CniError::new(code::TRY_AGAIN_LATER, msg)
    }

    pub fn not_available(msg: impl Into<String>) -> CniError {
        CniError::new(code::NOT_AVAILABLE, msg)
    }

    pub fn kernel(msg: impl Into<String>) -> CniError {
        CniError::new(code::KERNEL, msg)
    }

    /// Prefixes the message with what was being done, keeping the code.
    pub fn context(mut self, what: impl fmt::Display) -> CniError {
        self.msg = format!("{what}: {}", self.msg);
        self
    }

    /// The JSON a plugin prints on stdout when it fails.
    pub fn to_json(&self, version: &str) -> serde_json::Value {
        #[derive(Serialize)]
        struct Wire<'a> {
            #[serde(rename = "cniVersion")]
            cni_version: &'a str,
            #[serde(flatten)]
            error: &'a CniError,
        }
        serde_json::to_value(Wire { cni_version: version, error: self }).expect("an error always serializes")
    }
}

impl fmt::Display for CniError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (CNI code {})", self.msg, self.code)?;
        if !self.details.is_empty() {
            write!(f, ": {}", self.details)?;
        }
        Ok(())
    }
}

impl std::error::Error for CniError {}

/// Wraps an I/O failure, naming what was being done. ELOOP (from `O_NOFOLLOW`) gets
/// words a person can act on.
pub fn io_error(what: impl fmt::Display, err: std::io::Error) -> CniError {
    if err.raw_os_error() == Some(libc::ELOOP) {
        return CniError::io(format!("{what}: is a symbolic link; underlay's files are never opened through one"));
    }
    CniError::io(format!("{what}: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_has_the_spec_shape() {
        let err = CniError::config("bad mode \"x\"").with_details("use bridge");
        let json = err.to_json("1.0.0");
        assert_eq!(
            json,
            serde_json::json!({"cniVersion": "1.0.0", "code": 7, "msg": "bad mode \"x\"", "details": "use bridge"})
        );
        let bare = CniError::env("CNI_IFNAME is empty").to_json("0.4.0");
        assert_eq!(bare.as_object().unwrap().len(), 3, "details omitted when empty");
        let back: CniError = serde_json::from_value(json).unwrap();
        assert_eq!(back, err);
    }
}
