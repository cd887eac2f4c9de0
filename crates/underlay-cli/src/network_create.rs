//! `underlay network create`: Docker's flags checked and put together into a network
//! record, its parent made ready and its aux addresses held.

use std::collections::BTreeMap;
use std::net::IpAddr;

use clap::Args;
use ipnet::IpNet;
use underlay_linux::MacvlanMode;
use underlay_linux::Netlink;
use underlay_linux::ipvlan::{IpvlanFlag, IpvlanMode};
use underlay_linux::parent::Parents;
use underlay_linux::support::{Feature, has};

use crate::address_store::AddressStore;
use crate::failure::{Failure, Result};
use crate::model::{ClusterIpam, DhcpIpam, Driver, Mode, Network, Subnet, new_id, now};
use crate::network_aux::{aux_owners, reserve_aux};
use crate::network_parent::{check_parent, default_parent, ensure_parent, parent_user};
use crate::state::{Dirs, State};

#[derive(Args)]
pub struct CreateArgs {
    /// The link kind: macvlan (each endpoint its own MAC) or ipvlan (the parent's MAC).
    #[arg(short = 'd', long = "driver", value_enum, default_value_t = Driver::Macvlan)]
    driver: Driver,
    /// A subnet (CIDR); give one per address family.
    #[arg(long = "subnet")]
    subnets: Vec<String>,
    /// The router of a subnet (one per subnet, matched by address family and range).
    #[arg(long = "gateway")]
    gateways: Vec<String>,
    /// Hand out addresses only from this part of a subnet.
    #[arg(long = "ip-range")]
    ip_ranges: Vec<String>,
    /// Keep an address out of allocation: NAME=IP.
    #[arg(long = "aux-address")]
    aux: Vec<String>,
    /// Driver options: parent=IF (IF.VID creates the VLAN), macvlan_mode=,
    /// ipvlan_mode=, ipvlan_flag=.
    #[arg(short = 'o', long = "opt")]
    opts: Vec<String>,
    /// Enable IPv6 (needed for an IPv6 --subnet).
    #[arg(long)]
    ipv6: bool,
    /// No default route in endpoints: the network reaches only its own subnet.
    #[arg(long)]
    internal: bool,
    /// MTU of the endpoints (default: the parent's).
    #[arg(long)]
    mtu: Option<u32>,
    /// Where addresses come from: host-local (this host's files, the default),
    /// underlay-ipam (etcd, shared by every host on the subnet) or dhcp (the LAN's
    /// DHCP server, through the dhcp daemon; no --subnet).
    #[arg(long = "ipam-driver", default_value = "host-local")]
    ipam_driver: String,
    /// underlay-ipam options: endpoints=URL[,URL], prefix=, node=, ca-file=,
    /// cert-file=, key-file=, username=, password-file=, timeout-ms=; dhcp: socket=PATH
    /// (the daemon's, default /run/cni/dhcp.sock).
    #[arg(long = "ipam-opt")]
    ipam_opts: Vec<String>,
    /// The network's name (letters, digits, '_', '.', '-').
    name: String,
}

fn parse_net(s: &str, flag: &str) -> Result<IpNet> {
    let net: IpNet =
        s.parse().map_err(|_| Failure::usage(format!("{flag} \"{s}\" is not a CIDR (like 192.168.1.0/24)")))?;
    if net.addr() != net.network() {
        return Err(Failure::usage(format!("{flag} \"{s}\" has host bits set; did you mean \"{}\"?", net.trunc())));
    }
    Ok(net)
}

fn parse_ip(s: &str, flag: &str) -> Result<IpAddr> {
    s.parse().map_err(|_| Failure::usage(format!("{flag} \"{s}\" is not an IP address")))
}

/// Docker's flags, checked and put together into subnets.
fn subnets(args: &CreateArgs) -> Result<Vec<Subnet>> {
    if args.ipam_driver == "dhcp" {
        let flags = [
            ("--subnet", args.subnets.is_empty()),
            ("--gateway", args.gateways.is_empty()),
            ("--ip-range", args.ip_ranges.is_empty()),
            ("--aux-address", args.aux.is_empty()),
        ];
        if let Some((flag, _)) = flags.iter().find(|(_, unset)| !unset) {
            return Err(Failure::usage(format!(
                "{flag} does not go with --ipam-driver dhcp: the LAN's DHCP server hands out addresses and routes"
            )));
        }
        return Ok(Vec::new());
    }
    if args.subnets.is_empty() {
        return Err(Failure::usage("--subnet is required (like --subnet 192.168.1.0/24)"));
    }
    let mut out: Vec<Subnet> = Vec::new();
    for s in &args.subnets {
        let subnet = parse_net(s, "--subnet")?;
        if subnet.addr().is_ipv6() && !args.ipv6 {
            return Err(Failure::usage(format!(
                "--subnet {subnet} is IPv6; add --ipv6 to enable IPv6 on this network"
            )));
        }
        if let Some(other) =
            out.iter().find(|o| o.subnet.contains(&subnet.network()) || subnet.contains(&o.subnet.network()))
        {
            return Err(Failure::usage(format!("--subnet {subnet} overlaps --subnet {}", other.subnet)));
        }
        out.push(Subnet { subnet, gateway: None, ip_range: None, aux_addresses: BTreeMap::new() });
    }
    let owner = |out: &mut Vec<Subnet>, ip: IpAddr, what: &str| -> Result<usize> {
        out.iter().position(|s| s.subnet.contains(&ip)).ok_or_else(|| {
            let all: Vec<String> = out.iter().map(|s| s.subnet.to_string()).collect();
            Failure::usage(format!("{what} is outside every --subnet ({})", all.join(", ")))
        })
    };
    for g in &args.gateways {
        let ip = parse_ip(g, "--gateway")?;
        let i = owner(&mut out, ip, &format!("--gateway {ip}"))?;
        if out[i].gateway.replace(ip).is_some() {
            return Err(Failure::usage(format!("--gateway {ip}: subnet {} already has a gateway", out[i].subnet)));
        }
    }
    for r in &args.ip_ranges {
        let range = parse_net(r, "--ip-range")?;
        let i = owner(&mut out, range.network(), &format!("--ip-range {range}"))?;
        if !out[i].subnet.contains(&range) {
            return Err(Failure::usage(format!("--ip-range {range} does not fit in --subnet {}", out[i].subnet)));
        }
        out[i].ip_range = Some(range);
    }
    for a in &args.aux {
        let (name, ip) =
            a.split_once('=').ok_or_else(|| Failure::usage(format!("--aux-address \"{a}\" is not NAME=IP")))?;
        let ip = parse_ip(ip, "--aux-address")?;
        let i = owner(&mut out, ip, &format!("--aux-address {name}={ip}"))?;
        out[i].aux_addresses.insert(name.to_string(), ip);
    }
    Ok(out)
}

struct Opts {
    parent: Option<String>,
    mode: Mode,
}

fn opts(args: &CreateArgs, driver: Driver) -> Result<Opts> {
    let mut parent = None;
    let (mut macvlan, mut mode, mut flag) = (None, None, None);
    for o in &args.opts {
        let (k, v) = o.split_once('=').ok_or_else(|| Failure::usage(format!("-o \"{o}\" is not KEY=VALUE")))?;
        match (k, driver) {
            ("parent", _) => parent = Some(v.to_string()),
            ("macvlan_mode", Driver::Macvlan) => {
                macvlan = Some(v.parse().map_err(|e| Failure::usage(format!("-o macvlan_mode: {e}")))?);
            }
            ("ipvlan_mode", Driver::Ipvlan) => {
                mode = Some(v.parse().map_err(|e| Failure::usage(format!("-o ipvlan_mode: {e}")))?);
            }
            ("ipvlan_flag", Driver::Ipvlan) => {
                flag = Some(v.parse().map_err(|e| Failure::usage(format!("-o ipvlan_flag: {e}")))?);
            }
            ("macvlan_mode" | "ipvlan_mode" | "ipvlan_flag", _) => {
                return Err(Failure::usage(format!("-o {k} does not apply to the {} driver", driver.as_str())));
            }
            _ => {
                return Err(Failure::usage(format!(
                    "-o {k}: unknown option; known: parent, macvlan_mode (macvlan), ipvlan_mode and ipvlan_flag (ipvlan)"
                )));
            }
        }
    }
    let mode = match driver {
        Driver::Macvlan => Mode::Macvlan(macvlan.unwrap_or(MacvlanMode::Bridge)),
        Driver::Ipvlan => Mode::Ipvlan(mode.unwrap_or(IpvlanMode::L2), flag.unwrap_or(IpvlanFlag::Bridge)),
    };
    Ok(Opts { parent, mode })
}

/// `--ipam-driver` and `--ipam-opt`.
fn cluster_ipam(args: &CreateArgs) -> Result<Option<ClusterIpam>> {
    match args.ipam_driver.as_str() {
        "host-local" | "default" => {
            if let Some(o) = args.ipam_opts.first() {
                return Err(Failure::usage(format!("--ipam-opt \"{o}\": host-local takes no options")));
            }
            return Ok(None);
        }
        "underlay-ipam" => {}
        "dhcp" => return Ok(None),
        other => {
            return Err(Failure::usage(format!(
                "unknown --ipam-driver \"{other}\"; expected host-local, underlay-ipam or dhcp"
            )));
        }
    }
    let mut etcd = underlay_ipam::EtcdConf::default();
    let mut node = None;
    for o in &args.ipam_opts {
        let (k, v) = o.split_once('=').ok_or_else(|| Failure::usage(format!("--ipam-opt \"{o}\" is not KEY=VALUE")))?;
        let v = v.to_string();
        match k {
            "endpoints" => etcd.endpoints = v.split(',').map(str::to_string).collect(),
            "prefix" => etcd.prefix = Some(v),
            "node" => node = Some(v),
            "ca-file" => etcd.ca_file = Some(v.into()),
            "cert-file" => etcd.cert_file = Some(v.into()),
            "key-file" => etcd.key_file = Some(v.into()),
            "username" => etcd.username = Some(v),
            "password-file" => etcd.password_file = Some(v.into()),
            "timeout-ms" => {
                etcd.timeout_ms = Some(
                    v.parse().map_err(|_| Failure::usage(format!("--ipam-opt timeout-ms=\"{v}\" is not a number")))?,
                )
            }
            _ => return Err(Failure::usage(format!("unknown --ipam-opt \"{k}\""))),
        }
    }
    etcd.validate().map_err(|e| Failure::usage(format!("--ipam-opt: {}", e.msg)))?;
    Ok(Some(ClusterIpam { etcd, node }))
}

/// `--ipam-driver dhcp`: the daemon's socket, and the daemon must answer now (a
/// network whose every `run` would fail is refused at create).
fn dhcp_ipam(args: &CreateArgs) -> Result<Option<DhcpIpam>> {
    if args.ipam_driver != "dhcp" {
        return Ok(None);
    }
    let mut socket = std::path::PathBuf::from(dhcp::rpc::DEFAULT_SOCKET);
    for o in &args.ipam_opts {
        match o.split_once('=') {
            Some(("socket", v)) if !v.is_empty() => socket = v.into(),
            _ => return Err(Failure::usage(format!("--ipam-opt \"{o}\": dhcp takes only socket=PATH"))),
        }
    }
    dhcp::rpc::call(&socket, &dhcp::rpc::Request::Status, std::time::Duration::from_secs(5)).map_err(|e| {
        Failure::system(format!("the dhcp daemon does not answer at {}: {}", socket.display(), e.msg))
            .hint("start it: `dhcp daemon` (or systemctl start underlay-dhcp), or give --ipam-opt socket=PATH")
    })?;
    Ok(Some(DhcpIpam { socket }))
}

fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

pub fn create(dirs: &Dirs, args: CreateArgs) -> Result<Network> {
    underlay::cni::names::network_name(&args.name).map_err(|e| Failure::usage(e.msg))?;
    let driver = args.driver;
    let subnets = subnets(&args)?;
    let opts = opts(&args, driver)?;
    let ipam = cluster_ipam(&args)?;
    let dhcp = dhcp_ipam(&args)?;
    let state = State::lock(dirs)?;
    let all = state.networks()?;
    if all.iter().any(|n| n.name == args.name) {
        return Err(Failure::conflict(format!("a network named \"{}\" already exists", args.name)));
    }
    for s in &subnets {
        for n in &all {
            if let Some(o) = n.subnets.iter().find(|o| overlaps(&o.subnet, &s.subnet)) {
                return Err(Failure::conflict(format!(
                    "subnet {} overlaps subnet {} of network \"{}\"",
                    s.subnet, o.subnet, n.name
                )));
            }
        }
    }
    if driver == Driver::Ipvlan && !has(Feature::Ipvlan)? {
        return Err(Failure::system(format!("cannot make ipvlan networks: {}", Feature::Ipvlan.missing()))
            .hint("use -d macvlan, or a kernel with ipvlan"));
    }
    let mut nl = Netlink::new()?;
    let parent = match opts.parent {
        Some(p) => p,
        None => default_parent(&mut nl)?,
    };
    check_parent(&mut nl, &parent, args.mtu)?;
    let vlan = ensure_parent(&mut nl, &parent, &args.name)?;
    let network = Network {
        name: args.name.clone(),
        id: new_id(),
        driver,
        parent,
        vlan,
        mode: opts.mode,
        subnets,
        internal: args.internal,
        ipv6: args.ipv6,
        mtu: args.mtu.unwrap_or(0),
        ipam,
        dhcp,
        created: now(),
    };
    if let Err(e) = reserve_aux(dirs, &network) {
        release_network(dirs, &mut nl, &network);
        return Err(e);
    }
    state.save_network(&network)?;
    Ok(network)
}

/// Drops what a network holds: its IPAM store, and its VLAN sub-interface if underlay
/// made it and no other network uses it.
pub fn release_network(dirs: &Dirs, nl: &mut Netlink, net: &Network) {
    if let Ok(store) = AddressStore::of(net, dirs) {
        store.remove(&aux_owners(net));
    }
    if net.vlan.is_some()
        && let Ok(parents) = Parents::here()
    {
        let _ = parents.release(nl, &net.parent, &parent_user(&net.name));
    }
}
