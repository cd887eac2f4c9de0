//! A network's aux addresses (Docker's `--aux-address`): held in its address store
//! under an owner of their own, so allocation passes them over.

use std::net::IpAddr;

use underlay::cni::Attachment;

use crate::address_store::AddressStore;
use crate::failure::{Failure, Result};
use crate::model::{Network, short};
use crate::state::Dirs;

/// The owner under which a network's aux addresses are held in its IPAM store. In the
/// cluster store every host's network of that name holds them as one owner.
pub fn aux_owner(net: &Network, name: &str) -> Attachment {
    let id = if net.ipam.is_some() { net.name.as_str() } else { short(&net.id, 12) };
    Attachment { container_id: format!("aux-{id}"), ifname: name.to_string() }
}

/// Creates the network's address store (now, so that no later command has to) and
/// holds its aux addresses there.
pub fn reserve_aux(dirs: &Dirs, net: &Network) -> Result<()> {
    let aux: Vec<(&String, &IpAddr)> = net.subnets.iter().flat_map(|s| s.aux_addresses.iter()).collect();
    let store = AddressStore::of(net, dirs)?;
    if let AddressStore::Local(_) = store {
        // Created now, so that no later command has to.
        store.hold_nothing()?;
    }
    for (name, ip) in aux {
        if !store.hold(*ip, &aux_owner(net, name))? {
            return Err(Failure::conflict(format!("--aux-address {name}={ip}: the address is already reserved")));
        }
    }
    Ok(())
}

pub fn aux_owners(net: &Network) -> Vec<Attachment> {
    net.subnets.iter().flat_map(|s| s.aux_addresses.keys()).map(|n| aux_owner(net, n)).collect()
}
