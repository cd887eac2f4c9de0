//! The `dhcp` IPAM plugin: a thin CNI adapter that asks the `dhcp daemon` (over its
//! Unix socket) for a lease on the container's interface, and the daemon itself.

pub mod client;
pub mod conf;
pub mod daemon;
pub mod keeper;
pub mod lease;
pub mod record;
pub mod rpc;
pub mod wire;

use std::time::Duration;

use underlay::cni::{Call, CniError, CniResult, Plugin};

use crate::conf::Conf;
use crate::record::Key;
use crate::rpc::Request;

pub struct Dhcp;

/// How long to wait for the daemon beyond the DHCP timeout itself.
const SLACK: Duration = Duration::from_secs(5);
/// Waits for answers that need no DHCP exchange (STATUS, CHECK), though CHECK may
/// wait for a renewal in flight (at most 8 s); DEL and GC also stop keepers.
const QUICK: Duration = Duration::from_secs(15);
const RELEASE: Duration = Duration::from_secs(30);

fn key(conf: &Conf, call: &Call) -> Key {
    Key { network: conf.network.clone(), container_id: call.env.container_id.clone(), ifname: call.env.ifname.clone() }
}

/// Option 61: type 0 (not a hardware address) and `<pod or container>/<network>/<ifname>`,
/// stable for a pod across sandbox restarts when Kubernetes names it.
fn client_id(call: &Call, conf: &Conf) -> Vec<u8> {
    let args = &call.env.args;
    let who = match (args.get("K8S_POD_NAMESPACE"), args.get("K8S_POD_NAME")) {
        (Some(ns), Some(pod)) if !pod.is_empty() => format!("{ns}/{pod}"),
        _ => call.env.container_id.clone(),
    };
    let mut id = vec![0u8];
    id.extend(format!("{who}/{}/{}", conf.network, call.env.ifname).bytes().take(250));
    id
}

/// Option 12: the pod's (or, through Podman, the container's) name when it is a
/// valid host name.
fn hostname(call: &Call) -> Option<String> {
    let name = call.env.args.get("K8S_POD_NAME")?;
    valid_hostname(name).then(|| name.to_string())
}

fn valid_hostname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !name.starts_with('-')
}

impl Plugin for Dhcp {
    fn add(&self, call: &Call) -> Result<CniResult, CniError> {
        let conf = Conf::parse(call)?;
        let netns = call.env.netns.clone().ok_or_else(|| CniError::env("CNI_NETNS is required for ADD"))?;
        let req = Request::Add {
            key: key(&conf, call),
            netns,
            client_id: client_id(call, &conf),
            hostname: conf.hostname.clone().filter(|h| valid_hostname(h)).or_else(|| hostname(call)),
            request: conf.request.clone(),
            timeout_ms: conf.timeout.as_millis() as u64,
        };
        let lease = rpc::call(&conf.socket, &req, conf.timeout + SLACK)?
            .ok_or_else(|| CniError::io("dhcp daemon answered ADD without a lease"))?;
        Ok(lease.to_result())
    }

    fn del(&self, call: &Call) -> Result<(), CniError> {
        let conf = Conf::parse(call)?;
        call_quiet(&conf, &Request::Del { key: key(&conf, call) }, RELEASE).map(drop)
    }

    fn check(&self, call: &Call) -> Result<(), CniError> {
        let conf = Conf::parse(call)?;
        rpc::call(&conf.socket, &Request::Check { key: key(&conf, call) }, QUICK).map(drop)
    }

    fn status(&self, call: &Call) -> Result<(), CniError> {
        let conf = Conf::parse(call)?;
        rpc::call(&conf.socket, &Request::Status, QUICK).map(drop)
    }

    fn gc(&self, call: &Call) -> Result<(), CniError> {
        let conf = Conf::parse(call)?;
        let valid = call.conf.valid_attachments()?;
        rpc::call(&conf.socket, &Request::Gc { network: conf.network.clone(), valid }, RELEASE).map(drop)
    }
}

/// DEL must not fail because the daemon is gone: with no daemon nothing renews, and
/// the server's lease runs out by itself.
fn call_quiet(conf: &Conf, req: &Request, wait: Duration) -> Result<(), CniError> {
    match rpc::call(&conf.socket, req, wait) {
        Err(e) if e.code == underlay::cni::code::NOT_AVAILABLE => {
            eprintln!("dhcp: {}; nothing to release", e.msg);
            Ok(())
        }
        other => other.map(drop),
    }
}
