//! A killed ADD's claim landing while its retry allocates (issue 20): the retry must
//! answer the address the store holds for the container, never claim a second one.
//! The killed run's claim is held back deterministically: the retry reads the
//! container's reservations first (finding none), then the other ADD commits in full,
//! then the retry goes on with what it read.

mod support;

use serde_json::{Value, json};
use support::*;
use underlay::cni::version::Version;
use underlay::cni::{Attachment, CniArgs};
use underlay::ipam::store::Store;
use underlay_ipam::IpamConf;
use underlay_ipam::cluster::Cluster;
use underlay_ipam::store::EtcdStore;

/// The retry of `cid`'s ADD, paused after its first read while `meanwhile` runs;
/// the addresses it answers.
fn retry_around(raw: &Value, cid: &str, meanwhile: impl FnOnce()) -> Vec<String> {
    let conf = IpamConf::parse(raw, Version::V1_1_0, &CniArgs::default()).unwrap();
    let owner = Attachment { container_id: cid.into(), ifname: "eth0".into() };
    let mut store = EtcdStore::open(&conf).unwrap();
    assert!(store.owned(&owner).unwrap().is_empty(), "the retry starts from an empty store");
    meanwhile();
    let result = underlay_ipam::add_in(&mut store, &conf, &owner).unwrap();
    result.ips.iter().map(|c| c.address.addr().to_string()).collect()
}

fn answered(out: &Outcome) -> Vec<String> {
    assert!(out.ok, "ADD failed: {}", out.json);
    out.json["ips"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["address"].as_str().unwrap().split('/').next().unwrap().to_string())
        .collect()
}

#[test]
fn a_claim_landing_mid_retry_leaves_one_address_and_the_retry_answers_it() {
    let cluster = Cluster::start(1).unwrap();
    let etcd = cluster.etcd_conf();
    let raw = conf("race", &etcd, "n1", json!({"subnet": "10.31.0.0/24"}));
    let mut killed = Vec::new();
    let retry = retry_around(&raw, "c1", || killed = answered(&call("ADD", "c1", "", &raw)));
    let (by_ip, by_owner) = records(&etcd, "race");
    assert_eq!(by_ip.len(), 1, "one container, one address: {by_ip:?}");
    assert_eq!(by_owner.len(), 1, "{by_owner:?}");
    assert_eq!(retry, killed, "the retry answers what the store holds");
    assert_eq!(by_ip[0].0.to_string(), retry[0]);
    // The next ADD and CHECK agree with it; DEL leaves nothing.
    assert_eq!(answered(&call("ADD", "c1", "", &raw)), retry);
    assert!(call("DEL", "c1", "", &raw).ok);
    assert_eq!(records(&etcd, "race"), (vec![], vec![]));
}

#[test]
fn dual_stack_a_claim_landing_mid_retry_leaves_one_address_per_family() {
    let cluster = Cluster::start(1).unwrap();
    let etcd = cluster.etcd_conf();
    let ranges = json!({"ranges": [[{"subnet": "10.32.0.0/24"}], [{"subnet": "fd00:32::/64"}]]});
    let raw = conf("race6", &etcd, "n1", ranges);
    let mut killed = Vec::new();
    let retry = retry_around(&raw, "c1", || killed = answered(&call("ADD", "c1", "", &raw)));
    let (by_ip, by_owner) = records(&etcd, "race6");
    assert_eq!(by_ip.len(), 2, "one address per family: {by_ip:?}");
    assert_eq!(by_owner.len(), 2, "{by_owner:?}");
    assert_eq!(retry, killed);
    // Another container still gets its own.
    let other = answered(&call("ADD", "c2", "", &raw));
    assert!(other.iter().all(|ip| !retry.contains(ip)), "{other:?} vs {retry:?}");
}

#[test]
fn an_unreadable_key_under_the_owner_prefix_does_not_block_the_owner() {
    use etcd_client::{Txn, TxnOp};
    let cluster = Cluster::start(1).unwrap();
    let etcd = cluster.etcd_conf();
    let raw = conf("junk", &etcd, "n1", json!({"subnet": "10.37.0.0/24"}));
    let junk = "/underlay/ipam/junk/owner/n1/c1/eth0/not-an-address";
    support::etcd(&etcd).txn("plant", Txn::new().and_then([TxnOp::put(junk, "", None)])).unwrap();
    let out = call("ADD", "c1", "", &raw);
    assert!(out.ok, "{}", out.json);
    // (The junk key is no owner record; `records` would refuse it.)
    let held = support::etcd(&etcd).list("/underlay/ipam/junk/ip4/", true).unwrap();
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(answered(&call("ADD", "c1", "", &raw)), answered(&out), "and ADD stays idempotent");
}
