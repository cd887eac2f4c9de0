//! The IPAM driver (`--ipam-driver underlay`): pools and addresses kept in host-local's
//! on-disk store format under the state dir, so reservations survive restarts and a
//! taken `--ip` is refused with a clear message.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use ipnet::IpNet;
use serde_json::{Value, json};
use underlay::cni::Attachment;
use underlay::ipam::allocator::allocate;
use underlay::ipam::boot::Boot;
use underlay::ipam::disk::DiskStore;
use underlay::ipam::hold::ForeignHold;
use underlay::ipam::store::Store;
use underlay::ipam::{RangeConf, RangeSet};

use crate::api::{PoolRef, ReleaseAddress, RequestAddress, RequestPool};
use crate::etcd_pool::{self, EtcdPool};
use crate::host_addresses;
use crate::probe::{self, Prober};

pub const ADDRESS_SPACE: &str = "underlay";
const GATEWAY_TYPE: &str = "com.docker.network.gateway";
const POOL_PREFIX: &str = "underlay:";

pub struct Ipam {
    dir: PathBuf,
    serial: AtomicU64,
    /// The pool ID of each subnet Docker last asked a pool for (CreateNetwork follows
    /// RequestPool at once, so host access draws from the same range and store).
    pools: Mutex<HashMap<IpNet, String>>,
}

type Reply = Result<Value, String>;

/// A pool as its ID carries it: `underlay:<subnet>` or `underlay:<subnet>,<ip-range>`
/// (a comma, since IPv6 subnets contain colons), then `@<id>` for a pool in etcd.
struct Pool {
    subnet: IpNet,
    range: Option<IpNet>,
    etcd: Option<String>,
}

impl Pool {
    fn parse(id: &str) -> Result<Pool, String> {
        let bad = || format!("pool ID {id:?} was not made by underlay (expected underlay:SUBNET[,RANGE][@ID])");
        let rest = id.strip_prefix(POOL_PREFIX).ok_or_else(bad)?;
        let (rest, etcd) = match rest.split_once('@') {
            Some((r, e)) if etcd_pool::check_id(e) => (r, Some(e.to_string())),
            Some(_) => return Err(bad()),
            None => (rest, None),
        };
        let mut parts = rest.splitn(2, ',');
        let subnet: IpNet = parts.next().and_then(|s| s.parse().ok()).ok_or_else(bad)?;
        let range = match parts.next() {
            None => None,
            Some(r) => Some(r.parse().map_err(|_| bad())?),
        };
        Ok(Pool { subnet, range, etcd })
    }

    fn id(&self) -> String {
        let mut id = match self.range {
            None => format!("{POOL_PREFIX}{}", self.subnet),
            Some(r) => format!("{POOL_PREFIX}{},{r}", self.subnet),
        };
        if let Some(e) = &self.etcd {
            id = format!("{id}@{e}");
        }
        id
    }

    /// Addresses are handed out from the `--ip-range` (or the whole subnet), never
    /// the network and broadcast addresses.
    fn range_set(&self) -> Result<RangeSet, String> {
        let (start, end) = match self.range {
            Some(r) => (Some(r.network()), Some(r.broadcast())),
            None => (None, None),
        };
        let conf = RangeConf { subnet: self.subnet, range_start: start, range_end: end, gateway: None };
        RangeSet::canonicalize(&[conf], 0).map_err(|e| format!("pool {}: {}", self.subnet, e.msg))
    }
}

impl Ipam {
    pub fn new(dir: PathBuf) -> Ipam {
        Ipam { dir, serial: AtomicU64::new(0), pools: Mutex::new(HashMap::new()) }
    }

    fn store(&self, pool: &Pool) -> Result<DiskStore, String> {
        let boot = Boot::current().map_err(|e| e.msg)?;
        let dir = self.dir.join(pool.subnet.to_string().replace('/', "_"));
        DiskStore::open(&dir, &boot, false).map_err(|e| format!("open address store for {}: {}", pool.subnet, e.msg))
    }

    pub fn capabilities() -> Value {
        json!({"RequiresMACAddress": false, "RequiresRequestReplay": false})
    }

    pub fn address_spaces() -> Value {
        json!({"LocalDefaultAddressSpace": ADDRESS_SPACE, "GlobalDefaultAddressSpace": ADDRESS_SPACE})
    }

    pub fn request_pool(&self, req: RequestPool) -> Reply {
        if req.pool.is_empty() {
            return Err("underlay IPAM does not pick subnets: give --subnet".into());
        }
        let subnet: IpNet =
            req.pool.parse().map_err(|_| format!("--subnet {:?} is not an address/prefix", req.pool))?;
        if subnet.addr() != subnet.network() {
            return Err(format!("--subnet {subnet} has host bits set; did you mean {}?", subnet.trunc()));
        }
        if req.v6 != subnet.addr().is_ipv6() {
            return Err(format!("--subnet {subnet} is not of the family Docker asked for"));
        }
        let range = match req.sub_pool.as_str() {
            "" => None,
            r => {
                let r: IpNet = r.parse().map_err(|_| format!("--ip-range {r:?} is not an address/prefix"))?;
                if !subnet.contains(&r) {
                    return Err(format!("--ip-range {r} is outside --subnet {subnet}"));
                }
                Some(r.trunc())
            }
        };
        let options: BTreeMap<String, String> = req.options.unwrap_or_default().into_iter().collect();
        let mut pool = Pool { subnet, range, etcd: None };
        pool.range_set()?;
        match EtcdPool::from_options(subnet, range, &options)? {
            Some(ep) => {
                ep.save(&self.dir)?;
                pool.etcd = Some(ep.id());
            }
            // Opening creates the store, so a bad state dir shows up now, not at docker run.
            None => self.store(&pool)?.commit().map_err(|e| e.msg)?,
        }
        self.pools.lock().unwrap_or_else(|p| p.into_inner()).insert(subnet, pool.id());
        Ok(json!({"PoolID": pool.id(), "Pool": subnet.to_string(), "Data": {}}))
    }

    pub fn release_pool(&self, req: PoolRef) -> Reply {
        Pool::parse(&req.pool_id)?;
        Ok(json!({}))
    }

    /// `prober` finds where the probes for a pool's subnet go out (the network made
    /// on it, if ours).
    pub fn request_address(&self, req: RequestAddress, prober: impl Fn(IpNet) -> Option<Prober>) -> Reply {
        let pool = Pool::parse(&req.pool_id)?;
        let set = pool.range_set()?;
        let gateway = req.options.as_ref().and_then(|o| o.get("RequestAddressType")).is_some_and(|t| t == GATEWAY_TYPE);
        let want: Option<IpAddr> = match req.address.as_str() {
            "" if gateway => Some(set.0[0].gateway),
            "" => None,
            a => Some(a.parse().map_err(|_| format!("address {a:?} is not an IP address"))?),
        };
        let serial = self.serial.fetch_add(1, Ordering::Relaxed);
        let owner = Attachment {
            container_id: if gateway {
                "docker-gateway".into()
            } else {
                format!("docker-{}-{serial}", std::process::id())
            },
            ifname: String::new(),
        };
        let flag = if want.is_some_and(|ip| ip.is_ipv6()) { "--ip6" } else { "--ip" };
        let ip = if gateway {
            self.take(&pool, want, &owner, false, flag, &[])?
        } else {
            self.take_probed(&pool, want, &owner, flag, prober(pool.subnet).as_ref())?
        };
        Ok(
            json!({"Address": IpNet::new(ip, pool.subnet.prefix_len()).map_err(|e| e.to_string())?.to_string(), "Data": {}}),
        )
    }

    /// [`Ipam::take`] of an address no device on the LAN answers for, probed through
    /// `prober`: a used address the store chose is held for the device (as the CNI
    /// plugins do) and another taken; a requested one is refused naming the device.
    /// Nothing stays reserved on failure.
    fn take_probed(
        &self,
        pool: &Pool,
        want: Option<IpAddr>,
        owner: &Attachment,
        flag: &str,
        prober: Option<&Prober>,
    ) -> Result<IpAddr, String> {
        let mut holds: Vec<ForeignHold> = Vec::new();
        let mut found: Vec<String> = Vec::new();
        for _ in 0..underlay_attach::conflict::MAX_TRIES {
            let ip = self.take(pool, want, owner, true, flag, &holds)?;
            let Some(prober) = prober else { return Ok(ip) };
            let conflict = prober.conflict(ip);
            if !matches!(conflict, Ok(None)) {
                self.release(&pool.id(), ip)?;
            }
            let Some(c) = conflict? else { return Ok(ip) };
            if want.is_some() {
                return Err(probe::refusal(flag, &c));
            }
            holds.push(probe::hold(&c));
            found.push(c.to_string());
        }
        Err(format!(
            "no address of {} free of conflicts after {} tries; in use on the LAN: {}",
            pool.subnet,
            underlay_attach::conflict::MAX_TRIES,
            found.join(", ")
        ))
    }

    /// Reserves `want` (or the next free address of the pool) for `owner`; with
    /// `not_host`, never one of this host's own addresses (`flag` names where a
    /// requested one came from); `holds` are recorded first.
    fn take(
        &self,
        pool: &Pool,
        want: Option<IpAddr>,
        owner: &Attachment,
        not_host: bool,
        flag: &str,
        holds: &[ForeignHold],
    ) -> Result<IpAddr, String> {
        let set = pool.range_set()?;
        // The gateway may well be this host (a router); anything else it carries is not handed out.
        let own = if not_host { host_addresses::within(&pool.subnet)? } else { Vec::new() };
        if let Some(id) = &pool.etcd {
            let mut ep = EtcdPool::load(&self.dir, id)?;
            if !not_host {
                let gw = want.unwrap_or(set.0[0].gateway);
                if ep.gateway != Some(gw) {
                    ep.gateway = Some(gw);
                    ep.save(&self.dir)?;
                }
                return Ok(gw);
            }
            if let Some(ip) = want {
                host_addresses::refuse(ip, &own, flag)?;
            }
            let own: Vec<IpAddr> = own.iter().map(|(ip, _)| *ip).collect();
            return ep.take(want, owner, &own, holds, flag);
        }
        let mut store = self.store(pool)?;
        // A hold that cannot be written (someone reserved the address meanwhile) is
        // theirs to find when they probe.
        for h in holds.iter().filter(|h| pool.subnet.contains(&h.ip)) {
            store.hold(h.ip, &h.record()).map_err(|e| e.msg)?;
        }
        let ip = match want {
            Some(ip) => {
                host_addresses::refuse(ip, &own, flag)?;
                if !pool.subnet.contains(&ip) {
                    return Err(format!("address {ip} is outside subnet {}", pool.subnet));
                }
                if !store.reserve(ip, owner, 0).map_err(|e| e.msg)? {
                    let records = store.reservations().map_err(|e| e.msg)?;
                    let holder = records.iter().find(|(r, _)| *r == ip).and_then(|(_, a)| a.as_ref());
                    if let Some(h) = holder.and_then(|a| ForeignHold::from_record(ip, a)) {
                        return Err(format!(
                            "{flag} {ip}: the address is in use on the LAN by MAC {} (it answered an ARP probe; \
                             held until it expires); choose another",
                            h.mac
                        ));
                    }
                    return Err(format!(
                        "address {ip} is already in use in {}; choose another {flag} or leave it out",
                        pool.subnet
                    ));
                }
                ip
            }
            None => {
                let mut set = set;
                // The gateway is reserved like any address, so it is never handed out.
                set.0[0].gateway = pool.subnet.network();
                let set = host_addresses::cut_out(&set, &own).map_err(|e| format!("subnet {}: {e}", pool.subnet))?;
                allocate(&set, 0, &mut store, owner, None)
                    .map_err(|e| format!("{} (subnet {})", e.msg, pool.subnet))?
                    .ip
            }
        };
        store.commit().map_err(|e| e.msg)?;
        Ok(ip)
    }

    /// The pool of `subnet` as Docker last asked for it (its `--ip-range`), else the
    /// whole subnet.
    fn pool_of(&self, subnet: IpNet) -> Pool {
        let id = self.pools.lock().unwrap_or_else(|p| p.into_inner()).get(&subnet).cloned();
        id.and_then(|id| Pool::parse(&id).ok()).unwrap_or(Pool { subnet, range: None, etcd: None })
    }

    /// Holds an address of `subnet` for `owner` outside Docker's calls (the host-access
    /// shim's): `want`, or the next free one of the pool. Returns it with the pool ID to
    /// release it through.
    pub fn hold(
        &self,
        subnet: IpNet,
        want: Option<IpAddr>,
        owner: &Attachment,
        prober: Option<&Prober>,
    ) -> Result<(IpAddr, String), String> {
        let pool = self.pool_of(subnet);
        let ip = self.take_probed(&pool, want, owner, "-o host_access=", prober)?;
        Ok((ip, pool.id()))
    }

    /// Frees what [`Ipam::hold`] held.
    pub fn release(&self, pool_id: &str, ip: IpAddr) -> Result<(), String> {
        let pool = Pool::parse(pool_id)?;
        if let Some(id) = &pool.etcd {
            return EtcdPool::load(&self.dir, id)?.release(ip);
        }
        let mut store = self.store(&pool)?;
        store.remove(ip).map_err(|e| e.msg)?;
        store.commit().map_err(|e| e.msg)
    }

    pub fn release_address(&self, req: ReleaseAddress) -> Reply {
        let pool = Pool::parse(&req.pool_id)?;
        let ip: IpAddr = req.address.parse().map_err(|_| format!("address {:?} is not an IP address", req.address))?;
        if let Some(id) = &pool.etcd {
            return EtcdPool::load(&self.dir, id)?.release(ip).map(|()| json!({}));
        }
        let mut store = self.store(&pool)?;
        store.remove(ip).map_err(|e| e.msg)?;
        store.commit().map_err(|e| e.msg)?;
        Ok(json!({}))
    }
}
