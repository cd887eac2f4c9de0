//! The IPAM driver (`--ipam-driver underlay`): pools and addresses kept in host-local's
//! on-disk store format under the state dir, so reservations survive restarts and a
//! taken `--ip` is refused with a clear message.

use std::collections::HashMap;
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
use underlay::ipam::store::Store;
use underlay::ipam::{RangeConf, RangeSet};

use crate::api::{PoolRef, ReleaseAddress, RequestAddress, RequestPool};
use crate::host_addresses;

pub const ADDRESS_SPACE: &str = "underlay";
const GATEWAY_TYPE: &str = "com.docker.network.gateway";
const POOL_PREFIX: &str = "underlay:";

pub struct Ipam {
    dir: PathBuf,
    serial: AtomicU64,
    /// The `--ip-range` of each subnet Docker asked a pool for (CreateNetwork follows
    /// RequestPool at once, so host access can draw from the same range).
    ranges: Mutex<HashMap<IpNet, Option<IpNet>>>,
}

type Reply = Result<Value, String>;

/// A pool as its ID carries it: `underlay:<subnet>` or `underlay:<subnet>,<ip-range>`
/// (a comma, since IPv6 subnets contain colons).
struct Pool {
    subnet: IpNet,
    range: Option<IpNet>,
}

impl Pool {
    fn parse(id: &str) -> Result<Pool, String> {
        let bad = || format!("pool ID {id:?} was not made by underlay (expected underlay:SUBNET[,RANGE])");
        let rest = id.strip_prefix(POOL_PREFIX).ok_or_else(bad)?;
        let mut parts = rest.splitn(2, ',');
        let subnet: IpNet = parts.next().and_then(|s| s.parse().ok()).ok_or_else(bad)?;
        let range = match parts.next() {
            None => None,
            Some(r) => Some(r.parse().map_err(|_| bad())?),
        };
        Ok(Pool { subnet, range })
    }

    fn id(&self) -> String {
        match self.range {
            None => format!("{POOL_PREFIX}{}", self.subnet),
            Some(r) => format!("{POOL_PREFIX}{},{r}", self.subnet),
        }
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
        Ipam { dir, serial: AtomicU64::new(0), ranges: Mutex::new(HashMap::new()) }
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
        if let Some((k, v)) = req.options.iter().flatten().next() {
            return Err(format!("unknown --ipam-opt {k}={v}: the local underlay IPAM takes no options"));
        }
        let pool = Pool { subnet, range };
        pool.range_set()?;
        self.ranges.lock().unwrap_or_else(|p| p.into_inner()).insert(subnet, range);
        // Opening creates the store, so a bad state dir shows up now, not at docker run.
        self.store(&pool)?.commit().map_err(|e| e.msg)?;
        Ok(json!({"PoolID": pool.id(), "Pool": subnet.to_string(), "Data": {}}))
    }

    pub fn release_pool(&self, req: PoolRef) -> Reply {
        Pool::parse(&req.pool_id)?;
        Ok(json!({}))
    }

    pub fn request_address(&self, req: RequestAddress) -> Reply {
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
        let ip = self.take(&pool, want, &owner, !gateway, flag)?;
        Ok(
            json!({"Address": IpNet::new(ip, pool.subnet.prefix_len()).map_err(|e| e.to_string())?.to_string(), "Data": {}}),
        )
    }

    /// Reserves `want` (or the next free address of the pool) for `owner`; with
    /// `not_host`, never one of this host's own addresses (`flag` names where a
    /// requested one came from).
    fn take(
        &self,
        pool: &Pool,
        want: Option<IpAddr>,
        owner: &Attachment,
        not_host: bool,
        flag: &str,
    ) -> Result<IpAddr, String> {
        let set = pool.range_set()?;
        // The gateway may well be this host (a router); anything else it carries is not handed out.
        let own = if not_host { host_addresses::within(&pool.subnet)? } else { Vec::new() };
        let mut store = self.store(pool)?;
        let ip = match want {
            Some(ip) => {
                host_addresses::refuse(ip, &own, flag)?;
                if !pool.subnet.contains(&ip) {
                    return Err(format!("address {ip} is outside subnet {}", pool.subnet));
                }
                if !store.reserve(ip, owner, 0).map_err(|e| e.msg)? {
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
        let range = self.ranges.lock().unwrap_or_else(|p| p.into_inner()).get(&subnet).copied().flatten();
        Pool { subnet, range }
    }

    /// Holds an address of `subnet` for `owner` outside Docker's calls (the host-access
    /// shim's): `want`, or the next free one of the pool.
    pub fn hold(&self, subnet: IpNet, want: Option<IpAddr>, owner: &Attachment) -> Result<IpAddr, String> {
        self.take(&self.pool_of(subnet), want, owner, true, "-o host_access=")
    }

    /// Frees what [`Ipam::hold`] held.
    pub fn release(&self, subnet: IpNet, ip: IpAddr) -> Result<(), String> {
        let mut store = self.store(&Pool { subnet, range: None })?;
        store.remove(ip).map_err(|e| e.msg)?;
        store.commit().map_err(|e| e.msg)
    }

    pub fn release_address(&self, req: ReleaseAddress) -> Reply {
        let pool = Pool::parse(&req.pool_id)?;
        let ip: IpAddr = req.address.parse().map_err(|_| format!("address {:?} is not an IP address", req.address))?;
        let mut store = self.store(&pool)?;
        store.remove(ip).map_err(|e| e.msg)?;
        store.commit().map_err(|e| e.msg)?;
        Ok(json!({}))
    }
}
