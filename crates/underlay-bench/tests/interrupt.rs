//! Ctrl-C in the middle of a benchmark: it stops at its next step, exits 130 and leaves
//! nothing behind — no namespace or root-namespace link of its world, no process it
//! started (etcd, containerd, dockerd, the plugins' daemons), no temporary file.
//! Each benchmark runs at full size so it is surely still running when SIGINT comes.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Every process the benchmark starts inherits this (unless it clears its environment).
const MARKER: &str = "UNDERLAY_BENCH_INTERRUPT_TEST";

struct Run {
    child: Child,
    pid: u32,
    tag: String,
    tmp: tempfile::TempDir,
}

fn start(args: &[&str]) -> Run {
    let tmp = tempfile::tempdir().unwrap();
    let tag = format!("{}-{}", std::process::id(), args[0]);
    let child = Command::new(env!("CARGO_BIN_EXE_underlay-bench"))
        .args(args)
        .env(MARKER, &tag)
        .env("TMPDIR", tmp.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    Run { pid: child.id(), child, tag, tmp }
}

/// The namespaces named after `pid` (worlds are `ul-<tag>-<pid>-<n>-<role>`).
fn namespaces(pid: u32) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir("/run/netns") else { return vec![] };
    dir.filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("ul-") && n.split('-').any(|part| part == pid.to_string()))
        .collect()
}

/// Root-namespace links of a world (`root_port`: `ul<pid % 100000>r<n>`).
fn root_links(pid: u32) -> Vec<String> {
    let prefix = format!("ul{}r", pid % 100_000);
    std::fs::read_dir("/sys/class/net")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with(&prefix))
        .collect()
}

/// Live processes carrying the run's marker, with their command names.
fn marked(tag: &str) -> Vec<String> {
    let want = format!("{MARKER}={tag}");
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|&b| b == 0).any(|kv| kv == want.as_bytes()))
        })
        .map(|pid| {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            format!("{pid} {}", comm.trim())
        })
        .collect()
}

fn wait_for(what: &str, run: &mut Run, ready: impl Fn(&Run) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !ready(run) {
        if let Some(status) = run.child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(run.child.stderr.as_mut().unwrap(), &mut err).unwrap();
            panic!("{} ended ({status}) before {what}: {err}", run.tag);
        }
        assert!(Instant::now() < deadline, "{}: no {what} after 120 s", run.tag);
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts the benchmark, waits until `ready` says it is under way plus a moment,
/// sends SIGINT and checks what is left.
fn interrupt(args: &[&str], ready: impl Fn(&Run) -> bool) {
    let mut run = start(args);
    wait_for("its world", &mut run, ready);
    std::thread::sleep(Duration::from_millis(1500));
    kill(Pid::from_raw(run.pid as i32), Signal::SIGINT).unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = run.child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = run.child.kill();
            panic!("{}: still running 120 s after SIGINT", run.tag);
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(run.child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(130), "{}: {status}, stderr: {err}", run.tag);
    assert!(err.contains("interrupted"), "{}: {err}", run.tag);
    assert_eq!(namespaces(run.pid), Vec::<String>::new(), "{}: namespaces left; stderr: {err}", run.tag);
    assert_eq!(root_links(run.pid), Vec::<String>::new(), "{}: root links left; stderr: {err}", run.tag);
    assert_eq!(marked(&run.tag), Vec::<String>::new(), "{}: processes left; stderr: {err}", run.tag);
    let left: Vec<_> = std::fs::read_dir(run.tmp.path()).unwrap().filter_map(|e| Some(e.ok()?.path())).collect();
    assert!(left.is_empty(), "{}: temporary files left: {left:?}; stderr: {err}", run.tag);
}

fn has_world(run: &Run) -> bool {
    !namespaces(run.pid).is_empty()
}

#[test]
fn macvlan_interrupted() {
    interrupt(&["macvlan", "--iterations", "100000"], has_world);
}

#[test]
fn scale_interrupted() {
    interrupt(&["scale", "--endpoints", "0,100000"], has_world);
}

#[test]
fn podman_interrupted() {
    interrupt(&["podman", "--rounds", "10000"], has_world);
}

#[test]
fn cri_interrupted() {
    interrupt(&["cri", "--rounds", "10000"], has_world);
}

#[test]
fn docker_interrupted() {
    // Needs underlay-docker-plugin beside underlay-bench (`cargo test --workspace` builds it).
    interrupt(&["docker", "--rounds", "10000"], has_world);
}

#[test]
fn etcd_ipam_interrupted() {
    // No world here: under way once its etcd members run.
    interrupt(&["etcd-ipam"], |run| marked(&run.tag).iter().any(|p| p.ends_with(" etcd")));
}

#[test]
fn host_local_interrupted() {
    // Only temporary stores: under way once the first is being filled.
    interrupt(&["host-local"], |run| std::fs::read_dir(run.tmp.path()).is_ok_and(|mut d| d.next().is_some()));
}
