//! Hardware addresses: a 6-byte Ethernet MAC for configuration, and the any-length
//! hardware address that results may carry (InfiniBand's is 20 bytes).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An Ethernet MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MacAddr(pub [u8; 6]);

/// A hardware address of any length, as printed in CNI results.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HwAddr(pub Vec<u8>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid hardware address \"{0}\": expected hex bytes separated by ':'")]
pub struct ParseMacError(String);

fn parse_hex_bytes(s: &str) -> Result<Vec<u8>, ParseMacError> {
    let bad = || ParseMacError(s.to_string());
    let bytes = s
        .split([':', '-'])
        .map(|p| if p.len() == 2 { u8::from_str_radix(p, 16).map_err(|_| bad()) } else { Err(bad()) })
        .collect::<Result<Vec<u8>, _>>()?;
    if bytes.is_empty() || bytes.len() > 32 {
        return Err(bad());
    }
    Ok(bytes)
}

fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            f.write_str(":")?;
        }
        write!(f, "{b:02x}")?;
    }
    Ok(())
}

impl MacAddr {
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 1 == 1
    }

    pub fn is_zero(&self) -> bool {
        self.0 == [0; 6]
    }

    /// A locally administered unicast MAC derived from `parts` (a network and a stable
    /// name): the same parts give the same MAC on every host and after every restart.
    /// Parts are joined with a NUL, which no name contains, so ("ab", "c") and ("a",
    /// "bc") differ.
    pub fn stable(parts: &[&str]) -> MacAddr {
        let bytes = parts.iter().enumerate().flat_map(|(i, p)| (i > 0).then_some(0u8).into_iter().chain(p.bytes()));
        // FNV-1a, then a finalizer that spreads every input bit over the output.
        let mut h = crate::stable_hash(bytes);
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^= h >> 33;
        let b = h.to_be_bytes();
        // Locally administered (bit 1 set), unicast (bit 0 clear).
        MacAddr([(b[2] & 0xfc) | 0x02, b[3], b[4], b[5], b[6], b[7]])
    }

    /// A usable interface address: not zero, not multicast or broadcast.
    pub fn is_unicast(&self) -> bool {
        !self.is_zero() && !self.is_multicast()
    }
}

impl FromStr for MacAddr {
    type Err = ParseMacError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = parse_hex_bytes(s)?;
        let arr: [u8; 6] = bytes.try_into().map_err(|_| ParseMacError(s.to_string()))?;
        Ok(MacAddr(arr))
    }
}

impl FromStr for HwAddr {
    type Err = ParseMacError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_hex_bytes(s).map(HwAddr)
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}

impl fmt::Display for HwAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}

impl From<MacAddr> for HwAddr {
    fn from(m: MacAddr) -> HwAddr {
        HwAddr(m.0.to_vec())
    }
}

impl TryFrom<&HwAddr> for MacAddr {
    type Error = ParseMacError;
    fn try_from(h: &HwAddr) -> Result<MacAddr, ParseMacError> {
        h.0.as_slice().try_into().map(MacAddr).map_err(|_| ParseMacError(h.to_string()))
    }
}

macro_rules! string_serde {
    ($t:ty) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}
string_serde!(MacAddr);
string_serde!(HwAddr);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_macs_are_local_unicast_repeatable_and_distinct() {
        let a = MacAddr::stable(&["lan", "default", "web"]);
        assert_eq!(a, MacAddr::stable(&["lan", "default", "web"]));
        assert!(a.is_unicast() && a.0[0] & 2 == 2, "{a}");
        let others =
            [["lan", "default", "db"], ["wan", "default", "web"], ["lan", "prod", "web"], ["lan", "defaultw", "eb"]];
        for o in others {
            assert_ne!(MacAddr::stable(&o), a, "{o:?}");
        }
        let mut all: Vec<MacAddr> = (0..10_000).map(|i| MacAddr::stable(&["lan", "ns", &format!("pod-{i}")])).collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 10_000);
    }

    #[test]
    fn round_trips_and_refuses_garbage() {
        let m: MacAddr = "02:42:AC:11:00:02".parse().unwrap();
        assert_eq!(m.to_string(), "02:42:ac:11:00:02");
        assert!(m.is_unicast());
        assert!("01:00:5e:00:00:01".parse::<MacAddr>().unwrap().is_multicast());
        for bad in ["", "02:42", "02:42:ac:11:00:02:03", "zz:42:ac:11:00:02", "2:42:ac:11:00:02"] {
            assert!(bad.parse::<MacAddr>().is_err(), "{bad}");
        }
        let ib: HwAddr = "00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:01".parse().unwrap();
        assert_eq!(ib.0.len(), 20);
    }
}
