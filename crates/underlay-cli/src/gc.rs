//! `underlay gc`: repairs what a crash or a `kill -9` left: endpoints nobody looks after
//! (their keeper died, their namespace is gone, or they never finished attaching),
//! addresses no endpoint holds, and namespaces no endpoint uses.

use std::collections::HashSet;

use crate::address_store::AddressStore;
use crate::endpoint::{IFNAME, detach};
use crate::failure::Result;
use crate::model::{Endpoint, Phase, short};
use crate::network_aux::aux_owner;
use crate::state::drop_netns;
use crate::state::{Dirs, State};
use underlay::cni::Attachment;

/// Whether nothing looks after this endpoint any more.
fn stale(e: &Endpoint) -> bool {
    match e.phase {
        // Nothing is held: it stays until `rm` or `stop`.
        Phase::Exited => false,
        Phase::Attaching => !e.keeper.is_some_and(|k| k.alive()),
        Phase::Attached if !e.command.is_empty() => !e.keeper.is_some_and(|k| k.alive()),
        Phase::Attached => underlay_linux::Netns::open(&e.netns).is_err() || e.process.is_some_and(|p| !p.alive()),
    }
}

pub fn gc(dirs: &Dirs) -> Result<()> {
    {
        let state = State::lock(dirs)?;
        for d in state.damaged()? {
            let to = state.set_aside(&d)?;
            println!("moved damaged record {} to {}", d.damaged.display(), to.display());
        }
    }
    let eps = State::lock(dirs)?.endpoints()?;
    for e in eps.iter().filter(|e| stale(e)) {
        if let Some(p) = e.process.filter(|p| p.alive()) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(p.pid as i32), nix::sys::signal::Signal::SIGKILL);
        }
        detach(dirs, e)?;
        println!("released endpoint {} ({})", e.name, short(&e.id, 12));
    }
    let state = State::lock(dirs)?;
    let eps = state.endpoints()?;
    // Addresses: every network's store keeps only its endpoints' and aux addresses.
    for net in state.networks()? {
        let mut valid: Vec<Attachment> = eps
            .iter()
            // An exited endpoint holds nothing: an address in its name is stray.
            .filter(|e| e.network == net.name && e.phase != Phase::Exited)
            .map(|e| Attachment { container_id: e.id.clone(), ifname: IFNAME.to_string() })
            .collect();
        valid.extend(net.subnets.iter().flat_map(|s| s.aux_addresses.keys()).map(|n| aux_owner(&net, n)));
        if state.host_access(&net.name)?.is_some() {
            valid.push(crate::host_access::owner(&net));
        }
        for ip in AddressStore::of(&net, dirs)?.gc(&valid)? {
            println!("released address {ip} on {}", net.name);
        }
    }
    for log in crate::exited::orphan_logs(&state)? {
        println!("removed log {}", log.display());
    }
    // Namespaces `run` made that no endpoint uses.
    let used: HashSet<String> =
        eps.iter().filter(|e| e.netns_owned && e.phase != Phase::Exited).map(|e| e.id.clone()).collect();
    if let Ok(entries) = std::fs::read_dir(dirs.netns_dir()) {
        for name in entries.flatten().filter_map(|e| e.file_name().into_string().ok()) {
            if used.contains(&name) {
                continue;
            }
            // No record, but a process (a keeper's command) may still live in it:
            // removing the pin would hide a live link from underlay. Leave it.
            let inside = processes_in(&dirs.netns_dir().join(&name));
            if !inside.is_empty() {
                let pids: Vec<String> = inside.iter().map(u32::to_string).collect();
                println!(
                    "kept namespace {name}: no record, but process {} runs in it (stop it, then gc)",
                    pids.join(", ")
                );
                continue;
            }
            drop_netns(dirs, &name);
            println!("removed namespace {name}");
        }
    }
    Ok(())
}

/// The processes whose network namespace is the one pinned at `pin`.
fn processes_in(pin: &std::path::Path) -> Vec<u32> {
    use std::os::unix::fs::MetadataExt;
    let Ok(ns) = std::fs::metadata(pin) else { return Vec::new() };
    let Ok(procs) = std::fs::read_dir("/proc") else { return Vec::new() };
    procs
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::metadata(format!("/proc/{pid}/ns/net")).is_ok_and(|m| m.ino() == ns.ino() && m.dev() == ns.dev())
        })
        .collect()
}
