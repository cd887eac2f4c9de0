//! What a detached `run` leaves when its command ends: the record (phase `Exited`, with
//! the exit code) and the log, shown by `ps -a` and `logs`, removed by `rm`, `stop`,
//! and (a log whose endpoint is gone) `gc`.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;

use crate::failure::{Failure, Result, each};
use crate::model::{Endpoint, Phase};
use crate::state::{Dirs, State};

/// Where the command of a detached endpoint writes its output.
pub fn log_path(dirs: &Dirs, id: &str) -> PathBuf {
    dirs.logs().join(format!("{id}.log"))
}

/// Creates (empty) the log of endpoint `id`.
pub fn create_log(dirs: &Dirs, id: &str) -> Result<File> {
    std::fs::create_dir_all(dirs.logs())
        .and_then(|()| File::create(log_path(dirs, id)))
        .map_err(|e| Failure::system(format!("create {}: {e}", log_path(dirs, id).display())))
}

/// Removes the record (if still there) and the log of `ep`.
pub fn forget(state: &State, ep: &Endpoint) -> Result<()> {
    state.remove_endpoint(&ep.id)?;
    match std::fs::remove_file(log_path(state.dirs(), &ep.id)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
        _ => Ok(()),
    }
}

/// `underlay rm`: removes exited endpoints (their record and log).
pub fn rm(dirs: &Dirs, names: &[String]) -> Result<()> {
    each(names, |name| {
        let state = State::lock(dirs)?;
        let ep = state.endpoint(name)?;
        if ep.phase != Phase::Exited {
            return Err(Failure::conflict(format!("endpoint \"{}\" is not exited", ep.name)).hint(
                if ep.command.is_empty() {
                    format!("detach it: underlay detach {}", ep.name)
                } else {
                    format!("stop it (which removes it): underlay stop {}", ep.name)
                },
            ));
        }
        forget(&state, &ep)?;
        println!("{}", ep.name);
        Ok(())
    })
}

/// `underlay logs`: what a detached command wrote (stdout and stderr, interleaved).
pub fn logs(dirs: &Dirs, name: &str) -> Result<()> {
    let ep = State::lock(dirs)?.endpoint(name)?;
    if !ep.detached {
        return Err(Failure::usage(format!(
            "endpoint \"{}\" has no log: only `run -d` keeps one (a foreground command writes to its terminal)",
            ep.name
        )));
    }
    let path = log_path(dirs, &ep.id);
    let text = std::fs::read(&path).map_err(|e| Failure::system(format!("read {}: {e}", path.display())))?;
    std::io::stdout().write_all(&text)?;
    Ok(())
}

/// Removes logs whose endpoint is gone (a crash between release and removal);
/// returns their paths.
pub fn orphan_logs(state: &State) -> Result<Vec<PathBuf>> {
    let ids: Vec<String> = state.endpoints()?.into_iter().map(|e| e.id).collect();
    let Ok(entries) = std::fs::read_dir(state.dirs().logs()) else { return Ok(vec![]) };
    let mut removed = Vec::new();
    for path in entries.flatten().map(|e| e.path()) {
        let id = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_string();
        if path.extension().is_some_and(|x| x == "log") && !ids.contains(&id) && std::fs::remove_file(&path).is_ok() {
            removed.push(path);
        }
    }
    Ok(removed)
}
