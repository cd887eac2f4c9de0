//! Calling the IPAM plugin a config names. When the plugin found on `CNI_PATH` is this
//! version's own host-local, the call runs in-process (same code, same store, same
//! result, a process start saved); anything else is exec'd as the spec describes.

use std::sync::atomic::{AtomicBool, Ordering};

use super::conf::HostLocalConf;
use super::host_local;
use crate::cni::{Attachment, Call, CniError, CniResult, Command, Env, delegate};
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

pub fn mode(ty: &str, env: &Env) -> Mode {
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
            let r = host_local::add(&conf(call)?, &owner(&call.env))?;
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
    let conf = conf(call)?;
    match command {
        Command::Del => host_local::del(&conf, &owner(&call.env)).map(drop),
        Command::Check => host_local::check(&conf, &owner(&call.env), call.prev_result()?.as_ref()),
        Command::Status => host_local::status(&conf),
        Command::Gc => host_local::gc(&conf, &call.conf.valid_attachments()?).map(drop),
        Command::Add | Command::Version => unreachable!("ADD has its own function; VERSION is not delegated"),
    }
}
