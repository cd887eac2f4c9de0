//! host-local's verbs with foreign holds (`super::super::hold`): recorded before
//! allocating, kept by GC until they expire.

use super::super::conf::HostLocalConf;
use super::super::hold::{EXTENSION_KEY, ForeignHold};
use super::super::store::MemStore;
use super::{add_in, gc_in};
use crate::cni::{Attachment, CniArgs, Version};

fn hold() -> ForeignHold {
    ForeignHold::sample()
}

#[test]
fn allocation_records_holds_first_and_gc_keeps_them_until_they_expire() {
    let mut conf = serde_json::json!({"cniVersion": "1.0.0", "name": "n", "ipam": {"type": "host-local",
        "subnet": "192.168.1.0/24", "rangeStart": "192.168.1.100", "rangeEnd": "192.168.1.200"}});
    conf[EXTENSION_KEY] = serde_json::json!({"foreignHolds": [hold()]});
    let conf = HostLocalConf::parse(&conf, Version::V1_0_0, &CniArgs::default()).unwrap();
    let mut store = MemStore::default();
    let pod = Attachment { container_id: "c1".into(), ifname: "eth0".into() };
    let got = add_in(&mut store, &conf, &pod).unwrap();
    assert_eq!(got.ips[0].address.addr().to_string(), "192.168.1.101");
    assert_eq!(store.held[&hold().ip], hold().record());
    // GC with no valid attachment: the pod's address goes, the live hold stays.
    assert_eq!(gc_in(&mut store, &[]).unwrap().len(), 1);
    assert!(store.held.contains_key(&hold().ip));
    let old = ForeignHold { until: 1, ..hold() };
    store.held.insert(old.ip, old.record());
    assert_eq!(gc_in(&mut store, &[]).unwrap(), vec![old.ip], "an expired hold goes");
}
