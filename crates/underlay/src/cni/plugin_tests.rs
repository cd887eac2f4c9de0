use super::*;
use crate::cni::result::IpConfig;
use serde_json::json;

/// A plugin that answers ADD with one fixed address and fails STATUS on demand.
struct Fixed;

impl Plugin for Fixed {
    fn add(&self, call: &Call) -> Result<CniResult, CniError> {
        #[derive(serde::Deserialize)]
        struct Conf {
            #[serde(default)]
            mtu: u32,
        }
        let conf: Conf = call.conf_as()?;
        if conf.mtu > 9000 {
            return Err(CniError::config(format!("mtu {} is too large", conf.mtu)));
        }
        Ok(CniResult {
            ips: vec![IpConfig { interface: None, address: "10.0.0.2/24".parse().unwrap(), gateway: None }],
            ..CniResult::default()
        })
    }
    fn del(&self, _: &Call) -> Result<(), CniError> {
        Ok(())
    }
    fn check(&self, call: &Call) -> Result<(), CniError> {
        call.prev_result()?.map(drop).ok_or_else(|| CniError::config("CHECK needs prevResult"))
    }
    fn status(&self, _: &Call) -> Result<(), CniError> {
        Err(CniError::not_available("parent enp0s3 is down"))
    }
    fn gc(&self, _: &Call) -> Result<(), CniError> {
        Ok(())
    }
}

fn vars(command: &str) -> Vec<(&'static str, String)> {
    vec![
        ("CNI_COMMAND", command.to_string()),
        ("CNI_CONTAINERID", "c1".into()),
        ("CNI_NETNS", "/run/netns/x".into()),
        ("CNI_IFNAME", "eth0".into()),
        ("CNI_PATH", "/nonexistent".into()),
    ]
}

fn conf(version: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({"cniVersion": version, "name": "lan", "type": "fixed"})).unwrap()
}

#[test]
fn add_prints_the_result_in_the_config_version() {
    for (v, has_version_tag) in [("0.3.1", true), ("1.0.0", false)] {
        let reply = run(&Fixed, vars("ADD"), &conf(v));
        assert_eq!(reply.exit_code, 0);
        let out = reply.value();
        assert_eq!(out["cniVersion"], v);
        assert_eq!(out["ips"][0].get("version").is_some(), has_version_tag);
    }
    let legacy = run(&Fixed, vars("ADD"), &conf("0.2.0")).value();
    assert_eq!(legacy["ip4"]["ip"], "10.0.0.2/24");
}

#[test]
fn version_lists_every_supported_version() {
    let reply = run(&Fixed, [("CNI_COMMAND", "VERSION")], br#"{"cniVersion":"0.4.0"}"#);
    assert_eq!(reply.exit_code, 0);
    assert_eq!(
        reply.value(),
        json!({"cniVersion": "0.4.0", "supportedVersions": ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]})
    );
    assert_eq!(run(&Fixed, [("CNI_COMMAND", "VERSION")], b"").value()["cniVersion"], "1.1.0");
}

#[test]
fn failures_carry_the_right_code() {
    type Case = (Vec<(&'static str, String)>, Vec<u8>, u32, &'static str);
    let cases: Vec<Case> = vec![
        (vars("ADD"), b"{not json".to_vec(), 6, "decode"),
        (vars("ADD"), b"[1]".to_vec(), 6, "object"),
        (vars("ADD"), conf("0.9.0"), 1, "0.9.0"),
        (vars("STATUS"), conf("0.4.0"), 1, "STATUS"),
        (vars("GC"), conf("1.0.0"), 1, "GC"),
        (vars("CHECK"), conf("0.3.1"), 1, "CHECK"),
        (vars("CHECK"), conf("1.0.0"), 7, "prevResult"),
        (vars("STATUS"), conf("1.1.0"), 50, "enp0s3"),
        (
            vars("ADD"),
            serde_json::to_vec(&json!({"cniVersion": "1.0.0", "name": "../x", "type": "fixed"})).unwrap(),
            7,
            "../x",
        ),
        (
            vars("ADD"),
            serde_json::to_vec(&json!({"cniVersion": "1.0.0", "name": "n", "type": "f", "mtu": "x"})).unwrap(),
            7,
            "mtu",
        ),
        (
            vars("ADD"),
            serde_json::to_vec(&json!({"cniVersion": "1.0.0", "name": "n", "type": "f", "mtu": 9999})).unwrap(),
            7,
            "9999",
        ),
        (vec![("CNI_COMMAND", "ADD".into())], conf("1.0.0"), 4, "CNI_CONTAINERID"),
    ];
    for (env, stdin, code, needle) in cases {
        let reply = run(&Fixed, env, &stdin);
        assert_eq!(reply.exit_code, 1);
        let out = reply.value();
        assert_eq!(out["code"], code, "{out}");
        assert!(out["msg"].as_str().unwrap().contains(needle), "{out}");
        assert!(out["cniVersion"].is_string(), "{out}");
    }
}

#[test]
fn del_and_gc_print_nothing() {
    for cmd in ["DEL", "GC"] {
        let reply = run(&Fixed, vars(cmd), &conf("1.1.0"));
        assert_eq!((reply.exit_code, reply.stdout.len()), (0, 0), "{cmd}");
    }
}

#[test]
fn started_by_hand_without_cni_command_or_with_version_flag() {
    assert!(by_hand(None, None));
    assert!(by_hand(Some(""), None), "an empty CNI_COMMAND is no command, as the reference has it");
    assert!(by_hand(Some("ADD"), Some("--version")));
    assert!(!by_hand(Some("ADD"), None));
    assert!(!by_hand(Some("VERSION"), Some("-v")));
}

#[test]
fn about_names_the_plugin_its_version_and_the_spec_versions() {
    let text = about(&Fixed, "macvlan");
    assert_eq!(
        text,
        format!(
            "CNI macvlan plugin v{} (underlay)\nCNI protocol versions supported: 0.1.0, 0.2.0, 0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0\n",
            env!("CARGO_PKG_VERSION")
        )
    );
}
