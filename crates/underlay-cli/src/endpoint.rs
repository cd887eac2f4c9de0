//! Attaching a network namespace to a network and detaching it again. The link work is
//! the CNI plugins' (macvlan / ipvlan with host-local), run in-process: one core for
//! Kubernetes, Podman and this command, and one allocator.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde_json::Value;
use underlay::MacAddr;
use underlay::cni::plugin::{Plugin, run};
use underlay::cni::{CniError, CniResult, Version};

use crate::cni_conf::cni_conf;
use crate::failure::{Failure, Result};
use crate::model::{Driver, Endpoint, Phase, Proc, now};
use crate::state::{Dirs, State};

pub const IFNAME: &str = "eth0";

fn plugin(conf: &Value) -> &'static dyn Plugin {
    match conf["type"].as_str() {
        Some("ipvlan") => &underlay_attach::Ipvlan,
        _ => &underlay_attach::Macvlan,
    }
}

fn cni(command: &str, id: &str, netns: &Path, args: &str, conf: &Value) -> Result<Option<CniResult>> {
    cni_call(command, id, netns, IFNAME, args, conf)
}

/// One CNI call to our own plugin (`conf`'s type: macvlan or ipvlan), in this process
/// and its current network namespace, as a runtime would make it. ADD returns the result.
pub fn cni_call(
    command: &str,
    id: &str,
    netns: &Path,
    ifname: &str,
    args: &str,
    conf: &Value,
) -> Result<Option<CniResult>> {
    let vars = [
        ("CNI_COMMAND", command.to_string()),
        ("CNI_CONTAINERID", id.to_string()),
        ("CNI_NETNS", netns.display().to_string()),
        ("CNI_IFNAME", ifname.to_string()),
        ("CNI_ARGS", args.to_string()),
        ("CNI_PATH", String::new()),
    ];
    let stdin = serde_json::to_vec(conf).expect("serializes");
    let reply = run(plugin(conf), vars, &stdin);
    if reply.exit_code != 0 {
        let err: CniError = serde_json::from_slice(&reply.stdout)
            .unwrap_or_else(|_| CniError::kernel(String::from_utf8_lossy(&reply.stdout).to_string()));
        return Err(err.into());
    }
    if reply.stdout.is_empty() {
        return Ok(None);
    }
    let value: Value = serde_json::from_slice(&reply.stdout).map_err(|e| Failure::system(e.to_string()))?;
    Ok(Some(CniResult::from_json(&value, Version::LATEST)?.0))
}

/// What to attach.
pub struct Request {
    pub id: String,
    pub name: String,
    pub network: String,
    pub netns: PathBuf,
    pub netns_owned: bool,
    pub ips: Vec<IpAddr>,
    pub mac: Option<MacAddr>,
    pub command: Vec<String>,
    pub detached: bool,
    pub auto_remove: bool,
}

/// Attaches: records the endpoint first (so a crash leaves a record `gc` can act on),
/// then ADD, then records the result. A failed ADD undoes itself and the record goes.
pub fn attach(dirs: &Dirs, req: Request) -> Result<Endpoint> {
    let (mut ep, conf) = {
        let state = State::lock(dirs)?;
        let net = state.network(&req.network)?;
        if state.endpoints()?.iter().any(|e| e.name == req.name) {
            return Err(Failure::conflict(format!("an endpoint named \"{}\" already exists", req.name)));
        }
        if req.mac.is_some() && net.driver == Driver::Ipvlan {
            return Err(Failure::usage("--mac-address: ipvlan endpoints share their parent's MAC address"));
        }
        if net.dhcp.is_some() && !req.ips.is_empty() {
            return Err(Failure::usage(format!(
                "--ip: network \"{}\" gets its addresses from the LAN's DHCP server (reserve one there for this MAC)",
                net.name
            )));
        }
        // The parent's own addresses: refused when asked for, held aside otherwise.
        crate::parent_addresses::refuse(&net, &req.ips, "--ip")?;
        crate::ip_request::check(&state, &net, &req.ips, "--ip")?;
        let mut conf = cni_conf(&net, dirs);
        if req.ips.is_empty() {
            crate::parent_addresses::cut_out(&mut conf, &net)?;
        } else {
            crate::ip_request::whole_subnets(&mut conf);
        }
        let ep = Endpoint {
            id: req.id.clone(),
            name: req.name.clone(),
            network: net.name.clone(),
            netns: req.netns.clone(),
            netns_owned: req.netns_owned,
            ifname: IFNAME.to_string(),
            phase: Phase::Attaching,
            mac: None,
            ips: vec![],
            keeper: Some(Proc::me()),
            process: None,
            command: req.command.clone(),
            detached: req.detached,
            auto_remove: req.auto_remove,
            exit_code: None,
            cni: conf.clone(),
            created: now(),
        };
        state.save_endpoint(&ep)?;
        (ep, conf)
    };
    let mut args = vec!["IgnoreUnknown=1".to_string()];
    if !req.ips.is_empty() {
        let ips: Vec<String> = req.ips.iter().map(IpAddr::to_string).collect();
        args.push(format!("IP={}", ips.join(",")));
    }
    if let Some(mac) = req.mac {
        args.push(format!("MAC={mac}"));
    }
    if conf["ipam"]["type"] == "dhcp" {
        // The DHCP client's identity and host name: the endpoint's name, so a container
        // run again under its name asks for (and usually gets) its previous address.
        args.push(format!("K8S_POD_NAMESPACE=underlay;K8S_POD_NAME={}", req.name));
    }
    let added = cni("ADD", &ep.id, &req.netns, &args.join(";"), &conf);
    let state = State::lock(dirs)?;
    match added {
        Ok(result) => {
            let result = result.unwrap_or_default();
            ep.mac = result.interfaces.first().and_then(|i| i.mac.as_ref()).and_then(|m| MacAddr::try_from(m).ok());
            ep.ips = result.ips.iter().map(|ip| ip.address).collect();
            ep.phase = Phase::Attached;
            state.save_endpoint(&ep)?;
            drop(state);
            crate::host_access::endpoint_changed(dirs, &ep, true);
            Ok(ep)
        }
        Err(e) => {
            state.remove_endpoint(&ep.id)?;
            Err(e)
        }
    }
}

/// Detaches: DEL (address released, link deleted), the namespace `run` made removed,
/// the record dropped. Safe to repeat, and after any crash.
pub fn detach(dirs: &Dirs, ep: &Endpoint) -> Result<()> {
    release(dirs, ep, None)
}

/// As `detach`, but the record is replaced by `exited` (under the same lock, so `stop`
/// never sees the endpoint gone and then back).
pub fn release(dirs: &Dirs, ep: &Endpoint, exited: Option<&Endpoint>) -> Result<()> {
    // A namespace taken from a process (`attach --pid`) whose process is gone: the path
    // may now name another process's namespace, so only the address is released.
    let gone = !ep.netns_owned && ep.command.is_empty() && ep.process.is_some_and(|p| !p.alive());
    let netns = if gone { Path::new("") } else { ep.netns.as_path() };
    crate::host_access::endpoint_changed(dirs, ep, false);
    let del = cni("DEL", &ep.id, netns, "IgnoreUnknown=1", &ep.cni);
    if ep.netns_owned {
        crate::state::drop_netns(dirs, &ep.id);
    }
    del?;
    let state = State::lock(dirs)?;
    match exited {
        Some(record) => state.save_endpoint(record),
        None => state.remove_endpoint(&ep.id),
    }
}
