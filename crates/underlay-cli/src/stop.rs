//! `underlay stop`: SIGTERM to a `run` command, SIGKILL after the timeout, and the
//! release done here if its keeper is gone. A stopped endpoint leaves nothing behind,
//! its log included.

use std::time::{Duration, Instant};

use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;

use crate::endpoint::detach;
use crate::failure::{Failure, Result, each};
use crate::model::{Phase, Proc};
use crate::state::{Dirs, State};

/// Stops each of `names`; a failure with one does not keep the others running.
pub fn stop(dirs: &Dirs, names: &[String], timeout: Duration) -> Result<()> {
    each(names, |name| stop_one(dirs, name, timeout))
}

fn stop_one(dirs: &Dirs, name: &str, timeout: Duration) -> Result<()> {
    let ep = State::lock(dirs)?.endpoint(name)?;
    if ep.command.is_empty() {
        return Err(Failure::usage(format!(
            "\"{}\" was attached by `underlay attach`; use `underlay detach {}`",
            ep.name, ep.name
        )));
    }
    // Ended (on its own, or by the keeper after our signal): only the record is left.
    let ended = |dirs: &Dirs| {
        State::lock(dirs)
            .and_then(|s| s.endpoints())
            .map(|v| v.iter().find(|e| e.id == ep.id).is_none_or(|e| e.phase == Phase::Exited))
    };
    let mut signal_to_send = Some(Signal::SIGTERM);
    let deadline = Instant::now() + timeout;
    loop {
        if ended(dirs)? {
            break;
        }
        let live = ep.process.filter(Proc::alive);
        match (live, signal_to_send.take()) {
            (Some(p), Some(s)) => {
                let _ = signal::kill(Pid::from_raw(p.pid as i32), s);
            }
            (Some(p), None) if Instant::now() > deadline => {
                let _ = signal::kill(Pid::from_raw(p.pid as i32), Signal::SIGKILL);
            }
            (None, _) if !ep.keeper.is_some_and(|k| k.alive()) => {
                // Nobody is left to release it.
                let now = State::lock(dirs)?.endpoint(&ep.id)?;
                detach(dirs, &now)?;
                break;
            }
            _ => {}
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    crate::exited::forget(&State::lock(dirs)?, &ep)?;
    println!("{}", ep.name);
    Ok(())
}
