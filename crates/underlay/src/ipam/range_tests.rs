use super::*;
use proptest::prelude::*;

fn conf(subnet: &str) -> RangeConf {
    RangeConf { subnet: subnet.parse().unwrap(), range_start: None, range_end: None, gateway: None }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn defaults_follow_host_local() {
    let r = conf("192.168.1.0/24").canonicalize().unwrap();
    assert_eq!((r.start, r.end, r.gateway), (ip("192.168.1.1"), ip("192.168.1.254"), ip("192.168.1.1")));
    assert_eq!(r.size(), 253);
    let r6 = conf("2001:db8::/120").canonicalize().unwrap();
    assert_eq!((r6.start, r6.end), (ip("2001:db8::1"), ip("2001:db8::ff")));
}

#[test]
fn seed_range_is_100_to_200() {
    let mut c = conf("192.168.1.0/24");
    c.range_start = Some(ip("192.168.1.100"));
    c.range_end = Some(ip("192.168.1.200"));
    c.gateway = Some(ip("192.168.1.1"));
    let r = c.canonicalize().unwrap();
    assert_eq!(r.size(), 101);
    let set = RangeSet(vec![r]);
    let first: Vec<_> = set.candidates(None).take(2).map(|(ip, _)| ip).collect();
    assert_eq!(first, [ip("192.168.1.100"), ip("192.168.1.101")]);
    let after: Vec<_> = set.candidates(Some(ip("192.168.1.200"))).take(1).map(|(ip, _)| ip).collect();
    assert_eq!(after, [ip("192.168.1.100")], "wraps around after the end");
}

#[test]
fn bad_ranges_name_the_key_and_value() {
    let cases = [
        ("192.168.1.5/24", None, None, None, "host bits"),
        ("192.168.1.0/31", None, None, None, "too small"),
        ("192.168.1.0/24", Some("10.0.0.1"), None, None, "gateway \"10.0.0.1\""),
        ("192.168.1.0/24", None, Some("192.168.2.1"), None, "rangeStart \"192.168.2.1\""),
        ("192.168.1.0/24", None, None, Some("192.168.2.1"), "rangeEnd \"192.168.2.1\""),
        ("192.168.1.0/24", None, Some("192.168.1.50"), Some("192.168.1.40"), "after rangeEnd"),
    ];
    for (subnet, gw, start, end, needle) in cases {
        let c = RangeConf {
            subnet: subnet.parse().unwrap(),
            gateway: gw.map(ip),
            range_start: start.map(ip),
            range_end: end.map(ip),
        };
        let e = c.canonicalize().unwrap_err();
        assert_eq!(e.code, 7);
        assert!(e.msg.contains(needle), "{needle}: {}", e.msg);
    }
}

#[test]
fn sets_refuse_overlap_and_mixed_families() {
    let a = conf("10.0.0.0/24");
    let b = RangeConf { range_start: Some(ip("10.0.0.100")), ..conf("10.0.0.0/24") };
    assert!(RangeSet::canonicalize(&[a.clone(), b], 0).unwrap_err().msg.contains("overlaps"));
    assert!(RangeSet::canonicalize(&[a, conf("2001:db8::/64")], 1).unwrap_err().msg.contains("mixes"));
}

#[test]
fn candidates_cover_several_ranges_and_skip_gateways() {
    let set = RangeSet::canonicalize(&[conf("10.0.0.0/29"), conf("10.0.1.0/29")], 0).unwrap();
    let all: Vec<String> = set.candidates(None).map(|(ip, _)| ip.to_string()).collect();
    // .1 is each range's gateway; .7 is broadcast.
    assert_eq!(
        all,
        [
            "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6", "10.0.1.2", "10.0.1.3", "10.0.1.4", "10.0.1.5",
            "10.0.1.6"
        ]
    );
    assert_eq!(set.size(), 10);
    let from_mid: Vec<String> = set.candidates(Some(ip("10.0.1.5"))).map(|(ip, _)| ip.to_string()).collect();
    assert_eq!(from_mid.len(), 10);
    assert_eq!(from_mid[0], "10.0.1.6");
    assert_eq!(from_mid[1], "10.0.0.2");
}

proptest! {
    /// Whatever the range and starting point, every usable address is offered exactly
    /// once and the gateway never.
    #[test]
    fn candidates_offer_each_address_once(prefix in 24u8..=30, start_off in 0u32..64, len in 0u32..64, last_off in proptest::option::of(0u32..300)) {
        let net: IpNet = format!("10.9.0.0/{prefix}").parse().unwrap();
        let hosts = (1u32 << (32 - prefix)) - 2;
        let start = 1 + start_off % hosts;
        let end = (start + len).min(hosts);
        let at = |n: u32| IpAddr::V4(Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 9, 0, 0)) + n));
        let c = RangeConf { subnet: net, range_start: Some(at(start)), range_end: Some(at(end)), gateway: None };
        let set = RangeSet(vec![c.canonicalize().unwrap()]);
        let offered: Vec<IpAddr> = set.candidates(last_off.map(at)).map(|(ip, _)| ip).collect();
        let mut unique = offered.clone();
        unique.sort();
        unique.dedup();
        prop_assert_eq!(unique.len(), offered.len());
        prop_assert_eq!(offered.len() as u128, set.size());
        prop_assert!(!offered.contains(&at(1)));
    }
}

#[test]
fn nth_counts_through_every_range_in_order() {
    let mut a = conf("10.0.0.0/24");
    (a.range_start, a.range_end) = (Some(ip("10.0.0.10")), Some(ip("10.0.0.12")));
    let mut b = conf("10.0.1.0/24");
    (b.range_start, b.range_end) = (Some(ip("10.0.1.5")), Some(ip("10.0.1.6")));
    let set = RangeSet(vec![a.canonicalize().unwrap(), b.canonicalize().unwrap()]);
    let all: Vec<_> = (0..set.size()).map(|k| set.nth(k).unwrap()).collect();
    assert_eq!(all, [ip("10.0.0.10"), ip("10.0.0.11"), ip("10.0.0.12"), ip("10.0.1.5"), ip("10.0.1.6")]);
    assert_eq!(set.nth(set.size()), None);
}

#[test]
fn addresses_and_numbers_round_trip() {
    for s in ["0.0.0.0", "10.1.2.3", "255.255.255.255", "::", "2001:db8::1", "ffff::ffff"] {
        assert_eq!(from_u128(to_u128(ip(s)), ip(s)), ip(s));
    }
    assert_eq!(to_u128(ip("0.0.1.0")), 256);
}

#[test]
fn without_cuts_runs_around_points_up_to_the_last_address_of_the_family() {
    let runs = |s: &str, e: &str, p: &[&str]| -> Vec<(String, String)> {
        let points: Vec<IpAddr> = p.iter().map(|x| ip(x)).collect();
        without(ip(s), ip(e), &points).into_iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    };
    let pair = |a: &str, b: &str| (a.to_string(), b.to_string());
    assert_eq!(runs("10.0.0.1", "10.0.0.9", &[]), [pair("10.0.0.1", "10.0.0.9")]);
    assert_eq!(
        runs("10.0.0.1", "10.0.0.9", &["10.0.0.5", "10.0.0.1", "10.0.0.5", "fe80::1", "10.0.1.1"]),
        [pair("10.0.0.2", "10.0.0.4"), pair("10.0.0.6", "10.0.0.9")]
    );
    assert!(runs("10.0.0.1", "10.0.0.1", &["10.0.0.1"]).is_empty());
    let last = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
    assert_eq!(
        runs("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", last, &[last]),
        [pair("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe")]
    );
}
