//! Address ranges and range sets with host-local's semantics: a subnet, an inclusive
//! start and end, and a gateway that is never handed out.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::cni::CniError;

/// A range as written in the config (every field but `subnet` optional).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RangeConf {
    pub subnet: IpNet,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range_start: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range_end: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
}

/// A validated range: every address from `start` to `end` but the gateway is usable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range {
    pub subnet: IpNet,
    pub start: IpAddr,
    pub end: IpAddr,
    pub gateway: IpAddr,
}

/// An address as a number, so ranges of either family share one piece of arithmetic.
pub fn to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// The address numbered `n` in `like`'s family (an IPv4 `n` keeps its low 32 bits).
pub fn from_u128(n: u128, like: IpAddr) -> IpAddr {
    match like {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from(n as u32)),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(n)),
    }
}

/// The runs of `start..=end` left once `points` are taken out, in order (points of the
/// other family or outside the run are ignored): how the host's own addresses are kept
/// out of the ranges an allocator draws from.
pub fn without(start: IpAddr, end: IpAddr, points: &[IpAddr]) -> Vec<(IpAddr, IpAddr)> {
    let (lo, hi) = (to_u128(start), to_u128(end));
    let mut cut: Vec<u128> = points
        .iter()
        .filter(|p| p.is_ipv4() == start.is_ipv4())
        .map(|p| to_u128(*p))
        .filter(|n| (lo..=hi).contains(n))
        .collect();
    cut.sort_unstable();
    cut.dedup();
    let mut out = Vec::new();
    // `None` once a point was the family's very last address.
    let mut from = Some(lo);
    for n in cut {
        if let Some(f) = from.filter(|f| *f < n) {
            out.push((from_u128(f, start), from_u128(n - 1, start)));
        }
        from = n.checked_add(1);
    }
    if let Some(f) = from.filter(|f| *f <= hi) {
        out.push((from_u128(f, start), end));
    }
    out
}

impl RangeConf {
    /// Fills the defaults and checks the range, as host-local does: the gateway
    /// defaults to the first address, the start to the first address (the gateway is
    /// then skipped), the end to the last address (IPv4: before the broadcast).
    pub fn canonicalize(&self) -> Result<Range, CniError> {
        let subnet = self.subnet;
        if subnet.addr() != subnet.network() {
            return Err(CniError::config(format!(
                "subnet \"{subnet}\" has host bits set; did you mean \"{}\"?",
                subnet.trunc()
            )));
        }
        if subnet.prefix_len() + 2 > subnet.max_prefix_len() {
            return Err(CniError::config(format!("subnet \"{subnet}\" is too small to allocate from")));
        }
        let net = to_u128(subnet.network());
        let first = from_u128(net + 1, subnet.addr());
        let last = match subnet {
            IpNet::V4(n) => IpAddr::V4(Ipv4Addr::from(u32::from(n.broadcast()) - 1)),
            IpNet::V6(n) => IpAddr::V6(n.broadcast()),
        };
        let inside = |key: &str, ip: IpAddr| {
            if subnet.contains(&ip) {
                Ok(ip)
            } else {
                Err(CniError::config(format!("{key} \"{ip}\" is not in subnet \"{subnet}\"")))
            }
        };
        let gateway = match self.gateway {
            Some(gw) => inside("gateway", gw)?,
            None => first,
        };
        let start = match self.range_start {
            Some(s) => inside("rangeStart", s)?,
            None => first,
        };
        let end = match self.range_end {
            Some(e) => inside("rangeEnd", e)?,
            None => last,
        };
        if to_u128(start) > to_u128(end) {
            return Err(CniError::config(format!("rangeStart \"{start}\" is after rangeEnd \"{end}\"")));
        }
        Ok(Range { subnet, start, end, gateway })
    }
}

impl Range {
    pub fn contains(&self, ip: IpAddr) -> bool {
        ip.is_ipv4() == self.start.is_ipv4() && (to_u128(self.start)..=to_u128(self.end)).contains(&to_u128(ip))
    }

    pub fn is_ipv4(&self) -> bool {
        self.start.is_ipv4()
    }

    /// The address with this range's prefix, as results print it.
    pub fn with_prefix(&self, ip: IpAddr) -> IpNet {
        IpNet::new(ip, self.subnet.prefix_len()).expect("prefix comes from a valid subnet")
    }

    fn overlaps(&self, other: &Range) -> bool {
        self.is_ipv4() == other.is_ipv4()
            && to_u128(self.start) <= to_u128(other.end)
            && to_u128(other.start) <= to_u128(self.end)
    }

    /// How many addresses can be handed out (the gateway excluded).
    pub fn size(&self) -> u128 {
        let n = to_u128(self.end) - to_u128(self.start) + 1;
        n - u128::from(self.contains(self.gateway))
    }
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.start, self.end)
    }
}

/// Ranges one address is taken from (host-local's inner list): allocation walks them
/// in order, round-robin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeSet(pub Vec<Range>);

impl RangeSet {
    pub fn canonicalize(confs: &[RangeConf], index: usize) -> Result<RangeSet, CniError> {
        if confs.is_empty() {
            return Err(CniError::config(format!("range set {index} is empty")));
        }
        let ranges = confs
            .iter()
            .map(RangeConf::canonicalize)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.context(format!("range set {index}")))?;
        let v4 = ranges[0].is_ipv4();
        if ranges.iter().any(|r| r.is_ipv4() != v4) {
            return Err(CniError::config(format!("range set {index} mixes IPv4 and IPv6 ranges")));
        }
        for (i, a) in ranges.iter().enumerate() {
            if let Some(b) = ranges[i + 1..].iter().find(|b| a.overlaps(b)) {
                return Err(CniError::config(format!("range set {index}: range {a} overlaps range {b}")));
            }
        }
        Ok(RangeSet(ranges))
    }

    pub fn is_ipv4(&self) -> bool {
        self.0[0].is_ipv4()
    }

    pub fn range_for(&self, ip: IpAddr) -> Option<&Range> {
        self.0.iter().find(|r| r.contains(ip))
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.range_for(ip).is_some()
    }

    pub fn overlaps(&self, other: &RangeSet) -> bool {
        self.0.iter().any(|a| other.0.iter().any(|b| a.overlaps(b)))
    }

    pub fn size(&self) -> u128 {
        self.0.iter().map(Range::size).fold(0u128, u128::saturating_add)
    }

    /// The `k`-th address counting through the ranges in order, `size()` of them in all
    /// (a gateway inside a range may be the answer: callers that care filter it).
    pub fn nth(&self, mut k: u128) -> Option<IpAddr> {
        for r in &self.0 {
            if k < r.size() {
                return Some(from_u128(to_u128(r.start) + k, r.start));
            }
            k -= r.size();
        }
        None
    }

    /// Candidates in allocation order: from just after `last` (or the first range's
    /// start), through every range, wrapping around once, the gateways skipped.
    pub fn candidates(&self, last: Option<IpAddr>) -> Candidates<'_> {
        let (range, cursor) = match last.and_then(|ip| self.0.iter().position(|r| r.contains(ip)).map(|i| (i, ip))) {
            Some((i, ip)) => (i, Some(to_u128(ip))),
            None => (0, None),
        };
        Candidates { set: self, range, cursor, first: None, done: false }
    }
}

impl fmt::Display for RangeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(Range::to_string).collect();
        f.write_str(&parts.join(","))
    }
}

/// Iterator over allocation candidates (see [`RangeSet::candidates`]).
pub struct Candidates<'a> {
    set: &'a RangeSet,
    range: usize,
    cursor: Option<u128>,
    /// Where the walk began; meeting it again means every address was offered.
    first: Option<(usize, u128)>,
    done: bool,
}

impl<'a> Iterator for Candidates<'a> {
    type Item = (IpAddr, &'a Range);

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            let ranges = &self.set.0;
            let cur = match self.cursor {
                None => to_u128(ranges[self.range].start),
                Some(c) if c == to_u128(ranges[self.range].end) => {
                    self.range = (self.range + 1) % ranges.len();
                    to_u128(ranges[self.range].start)
                }
                Some(c) => c + 1,
            };
            self.cursor = Some(cur);
            match self.first {
                None => self.first = Some((self.range, cur)),
                Some(f) if f == (self.range, cur) => {
                    self.done = true;
                    break;
                }
                Some(_) => {}
            }
            let r = &ranges[self.range];
            let ip = from_u128(cur, r.start);
            if ip != r.gateway {
                return Some((ip, r));
            }
        }
        None
    }
}

#[cfg(test)]
#[path = "range_tests.rs"]
mod tests;
