//! The `underlay` command on a DHCP network (`--ipam-driver dhcp`): endpoints leased by
//! the test world's dnsmasq through the dhcp daemon, released on stop, the same address
//! again for the same name; flags that make no sense with DHCP refused.

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use serde_json::Value;
use support::{DHCP, Lab, wait_for};

/// `underlay` with private state, run in node 0's namespace.
struct Underlay<'a> {
    lab: &'a Lab,
    state: PathBuf,
    run: PathBuf,
}

impl Underlay<'_> {
    fn call(&self, args: &[&str]) -> Output {
        let bin = Path::new(DHCP).with_file_name("underlay");
        assert!(bin.exists(), "{} missing: run the workspace's tests (cargo test --workspace)", bin.display());
        self.lab
            .world
            .node(0)
            .netns
            .command(&bin)
            .arg("--state-dir")
            .arg(&self.state)
            .arg("--run-dir")
            .arg(&self.run)
            .args(args)
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.call(args);
        assert!(out.status.success(), "underlay {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn fails(&self, args: &[&str]) -> (i32, String) {
        let out = self.call(args);
        assert!(!out.status.success(), "underlay {args:?} should fail");
        (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
    }

    /// The endpoint's (address, MAC).
    fn endpoint(&self, name: &str) -> (String, String) {
        let v: Value = serde_json::from_str(&self.ok(&["inspect", name])).unwrap();
        let ep = &v[0];
        let ip = ep["ips"][0].as_str().unwrap_or_default().split('/').next().unwrap_or_default().to_string();
        (ip, ep["mac"].as_str().unwrap_or_default().to_string())
    }
}

#[test]
fn dhcp_networks_lease_from_the_lan_and_release_on_stop() {
    let mut lab = Lab::new("dhcp-cli");
    lab.start_dnsmasq(60, 100);
    lab.start_daemon();
    let tmp = tempfile::tempdir().unwrap();
    let u = Underlay { lab: &lab, state: tmp.path().join("state"), run: tmp.path().join("run") };
    let socket = format!("socket={}", lab.socket().display());
    let create = ["network", "create", "--ipam-driver", "dhcp", "--ipam-opt", &socket, "-o", "parent=enp0s3", "dnet"];
    u.ok(&create);

    u.ok(&["run", "--network", "dnet", "-d", "--name", "web", "--", "sleep", "120"]);
    let (ip, mac) = u.endpoint("web");
    assert!(ip.starts_with("192.168.1.1"), "a lease from dnsmasq's range: {ip}");
    let leased = |m: &str| lab.lease_lines().iter().any(|l| l.contains(m));
    assert!(leased(&mac), "dnsmasq lists the endpoint's MAC {mac}: {:?}", lab.lease_lines());
    assert!(lab.lease_lines().iter().any(|l| l.contains(&mac) && l.contains(" web ")), "host name from the endpoint");

    u.ok(&["stop", "web"]);
    wait_for(Duration::from_secs(5), || !leased(&mac)).expect("stop released the lease");

    // The same name again: the same client identifier, so the same address.
    u.ok(&["run", "--network", "dnet", "-d", "--name", "web", "--", "sleep", "120"]);
    assert_eq!(u.endpoint("web").0, ip, "the same name gets its address back");

    let (_, why) = u.fails(&["run", "--network", "dnet", "--ip", "192.168.1.120", "--name", "pinned", "--", "true"]);
    assert!(why.contains("DHCP"), "{why}");
    let (_, why) = u.fails(&["host-access", "enable", "dnet"]);
    assert!(why.contains("DHCP"), "{why}");
    u.ok(&["stop", "web"]);
    u.ok(&["network", "rm", "dnet"]);
}

#[test]
fn dhcp_networks_refuse_what_dhcp_decides_and_a_missing_daemon() {
    let lab = Lab::new("dhcp-cli-bad");
    let tmp = tempfile::tempdir().unwrap();
    let u = Underlay { lab: &lab, state: tmp.path().join("state"), run: tmp.path().join("run") };
    let base = ["network", "create", "--ipam-driver", "dhcp", "-o", "parent=enp0s3"];
    fn with<'a>(base: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
        [base, extra].concat()
    }
    let (code, why) = u.fails(&with(&base, &["--subnet", "192.168.1.0/24", "n1"]));
    assert_eq!(code, 2, "{why}");
    assert!(why.contains("--subnet") && why.contains("dhcp"), "{why}");
    let (code, why) = u.fails(&with(&base, &["--ipam-opt", "endpoints=http://x", "n2"]));
    assert_eq!(code, 2, "{why}");
    assert!(why.contains("endpoints=http://x"), "{why}");
    let missing = format!("socket={}", tmp.path().join("nobody.sock").display());
    let (code, why) = u.fails(&with(&base, &["--ipam-opt", &missing, "n3"]));
    assert_ne!(code, 0);
    assert!(why.contains("nobody.sock") && why.contains("dhcp daemon"), "{why}");
    let ls = u.ok(&["network", "ls", "--format", "json"]);
    assert!(!ls.contains("n1") && !ls.contains("n3"), "refused networks are not recorded: {ls}");
}
