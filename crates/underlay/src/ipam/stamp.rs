//! The store directory's timestamps as the owner index's proof of being in step: any
//! create or delete there, by anyone, changes them, provided the change cannot land in
//! the same timestamp as the one recorded. With coarse timestamps (one clock tick, 1 to
//! 10 ms) it can, so the writer holds the lock until the tick is over; with multigrain
//! timestamps (Linux 6.13+ on ext4, xfs, btrfs, tmpfs) the first change after a stat
//! always gets a later, fine-grained time, and no wait is needed.

use std::fs::{self, OpenOptions};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::time::{Duration, Instant};

use nix::time::{ClockId, clock_gettime};
use serde::{Deserialize, Serialize};

use crate::cni::CniError;
use crate::cni::error::io_error;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Stamp {
    ino: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    pub(super) fn of(dir: &Path) -> Result<Stamp, CniError> {
        let m = fs::metadata(dir).map_err(|e| io_error(format_args!("stat {}", dir.display()), e))?;
        Ok(Stamp { ino: m.ino(), mtime: (m.mtime(), m.mtime_nsec()), ctime: (m.ctime(), m.ctime_nsec()) })
    }

    /// Waits (at most 100 ms) until the clock file timestamps come from has moved past
    /// this stamp's times, so the next change to the directory gets a different one.
    /// Polled finely: the tick ends at an unknown moment, and a whole-millisecond sleep
    /// would overshoot it by half a millisecond on average.
    pub(super) fn wait_until_past(&self) {
        let deadline = Instant::now() + Duration::from_millis(100);
        while coarse_now() <= self.mtime.max(self.ctime) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_micros(100));
        }
    }
}

/// The kernel's coarse clock, which stamps file times on file systems without
/// fine-grained timestamps (ramfs, ext4 before 6.13).
fn coarse_now() -> (i64, i64) {
    match clock_gettime(ClockId::CLOCK_REALTIME_COARSE) {
        Ok(ts) => (ts.tv_sec(), ts.tv_nsec()),
        // Never on Linux; the zero stamp only makes the next read look changed.
        Err(_) => (0, 0),
    }
}

/// Whether changes on the file system of `dir` get fine-grained timestamps after a stat,
/// tried on `probe` (a file of ours there, rewritten in place): writes, each followed
/// by a stat, microseconds apart. Coarse timestamps give the same time or, across a
/// tick, times at least a millisecond apart (no kernel ticks faster); multigrain ones
/// differ by microseconds, except that the first change after a pause takes the coarse
/// time (already later than the old one), so that one is not judged. Two more steps
/// must both show it, so one clock step cannot fake it; any doubt (another device, an
/// error) answers no, and the caller waits out the tick.
pub(super) fn fine_grained(dir: &Path, probe: &Path) -> bool {
    let same_device = match (fs::metadata(dir), probe.parent().map(fs::metadata)) {
        (Ok(d), Some(Ok(p))) => d.dev() == p.dev(),
        _ => false,
    };
    let Ok(f) = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(probe)
    else {
        return false;
    };
    let ctime = || -> Option<i128> {
        f.write_all_at(b"0", 0).ok()?;
        let m = f.metadata().ok()?;
        m.is_file().then(|| m.ctime() as i128 * 1_000_000_000 + m.ctime_nsec() as i128)
    };
    let fine = || -> Option<bool> {
        let (_, a, b, c) = (ctime()?, ctime()?, ctime()?, ctime()?);
        Some([b - a, c - b].iter().all(|d| (1..1_000_000).contains(d)))
    };
    same_device && fine() == Some(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ramfs stamps files from the coarse clock (it has no multigrain timestamps): the
    /// probe must never call it fine-grained, or the owner index could miss a change.
    /// tmpfs has multigrain timestamps from Linux 6.13: there the wait is saved.
    #[test]
    fn ramfs_is_coarse_and_tmpfs_fine_grained_from_linux_6_13() {
        let ramfs = probe_on("ramfs");
        match ramfs {
            Ok(v) => assert!(v.iter().all(|f| !f), "ramfs called fine-grained"),
            Err(e) if !nix::unistd::Uid::effective().is_root() => return eprintln!("skipped: not root ({e})"),
            Err(e) => panic!("{e}"),
        }
        let tmpfs = probe_on("tmpfs").unwrap();
        let release = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap().trim().to_string();
        let mut v = release.split(['.', '-']).map(|n| n.parse::<u32>().unwrap_or(0));
        let multigrain = (v.next().unwrap_or(0), v.next().unwrap_or(0)) >= (6, 13);
        let fine = tmpfs.iter().filter(|f| **f).count();
        if multigrain {
            // A tick may end between two steps (then the answer is no, and safe).
            assert!(fine >= 190, "tmpfs on Linux {release}: fine-grained in only {fine} of 200 probes");
        } else {
            assert_eq!(fine, 0, "tmpfs on Linux {release} has no multigrain timestamps");
        }
    }

    /// 200 probes on a fresh mount of `fstype`.
    fn probe_on(fstype: &'static str) -> Result<Vec<bool>, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        std::thread::spawn(move || -> Result<Vec<bool>, String> {
            // A mount namespace of this thread's own, so the mount is seen nowhere else
            // and goes with the thread.
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_FS | nix::sched::CloneFlags::CLONE_NEWNS)
                .map_err(|e| format!("unshare: {e}"))?;
            nix::mount::mount(
                None::<&str>,
                "/",
                None::<&str>,
                nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_PRIVATE,
                None::<&str>,
            )
            .map_err(|e| format!("make / private: {e}"))?;
            nix::mount::mount(Some(fstype), &path, Some(fstype), nix::mount::MsFlags::empty(), None::<&str>)
                .map_err(|e| format!("mount {fstype}: {e}"))?;
            Ok((0..200).map(|_| fine_grained(&path, &path.join("probe"))).collect())
        })
        .join()
        .unwrap()
    }

    /// A probe file replaced by a symbolic link or a FIFO is neither followed nor
    /// blocked on: the answer is no (and the caller waits, as on a coarse file system).
    #[test]
    fn a_planted_link_or_fifo_answers_no() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("elsewhere");
        std::os::unix::fs::symlink(&target, dir.path().join("probe")).unwrap();
        assert!(!fine_grained(dir.path(), &dir.path().join("probe")));
        assert!(!target.exists());
        nix::unistd::mkfifo(&dir.path().join("fifo"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        assert!(!fine_grained(dir.path(), &dir.path().join("fifo")));
    }
}
