//! The link Join makes in the plugin's namespace for dockerd to move into the container:
//! a macvlan, or an ipvlan for networks made with `-o ipvlan_mode=`/`ipvlan_flag=`.

use serde_json::{Value, json};
use underlay::MacAddr;
use underlay_linux::ipvlan::{IpvlanMode, IpvlanSpec};
use underlay_linux::{Link, MacvlanSpec, Netlink};

use crate::records::{EndpointRecord, NetworkRecord};

/// Links Join makes start with this; nothing else in the host namespace should.
pub const PREFIX: &str = "ulj";

/// Makes `ep`'s link on `parent` (an old one of that name goes first); nothing is left
/// on failure.
pub fn create(nl: &mut Netlink, net: &NetworkRecord, ep: &EndpointRecord, parent: &Link) -> Result<(), String> {
    let _ = nl.delete_link_by_name(&ep.link);
    let made = match net.spec.ipvlan {
        Some(ipvlan) => nl.create_ipvlan(&IpvlanSpec {
            name: &ep.link,
            parent: parent.index,
            mode: ipvlan.mode,
            flag: ipvlan.flag,
            mtu: net.spec.mtu,
            netns: None,
        }),
        None => {
            let mac = ep.mac.as_deref().map(|m| m.parse::<MacAddr>()).transpose().map_err(|_| "bad MAC in record")?;
            let mut spec = MacvlanSpec::new(&ep.link, parent.index, net.spec.mode);
            spec.mtu = net.spec.mtu;
            spec.mac = mac;
            nl.create_macvlan(&spec)
        }
    };
    if let Err(e) = made {
        let _ = nl.delete_link_by_name(&ep.link);
        let kind = if net.spec.ipvlan.is_some() { "ipvlan" } else { "macvlan" };
        return Err(format!("create {kind} on parent {}: {e}", parent.name));
    }
    Ok(())
}

/// Join's static routes: in ipvlan l3/l3s the parent routes for its children by
/// destination (they do no ARP), so the default route goes through the device itself,
/// as Docker's ipvlan driver does; none otherwise.
pub fn static_routes(net: &NetworkRecord, ep: &EndpointRecord) -> Vec<Value> {
    let l3 = net.spec.ipvlan.is_some_and(|i| matches!(i.mode, IpvlanMode::L3 | IpvlanMode::L3s));
    if !l3 || net.spec.internal {
        return Vec::new();
    }
    let mut routes = Vec::new();
    if ep.has_v4() {
        routes.push(json!({"Destination": "0.0.0.0/0", "RouteType": 1, "NextHop": ""}));
    }
    if ep.addresses.iter().any(|a| a.addr().is_ipv6()) {
        routes.push(json!({"Destination": "::/0", "RouteType": 1, "NextHop": ""}));
    }
    routes
}

/// Whether `link` is one Join made (by name and kind).
pub fn is_ours(link: &Link) -> bool {
    link.name.starts_with(PREFIX) && matches!(link.kind.as_deref(), Some("macvlan" | "ipvlan"))
}
