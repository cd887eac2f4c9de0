//! Calling the IPAM plugin a config names. When the plugin found on `CNI_PATH` is this
//! version's own host-local, the call runs in-process (same code, same store, same
//! result, a process start saved); so do IPAM plugins a front-end linked in and
//! registered (the `underlay` command's cluster-wide IPAM); anything else is exec'd as
//! the spec describes.

use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, Ordering};

use super::conf::HostLocalConf;
use super::host_local;
use crate::cni::{Attachment, Call, CniError, CniResult, Command, Env, Plugin, delegate};
use crate::identity;

/// How the IPAM plugin named `ty` will be run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    InProcess,
    Exec,
}

/// Set by front-ends that are underlay themselves (the `underlay` command): their
/// host-local is this very code, whatever is or is not on CNI_PATH.
static ALWAYS_IN_PROCESS: AtomicBool = AtomicBool::new(false);

/// Runs host-local in-process from now on in this process, without looking for it.
pub fn host_local_in_process() {
    ALWAYS_IN_PROCESS.store(true, Ordering::Relaxed);
}

/// IPAM plugins this process runs itself, by type.
static LINKED: RwLock<Vec<(&'static str, &'static (dyn Plugin + Sync))>> = RwLock::new(Vec::new());

/// Runs IPAM type `ty` in-process with `plugin` from now on in this process.
pub fn link(ty: &'static str, plugin: &'static (dyn Plugin + Sync)) {
    LINKED.write().unwrap_or_else(|p| p.into_inner()).push((ty, plugin));
}

fn linked(ty: &str) -> Option<&'static (dyn Plugin + Sync)> {
    LINKED.read().unwrap_or_else(|p| p.into_inner()).iter().find(|(t, _)| *t == ty).map(|(_, p)| *p)
}

pub fn mode(ty: &str, env: &Env) -> Mode {
    if linked(ty).is_some() {
        return Mode::InProcess;
    }
    if ty != "host-local" {
        return Mode::Exec;
    }
    if ALWAYS_IN_PROCESS.load(Ordering::Relaxed) {
        return Mode::InProcess;
    }
    match delegate::find(ty, &env.path) {
        Ok(path) if identity::is_our_host_local(&path) => Mode::InProcess,
        _ => Mode::Exec,
    }
}

fn owner(env: &Env) -> Attachment {
    Attachment { container_id: env.container_id.clone(), ifname: env.ifname.clone() }
}

fn conf(call: &Call) -> Result<HostLocalConf, CniError> {
    HostLocalConf::parse(&call.raw, call.version, &call.env.args)
}

/// IPAM ADD. The in-process result goes through the same JSON round trip an exec'd
/// plugin's would, so both paths give the same result in every version.
pub fn add(call: &Call, ty: &str) -> Result<CniResult, CniError> {
    match mode(ty, &call.env) {
        Mode::InProcess => {
            let r = match linked(ty) {
                Some(plugin) => plugin.add(call)?,
                None => host_local::add(&conf(call)?, &owner(&call.env))?,
            };
            CniResult::from_json(&r.to_json(call.version), call.version).map(|(r, _)| r)
        }
        Mode::Exec => delegate::add(ty, &call.env, call.stdin, call.version),
    }
}

/// IPAM DEL, CHECK, STATUS or GC (`command` may differ from the call's own: an ADD
/// that fails runs DEL).
pub fn run(call: &Call, ty: &str, command: Command) -> Result<(), CniError> {
    if mode(ty, &call.env) == Mode::Exec {
        return delegate::run(ty, command, &call.env.with_command(command), call.stdin);
    }
    if let Some(plugin) = linked(ty) {
        let call =
            Call { env: call.env.with_command(command), conf: call.conf.clone(), raw: call.raw.clone(), ..*call };
        return match command {
            Command::Del => plugin.del(&call),
            Command::Check => plugin.check(&call),
            Command::Status => plugin.status(&call),
            Command::Gc => plugin.gc(&call),
            Command::Add | Command::Version => unreachable!("ADD has its own function; VERSION is not delegated"),
        };
    }
    let conf = conf(call)?;
    match command {
        Command::Del => host_local::del(&conf, &owner(&call.env)).map(drop),
        Command::Check => host_local::check(&conf, &owner(&call.env), call.prev_result()?.as_ref()),
        Command::Status => host_local::status(&conf),
        Command::Gc => host_local::gc(&conf, &call.conf.valid_attachments()?).map(drop),
        Command::Add | Command::Version => unreachable!("ADD has its own function; VERSION is not delegated"),
    }
}
