//! `underlay run`: a new network namespace on a network, a command inside it, and when
//! the command ends (or `underlay stop` ends it) everything released. With `-d` a
//! detached `underlay` process (the keeper) waits for the command instead.

use std::net::IpAddr;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use nix::sys::signal::{self, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::Pid;
use underlay::MacAddr;
use underlay_linux::Netns;

use crate::endpoint::{Request, attach, detach};
use crate::failure::{Failure, Result, exit};
use crate::model::{Endpoint, Proc, new_id};
use crate::state::drop_netns;
use crate::state::{Dirs, State};

#[derive(Args)]
pub struct RunArgs {
    /// The network to attach to.
    #[arg(long)]
    network: String,
    /// Address to use (one per address family; default: the next free one).
    #[arg(long = "ip")]
    ips: Vec<IpAddr>,
    /// IPv6 address to use (Docker's spelling; same as a second --ip).
    #[arg(long)]
    ip6: Option<IpAddr>,
    /// MAC address of the endpoint (macvlan; default: random).
    #[arg(long = "mac-address")]
    mac: Option<MacAddr>,
    /// A name for the endpoint (default: ep-<id>).
    #[arg(long)]
    name: Option<String>,
    /// A MAC derived from the network and --name: the same after every restart
    /// (macvlan; locally administered).
    #[arg(long, requires = "name", conflicts_with = "mac")]
    stable_mac: bool,
    /// Run in the background; `underlay stop NAME` ends it.
    #[arg(short = 'd', long)]
    detach: bool,
    /// The command and its arguments (after `--`).
    #[arg(required = true, last = true)]
    command: Vec<String>,
}

fn check_name(name: &str) -> Result<()> {
    underlay::cni::names::container_id(name).map_err(|_| {
        Failure::usage(format!(
            "--name \"{name}\": use letters, digits, '_', '.' and '-', starting with a letter or digit"
        ))
    })
}

/// The `run` subcommand; returns the process's exit code.
pub fn run(dirs: &Dirs, args: RunArgs) -> u8 {
    match start(dirs, args) {
        Ok(code) => code,
        Err(f) => {
            eprintln!("underlay: {f}");
            exit::RUN_FAILED
        }
    }
}

fn start(dirs: &Dirs, args: RunArgs) -> Result<u8> {
    let id = new_id();
    let name = args.name.clone().unwrap_or_else(|| format!("ep-{}", &id[..8]));
    check_name(&name)?;
    let netns = Netns::create_in(&dirs.netns_dir(), &id)?;
    // Like any container runtime: the command's own 127.0.0.1 works.
    let lo_up = netns.netlink().and_then(|mut nl| {
        let lo = nl.link("lo")?;
        nl.set_up(lo.index, true)
    });
    if let Err(e) = lo_up {
        drop_netns(dirs, &id);
        return Err(e.into());
    }
    let request_name = name.clone();
    let request = Request {
        id: id.clone(),
        name,
        network: args.network.clone(),
        netns: netns.path().to_path_buf(),
        netns_owned: true,
        ips: args.ips.iter().copied().chain(args.ip6).collect(),
        mac: if args.stable_mac { Some(MacAddr::stable(&[&args.network, &request_name])) } else { args.mac },
        command: args.command.clone(),
        detached: args.detach,
    };
    let ep = attach(dirs, request).inspect_err(|_| drop_netns(dirs, &id))?;
    if !args.detach {
        return Ok(keep(dirs, ep));
    }
    spawn_keeper(dirs, &ep)?;
    println!("{}", ep.id);
    Ok(0)
}

/// Starts the detached keeper and waits until the command runs (or has failed to).
fn spawn_keeper(dirs: &Dirs, ep: &Endpoint) -> Result<()> {
    let exe = std::env::current_exe()?;
    let mut cmd = Command::new(exe);
    cmd.arg("--state-dir").arg(&dirs.state).arg("--run-dir").arg(&dirs.run).arg("__keep").arg(&ep.id);
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    // The keeper leaves the terminal's session, so closing the terminal does not end it.
    // SAFETY: std's `pre_exec` is unsafe and has no safe form; only setsid(2), which is
    // async-signal-safe and allocates nothing, runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| nix::unistd::setsid().map(drop).map_err(std::io::Error::from));
    }
    let mut keeper = cmd.spawn()?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = State::lock(dirs)?.endpoints()?.into_iter().find(|e| e.id == ep.id);
        match now {
            Some(e) if e.process.is_some() => return Ok(()),
            None => {
                return Err(Failure::new(exit::RUN_CANNOT_EXEC, format!("{} did not start", ep.command[0]))
                    .hint(format!("see {}", dirs.logs().join(format!("{}.log", ep.id)).display())));
            }
            Some(_) if keeper.try_wait()?.is_some() || Instant::now() > deadline => {
                return Err(Failure::system("the keeper process ended before the command started"));
            }
            Some(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

static SIGNALLED: AtomicI32 = AtomicI32::new(0);

extern "C" fn remember(sig: i32) {
    SIGNALLED.store(sig, Ordering::Relaxed);
}

/// Runs the endpoint's command in its namespace, waits for it, passes on SIGINT,
/// SIGTERM and SIGHUP, then detaches. Returns the command's exit code (128+N when a
/// signal N ended it).
pub fn keep(dirs: &Dirs, ep: Endpoint) -> u8 {
    // Handlers, not "ignore": an ignored signal would stay ignored in the command.
    let action = SigAction::new(SigHandler::Handler(remember), SaFlags::empty(), SigSet::empty());
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        // SAFETY: nix's sigaction is unsafe (no safe form: it cannot check the handler);
        // the handler only stores to an atomic, which is async-signal-safe.
        let _ = unsafe { signal::sigaction(s, &action) };
    }
    let code = match spawn_command(dirs, &ep) {
        Ok(pid) => wait(pid),
        Err(code) => code,
    };
    // The record as it is now (the command's PID was added).
    let ep = State::lock(dirs).and_then(|s| s.endpoint(&ep.id)).unwrap_or(ep);
    if let Err(e) = detach(dirs, &ep) {
        eprintln!("underlay: releasing {}: {e}", ep.name);
    }
    code
}

fn spawn_command(dirs: &Dirs, ep: &Endpoint) -> std::result::Result<Pid, u8> {
    let fail = |code: u8, msg: String| {
        eprintln!("underlay: {msg}");
        code
    };
    let netns = Netns::open(&ep.netns).map_err(|e| fail(exit::RUN_FAILED, e.to_string()))?;
    let mut cmd = netns.command(&ep.command[0]);
    cmd.args(&ep.command[1..]);
    // The command dies with its keeper, so a killed keeper leaves nothing running that
    // `underlay gc` would not know to stop.
    // SAFETY: std's `pre_exec` is unsafe and has no safe form; only prctl(2), which is
    // async-signal-safe and allocates nothing, runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from));
    }
    if ep.detached {
        let logs = dirs.logs();
        let log = std::fs::create_dir_all(&logs)
            .and_then(|()| std::fs::File::create(logs.join(format!("{}.log", ep.id))))
            .map_err(|e| fail(exit::RUN_FAILED, format!("create the log: {e}")))?;
        let err = log.try_clone().map_err(|e| fail(exit::RUN_FAILED, e.to_string()))?;
        cmd.stdin(Stdio::null()).stdout(log).stderr(err);
    }
    let child = cmd.spawn().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => fail(exit::RUN_NOT_FOUND, format!("{}: command not found", ep.command[0])),
        std::io::ErrorKind::PermissionDenied => {
            fail(exit::RUN_CANNOT_EXEC, format!("{}: permission denied", ep.command[0]))
        }
        _ => fail(exit::RUN_FAILED, format!("start {}: {e}", ep.command[0])),
    })?;
    let pid = Pid::from_raw(child.id() as i32);
    let recorded = State::lock(dirs).and_then(|s| {
        let mut now = s.endpoint(&ep.id)?;
        now.keeper = Some(Proc::me());
        now.process = Proc::of(child.id());
        s.save_endpoint(&now)
    });
    if let Err(e) = recorded {
        eprintln!("underlay: recording the command's PID: {e}");
    }
    Ok(pid)
}

fn wait(pid: Pid) -> u8 {
    loop {
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, code)) => return code as u8,
            Ok(WaitStatus::Signaled(_, sig, _)) => return 128 + sig as u8,
            Err(nix::errno::Errno::EINTR) => {
                let sig = SIGNALLED.swap(0, Ordering::Relaxed);
                if let Ok(s) = Signal::try_from(sig) {
                    let _ = signal::kill(pid, s);
                }
            }
            Err(_) => return exit::RUN_FAILED,
            Ok(_) => {}
        }
    }
}

/// `underlay stop`: SIGTERM to the command, SIGKILL after `timeout`, and the release
/// done here if the keeper is gone.
pub fn stop(dirs: &Dirs, names: &[String], timeout: Duration) -> Result<()> {
    for name in names {
        let ep = State::lock(dirs)?.endpoint(name)?;
        if ep.command.is_empty() {
            return Err(Failure::usage(format!(
                "\"{}\" was attached by `underlay attach`; use `underlay detach {}`",
                ep.name, ep.name
            )));
        }
        let gone =
            |dirs: &Dirs| State::lock(dirs).and_then(|s| s.endpoints()).map(|v| !v.iter().any(|e| e.id == ep.id));
        let mut signal_to_send = Some(Signal::SIGTERM);
        let deadline = Instant::now() + timeout;
        loop {
            if gone(dirs)? {
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
        println!("{}", ep.name);
    }
    Ok(())
}

/// `underlay attach`: a namespace someone else made.
pub struct AttachArgs {
    pub network: String,
    pub netns: std::path::PathBuf,
    pub ips: Vec<IpAddr>,
    pub mac: Option<MacAddr>,
    pub name: Option<String>,
    /// Given as a process's namespace: remembered, so a reused PID never leads to
    /// someone else's namespace.
    pub pid: Option<u32>,
}

pub fn attach_existing(dirs: &Dirs, a: AttachArgs) -> Result<Endpoint> {
    Netns::open(&a.netns).map_err(|e| Failure::usage(e.to_string()))?;
    let id = new_id();
    let name = a.name.unwrap_or_else(|| format!("ep-{}", &id[..8]));
    check_name(&name)?;
    let mut ep = attach(
        dirs,
        Request {
            id,
            name,
            network: a.network,
            netns: a.netns,
            netns_owned: false,
            ips: a.ips,
            mac: a.mac,
            command: vec![],
            detached: false,
        },
    )?;
    // No process of ours looks after it; `gc` judges it by its namespace (and by the
    // process it was taken from).
    ep.keeper = None;
    ep.process = a.pid.and_then(Proc::of);
    State::lock(dirs)?.save_endpoint(&ep)?;
    Ok(ep)
}
