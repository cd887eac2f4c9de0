//! Files a config names: a FIFO or a device as `resolvConf` is refused at once (code 7
//! naming the key) and holds up no other ADD.

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::*;

#[test]
fn a_fifo_or_device_as_resolv_conf_is_refused_without_blocking_others() {
    let data = tempfile::tempdir().unwrap();
    let fifo = data.path().join("fifo");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let started = Instant::now();
    for bad in [fifo.to_str().unwrap(), "/dev/zero"] {
        let conf = conf("1.0.0", "files", data.path(), json!({"subnet": "10.1.0.0/24", "resolvConf": bad}));
        let out = run(&ours(), "ADD", "c1", &conf);
        assert!(!out.ok);
        assert_eq!(out.json["code"], 7, "{}", out.json);
        let msg = out.json["msg"].as_str().unwrap();
        assert!(msg.contains("resolvConf") && msg.contains(bad), "{msg}");
    }
    assert!(started.elapsed() < Duration::from_secs(5), "a FIFO blocked the plugin");
    assert!(reservations(&data.path().join("files")).is_empty());
    let plain = conf("1.0.0", "files", data.path(), json!({"subnet": "10.1.0.0/24"}));
    assert_eq!(ip_of(&run(&ours(), "ADD", "c2", &plain)), "10.1.0.2");
}

#[test]
fn a_symlink_in_the_side_directory_is_refused_by_name_and_never_followed() {
    let data = tempfile::tempdir().unwrap();
    let victim = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(victim.path(), "precious\n").unwrap();
    let c = conf("1.0.0", "links", data.path(), json!({"subnet": "10.1.0.0/24"}));
    assert_eq!(ip_of(&run(&ours(), "ADD", "c1", &c)), "10.1.0.2");
    let state = data.path().join(".underlay/links/state");
    assert!(state.exists(), "the side directory is where the README says");
    std::fs::remove_file(&state).unwrap();
    std::os::unix::fs::symlink(victim.path(), &state).unwrap();
    let out = run(&ours(), "ADD", "c2", &c);
    assert_eq!(out.json["code"], 5, "{}", out.json);
    let msg = out.json["msg"].as_str().unwrap();
    assert!(msg.contains(state.to_str().unwrap()) && msg.contains("symbolic link"), "{msg}");
    assert_eq!(std::fs::read_to_string(victim.path()).unwrap(), "precious\n", "written through the link");
}
