//! CNI specification versions and the rules that depend on them.

use std::fmt;

use super::error::CniError;

/// A CNI specification version this project speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Version {
    V0_1_0,
    V0_2_0,
    V0_3_0,
    V0_3_1,
    V0_4_0,
    V1_0_0,
    V1_1_0,
}

impl Version {
    /// Every version, oldest first.
    pub const ALL: &'static [Version] = &[
        Version::V0_1_0,
        Version::V0_2_0,
        Version::V0_3_0,
        Version::V0_3_1,
        Version::V0_4_0,
        Version::V1_0_0,
        Version::V1_1_0,
    ];

    /// The newest version.
    pub const LATEST: Version = Version::V1_1_0;

    pub fn as_str(self) -> &'static str {
        match self {
            Version::V0_1_0 => "0.1.0",
            Version::V0_2_0 => "0.2.0",
            Version::V0_3_0 => "0.3.0",
            Version::V0_3_1 => "0.3.1",
            Version::V0_4_0 => "0.4.0",
            Version::V1_0_0 => "1.0.0",
            Version::V1_1_0 => "1.1.0",
        }
    }

    /// Parses a version the way libcni does: an empty string means 0.1.0 (configs written
    /// before the field existed), and "1" or "1.0" name 1.0.0.
    pub fn parse(s: &str) -> Result<Version, CniError> {
        if s.is_empty() {
            return Ok(Version::V0_1_0);
        }
        let mut parts = [0u32; 3];
        for (i, piece) in s.split('.').enumerate() {
            let slot = parts.get_mut(i).ok_or_else(|| bad_version(s))?;
            *slot = piece.parse().map_err(|_| bad_version(s))?;
        }
        Version::ALL.iter().copied().find(|v| v.triple() == parts).ok_or_else(|| {
            CniError::incompatible(format!(
                "unsupported CNI version \"{s}\"; supported versions are {}",
                Version::list(Version::ALL)
            ))
        })
    }

    fn triple(self) -> [u32; 3] {
        match self {
            Version::V0_1_0 => [0, 1, 0],
            Version::V0_2_0 => [0, 2, 0],
            Version::V0_3_0 => [0, 3, 0],
            Version::V0_3_1 => [0, 3, 1],
            Version::V0_4_0 => [0, 4, 0],
            Version::V1_0_0 => [1, 0, 0],
            Version::V1_1_0 => [1, 1, 0],
        }
    }

    /// 0.1.0 and 0.2.0 results carry `ip4`/`ip6` instead of `interfaces`/`ips`.
    pub fn is_legacy_result(self) -> bool {
        self < Version::V0_3_0
    }

    /// 0.3.x and 0.4.0 results tag each IP with `"version": "4"|"6"`; 1.0.0 dropped it.
    pub fn tags_ip_version(self) -> bool {
        (Version::V0_3_0..Version::V1_0_0).contains(&self)
    }

    /// STATUS, GC and the extra interface/route fields exist since 1.1.0.
    pub fn has_1_1(self) -> bool {
        self >= Version::V1_1_0
    }

    pub fn list(versions: &[Version]) -> String {
        let names: Vec<&str> = versions.iter().map(|v| v.as_str()).collect();
        format!("[{}]", names.join(", "))
    }
}

fn bad_version(s: &str) -> CniError {
    CniError::incompatible(format!("invalid CNI version \"{s}\": expected MAJOR.MINOR.PATCH"))
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Version {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_known_and_short_forms() {
        assert_eq!(Version::parse("0.3.1").unwrap(), Version::V0_3_1);
        assert_eq!(Version::parse("1.0").unwrap(), Version::V1_0_0);
        assert_eq!(Version::parse("").unwrap(), Version::V0_1_0);
        for v in Version::ALL {
            assert_eq!(Version::parse(v.as_str()).unwrap(), *v);
        }
    }

    #[test]
    fn refuses_unknown_with_code_1() {
        for bad in ["0.5.0", "2.0.0", "x", "1.0.0.0", "1..0"] {
            let err = Version::parse(bad).unwrap_err();
            assert_eq!(err.code, 1, "{bad}");
            assert!(err.msg.contains(bad), "{}", err.msg);
        }
    }
}
