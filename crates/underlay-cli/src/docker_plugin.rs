//! `underlay docker-plugin ...` hands over to the `underlay-docker-plugin` executable
//! next to this one, so the `underlay` binary carries no async runtime or HTTP server.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::process::Command;

use crate::failure::Failure;

/// Execs `underlay-docker-plugin ARGS...`; returns only on failure.
pub fn exec(args: &[OsString]) -> Failure {
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => return Failure::system(format!("find the underlay executable: {e}")),
    };
    let daemon = exe.with_file_name("underlay-docker-plugin");
    if !daemon.is_file() {
        return Failure::not_found(format!("the Docker driver is not installed: {} does not exist", daemon.display()))
            .hint("build it next to underlay: cargo build --release --bin underlay-docker-plugin");
    }
    let e = Command::new(&daemon).args(args).exec();
    Failure::system(format!("run {}: {e}", daemon.display()))
}
