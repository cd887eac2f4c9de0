//! `underlay lab ...` hands over to the `underlay-lab` executable next to this one, so
//! the product binary carries no test-world builder.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::process::Command;

use crate::failure::Failure;
use crate::state::Dirs;

/// Execs `underlay-lab ARGS...` with the run dir in `UNDERLAY_RUN_DIR`; returns only on failure.
pub fn exec(dirs: &Dirs, args: &[OsString]) -> Failure {
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => return Failure::system(format!("find the underlay executable: {e}")),
    };
    let lab = exe.with_file_name("underlay-lab");
    if !lab.is_file() {
        return Failure::not_found(format!("the lab is not installed: {} does not exist", lab.display()))
            .hint("build it next to underlay: cargo build --release --bin underlay-lab (or run scripts/lab)");
    }
    let e = Command::new(&lab).env("UNDERLAY_RUN_DIR", &dirs.run).args(args).exec();
    Failure::system(format!("run {}: {e}", lab.display()))
}
