//! The last step of `down` before the namespaces go: every process still living in one
//! of the lab's network namespaces is killed, whether or not a record names it. A
//! SIGKILLed `up` can die between starting a server and writing it down, and such a
//! server would keep its namespace (and the lab's address) alive with nothing to find it.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Kills (SIGKILL) every process whose network namespace is one of `namespaces` (paths
/// of namespace pins: /run/netns entries, `underlay run`'s pins). Returns how many.
pub fn kill_inside(namespaces: &[PathBuf]) -> usize {
    // A pin and /proc/PID/ns/net name the same nsfs inode.
    let ids: HashSet<(u64, u64)> =
        namespaces.iter().filter_map(|p| std::fs::metadata(p).ok()).map(|m| (m.dev(), m.ino())).collect();
    if ids.is_empty() {
        return 0;
    }
    let me = std::process::id();
    let mut killed = 0;
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        if pid == me {
            continue;
        }
        // A process that ended meanwhile, or a kernel thread: nothing to read, skip it.
        let Ok(m) = std::fs::metadata(entry.path().join("ns/net")) else { continue };
        if ids.contains(&(m.dev(), m.ino()))
            && let Ok(pid) = i32::try_from(pid)
            && kill(Pid::from_raw(pid), Signal::SIGKILL).is_ok()
        {
            killed += 1;
        }
    }
    killed
}
