//! Parents the driver makes. `-o parent=IF.VID`: the 802.1Q sub-interface is made when
//! missing and removed with the last network using it, counted in
//! `underlay_linux::parent` together with the CLI's networks and the CNI plugins; one that
//! existed before is never removed. `--internal` without `-o parent`: a dummy link of
//! the network's own, `dm-<id>`, as Docker's macvlan driver makes.

use underlay_linux::Netlink;
use underlay_linux::parent::{Parents, vlan_name};
use underlay_linux::support::{Feature, has};

use crate::records::NetworkRecord;

/// The name a Docker network is counted under.
fn user(net_id: &str) -> String {
    format!("docker-{net_id}")
}

/// Counts network `net_id` as a user of `parent` when it is a VLAN name (making the
/// sub-interface if missing); false when there was nothing to count.
pub fn acquire(nl: &mut Netlink, parent: &str, net_id: &str) -> Result<bool, String> {
    let Some((base, _)) = vlan_name(parent) else { return Ok(false) };
    let exists = nl.link_by_name(parent).map_err(|e| format!("look up parent {parent}: {e}"))?.is_some();
    if !exists {
        if nl.link_by_name(base).map_err(|e| format!("look up {base}: {e}"))?.is_none() {
            return Err(format!("parent {parent}: its base interface {base} does not exist on this host"));
        }
        if !has(Feature::Vlan).map_err(|e| e.to_string())? {
            return Err(format!(
                "cannot create parent {parent}: {}; load the 8021q module or create the sub-interface yourself",
                Feature::Vlan.missing()
            ));
        }
    }
    let parents = Parents::here().map_err(|e| e.to_string())?;
    parents.acquire(nl, parent, &user(net_id)).map_err(|e| format!("parent {parent}: {e}"))?;
    Ok(true)
}

/// Drops network `net_id`'s count on `parent`; the sub-interface goes with the last.
pub fn release(nl: &mut Netlink, parent: &str, net_id: &str) -> Result<(), String> {
    if vlan_name(parent).is_none() {
        return Ok(());
    }
    let parents = Parents::here().map_err(|e| e.to_string())?;
    parents.release(nl, parent, &user(net_id)).map_err(|e| format!("release parent {parent}: {e}"))
}

/// The dummy parent of internal network `net_id` (Docker's macvlan's name for it).
pub fn dummy_name(net_id: &str) -> String {
    format!("dm-{}", &net_id[..net_id.len().min(12)])
}

/// Makes the dummy parent of internal network `net_id`, up.
pub fn make_dummy(nl: &mut Netlink, net_id: &str) -> Result<String, String> {
    let name = dummy_name(net_id);
    if !has(Feature::Dummy).map_err(|e| e.to_string())? {
        return Err(format!(
            "--internal without -o parent needs a dummy parent {name}, but {}; give -o parent=IF",
            Feature::Dummy.missing()
        ));
    }
    nl.create_dummy(&name).map_err(|e| e.to_string())?;
    let up = nl.link(&name).and_then(|l| nl.set_up(l.index, true));
    if let Err(e) = up {
        let _ = nl.delete_link_by_name(&name);
        return Err(format!("set {name} up: {e}"));
    }
    Ok(name)
}

/// Removes network `net`'s dummy parent, if it has one.
pub fn remove_dummy(nl: &mut Netlink, net: &NetworkRecord) -> Result<(), String> {
    if net.parent != dummy_name(&net.id) {
        return Ok(());
    }
    nl.delete_link_by_name(&net.parent).map(drop).map_err(|e| format!("delete dummy parent {}: {e}", net.parent))
}

/// At start: every network's VLAN or dummy parent is made again if it is gone (after a
/// reboot).
pub fn restore(nl: &mut Netlink, networks: &[NetworkRecord]) -> Vec<String> {
    let mut done = Vec::new();
    for net in networks.iter().filter(|n| n.parent == dummy_name(&n.id)) {
        if matches!(nl.link_by_name(&net.parent), Ok(None)) {
            done.push(match make_dummy(nl, &net.id) {
                Ok(name) => format!("made dummy parent {name} again"),
                Err(e) => format!("could not make dummy parent {} again: {e}", net.parent),
            });
        }
    }
    for net in networks.iter().filter(|n| vlan_name(&n.parent).is_some()) {
        if matches!(nl.link_by_name(&net.parent), Ok(Some(_))) {
            continue;
        }
        match acquire(nl, &net.parent, &net.id) {
            Ok(_) => done.push(format!("made VLAN parent {} again", net.parent)),
            Err(e) => done.push(format!("could not make VLAN parent {} again: {e}", net.parent)),
        }
    }
    done
}
