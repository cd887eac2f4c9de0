//! `timeoutMs` bounds the whole call (issue 20) and what comes before the first
//! request (issue 11): a stopped etcd leader, a resolver that never answers, a bad
//! port, and a password file anyone can read.

mod support;

use std::net::UdpSocket;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::*;
use underlay_ipam::cluster::Cluster;
use underlay_linux::Netns;

/// What a call may take beyond `timeoutMs`: process start, reading the config, and
/// writing the answer, on a loaded 2-core test machine.
const MARGIN: Duration = Duration::from_millis(500);

fn timed(f: impl FnOnce() -> Outcome) -> (Outcome, Duration) {
    let t = Instant::now();
    let out = f();
    (out, t.elapsed())
}

#[test]
fn no_add_outlasts_timeout_ms_while_the_leader_is_stopped() {
    let cluster = Cluster::start(3).unwrap();
    let timeout = Duration::from_millis(2000);
    let mut etcd = cluster.etcd_conf();
    etcd["timeoutMs"] = json!(timeout.as_millis() as u64);
    let raw = conf("stopped", &etcd, "n1", json!({"subnet": "10.33.0.0/16"}));
    let leader = cluster.leader().expect("a leader");
    let pid = nix::unistd::Pid::from_raw(cluster.pids()[leader] as i32);
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(Vec::<(Duration, u64)>::new()));
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let (raw, stop, seen) = (raw.clone(), stop.clone(), seen.clone());
            std::thread::spawn(move || {
                let mut i = 0;
                while !stop.load(Ordering::SeqCst) {
                    let (out, took) = timed(|| call("ADD", &format!("w{w}-{i}"), "", &raw));
                    seen.lock().unwrap().push((took, if out.ok { 0 } else { out.code() }));
                    i += 1;
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).unwrap();
    std::thread::sleep(Duration::from_secs(6));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT).unwrap();
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::SeqCst);
    for w in workers {
        w.join().unwrap();
    }
    let seen = seen.lock().unwrap();
    let slowest = seen.iter().map(|(t, _)| *t).max().unwrap();
    let codes: Vec<u64> = seen.iter().map(|(_, c)| *c).filter(|c| *c != 0).collect();
    eprintln!(
        "stopped leader: {} ADDs, {} failed (codes {codes:?}), slowest {} ms, timeoutMs {}",
        seen.len(),
        codes.len(),
        slowest.as_millis(),
        timeout.as_millis()
    );
    assert!(codes.iter().all(|c| *c == 11), "only 'try again later': {codes:?}");
    assert!(
        slowest <= timeout + MARGIN,
        "an ADD took {} ms with timeoutMs {}",
        slowest.as_millis(),
        timeout.as_millis()
    );
}

/// A namespace whose resolver swallows every query (a UDP socket on 127.0.0.1:53
/// that never answers); removed on drop.
struct MuteResolver {
    name: String,
    ns: Option<Netns>,
    _sink: Option<UdpSocket>,
    dir: tempfile::TempDir,
}

impl MuteResolver {
    fn new() -> MuteResolver {
        let name = format!("ipam-dns-{}", std::process::id());
        let mut mute = MuteResolver { name, ns: None, _sink: None, dir: tempfile::tempdir().unwrap() };
        mute.ns = Some(Netns::create(&mute.name).unwrap());
        let resolv = mute.dir.path().join("resolv.conf");
        std::fs::write(&resolv, "nameserver 127.0.0.1\noptions timeout:4 attempts:2\n").unwrap();
        assert!(Command::new("ip").args(["-n", &mute.name, "link", "set", "lo", "up"]).status().unwrap().success());
        let ns = mute.ns.as_ref().unwrap();
        mute._sink = Some(ns.run(|| UdpSocket::bind("127.0.0.1:53")).unwrap().unwrap());
        mute
    }

    /// The plugin in the namespace, with this resolv.conf over /etc/resolv.conf in a
    /// mount namespace of its own.
    fn command(&self) -> Command {
        use std::os::unix::ffi::OsStrExt;
        use std::os::unix::process::CommandExt;
        let mut cmd = self.ns.as_ref().unwrap().command(bin());
        let resolv = std::ffi::CString::new(self.dir.path().join("resolv.conf").as_os_str().as_bytes()).unwrap();
        // SAFETY: std's `pre_exec` is unsafe and has no safe form; only unshare(2) and
        // mount(2), async-signal-safe, run between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                use nix::mount::{MsFlags, mount};
                nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)?;
                mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)?;
                mount(Some(resolv.as_c_str()), "/etc/resolv.conf", None::<&str>, MsFlags::MS_BIND, None::<&str>)?;
                Ok(())
            });
        }
        cmd
    }
}

impl Drop for MuteResolver {
    fn drop(&mut self) {
        if self.ns.take().is_some() {
            let _ = Netns::delete(&self.name);
        }
    }
}

#[test]
fn a_host_name_that_never_resolves_answers_within_timeout_ms() {
    let mute = MuteResolver::new();
    let etcd = json!({"endpoints": ["http://etcd.ipam-test.invalid:2379"], "timeoutMs": 1000});
    let raw = conf("dns", &etcd, "n1", json!({"subnet": "10.34.0.0/24"}));
    let (out, took) = timed(|| call_with(mute.command(), "ADD", "c1", "", &raw));
    assert_eq!(out.code(), 11, "{}", out.json);
    assert!(took <= Duration::from_millis(1000) + MARGIN, "took {} ms with timeoutMs 1000", took.as_millis());
}

#[test]
fn a_bad_port_is_a_config_error_at_once() {
    for endpoint in ["http://127.0.0.1:abc", "http://127.0.0.1:99999"] {
        let etcd = json!({"endpoints": [endpoint], "timeoutMs": 3000});
        let raw = conf("port", &etcd, "n1", json!({"subnet": "10.35.0.0/24"}));
        let (out, took) = timed(|| call("ADD", "c1", "", &raw));
        assert_eq!(out.code(), 7, "{}", out.json);
        assert!(out.msg().contains("ipam.etcd.endpoints") && out.msg().contains(endpoint), "{}", out.msg());
        assert!(took < Duration::from_millis(1000), "{} ms: not after the timeout", took.as_millis());
    }
}

/// The plugin's stderr for one ADD with a password file of mode `mode`.
fn stderr_with_password_file(mode: u32) -> String {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("password");
    std::fs::write(&file, "secret\n").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
    // Port 1 on loopback: refused at once, the call ends with 11 quickly.
    let etcd = json!({"endpoints": ["http://127.0.0.1:1"], "timeoutMs": 300, "username": "u", "passwordFile": file});
    let raw: Value = conf("pw", &etcd, "n1", json!({"subnet": "10.36.0.0/24"}));
    let mut child = Command::new(bin())
        .env_clear()
        .env("CNI_COMMAND", "ADD")
        .env("CNI_CONTAINERID", "c1")
        .env("CNI_NETNS", "/proc/self/ns/net")
        .env("CNI_IFNAME", "eth0")
        .env("CNI_PATH", "/nonexistent")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&serde_json::to_vec(&raw).unwrap()).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_world_readable_password_file_is_warned_about() {
    let loud = stderr_with_password_file(0o644);
    assert!(loud.contains("passwordFile") && loud.contains("readable by every user"), "{loud}");
    let quiet = stderr_with_password_file(0o600);
    assert!(!quiet.contains("readable by every user"), "{quiet}");
}
