//! A network's address store, for what this command holds itself (aux addresses, the
//! host-access shim's address) and for `gc`: host-local's files on this host, or the
//! cluster-wide store in etcd (`--ipam-driver underlay-ipam`). Endpoints get their
//! addresses through the plugins, which read the same stores.

use std::net::IpAddr;

use underlay::cni::{Attachment, CniArgs, CniResult, Version};
use underlay::ipam::hold::ForeignHold;
use underlay::ipam::store::Store as _;
use underlay::ipam::{HostLocalConf, host_local};
use underlay_ipam::IpamConf;
use underlay_ipam::store::EtcdStore;

use crate::cni_conf::cni_conf;
use crate::failure::Result;
use crate::model::Network;
use crate::state::Dirs;

pub enum AddressStore {
    Local(HostLocalConf),
    Cluster(Box<IpamConf>),
    /// Leases from the LAN's DHCP server: nothing is held here.
    Dhcp,
}

impl AddressStore {
    pub fn of(net: &Network, dirs: &Dirs) -> Result<AddressStore> {
        if net.dhcp.is_some() {
            return Ok(AddressStore::Dhcp);
        }
        Self::from_conf(net, &cni_conf(net, dirs))
    }

    /// As `of`, with the parent's own addresses cut out of the ranges (for picking a new
    /// address; `of` for everything else, so what is held stays valid).
    pub fn for_allocation(net: &Network, dirs: &Dirs) -> Result<AddressStore> {
        if net.dhcp.is_some() {
            return Ok(AddressStore::Dhcp);
        }
        let mut conf = cni_conf(net, dirs);
        crate::parent_addresses::cut_out(&mut conf, net)?;
        Self::from_conf(net, &conf)
    }

    /// As `of`, with the ranges opened to their whole subnets: an address asked for
    /// by hand may lie outside `--ip-range`, as Docker allows (`ip_request`).
    pub fn for_request(net: &Network, dirs: &Dirs) -> Result<AddressStore> {
        if net.dhcp.is_some() {
            return Ok(AddressStore::Dhcp);
        }
        let mut conf = cni_conf(net, dirs);
        crate::ip_request::whole_subnets(&mut conf);
        Self::from_conf(net, &conf)
    }

    fn from_conf(net: &Network, conf: &serde_json::Value) -> Result<AddressStore> {
        Ok(match net.ipam {
            None => AddressStore::Local(HostLocalConf::parse(conf, Version::LATEST, &CniArgs::default())?),
            Some(_) => AddressStore::Cluster(Box::new(IpamConf::parse(conf, Version::LATEST, &CniArgs::default())?)),
        })
    }

    /// An address for `owner` from the network's ranges (`requested`, if given).
    pub fn add(&self, owner: &Attachment, requested: Vec<IpAddr>) -> Result<CniResult> {
        Ok(match self {
            AddressStore::Local(c) => host_local::add(&HostLocalConf { requested, ..c.clone() }, owner)?,
            // The plugin's own claim path: it retries after a lost race, so contention
            // never reads as "pool exhausted" while addresses are free.
            AddressStore::Cluster(c) => {
                let mut c = IpamConf::clone(c);
                c.ranges.requested = requested;
                underlay_ipam::add_in(&mut EtcdStore::open(&c)?, &c, owner)?
            }
            AddressStore::Dhcp => return Err(dhcp_has_no_store()),
        })
    }

    /// Frees what `owner` holds.
    pub fn del(&self, owner: &Attachment) -> Result<()> {
        match self {
            AddressStore::Local(c) => host_local::del(c, owner).map(drop)?,
            AddressStore::Cluster(c) => EtcdStore::open(c)?.release(owner).map(drop)?,
            AddressStore::Dhcp => {}
        }
        Ok(())
    }

    /// Opens (creating) the local store, holding nothing.
    pub fn hold_nothing(&self) -> Result<()> {
        if let AddressStore::Local(c) = self {
            let boot = underlay::ipam::boot::Boot::current()?;
            underlay::ipam::disk::DiskStore::open(&c.store_dir(), &boot, true)?.commit()?;
        }
        Ok(())
    }

    /// Holds `ip` for `owner` whatever the ranges say; false if someone holds it.
    pub fn hold(&self, ip: IpAddr, owner: &Attachment) -> Result<bool> {
        Ok(match self {
            AddressStore::Local(c) => {
                let boot = underlay::ipam::boot::Boot::current()?;
                let mut store = underlay::ipam::disk::DiskStore::open(&c.store_dir(), &boot, true)?;
                let held = store.hold(ip, owner)?;
                store.commit()?;
                held
            }
            AddressStore::Cluster(c) => EtcdStore::open(c)?.hold(ip, owner)?,
            AddressStore::Dhcp => return Err(dhcp_has_no_store()),
        })
    }

    /// The foreign holds (addresses a probe found in use), in the cluster store this
    /// host's.
    pub fn holds(&self) -> Result<Vec<ForeignHold>> {
        let records = match self {
            AddressStore::Local(c) => {
                let boot = underlay::ipam::boot::Boot::current()?;
                underlay::ipam::disk::DiskStore::open(&c.store_dir(), &boot, true)?.reservations()?
            }
            AddressStore::Cluster(c) => EtcdStore::open(c)?.reservations()?,
            AddressStore::Dhcp => vec![],
        };
        Ok(records.into_iter().filter_map(|(ip, r)| ForeignHold::from_record(ip, r.as_ref()?)).collect())
    }

    /// Records `hold` (an address a probe found in use); false if someone holds it.
    pub fn hold_for_device(&self, hold: &ForeignHold) -> Result<bool> {
        self.hold(hold.ip, &hold.record())
    }

    /// Frees the address `hold` is on if that hold is still what holds it.
    pub fn release_hold(&self, hold: &ForeignHold) -> Result<()> {
        match self {
            AddressStore::Local(c) => {
                let boot = underlay::ipam::boot::Boot::current()?;
                let mut store = underlay::ipam::disk::DiskStore::open(&c.store_dir(), &boot, true)?;
                store.release(&hold.record())?;
                store.commit()?;
            }
            AddressStore::Cluster(c) => EtcdStore::open(c)?.release(&hold.record()).map(drop)?,
            AddressStore::Dhcp => {}
        }
        Ok(())
    }

    /// Frees what is not `valid` (in the cluster store: this host's only).
    pub fn gc(&self, valid: &[Attachment]) -> Result<Vec<IpAddr>> {
        Ok(match self {
            AddressStore::Local(c) => host_local::gc(c, valid)?,
            AddressStore::Cluster(c) => host_local::gc_in(&mut EtcdStore::open(c)?, valid)?,
            // The daemon stops renewing leases whose namespace is gone.
            AddressStore::Dhcp => Vec::new(),
        })
    }

    /// The network is gone: its local store goes; in the cluster store, what `owners`
    /// held (other hosts may still use the subnet).
    pub fn remove(&self, owners: &[Attachment]) {
        match self {
            AddressStore::Local(c) => {
                let _ = std::fs::remove_dir_all(c.store_dir());
                let _ = std::fs::remove_dir_all(c.data_dir.join(".underlay").join(&c.network));
            }
            AddressStore::Cluster(_) => {
                for o in owners {
                    let _ = self.del(o);
                }
            }
            AddressStore::Dhcp => {}
        }
    }
}

fn dhcp_has_no_store() -> crate::failure::Failure {
    crate::failure::Failure::usage(
        "a DHCP network's addresses come from the LAN's DHCP server: underlay cannot pick or hold one here \
         (host access and --aux-address need a network with --subnet)",
    )
}
