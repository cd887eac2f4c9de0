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
