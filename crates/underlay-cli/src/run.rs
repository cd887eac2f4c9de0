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

use crate::endpoint::{Request, attach, release};
use crate::failure::{Failure, Result, exit};
use crate::model::{Endpoint, Phase, Proc, new_id};
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
    /// Run in the background; `underlay logs NAME` shows its output, `underlay stop
    /// NAME` ends it. When it ends on its own, `ps -a` shows its exit code until `rm`.
    #[arg(short = 'd', long)]
    detach: bool,
    /// With -d: keep no exited record when the command ends (without -d, Docker's
    /// `--rm` is what `run` always does).
    #[arg(long)]
    rm: bool,
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
            f.eprint();
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
        auto_remove: args.rm,
    };
    let ep = attach(dirs, request).inspect_err(|_| drop_netns(dirs, &id))?;
    if !args.detach {
        return Ok(keep(dirs, ep));
    }
    if let Some(failed) = spawn_keeper(dirs, &ep)? {
        return Ok(failed);
    }
    println!("{}", ep.id);
    Ok(0)
}

/// Starts the detached keeper and waits until the command runs. When it could not be
/// started, the keeper's error (from the log) goes to stderr and its exit code is
/// returned (127: not found, as in the foreground), and nothing is left behind.
fn spawn_keeper(dirs: &Dirs, ep: &Endpoint) -> Result<Option<u8>> {
    let exe = std::env::current_exe()?;
    let mut cmd = Command::new(exe);
    cmd.arg("--state-dir").arg(&dirs.state).arg("--run-dir").arg(&dirs.run).arg("__keep").arg(&ep.id);
    // The keeper's own messages go to the command's log, where `logs` shows them.
    let log = crate::exited::create_log(dirs, &ep.id)?;
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(log);
    // The keeper leaves the terminal's session, so closing the terminal does not end it.
    // SAFETY: std's `pre_exec` is unsafe and has no safe form; only setsid(2), which is
    // async-signal-safe and allocates nothing, runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| nix::unistd::setsid().map(drop).map_err(std::io::Error::from));
    }
    let mut keeper = cmd.spawn()?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = State::lock(dirs)?.endpoint_by_id(&ep.id)?;
        match now {
            Some(e) if e.phase == Phase::Exited && e.process.is_none() => {
                let why = std::fs::read_to_string(crate::exited::log_path(dirs, &ep.id)).unwrap_or_default();
                eprint!("{why}");
                crate::exited::forget(&State::lock(dirs)?, &e)?;
                return Ok(Some(e.exit_code.unwrap_or(exit::RUN_FAILED)));
            }
            Some(e) if e.process.is_some() => return Ok(None),
            None => return Err(Failure::system(format!("{} ended before it was recorded", ep.command[0]))),
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
    let (code, started) = match spawn_command(dirs, &ep) {
        Ok(pid) => (wait(pid), true),
        Err(code) => (code, false),
    };
    // The record as it is now (the command's PID was added).
    let ep = State::lock(dirs).and_then(|s| s.endpoint(&ep.id)).unwrap_or(ep);
    // A detached command's end is kept (code and log) for `ps -a` and `logs`; one that
    // never started is kept just long enough for `run -d` to report it.
    let exited =
        Endpoint { phase: Phase::Exited, exit_code: Some(code), ips: vec![], mac: None, keeper: None, ..ep.clone() };
    let keep_record = ep.detached && !(started && ep.auto_remove);
    if let Err(e) = release(dirs, &ep, keep_record.then_some(&exited)) {
        eprintln!("underlay: releasing {}: {e}", ep.name);
    }
    if ep.detached && !keep_record {
        let _ = std::fs::remove_file(crate::exited::log_path(dirs, &ep.id));
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
        let log = std::fs::OpenOptions::new()
            .append(true)
            .open(crate::exited::log_path(dirs, &ep.id))
            .map_err(|e| fail(exit::RUN_FAILED, format!("open the log: {e}")))?;
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
    // A path that is not there is "not found" (3); one that is no namespace, bad input.
    Netns::open(&a.netns).map_err(|e| match std::fs::symlink_metadata(&a.netns) {
        Err(_) => Failure::not_found(format!("--netns {}: no such namespace", a.netns.display())),
        Ok(_) => Failure::usage(format!("--netns {}: {e}", a.netns.display())),
    })?;
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
            auto_remove: false,
        },
    )?;
    // No process of ours looks after it; `gc` judges it by its namespace (and by the
    // process it was taken from).
    ep.keeper = None;
    ep.process = a.pid.and_then(Proc::of);
    State::lock(dirs)?.save_endpoint(&ep)?;
    Ok(ep)
}
