//! Network namespaces: open by path, create and delete named ones under `/run/netns`
//! (the way `ip netns` does, so both see the same names), and run code inside one.
//!
//! A namespace is entered on a throwaway thread (`run`): `setns` changes only the
//! calling thread, and a thread left in the wrong namespace poisons whatever runs on
//! it next. One-shot plugin processes may instead `enter` on their own thread for a
//! short section: a thread costs ~100 us here, a switch ~10 us, and the guard puts the
//! thread back (or aborts the process if it cannot).

use std::fs::{File, OpenOptions};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, setns, unshare};

use crate::error::{Context, Errno, Error, Result};
use crate::netlink::Netlink;

/// Where `ip netns` keeps named namespaces.
pub const NETNS_DIR: &str = "/run/netns";

/// Filesystem magic of nsfs (a namespace file) and of procfs (`/proc/PID/ns/net`).
const NSFS_MAGIC: i64 = 0x6e73_6673;
const PROC_SUPER_MAGIC: i64 = 0x9fa0;

#[derive(Debug)]
pub struct Netns {
    file: File,
    path: PathBuf,
}

impl Netns {
    /// Opens a namespace file (`/run/netns/x`, `/proc/PID/ns/net`, ...). Anything that
    /// is not a namespace is refused, so a bad `CNI_NETNS` cannot be mistaken for one.
    pub fn open(path: impl AsRef<Path>) -> Result<Netns> {
        let path = path.as_ref();
        let what = || format!("open network namespace {}", path.display());
        let file = File::open(path).with_context(what)?;
        let fs = nix::sys::statfs::fstatfs(&file).with_context(what)?;
        let magic = fs.filesystem_type().0 as i64;
        if magic != NSFS_MAGIC && magic != PROC_SUPER_MAGIC {
            return Err(Error::new(what(), "not a network namespace file"));
        }
        Ok(Netns { file, path: path.to_path_buf() })
    }

    /// The namespace the calling thread is in.
    pub fn current() -> Result<Netns> {
        Netns::open("/proc/thread-self/ns/net")
    }

    /// Creates a named namespace `/run/netns/<name>`. Fails if the name is taken.
    pub fn create(name: &str) -> Result<Netns> {
        ensure_shared_dir().with_context(|| format!("create network namespace {name}"))?;
        Netns::create_in(Path::new(NETNS_DIR), name)
    }

    /// Creates a namespace pinned at `<dir>/<name>` (a bind mount of its nsfs file), for
    /// namespaces a tool keeps to itself, as Docker does under /run/docker/netns.
    pub fn create_in(dir: &Path, name: &str) -> Result<Netns> {
        let what = || format!("create network namespace {}", dir.join(name).display());
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return Err(Error::new(what(), "invalid name"));
        }
        std::fs::create_dir_all(dir).with_context(what)?;
        let path = dir.join(name);
        OpenOptions::new().write(true).create_new(true).open(&path).with_context(what)?;
        let made = std::thread::scope(|s| {
            s.spawn(|| -> Result<()> {
                unshare(CloneFlags::CLONE_NEWNET)?;
                mount(Some("/proc/thread-self/ns/net"), &path, None::<&str>, MsFlags::MS_BIND, None::<&str>)?;
                Ok(())
            })
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
        });
        if let Err(e) = made {
            let _ = std::fs::remove_file(&path);
            return Err(e.context(what()));
        }
        Netns::open(&path)
    }

    /// Removes a named namespace. Its interfaces go when the last user leaves it.
    /// Succeeds if it does not exist.
    pub fn delete(name: &str) -> Result<()> {
        Netns::delete_in(Path::new(NETNS_DIR), name)
    }

    /// Removes the namespace pinned at `<dir>/<name>`; succeeds if there is none.
    pub fn delete_in(dir: &Path, name: &str) -> Result<()> {
        let path = dir.join(name);
        let what = || format!("delete network namespace {}", path.display());
        match umount2(&path, MntFlags::MNT_DETACH) {
            Ok(()) | Err(Errno::EINVAL) | Err(Errno::ENOENT) => {}
            Err(e) => return Err(Error::from(e).context(what())),
        }
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::from(e).context(what())),
            _ => Ok(()),
        }
    }

    /// Whether `/run/netns/<name>` exists.
    pub fn exists(name: &str) -> bool {
        Path::new(NETNS_DIR).join(name).exists()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The name under `/run/netns`, if it is a named one.
    pub fn name(&self) -> Option<&str> {
        self.path.strip_prefix(NETNS_DIR).ok().and_then(|p| p.to_str())
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }

    /// Runs `f` on a new thread inside this namespace and returns what it returns.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> Result<T> {
        let what = || format!("enter network namespace {}", self.path.display());
        std::thread::scope(|s| {
            s.spawn(|| -> Result<T> {
                setns(self.file.as_fd(), CloneFlags::CLONE_NEWNET).with_context(what)?;
                Ok(f())
            })
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    }

    /// Moves the calling thread into this namespace until the guard is dropped. For
    /// short sections of single-threaded processes; anything else uses `run`.
    pub fn enter(&self) -> Result<Entered<'_>> {
        let home = File::open("/proc/thread-self/ns/net").context("open the current network namespace")?;
        setns(self.file.as_fd(), CloneFlags::CLONE_NEWNET)
            .with_context(|| format!("enter network namespace {}", self.path.display()))?;
        Ok(Entered { home, _ns: std::marker::PhantomData })
    }

    /// A netlink socket that lives in this namespace (usable from any thread).
    pub fn netlink(&self) -> Result<Netlink> {
        self.run(Netlink::new)?
    }

    /// A command whose process starts inside this namespace.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        // The closure owns its own descriptor (close-on-exec), so the Command works however
        // long it outlives `self`. A failed dup fails the spawn, not this call.
        let fd = self.file.as_fd().try_clone_to_owned().map_err(|e| e.raw_os_error().unwrap_or(libc::EMFILE));
        // SAFETY: `pre_exec` itself is unsafe and std offers no safe way to run code
        // between fork and exec. Only setns(2), which is async-signal-safe and allocates
        // nothing, runs there (an OS error is built without allocating).
        unsafe {
            cmd.pre_exec(move || match &fd {
                Ok(fd) => setns(fd, CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from),
                Err(errno) => Err(std::io::Error::from_raw_os_error(*errno)),
            });
        }
        cmd
    }

    /// Loads an nftables script here (`nft -f -`).
    pub fn nft(&self, script: &str) -> Result<()> {
        use std::io::Write;
        use std::process::Stdio;
        let mut child = self
            .command("nft")
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("run nft (install the nftables package)")?;
        child.stdin.take().expect("piped").write_all(script.as_bytes()).context("write nft rules")?;
        let out = child.wait_with_output().context("wait for nft")?;
        if !out.status.success() {
            return Err(Error::new("load nft rules", String::from_utf8_lossy(&out.stderr).trim().to_string()));
        }
        Ok(())
    }

    /// Whether two handles name the same namespace.
    pub fn same_as(&self, other: &Netns) -> Result<bool> {
        let a = nix::sys::stat::fstat(&self.file)?;
        let b = nix::sys::stat::fstat(&other.file)?;
        Ok((a.st_dev, a.st_ino) == (b.st_dev, b.st_ino))
    }

    /// Reads `/proc/sys/<key>` inside this namespace (`key` like `net/ipv4/ip_forward`).
    pub fn sysctl(&self, key: &str) -> Result<String> {
        self.run(|| crate::sysctl::read(key))?
    }

    /// Writes `/proc/sys/<key>` inside this namespace.
    pub fn set_sysctl(&self, key: &str, value: &str) -> Result<()> {
        self.run(|| crate::sysctl::write(key, value))?
    }
}

/// The calling thread is inside a namespace until this is dropped. Not `Send`: it
/// must be dropped on the thread that entered.
pub struct Entered<'a> {
    home: File,
    _ns: std::marker::PhantomData<(&'a Netns, *const ())>,
}

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        if let Err(e) = setns(self.home.as_fd(), CloneFlags::CLONE_NEWNET) {
            // Going on in the wrong namespace would act on the wrong network.
            eprintln!("underlay: cannot return to the original network namespace: {e}");
            std::process::abort();
        }
    }
}

/// Makes `/run/netns` a shared mount point, as iproute2 does, so namespaces created here
/// are visible in other mount namespaces (containers, `ip netns exec`).
fn ensure_shared_dir() -> Result<()> {
    std::fs::create_dir_all(NETNS_DIR).context(format!("create {NETNS_DIR}"))?;
    let shared = || mount(Some(""), NETNS_DIR, Some("none"), MsFlags::MS_SHARED | MsFlags::MS_REC, None::<&str>);
    match shared() {
        Ok(()) => Ok(()),
        Err(Errno::EINVAL) => {
            mount(Some(NETNS_DIR), NETNS_DIR, Some("none"), MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)
                .context(format!("bind-mount {NETNS_DIR}"))?;
            shared().context(format!("make {NETNS_DIR} shared"))
        }
        Err(e) => Err(Error::from(e).context(format!("make {NETNS_DIR} shared"))),
    }
}
