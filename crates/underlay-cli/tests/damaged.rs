//! Damaged state: one unreadable record (garbage, a torn file, a FIFO) never stops work
//! on the healthy rest — it is reported and skipped, and `gc` moves it aside — and `gc`
//! never removes a namespace a process still lives in, record or not.

mod support;

use std::time::Duration;

use support::*;
use underlay_linux::world::WorldSpec;

#[test]
fn a_damaged_record_is_skipped_reported_and_moved_aside() {
    let w = world(WorldSpec::seed("clidmg").nodes(1).pods(0));
    let u = Underlay::on(&w.node(0).netns);
    u.seed_network("lan");
    u.run(&["run", "--network", "lan", "-d", "--name", "a", "--", "/bin/busybox", "sleep", "100"]).ok();
    u.wait_running("a");
    let (nets, eps) = (u.state_dir().join("networks"), u.state_dir().join("endpoints"));
    std::fs::write(eps.join("garbage.json"), b"{not json").unwrap();
    std::fs::write(nets.join("torn.json"), br#"{"name": "torn", "id": "12"#).unwrap();
    nix::unistd::mkfifo(&eps.join("fifo.json"), nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();

    let ps = u.run(&["ps"]);
    ps.ok();
    assert!(ps.stdout.contains("a ") && ps.stderr.contains("garbage.json"), "{} {}", ps.stdout, ps.stderr);
    assert!(ps.stderr.contains("fifo.json"), "a FIFO is reported, never read: {}", ps.stderr);
    let json = u.run(&["ps", "--format", "json"]).ok().json();
    let rows = json.as_array().unwrap();
    assert!(rows.iter().any(|r| r["name"] == "a"));
    assert!(rows.iter().any(|r| r["damaged"].as_str().is_some_and(|p| p.ends_with("garbage.json"))), "{json}");
    let nets_json = u.run(&["network", "ls", "--format", "json"]).ok().json();
    assert!(
        nets_json.as_array().unwrap().iter().any(|r| r["damaged"].as_str().is_some_and(|p| p.ends_with("torn.json")))
    );
    u.run(&["network", "ls"]).ok();
    u.run(&["network", "inspect", "lan"]).ok();
    u.run(&["inspect", "a"]).ok();
    let torn = u.run(&["network", "inspect", "torn"]);
    assert_eq!(torn.code, 5, "the damaged one itself is an error naming it: {}", torn.stderr);
    assert!(torn.stderr.contains("torn.json"), "{}", torn.stderr);
    u.run(&["stop", "a"]).ok();

    let gc = u.run(&["gc"]);
    gc.ok();
    for f in ["garbage.json", "torn.json", "fifo.json"] {
        assert!(gc.stdout.contains(f), "gc says where {f} went: {}", gc.stdout);
    }
    assert!(!eps.join("garbage.json").exists() && !nets.join("torn.json").exists() && !eps.join("fifo.json").exists());
    let aside = std::fs::read_dir(u.state_dir().join("damaged")).unwrap().count();
    assert_eq!(aside, 3);
    let clean = u.run(&["ps"]);
    assert!(clean.stderr.is_empty(), "nothing left to report: {}", clean.stderr);
    u.run(&["network", "rm", "lan"]).ok();
}

#[test]
fn gc_keeps_a_namespace_a_process_still_lives_in() {
    let w = world(WorldSpec::seed("clipin").nodes(1).pods(0));
    let u = Underlay::on(&w.node(0).netns);
    u.seed_network("lan");
    u.run(&["run", "--network", "lan", "-d", "--name", "k", "--", "/bin/busybox", "sleep", "100"]).ok();
    let ep = u.wait_running("k");
    let (id, pid) = (ep["id"].as_str().unwrap().to_string(), ep["process"]["pid"].as_u64().unwrap() as i32);
    // The record vanishes (a hand, a bad disk) while the command still runs.
    std::fs::remove_file(u.state_dir().join("endpoints").join(format!("{id}.json"))).unwrap();
    let gc = u.run(&["gc"]);
    gc.ok();
    let pin = u.run_dir().join("netns").join(&id);
    assert!(pin.exists(), "the pin of a namespace in use stays: {}", gc.stdout);
    assert!(gc.stdout.contains(&format!("kept namespace {id}")), "{}", gc.stdout);
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
    let start = std::time::Instant::now();
    while std::path::Path::new(&format!("/proc/{pid}")).exists() && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let gc = u.run(&["gc"]);
    gc.ok();
    assert!(!pin.exists(), "once nobody lives in it, gc removes it: {}", gc.stdout);
}
