//! `underlay-lab` end to end: every supported claim holds on this kernel, the rest are
//! skipped with the reason; `down` (also after an interrupted or killed `up`) leaves
//! the root namespace's namespaces and links as they were.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;
use underlay_linux::{Netlink, Netns};

/// A lab with a name of its own and private files.
struct Lab {
    name: String,
    dir: tempfile::TempDir,
}

impl Lab {
    fn new(tag: &str) -> Lab {
        Lab { name: format!("{tag}{}", std::process::id() % 100_000), dir: tempfile::tempdir().unwrap() }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_underlay-lab"));
        c.env("UNDERLAY_RUN_DIR", self.dir.path()).args(args);
        c.arg("--name").arg(&self.name).arg("--out").arg(self.out()).stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }

    fn record(&self) -> Option<Value> {
        let p = self.dir.path().join("lab").join(&self.name).join("lab.json");
        std::fs::read(p).ok().map(|b| serde_json::from_slice(&b).unwrap())
    }

    /// The lab's namespaces that exist.
    fn namespaces(&self) -> Vec<String> {
        let prefix = format!("ul-{}-", self.name);
        root_namespaces().into_iter().filter(|n| n.starts_with(&prefix)).collect()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = self.run(&["down"]);
    }
}

fn root_namespaces() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(underlay_linux::netns::NETNS_DIR)
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// The root namespace as far as one test can see it: its links, and the named
/// namespaces apart from the labs and worlds other tests run at the same time.
fn root_state() -> (Vec<String>, Vec<String>) {
    (root_namespaces().into_iter().filter(|n| !n.starts_with("ul-")).collect(), root_links())
}

fn root_links() -> Vec<String> {
    let mut v: Vec<String> = Netlink::new().unwrap().links().unwrap().into_iter().map(|l| l.name).collect();
    v.sort();
    v
}

fn ok(out: &Output) -> &Output {
    assert!(
        out.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn alive(pid: u64) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default().contains(") Z ")
}

#[test]
fn the_lab_checks_every_claim_of_the_seed() {
    let before = root_state();
    let lab = Lab::new("all");
    let out = lab.run(&["--format", "json"]);
    ok(&out);
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(rows.len() >= 20, "{rows:#?}");
    for r in &rows {
        let claim = r["claim"].as_str().unwrap();
        let needs = if claim.contains("VLAN") {
            Some(underlay_linux::support::Feature::Vlan)
        } else if claim.contains("ipvlan") {
            Some(underlay_linux::support::Feature::Ipvlan)
        } else {
            None
        };
        match needs {
            Some(f) if !underlay_linux::support::has(f).unwrap() => {
                assert_eq!(r["verdict"], "skipped", "{r:#}");
                assert!(r["observed"].as_str().unwrap().contains("kernel lacks"), "{r:#}");
            }
            _ => assert_eq!(r["verdict"], "pass", "{r:#}"),
        }
    }
    // The seed's sections are all there, and where the seed is wrong a note says so.
    for section in ["1.2", "2.1", "2.2", "2.4", "2.5", "2.6", "2.7", "4.1", "4.2", "4.3", "4.4", "6.2", "6.3"] {
        assert!(rows.iter().any(|r| r["section"] == section), "no claim from §{section}");
    }
    assert!(rows.iter().any(|r| r["note"].as_str().is_some_and(|n| n.contains("The seed is wrong"))));
    let picture = ["underlay-lab-topology.svg", "underlay-lab-topology.dot"].iter().any(|f| lab.out().join(f).exists());
    assert!(picture, "no topology picture in {}", lab.out().display());
    assert!(lab.namespaces().is_empty() && lab.record().is_none(), "plain `lab` removes the lab");
    assert_eq!(root_state(), before);
}

#[test]
fn up_check_bench_down() {
    let before = root_state();
    let lab = Lab::new("ucbd");
    let up = lab.run(&["up", "--pods", "2"]);
    ok(&up);
    // Where the README's example can go on node1 without colliding (.100 is taken).
    let said = String::from_utf8_lossy(&up.stderr);
    assert!(said.contains("free to try on node1") && said.contains("192.168.1.20-99"), "{said}");
    assert!(!lab.namespaces().is_empty());
    // A second `up` is refused while this one is up.
    let again = lab.run(&["up"]);
    assert_eq!(again.status.code(), Some(4), "{}", String::from_utf8_lossy(&again.stderr));
    ok(&lab.run(&["check", "--format", "json"]));
    let bench = ok(&lab.run(&["bench", "--seconds", "0.2", "--rounds", "50", "--passes", "1", "--format", "json"]))
        .stdout
        .clone();
    let rows: Vec<Value> = serde_json::from_slice(&bench).unwrap();
    let kinds: Vec<&str> = rows.iter().map(|r| r["kind"].as_str().unwrap()).collect();
    for kind in ["macvlan", "bridge-nat", "host"] {
        assert!(kinds.contains(&kind), "{rows:#?}");
    }
    assert!(rows.iter().all(|r| r["gbit_per_s"].as_f64().unwrap() > 0.0 && r["p50_us"].as_f64().unwrap() > 0.0));
    assert!(lab.out().join("underlay-lab-bench.svg").exists());
    let pids: Vec<u64> =
        lab.record().unwrap()["processes"].as_array().unwrap().iter().map(|p| p["pid"].as_u64().unwrap()).collect();
    // A process no record names, as a SIGKILLed `up` can leave between starting a
    // server and writing it down: `down` must end it too (it kept node1 alive before).
    let node1 = format!("ul-{}-node1", lab.name);
    let mut stray = Command::new("ip").args(["netns", "exec", &node1, "sleep", "600"]).spawn().unwrap();
    ok(&lab.run(&["down"]));
    let ended = (0..50).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        stray.try_wait().unwrap().is_some()
    });
    if !ended {
        let _ = stray.kill();
    }
    assert!(ended, "a process in node1 that no record names outlived `down`");
    assert!(lab.namespaces().is_empty() && lab.record().is_none());
    assert!(pids.iter().all(|p| !alive(*p)), "a lab server outlived `down`");
    assert_eq!(root_state(), before);
}

#[test]
fn down_cleans_up_after_an_interrupted_or_killed_up() {
    let before = root_state();
    for (signal, after) in [(nix::sys::signal::Signal::SIGINT, 150), (nix::sys::signal::Signal::SIGKILL, 250)] {
        let lab = Lab::new(if signal == nix::sys::signal::Signal::SIGINT { "int" } else { "kill" });
        let mut child = lab.command(&["up"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(after));
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal).unwrap();
        child.wait().unwrap();
        let pids: Vec<u64> = lab
            .record()
            .map(|r| r["processes"].as_array().unwrap().iter().map(|p| p["pid"].as_u64().unwrap()).collect())
            .unwrap_or_default();
        ok(&lab.run(&["down"]));
        assert!(lab.namespaces().is_empty(), "{signal}: {:?}", lab.namespaces());
        assert!(pids.iter().all(|p| !alive(*p)), "{signal}: a lab server outlived `down`");
        assert_eq!(root_state(), before, "{signal}");
    }
}

#[test]
fn up_refuses_a_namespace_it_did_not_make() {
    let lab = Lab::new("taken");
    let taken = format!("ul-{}-sw", lab.name);
    Netns::create(&taken).unwrap();
    let out = lab.run(&["up"]);
    let still_there = Netns::exists(&taken);
    Netns::delete(&taken).unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&taken));
    assert!(still_there, "the lab removed a namespace it did not make");
    assert!(lab.record().is_none());
}

/// Exit codes as the README's table says, and options only where they mean something.
#[test]
fn no_lab_is_not_found_and_down_takes_no_format() {
    let lab = Lab::new("nolab");
    let check = lab.run(&["check"]);
    assert_eq!(check.status.code(), Some(3), "{}", String::from_utf8_lossy(&check.stderr));
    assert!(String::from_utf8_lossy(&check.stderr).contains("no lab"));
    let bench = lab.run(&["bench"]);
    assert_eq!(bench.status.code(), Some(3), "{}", String::from_utf8_lossy(&bench.stderr));
    let down = lab.run(&["down", "--format", "json"]);
    assert_eq!(down.status.code(), Some(2), "{}", String::from_utf8_lossy(&down.stderr));
    assert!(lab.record().is_none());
}
