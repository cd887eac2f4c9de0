//! Timing plugin processes, and their peak memory.
//!
//! Peak memory is `VmHWM` read from /proc at the moment the process exits (it is
//! stopped there with ptrace's exit event). `ru_maxrss` from wait4 would be wrong
//! here: with vfork-style spawning it also counts the parent's memory from before the
//! exec, so every process looks at least as big as the benchmark itself.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sys::ptrace;
use nix::sys::signal::Signal;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::Pid;

/// Runs `cmd` with `stdin`; fails if it exits non-zero. Returns the wall time from
/// spawn to exit. Fails with `Interrupted` instead once the user pressed Ctrl-C: every
/// benchmark starts its plugins here, so each stops at its next call.
pub fn timed(cmd: &mut Command, stdin: &[u8]) -> Result<Duration> {
    underlay_linux::interrupt::check()?;
    let start = Instant::now();
    let out = run(cmd, stdin)?;
    let wall = start.elapsed();
    if !out.status.success() {
        bail!("{cmd:?} failed ({}): {}", out.status, String::from_utf8_lossy(&out.stdout));
    }
    Ok(wall)
}

fn run(cmd: &mut Command, stdin: &[u8]) -> Result<std::process::Output> {
    let mut child =
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().context("spawn")?;
    child.stdin.take().expect("piped").write_all(stdin).context("write stdin")?;
    child.wait_with_output().context("wait")
}

/// The process's own peak resident memory in KiB, and whether it succeeded.
pub fn peak_rss_kb(cmd: &mut Command, stdin: &[u8]) -> Result<u64> {
    underlay_linux::interrupt::check()?;
    // SAFETY: std's `pre_exec` is unsafe and has no safe form for code between fork and
    // exec; PTRACE_TRACEME is one async-signal-safe syscall that allocates nothing.
    unsafe {
        cmd.pre_exec(|| ptrace::traceme().map_err(std::io::Error::from));
    }
    let mut child =
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().context("spawn")?;
    let pid = Pid::from_raw(child.id() as i32);
    // The tracee stops with SIGTRAP right after exec.
    match waitpid(pid, None)? {
        WaitStatus::Stopped(_, Signal::SIGTRAP) => {}
        other => bail!("unexpected first stop of traced plugin: {other:?}"),
    }
    ptrace::setoptions(pid, ptrace::Options::PTRACE_O_TRACEEXIT)?;
    ptrace::cont(pid, None)?;
    child.stdin.take().expect("piped").write_all(stdin).context("write stdin")?;
    let mut stdout = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let mut peak = None;
    loop {
        match waitpid(pid, None)? {
            WaitStatus::PtraceEvent(_, _, ev) if ev == ptrace::Event::PTRACE_EVENT_EXIT as i32 => {
                peak = Some(vm_hwm(pid)?);
                ptrace::cont(pid, None)?;
            }
            WaitStatus::Stopped(_, sig) => ptrace::cont(pid, Some(sig))?,
            WaitStatus::Exited(_, code) => {
                let out = reader.join().unwrap_or_default();
                if code != 0 {
                    bail!("{cmd:?} exited {code}: {}", String::from_utf8_lossy(&out));
                }
                break;
            }
            WaitStatus::Signaled(_, sig, _) => bail!("{cmd:?} killed by {sig}"),
            _ => {}
        }
    }
    peak.context("the plugin exited without an exit stop")
}

fn vm_hwm(pid: Pid) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    if std::env::var_os("UNDERLAY_BENCH_DEBUG").is_some() {
        for l in status.lines().filter(|l| l.starts_with("Rss") || l.starts_with("VmHWM") || l.starts_with("VmStk")) {
            eprintln!("  {l}");
        }
    }
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmHWM in /proc/PID/status")
}

/// p50 and p99 of a set of durations, in milliseconds.
pub fn percentiles(samples: &[Duration]) -> (f64, f64) {
    let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() as f64 - 1.0) * q).round() as usize];
    (at(0.5), at(0.99))
}

pub fn mb(kb: u64) -> String {
    format!("{:.1} MB", kb as f64 / 1024.0)
}

/// An IPAM plugin call as a runtime makes it (IPAM plugins do not enter the namespace).
pub fn ipam_call(bin: &std::path::Path, command: &str, cid: &str) -> Command {
    let mut c = Command::new(bin);
    c.env_clear()
        .env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", cid)
        .env("CNI_NETNS", "/proc/self/ns/net")
        .env("CNI_IFNAME", "eth0")
        .env("CNI_PATH", "/usr/lib/cni");
    c
}

/// A binary built beside this one (`target/<triple>/release/<name>`).
/// `plugin` from the CNI_PATH `dir`, started as a runtime starts it for `eth0` in `pod`.
pub fn plugin_call(dir: &std::path::Path, plugin: &str, verb: &str, cid: &str, pod: &underlay_linux::Netns) -> Command {
    let mut c = Command::new(dir.join(plugin));
    c.env_clear()
        .env("CNI_COMMAND", verb)
        .env("CNI_CONTAINERID", cid)
        .env("CNI_NETNS", pod.path())
        .env("CNI_IFNAME", "eth0")
        .env("CNI_PATH", dir);
    c
}

pub fn sibling(name: &str) -> std::path::PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join(name)))
        .unwrap_or_else(|| std::path::PathBuf::from(name))
}
