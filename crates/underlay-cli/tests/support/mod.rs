//! Running `underlay` on a node of a test world, with private state and run dirs.

#![allow(dead_code)]

use std::process::{Child, Output, Stdio};
use std::time::Duration;

use serde_json::Value;
use underlay_linux::Netns;
use underlay_linux::world::{World, WorldSpec};

pub struct Underlay<'w> {
    pub node: &'w Netns,
    pub dirs: tempfile::TempDir,
}

pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    pub fn ok(&self) -> &Self {
        assert_eq!(self.code, 0, "stdout: {}\nstderr: {}", self.stdout, self.stderr);
        self
    }
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("{e}: {}", self.stdout))
    }
}

impl<'w> Underlay<'w> {
    pub fn on(node: &'w Netns) -> Underlay<'w> {
        Underlay { node, dirs: tempfile::tempdir().unwrap() }
    }

    pub fn state_dir(&self) -> std::path::PathBuf {
        self.dirs.path().join("state")
    }

    pub fn run_dir(&self) -> std::path::PathBuf {
        self.dirs.path().join("run")
    }

    pub fn command(&self, args: &[&str]) -> std::process::Command {
        let mut c = self.node.command(env!("CARGO_BIN_EXE_underlay"));
        c.arg("--state-dir").arg(self.state_dir()).arg("--run-dir").arg(self.run_dir()).args(args);
        c
    }

    pub fn run(&self, args: &[&str]) -> Ran {
        let out: Output = self.command(args).stdin(Stdio::null()).output().unwrap();
        Ran {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    pub fn spawn(&self, args: &[&str]) -> Child {
        self.command(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
    }

    /// `ps --format json`.
    pub fn ps(&self) -> Vec<Value> {
        self.run(&["ps", "--format", "json"]).ok().json().as_array().unwrap().clone()
    }

    /// `network create --subnet 192.168.1.0/24 --gateway 192.168.1.1 -o parent=enp0s3
    /// EXTRA... NAME`: the seed's LAN, with whatever a test adds.
    pub fn lan(&self, name: &str, extra: &[&str]) -> Ran {
        let mut args =
            vec!["network", "create", "--subnet", "192.168.1.0/24", "--gateway", "192.168.1.1", "-o", "parent=enp0s3"];
        args.extend_from_slice(extra);
        args.push(name);
        self.run(&args)
    }

    /// Network `lan` (addresses handed out from 192.168.1.96/27) with a detached
    /// endpoint `web` at 192.168.1.100, running.
    pub fn lan_with_web(&self) {
        self.lan("lan", &["--ip-range", "192.168.1.96/27"]).ok();
        let web = ["run", "--network", "lan", "--ip", "192.168.1.100", "-d", "--name", "web", "--"];
        self.run(&[&web[..], &["/bin/busybox", "sleep", "120"]].concat()).ok();
        self.wait_running("web");
    }

    /// The seed's Docker example: `network create -d macvlan --subnet 192.168.1.0/24
    /// --gateway 192.168.1.1 -o parent=enp0s3 NAME`.
    pub fn seed_network(&self, name: &str) {
        self.lan(name, &["-d", "macvlan"]).ok();
    }

    /// Reservation files in the IPAM store of `network`.
    pub fn reservations(&self, network: &str) -> Vec<String> {
        std::fs::read_dir(self.state_dir().join("ipam").join(network))
            .map(|rd| {
                rd.flatten()
                    .filter_map(|e| e.file_name().into_string().ok())
                    .filter(|n| n.parse::<std::net::IpAddr>().is_ok())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Namespaces `run` pinned that are still there.
    pub fn namespaces(&self) -> Vec<String> {
        std::fs::read_dir(self.run_dir().join("netns"))
            .map(|rd| rd.flatten().filter_map(|e| e.file_name().into_string().ok()).collect())
            .unwrap_or_default()
    }

    /// Waits until `ps` shows an endpoint called `name` whose command runs.
    pub fn wait_running(&self, name: &str) -> Value {
        for _ in 0..250 {
            if let Some(e) = self.ps().into_iter().find(|e| e["name"] == name && e["process"].is_object()) {
                return e;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("{name} never ran: {:?}", self.ps());
    }
}

pub fn world(spec: WorldSpec) -> World {
    World::build(spec).unwrap_or_else(|e| panic!("cannot build the test world (run the tests as root): {e}"))
}
