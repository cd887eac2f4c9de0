//! The network driver: Docker's `NetworkDriver.*` calls over persisted records and
//! macvlans made in the plugin's own namespace (dockerd moves them into the container).
//! Calls are serialized by one lock: they are short, and concurrent `docker run`s then
//! never see each other's half-done state.

use std::sync::Mutex;

use ipnet::IpNet;
use serde_json::{Value, json};
use underlay::MacAddr;
use underlay_linux::support::{Feature, has};
use underlay_linux::{Link, Netlink};

use crate::announce;
use crate::api::{CreateEndpoint, CreateNetwork, EndpointRef, InterfaceName, Join, JoinReply, NetworkRef};
use crate::host_access;
use crate::host_addresses;
use crate::ipam::Ipam;
use crate::link;
use crate::options::NetworkSpec;
use crate::parent;
use crate::probe;
use crate::records::{EndpointRecord, NetworkRecord, Records, check_id};

pub struct Driver {
    records: Records,
    lock: Mutex<()>,
}

type Reply = Result<Value, String>;

fn nl() -> Result<Netlink, String> {
    Netlink::new().map_err(|e| format!("open netlink: {e}"))
}

fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

/// The parent a network uses, checked: it exists, is not loopback, and carries the MTU.
fn check_parent(nl: &mut Netlink, spec: &NetworkSpec) -> Result<Link, String> {
    let name = match &spec.parent {
        Some(p) => p.clone(),
        None => {
            nl.default_route_link()
                .map_err(|e| format!("find the default route: {e}"))?
                .ok_or("no -o parent= given and this host has no default route with an interface to take it from; add -o parent=IFACE")?
                .name
        }
    };
    let link = nl
        .link_by_name(&name)
        .map_err(|e| format!("look up parent {name}: {e}"))?
        .ok_or_else(|| format!("parent interface {name} does not exist on this host; check -o parent="))?;
    if name == "lo" || link.mac.is_none_or(|m| m.0 == [0; 6]) {
        return Err(format!("parent {name} is a loopback device; macvlan needs an Ethernet interface"));
    }
    if spec.mtu > link.mtu {
        return Err(format!(
            "MTU {} (-o com.docker.network.driver.mtu) is above parent {name}'s MTU {}; use at most {}",
            spec.mtu, link.mtu, link.mtu
        ));
    }
    Ok(link)
}

impl Driver {
    pub fn new(records: Records) -> Driver {
        Driver { records, lock: Mutex::new(()) }
    }

    pub fn records(&self) -> &Records {
        &self.records
    }

    fn guard(&self) -> std::sync::MutexGuard<'_, ()> {
        // A panic under the lock leaves only records on disk, which are written whole.
        self.lock.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Where probes for addresses of `subnet` go out: the parent of our network on it.
    pub fn prober(&self, subnet: IpNet) -> Option<crate::probe::Prober> {
        let nets = self.records.networks();
        let net = nets.iter().find(|n| n.spec.pools.iter().any(|p| p.subnet == subnet))?;
        net.spec.prober(&net.parent)
    }

    fn network(&self, id: &str) -> Result<NetworkRecord, String> {
        check_id("network ID", id)?;
        self.records.network(id)?.ok_or_else(|| {
            format!(
                "network {} is not known to underlay (was its state in /var/lib/underlay/docker removed?)",
                short(id)
            )
        })
    }

    pub fn create_network(&self, req: CreateNetwork, ipam: &Ipam) -> Reply {
        check_id("network ID", &req.network_id)?;
        let spec = NetworkSpec::parse(&req)?;
        if spec.pools.is_empty() {
            return Err("no subnet: give --subnet (or --ipam-driver underlay with --subnet)".into());
        }
        if spec.ipvlan.is_some() && !has(Feature::Ipvlan).map_err(|e| e.to_string())? {
            return Err(format!("cannot make an ipvlan network: {}", Feature::Ipvlan.missing()));
        }
        let _g = self.guard();
        let mut nl = nl()?;
        let id = req.network_id.clone();
        let mut spec = spec;
        let vlan = match &spec.parent {
            Some(p) => parent::acquire(&mut nl, p, &id)?.then(|| p.clone()),
            None => None,
        };
        let dummy = match spec.parent {
            None if spec.internal => Some(parent::make_dummy(&mut nl, &id)?),
            _ => None,
        };
        spec.parent = spec.parent.or(dummy.clone());
        let made = self.make_network(&mut nl, &req, spec, ipam);
        if made.is_err() {
            if let Some(p) = vlan {
                let _ = parent::release(&mut nl, &p, &id);
            }
            if let Some(d) = dummy {
                let _ = nl.delete_link_by_name(&d);
            }
        }
        made
    }

    /// CreateNetwork once a VLAN parent is counted: checks, host access, the record.
    fn make_network(&self, nl: &mut Netlink, req: &CreateNetwork, spec: NetworkSpec, ipam: &Ipam) -> Reply {
        let parent = check_parent(nl, &spec)?;
        for other in self.records.networks() {
            if other.id != req.network_id
                && other.parent == parent.name
                && let Some((a, b)) = spec.overlap(&other.spec)
            {
                return Err(format!(
                    "subnet {a} overlaps subnet {b} of network {} on parent {}; pick another --subnet",
                    short(&other.id),
                    parent.name
                ));
            }
        }
        let host_access = host_access::make(nl, req, &spec, &parent, ipam)?;
        let (host_access, shim_pool) = host_access.unzip();
        let rec = NetworkRecord {
            id: req.network_id.clone(),
            spec,
            parent: parent.name,
            host_access,
            shim_pool: shim_pool.flatten(),
        };
        if let Err(e) = self.records.put_network(&rec) {
            host_access::remove(nl, &rec, ipam);
            return Err(e);
        }
        Ok(json!({}))
    }

    pub fn delete_network(&self, req: NetworkRef, ipam: &Ipam) -> Reply {
        check_id("network ID", &req.network_id)?;
        let _g = self.guard();
        let mut nl = nl()?;
        let mut errors = Vec::new();
        for ep in self.records.endpoints().into_iter().filter(|e| e.network == req.network_id) {
            if let Err(e) = self.remove_endpoint(&mut nl, &ep) {
                errors.push(e);
            }
        }
        match self.records.network(&req.network_id) {
            Ok(Some(net)) => {
                errors.extend(host_access::remove(&mut nl, &net, ipam));
                errors.extend(parent::release(&mut nl, &net.parent, &net.id).err());
                errors.extend(parent::remove_dummy(&mut nl, &net).err());
            }
            Ok(None) => {}
            Err(e) => errors.push(e),
        }
        if let Err(e) = self.records.remove_network(&req.network_id) {
            errors.push(e);
        }
        if errors.is_empty() { Ok(json!({})) } else { Err(errors.join("; ")) }
    }

    pub fn create_endpoint(&self, req: CreateEndpoint) -> Reply {
        check_id("endpoint ID", &req.endpoint_id)?;
        let net = self.network(&req.network_id)?;
        let iface = req.interface.unwrap_or_default();
        let mut addresses = Vec::new();
        for a in [&iface.address, &iface.address_ipv6] {
            if a.is_empty() {
                continue;
            }
            let ip: IpNet = a.parse().map_err(|_| format!("endpoint address {a:?} is not an address/prefix"))?;
            if !net.spec.pools.iter().any(|p| p.subnet.contains(&ip.addr())) {
                return Err(format!("address {} is outside the subnets of network {}", ip.addr(), short(&net.id)));
            }
            // Another IPAM driver may not know this host's addresses; the macvlan must.
            let own = host_addresses::within(&IpNet::from(ip.addr()))?;
            host_addresses::refuse(ip.addr(), &own, "the IPAM driver's address")?;
            // Our IPAM probed what it handed out (and could pick another); another
            // IPAM's choice can only be refused.
            if let Some(p) = net.spec.prober(&net.parent).filter(|_| !net.spec.own_ipam)
                && let Some(c) = p.conflict(ip.addr())?
            {
                return Err(probe::refusal("the IPAM driver's address", &c));
            }
            addresses.push(ip);
        }
        let mac = match iface.mac_address.as_str() {
            "" if net.spec.stable_mac => {
                // Derived from the subnet and the address: Docker passes a driver no
                // container name, and the same --ip is the same container to a LAN.
                let ip = addresses.iter().find(|a| a.addr().is_ipv4()).or(addresses.first());
                let ip = ip.ok_or("-o stable_mac: the endpoint has no address to derive its MAC from")?;
                let subnet = net.spec.pools.iter().find(|p| p.subnet.contains(&ip.addr())).map(|p| p.subnet);
                let subnet = subnet.map(|s| s.to_string()).unwrap_or_default();
                Some(MacAddr::stable(&["docker", &subnet, &ip.addr().to_string()]).to_string())
            }
            "" => None,
            m => {
                Some(m.parse::<MacAddr>().map_err(|_| format!("--mac-address {m:?} is not a MAC address"))?.to_string())
            }
        };
        if mac.is_some() && net.spec.ipvlan.is_some() {
            return Err(
                "--mac-address cannot be honoured on an ipvlan network: its containers share the parent's MAC".into()
            );
        }
        let _g = self.guard();
        if let Some(old) = self.records.endpoint(&req.endpoint_id)? {
            return Err(format!("endpoint {} already exists on network {}", short(&old.id), short(&old.network)));
        }
        if let Some(m) = &mac {
            // One MAC twice on a parent would split the LAN's frames between them.
            let nets = self.records.networks();
            let same_parent = |id: &str| nets.iter().any(|n| n.id == id && n.parent == net.parent);
            if let Some(other) =
                self.records.endpoints().iter().find(|e| e.mac.as_ref() == Some(m) && same_parent(&e.network))
            {
                return Err(format!(
                    "MAC {m} is already used by endpoint {} on parent {}; give another --mac-address or --ip",
                    short(&other.id),
                    net.parent
                ));
            }
        }
        let derived = iface.mac_address.is_empty().then(|| mac.clone()).flatten();
        let link = format!("{}{}", link::PREFIX, &req.endpoint_id[..req.endpoint_id.len().min(12)]);
        let rec = EndpointRecord { id: req.endpoint_id, network: net.id, addresses, mac, link };
        self.records.put_endpoint(&rec)?;
        // Docker's default IPAM chose the addresses: echoing them back is an error. A
        // MAC the driver chose (stable_mac) is Docker's to know.
        Ok(match derived {
            Some(m) => json!({"Interface": {"MacAddress": m}}),
            None => json!({}),
        })
    }

    fn endpoint(&self, net: &str, id: &str) -> Result<EndpointRecord, String> {
        check_id("network ID", net)?;
        check_id("endpoint ID", id)?;
        self.records
            .endpoint(id)?
            .filter(|e| e.network == net)
            .ok_or_else(|| format!("endpoint {} is not known on network {}", short(id), short(net)))
    }

    pub fn join(&self, req: Join) -> Reply {
        let _g = self.guard();
        let ep = self.endpoint(&req.network_id, &req.endpoint_id)?;
        let net = self.network(&req.network_id)?;
        let mut nl = nl()?;
        let parent = check_parent(&mut nl, &net.spec)
            .map_err(|e| format!("network {} cannot be joined: {e}", short(&net.id)))?;
        // Nothing is written here: the link's name follows from the endpoint ID, and
        // at start every such link still in this namespace is a leftover (a joined
        // one lives in its container), so a crash mid-Join leaves nothing behind.
        link::create(&mut nl, &net, &ep, &parent).map_err(|e| format!("network {}: {e}", short(&net.id)))?;
        if let Err(e) = host_access::route(&mut nl, &net, &ep, true) {
            let _ = nl.delete_link_by_name(&ep.link);
            return Err(format!("network {}: {e}", short(&net.id)));
        }
        if let Ok(Some(mac)) = nl.link(&ep.link).map(|l| l.mac) {
            announce::after_join(&req.sandbox_key, mac, ep.addresses.iter().map(|a| a.addr()).collect());
        }
        // --internal: no default route out of the network; in ipvlan l3 it goes through the device.
        let l3 = !link::static_routes(&net, &ep).is_empty();
        let gw = |v6| {
            net.spec.gateway_for(v6).filter(|_| !net.spec.internal && !l3).map(|g| g.to_string()).unwrap_or_default()
        };
        let has_v6 = ep.addresses.iter().any(|a| a.addr().is_ipv6());
        let reply = JoinReply {
            interface_name: InterfaceName { src_name: ep.link.clone(), dst_prefix: "eth".into() },
            gateway: if ep.has_v4() { gw(false) } else { String::new() },
            gateway_ipv6: if has_v6 { gw(true) } else { String::new() },
            static_routes: link::static_routes(&net, &ep),
            disable_gateway_service: l3,
        };
        serde_json::to_value(reply).map_err(|e| e.to_string())
    }

    pub fn leave(&self, req: EndpointRef) -> Reply {
        // dockerd hands the link back to this namespace; DeleteEndpoint removes it.
        self.endpoint(&req.network_id, &req.endpoint_id)?;
        Ok(json!({}))
    }

    pub fn delete_endpoint(&self, req: EndpointRef) -> Reply {
        let _g = self.guard();
        check_id("endpoint ID", &req.endpoint_id)?;
        // Deleting what is already gone succeeds: dockerd retries after crashes.
        let Some(ep) = self.records.endpoint(&req.endpoint_id)? else { return Ok(json!({})) };
        let mut nl = nl()?;
        if let Ok(Some(net)) = self.records.network(&ep.network) {
            let _ = host_access::route(&mut nl, &net, &ep, false);
        }
        self.remove_endpoint(&mut nl, &ep)?;
        Ok(json!({}))
    }

    /// The link (if dockerd handed it back, or Join failed before the move) and record.
    fn remove_endpoint(&self, nl: &mut Netlink, ep: &EndpointRecord) -> Result<(), String> {
        nl.delete_link_by_name(&ep.link).map_err(|e| format!("delete link {}: {e}", ep.link))?;
        self.records.remove_endpoint(&ep.id)
    }

    pub fn endpoint_info(&self, req: EndpointRef) -> Reply {
        let ep = self.endpoint(&req.network_id, &req.endpoint_id)?;
        let addrs: Vec<String> = ep.addresses.iter().map(|a| a.to_string()).collect();
        Ok(json!({"Value": {"underlay.link": ep.link, "underlay.addresses": addrs.join(",")}}))
    }

    /// At start: every Join link still in this namespace is a leftover of a Join that
    /// died before dockerd took the link, or of a Leave whose DeleteEndpoint never came.
    pub fn recover(&self) -> Vec<String> {
        let _g = self.guard();
        let mut done = Vec::new();
        let Ok(mut nl) = nl() else { return done };
        for link in nl.links().unwrap_or_default() {
            if link::is_ours(&link) && nl.delete_link(link.index).is_ok() {
                done.push(format!("removed leftover link {}", link.name));
            }
        }
        let endpoints = self.records.endpoints();
        // Parents first: a shim sits on its network's parent.
        let networks = self.records.networks();
        done.extend(parent::restore(&mut nl, &networks));
        done.extend(host_access::leftovers(&mut nl, &networks));
        for net in self.records.networks() {
            done.extend(host_access::restore(&mut nl, &net, &endpoints));
        }
        done
    }
}
