//! The CLI's own claims in the cluster store (aux addresses, the host-access shim's
//! address) race the plugins' claims: under contention every claim must still get a
//! free address, never "pool exhausted" while addresses are free. One etcd member on
//! loopback; the claims come from threads, as from several `underlay` processes.

use std::collections::HashSet;
use std::sync::Barrier;

use serde_json::json;
use underlay::cni::Attachment;
use underlay_cli::address_store::AddressStore;
use underlay_cli::model::Network;
use underlay_cli::state::Dirs;
use underlay_ipam::cluster::Cluster;

const CLAIMS: usize = 12;

#[test]
fn concurrent_claims_all_get_an_address_while_the_pool_has_room() {
    let cluster = Cluster::start(1).expect("etcd starts (scripts/deps installs etcd-server)");
    let net: Network = serde_json::from_value(json!({
        "name": "race", "id": "0123456789abcdef0123456789abcdef", "driver": "macvlan",
        "parent": "veth0", "mode": "bridge", "created": 0,
        // 14 usable addresses for 12 claims: the pool never runs dry.
        "subnets": [{ "subnet": "10.77.0.0/24", "ip_range": "10.77.0.0/28" }],
        "ipam": { "etcd": { "endpoints": cluster.endpoints() }, "node": "host1" },
    }))
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let dirs = Dirs { state: dir.path().join("state"), run: dir.path().join("run") };
    let store = AddressStore::of(&net, &dirs).unwrap();
    let start = Barrier::new(CLAIMS);
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..CLAIMS)
            .map(|i| {
                let (store, start) = (&store, &start);
                s.spawn(move || {
                    let owner = Attachment { container_id: format!("claim{i}"), ifname: "eth0".into() };
                    start.wait();
                    store.add(&owner, Vec::new()).map_err(|e| e.to_string())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let failed: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(failed.is_empty(), "claims failed with addresses free: {failed:?}");
    let ips: HashSet<_> = results.iter().flatten().map(|r| r.ips[0].address.addr()).collect();
    assert_eq!(ips.len(), CLAIMS, "every claim got its own address");
}
